//go:build linux

package unpack

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	// whiteoutMeta prefixes AUFS bookkeeping entries (".wh..wh.plnk",
	// ".wh..wh.aufs"), which carry nothing for the image.
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"

	overlayOpaqueXattr = "trusted.overlay.opaque"
	paxXattrPrefix     = "SCHILY.xattr."

	// copyBufferSize is the unit of file content reads and writes: large
	// enough that big files cost few syscalls.
	copyBufferSize = 1 << 20
)

// applier is the state of one Apply.
type applier struct {
	ctx       context.Context
	opts      Options
	noOpenat2 bool

	rootFile *os.File  // owns the root fd
	rootDir  dirHandle // the root, resolved once from the caller's path
	cache    dirCache

	// created holds (parent dir, name) of every node this layer made or
	// reused, in native mode only: an opaque marker removes from its
	// directory everything else, i.e. what earlier layers put there,
	// whichever side of the marker the layer's own entries are. Parents are
	// identified by inode rather than path, so entries reached through a
	// symlink are recognised too.
	created map[nodeKey]struct{}

	// dirTimes are the times of the layer's directories, set after all
	// entries since creating a child changes its parent's mtime.
	dirTimes []dirTime

	buf   []byte
	stats Stats
	// implicit holds the directories made for missing parents that no
	// entry has listed (yet).
	implicit map[string]bool
}

type nodeKey struct {
	dev, ino uint64 // the parent directory
	name     string
}

type dirTime struct {
	path     string
	dev, ino uint64 // the directory the times belong to, in case path changed
	times    [2]unix.Timespec
}

// Apply extracts the uncompressed tar stream r into dir.
//
// dir is trusted (it is the caller's snapshot directory); everything in r is
// not: see the package doc for how paths are resolved. Apply must run with
// the privileges to chown, mknod and set trusted.* xattrs (root). On error,
// dir is left partly applied: the caller discards the snapshot. Apply reads r
// to its end, past the tar's end-of-archive marker, so that a decompressor or
// digest verifier reading beneath it sees the whole stream.
func Apply(ctx context.Context, dir string, r io.Reader, opts Options) (Stats, error) {
	return apply(ctx, dir, r, opts, false)
}

// apply is Apply; noOpenat2 makes it resolve paths with filepath-securejoin
// as it does on kernels older than 5.6, so that tests cover that path too.
func apply(ctx context.Context, dir string, r io.Reader, opts Options, noOpenat2 bool) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, fmt.Errorf("unpack: %w", err)
	}
	rootFile, rootDir, err := openRoot(dir)
	if err != nil {
		return Stats{}, fmt.Errorf("unpack: %w", err)
	}
	a := &applier{
		ctx:       ctx,
		opts:      opts,
		noOpenat2: noOpenat2,
		rootFile:  rootFile,
		rootDir:   rootDir,
		cache:     dirCache{m: make(map[string]dirHandle)},
		implicit:  make(map[string]bool),
		buf:       make([]byte, copyBufferSize),
	}
	if !opts.OverlayWhiteouts {
		a.created = make(map[nodeKey]struct{})
	}
	defer a.close()
	err = a.run(r)
	for p := range a.implicit {
		a.stats.ImplicitDirs = append(a.stats.ImplicitDirs, p)
	}
	slices.Sort(a.stats.ImplicitDirs)
	return a.stats, err
}

func (a *applier) close() {
	a.cache.close()
	a.rootFile.Close()
}

func (a *applier) run(r io.Reader) error {
	// tar reads headers 512 bytes at a time; the buffer turns those into
	// large reads of r. Content reads of a full buffer or more bypass it.
	br := bufio.NewReaderSize(r, 128<<10)
	tr := tar.NewReader(br)
	last := ""
	for {
		if err := a.ctx.Err(); err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if a.stats.Entries == 0 {
				return fmt.Errorf("unpack: reading the first tar header: %w", err)
			}
			return fmt.Errorf("unpack: reading the tar header after entry %s (#%d): %w", quote(last), a.stats.Entries, err)
		}
		a.stats.Entries++
		err = a.applyEntry(tr, hdr)
		// Fds the entry retired from the cache are no longer in use.
		a.cache.release()
		if err != nil {
			return err
		}
		last = hdr.Name
	}
	if err := a.setDirTimes(); err != nil {
		return err
	}
	// Drain what follows the end-of-archive marker: a gzip trailer (its CRC
	// is only checked there) or padding a digest covers.
	for {
		if err := a.ctx.Err(); err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		_, err := br.Read(a.buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack: reading past the end of the tar stream: %w", err)
		}
	}
}

// entryError wraps err with the entry it happened on.
func entryError(hdr *tar.Header, op string, err error) error {
	return fmt.Errorf("unpack: entry %s: %s: %w", quote(hdr.Name), op, err)
}

// quote quotes a name for an error message, shortening very long (hostile)
// names so that the message stays readable.
func quote(name string) string {
	const limit = 256
	if len(name) > limit {
		name = name[:limit-64] + "..." + name[len(name)-61:]
	}
	return fmt.Sprintf("%q", name)
}

func (a *applier) applyEntry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanPath(hdr.Name)
	if err != nil {
		return entryError(hdr, "invalid name", err)
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return entryError(hdr, "invalid entry", fmt.Errorf("the root can only be a directory, not type %q", hdr.Typeflag))
		}
		return a.applyRoot(hdr)
	}
	parent, base := split(name)
	if !a.opts.NoWhiteouts && strings.HasPrefix(base, whiteoutPrefix) {
		return a.applyWhiteout(hdr, parent, base)
	}

	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return entryError(hdr, "unsupported entry", fmt.Errorf("type %q", hdr.Typeflag))
	}
	pd, err := a.resolveDir(parent, true)
	if err != nil {
		return entryError(hdr, "parent directory", err)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		err = a.applyFile(tr, hdr, pd, base)
	case tar.TypeDir:
		err = a.applyDir(hdr, name, pd, base)
	case tar.TypeSymlink:
		err = a.applySymlink(hdr, pd, base)
	case tar.TypeLink:
		err = a.applyHardlink(hdr, pd, base)
	default:
		err = a.applyNode(hdr, pd, base)
	}
	if err != nil {
		return err
	}
	a.markCreated(pd, base)
	// Listed after all: its own metadata, not an implicit directory.
	delete(a.implicit, name)
	return nil
}

// markCreated records that this layer made (or reused) base in pd.
func (a *applier) markCreated(pd dirHandle, base string) {
	if a.created != nil {
		a.created[nodeKey{pd.dev, pd.ino, base}] = struct{}{}
	}
}

// replace removes whatever is at base in pd so that an entry can take its
// place. A regular file is unlinked, never truncated: a lower layer's
// hardlink to it must keep its content. Replacing a directory or a symlink
// can change what cached paths resolve to, so the cache is dropped then.
func (a *applier) replace(pd dirHandle, base string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pd.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("replacing the existing entry: %w", err)
	}
	if t := st.Mode & unix.S_IFMT; t == unix.S_IFDIR || t == unix.S_IFLNK {
		a.cache.invalidate()
	}
	if err := removeAt(pd.fd, base); err != nil {
		return fmt.Errorf("replacing the existing entry: %w", err)
	}
	return nil
}

// replaceWith is replace for an entry that is a directory (dir) or not:
// with NoOverwriteDirNonDir, an existing entry of the other kind stays and
// the entry fails.
func (a *applier) replaceWith(pd dirHandle, base string, dir bool) error {
	if a.opts.NoOverwriteDirNonDir {
		var st unix.Stat_t
		err := unix.Fstatat(pd.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("replacing the existing entry: %w", err)
		}
		if err == nil {
			switch isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR; {
			case isDir && !dir:
				return errors.New("cannot overwrite a directory with a non-directory")
			case !isDir && dir:
				return errors.New("cannot overwrite a non-directory with a directory")
			}
		}
	}
	return a.replace(pd, base)
}

func (a *applier) applyFile(tr io.Reader, hdr *tar.Header, pd dirHandle, base string) error {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pd.fd, base, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		if err = a.replaceWith(pd, base, false); err != nil {
			return entryError(hdr, "create", err)
		}
		fd, err = unix.Openat(pd.fd, base, flags, 0o600)
	}
	if err != nil {
		return entryError(hdr, "create", err)
	}
	n, err := a.copyContent(fd, tr, hdr.Size)
	a.stats.Bytes += n
	if err != nil {
		unix.Close(fd)
		return entryError(hdr, "writing content", err)
	}
	if err := a.setMetaFd(hdr, fd); err != nil {
		unix.Close(fd)
		return err
	}
	if err := unix.Close(fd); err != nil {
		return entryError(hdr, "close", err)
	}
	return a.setTimesAt(hdr, pd, base)
}

// copyContent streams size bytes of the entry to fd through the applier's
// buffer. Nothing is sized from the header: a header claiming terabytes over
// a short stream costs one buffer and ends in io.ErrUnexpectedEOF.
func (a *applier) copyContent(fd int, r io.Reader, size int64) (int64, error) {
	var written int64
	for written < size {
		if err := a.ctx.Err(); err != nil {
			return written, err
		}
		chunk := a.buf
		if rest := size - written; rest < int64(len(chunk)) {
			chunk = chunk[:rest]
		}
		n, err := io.ReadFull(r, chunk)
		if n > 0 {
			if werr := writeAll(fd, chunk[:n]); werr != nil {
				return written, werr
			}
			written += int64(n)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return written, err
		}
	}
	return written, nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (a *applier) applyDir(hdr *tar.Header, name string, pd dirHandle, base string) error {
	err := unix.Mkdirat(pd.fd, base, 0o700)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err = unix.Fstatat(pd.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			// A directory replaces a file or symlink; an existing directory
			// is kept with its content (the lower layers' files stay) and
			// gets this entry's metadata.
			if err = a.replaceWith(pd, base, true); err == nil {
				err = unix.Mkdirat(pd.fd, base, 0o700)
			}
		}
	}
	if err != nil {
		return entryError(hdr, "mkdir", err)
	}
	fd, err := unix.Openat(pd.fd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return entryError(hdr, "open directory", err)
	}
	d, err := handleOf(fd)
	if err != nil {
		unix.Close(fd)
		return entryError(hdr, "fstat", err)
	}
	// The cache owns fd from here on; the layer's next entries are usually
	// this directory's children.
	a.cache.put(name, d)
	if err := a.setMetaFd(hdr, fd); err != nil {
		return err
	}
	t, err := timesOf(hdr)
	if err != nil {
		return entryError(hdr, "times", err)
	}
	a.dirTimes = append(a.dirTimes, dirTime{path: name, dev: d.dev, ino: d.ino, times: t})
	return nil
}

// applyRoot applies a directory entry for the root itself ("./" or "/"): its
// ownership, mode and xattrs are the container's "/".
func (a *applier) applyRoot(hdr *tar.Header) error {
	if err := a.setMetaFd(hdr, a.rootDir.fd); err != nil {
		return err
	}
	t, err := timesOf(hdr)
	if err != nil {
		return entryError(hdr, "times", err)
	}
	a.dirTimes = append(a.dirTimes, dirTime{path: ".", dev: a.rootDir.dev, ino: a.rootDir.ino, times: t})
	return nil
}

func (a *applier) applySymlink(hdr *tar.Header, pd dirHandle, base string) error {
	// The target is stored as written, never resolved here: it is only
	// followed later, inside the root, if it is a later entry's parent.
	if hdr.Linkname == "" {
		return entryError(hdr, "symlink", errors.New("empty target"))
	}
	err := unix.Symlinkat(hdr.Linkname, pd.fd, base)
	if errors.Is(err, unix.EEXIST) {
		if err = a.replaceWith(pd, base, false); err == nil {
			err = unix.Symlinkat(hdr.Linkname, pd.fd, base)
		}
	}
	if err != nil {
		return entryError(hdr, "symlink", err)
	}
	if err := a.setMetaAt(hdr, pd, base, unix.S_IFLNK); err != nil {
		return err
	}
	return a.setTimesAt(hdr, pd, base)
}

func (a *applier) applyHardlink(hdr *tar.Header, pd dirHandle, base string) error {
	target, err := cleanPath(hdr.Linkname)
	if err != nil {
		return entryError(hdr, fmt.Sprintf("hardlink target %s", quote(hdr.Linkname)), err)
	}
	if target == "." {
		return entryError(hdr, "hardlink", errors.New("target is the root"))
	}
	tparent, tbase := split(target)
	tpd, err := a.resolveDir(tparent, false)
	if err != nil {
		return entryError(hdr, fmt.Sprintf("hardlink target %s", quote(hdr.Linkname)), err)
	}
	// No AT_SYMLINK_FOLLOW: a target that is a symlink is linked as the
	// symlink, never through it.
	err = unix.Linkat(tpd.fd, tbase, pd.fd, base, 0)
	if errors.Is(err, unix.EEXIST) {
		var ts, st unix.Stat_t
		if unix.Fstatat(tpd.fd, tbase, &ts, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			unix.Fstatat(pd.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			ts.Dev == st.Dev && ts.Ino == st.Ino {
			// Already that inode (a link to itself, or a repeated entry):
			// removing it first could remove the target's last name.
			return nil
		}
		if err = a.replaceWith(pd, base, false); err == nil {
			err = unix.Linkat(tpd.fd, tbase, pd.fd, base, 0)
		}
	}
	if err != nil {
		return entryError(hdr, fmt.Sprintf("hardlink to %s", quote(hdr.Linkname)), err)
	}
	return nil
}

// applyNode makes a character or block device or a fifo.
func (a *applier) applyNode(hdr *tar.Header, pd dirHandle, base string) error {
	var typ uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		typ = unix.S_IFCHR
	case tar.TypeBlock:
		typ = unix.S_IFBLK
	default:
		typ = unix.S_IFIFO
	}
	if hdr.Devmajor < 0 || hdr.Devmajor > math.MaxUint32 || hdr.Devminor < 0 || hdr.Devminor > math.MaxUint32 {
		return entryError(hdr, "mknod", fmt.Errorf("invalid device number %d:%d", hdr.Devmajor, hdr.Devminor))
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	err := unix.Mknodat(pd.fd, base, typ|0o600, dev)
	if errors.Is(err, unix.EEXIST) {
		if err = a.replaceWith(pd, base, false); err == nil {
			err = unix.Mknodat(pd.fd, base, typ|0o600, dev)
		}
	}
	if err != nil {
		return entryError(hdr, "mknod", err)
	}
	if err := a.setMetaAt(hdr, pd, base, typ); err != nil {
		return err
	}
	return a.setTimesAt(hdr, pd, base)
}

// applyWhiteout handles ".wh.NAME" and ".wh..wh..opq" in the directory
// parent.
func (a *applier) applyWhiteout(hdr *tar.Header, parent, base string) error {
	if base == whiteoutOpaque {
		return a.applyOpaque(hdr, parent)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return entryError(hdr, "whiteout", fmt.Errorf("invalid whiteout name %q", base))
	}
	if !a.opts.OverlayWhiteouts {
		pd, err := a.resolveDir(parent, false)
		if errNotDir(err) {
			return nil // nothing there to delete
		}
		if err != nil {
			return entryError(hdr, "whiteout", err)
		}
		if err := a.replace(pd, target); err != nil {
			return entryError(hdr, "whiteout", err)
		}
		return nil
	}
	pd, err := a.resolveDir(parent, true)
	if err != nil {
		return entryError(hdr, "whiteout", err)
	}
	// overlayfs's whiteout: a character device 0:0 hides the name in the
	// lower layers.
	err = unix.Mknodat(pd.fd, target, unix.S_IFCHR, 0)
	if errors.Is(err, unix.EEXIST) {
		if err = a.replace(pd, target); err == nil {
			err = unix.Mknodat(pd.fd, target, unix.S_IFCHR, 0)
		}
	}
	if err != nil {
		return entryError(hdr, "whiteout", err)
	}
	return nil
}

// applyOpaque handles ".wh..wh..opq": the directory hides everything the
// lower layers have in it.
func (a *applier) applyOpaque(hdr *tar.Header, dir string) error {
	d, err := a.resolveDir(dir, true)
	if err != nil {
		return entryError(hdr, "opaque directory", err)
	}
	if a.opts.OverlayWhiteouts {
		if err := unix.Fsetxattr(d.fd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return entryError(hdr, "opaque directory: setting "+overlayOpaqueXattr, err)
		}
		return nil
	}
	a.cache.invalidate()
	if err := a.prune(d); err != nil {
		return entryError(hdr, "opaque directory", err)
	}
	return nil
}

// prune removes from d everything this layer did not create, and recurses
// into the directories it did create or reuse: a lower layer's directory that
// this layer listed before the marker was reused, not recreated, and still
// holds lower-layer entries that the opaque directory must hide.
func (a *applier) prune(d dirHandle) error {
	names, err := readNames(d.fd)
	if err != nil {
		return err
	}
	for _, name := range names {
		if _, ok := a.created[nodeKey{d.dev, d.ino, name}]; !ok {
			if err := removeAt(d.fd, name); err != nil {
				return err
			}
			continue
		}
		fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			continue // a file or symlink of this layer: kept as is
		}
		if err != nil {
			return err
		}
		child, err := handleOf(fd)
		if err == nil {
			err = a.prune(child)
		}
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	return nil
}

// setMetaFd sets ownership, mode and xattrs of a file or directory through
// its fd. Order matters: chown clears setuid/setgid and security.capability,
// so the mode and the xattrs come after it.
func (a *applier) setMetaFd(hdr *tar.Header, fd int) error {
	uid, gid, err := owner(hdr)
	if err != nil {
		return entryError(hdr, "chown", err)
	}
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return entryError(hdr, "chown", err)
	}
	if err := unix.Fchmod(fd, modeOf(hdr)); err != nil {
		return entryError(hdr, "chmod", err)
	}
	return a.setXattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }, true)
}

// setMetaAt is setMetaFd for a symlink, device or fifo (of type typ), which
// has no fd to use: every call is on (parent fd, name) and does not follow
// name.
func (a *applier) setMetaAt(hdr *tar.Header, pd dirHandle, base string, typ uint32) error {
	uid, gid, err := owner(hdr)
	if err != nil {
		return entryError(hdr, "chown", err)
	}
	if err := unix.Fchownat(pd.fd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryError(hdr, "chown", err)
	}
	if typ != unix.S_IFLNK { // Linux ignores a symlink's mode
		if err := chmodAt(pd.fd, base, modeOf(hdr), typ); err != nil {
			return entryError(hdr, "chmod", err)
		}
	}
	return a.setXattrs(hdr, func(k string, v []byte) error { return lsetxattrAt(pd.fd, base, k, v) }, false)
}

// setXattrs sets the xattrs of the entry's PAX records "SCHILY.xattr.NAME".
//
// Skipped: xattrs the filesystem does not support (ENOTSUP), user.* on
// symlinks and devices (the kernel refuses them there by design, EPERM), and
// overlayfs's own trusted.overlay.* / user.overlay.*: a layer that could set
// them would forge redirects, metacopy or opaque markers in an overlay upper
// dir; whiteouts are the layer's only say in that. Any other error fails the
// entry.
func (a *applier) setXattrs(hdr *tar.Header, set func(string, []byte) error, fileOrDir bool) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		err := set(name, []byte(v))
		if err == nil || errors.Is(err, unix.ENOTSUP) {
			continue
		}
		if !fileOrDir && errors.Is(err, unix.EPERM) && strings.HasPrefix(name, "user.") {
			continue
		}
		return entryError(hdr, fmt.Sprintf("setting xattr %q", name), err)
	}
	return nil
}

func (a *applier) setTimesAt(hdr *tar.Header, pd dirHandle, base string) error {
	t, err := timesOf(hdr)
	if err == nil {
		err = unix.UtimesNanoAt(pd.fd, base, t[:], unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return entryError(hdr, "setting times", err)
	}
	return nil
}

// setDirTimes sets the times of the layer's directories, now that nothing
// will be created in them any more. A directory that a later entry removed
// or replaced (the inode at the path is not the one recorded) is skipped.
func (a *applier) setDirTimes() error {
	for i, d := range a.dirTimes {
		if i%256 == 0 {
			if err := a.ctx.Err(); err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
		}
		if d.path == "." {
			if err := unix.UtimesNanoAt(a.rootDir.fd, ".", d.times[:], 0); err != nil {
				return fmt.Errorf("unpack: setting times of the root: %w", err)
			}
			continue
		}
		parent, base := split(d.path)
		pd, err := a.resolveDir(parent, false)
		if errNotDir(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("unpack: setting times of %s: %w", quote(d.path), err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pd.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Dev != d.dev || st.Ino != d.ino {
			continue
		}
		if err := unix.UtimesNanoAt(pd.fd, base, d.times[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("unpack: setting times of %s: %w", quote(d.path), err)
		}
		a.cache.release()
	}
	return nil
}

// owner returns the entry's uid and gid, which must be valid ids (-1 would
// mean "leave unchanged" to chown).
func owner(hdr *tar.Header) (int, int, error) {
	if hdr.Uid < 0 || hdr.Uid >= math.MaxUint32 || hdr.Gid < 0 || hdr.Gid >= math.MaxUint32 {
		return 0, 0, fmt.Errorf("invalid owner %d:%d", hdr.Uid, hdr.Gid)
	}
	return hdr.Uid, hdr.Gid, nil
}

// modeOf returns the entry's permission bits, setuid, setgid and sticky
// included.
func modeOf(hdr *tar.Header) uint32 {
	return uint32(hdr.Mode & 0o7777)
}

// timesOf returns the entry's atime and mtime for utimensat; the atime is the
// mtime unless a PAX record gives one.
func timesOf(hdr *tar.Header) ([2]unix.Timespec, error) {
	m, err := unix.TimeToTimespec(hdr.ModTime)
	if err != nil {
		return [2]unix.Timespec{}, err
	}
	at := m
	if !hdr.AccessTime.IsZero() {
		if at, err = unix.TimeToTimespec(hdr.AccessTime); err != nil {
			return [2]unix.Timespec{}, err
		}
	}
	return [2]unix.Timespec{at, m}, nil
}
