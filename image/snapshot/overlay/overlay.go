// Package overlay is hull's overlayfs snapshotter: each snapshot is a
// directory that holds one layer (overlay's upper dir while the snapshot is
// active), and a snapshot's tree is the overlay of its layer over its
// parents'. Commit copies nothing, and layers unpacked elsewhere are imported
// by a rename (snapshot.Importer).
//
// Layout under the root: metadata.db (bbolt), snapshots/<id>/fs (the layer),
// snapshots/<id>/work (overlay's work dir, made for active snapshots),
// staging/ and removing/; see package storage for the locking and the crash
// recovery.
//
// Mounts are described with absolute paths, as mount(8) takes them.
// snapshot.MountAll mounts them whatever the chain's length: one layer per
// fsconfig call on Linux ≥ 6.8, and on older kernels mount(2) with the paths
// made relative to root/snapshots, which costs len("<id>/fs:") bytes a layer,
// so several hundred layers fit in mount(2)'s one page (overlayfs itself
// stacks at most 500).
package overlay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/image/snapshot"
	"github.com/hull-runtime/hull/image/snapshot/internal/storage"
)

// Snapshotter is the overlayfs snapshotter. It implements snapshot.Snapshotter
// and snapshot.Importer, and is safe for concurrent use by goroutines and by
// processes sharing its root.
type Snapshotter struct {
	store *storage.Store
}

var (
	_ snapshot.Snapshotter = (*Snapshotter)(nil)
	_ snapshot.Importer    = (*Snapshotter)(nil)
)

// New opens (creating if needed) an overlay snapshotter rooted at root, which
// must be on a filesystem that overlayfs takes as an upper layer (Supported
// checks that). Leftovers of crashed operations are removed.
func New(root string) (*Snapshotter, error) {
	st, err := storage.Open(root)
	if err != nil {
		return nil, fmt.Errorf("overlay snapshotter: %w", err)
	}
	return &Snapshotter{store: st}, nil
}

// Stat returns key's info.
func (s *Snapshotter) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	return s.store.Stat(ctx, key)
}

// Prepare creates active snapshot key on committed parent ("" for none) and
// returns the mounts of its writable tree.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	sn, err := s.store.Create(ctx, key, parent, snapshot.KindActive, storage.CreateOptions{Work: true})
	if err != nil {
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

// mounts describes sn's tree: its own layer alone as a bind mount when it has
// no parent (a view of one layer is that layer, read-only), else an overlay
// of its parents' layers, with sn's upper and work dirs if it is active.
func (s *Snapshotter) mounts(sn storage.Snapshot) []snapshot.Mount {
	active := sn.Info.Kind == snapshot.KindActive
	switch {
	case len(sn.ParentIDs) == 0 && active:
		return []snapshot.Mount{{Type: "bind", Source: s.store.FS(sn.ID), Options: []string{"rbind", "rw"}}}
	case len(sn.ParentIDs) == 0:
		return []snapshot.Mount{{Type: "bind", Source: s.store.FS(sn.ID), Options: []string{"rbind", "ro"}}}
	case len(sn.ParentIDs) == 1 && !active:
		// overlayfs needs an upper dir or two lower dirs.
		return []snapshot.Mount{{Type: "bind", Source: s.store.FS(sn.ParentIDs[0]), Options: []string{"rbind", "ro"}}}
	}
	lower := make([]string, len(sn.ParentIDs))
	for i, id := range sn.ParentIDs {
		lower[i] = escape(s.store.FS(id))
	}
	var opts []string
	if active {
		// index=off: with the index on, an upper dir is tied to the lower
		// layers it was first mounted on, and copy-up of hardlinks would
		// differ with the kernel's default; containerd turns it off too.
		opts = []string{"index=off", "workdir=" + escape(s.store.Work(sn.ID)), "upperdir=" + escape(s.store.FS(sn.ID))}
	} else {
		opts = []string{"ro"}
	}
	opts = append(opts, "lowerdir="+strings.Join(lower, ":"))
	return []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

// escape backslash-escapes what overlayfs splits its options at.
func escape(p string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`).Replace(p)
}

// Commit makes active snapshot key the committed snapshot name; its upper dir
// becomes a layer as it is. Unmount it first: writes through a mount that
// outlives the commit would change a committed layer.
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

// Usage returns the space used by key's own layer (and work dir).
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

// StagingDir creates an empty directory under the root to unpack one layer
// into, with overlay whiteouts (0:0 char devices, trusted.overlay.opaque).
func (s *Snapshotter) StagingDir(ctx context.Context) (string, error) {
	return s.store.StagingDir(ctx)
}

// Import renames staging dir dir to be the layer of committed snapshot name
// on top of committed parent ("" for none). On error dir stays staged.
func (s *Snapshotter) Import(ctx context.Context, name, parent, dir string) error {
	if _, err := s.store.Create(ctx, name, parent, snapshot.KindCommitted, storage.CreateOptions{Staged: dir}); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// RemoveStaging deletes a staging directory that will not be imported.
func (s *Snapshotter) RemoveStaging(dir string) error {
	return s.store.RemoveStaging(dir)
}

// Supported returns nil if overlayfs works on root's filesystem as hull uses
// it: the filesystem reports file types in readdir (overlayfs needs d_type),
// and an overlay of two lower layers and an upper layer mounts there and
// shows a file of each. It mounts on a temporary directory under root, which
// it removes.
func Supported(root string) (err error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("overlay check: %w", err)
	}
	dir, err := os.MkdirTemp(root, ".overlay-check-")
	if err != nil {
		return fmt.Errorf("overlay check: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("overlay check: %w", rerr)
		}
	}()
	names := []string{"l1", "l2", "upper", "work", "merged"}
	for _, n := range names {
		if err := os.Mkdir(filepath.Join(dir, n), 0o700); err != nil {
			return fmt.Errorf("overlay check: %w", err)
		}
	}
	for _, n := range names[:3] {
		if err := os.WriteFile(filepath.Join(dir, n, n), nil, 0o600); err != nil {
			return fmt.Errorf("overlay check: %w", err)
		}
	}
	if err := hasDType(filepath.Join(dir, "l1")); err != nil {
		return fmt.Errorf("overlay check: %w", err)
	}
	merged := filepath.Join(dir, "merged")
	m := snapshot.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"index=off",
		"workdir=" + escape(filepath.Join(dir, "work")),
		"upperdir=" + escape(filepath.Join(dir, "upper")),
		"lowerdir=" + escape(filepath.Join(dir, "l1")) + ":" + escape(filepath.Join(dir, "l2")),
	}}
	if err := snapshot.MountAll([]snapshot.Mount{m}, merged); err != nil {
		return fmt.Errorf("overlay check: %w", err)
	}
	defer func() {
		if uerr := snapshot.UnmountAll(merged); uerr != nil && err == nil {
			err = fmt.Errorf("overlay check: %w", uerr)
		}
	}()
	for _, n := range names[:3] {
		if _, err := os.Lstat(filepath.Join(merged, n)); err != nil {
			return fmt.Errorf("overlay check: the overlay does not show its layers: %w", err)
		}
	}
	return nil
}

// hasDType reads dir (which holds one regular file) with getdents64 and
// fails if the filesystem leaves d_type unknown.
func hasDType(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return fmt.Errorf("getdents %s: %w", dir, err)
	}
	// struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name.
	for off := 0; off+19 <= n; {
		reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
		if reclen == 0 {
			break
		}
		name := buf[off+19 : off+reclen]
		if i := strings.IndexByte(string(name), 0); i >= 0 {
			name = name[:i]
		}
		if s := string(name); s != "." && s != ".." {
			if buf[off+18] == unix.DT_UNKNOWN {
				return errors.New("the filesystem does not report file types (d_type), which overlayfs needs")
			}
			return nil
		}
		off += reclen
	}
	return fmt.Errorf("getdents %s: no entry", dir)
}
