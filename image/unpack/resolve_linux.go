//go:build linux

package unpack

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// errEscapes is returned for names and hardlink targets whose ".." climbs
// above the root.
var errEscapes = errors.New("path escapes the root")

// cleanPath turns a name from the tar into a clean path relative to the root:
// "." for the root itself, otherwise without "." or ".." components and
// without leading or trailing slashes. An absolute name is taken relative to
// the root, as Docker does (real images have absolute hardlink targets); a
// name climbing above the root with ".." is an error, as it is in Docker,
// rather than silently clamped: no honest layer has one.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", errors.New("path contains a NUL byte")
	}
	if len(p) >= unix.PathMax {
		return "", fmt.Errorf("path is %d bytes long, the limit is %d", len(p), unix.PathMax-1)
	}
	rel := strings.TrimLeft(p, "/")
	if rel == "" {
		return ".", nil
	}
	c := path.Clean(rel)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errEscapes
	}
	return c, nil
}

// split splits a clean relative path into its parent ("" for the root) and
// its last component.
func split(p string) (parent, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// dirHandle is an open directory inside the root, with its identity (for the
// opaque-directory bookkeeping and the final pass over directory mtimes).
type dirHandle struct {
	fd       int
	dev, ino uint64
}

// maxCachedDirs bounds the fds the cache holds. Layers list a directory's
// entries together, so a small cache catches almost every lookup.
const maxCachedDirs = 128

// dirCache maps clean relative paths to open directory fds.
//
// A cached fd goes stale only when a directory or symlink on its path is
// removed or replaced (creating a name that did not exist cannot change what
// an existing path resolves to); the applier calls invalidate for each such
// change. Fds taken out of the map are not closed at once but "retired" and
// closed by release at the end of the entry, so that a handle the entry still
// holds (its parent, its hardlink target's parent) stays valid until then.
type dirCache struct {
	m       map[string]dirHandle
	retired []int
}

func (c *dirCache) get(p string) (dirHandle, bool) {
	d, ok := c.m[p]
	return d, ok
}

func (c *dirCache) put(p string, d dirHandle) {
	if old, ok := c.m[p]; ok {
		c.retired = append(c.retired, old.fd)
	} else if len(c.m) >= maxCachedDirs {
		c.invalidate()
	}
	c.m[p] = d
}

// invalidate forgets every cached directory.
func (c *dirCache) invalidate() {
	for _, d := range c.m {
		c.retired = append(c.retired, d.fd)
	}
	clear(c.m)
}

// release closes the fds retired since the last call.
func (c *dirCache) release() {
	for _, fd := range c.retired {
		unix.Close(fd)
	}
	c.retired = c.retired[:0]
}

func (c *dirCache) close() {
	c.invalidate()
	c.release()
}

// resolveDir returns the directory at the clean relative path p ("" is the
// root), resolved inside the root. Symlinks on the way are followed inside
// the root (see the package doc). With create, missing directories are made
// (mode 0755, owned by the caller) as tar does for entries whose parents the
// layer does not list. The handle belongs to the cache: do not close it.
func (a *applier) resolveDir(p string, create bool) (dirHandle, error) {
	if p == "" {
		return a.rootDir, nil
	}
	if d, ok := a.cache.get(p); ok {
		return d, nil
	}
	fd, err := a.openInRoot(p)
	if errors.Is(err, unix.ENOENT) && create {
		parent, base := split(p)
		var pd dirHandle
		if pd, err = a.resolveDir(parent, true); err != nil {
			return dirHandle{}, err
		}
		if err = unix.Mkdirat(pd.fd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return dirHandle{}, fmt.Errorf("creating parent directory %q: %w", p, err)
		}
		if err == nil {
			a.markCreated(pd, base)
			a.implicit[p] = true
		}
		// O_NOFOLLOW: if the mkdir lost to an existing name, that name is a
		// dangling symlink or a non-directory, never something to follow.
		fd, err = unix.Openat(pd.fd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return dirHandle{}, fmt.Errorf("parent %q exists and is not a directory: %w", p, unix.ENOTDIR)
		}
	}
	if err != nil {
		return dirHandle{}, fmt.Errorf("resolving directory %q in the root: %w", p, err)
	}
	d, err := handleOf(fd)
	if err != nil {
		unix.Close(fd)
		return dirHandle{}, fmt.Errorf("resolving directory %q in the root: %w", p, err)
	}
	a.cache.put(p, d)
	return d, nil
}

// handleOf wraps an open directory fd with its identity.
func handleOf(fd int) (dirHandle, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return dirHandle{}, err
	}
	return dirHandle{fd: fd, dev: st.Dev, ino: st.Ino}, nil
}

// openInRoot opens the directory at p, resolved by the kernel as if the root
// were "/": "..", absolute symlinks and symlinks full of ".." all stay inside
// it. Magic links (/proc/self/fd/N planted in a lower layer's symlink) and
// mount crossings are refused outright.
func (a *applier) openInRoot(p string) (int, error) {
	if !a.noOpenat2 {
		how := unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		}
		for range 16 {
			fd, err := unix.Openat2(a.rootDir.fd, p, &how)
			// EAGAIN: a rename somewhere on the system raced with the
			// lookup, which RESOLVE_IN_ROOT refuses to guess about.
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if !errors.Is(err, unix.ENOSYS) {
				return fd, err
			}
			a.noOpenat2 = true
			break
		}
		if !a.noOpenat2 {
			return -1, fmt.Errorf("openat2 %q: %w", p, unix.EAGAIN)
		}
	}
	// Kernels before 5.6: securejoin walks the path one component at a time
	// with O_PATH|O_NOFOLLOW fds, resolving symlinks itself inside the root.
	h, err := pathrs.OpenatInRoot(a.rootFile, p)
	if err != nil {
		return -1, err
	}
	defer h.Close()
	return unix.Openat(int(h.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// errNotDir reports the errors that mean "there is no such directory" for a
// lookup that does not create: the path is missing or a component is a file.
func errNotDir(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)
}

// openRoot opens dir, the caller's trusted path, as the root of the apply.
func openRoot(dir string) (*os.File, dirHandle, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, dirHandle{}, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	d, err := handleOf(fd)
	if err != nil {
		unix.Close(fd)
		return nil, dirHandle{}, &os.PathError{Op: "fstat", Path: dir, Err: err}
	}
	// The *os.File owns the fd (securejoin's fallback wants one); d.fd is the
	// same fd for the syscalls.
	return os.NewFile(uintptr(fd), dir), d, nil
}
