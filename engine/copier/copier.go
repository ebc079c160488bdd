// Package copier copies files between the host and a container's root
// filesystem: the library behind `hull cp`, with Docker's `docker cp` rules.
//
// It exists because a container's files are hostile to the host process
// that copies them as root (CVE-2018-15664: a path swapped for a symlink
// during the copy; CVE-2019-14271: a container's binary run by the copier).
// So:
//
//   - A Root is an fd of a directory that every path is resolved in:
//     openat2(2) with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS, so "..",
//     absolute symlinks and symlinks full of ".." stay inside it, and
//     /proc/PID/... magic links are refused. No host path string holding a
//     container-controlled part is ever resolved again.
//   - Below the start of a copy, everything is reached with *at calls on
//     directory fds and O_NOFOLLOW; regular files are opened O_PATH first
//     and reopened only once fstat shows they are regular files, so a
//     device node swapped in is never opened.
//   - Writing goes through image/unpack.Apply rooted at an fd of the target
//     directory, with whiteouts off and no replacing a directory by a file
//     or the reverse.
//   - Pseudo filesystems (proc, sysfs, cgroup ...) are neither read nor
//     written: their files are kernel interfaces, not data.
//   - Nothing from the container is executed: the tar streams are made and
//     read here.
package copier

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/image/unpack"
)

// Root is a directory that paths are resolved in as if it were "/": a
// container's root filesystem, or the host's "/".
type Root struct {
	f *os.File // O_PATH|O_DIRECTORY
	// where names the root in messages: "in container web", "on the host".
	where string
}

// OpenRoot opens dir, a trusted path (the host's "/", /proc/PID/root, a
// container's rootfs mountpoint), as a Root; where names it in messages.
func OpenRoot(dir, where string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the root %s: %w", dir, err)
	}
	return &Root{f: os.NewFile(uintptr(fd), dir), where: where}, nil
}

// NewRoot makes a Root of an open directory, which the Root owns from then
// on (Close closes it).
func NewRoot(f *os.File, where string) *Root { return &Root{f: f, where: where} }

// Close closes the root's fd.
func (r *Root) Close() error { return r.f.Close() }

// Owner is a uid and gid.
type Owner struct{ UID, GID int }

// Options control a copy.
type Options struct {
	// FollowLink follows a symlink in the last component of the source
	// (docker cp -L); otherwise the symlink itself is copied.
	FollowLink bool
	// Owner, if set, owns everything written; nil keeps the source's ids
	// (docker cp -a).
	Owner *Owner
	// Sanitize is for copies from a container onto the host without -a: the
	// written files lose setuid and setgid bits and xattrs (file
	// capabilities), and device nodes are skipped (listed in
	// Result.Skipped), so that a container cannot plant a setuid binary or
	// a raw disk device in the user's directory.
	Sanitize bool
}

// Result is what a copy did.
type Result struct {
	// Bytes of regular-file content copied.
	Bytes int64
	// Skipped lists the entries that Sanitize left out: source paths, or
	// tar names for ExtractArchive.
	Skipped []string
}

// Error is a copy error that names the path and what is wrong with it; Err
// is the cause, for errors.Is (fs.ErrNotExist ...).
type Error struct {
	Msg string
	Err error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// display is a path as messages show it: always absolute.
func display(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

// Copy copies srcPath in src to dstPath in dst by Docker's rules:
//
//   - a file (or a symlink, device ...) to a missing dstPath is created as
//     dstPath; to an existing directory goes into it under its own name;
//     over an existing non-directory replaces it; to a missing dstPath
//     ending in "/" is an error.
//   - a directory to a missing dstPath is created as dstPath with the
//     source's contents; to an existing directory is copied into it under
//     its own name, or, if srcPath ends in "/.", its contents are; to an
//     existing file is an error.
//
// A symlink as dstPath (or on the way to it) is followed inside dst.
func Copy(ctx context.Context, src *Root, srcPath string, dst *Root, dstPath string, opts Options) (Result, error) {
	s, err := src.openSource(srcPath, opts.FollowLink)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	d, err := dst.resolve(dstPath)
	if err != nil {
		return Result{}, err
	}
	dir, name, err := plan(s, srcPath, src, d, dstPath, dst)
	if err != nil {
		return Result{}, err
	}
	return dst.extract(ctx, dir, display(dstPath), func(w io.Writer) (Result, error) {
		return s.writeTar(ctx, w, name, opts)
	})
}

// plan applies Docker's rules: the directory (resolved, relative to dst's
// root) to extract into and the name the source's top entry gets there
// ("." for its contents).
func plan(s *source, srcPath string, src *Root, d destination, dstPath string, dst *Root) (dir, name string, err error) {
	base := s.base
	if s.isDir && s.contents {
		base = "."
	}
	switch {
	case d.exists && d.isDir:
		return d.path, base, nil
	case d.exists && s.isDir:
		return "", "", &Error{Msg: fmt.Sprintf("cannot copy the directory %s %s to %s %s: it exists and is not a directory",
			display(srcPath), src.where, display(dstPath), dst.where), Err: unix.ENOTDIR}
	case !d.exists && !s.isDir && strings.HasSuffix(dstPath, "/"):
		return "", "", &Error{Msg: fmt.Sprintf("the destination directory %s does not exist %s", display(dstPath), dst.where), Err: fs.ErrNotExist}
	}
	// A missing destination is created as the source; an existing file is
	// replaced by it.
	dir, name = path.Split(d.path)
	return strings.TrimSuffix(dir, "/"), name, nil
}

// WriteArchive writes srcPath in src to w as a tar stream (`docker cp
// CONTAINER:SRC -`): its top entry is named after srcPath's last component,
// or "." if srcPath ends in "/.".
func WriteArchive(ctx context.Context, w io.Writer, src *Root, srcPath string, followLink bool) (Result, error) {
	s, err := src.openSource(srcPath, followLink)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	name := s.base
	if s.isDir && s.contents {
		name = "."
	}
	bw := bufio.NewWriterSize(w, 128<<10)
	res, err := s.writeTar(ctx, bw, name, Options{FollowLink: followLink})
	if err != nil {
		return res, err
	}
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("writing the tar stream: %w", err)
	}
	return res, nil
}

// ExtractArchive extracts the tar stream r into the existing directory
// dstPath in dst (`docker cp - CONTAINER:DEST`).
func ExtractArchive(ctx context.Context, r io.Reader, dst *Root, dstPath string, opts Options) (Result, error) {
	d, err := dst.resolve(dstPath)
	if err != nil {
		return Result{}, err
	}
	if !d.exists || !d.isDir {
		cause := fs.ErrNotExist
		if d.exists {
			cause = unix.ENOTDIR
		}
		return Result{}, &Error{Msg: fmt.Sprintf("the destination %s %s must be a directory", display(dstPath), dst.where), Err: cause}
	}
	return dst.extract(ctx, d.path, display(dstPath), func(w io.Writer) (Result, error) {
		return filterTar(ctx, w, r, opts)
	})
}

// errReaderGone tells the tar writer that the extraction stopped reading.
var errReaderGone = errors.New("the extraction stopped")

// extract runs write (the tar producer) into a pipe and applies the stream
// to dir (resolved, relative to r) with unpack.Apply, rooted at an fd of
// dir.
func (r *Root) extract(ctx context.Context, dir, shown string, write func(io.Writer) (Result, error)) (Result, error) {
	fd, err := r.openDir(dir, shown)
	if err != nil {
		return Result{}, err
	}
	defer unix.Close(fd)
	pr, pw := io.Pipe()
	var res Result
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		bw := bufio.NewWriterSize(pw, 128<<10)
		res, werr = write(bw)
		if werr == nil {
			werr = bw.Flush()
		}
		pw.CloseWithError(werr)
	}()
	// Apply reopens the directory through our own fd: the magic link is
	// resolved by the kernel to exactly that inode.
	_, aerr := unpack.Apply(ctx, "/proc/self/fd/"+strconv.Itoa(fd), pr, unpack.Options{NoWhiteouts: true, NoOverwriteDirNonDir: true})
	pr.CloseWithError(errReaderGone)
	<-done
	if werr != nil && !errors.Is(werr, errReaderGone) {
		return res, werr
	}
	if aerr != nil {
		return res, fmt.Errorf("copy to %s %s: %w", shown, r.where, aerr)
	}
	return res, nil
}

// openDir opens the directory at p (resolved, relative to r) as an O_PATH
// fd and checks that it is one copies may write to.
func (r *Root) openDir(p, shown string) (int, error) {
	fd, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, fmt.Errorf("open the directory %s %s: %w", shown, r.where, err)
	}
	if err := checkFS(fd, shown, r.where); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// filterTar copies the tar stream r to w entry by entry, applying opts to
// each header (always, so that Result counts the same way as for Copy); it
// reads r to its end.
func filterTar(ctx context.Context, w io.Writer, r io.Reader, opts Options) (Result, error) {
	var res Result
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("reading the tar stream: %w", err)
		}
		if !applyOptions(hdr, opts) {
			res.Skipped = append(res.Skipped, hdr.Name)
			continue
		}
		// The writer picks a format that fits the changed header.
		hdr.Format = tar.FormatUnknown
		if err := tw.WriteHeader(hdr); err != nil {
			return res, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		n, err := io.Copy(tw, tr)
		res.Bytes += n
		if err != nil {
			return res, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return res, err
	}
	// What follows the end-of-archive marker is drained, so that a writer
	// feeding r (a pipe into stdin) sees it all read.
	_, err := io.Copy(io.Discard, r)
	return res, err
}

// applyOptions changes hdr as opts say; false: leave the entry out.
func applyOptions(hdr *tar.Header, opts Options) bool {
	if opts.Sanitize {
		switch hdr.Typeflag {
		case tar.TypeChar, tar.TypeBlock:
			return false
		}
		hdr.Mode &^= unix.S_ISUID | unix.S_ISGID
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				delete(hdr.PAXRecords, k)
			}
		}
		//lint:ignore SA1019 the reader fills the deprecated field too, and the writer would bring the xattrs back from it
		hdr.Xattrs = nil
	}
	if opts.Owner != nil {
		hdr.Uid, hdr.Gid = opts.Owner.UID, opts.Owner.GID
		hdr.Uname, hdr.Gname = "", ""
	}
	return true
}
