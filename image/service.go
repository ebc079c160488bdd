// Package image is the engine's image service: it ties the registry client,
// the content store, the layer applier, a snapshotter and the metadata store
// together into pull, push, list, tag, remove, save, load, import, disk
// usage and garbage collection.
//
// Layout under the engine's --root:
//
//	content/          blobs (image/content)
//	snapshots/<name>/ snapshotter root (image/snapshot/overlay or native)
//	metadata.db       names, unpacked records, leases (store)
package image

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hull-runtime/hull/image/content"
	"github.com/hull-runtime/hull/image/registry"
	"github.com/hull-runtime/hull/image/snapshot"
	"github.com/hull-runtime/hull/store"
)

// Service is the image side of one engine root.
type Service struct {
	Root            string
	Content         *content.Store
	Snapshots       snapshot.Snapshotter
	SnapshotterName string
	DB              *store.DB
	Registry        *registry.Client
	Log             *slog.Logger
	// Parallel is how many blobs download (and layers unpack) at once.
	Parallel int
	// Progress receives progress output (a TTY gets bars); nil for none.
	Progress io.Writer
}

// Options configure New.
type Options struct {
	Root string
	// Snapshotter is "overlay", "native" or "" (overlay where the kernel and
	// filesystem support it, else native).
	Snapshotter string
	Registry    registry.Config
	Log         *slog.Logger
	Parallel    int
}

// New opens (creating if needed) the image store under o.Root. The
// snapshotter is constructed by the caller's choice of newSnapshotter
// (cmd/hull wires overlay and native).
func New(o Options, snapshotterName string, snaps snapshot.Snapshotter) (*Service, error) {
	if err := os.MkdirAll(o.Root, 0o711); err != nil {
		return nil, fmt.Errorf("image store %s: %w", o.Root, err)
	}
	cs, err := content.Open(filepath.Join(o.Root, "content"))
	if err != nil {
		return nil, err
	}
	db, err := store.Open(filepath.Join(o.Root, "metadata.db"))
	if err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	par := o.Parallel
	if par <= 0 {
		par = 3
	}
	return &Service{
		Root: o.Root, Content: cs, Snapshots: snaps, SnapshotterName: snapshotterName, DB: db,
		Registry: registry.New(o.Registry), Log: log, Parallel: par,
	}, nil
}

// Close releases the snapshotter.
func (s *Service) Close() error {
	if s.Snapshots != nil {
		return s.Snapshots.Close()
	}
	return nil
}

// ctxErr is ctx's error wrapped with what was being done.
func ctxErr(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
