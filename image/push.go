package image

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hull-runtime/hull/image/ref"
)

// storeImage is an image in the content store as go-containerregistry's
// partial.CompressedImageCore, so its remote package can push it.
type storeImage struct {
	s        *Service
	manifest ocispec.Descriptor
	raw      []byte
	config   []byte
	layers   map[string]ocispec.Descriptor
}

func (i *storeImage) RawConfigFile() ([]byte, error) { return i.config, nil }
func (i *storeImage) MediaType() (types.MediaType, error) {
	return types.MediaType(i.manifest.MediaType), nil
}
func (i *storeImage) RawManifest() ([]byte, error) { return i.raw, nil }
func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d, ok := i.layers[h.String()]
	if !ok {
		return nil, fmt.Errorf("image %s has no blob %s", i.manifest.Digest, h)
	}
	return &storeLayer{s: i.s, desc: d}, nil
}

// storeLayer is a blob of the content store as a compressed layer.
type storeLayer struct {
	s    *Service
	desc ocispec.Descriptor
}

func (l *storeLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.desc.Digest.String()) }
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	return l.s.Content.Open(l.desc.Digest)
}
func (l *storeLayer) Size() (int64, error) { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.desc.MediaType), nil
}

// Push uploads the image called name (its host-platform manifest, as
// Docker does for a multi-platform image it pulled) to dest, or to its own
// name when dest is "".
func (s *Service) Push(ctx context.Context, name, dest string) (ocispec.Descriptor, error) {
	found, err := s.Find(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if dest == "" {
		dest = found[0].Name
	}
	r, err := ref.Parse(dest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	md, m, err := s.Manifest(found[0].Target)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	raw, err := s.readBlob(md)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfg, err := s.readBlob(m.Config)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	core := &storeImage{s: s, manifest: md, raw: raw, config: cfg, layers: map[string]ocispec.Descriptor{m.Config.Digest.String(): m.Config}}
	for _, l := range m.Layers {
		if _, err := s.Content.Info(l.Digest); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("push %s: layer %s is not in the store: %w", name, l.Digest, err)
		}
		core.layers[l.Digest.String()] = l
	}
	img, err := partial.CompressedToImage(core)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push %s: %w", name, err)
	}
	if err := s.Registry.Push(ctx, r, img); err != nil {
		return ocispec.Descriptor{}, err
	}
	return md, nil
}
