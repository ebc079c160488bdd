//go:build !linux

package unpack

import (
	"context"
	"errors"
	"io"
)

// Apply extracts the uncompressed tar stream r into dir. Only Linux has the
// syscalls (openat2, *at calls on fds) that make it safe; elsewhere it fails.
func Apply(ctx context.Context, dir string, r io.Reader, opts Options) (Stats, error) {
	return Stats{}, errors.ErrUnsupported
}

// Sync flushes the filesystem holding dir; Linux only.
func Sync(dir string) error {
	return errors.ErrUnsupported
}
