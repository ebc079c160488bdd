package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hull-runtime/hull/image/content"
	"github.com/hull-runtime/hull/image/ref"
	"github.com/hull-runtime/hull/image/snapshot"
	"github.com/hull-runtime/hull/image/unpack"
	"github.com/hull-runtime/hull/store"
)

// PullOptions tune a pull.
type PullOptions struct {
	// NoUnpack only fetches the blobs (push, save).
	NoUnpack bool
}

// PullResult describes a pulled image.
type PullResult struct {
	Image    store.Image
	Manifest ocispec.Descriptor
	Config   ocispec.Descriptor
}

// lease starts a lease owned by this process; the returned func ends it.
func (s *Service) lease() (string, func(), error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := "pull-" + hex.EncodeToString(b)
	start, _ := pidStartTime(os.Getpid())
	now := time.Now().UTC()
	if err := s.DB.PutLease(store.Lease{ID: id, Pid: os.Getpid(), PidStart: start, Created: now, Expires: now.Add(24 * time.Hour)}); err != nil {
		return "", nil, err
	}
	return id, func() {
		if err := s.DB.DeleteLease(id); err != nil {
			s.Log.Warn("end lease", "lease", id, "err", err)
		}
	}, nil
}

// protect adds resources to a lease under the shared gc lock, so that a
// collection either saw them leased or finished before they were used.
func (s *Service) protect(ctx context.Context, lease string, blobs []digest.Digest, ingests, snaps []string) error {
	unlock, err := s.gcLock(ctx, false)
	if err != nil {
		return err
	}
	defer unlock()
	return s.DB.AddToLease(lease, blobs, ingests, snaps)
}

func toOCI(d v1.Descriptor) ocispec.Descriptor {
	o := ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size, URLs: d.URLs, Annotations: d.Annotations}
	if d.Platform != nil {
		o.Platform = &ocispec.Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant, OSVersion: d.Platform.OSVersion, OSFeatures: d.Platform.OSFeatures}
	}
	return o
}

// putSmall stores a small blob (manifest, index, config) already in memory.
func (s *Service) putSmall(ctx context.Context, desc ocispec.Descriptor, data []byte) error {
	if digest.FromBytes(data) != desc.Digest || int64(len(data)) != desc.Size {
		return fmt.Errorf("blob %s: content does not match its descriptor (%d bytes, digest %s)", desc.Digest, len(data), digest.FromBytes(data))
	}
	w, err := s.Content.Writer(ctx, "small-"+desc.Digest.String(), desc.Digest, desc.Size)
	if errors.Is(err, content.ErrExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Truncate(0); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Commit(); err != nil && !errors.Is(err, content.ErrExists) {
		return err
	}
	return nil
}

// Pull fetches an image from its registry into the store, unpacks it into
// snapshots and names it. Interrupted pulls resume their downloads.
func (s *Service) Pull(ctx context.Context, name string, o PullOptions) (*PullResult, error) {
	r, err := ref.Parse(name)
	if err != nil {
		return nil, err
	}
	lease, endLease, err := s.lease()
	if err != nil {
		return nil, err
	}
	defer endLease()
	res, err := s.Registry.Resolve(ctx, r)
	if err != nil {
		return nil, err
	}
	manifest := toOCI(res.ManifestDesc)
	target := manifest
	type blob struct {
		desc ocispec.Descriptor
		data []byte
	}
	small := []blob{{manifest, res.Manifest}}
	if res.IndexDesc != nil {
		target = toOCI(*res.IndexDesc)
		small = append(small, blob{target, res.Index})
	}
	cfgDesc := toOCI(res.Config)
	layers := make([]ocispec.Descriptor, len(res.Layers))
	for i, l := range res.Layers {
		layers[i] = toOCI(l)
	}
	all := []digest.Digest{target.Digest, manifest.Digest, cfgDesc.Digest}
	for _, l := range layers {
		all = append(all, l.Digest)
	}
	if err := s.protect(ctx, lease, all, nil, nil); err != nil {
		return nil, err
	}
	for _, b := range small {
		if err := s.putSmall(ctx, b.desc, b.data); err != nil {
			return nil, err
		}
	}
	if err := s.fetch(ctx, r, cfgDesc, lease, nil); err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := s.readJSON(manifest, &m); err != nil {
		return nil, err
	}
	cfg, err := s.Config(m)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("image %s: config lists %d layers (rootfs.diff_ids), the manifest %d", r, len(cfg.RootFS.DiffIDs), len(layers))
	}
	pr := newProgress(s.Progress, r.Familiar())
	defer pr.close()
	if o.NoUnpack || s.Snapshots == nil {
		if err := s.fetchAll(ctx, r, layers, lease, pr); err != nil {
			return nil, err
		}
	} else if err := s.fetchAndUnpack(ctx, r, manifest.Digest, layers, cfg.RootFS.DiffIDs, lease, pr); err != nil {
		return nil, err
	}
	img := store.Image{Name: r.String(), Target: target}
	if err := s.DB.PutImage(img); err != nil {
		return nil, err
	}
	img, err = s.DB.GetImage(r.String())
	if err != nil {
		return nil, err
	}
	return &PullResult{Image: img, Manifest: manifest, Config: cfgDesc}, nil
}

// fetch downloads one blob into the content store (resuming an earlier
// partial download), unless it is there already. If sink is not nil, it
// also gets the blob's bytes as they arrive, from the first byte.
func (s *Service) fetch(ctx context.Context, r ref.Ref, desc ocispec.Descriptor, lease string, sink io.Writer) error {
	ingest := "blob-" + desc.Digest.String()
	if err := s.protect(ctx, lease, nil, []string{ingest}, nil); err != nil {
		return err
	}
	w, err := s.Content.Writer(ctx, ingest, desc.Digest, desc.Size)
	if errors.Is(err, content.ErrExists) {
		if sink != nil {
			return s.copyBlob(desc, sink)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	off := w.Offset()
	if off > 0 && sink != nil {
		// The unpacker needs the blob from its start: give it what is on disk.
		if _, err := io.CopyBuffer(sink, w.Partial(), make([]byte, 1<<20)); err != nil {
			return fmt.Errorf("blob %s: read the partial download: %w", desc.Digest, err)
		}
	}
	if desc.Size > 0 && off >= desc.Size {
		// The download had finished when a crash kept it from committing:
		// the commit checks it (and discards it if it is not the blob).
		if err := w.Commit(); err != nil && !errors.Is(err, content.ErrExists) {
			return err
		}
		return nil
	}
	rc, resumed, err := s.Registry.FetchBlob(ctx, r, toV1(desc), off)
	if err != nil {
		return err
	}
	defer rc.Close()
	if off > 0 && !resumed {
		// The registry ignored the range and sends the blob from its start:
		// skip what is on disk already. The digest check at commit covers a
		// registry that changed the bytes meanwhile.
		if _, err := io.CopyN(io.Discard, rc, off); err != nil {
			return fmt.Errorf("download blob %s: %w", desc.Digest, err)
		}
	}
	var dst io.Writer = w
	if sink != nil {
		dst = io.MultiWriter(w, sink)
	}
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(dst, rc, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("download blob %s: the registry sent %d of its %d bytes (kept: pull again to resume, `hull system prune` to drop): %w", desc.Digest, w.Offset(), desc.Size, err)
		}
		return fmt.Errorf("download blob %s: %w", desc.Digest, err)
	}
	if err := w.Commit(); err != nil && !errors.Is(err, content.ErrExists) {
		return err
	}
	return nil
}

func (s *Service) copyBlob(desc ocispec.Descriptor, w io.Writer) error {
	f, err := s.Content.Open(desc.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(w, f, make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("read blob %s: %w", desc.Digest, err)
	}
	return nil
}

func toV1(d ocispec.Descriptor) v1.Descriptor {
	h, _ := v1.NewHash(d.Digest.String())
	return v1.Descriptor{MediaType: typesMediaType(d.MediaType), Digest: h, Size: d.Size, URLs: d.URLs}
}

// fetchAll downloads blobs in parallel, s.Parallel at a time.
func (s *Service) fetchAll(ctx context.Context, r ref.Ref, descs []ocispec.Descriptor, lease string, pr *progress) error {
	return parallel(ctx, s.Parallel, len(descs), func(ctx context.Context, i int) error {
		bar := pr.bar(descs[i])
		err := s.fetch(ctx, r, descs[i], lease, bar)
		bar.done(err)
		return err
	})
}

// parallel runs fn for 0..n-1, at most par at once; the first error cancels
// the rest and is returned.
func parallel(ctx context.Context, par, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}(i)
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// layerJob is one layer of a pull being unpacked.
type layerJob struct {
	desc    ocispec.Descriptor
	diffID  digest.Digest
	chainID digest.Digest
	parent  digest.Digest
	staging string // Importer: the staged layer dir
	done    bool   // its snapshot exists already
	// implicit are the directories the staged layer made for parents it
	// did not list (see fixImplicit).
	implicit []string
}

// fetchAndUnpack downloads the layers and unpacks them into snapshots named
// by their chain ids. With an Importer snapshotter (overlay) each layer is
// unpacked while it downloads, in parallel, into its own staging dir; the
// staged layers are then imported in order. Otherwise layers download in
// parallel and unpack one after the other on top of each other.
func (s *Service) fetchAndUnpack(ctx context.Context, r ref.Ref, manifest digest.Digest, layers []ocispec.Descriptor, diffIDs []digest.Digest, lease string, pr *progress) error {
	chain := ChainIDs(diffIDs)
	jobs := make([]*layerJob, len(layers))
	var keys []string
	for i := range layers {
		j := &layerJob{desc: layers[i], diffID: diffIDs[i], chainID: chain[i]}
		if i > 0 {
			j.parent = chain[i-1]
		}
		jobs[i] = j
		keys = append(keys, chain[i].String())
	}
	if err := s.protect(ctx, lease, nil, nil, keys); err != nil {
		return err
	}
	for _, j := range jobs {
		if info, err := s.Snapshots.Stat(ctx, j.chainID.String()); err == nil && info.Kind == snapshot.KindCommitted {
			j.done = true
		}
	}
	imp, isImporter := s.Snapshots.(snapshot.Importer)
	if isImporter {
		defer func() {
			for _, j := range jobs {
				if j.staging != "" {
					_ = imp.RemoveStaging(j.staging)
				}
			}
		}()
		err := parallel(ctx, s.Parallel, len(jobs), func(ctx context.Context, i int) error {
			j := jobs[i]
			bar := pr.bar(j.desc)
			if j.done {
				// The layer is unpacked already; only make sure its blob is here.
				err := s.fetch(ctx, r, j.desc, lease, nil)
				bar.done(err)
				return err
			}
			dir, err := imp.StagingDir(ctx)
			if err != nil {
				bar.done(err)
				return err
			}
			j.staging = dir
			err = s.fetchUnpack(ctx, r, j, dir, lease, bar, true)
			bar.done(err)
			return err
		})
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if j.done {
				continue
			}
			if len(j.implicit) > 0 && j.parent != "" {
				ok, err := s.fixImplicit(ctx, j)
				if err != nil {
					return err
				}
				if !ok {
					// The layer writes through a lower layer's symlink or
					// file: apply it onto the mounted overlay instead.
					_ = imp.RemoveStaging(j.staging)
					j.staging = ""
					if err := s.unpackNative(ctx, j); err != nil {
						return err
					}
					continue
				}
			}
			if err := unpack.Sync(j.staging); err != nil {
				return err
			}
			err := imp.Import(ctx, j.chainID.String(), j.parent.String(), j.staging)
			if err != nil && !errors.Is(err, snapshot.ErrExist) {
				return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
			}
			if errors.Is(err, snapshot.ErrExist) {
				_ = imp.RemoveStaging(j.staging)
			}
			j.staging = ""
		}
	} else {
		if err := s.fetchAll(ctx, r, layers, lease, pr); err != nil {
			return err
		}
		for _, j := range jobs {
			if j.done {
				continue
			}
			if err := s.unpackNative(ctx, j); err != nil {
				return err
			}
		}
	}
	return s.DB.PutUnpacked(store.Unpacked{Manifest: manifest, Snapshotter: s.SnapshotterName, ChainIDs: keys})
}
