package copier

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks bounds the symlinks resolve follows, as the kernel's ELOOP
// limit does for one lookup.
const maxSymlinks = 255

// rel turns a path inside the root into what openat2 is given: relative,
// "." for the root itself. Trailing "/" and "/." are kept: they mean
// "follow, it must be a directory" to the kernel too.
func rel(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return "."
	}
	return p
}

// open resolves p inside the root and opens it with flags (O_CLOEXEC is
// added). The kernel does the resolution: "..", absolute symlinks and
// mount crossings stay under the root's fd, magic links are refused.
func (r *Root) open(p string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 64 {
		fd, err := unix.Openat2(int(r.f.Fd()), rel(p), &how)
		// EAGAIN: a rename raced with the lookup (RESOLVE_IN_ROOT does not
		// guess then); a container renaming in a loop only costs retries.
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ENOSYS) {
			return -1, fmt.Errorf("openat2 is not available (Linux 5.6 or later is needed): %w", err)
		}
		return fd, err
	}
	return -1, fmt.Errorf("openat2 %q: kept racing with renames: %w", p, unix.EAGAIN)
}

// source is the opened start of a copy.
type source struct {
	root *Root
	fd   int // O_PATH
	st   unix.Stat_t
	// base is the name of the source's last component; contents is true
	// for "DIR/." and for "/", whose contents are copied rather than the
	// directory as a named entry.
	base     string
	contents bool
	isDir    bool
	shown    string
}

func (s *source) close() { unix.Close(s.fd) }

// openSource opens srcPath in r without following a symlink in its last
// component unless follow.
func (r *Root) openSource(srcPath string, follow bool) (*source, error) {
	shown := display(srcPath)
	flags := unix.O_PATH
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := r.open(srcPath, flags)
	if errors.Is(err, unix.ENOENT) {
		return nil, &Error{Msg: fmt.Sprintf("could not find the file %s %s", shown, r.where), Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s %s: %w", shown, r.where, err)
	}
	s := &source{root: r, fd: fd, shown: shown}
	if err := unix.Fstat(fd, &s.st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s %s: %w", shown, r.where, err)
	}
	if err := checkFS(fd, shown, r.where); err != nil {
		unix.Close(fd)
		return nil, err
	}
	clean := path.Clean("/" + srcPath)
	s.isDir = s.st.Mode&unix.S_IFMT == unix.S_IFDIR
	s.base = path.Base(clean)
	// path.Base of the raw path ignores trailing slashes: "d/." and "d/./"
	// both end in ".".
	s.contents = clean == "/" || path.Base(srcPath) == "."
	return s, nil
}

// destination is a resolved destination path.
type destination struct {
	// path is relative to the root, clean, with every symlink resolved
	// (as of the lookup): "" for the root itself.
	path   string
	exists bool
	isDir  bool
}

// resolve follows dstPath component by component inside r, symlinks
// included (a destination symlink is followed, as Docker does), and
// reports whether the result exists. Every lookup is an openat2 from the
// root's fd, so a container changing the path meanwhile can make the result
// wrong but never outside the root. A missing last component is fine (it
// is created); a missing parent is an error.
func (r *Root) resolve(dstPath string) (destination, error) {
	shown := display(dstPath)
	rest := components(dstPath)
	var done []string
	isDir, links := true, 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == ".." {
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			isDir = true
			continue
		}
		cand := strings.Join(append(done[:len(done):len(done)], c), "/")
		fd, err := r.open(cand, unix.O_PATH|unix.O_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			if len(rest) == 0 {
				return destination{path: cand}, nil
			}
			return destination{}, &Error{Msg: fmt.Sprintf("could not find the directory %s (on the way to %s) %s", display(cand), shown, r.where), Err: fs.ErrNotExist}
		}
		if errors.Is(err, unix.ENOTDIR) {
			return destination{}, &Error{Msg: fmt.Sprintf("%s %s: %s is not a directory", shown, r.where, display(strings.Join(done, "/"))), Err: unix.ENOTDIR}
		}
		if err != nil {
			return destination{}, fmt.Errorf("resolve %s %s: %w", shown, r.where, err)
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		var target string
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, err = readlinkFd(fd)
		}
		unix.Close(fd)
		if err != nil {
			return destination{}, fmt.Errorf("resolve %s %s: %w", shown, r.where, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			done = append(done, c)
			isDir = st.Mode&unix.S_IFMT == unix.S_IFDIR
			continue
		}
		if links++; links > maxSymlinks {
			return destination{}, &Error{Msg: fmt.Sprintf("resolve %s %s: too many levels of symbolic links", shown, r.where), Err: unix.ELOOP}
		}
		// done holds no symlink, so a relative target's ".." can be
		// resolved against it by name.
		if strings.HasPrefix(target, "/") {
			done = done[:0]
		}
		rest = append(components(target), rest...)
	}
	return destination{path: strings.Join(done, "/"), exists: true, isDir: isDir}, nil
}

// components splits p into its names, without empty ones and ".".
func components(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// readlinkFd reads the target of the symlink an O_PATH|O_NOFOLLOW fd
// holds (readlinkat with an empty path reads the fd itself).
func readlinkFd(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= unix.PathMax {
			return "", unix.ENAMETOOLONG
		}
	}
}

// pseudoFS names the filesystems that hold kernel interfaces rather than
// files: reading them as root could leak host state (or block), writing
// them could change the kernel's settings.
var pseudoFS = map[int64]string{
	unix.PROC_SUPER_MAGIC:      "proc",
	unix.SYSFS_MAGIC:           "sysfs",
	unix.CGROUP_SUPER_MAGIC:    "cgroup",
	unix.CGROUP2_SUPER_MAGIC:   "cgroup2",
	unix.DEBUGFS_MAGIC:         "debugfs",
	unix.TRACEFS_MAGIC:         "tracefs",
	unix.SECURITYFS_MAGIC:      "securityfs",
	unix.BPF_FS_MAGIC:          "bpf",
	unix.DEVPTS_SUPER_MAGIC:    "devpts",
	unix.EFIVARFS_MAGIC:        "efivarfs",
	unix.PSTOREFS_MAGIC:        "pstore",
	unix.BINFMTFS_MAGIC:        "binfmt_misc",
	unix.SELINUX_MAGIC:         "selinuxfs",
	unix.SMACK_MAGIC:           "smackfs",
	unix.NSFS_MAGIC:            "nsfs",
	unix.RDTGROUP_SUPER_MAGIC:  "resctrl",
	unix.USBDEVICE_SUPER_MAGIC: "usbdevfs",
	0x62656570:                 "configfs",
	0x19800202:                 "mqueue",
	0x65735543:                 "fusectl",
}

// pseudo returns the name of the pseudo filesystem fd is on, or "".
func pseudo(fd int) (string, error) {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return "", err
	}
	return pseudoFS[int64(sfs.Type)], nil
}

// checkFS fails if fd is on a pseudo filesystem.
func checkFS(fd int, shown, where string) error {
	name, err := pseudo(fd)
	if err != nil {
		return fmt.Errorf("statfs %s %s: %w", shown, where, err)
	}
	if name != "" {
		return &Error{Msg: fmt.Sprintf("cannot copy %s %s: it is on a %s filesystem, which holds kernel interfaces, not files", shown, where, name), Err: unix.EPERM}
	}
	return nil
}
