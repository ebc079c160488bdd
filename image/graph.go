package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hull-runtime/hull/image/content"
)

// Media types of Docker's schema 2, beside the OCI ones in ocispec.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// maxManifestSize bounds the manifests and configs read into memory.
const maxManifestSize = 4 << 20

// IsIndex reports whether mt is an image index (OCI) or manifest list (Docker).
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsManifest reports whether mt is an image manifest (OCI or Docker schema 2).
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// readBlob reads a whole (small) blob and checks its size against desc.
func (s *Service) readBlob(desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > maxManifestSize {
		return nil, fmt.Errorf("blob %s: %d bytes is more than the %d a manifest or config may have", desc.Digest, desc.Size, maxManifestSize)
	}
	f, err := s.Content.Open(desc.Digest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", desc.Digest, err)
	}
	if int64(len(data)) != desc.Size && desc.Size > 0 {
		return nil, fmt.Errorf("blob %s: %d bytes in the store, the descriptor says %d", desc.Digest, len(data), desc.Size)
	}
	return data, nil
}

func (s *Service) readJSON(desc ocispec.Descriptor, v any) error {
	data, err := s.readBlob(desc)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("blob %s (%s): %w", desc.Digest, desc.MediaType, err)
	}
	return nil
}

// children returns the descriptors that blob desc refers to, by its media
// type: an index's manifests, a manifest's config and layers. Other blobs
// have none.
func (s *Service) children(desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	switch {
	case IsIndex(desc.MediaType):
		var idx ocispec.Index
		if err := s.readJSON(desc, &idx); err != nil {
			return nil, err
		}
		return idx.Manifests, nil
	case IsManifest(desc.MediaType):
		var m ocispec.Manifest
		if err := s.readJSON(desc, &m); err != nil {
			return nil, err
		}
		return append([]ocispec.Descriptor{m.Config}, m.Layers...), nil
	}
	return nil, nil
}

// hostPlatform is the platform images are pulled and run for.
func hostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		p.Variant = "v7"
	}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

func platformMatches(p *ocispec.Platform, want ocispec.Platform) bool {
	if p == nil {
		return false
	}
	if p.OS != want.OS || p.Architecture != want.Architecture {
		return false
	}
	return p.Variant == "" || want.Variant == "" || p.Variant == want.Variant
}

// errNoPlatform is returned when an index has no manifest for the host.
var errNoPlatform = errors.New("no manifest for this platform")

// Manifest resolves target (an index or a manifest) to the host platform's
// manifest, which must be in the content store.
func (s *Service) Manifest(target ocispec.Descriptor) (ocispec.Descriptor, ocispec.Manifest, error) {
	desc := target
	if IsIndex(target.MediaType) {
		var idx ocispec.Index
		if err := s.readJSON(target, &idx); err != nil {
			return ocispec.Descriptor{}, ocispec.Manifest{}, err
		}
		want := hostPlatform()
		found := false
		for _, m := range idx.Manifests {
			if IsManifest(m.MediaType) && platformMatches(m.Platform, want) {
				if _, err := s.Content.Info(m.Digest); err == nil {
					desc, found = m, true
					break
				}
			}
		}
		if !found {
			return ocispec.Descriptor{}, ocispec.Manifest{}, fmt.Errorf("index %s: %w %s/%s in the store", target.Digest, errNoPlatform, want.OS, want.Architecture)
		}
	}
	if !IsManifest(desc.MediaType) {
		return ocispec.Descriptor{}, ocispec.Manifest{}, fmt.Errorf("blob %s: media type %q is not an image manifest", desc.Digest, desc.MediaType)
	}
	var m ocispec.Manifest
	if err := s.readJSON(desc, &m); err != nil {
		return ocispec.Descriptor{}, ocispec.Manifest{}, err
	}
	return desc, m, nil
}

// Config reads an image's config.
func (s *Service) Config(m ocispec.Manifest) (ocispec.Image, error) {
	var c ocispec.Image
	err := s.readJSON(m.Config, &c)
	return c, err
}

// ChainIDs computes the chain ids of an image's layers from their diff ids:
// the id of a layer stack, which names its snapshot.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// isNotFound reports a missing blob.
func isNotFound(err error) bool { return errors.Is(err, content.ErrNotFound) }

// RawConfig returns an image's config blob as stored, for the fields of
// Docker's config that the OCI type lacks (Healthcheck, OnBuild).
func (s *Service) RawConfig(m ocispec.Manifest) ([]byte, error) {
	return s.readBlob(m.Config)
}
