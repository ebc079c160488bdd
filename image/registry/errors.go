package registry

import (
	"errors"
	"fmt"
	"strings"
)

// Errors that callers can test with errors.Is. Returned errors wrap them
// with the registry, repository and digest or tag involved.
var (
	// ErrDigestMismatch: content does not have the digest it was asked
	// for or advertised with (the ref's digest, an index entry's digest,
	// or the Docker-Content-Digest header).
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrInvalidManifest: a manifest that is malformed, ambiguous (both an
	// image manifest and an index, CVE-2021-41190), of an unsupported media
	// type, or whose content disagrees with its declared media type.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrManifestTooLarge: a manifest larger than MaxManifestSize.
	ErrManifestTooLarge = errors.New("manifest too large")
	// ErrSchema1: a Docker schema 1 manifest, which is deprecated, unsigned
	// in practice, and not content-addressable the way schema 2 is.
	ErrSchema1 = errors.New("docker schema 1 manifests are not supported; push the image again with a current docker, podman or buildah to get a schema 2 or OCI manifest")
	// ErrNoMatchingPlatform: an index with no manifest for Config.Platform.
	ErrNoMatchingPlatform = errors.New("no manifest for the platform")
	// ErrNotFound: the registry answered 404 for a manifest or blob.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the registry or its token service refused the
	// credentials (or demanded some and none were configured).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrPlainHTTP: a plain-HTTP request to a host that is neither loopback
	// nor listed in Config.Insecure was refused.
	ErrPlainHTTP = errors.New("plain HTTP refused: the host is neither loopback nor listed as an insecure registry")
	// ErrNotLoggedIn: Logout found no credentials for the registry.
	ErrNotLoggedIn = errors.New("not logged in")
)

// Attempt is one endpoint tried by an operation and why it failed.
type Attempt struct {
	Endpoint string // "mirror 127.0.0.1:5001", "registry index.docker.io"
	Err      error
}

// EndpointsError reports that every endpoint of a registry (its mirrors,
// then the registry itself) failed, with each endpoint's error.
type EndpointsError struct {
	Op       string // "resolve", "fetch blob sha256:..."
	Ref      string
	Attempts []Attempt
}

// Error implements error, listing each endpoint with its failure.
func (e *EndpointsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: all %d endpoints failed", e.Op, e.Ref, len(e.Attempts))
	for i, a := range e.Attempts {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", a.Endpoint, a.Err)
	}
	return b.String()
}

// Unwrap returns every attempt's error, so errors.Is finds a cause in any.
func (e *EndpointsError) Unwrap() []error {
	errs := make([]error, len(e.Attempts))
	for i, a := range e.Attempts {
		errs[i] = a.Err
	}
	return errs
}
