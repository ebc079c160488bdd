package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hull-runtime/hull/image/content"
	"github.com/hull-runtime/hull/image/ref"
	"github.com/hull-runtime/hull/image/unpack"
	"github.com/hull-runtime/hull/store"
)

// Annotations naming an image in an OCI layout's index.json.
const (
	annotationRefName        = "org.opencontainers.image.ref.name" // the tag
	annotationContainerdName = "io.containerd.image.name"          // the full name
)

// dockerManifestEntry is one image of a docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// Save writes the named images as one tar that is both an OCI image layout
// (oci-layout, index.json, blobs/) and a docker-archive (manifest.json
// pointing into blobs/), as Docker 25 writes it: `docker load`, `podman
// load`, skopeo and hull load it either way.
func (s *Service) Save(ctx context.Context, w io.Writer, names []string) error {
	tw := tar.NewWriter(w)
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	var dm []dockerManifestEntry
	written := map[digest.Digest]bool{}
	now := time.Unix(0, 0)
	writeBlob := func(desc ocispec.Descriptor) error {
		if written[desc.Digest] {
			return nil
		}
		f, err := s.Content.Open(desc.Digest)
		if err != nil {
			return err
		}
		defer f.Close()
		hdr := &tar.Header{Name: "blobs/" + desc.Digest.Algorithm().String() + "/" + desc.Digest.Encoded(), Mode: 0o444, Size: desc.Size, ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyBuffer(tw, f, make([]byte, 1<<20)); err != nil {
			return fmt.Errorf("save blob %s: %w", desc.Digest, err)
		}
		written[desc.Digest] = true
		return nil
	}
	if err := writeFile(tw, "blobs/", nil, true, now); err != nil {
		return err
	}
	for _, n := range names {
		if err := ctxErr(ctx, "save"); err != nil {
			return err
		}
		found, err := s.Find(n)
		if err != nil {
			return err
		}
		for _, f := range found {
			md, m, err := s.Manifest(f.Target)
			if err != nil {
				return err
			}
			for _, d := range append([]ocispec.Descriptor{md, m.Config}, m.Layers...) {
				if err := writeBlob(d); err != nil {
					return err
				}
			}
			desc := md
			desc.Platform = nil
			desc.Annotations = map[string]string{annotationContainerdName: f.Name, annotationRefName: f.Ref.Tag()}
			index.Manifests = append(index.Manifests, desc)
			e := dockerManifestEntry{Config: "blobs/sha256/" + m.Config.Digest.Encoded(), RepoTags: []string{f.Ref.Familiar()}}
			for _, l := range m.Layers {
				e.Layers = append(e.Layers, "blobs/sha256/"+l.Digest.Encoded())
			}
			dm = append(dm, e)
		}
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	idx, err := json.Marshal(index)
	if err != nil {
		return err
	}
	man, err := json.Marshal(dm)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{ocispec.ImageLayoutFile, layout}, {"index.json", idx}, {"manifest.json", man}} {
		if err := writeFile(tw, f.name, f.data, false, now); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, name string, data []byte, dir bool, mtime time.Time) error {
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg}
	if dir {
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// LoadResult lists the names a load created.
type LoadResult struct{ Names []string }

// Load reads an OCI archive or a docker-archive (of any Docker version),
// stores its blobs (verifying every digest), unpacks the images and names
// them.
func (s *Service) Load(ctx context.Context, r io.Reader) (LoadResult, error) {
	var res LoadResult
	lease, endLease, err := s.lease()
	if err != nil {
		return res, err
	}
	defer endLease()
	tr := tar.NewReader(r)
	small := map[string][]byte{}        // JSON files, by path
	files := map[string]digest.Digest{} // any other file, by path: stored as a blob
	sizes := map[digest.Digest]int64{}
	for {
		if err := ctxErr(ctx, "load"); err != nil {
			return res, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("load: read archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if strings.HasSuffix(name, ".json") || name == ocispec.ImageLayoutFile || name == "repositories" {
			if hdr.Size > maxManifestSize {
				return res, fmt.Errorf("load: %s: %d bytes is too large for a metadata file", name, hdr.Size)
			}
			data, err := io.ReadAll(io.LimitReader(tr, maxManifestSize+1))
			if err != nil {
				return res, fmt.Errorf("load: read %s: %w", name, err)
			}
			small[name] = data
			// Blobs named *.json (configs in old docker archives) are blobs too.
			d, err := s.storeBytes(ctx, lease, data)
			if err != nil {
				return res, err
			}
			files[name], sizes[d] = d, int64(len(data))
			continue
		}
		var expected digest.Digest
		if dir, hex, ok := strings.Cut(strings.TrimPrefix(name, "blobs/"), "/"); ok && strings.HasPrefix(name, "blobs/") {
			expected = digest.NewDigestFromEncoded(digest.Algorithm(dir), hex)
			if err := expected.Validate(); err != nil {
				return res, fmt.Errorf("load: %s: not a blob path: %w", name, err)
			}
		}
		d, err := s.storeStream(ctx, lease, tr, expected, hdr.Size)
		if err != nil {
			return res, fmt.Errorf("load: %s: %w", name, err)
		}
		files[name], sizes[d] = d, hdr.Size
	}
	type named struct {
		name   string
		target ocispec.Descriptor
	}
	var toName []named
	if data, ok := small["index.json"]; ok {
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return res, fmt.Errorf("load: index.json: %w", err)
		}
		for _, m := range idx.Manifests {
			n := m.Annotations[annotationContainerdName]
			if n == "" {
				n = m.Annotations[annotationRefName]
			}
			if n == "" {
				continue
			}
			toName = append(toName, named{n, ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}})
		}
	}
	if data, ok := small["manifest.json"]; ok && len(toName) == 0 {
		var dm []dockerManifestEntry
		if err := json.Unmarshal(data, &dm); err != nil {
			return res, fmt.Errorf("load: manifest.json: %w", err)
		}
		for _, e := range dm {
			md, err := s.manifestFromDocker(ctx, lease, e, files, sizes)
			if err != nil {
				return res, err
			}
			for _, t := range e.RepoTags {
				toName = append(toName, named{t, md})
			}
		}
	}
	if len(toName) == 0 {
		return res, errors.New("load: the archive names no image (no index.json annotations nor manifest.json RepoTags)")
	}
	for _, n := range toName {
		r, err := ref.Parse(n.name)
		if err != nil {
			return res, fmt.Errorf("load: image name %q: %w", n.name, err)
		}
		if _, err := s.Content.Info(n.target.Digest); err != nil {
			return res, fmt.Errorf("load: %s: manifest %s is not in the archive: %w", n.name, n.target.Digest, err)
		}
		if err := s.unpackStored(ctx, r, n.target, lease); err != nil {
			return res, err
		}
		if err := s.DB.PutImage(store.Image{Name: r.String(), Target: n.target}); err != nil {
			return res, err
		}
		res.Names = append(res.Names, r.String())
	}
	return res, nil
}

// manifestFromDocker builds an OCI manifest for a docker-archive entry from
// the files stored while reading the archive.
func (s *Service) manifestFromDocker(ctx context.Context, lease string, e dockerManifestEntry, files map[string]digest.Digest, sizes map[digest.Digest]int64) (ocispec.Descriptor, error) {
	cd, ok := files[path.Clean(e.Config)]
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("load: manifest.json names config %s, which is not in the archive", e.Config)
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: sizes[cd]}}
	for _, l := range e.Layers {
		ld, ok := files[path.Clean(l)]
		if !ok {
			return ocispec.Descriptor{}, fmt.Errorf("load: manifest.json names layer %s, which is not in the archive", l)
		}
		mt, err := s.layerMediaType(ld)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: ld, Size: sizes[ld]})
	}
	data, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d, err := s.storeBytes(ctx, lease, data)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(data))}, nil
}

// layerMediaType sniffs a stored layer's compression.
func (s *Service) layerMediaType(d digest.Digest) (string, error) {
	f, err := s.Content.Open(d)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return ocispec.MediaTypeImageLayerGzip, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return ocispec.MediaTypeImageLayer, nil
}

// storeBytes puts data in the content store under its digest.
func (s *Service) storeBytes(ctx context.Context, lease string, data []byte) (digest.Digest, error) {
	d := digest.FromBytes(data)
	if err := s.protect(ctx, lease, []digest.Digest{d}, nil, nil); err != nil {
		return "", err
	}
	return d, s.putSmall(ctx, ocispec.Descriptor{Digest: d, Size: int64(len(data))}, data)
}

// storeStream puts a stream in the content store; expected may be "" (the
// digest is whatever the bytes hash to).
func (s *Service) storeStream(ctx context.Context, lease string, r io.Reader, expected digest.Digest, size int64) (digest.Digest, error) {
	refName := "load-" + expected.String()
	if expected == "" {
		refName = fmt.Sprintf("load-%d-%d", time.Now().UnixNano(), size)
	} else if err := s.protect(ctx, lease, []digest.Digest{expected}, []string{refName}, nil); err != nil {
		return "", err
	}
	w, err := s.Content.Writer(ctx, refName, expected, size)
	if errors.Is(err, content.ErrExists) {
		_, err := io.Copy(io.Discard, r)
		return expected, err
	}
	if err != nil {
		return "", err
	}
	defer w.Close()
	if err := w.Truncate(0); err != nil {
		return "", err
	}
	if _, err := io.CopyBuffer(w, r, make([]byte, 1<<20)); err != nil {
		return "", err
	}
	d := w.Digest()
	if expected == "" {
		if err := s.protect(ctx, lease, []digest.Digest{d}, nil, nil); err != nil {
			return "", err
		}
	}
	if err := w.Commit(); err != nil && !errors.Is(err, content.ErrExists) {
		return "", err
	}
	return d, nil
}

// unpackStored unpacks an image whose blobs are all in the store.
func (s *Service) unpackStored(ctx context.Context, r ref.Ref, target ocispec.Descriptor, lease string) error {
	if s.Snapshots == nil {
		return nil
	}
	md, m, err := s.Manifest(target)
	if err != nil {
		return err
	}
	cfg, err := s.Config(m)
	if err != nil {
		return err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("image %s: config lists %d layers (rootfs.diff_ids), the manifest %d", r, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	pr := newProgress(nil, r.Familiar())
	return s.fetchAndUnpack(ctx, r, md.Digest, m.Layers, cfg.RootFS.DiffIDs, lease, pr)
}

// Import makes a one-layer image from a root filesystem tarball (plain,
// gzip or zstd) and names it name.
func (s *Service) Import(ctx context.Context, r io.Reader, name string, changes ocispec.ImageConfig) (string, error) {
	rn, err := ref.Parse(name)
	if err != nil {
		return "", err
	}
	lease, endLease, err := s.lease()
	if err != nil {
		return "", err
	}
	defer endLease()
	dr, err := unpack.Decompress(r)
	if err != nil {
		return "", err
	}
	defer dr.Close()
	// Compress into the store while hashing the uncompressed stream (the diff id).
	refName := fmt.Sprintf("import-%d", time.Now().UnixNano())
	if err := s.protect(ctx, lease, nil, []string{refName}, nil); err != nil {
		return "", err
	}
	w, err := s.Content.Writer(ctx, refName, "", 0)
	if err != nil {
		return "", err
	}
	defer w.Close()
	diff := digest.Canonical.Digester()
	zw := gzip.NewWriter(w)
	if _, err := io.CopyBuffer(io.MultiWriter(zw, diff.Hash()), dr, make([]byte, 1<<20)); err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: w.Digest(), Size: w.Offset()}
	if err := s.protect(ctx, lease, []digest.Digest{layer.Digest}, nil, nil); err != nil {
		return "", err
	}
	if err := w.Commit(); err != nil && !errors.Is(err, content.ErrExists) {
		return "", err
	}
	now := time.Now().UTC()
	p := hostPlatform()
	cfg := ocispec.Image{Created: &now, Platform: p, Config: changes,
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diff.Digest()}},
		History: []ocispec.History{{Created: &now, CreatedBy: "hull import"}}}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	cd, err := s.storeBytes(ctx, lease, cfgData)
	if err != nil {
		return "", err
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfgData))},
		Layers: []ocispec.Descriptor{layer}}
	mData, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	md, err := s.storeBytes(ctx, lease, mData)
	if err != nil {
		return "", err
	}
	target := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mData))}
	if err := s.unpackStored(ctx, rn, target, lease); err != nil {
		return "", err
	}
	if err := s.DB.PutImage(store.Image{Name: rn.String(), Target: target}); err != nil {
		return "", err
	}
	return cd.String(), nil
}
