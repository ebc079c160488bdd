// Package snapshot defines the Snapshotter interface of hull's image store:
// filesystem snapshots that layers are unpacked into and containers run on,
// after containerd's (Prepare/View/Commit/Remove, returning mount
// descriptions instead of mounted paths), and its implementations: overlay
// (overlayfs upper/work dirs) and native (full copies, where overlayfs is
// unavailable).
//
// A snapshot is identified by a key. Prepare makes an active (writable)
// snapshot on top of a committed parent ("" for none), View a read-only one;
// Commit turns an active snapshot into a committed one under a new name, which
// can then be a parent. A committed snapshot with children cannot be removed.
package snapshot

import (
	"context"
	"errors"
	"time"
)

// Kind is the state of a snapshot.
type Kind string

// Snapshot kinds.
const (
	KindActive    Kind = "active"    // writable, from Prepare
	KindView      Kind = "view"      // read-only, from View
	KindCommitted Kind = "committed" // immutable, from Commit; can be a parent
)

// Info describes a snapshot.
type Info struct {
	Key     string
	Parent  string // key of the committed parent, "" for none
	Kind    Kind
	Created time.Time
}

// Usage is the disk space a snapshot's own directory holds (not its parents').
type Usage struct {
	Size   int64 // bytes, counted in allocated blocks
	Inodes int64
}

// Mount describes one mount the caller performs, as mount(8) takes it: the
// snapshotter never mounts a snapshot for its users.
type Mount struct {
	Type    string   // "overlay", "bind"
	Source  string   // "overlay", or the directory for a bind
	Options []string // e.g. "lowerdir=...", "upperdir=...", "workdir=...", "ro", "rbind"
}

// Errors; implementations wrap them (errors.Is).
var (
	ErrNotExist      = errors.New("snapshot does not exist")
	ErrExist         = errors.New("snapshot already exists")
	ErrFailedPrecond = errors.New("snapshot in the wrong state") // e.g. a parent that is not committed, removing a parent with children
)

// Snapshotter keeps filesystem snapshots. Implementations are safe for
// concurrent use by the goroutines of one process and by several processes
// sharing a root (their metadata is serialised with a file lock or bbolt).
type Snapshotter interface {
	// Stat returns the snapshot's info.
	Stat(ctx context.Context, key string) (Info, error)
	// Prepare creates an active snapshot key on top of committed parent ("" for
	// none) and returns the mounts that give its writable tree.
	Prepare(ctx context.Context, key, parent string) ([]Mount, error)
	// View creates a read-only snapshot key of committed parent.
	View(ctx context.Context, key, parent string) ([]Mount, error)
	// Mounts returns the mounts of an active snapshot or view.
	Mounts(ctx context.Context, key string) ([]Mount, error)
	// Commit makes active snapshot key a committed snapshot called name; key
	// no longer exists afterwards.
	Commit(ctx context.Context, name, key string) error
	// Remove deletes a snapshot and its directory. A committed snapshot that
	// is the parent of another cannot be removed (ErrFailedPrecond).
	Remove(ctx context.Context, key string) error
	// Walk calls fn for every snapshot; an error from fn stops the walk.
	Walk(ctx context.Context, fn func(Info) error) error
	// Usage returns the space used by the snapshot's own directory.
	Usage(ctx context.Context, key string) (Usage, error)
	// Close releases the snapshotter's resources (the metadata db).
	Close() error
}

// Importer is implemented by snapshotters whose layer directories do not
// depend on their parents (overlay upper dirs): a layer can be unpacked into a
// staging directory before its parent exists, so an image's layers unpack in
// parallel, and then be installed in order.
type Importer interface {
	// StagingDir creates an empty directory on the snapshotter's filesystem to
	// unpack one layer into (with overlay whiteouts); it is gone after Import
	// or RemoveStaging.
	StagingDir(ctx context.Context) (string, error)
	// Import makes staging dir the committed snapshot name on top of committed
	// parent ("" for none), without copying it.
	Import(ctx context.Context, name, parent, dir string) error
	// RemoveStaging deletes a staging directory that will not be imported.
	RemoveStaging(dir string) error
}
