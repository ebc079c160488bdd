package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hull-runtime/hull/image/ref"
)

// Resolved is what a reference points at, verified: the image manifest for
// the client's platform and, when the reference named an index, the index.
type Resolved struct {
	// Ref is the reference resolved, with the digest of what it points at
	// (the index's when there is one, as docker reports it).
	Ref ref.Ref
	// Endpoint is where the manifests came from: "mirror ..." or
	// "registry ...". Blobs may be fetched from the same place first.
	Endpoint string

	Manifest     []byte        // the image manifest, as served
	ManifestDesc v1.Descriptor // its media type, size and digest; platform when picked from an index
	Config       v1.Descriptor
	Layers       []v1.Descriptor

	Index     []byte         // the index, nil when the ref named an image manifest
	IndexDesc *v1.Descriptor // its descriptor, nil likewise
}

// Resolve fetches and verifies the manifest r names, from the mirrors of
// r's registry first, then the registry. An index is resolved to the entry
// for the client's platform (ErrNoMatchingPlatform, listing what there is,
// if none fits), whose manifest is fetched by digest and checked against
// the entry.
func (c *Client) Resolve(ctx context.Context, r ref.Ref) (*Resolved, error) {
	if r.Domain() == "" {
		return nil, errors.New("resolve: empty reference")
	}
	var res *Resolved
	err := tryEndpoints(ctx, "resolve", r, c.endpoints(r.Domain()), func(ep endpoint) error {
		var err error
		res, err = c.resolveAt(ctx, ep, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (c *Client) resolveAt(ctx context.Context, ep endpoint, r ref.Ref) (*Resolved, error) {
	repo := ep.repo(r)
	ident, want := r.Tag(), expect{}
	if r.Digest() != "" {
		// The digest identifies the content; a tag next to it is a label.
		h, err := v1.NewHash(r.Digest())
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", r, err)
		}
		ident, want.digest = r.Digest(), &h
	}
	s, err := c.session(ctx, ep, repo, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where(ep.host, repo, ident), err)
	}
	top, err := c.fetchManifest(ctx, s, ep.host, repo, ident, want)
	if err != nil {
		return nil, err
	}
	res := &Resolved{Ref: r.WithDigest(top.desc.Digest.String()), Endpoint: ep.String()}
	m := top
	if top.index != nil {
		d, err := pickPlatform(top.index, c.platform)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", where(ep.host, repo, top.desc.Digest.String()), err)
		}
		m, err = c.fetchManifest(ctx, s, ep.host, repo, d.Digest.String(),
			expect{digest: &d.Digest, size: d.Size, mediaType: d.MediaType})
		if err != nil {
			return nil, err
		}
		if m.manifest == nil {
			return nil, fmt.Errorf("manifest %s: %w: nested indexes are not supported", where(ep.host, repo, d.Digest.String()), ErrInvalidManifest)
		}
		m.desc.Platform, m.desc.Annotations = d.Platform, d.Annotations
		idxDesc := top.desc
		res.Index, res.IndexDesc = top.raw, &idxDesc
	}
	res.Manifest, res.ManifestDesc = m.raw, m.desc
	res.Config, res.Layers = m.manifest.Config, m.manifest.Layers
	return res, nil
}

// FetchBlob streams blob d of r's repository, from r's mirrors first, then
// the registry. With offset > 0 it asks for the rest of the blob with an
// HTTP Range request; resumed reports whether the registry honoured it.
// When it did not, the stream starts at byte 0 and the caller must start
// over. The content is not verified here: the caller (the content store)
// checks size and digest as it writes. Reading the stream honours ctx.
func (c *Client) FetchBlob(ctx context.Context, r ref.Ref, d v1.Descriptor, offset int64) (rc io.ReadCloser, resumed bool, err error) {
	if r.Domain() == "" {
		return nil, false, errors.New("fetch blob: empty reference")
	}
	// The digest goes into the URL path: only well-formed ones.
	if err := ref.ValidateDigest(d.Digest.String()); err != nil {
		return nil, false, fmt.Errorf("fetch blob from %s: %w", r, err)
	}
	if offset < 0 || (d.Size > 0 && offset >= d.Size) {
		return nil, false, fmt.Errorf("fetch blob %s from %s: offset %d outside the blob's %d bytes", d.Digest, r, offset, d.Size)
	}
	err = tryEndpoints(ctx, "fetch blob "+d.Digest.String()+" from", r, c.endpoints(r.Domain()), func(ep endpoint) error {
		var err error
		rc, resumed, err = c.fetchBlobAt(ctx, ep, r, d, offset)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return rc, resumed, nil
}

func (c *Client) fetchBlobAt(ctx context.Context, ep endpoint, r ref.Ref, d v1.Descriptor, offset int64) (io.ReadCloser, bool, error) {
	repo := ep.repo(r)
	at := "blob " + where(ep.host, repo, d.Digest.String())
	s, err := c.session(ctx, ep, repo, false)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", at, err)
	}
	u := url.URL{Scheme: s.scheme, Host: ep.host, Path: "/v2/" + repo + "/blobs/" + d.Digest.String()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", at, err)
	}
	if offset > 0 {
		// A closed range when the size is known: some servers (including
		// go-containerregistry's test registry) do not parse open ones.
		rng := "bytes=" + strconv.FormatInt(offset, 10) + "-"
		if d.Size > 0 {
			rng += strconv.FormatInt(d.Size-1, 10)
		}
		req.Header.Set("Range", rng)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", at, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp.Body, false, nil
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		// Data that does not start where asked would be appended at the
		// wrong place; refuse it rather than let the digest check fail late.
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			_ = resp.Body.Close()
			return nil, false, fmt.Errorf("%s: asked for bytes from %d, got Content-Range %q", at, offset, resp.Header.Get("Content-Range"))
		}
		return resp.Body, true, nil
	default:
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusPartialContent {
			return nil, false, fmt.Errorf("%s: partial content (%s) without a Range request", at, resp.Header.Get("Content-Range"))
		}
		return nil, false, fmt.Errorf("%s: %w", at, s.statusError(resp))
	}
}

// contentRangeStart parses the first byte of "bytes START-END/TOTAL".
func contentRangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

// Push uploads img (its layers, config and manifest) to r's registry, never
// to a mirror, and tags it with r's tag; when r has a digest, img's must be
// the same.
func (c *Client) Push(ctx context.Context, r ref.Ref, img v1.Image) error {
	return c.push(ctx, r, img, func(target name.Reference, opts ...remote.Option) error {
		return remote.Write(target, img, opts...)
	})
}

// PushIndex uploads an index and every image it lists, as Push does.
func (c *Client) PushIndex(ctx context.Context, r ref.Ref, idx v1.ImageIndex) error {
	return c.push(ctx, r, idx, func(target name.Reference, opts ...remote.Option) error {
		return remote.WriteIndex(target, idx, opts...)
	})
}

// digester is what v1.Image and v1.ImageIndex have in common here.
type digester interface{ Digest() (v1.Hash, error) }

func (c *Client) push(ctx context.Context, r ref.Ref, t digester, write func(name.Reference, ...remote.Option) error) error {
	if r.Domain() == "" {
		return errors.New("push: empty reference")
	}
	host, repo := registryHost(r.Domain()), r.Repository()
	dig, err := t.Digest()
	if err != nil {
		return fmt.Errorf("push %s: %w", r, err)
	}
	if r.Digest() != "" && dig.String() != r.Digest() {
		return fmt.Errorf("push %s: %w: the image is %s", r, ErrDigestMismatch, dig)
	}
	ep := endpoint{host: host, raw: r.Domain()}
	s, err := c.session(ctx, ep, repo, true)
	if err != nil {
		return fmt.Errorf("push %s: %w", where(host, repo, dig.String()), err)
	}
	reg, err := name.NewRegistry(host)
	if err != nil {
		return fmt.Errorf("push %s: %w", r, err)
	}
	var target name.Reference = reg.Repo(repo).Digest(dig.String())
	if r.Tag() != "" {
		target = reg.Repo(repo).Tag(r.Tag())
	}
	// s.rt is a transport.Wrapper: remote uses it as it is, without a
	// second ping, its own retries or logging.
	if err := write(target, remote.WithContext(ctx), remote.WithTransport(s.rt)); err != nil {
		return fmt.Errorf("push %s (%s): %w", where(host, repo, target.Identifier()), dig, classify(err))
	}
	return nil
}
