package ref

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

const (
	dgst    = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	dgst512 = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)

func TestParseNormalisesLikeDocker(t *testing.T) {
	for _, tc := range []struct {
		in                     string
		str, familiar          string
		domain, repo, tag, dig string
	}{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", "latest", ""},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", "docker.io", "library/busybox", "1.36", ""},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", "latest", ""},
		{"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", "latest", ""},
		{"index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", "latest", ""},
		{"docker.io/library/foo/bar", "docker.io/library/foo/bar:latest", "library/foo/bar:latest", "docker.io", "library/foo/bar", "latest", ""},
		{"user/app:v1", "docker.io/user/app:v1", "user/app:v1", "docker.io", "user/app", "v1", ""},
		{"myreg:5000/x:1", "myreg:5000/x:1", "myreg:5000/x:1", "myreg:5000", "x", "1", ""},
		{"127.0.0.1:5077/x/y:1", "127.0.0.1:5077/x/y:1", "127.0.0.1:5077/x/y:1", "127.0.0.1:5077", "x/y", "1", ""},
		{"localhost/foo", "localhost/foo:latest", "localhost/foo:latest", "localhost", "foo", "latest", ""},
		{"localhost:5000/foo", "localhost:5000/foo:latest", "localhost:5000/foo:latest", "localhost:5000", "foo", "latest", ""},
		{"[::1]:5000/foo:bar", "[::1]:5000/foo:bar", "[::1]:5000/foo:bar", "[::1]:5000", "foo", "bar", ""},
		{"quay.io/ns/sub/repo_x.y-z__w", "quay.io/ns/sub/repo_x.y-z__w:latest", "quay.io/ns/sub/repo_x.y-z__w:latest", "quay.io", "ns/sub/repo_x.y-z__w", "latest", ""},
		{"a/b@" + dgst, "docker.io/a/b@" + dgst, "a/b@" + dgst, "docker.io", "a/b", "", dgst},
		{"a:tag@" + dgst, "docker.io/library/a:tag@" + dgst, "a:tag@" + dgst, "docker.io", "library/a", "tag", dgst},
		{"reg.example.com:443/a@" + dgst512, "reg.example.com:443/a@" + dgst512, "reg.example.com:443/a@" + dgst512, "reg.example.com:443", "a", "", dgst512},
		// A port-looking suffix without a domain is a tag, as in docker.
		{"localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "docker.io", "library/localhost", "5000", ""},
	} {
		r, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		got := [6]string{r.String(), r.Familiar(), r.Domain(), r.Repository(), r.Tag(), r.Digest()}
		want := [6]string{tc.str, tc.familiar, tc.domain, tc.repo, tc.tag, tc.dig}
		if got != want {
			t.Errorf("Parse(%q) = %q, want %q", tc.in, got, want)
		}
		// Both printed forms parse back to the same reference.
		for _, s := range []string{r.String(), r.Familiar()} {
			if back, err := Parse(s); err != nil || back != r {
				t.Errorf("Parse(%q) round trip via %q = %+v, %v; want %+v", tc.in, s, back, err, r)
			}
		}
	}
}

func TestParseErrorsNameInputAndReason(t *testing.T) {
	long := strings.Repeat("a", 250)
	for _, tc := range []struct{ in, reason string }{
		{"", "empty"},
		{"Busybox", "must be lowercase"},
		{"quay.io/Org/Repo:1", "must be lowercase"},
		{"a/b@sha256:abc", "needs 64 hex digits"},
		{"a/b@sha256:" + strings.ToUpper(dgst[7:]), "not lowercase hex"},
		{"a/b@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm"},
		{"a/b@" + dgst + "@" + dgst, "invalid digest"},
		{"a/b:", "empty tag"},
		{"a/b:-x", "invalid tag"},
		{"a/b:" + strings.Repeat("t", 129), "more than 128"},
		{"a//b", "empty path component"},
		{"a/b/", "empty path component"},
		{"-a/b", "invalid path component"},
		{"a..b", "invalid path component"},
		{"a/b$c", "invalid path component"},
		{"https://reg.example.com/a/b", "no URL scheme"},
		{"reg.example.com:99999/a", "invalid port"},
		{"reg.example.com:/a", "invalid port"},
		{"-bad.example.com/a", "invalid host name label"},
		{"[::1/a", "unclosed"},
		{"[127.0.0.1]:5000/a", "not an IPv6 address"},
		{":tag", "missing repository"},
		{" busybox", "whitespace"},
		{"reg.example.com/" + long, "more than 255"},
	} {
		_, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error containing %q", tc.in, tc.reason)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Input != tc.in {
			t.Errorf("Parse(%q) error %v (%T) is not a *ParseError naming the input", tc.in, err, err)
		}
		if !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), tc.in) {
			t.Errorf("Parse(%q) error %q does not name the input and %q", tc.in, err, tc.reason)
		}
	}
}

func TestNameMapsToGoContainerRegistry(t *testing.T) {
	for _, tc := range []struct {
		in                    string
		registry, repo, ident string
		isDigest              bool
	}{
		{"busybox", "index.docker.io", "library/busybox", "latest", false},
		{"127.0.0.1:5077/x/y:1", "127.0.0.1:5077", "x/y", "1", false},
		{"a/b@" + dgst, "index.docker.io", "a/b", dgst, true},
		// The digest is what identifies content, so a tag+digest ref becomes a Digest.
		{"myreg:5000/a:tag@" + dgst, "myreg:5000", "a", dgst, true},
	} {
		r, err := Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		n := r.Name()
		if n == nil {
			t.Fatalf("Name(%q) = nil", tc.in)
		}
		_, isDigest := n.(name.Digest)
		if n.Context().RegistryStr() != tc.registry || n.Context().RepositoryStr() != tc.repo || n.Identifier() != tc.ident || isDigest != tc.isDigest {
			t.Errorf("Name(%q) = %s %s %s digest=%v, want %s %s %s digest=%v", tc.in,
				n.Context().RegistryStr(), n.Context().RepositoryStr(), n.Identifier(), isDigest,
				tc.registry, tc.repo, tc.ident, tc.isDigest)
		}
		// go-containerregistry's own parser must accept what we hand it.
		if _, err := name.ParseReference(n.Name()); err != nil {
			t.Errorf("Name(%q).Name() = %q does not parse in go-containerregistry: %v", tc.in, n.Name(), err)
		}
	}
	if (Ref{}).Name() != nil {
		t.Error("zero Ref has a Name")
	}
}

func TestWithDigestKeepsTag(t *testing.T) {
	r, err := Parse("127.0.0.1:5077/x/y:1")
	if err != nil {
		t.Fatal(err)
	}
	d := r.WithDigest(dgst)
	if d.Tag() != "1" || d.Digest() != dgst || d.String() != "127.0.0.1:5077/x/y:1@"+dgst {
		t.Errorf("WithDigest = %s (tag %q digest %q)", d, d.Tag(), d.Digest())
	}
	if r.Digest() != "" {
		t.Error("WithDigest modified its receiver")
	}
	if back, err := Parse(d.String()); err != nil || back != d {
		t.Errorf("Parse(%q) = %+v, %v", d.String(), back, err)
	}
}

func TestValidateDigest(t *testing.T) {
	if err := ValidateDigest(dgst); err != nil {
		t.Error(err)
	}
	if err := ValidateDigest(dgst512); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "sha256", "sha256:", ":" + dgst[7:], "sha256:../../etc/passwd", "SHA256:" + dgst[7:]} {
		if ValidateDigest(bad) == nil {
			t.Errorf("ValidateDigest(%q) accepted", bad)
		}
	}
}
