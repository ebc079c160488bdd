//go:build linux

package unpack

import (
	"os"

	"golang.org/x/sys/unix"
)

// Sync flushes the whole filesystem holding dir to disk with syncfs(2). Apply
// does no fsync of its own (one per file would dominate the cost of unpacking);
// the caller syncs a snapshot once, after its last layer and before it records
// the snapshot as committed.
func Sync(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}
