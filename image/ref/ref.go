// Package ref parses and normalises Docker-style image references
// ("busybox", "myreg:5000/x/y:1", "a/b@sha256:...") the way the docker and
// podman CLIs do, and converts them to go-containerregistry's name.Reference
// for the registry client.
//
// Parsing follows the grammar of distribution/reference (the one docker
// uses), which is stricter than go-containerregistry's own parser: path
// components must be lowercase alphanumerics joined by '.', '_', "__" or
// dashes, the domain must be a valid host[:port], and digests must be a
// supported algorithm with a hex body of the right length. Normalisation
// fills in Docker Hub's defaults: no domain means docker.io, a single path
// component on docker.io gets the "library/" namespace, and a reference
// with neither tag nor digest gets the tag "latest".
package ref

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

const (
	// DefaultDomain is the registry domain of references that name none.
	DefaultDomain = "docker.io"
	// DefaultTag is the tag of references that name neither tag nor digest.
	DefaultTag = "latest"

	// legacyDefaultDomain is the old name of Docker Hub, still found in
	// scripts and auth files; it is rewritten to DefaultDomain.
	legacyDefaultDomain = "index.docker.io"
	officialRepoPrefix  = "library/"

	// Limits from distribution/reference.
	nameTotalLengthMax = 255
	tagLengthMax       = 128
)

// Ref is a parsed, normalised image reference. The zero Ref is not valid;
// obtain one from Parse. Refs are comparable with ==.
type Ref struct {
	domain string // "docker.io", "127.0.0.1:5077", "[::1]:5000"
	path   string // "library/busybox"
	tag    string // "" when the reference is by digest only
	digest string // "" when the reference is by tag only
}

// ParseError reports an invalid reference string, naming it and the reason.
type ParseError struct {
	Input  string
	Reason string
}

// Error implements error: `invalid image reference "Busybox": ...`.
func (e *ParseError) Error() string {
	return fmt.Sprintf("invalid image reference %q: %s", e.Input, e.Reason)
}

// Parse parses s as docker does and normalises it: "busybox" becomes
// docker.io/library/busybox:latest. A reference with both a tag and a digest
// ("a:tag@sha256:...") keeps both; the digest is what gets pulled.
func Parse(s string) (Ref, error) {
	fail := func(format string, args ...any) (Ref, error) {
		return Ref{}, &ParseError{Input: s, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail("empty reference")
	}
	if strings.Contains(s, "://") {
		// A common mistake is pasting a registry URL; say so rather than
		// reporting an invalid character.
		return fail("a reference has no URL scheme; write host[:port]/repository[:tag]")
	}
	if strings.TrimSpace(s) != s {
		return fail("leading or trailing whitespace")
	}

	rest := s
	var r Ref
	if before, dgst, ok := strings.Cut(rest, "@"); ok {
		if err := validateDigest(dgst); err != nil {
			return fail("%v", err)
		}
		r.digest = dgst
		rest = before
	}
	// A ':' after the last '/' starts the tag; one before it belongs to the
	// domain's port.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && i > strings.LastIndexByte(rest, '/') {
		tag := rest[i+1:]
		if err := validateTag(tag); err != nil {
			return fail("%v", err)
		}
		r.tag = tag
		rest = rest[:i]
	}
	if rest == "" {
		return fail("missing repository name")
	}

	r.domain, r.path = splitDomain(rest)
	if err := validateDomain(r.domain); err != nil {
		return fail("%v", err)
	}
	if err := validatePath(r.path); err != nil {
		return fail("%v", err)
	}
	if n := len(r.domain) + 1 + len(r.path); n > nameTotalLengthMax {
		return fail("repository name is %d characters long, more than %d", n, nameTotalLengthMax)
	}
	if r.tag == "" && r.digest == "" {
		r.tag = DefaultTag
	}
	return r, nil
}

// splitDomain separates the registry domain from the repository path as
// docker's splitDockerDomain does: the first component is a domain when it
// contains '.' or ':', is "localhost", or has uppercase letters (which a
// repository path cannot).
func splitDomain(name string) (domain, path string) {
	first, remainder, ok := strings.Cut(name, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost" && strings.ToLower(first) == first) {
		domain, path = DefaultDomain, name
	} else {
		domain, path = first, remainder
	}
	if domain == legacyDefaultDomain {
		domain = DefaultDomain
	}
	if domain == DefaultDomain && !strings.Contains(path, "/") {
		path = officialRepoPrefix + path
	}
	return domain, path
}

// validatePath checks the repository path: '/'-separated components, each
// lowercase alphanumeric runs joined by '.', '_', "__" or one or more '-'.
func validatePath(path string) error {
	if path == "" {
		return fmt.Errorf("missing repository name")
	}
	if strings.ToLower(path) != path {
		lower := strings.ToLower(path)
		if validatePath(lower) == nil {
			return fmt.Errorf("repository name %q must be lowercase", path)
		}
	}
	for _, c := range strings.Split(path, "/") {
		if !validPathComponent(c) {
			if c == "" {
				return fmt.Errorf("repository name %q has an empty path component", path)
			}
			return fmt.Errorf("repository name %q: invalid path component %q (lowercase letters, digits and single '.', '_', \"__\" or '-' runs between them)", path, c)
		}
	}
	return nil
}

func validPathComponent(c string) bool {
	i, n := 0, len(c)
	alnumRun := func() bool {
		start := i
		for i < n && (c[i] >= 'a' && c[i] <= 'z' || c[i] >= '0' && c[i] <= '9') {
			i++
		}
		return i > start
	}
	if !alnumRun() {
		return false
	}
	for i < n {
		switch {
		case c[i] == '.':
			i++
		case strings.HasPrefix(c[i:], "__"):
			i += 2
		case c[i] == '_':
			i++
		case c[i] == '-':
			for i < n && c[i] == '-' {
				i++
			}
		default:
			return false
		}
		if !alnumRun() {
			return false
		}
	}
	return true
}

// validateDomain checks host[:port], where host is a DNS name, an IPv4
// address or a bracketed IPv6 address.
func validateDomain(domain string) error {
	host, port := domain, ""
	if strings.HasPrefix(domain, "[") {
		end := strings.IndexByte(domain, ']')
		if end < 0 {
			return fmt.Errorf("registry domain %q: unclosed '[' in IPv6 address", domain)
		}
		host = domain[1:end]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return fmt.Errorf("registry domain %q: %q is not an IPv6 address", domain, host)
		}
		after := domain[end+1:]
		if after != "" {
			p, ok := strings.CutPrefix(after, ":")
			if !ok {
				return fmt.Errorf("registry domain %q: unexpected %q after the IPv6 address", domain, after)
			}
			port = p
			if err := validatePort(domain, port); err != nil {
				return err
			}
		}
		return nil
	}
	if h, p, ok := strings.Cut(domain, ":"); ok {
		host, port = h, p
		if err := validatePort(domain, port); err != nil {
			return err
		}
	}
	if host == "" {
		return fmt.Errorf("registry domain %q has no host", domain)
	}
	for _, label := range strings.Split(host, ".") {
		if !validDomainLabel(label) {
			return fmt.Errorf("registry domain %q: invalid host name label %q", domain, label)
		}
	}
	return nil
}

func validatePort(domain, port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		return fmt.Errorf("registry domain %q: invalid port %q", domain, port)
	}
	return nil
}

func validDomainLabel(l string) bool {
	if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validateTag checks docker's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
func validateTag(tag string) error {
	if tag == "" {
		return fmt.Errorf("empty tag after ':'")
	}
	if len(tag) > tagLengthMax {
		return fmt.Errorf("tag is %d characters long, more than %d", len(tag), tagLengthMax)
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		word := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
		if !word && (i == 0 || c != '.' && c != '-') {
			return fmt.Errorf("invalid tag %q (letters, digits, '_', '.' and '-', not starting with '.' or '-')", tag)
		}
	}
	return nil
}

// ValidateDigest reports whether d is a digest this package accepts:
// "sha256:" with 64 lowercase hex digits or "sha512:" with 128, the
// algorithms go-containerregistry can verify.
func ValidateDigest(d string) error {
	return validateDigest(d)
}

func validateDigest(d string) error {
	algo, hexPart, ok := strings.Cut(d, ":")
	if !ok || algo == "" {
		return fmt.Errorf("invalid digest %q: want algorithm:hex", d)
	}
	var want int
	switch algo {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	default:
		return fmt.Errorf("invalid digest %q: unsupported algorithm %q (sha256 or sha512)", d, algo)
	}
	if len(hexPart) != want {
		return fmt.Errorf("invalid digest %q: %s needs %d hex digits, got %d", d, algo, want, len(hexPart))
	}
	if strings.TrimLeft(hexPart, "0123456789abcdef") != "" {
		return fmt.Errorf("invalid digest %q: not lowercase hex", d)
	}
	return nil
}

// String returns the fully qualified reference:
// "docker.io/library/busybox:latest", "host:5000/x@sha256:...", or both tag
// and digest when the reference has both.
func (r Ref) String() string {
	return r.domain + "/" + r.path + r.suffix()
}

// Familiar returns the reference as docker prints it: without the docker.io
// domain and without "library/" for official images ("busybox:latest"),
// fully qualified for other registries ("myreg:5000/x:1").
func (r Ref) Familiar() string {
	n := r.domain + "/" + r.path
	if r.domain == DefaultDomain {
		n = r.path
		if short, ok := strings.CutPrefix(n, officialRepoPrefix); ok && !strings.Contains(short, "/") {
			n = short
		}
	}
	return n + r.suffix()
}

func (r Ref) suffix() string {
	s := ""
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest
	}
	return s
}

// Domain returns the registry domain: "docker.io", "127.0.0.1:5077".
func (r Ref) Domain() string { return r.domain }

// Repository returns the repository path within the registry:
// "library/busybox".
func (r Ref) Repository() string { return r.path }

// Tag returns the tag, "" for a reference by digest only.
func (r Ref) Tag() string { return r.tag }

// Digest returns the digest ("sha256:..."), "" for a reference by tag only.
func (r Ref) Digest() string { return r.digest }

// Name returns the reference for go-containerregistry: a name.Digest when
// the reference has a digest (the digest is what identifies the content),
// else a name.Tag. go-containerregistry spells docker.io "index.docker.io".
// It returns nil for the zero Ref. The result carries no scheme preference:
// the registry client decides between https and plain HTTP.
func (r Ref) Name() name.Reference {
	if r.domain == "" || r.path == "" {
		return nil
	}
	// NewRegistry + Repo rather than name.ParseReference: the domain and
	// path are already validated by a stricter grammar, and ParseReference
	// would misread domains it does not recognise as such (e.g. uppercase
	// ones without a dot).
	reg, err := name.NewRegistry(r.domain)
	if err != nil {
		return nil
	}
	repo := reg.Repo(r.path)
	if r.digest != "" {
		return repo.Digest(r.digest)
	}
	return repo.Tag(r.tag)
}

// WithDigest returns a copy of r that also names digest d, keeping the tag
// (e.g. to record exactly what a tag resolved to). d should come from a
// verified manifest; check untrusted input with ValidateDigest first.
func (r Ref) WithDigest(d string) Ref {
	r.digest = d
	return r
}
