// Package native is hull's copy-based snapshotter, for filesystems that
// overlayfs cannot stack on: an active snapshot is a full copy of its parent's
// tree (reflinked where the filesystem shares extents), and its mounts are
// bind mounts of that copy.
//
// Layout and locking are package storage's: metadata.db, snapshots/<id>/fs,
// staging/, removing/. Prepare copies the parent into a staging directory
// without holding the metadata lock (a copy can take seconds, and other
// processes keep working meanwhile) and renames it into place under the lock,
// failing if the parent was removed or replaced in between. A view is not
// copied: it is a read-only bind mount of its parent's tree, which cannot
// change (committed) or go away (it has a child) while the view exists.
package native

import (
	"context"
	"fmt"

	"github.com/hull-runtime/hull/image/snapshot"
	"github.com/hull-runtime/hull/image/snapshot/internal/storage"
)

// Snapshotter is the copy-based snapshotter. It is safe for concurrent use by
// goroutines and by processes sharing its root.
type Snapshotter struct {
	store *storage.Store
}

var _ snapshot.Snapshotter = (*Snapshotter)(nil)

// New opens (creating if needed) a native snapshotter rooted at root.
// Leftovers of crashed operations are removed.
func New(root string) (*Snapshotter, error) {
	st, err := storage.Open(root)
	if err != nil {
		return nil, fmt.Errorf("native snapshotter: %w", err)
	}
	return &Snapshotter{store: st}, nil
}

// Stat returns key's info.
func (s *Snapshotter) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	return s.store.Stat(ctx, key)
}

// Prepare creates active snapshot key as a copy of committed parent's tree
// ("" for an empty tree) and returns its mounts.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	if parent == "" {
		sn, err := s.store.Create(ctx, key, "", snapshot.KindActive, storage.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		return s.mounts(sn), nil
	}
	// Fail before copying what Create would refuse anyway.
	if _, err := s.store.Stat(ctx, key); err == nil {
		return nil, fmt.Errorf("prepare: snapshot %q: %w", key, snapshot.ErrExist)
	}
	p, err := s.store.Get(ctx, parent)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: parent: %w", key, err)
	}
	if p.Info.Kind != snapshot.KindCommitted {
		return nil, fmt.Errorf("prepare %q: parent %q is %s, not committed: %w", key, parent, p.Info.Kind, snapshot.ErrFailedPrecond)
	}
	dir, err := s.store.StagingDir(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", key, err)
	}
	if err := copyTree(ctx, s.store.FS(p.ID), dir); err != nil {
		_ = s.store.RemoveStaging(dir)
		return nil, fmt.Errorf("prepare %q: copy parent %q: %w", key, parent, err)
	}
	sn, err := s.store.Create(ctx, key, parent, snapshot.KindActive, storage.CreateOptions{Staged: dir, ParentID: p.ID})
	if err != nil {
		_ = s.store.RemoveStaging(dir)
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return s.mounts(sn), nil
}

// View creates read-only snapshot key of committed parent ("" for an empty
// tree) and returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	sn, err := s.store.Create(ctx, key, parent, snapshot.KindView, storage.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	return s.mounts(sn), nil
}

// Mounts returns the mounts of active snapshot or view key.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]snapshot.Mount, error) {
	sn, err := s.store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	if sn.Info.Kind == snapshot.KindCommitted {
		return nil, fmt.Errorf("mounts of %q: it is committed (take a view of it): %w", key, snapshot.ErrFailedPrecond)
	}
	return s.mounts(sn), nil
}

func (s *Snapshotter) mounts(sn storage.Snapshot) []snapshot.Mount {
	if sn.Info.Kind == snapshot.KindActive {
		return []snapshot.Mount{{Type: "bind", Source: s.store.FS(sn.ID), Options: []string{"rbind", "rw"}}}
	}
	dir := s.store.FS(sn.ID)
	if len(sn.ParentIDs) > 0 {
		dir = s.store.FS(sn.ParentIDs[0])
	}
	return []snapshot.Mount{{Type: "bind", Source: dir, Options: []string{"rbind", "ro"}}}
}

// Commit makes active snapshot key the committed snapshot name, without
// copying. Unmount it first: writes through a mount that outlives the commit
// would change a committed tree.
func (s *Snapshotter) Commit(ctx context.Context, name, key string) error {
	return s.store.Commit(ctx, name, key)
}

// Remove deletes snapshot key and its directory; a committed snapshot with
// children cannot be removed (snapshot.ErrFailedPrecond).
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	return s.store.Remove(ctx, key)
}

// Walk calls fn for every snapshot, in key order.
func (s *Snapshotter) Walk(ctx context.Context, fn func(snapshot.Info) error) error {
	return s.store.Walk(ctx, fn)
}

// Usage returns the space used by key's own directory: a full tree for an
// active or committed snapshot (blocks shared by reflinks are counted in
// each), next to nothing for a view.
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	return s.store.Usage(ctx, key)
}

// Cleanup deletes what crashed operations left under the root and says why
// anything could not be deleted (New does the same silently).
func (s *Snapshotter) Cleanup(ctx context.Context) error {
	return s.store.Cleanup(ctx)
}

// Close releases the snapshotter; the metadata db is open only during
// operations, so this only drops its staging directories' locks.
func (s *Snapshotter) Close() error {
	return s.store.Close()
}
