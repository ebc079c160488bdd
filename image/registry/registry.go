// Package registry is hull's registry client: it resolves references to
// manifests, streams blobs and pushes images over the distribution (OCI and
// Docker registry v2) protocol, through registry mirrors, with credentials
// from podman's and docker's auth files.
//
// go-containerregistry does the protocol pieces it does well: reference
// types, the auth handshake (ping, basic and bearer token exchange, token
// refresh) and image upload. Manifest fetching and blob streaming are done
// here, because pulling needs guarantees that remote.Get does not give all
// of: a bounded manifest read, agreement between the Content-Type header and
// the body (CVE-2021-41190), digest checks against the ref, the index entry
// and the Docker-Content-Digest header, resumable blob reads that say whether
// the registry honoured Range, and mirror fallback. Blob content is not
// verified here: the content store verifies the digest while it writes.
//
// Transport security: https with verified certificates, except for
// registries listed in Config.Insecure and loopback ones (127.0.0.0/8, ::1,
// localhost), which may use plain HTTP or unverified TLS, as Docker allows.
// Every request goes through one policy transport that refuses plain HTTP to
// any other host, including token realms and redirects.
package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hull-runtime/hull/image/ref"
)

// MaxManifestSize is the largest manifest or index accepted (4 MiB, as
// containerd and distribution): larger ones are refused without being read.
const MaxManifestSize = 4 << 20

// dockerHubHost is where docker.io's API is served; go-containerregistry
// uses the same host, so Push and the fetch paths talk to one place.
const dockerHubHost = name.DefaultRegistry

// Config configures a Client. The zero Config pulls anonymously over https
// (plain HTTP for loopback registries) for the running platform.
type Config struct {
	// Mirrors maps a registry domain as in ref.Ref.Domain ("docker.io",
	// "quay.io") to mirror endpoints, tried in order before the registry
	// itself: "host:port", or with a scheme ("https://host:port") to
	// pin it, optionally with a path prefix prepended to repositories
	// ("https://mirror.example/hub" serves docker.io's library/busybox as
	// hub/library/busybox). Pushes never go to mirrors.
	Mirrors map[string][]string
	// Insecure lists registries ("host:port", "host" for any port, or a
	// CIDR) that may be reached over plain HTTP or TLS without certificate
	// verification. Loopback registries always may.
	Insecure []string
	// AuthFiles are credential files searched in order, the first with an
	// entry for the registry winning: podman's auth.json and docker's
	// config.json format ("auths" with base64 "auth" or
	// "username"/"password"). Credential helpers are not run.
	// DefaultAuthFiles returns the usual list.
	AuthFiles []string
	// UserAgent is sent with every request when set.
	UserAgent string
	// Platform selects the manifest from an index; zero means
	// DefaultPlatform().
	Platform v1.Platform
}

// Client talks to registries. It is safe for concurrent use and caches one
// authenticated transport per endpoint, repository and access level, so
// tokens are fetched once per pull rather than once per blob.
type Client struct {
	cfg      Config
	platform v1.Platform
	insecure []insecureEntry

	// secureRT verifies certificates; insecureRT does not (Insecure and
	// loopback hosts only). policy routes between them and refuses plain
	// HTTP to hosts that may not have it.
	secureRT, insecureRT http.RoundTripper
	policy               http.RoundTripper

	mu       sync.Mutex
	sessions map[sessionKey]*session
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	return newClient(cfg, nil)
}

// newClient lets tests adjust the base transports (dialer, trusted CAs).
func newClient(cfg Config, tweak func(*http.Transport)) *Client {
	c := &Client{
		cfg:      cfg,
		sessions: map[sessionKey]*session{},
	}
	// Fill what the caller left out from the running platform.
	p, def := cfg.Platform, DefaultPlatform()
	if p.OS == "" {
		p.OS = def.OS
	}
	if p.Architecture == "" {
		p.Architecture, p.Variant = def.Architecture, def.Variant
	}
	c.platform = normalizePlatform(p)
	for _, s := range cfg.Insecure {
		if e, ok := parseInsecure(s); ok {
			c.insecure = append(c.insecure, e)
		}
	}
	mk := func(skipVerify bool) *http.Transport {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// skipVerify is only ever used for Insecure and loopback hosts:
		// policyTransport picks the transport per request.
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}
		if tweak != nil {
			tweak(t)
		}
		return t
	}
	c.secureRT, c.insecureRT = mk(false), mk(true)
	c.policy = &policyTransport{c: c}
	return c
}

// DefaultPlatform is the platform this binary runs on, with the ARM variant
// it was built for.
func DefaultPlatform() v1.Platform {
	p := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		p.Variant = "v7"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" && s.Value != "" {
					// "7" or "7,softfloat"
					p.Variant = "v" + strings.SplitN(s.Value, ",", 2)[0]
				}
			}
		}
	}
	return p
}

// insecureEntry is one Config.Insecure item.
type insecureEntry struct {
	hostport string // "host:port" or "host" (any port)
	cidr     *net.IPNet
}

func parseInsecure(s string) (insecureEntry, bool) {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		return insecureEntry{}, false
	}
	if _, n, err := net.ParseCIDR(s); err == nil {
		return insecureEntry{cidr: n}, true
	}
	return insecureEntry{hostport: strings.ToLower(s)}, true
}

// splitHost returns the host of "host", "host:port", "[v6]" or "[v6]:port".
func splitHost(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

func hasPort(hostport string) bool {
	_, _, err := net.SplitHostPort(hostport)
	return err == nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// relaxed reports whether hostport may be reached over plain HTTP or
// unverified TLS: loopback, or listed in Config.Insecure.
func (c *Client) relaxed(hostport string) bool {
	host := splitHost(hostport)
	if isLoopback(host) {
		return true
	}
	lhp, lh := strings.ToLower(hostport), strings.ToLower(host)
	ip := net.ParseIP(host)
	for _, e := range c.insecure {
		switch {
		case e.cidr != nil:
			if ip != nil && e.cidr.Contains(ip) {
				return true
			}
		case e.hostport == lhp:
			return true
		case !hasPort(e.hostport) && strings.Trim(e.hostport, "[]") == lh:
			// An entry without a port covers every port of the host.
			return true
		}
	}
	return false
}

// policyTransport is the bottom of every request this package makes,
// including go-containerregistry's pings, token fetches, redirects and
// uploads: whatever builds the URL, plain HTTP only reaches relaxed hosts.
type policyTransport struct{ c *Client }

func (p *policyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	relaxed := p.c.relaxed(req.URL.Host)
	switch req.URL.Scheme {
	case "https":
	case "http":
		if !relaxed {
			closeBody(req)
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), ErrPlainHTTP)
		}
	default:
		closeBody(req)
		return nil, fmt.Errorf("%s %s: unsupported URL scheme %q", req.Method, req.URL.Redacted(), req.URL.Scheme)
	}
	if ua := p.c.cfg.UserAgent; ua != "" {
		// A RoundTripper must not modify the caller's request.
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", ua)
	}
	if relaxed {
		return p.c.insecureRT.RoundTrip(req)
	}
	return p.c.secureRT.RoundTrip(req)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// schemeTransport sends requests for one host with the scheme its ping
// found. go-containerregistry builds upload URLs from name.Registry.Scheme,
// which guesses "http" for every RFC 1918 address; this keeps such a
// registry on https unless it is relaxed and only speaks HTTP.
type schemeTransport struct {
	host, scheme string
	allow        string // when set, the only scheme permitted for host (pinned mirror scheme)
	inner        http.RoundTripper
}

func (s *schemeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == s.host {
		if s.allow != "" && req.URL.Scheme != s.allow {
			closeBody(req)
			return nil, fmt.Errorf("%s %s: endpoint is configured for %s only", req.Method, req.URL.Redacted(), s.allow)
		}
		if s.scheme != "" && req.URL.Scheme != s.scheme {
			req = req.Clone(req.Context())
			req.URL.Scheme = s.scheme
		}
	}
	return s.inner.RoundTrip(req)
}

// endpoint is one place a registry's content can be fetched from.
type endpoint struct {
	host   string // as dialled: "index.docker.io", "127.0.0.1:5001"
	prefix string // mirror path prefix, "" for none
	scheme string // "https"/"http" when the mirror config pins one
	mirror bool
	raw    string // as configured, for messages
	err    error  // configuration error, reported as this endpoint's failure
}

func (e endpoint) String() string {
	if e.mirror {
		return "mirror " + e.raw
	}
	return "registry " + e.host
}

// repo is the repository path of r on this endpoint.
func (e endpoint) repo(r ref.Ref) string {
	if e.prefix == "" {
		return r.Repository()
	}
	return e.prefix + "/" + r.Repository()
}

// registryHost is the host serving domain's API.
func registryHost(domain string) string {
	if domain == ref.DefaultDomain {
		return dockerHubHost
	}
	return domain
}

// endpoints lists where to look for domain's content: its mirrors in
// order, then the registry.
func (c *Client) endpoints(domain string) []endpoint {
	var raws []string
	keys := []string{domain}
	if domain == ref.DefaultDomain {
		keys = append(keys, "index.docker.io", "registry-1.docker.io")
	}
	for _, k := range keys {
		raws = append(raws, c.cfg.Mirrors[k]...)
	}
	eps := make([]endpoint, 0, len(raws)+1)
	for _, raw := range raws {
		eps = append(eps, c.parseMirror(raw))
	}
	return append(eps, endpoint{host: registryHost(domain), raw: domain})
}

func (c *Client) parseMirror(raw string) endpoint {
	ep := endpoint{mirror: true, raw: strings.TrimSpace(raw)}
	rest := ep.raw
	if scheme, after, ok := strings.Cut(rest, "://"); ok {
		ep.scheme, rest = strings.ToLower(scheme), after
		if ep.scheme != "http" && ep.scheme != "https" {
			ep.err = fmt.Errorf("invalid mirror %q: scheme must be http or https", raw)
			return ep
		}
	}
	host, prefix, _ := strings.Cut(rest, "/")
	ep.host, ep.prefix = host, strings.Trim(prefix, "/")
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil || host == "" {
		ep.err = fmt.Errorf("invalid mirror %q: bad host %q", raw, host)
		return ep
	}
	if ep.prefix != "" {
		if _, err := ref.Parse(ep.host + "/" + ep.prefix); err != nil || strings.Contains(ep.prefix, "..") {
			ep.err = fmt.Errorf("invalid mirror %q: bad path prefix %q", raw, ep.prefix)
			return ep
		}
	}
	if ep.scheme == "http" && !c.relaxed(host) {
		ep.err = fmt.Errorf("mirror %q: %w", raw, ErrPlainHTTP)
	}
	return ep
}

// tryEndpoints runs fn on each endpoint until one succeeds. Mirror failures
// of any kind fall through to the next endpoint (content from the next one
// is verified on its own); cancellation stops at once. When every endpoint
// fails the error lists them all; with no mirrors it is the registry's own.
func tryEndpoints(ctx context.Context, op string, r ref.Ref, eps []endpoint, fn func(endpoint) error) error {
	var attempts []Attempt
	for _, ep := range eps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s %s: %w", op, r, err)
		}
		err := ep.err
		if err == nil {
			err = fn(ep)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		attempts = append(attempts, Attempt{Endpoint: ep.String(), Err: err})
	}
	if len(attempts) == 1 {
		return attempts[0].Err
	}
	return &EndpointsError{Op: op, Ref: r.String(), Attempts: attempts}
}

// session is an authenticated way to talk to one endpoint about one
// repository.
type session struct {
	scheme    string            // "https" or "http", as the ping found
	rt        http.RoundTripper // a *transport.Wrapper, so remote.Write uses it as is
	client    *http.Client
	anonymous bool // no credentials were found: a hint for 401s
}

// credentialsKey is the context key of WithCredentials.
type credentialsKey struct{}

// WithCredentials returns a context whose registry operations authenticate
// to the image's own registry (not its mirrors) with cfg instead of the
// auth files: the credentials a CRI client sends with each pull.
func WithCredentials(ctx context.Context, cfg authn.AuthConfig) context.Context {
	return context.WithValue(ctx, credentialsKey{}, cfg)
}

type sessionKey struct {
	host, repo string
	push       bool
	// The credentials are part of the key so that a login (or a changed
	// auth file) takes effect in a long-running process: the next
	// operation makes a new session instead of reusing an anonymous one.
	cred authn.AuthConfig
}

// maxSessions bounds the cache in long-running processes (the CRI server);
// sessions are cheap to rebuild.
const maxSessions = 256

// session returns the cached session for ep and repo, creating it (ping,
// then token exchange when the registry asks for one) on first use.
func (c *Client) session(ctx context.Context, ep endpoint, repo string, push bool) (*session, error) {
	cred, found, err := c.credentials(ep.host, repo)
	if err != nil {
		return nil, err
	}
	if given, ok := ctx.Value(credentialsKey{}).(authn.AuthConfig); ok && !ep.mirror {
		// The caller's credentials are for the image's own registry; a
		// mirror keeps those of the auth files.
		cred, found = given, true
	}
	key := sessionKey{ep.host + "|" + ep.scheme, repo, push, cred}
	c.mu.Lock()
	s := c.sessions[key]
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	auth := authn.Anonymous
	if found {
		auth = authn.FromConfig(cred)
	}
	action := transport.PullScope
	if push {
		action = transport.PushScope
	}
	scope := "repository:" + repo + ":" + action
	s, err = c.newSession(ctx, ep.host, ep.scheme, auth, []string{scope})
	if err != nil {
		if !found && errors.Is(err, ErrUnauthorized) {
			err = fmt.Errorf("%w (no credentials for this registry in the auth files)", err)
		}
		return nil, err
	}
	s.anonymous = !found
	c.mu.Lock()
	if prev := c.sessions[key]; prev != nil {
		s = prev // a concurrent caller won; either works
	} else {
		if len(c.sessions) >= maxSessions {
			clear(c.sessions)
		}
		c.sessions[key] = s
	}
	c.mu.Unlock()
	return s, nil
}

// newSession pings host and sets up its auth: nothing for open registries,
// basic auth on every request for a Basic challenge, a bearer token for the
// scopes for a Bearer challenge.
func (c *Client) newSession(ctx context.Context, host, pinned string, auth authn.Authenticator, scopes []string) (*session, error) {
	var opts []name.Option
	if c.relaxed(host) && pinned != "https" {
		// Makes go-containerregistry's ping try plain HTTP after https.
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", host, err)
	}
	pingRT := &schemeTransport{host: host, allow: pinned, inner: c.policy}
	ch, err := transport.Ping(ctx, reg, pingRT)
	if err != nil {
		if !c.relaxed(host) && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			err = fmt.Errorf("%w (plain HTTP is used only for loopback registries and those listed as insecure)", err)
		}
		return nil, fmt.Errorf("ping %s: %w", host, classify(err))
	}
	scheme := "https"
	if ch.Insecure {
		scheme = "http"
	}
	fixed := &schemeTransport{host: host, scheme: scheme, allow: pinned, inner: c.policy}
	var rt http.RoundTripper
	switch strings.ToLower(ch.Scheme) {
	case "bearer":
		tok, err := transport.Exchange(ctx, reg, auth, fixed, scopes, ch)
		if err != nil {
			return nil, fmt.Errorf("token for %s (%s): %w", host, strings.Join(scopes, " "), classify(err))
		}
		if rt, err = transport.FromToken(reg, auth, fixed, ch, tok); err != nil {
			return nil, fmt.Errorf("token for %s: %w", host, err)
		}
	case "basic", "":
		if rt, err = transport.FromToken(reg, auth, fixed, ch, nil); err != nil {
			return nil, fmt.Errorf("auth for %s: %w", host, err)
		}
	default:
		return nil, fmt.Errorf("registry %s asks for unsupported auth scheme %q", host, ch.Scheme)
	}
	return &session{
		scheme: scheme,
		rt:     rt,
		client: &http.Client{Transport: rt, CheckRedirect: checkRedirect},
	}, nil
}

// checkRedirect follows at most 10 redirects and refuses one from a public
// host to a private, loopback or link-local address (a registry steering
// the client at internal services or cloud metadata endpoints). Scheme
// policy is enforced below, by policyTransport, for redirects too.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	from, to := via[0].URL.Hostname(), req.URL.Hostname()
	if from == to || internalAddr(from) {
		return nil
	}
	if internalAddr(to) {
		return fmt.Errorf("refusing redirect from %s to internal address %s", from, to)
	}
	return nil
}

func internalAddr(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsUnspecified())
}

// classify wraps go-containerregistry's HTTP errors with this package's
// sentinels (ErrUnauthorized, ErrNotFound) so callers need not know its
// types.
func classify(err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	switch te.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// statusError turns a non-success response into an error, reading at most
// a bounded part of its body.
func (s *session) statusError(resp *http.Response) error {
	err := classify(transport.CheckError(resp))
	if errors.Is(err, ErrUnauthorized) && s.anonymous {
		err = fmt.Errorf("%w (no credentials for this registry in the auth files)", err)
	}
	return err
}

// where names a manifest or blob for messages: "host/repo@sha256:..." or
// "host/repo:tag".
func where(host, repo, ident string) string {
	if strings.Contains(ident, ":") {
		return path.Join(host, repo) + "@" + ident
	}
	return path.Join(host, repo) + ":" + ident
}
