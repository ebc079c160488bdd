package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/image/content"
	"github.com/hull-runtime/hull/image/snapshot"
	"github.com/hull-runtime/hull/store"
)

// gcLock serialises garbage collection with the short steps in which a pull
// adds a resource to its lease and checks that the resource still exists:
// collection holds it exclusively while it marks and sweeps, those steps
// hold it shared. A pull never holds it while downloading.
func (s *Service) gcLock(ctx context.Context, exclusive bool) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.Root, "gc.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("gc lock: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("gc lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for gc lock: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// GCOptions tune a collection.
type GCOptions struct {
	// SnapshotRoots are snapshots in use outside the image store (containers'
	// writable layers): kept with their parents.
	SnapshotRoots []string
	// Ingests also removes partial downloads no live lease protects (an
	// interrupted pull could have resumed them).
	Ingests bool
	// DryRun only reports what would be removed.
	DryRun bool
}

// GCReport says what a collection removed, and what it could not.
type GCReport struct {
	BlobsRemoved     int
	SnapshotsRemoved int
	IngestsRemoved   int
	LeasesRemoved    int
	BytesFreed       int64 // BlobBytes + SnapshotBytes + IngestBytes
	BlobBytes        int64
	SnapshotBytes    int64
	IngestBytes      int64
	// Errors are the items that could not be removed; the collection went on.
	Errors []error
}

// leaseLive reports whether a lease still protects its resources.
func leaseLive(l store.Lease, now time.Time) bool {
	if !l.Expires.IsZero() && now.After(l.Expires) {
		return false
	}
	if l.Pid <= 0 {
		return true
	}
	start, err := pidStartTime(l.Pid)
	return err == nil && start == l.PidStart
}

// GC removes every blob, snapshot and record that no image, live lease or
// root refers to: mark and sweep. It goes on past items it cannot remove and
// reports them.
func (s *Service) GC(ctx context.Context, o GCOptions) (GCReport, error) {
	var rep GCReport
	unlock, err := s.gcLock(ctx, true)
	if err != nil {
		return rep, err
	}
	defer unlock()

	images, err := s.DB.Images()
	if err != nil {
		return rep, err
	}
	unpacked, err := s.DB.AllUnpacked()
	if err != nil {
		return rep, err
	}
	leases, err := s.DB.Leases()
	if err != nil {
		return rep, err
	}
	now := time.Now()

	// Mark blobs: from every image's target down the typed graph (index ->
	// manifests -> config and layers), and everything a live lease holds.
	blobs := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if blobs[d.Digest] {
			return nil
		}
		if _, err := s.Content.Info(d.Digest); err != nil {
			if isNotFound(err) {
				return nil // e.g. other platforms' manifests of an index
			}
			return err
		}
		blobs[d.Digest] = true
		kids, err := s.children(d)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := walk(k); err != nil {
				return err
			}
		}
		return nil
	}
	for _, img := range images {
		if err := walk(img.Target); err != nil {
			// An image whose blobs cannot be read keeps what was marked; its
			// other blobs may go. Say so instead of stopping.
			rep.Errors = append(rep.Errors, fmt.Errorf("image %s: %w", img.Name, err))
		}
	}
	snaps := map[string]bool{}
	ingests := map[string]bool{}
	for _, l := range leases {
		if !leaseLive(l, now) {
			if !o.DryRun {
				if err := s.DB.DeleteLease(l.ID); err != nil {
					rep.Errors = append(rep.Errors, err)
				} else {
					rep.LeasesRemoved++
				}
			}
			continue
		}
		for _, b := range l.Blobs {
			blobs[b] = true
		}
		for _, k := range l.Snapshots {
			snaps[k] = true
		}
		for _, r := range l.Ingests {
			ingests[r] = true
		}
	}
	// Mark snapshots: the layers of marked manifests, the roots, and every
	// ancestor of a marked snapshot.
	for _, u := range unpacked {
		if u.Snapshotter != s.SnapshotterName {
			continue
		}
		if !blobs[u.Manifest] {
			if !o.DryRun {
				if err := s.DB.DeleteUnpacked(u.Snapshotter, u.Manifest); err != nil {
					rep.Errors = append(rep.Errors, err)
				}
			}
			continue
		}
		for _, c := range u.ChainIDs {
			snaps[c] = true
		}
	}
	for _, r := range o.SnapshotRoots {
		snaps[r] = true
	}
	var infos []snapshot.Info
	if s.Snapshots != nil {
		if err := s.Snapshots.Walk(ctx, func(i snapshot.Info) error { infos = append(infos, i); return nil }); err != nil {
			return rep, fmt.Errorf("walk snapshots: %w", err)
		}
	}
	parent := map[string]string{}
	for _, i := range infos {
		parent[i.Key] = i.Parent
		// Writable snapshots and views belong to containers and image
		// mounts; only an interrupted unpack's leftovers are garbage.
		if i.Kind != snapshot.KindCommitted && !strings.HasPrefix(i.Key, "extract-") {
			snaps[i.Key] = true
		}
	}
	for k := range snaps {
		for p := parent[k]; p != "" && !snaps[p]; p = parent[p] {
			snaps[p] = true
		}
	}

	// Sweep snapshots, children before parents: repeat over what is left
	// until a pass removes nothing.
	doomed := map[string]bool{}
	for _, i := range infos {
		if !snaps[i.Key] {
			doomed[i.Key] = true
		}
	}
	for len(doomed) > 0 {
		progress := false
		for k := range doomed {
			hasChild := false
			for _, i := range infos {
				if i.Parent == k && doomed[i.Key] {
					hasChild = true
					break
				}
			}
			if hasChild {
				continue
			}
			delete(doomed, k)
			progress = true
			if u, err := s.Snapshots.Usage(ctx, k); err == nil {
				rep.SnapshotBytes += u.Size
			}
			if o.DryRun {
				rep.SnapshotsRemoved++
				continue
			}
			if err := s.Snapshots.Remove(ctx, k); err != nil {
				rep.Errors = append(rep.Errors, fmt.Errorf("remove snapshot %s: %w", k, err))
				continue
			}
			rep.SnapshotsRemoved++
		}
		if !progress {
			for k := range doomed {
				rep.Errors = append(rep.Errors, fmt.Errorf("snapshot %s: children left, not removed", k))
			}
			break
		}
	}

	// Sweep blobs.
	var unmarked []content.Info
	if err := s.Content.Walk(func(i content.Info) error {
		if !blobs[i.Digest] {
			unmarked = append(unmarked, i)
		}
		return nil
	}); err != nil {
		return rep, fmt.Errorf("walk content: %w", err)
	}
	for _, i := range unmarked {
		if err := ctxErr(ctx, "garbage collection"); err != nil {
			return rep, err
		}
		if !o.DryRun {
			if err := s.Content.Delete(i.Digest); err != nil && !isNotFound(err) {
				rep.Errors = append(rep.Errors, fmt.Errorf("remove blob %s: %w", i.Digest, err))
				continue
			}
		}
		rep.BlobsRemoved++
		rep.BlobBytes += i.Size
	}

	if o.Ingests {
		ins, err := s.Content.Ingests()
		if err != nil {
			rep.Errors = append(rep.Errors, err)
		}
		for _, in := range ins {
			if ingests[in.Ref] {
				continue
			}
			if !o.DryRun {
				if err := s.Content.Abort(in.Ref); err != nil {
					rep.Errors = append(rep.Errors, fmt.Errorf("remove partial download %s: %w", in.Ref, err))
					continue
				}
			}
			rep.IngestsRemoved++
			rep.IngestBytes += in.Offset
		}
	}
	rep.BytesFreed = rep.BlobBytes + rep.SnapshotBytes + rep.IngestBytes
	return rep, nil
}
