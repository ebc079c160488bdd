package copier

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// walker writes a tree as a tar stream, reaching every node through the fd
// of its parent directory.
type walker struct {
	ctx   context.Context
	tw    *tar.Writer
	opts  Options
	where string
	res   Result
	// links maps a regular file with several links to the name it was
	// first written under: its other names become hardlinks to that.
	links map[[2]uint64]string
	buf   []byte
}

// writeTar writes the source as a tar stream to w, its top entry named
// name, and closes the stream (not w).
func (s *source) writeTar(ctx context.Context, w io.Writer, name string, opts Options) (Result, error) {
	// Regular files are reopened through /proc/self/fd: it has to be the
	// kernel's procfs, not something mounted over it.
	var sfs unix.Statfs_t
	if err := unix.Statfs("/proc/self/fd", &sfs); err != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
		return Result{}, fmt.Errorf("/proc is not procfs (%v): cannot reopen files safely", err)
	}
	wk := &walker{ctx: ctx, tw: tar.NewWriter(w), opts: opts, where: s.root.where, links: map[[2]uint64]string{}, buf: make([]byte, 1<<20)}
	// The source fd stays the caller's: add gets a duplicate.
	fd, err := unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return Result{}, fmt.Errorf("dup: %w", err)
	}
	if err := wk.add(fd, s.st, name, s.shown, s.st.Dev); err != nil {
		return wk.res, err
	}
	if err := wk.tw.Close(); err != nil {
		return wk.res, fmt.Errorf("writing the tar stream: %w", err)
	}
	return wk.res, nil
}

// add writes the node fd (O_PATH, closed by add) with stat st as the tar
// entry name; shown names it in messages; parentDev is its parent
// directory's device, to notice mount crossings.
func (w *walker) add(fd int, st unix.Stat_t, name, shown string, parentDev uint64) error {
	defer unix.Close(fd)
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if len(name) >= unix.PathMax {
		return fmt.Errorf("%s %s: the path is longer than %d bytes", shown, w.where, unix.PathMax-1)
	}
	typ := st.Mode & unix.S_IFMT
	// A mount below the source (a volume, /proc in a running container):
	// data mounts are copied, pseudo filesystems are left out, except for
	// an empty directory standing for the mountpoint.
	skipContents := false
	if st.Dev != parentDev {
		fsName, err := pseudo(fd)
		if err != nil {
			return fmt.Errorf("statfs %s %s: %w", shown, w.where, err)
		}
		if fsName != "" {
			if typ != unix.S_IFDIR {
				return nil
			}
			skipContents = true
		}
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		// PAX keeps sub-second times and any name length.
		Format: tar.FormatPAX,
	}
	switch typ {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if err := w.write(hdr, shown); err != nil {
			return err
		}
		if skipContents {
			return nil
		}
		return w.addChildren(fd, st, name, shown)
	case unix.S_IFREG:
		return w.addFile(fd, st, hdr, shown)
	case unix.S_IFLNK:
		target, err := readlinkFd(fd)
		if err != nil {
			return fmt.Errorf("readlink %s %s: %w", shown, w.where, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return w.write(hdr, shown)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		if typ != unix.S_IFIFO {
			hdr.Typeflag = tar.TypeChar
			if typ == unix.S_IFBLK {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		}
		return w.write(hdr, shown)
	default:
		// Sockets have no tar form; they mean nothing outside their
		// process anyway.
		return nil
	}
}

// write writes a header (its content follows), or leaves the entry out if
// the options say so; shown names it in Result.Skipped.
func (w *walker) write(hdr *tar.Header, shown string) error {
	if !applyOptions(hdr, w.opts) {
		w.res.Skipped = append(w.res.Skipped, shown)
		return nil
	}
	if hdr.Typeflag == tar.TypeDir && hdr.Name != "." {
		hdr.Name += "/"
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
	}
	return nil
}

// addChildren writes the entries of the directory fd (O_PATH), sorted by
// name, each opened relative to it with O_NOFOLLOW.
func (w *walker) addChildren(fd int, st unix.Stat_t, name, shown string) error {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the directory %s %s: %w", shown, w.where, err)
	}
	d := os.NewFile(uintptr(dfd), shown)
	names, err := d.Readdirnames(-1)
	if err != nil {
		d.Close()
		return fmt.Errorf("read the directory %s %s: %w", shown, w.where, err)
	}
	slices.Sort(names)
	defer d.Close()
	for _, n := range names {
		cfd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // removed since the listing
		}
		childShown := shown + "/" + n
		if shown == "/" {
			childShown = "/" + n
		}
		if err != nil {
			return fmt.Errorf("open %s %s: %w", childShown, w.where, err)
		}
		var cst unix.Stat_t
		if err := unix.Fstat(cfd, &cst); err != nil {
			unix.Close(cfd)
			return fmt.Errorf("stat %s %s: %w", childShown, w.where, err)
		}
		childName := n
		if name != "." {
			childName = name + "/" + n
		}
		if err := w.add(cfd, cst, childName, childShown, st.Dev); err != nil {
			return err
		}
	}
	return nil
}

// addFile writes a regular file: a hardlink entry if the copy already has
// it under another name, else its content, read through a reopening of the
// O_PATH fd (which cannot be anything but this regular file).
func (w *walker) addFile(fd int, st unix.Stat_t, hdr *tar.Header, shown string) error {
	key := [2]uint64{st.Dev, st.Ino}
	if st.Nlink > 1 {
		if first, ok := w.links[key]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return w.write(hdr, shown)
		}
		w.links[key] = hdr.Name
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_RDONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s %s: %w", shown, w.where, err)
	}
	defer f.Close()
	if err := w.write(hdr, shown); err != nil {
		return err
	}
	n, err := io.CopyBuffer(w.tw, io.LimitReader(f, st.Size), w.buf)
	w.res.Bytes += n
	if err != nil {
		return fmt.Errorf("read %s %s: %w", shown, w.where, err)
	}
	if n < st.Size {
		// A file that grows is copied as it was when stat'ed; one that
		// shrinks has no content left to fill its entry.
		return fmt.Errorf("read %s %s: it shrank from %d to %d bytes during the copy", shown, w.where, st.Size, n)
	}
	return nil
}
