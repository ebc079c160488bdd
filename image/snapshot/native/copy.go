package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// fileID is an inode, to find the other names of a hardlinked file.
type fileID struct{ dev, ino uint64 }

// copier copies one tree. The source is a committed snapshot (immutable, and
// the snapshotter's own), so it is walked by path; no path is ever followed
// through a symlink (lstat, O_NOFOLLOW, l*xattr, AT_SYMLINK_NOFOLLOW).
type copier struct {
	ctx   context.Context
	links map[fileID]string // first copy of each hardlinked inode
	// noReflink is set once FICLONE says the filesystem cannot share
	// extents, so the other files do not ask again.
	noReflink bool
	cloned    int // files cloned with FICLONE, for tests
}

// copyTree copies the tree at src into dst, an existing empty directory that
// takes src's own attributes: file data (reflinked where the filesystem can
// share extents, else copied in the kernel with holes kept), modes with
// setuid/setgid/sticky, owners, extended attributes (security.capability,
// trusted.overlay.*, ACLs...), hardlinks, symlinks, device nodes, fifos and
// sockets, and access and modification times.
func copyTree(ctx context.Context, src, dst string) error {
	c := &copier{ctx: ctx, links: map[fileID]string{}}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: src, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("copy %s: not a directory", src)
	}
	if err := c.copyDir(src, dst); err != nil {
		return err
	}
	return c.copyMeta(src, dst, &st)
}

func (c *copier) copyDir(src, dst string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	d, err := os.OpenFile(src, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := c.copyEntry(filepath.Join(src, name), filepath.Join(dst, name)); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) copyEntry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: src, Err: err}
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		id := fileID{uint64(st.Dev), st.Ino}
		if first, ok := c.links[id]; ok {
			// The inode and its attributes are already copied.
			if err := unix.Link(first, dst); err != nil {
				return &os.LinkError{Op: "link", Old: first, New: dst, Err: err}
			}
			return nil
		}
		c.links[id] = dst
	}
	var err error
	switch typ {
	case unix.S_IFDIR:
		// Owner-writable until its children are in; copyMeta sets its mode.
		if err = unix.Mkdir(dst, 0o700); err == nil {
			err = c.copyDir(src, dst)
		}
	case unix.S_IFREG:
		err = c.copyFile(src, dst, &st)
	case unix.S_IFLNK:
		var target string
		if target, err = os.Readlink(src); err == nil {
			err = unix.Symlink(target, dst)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		err = unix.Mknod(dst, st.Mode, int(st.Rdev))
	default:
		err = fmt.Errorf("unknown file type %#o", typ)
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return c.copyMeta(src, dst, &st)
}

func (c *copier) copyFile(src, dst string, st *unix.Stat_t) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if !c.noReflink {
		err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
		if err == nil {
			c.cloned++
			return out.Close()
		}
		switch err {
		case unix.EOPNOTSUPP, unix.ENOTTY, unix.EXDEV, unix.EINVAL, unix.ENOSYS:
			c.noReflink = true
		}
		// Any other failure (a transient one on one file) falls back too.
	}
	if err := copyData(out, in, st.Size); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyData copies in's data segments to out (by copy_file_range or
// sendfile, through io.Copy) and skips its holes, so sparse files (lastlog
// in many images) stay sparse.
func copyData(out, in *os.File, size int64) error {
	ifd := int(in.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(ifd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // only a hole up to the end
		}
		if err != nil {
			return fmt.Errorf("seek data in %s: %w", in.Name(), err)
		}
		hole, err := unix.Seek(ifd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seek hole in %s: %w", in.Name(), err)
		}
		if _, err := in.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := out.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(out, in, hole-data); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		off = hole
	}
	return out.Truncate(size)
}

// copyMeta gives dst src's owner, xattrs, mode and times, in the order that
// keeps each: chown clears setuid/setgid bits and security.capability, so
// they come after it; times come last, as every other change updates them.
func (c *copier) copyMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &fs.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Fchmodat(unix.AT_FDCWD, dst, st.Mode&0o7777, 0); err != nil {
			return &fs.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: dst, Err: err}
	}
	return nil
}

func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		val, err := getXattr(src, name)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "getxattr " + name, Path: src, Err: err}
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			return &fs.PathError{Op: "setxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	for {
		n, err := unix.Llistxattr(path, nil)
		if err == unix.ENOTSUP || (err == nil && n == 0) {
			return nil, nil
		}
		if err != nil {
			return nil, &fs.PathError{Op: "listxattr", Path: path, Err: err}
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(path, buf)
		if err == unix.ERANGE {
			continue // grew in between
		}
		if err != nil {
			return nil, &fs.PathError{Op: "listxattr", Path: path, Err: err}
		}
		var names []string
		for start, i := 0, 0; i < n; i++ {
			if buf[i] == 0 {
				if i > start {
					names = append(names, string(buf[start:i]))
				}
				start = i + 1
			}
		}
		return names, nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	for {
		n, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = unix.Lgetxattr(path, name, buf)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
