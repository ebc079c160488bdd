package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/image/ref"
	"github.com/hull-runtime/hull/image/snapshot"
	"github.com/hull-runtime/hull/image/unpack"
)

func typesMediaType(s string) types.MediaType { return types.MediaType(s) }

// applyVerified decompresses a layer blob stream, unpacks it into dir and
// checks that the uncompressed stream is the layer's diff id from the image
// config: the config, whose digest the manifest pins, vouches for the
// content, not only for the compressed bytes.
func applyVerified(ctx context.Context, dir string, compressed io.Reader, diffID digest.Digest, overlay bool) (unpack.Stats, error) {
	dr, err := unpack.Decompress(compressed)
	if err != nil {
		return unpack.Stats{}, err
	}
	defer dr.Close()
	h := diffID.Algorithm().Hash()
	tr := io.TeeReader(dr, h)
	st, err := unpack.Apply(ctx, dir, tr, unpack.Options{OverlayWhiteouts: overlay})
	if err != nil {
		return st, err
	}
	// The tar reader stops at the end-of-archive marker; the diff id covers
	// the whole stream, padding included.
	if _, err := io.CopyBuffer(io.Discard, tr, make([]byte, 64<<10)); err != nil {
		return st, fmt.Errorf("read layer: %w", err)
	}
	if got := digest.NewDigest(diffID.Algorithm(), h); got != diffID {
		return st, fmt.Errorf("layer content is %s, the image config says %s (rootfs.diff_ids)", got, diffID)
	}
	return st, nil
}

// fetchUnpack downloads a layer and unpacks it into dir as the bytes arrive.
func (s *Service) fetchUnpack(ctx context.Context, r ref.Ref, j *layerJob, dir, lease string, bar *bar, overlay bool) error {
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		st, err := applyVerified(ctx, dir, pr, j.diffID, overlay)
		j.implicit = st.ImplicitDirs
		// Unblock the download if the unpacker stopped early.
		pr.CloseWithError(errOr(err, errors.New("unpacker finished")))
		errc <- err
	}()
	ferr := s.fetch(ctx, r, j.desc, lease, io.MultiWriter(pw, bar))
	pw.CloseWithError(ferr)
	uerr := <-errc
	if ferr != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, ferr)
	}
	if uerr != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, uerr)
	}
	return nil
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// unpackNative unpacks a layer on top of its parent with Prepare/Commit: for
// snapshotters whose layers hold their parents' content (native copies).
func (s *Service) unpackNative(ctx context.Context, j *layerJob) error {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	key := "extract-" + hex.EncodeToString(b) + "-" + j.chainID.Encoded()
	mounts, err := s.Snapshots.Prepare(ctx, key, j.parent.String())
	if err != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = s.Snapshots.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	dir, cleanup, err := mountedDir(mounts)
	if err != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	defer cleanup()
	f, err := s.Content.Open(j.desc.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := applyVerified(ctx, dir, f, j.diffID, false); err != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	if err := unpack.Sync(dir); err != nil {
		return err
	}
	if err := s.Snapshots.Commit(ctx, j.chainID.String(), key); err != nil {
		if errors.Is(err, snapshot.ErrExist) {
			return nil // another pull got there first; ours is removed above
		}
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	ok = true
	return nil
}

// mountedDir gives a directory with the tree of mounts: a bind mount's
// source directly, anything else mounted on a temporary directory.
func mountedDir(mounts []snapshot.Mount) (string, func(), error) {
	if len(mounts) == 1 && mounts[0].Type == "bind" {
		return mounts[0].Source, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "hull-unpack-")
	if err != nil {
		return "", nil, err
	}
	if err := snapshot.MountAll(mounts, dir); err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, func() {
		_ = snapshot.UnmountAll(dir)
		os.Remove(dir)
	}, nil
}

// fixImplicit gives the directories a staged overlay layer made for parents
// it did not list (unpack.Stats.ImplicitDirs) the mode and owner of the same
// directory in the layers below, as applying the layer onto the merged tree
// would have: in an overlay, the upper directory's metadata wins. It
// reports false when the layer went through something else below (a
// symlink or a file on the way): the staged tree is then wrong, and the
// layer must be applied onto a mounted overlay instead.
func (s *Service) fixImplicit(ctx context.Context, j *layerJob) (bool, error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	key := "extract-" + hex.EncodeToString(b) + "-lower"
	mounts, err := s.Snapshots.View(ctx, key, j.parent.String())
	if err != nil {
		return false, fmt.Errorf("layer %s: view its parent: %w", j.desc.Digest, err)
	}
	defer func() { _ = s.Snapshots.Remove(context.WithoutCancel(ctx), key) }()
	lower, cleanup, err := mountedDir(mounts)
	if err != nil {
		return false, fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	defer cleanup()
	for _, p := range j.implicit {
		st, found, err := statBelow(lower, p)
		if err != nil {
			return false, fmt.Errorf("layer %s: %w", j.desc.Digest, err)
		}
		if !found {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return false, nil
		}
		if err := setDirMeta(j.staging, p, st); err != nil {
			return false, fmt.Errorf("layer %s: %w", j.desc.Digest, err)
		}
	}
	return true, nil
}

// statBelow looks p up in root component by component without following
// symlinks: found is false when p (or a parent) does not exist; a
// non-directory on the way is returned as the result.
func statBelow(root, p string) (unix.Stat_t, bool, error) {
	var st unix.Stat_t
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, false, err
	}
	defer func() { unix.Close(fd) }()
	parts := strings.Split(p, "/")
	for i, c := range parts {
		if err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return st, false, nil
			}
			return st, false, fmt.Errorf("stat %s below: %w", p, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || i == len(parts)-1 {
			return st, true, nil
		}
		next, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return st, false, fmt.Errorf("open %s below: %w", p, err)
		}
		unix.Close(fd)
		fd = next
	}
	return st, true, nil
}

// setDirMeta sets mode and owner of directory p inside root, resolved in
// the root and never through a symlink.
func setDirMeta(root, p string, st unix.Stat_t) error {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, p, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return fmt.Errorf("open staged %s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown staged %s: %w", p, err)
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod staged %s: %w", p, err)
	}
	return nil
}
