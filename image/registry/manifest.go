package registry

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// acceptManifests is what Resolve asks for: schema 2 and OCI manifests and
// indexes. Schema 1 is left out so registries that can convert do; ones that
// cannot and send it anyway are refused with ErrSchema1.
var acceptManifests = strings.Join([]string{
	string(types.OCIImageIndex),
	string(types.DockerManifestList),
	string(types.OCIManifestSchema1),
	string(types.DockerManifestSchema2),
}, ", ")

// expect is what the caller already knows about a manifest it fetches.
type expect struct {
	digest    *v1.Hash        // from the ref or the index entry
	size      int64           // from the index entry, 0 if unknown
	mediaType types.MediaType // from the index entry, "" if unknown
}

// fetched is a manifest that passed every check.
type fetched struct {
	raw      []byte
	desc     v1.Descriptor
	manifest *v1.Manifest      // set for image manifests
	index    *v1.IndexManifest // set for indexes
}

// fetchManifest GETs /v2/<repo>/manifests/<ident> and verifies it: size
// bound before reading, digest against want and against the
// Docker-Content-Digest header, media type against the header, the body and
// the index entry, structure against the media type.
func (c *Client) fetchManifest(ctx context.Context, s *session, host, repo, ident string, want expect) (*fetched, error) {
	at := "manifest " + where(host, repo, ident)
	if want.size > MaxManifestSize {
		return nil, fmt.Errorf("%s: %w: the index entry declares %d bytes, the limit is %d", at, ErrManifestTooLarge, want.size, MaxManifestSize)
	}
	u := url.URL{Scheme: s.scheme, Host: host, Path: "/v2/" + repo + "/manifests/" + ident}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	req.Header.Set("Accept", acceptManifests)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %w", at, s.statusError(resp))
	}
	if resp.ContentLength > MaxManifestSize {
		return nil, fmt.Errorf("%s: %w: Content-Length %d, the limit is %d", at, ErrManifestTooLarge, resp.ContentLength, MaxManifestSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading: %w", at, err)
	}
	if len(body) > MaxManifestSize {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", at, ErrManifestTooLarge, MaxManifestSize)
	}

	algo := "sha256"
	if want.digest != nil {
		algo = want.digest.Algorithm
	}
	got, err := digestOf(algo, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	if want.digest != nil && got != *want.digest {
		return nil, fmt.Errorf("%s: %w: requested %s, the registry sent content with digest %s", at, ErrDigestMismatch, want.digest, got)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		hdr, err := v1.NewHash(h)
		if err != nil {
			return nil, fmt.Errorf("%s: invalid Docker-Content-Digest header %q: %w", at, h, err)
		}
		actual, err := digestOf(hdr.Algorithm, body)
		if err != nil {
			return nil, fmt.Errorf("%s: Docker-Content-Digest %q: %w", at, h, err)
		}
		if actual != hdr {
			return nil, fmt.Errorf("%s: %w: Docker-Content-Digest header says %s, the content is %s", at, ErrDigestMismatch, hdr, actual)
		}
	}
	if want.size > 0 && int64(len(body)) != want.size {
		return nil, fmt.Errorf("%s: %w: the index entry declares %d bytes, the manifest has %d", at, ErrInvalidManifest, want.size, len(body))
	}

	mt, err := manifestMediaType(resp.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	if want.mediaType != "" && mt != want.mediaType {
		return nil, fmt.Errorf("%s: %w: the index entry declares media type %s, the manifest is %s", at, ErrInvalidManifest, want.mediaType, mt)
	}
	f := &fetched{raw: body, desc: v1.Descriptor{MediaType: mt, Size: int64(len(body)), Digest: got}}
	if mt.IsIndex() {
		f.index, err = v1.ParseIndexManifest(bytes.NewReader(body))
	} else {
		f.manifest, err = v1.ParseManifest(bytes.NewReader(body))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", at, ErrInvalidManifest, err)
	}
	if err := checkDescriptors(f); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", at, ErrInvalidManifest, err)
	}
	return f, nil
}

func digestOf(algo string, b []byte) (v1.Hash, error) {
	h, err := v1.Hasher(algo)
	if err != nil {
		return v1.Hash{}, err
	}
	h.Write(b)
	return v1.Hash{Algorithm: algo, Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// present reports whether a JSON field was given and is not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// manifestMediaType decides what a manifest body is and checks that its
// Content-Type header, its own mediaType field and its structure agree.
// An ambiguous document (image manifest fields and index fields together)
// could be read as different things by different tools, which is how
// CVE-2021-41190 let one digest mean two images; it is refused outright.
func manifestMediaType(contentType string, body []byte) (types.MediaType, error) {
	ct := strings.TrimSpace(contentType)
	if parsed, _, err := mime.ParseMediaType(ct); err == nil {
		ct = parsed
	}
	var probe struct {
		SchemaVersion *int            `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Config        json.RawMessage `json:"config"`
		Layers        json.RawMessage `json:"layers"`
		Manifests     json.RawMessage `json:"manifests"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		if types.MediaType(ct).IsSchema1() {
			return "", ErrSchema1
		}
		return "", fmt.Errorf("%w: not a JSON object: %w", ErrInvalidManifest, err)
	}
	if types.MediaType(ct).IsSchema1() || types.MediaType(probe.MediaType).IsSchema1() ||
		present(probe.FSLayers) || (probe.SchemaVersion != nil && *probe.SchemaVersion == 1) {
		return "", ErrSchema1
	}
	if probe.SchemaVersion == nil || *probe.SchemaVersion != 2 {
		v := "missing"
		if probe.SchemaVersion != nil {
			v = strconv.Itoa(*probe.SchemaVersion)
		}
		return "", fmt.Errorf("%w: schemaVersion %s, want 2", ErrInvalidManifest, v)
	}
	isManifest := present(probe.Config) || present(probe.Layers)
	isIndex := present(probe.Manifests)
	if isManifest && isIndex {
		return "", fmt.Errorf("%w: ambiguous document with both image manifest fields (config/layers) and index fields (manifests) (CVE-2021-41190)", ErrInvalidManifest)
	}
	if probe.MediaType != "" && ct != "" && probe.MediaType != ct {
		return "", fmt.Errorf("%w: Content-Type is %q but the manifest's mediaType is %q", ErrInvalidManifest, ct, probe.MediaType)
	}
	mt := types.MediaType(probe.MediaType)
	if mt == "" {
		mt = types.MediaType(ct)
	}
	if mt == "" {
		// OCI made mediaType optional in its first releases and some servers
		// send no Content-Type; the structure is unambiguous by now.
		switch {
		case isIndex:
			mt = types.OCIImageIndex
		case isManifest:
			mt = types.OCIManifestSchema1
		default:
			return "", fmt.Errorf("%w: neither a media type nor image manifest or index fields", ErrInvalidManifest)
		}
	}
	switch mt {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		if isIndex || !present(probe.Config) {
			return "", fmt.Errorf("%w: declared %s but the content is not an image manifest (no config)", ErrInvalidManifest, mt)
		}
	case types.OCIImageIndex, types.DockerManifestList:
		if isManifest || !isIndex {
			return "", fmt.Errorf("%w: declared %s but the content is not an index (no manifests)", ErrInvalidManifest, mt)
		}
	default:
		return "", fmt.Errorf("%w: unsupported manifest media type %q", ErrInvalidManifest, mt)
	}
	return mt, nil
}

// checkDescriptors rejects descriptors later stages cannot use: a missing
// digest or a negative size. (Parsing into v1.Hash already rejected
// malformed digests, so every digest here is safe to put in a URL path.)
func checkDescriptors(f *fetched) error {
	var ds []v1.Descriptor
	if f.manifest != nil {
		ds = append([]v1.Descriptor{f.manifest.Config}, f.manifest.Layers...)
	} else {
		ds = f.index.Manifests
	}
	for _, d := range ds {
		if d.Size < 0 {
			return fmt.Errorf("descriptor %s has negative size %d", d.Digest, d.Size)
		}
		if d.Digest.Algorithm == "" {
			return fmt.Errorf("descriptor of type %s without a digest", d.MediaType)
		}
	}
	return nil
}

// normalizePlatform spells a platform the canonical way (containerd's
// normalisation): lowercase OS, Go architecture names, and variants that
// mean the default dropped (arm64 "v8", amd64 "v1") or filled in (arm "v7").
func normalizePlatform(p v1.Platform) v1.Platform {
	p.OS = strings.ToLower(p.OS)
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	arch, variant := strings.ToLower(p.Architecture), strings.ToLower(p.Variant)
	switch arch {
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "aarch64", "arm64":
		arch = "arm64"
		if variant == "8" || variant == "v8" {
			variant = ""
		}
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	case "i386", "i686", "x86":
		arch = "386"
	}
	if arch == "arm" {
		switch variant {
		case "":
			variant = "v7"
		case "5", "6", "7", "8":
			variant = "v" + variant
		}
	}
	p.Architecture, p.Variant = arch, variant
	return p
}

// variantLevel is the numeric level of a normalised variant for
// architectures whose variants are backwards compatible (an arm/v7 machine
// runs arm/v6 code, an amd64/v3 machine runs amd64/v2 code).
func variantLevel(arch, variant string) (int, bool) {
	switch arch {
	case "arm", "amd64":
	default:
		return 0, false
	}
	if variant == "" {
		return 1, arch == "amd64"
	}
	n, err := strconv.Atoi(strings.TrimPrefix(variant, "v"))
	if err != nil || !strings.HasPrefix(variant, "v") {
		return 0, false
	}
	return n, true
}

// pickPlatform chooses want's manifest from idx: an exact OS, architecture
// and variant match, else the highest compatible lower variant. Entries
// without a platform (attestations, nested indexes) are skipped.
func pickPlatform(idx *v1.IndexManifest, want v1.Platform) (v1.Descriptor, error) {
	wantLevel, wantOK := variantLevel(want.Architecture, want.Variant)
	best, bestScore := -1, -1
	var available []string
	for i, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.MediaType != "" && !d.MediaType.IsImage() {
			continue
		}
		available = append(available, d.Platform.String())
		p := normalizePlatform(*d.Platform)
		if p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		if want.OSVersion != "" && p.OSVersion != "" && p.OSVersion != want.OSVersion {
			continue
		}
		score := -1
		if p.Variant == want.Variant {
			score = 1 << 20
		} else if lvl, ok := variantLevel(p.Architecture, p.Variant); ok && wantOK && lvl < wantLevel {
			score = lvl
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		list := "none"
		if len(available) > 0 {
			list = strings.Join(available, ", ")
		}
		return v1.Descriptor{}, fmt.Errorf("%w %s (available: %s)", ErrNoMatchingPlatform, want.String(), list)
	}
	return idx.Manifests[best], nil
}
