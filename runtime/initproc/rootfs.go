package initproc

import (
	"errors"
	"fmt"
	"github.com/moby/sys/mountinfo"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	rspec "github.com/hull-runtime/hull/runtime/spec"
)

// rootfs builds the container's filesystem view. Every path inside the rootfs is
// hostile: it is resolved with openat2(RESOLVE_IN_ROOT) and mounted onto by fd.
type rootfs struct {
	cfg      *Config
	path     string
	fd       int // O_PATH fd of the rootfs mount
	devBound bool
}

func newRootfs(cfg *Config) *rootfs {
	r := &rootfs{cfg: cfg, path: cfg.Rootfs, fd: -1}
	for _, m := range cfg.Spec.Mounts {
		if path.Clean("/"+m.Destination) == "/dev" && isBind(m) {
			r.devBound = true
		}
	}
	return r
}

func (r *rootfs) close() {
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// fdPath names an fd through the host's /proc, which is what mount(2) and friends
// need before pivot_root.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

func propagationFlag(s string) (uintptr, error) {
	switch s {
	case "", "rslave":
		return unix.MS_SLAVE | unix.MS_REC, nil
	case "slave":
		return unix.MS_SLAVE, nil
	case "private":
		return unix.MS_PRIVATE, nil
	case "rprivate":
		return unix.MS_PRIVATE | unix.MS_REC, nil
	case "shared":
		return unix.MS_SHARED, nil
	case "rshared":
		return unix.MS_SHARED | unix.MS_REC, nil
	case "unbindable":
		return unix.MS_UNBINDABLE, nil
	case "runbindable":
		return unix.MS_UNBINDABLE | unix.MS_REC, nil
	}
	return 0, fmt.Errorf("linux.rootfsPropagation: unknown value %q", s)
}

func (r *rootfs) prepare() error {
	prop := ""
	if r.cfg.Spec.Linux != nil {
		prop = r.cfg.Spec.Linux.RootfsPropagation
	}
	flag, err := propagationFlag(prop)
	if err != nil {
		return err
	}
	// The requested propagation goes on the copy of the host's tree first,
	// as runc does: with rshared, a bind of a shared host directory stays in
	// the host's peer group, so mounts the container makes there reach the
	// host (Kubernetes' Bidirectional volumes). What is mounted under the
	// rootfs cannot propagate back: its parent mount is made private and the
	// rootfs is a private bind of itself, and the old root is made slave
	// before it is unmounted.
	if err := unix.Mount("", "/", "", flag, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	if err := makeParentPrivate(r.path); err != nil {
		return err
	}
	if err := unix.Mount(r.path, r.path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("root.path %s: bind mount onto itself: %w", r.path, err)
	}
	r.fd, err = unix.Open(r.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root.path %s: %w", r.path, err)
	}
	for i, m := range r.cfg.Spec.Mounts {
		if fd, ok := r.cfg.MountFds[i]; ok {
			err = r.attachPrepared(m, fd)
		} else {
			err = r.mount(m)
		}
		if err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Type, m.Destination, err)
		}
	}
	if !r.devBound {
		if err := r.createDevices(); err != nil {
			return err
		}
	}
	return nil
}

// makeParentPrivate makes the mount that holds dir private: dir itself when
// it is a mount point (an engine's overlay rootfs), else the one it is in.
// The rootfs is then bind-mounted onto itself, and pivot_root refuses a new
// root whose parent mount is shared, as every copy of a shared host mount
// is under rootfsPropagation rshared.
func makeParentPrivate(dir string) error {
	mp, err := mountPointOf(dir)
	if err != nil {
		return err
	}
	if err := unix.Mount("", mp, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", mp, err)
	}
	return nil
}

// mountPointOf returns the mount point of the mount that contains p.
func mountPointOf(p string) (string, error) {
	p, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", p, err)
	}
	// ParentsFilter keeps the mounts at p and above it: the longest is p's.
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(p))
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	best := "/"
	for _, m := range mounts {
		if len(m.Mountpoint) > len(best) {
			best = m.Mountpoint
		}
	}
	return best, nil
}

// openInRoot resolves p inside the rootfs and returns an O_PATH fd.
func (r *rootfs) openInRoot(p string, extra uint64) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | extra,
	}
	for {
		fd, err := unix.Openat2(r.fd, strings.TrimPrefix(path.Clean("/"+p), "/"), &how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		return fd, err
	}
}

// mkdirInRoot creates directory p (and its parents) inside the rootfs, resolving
// every component inside it, and returns an O_PATH fd of the directory. A
// dangling symlink on the way is followed inside the rootfs and its target
// created there, as runc does: never outside.
func (r *rootfs) mkdirInRoot(p string, mode uint32) (int, error) {
	return r.mkdirInRootDepth(p, mode, 0)
}

func (r *rootfs) mkdirInRootDepth(p string, mode uint32, depth int) (int, error) {
	if depth > 40 {
		return -1, fmt.Errorf("mkdir %s in rootfs: %w", p, unix.ELOOP)
	}
	clean := strings.TrimPrefix(path.Clean("/"+p), "/")
	if fd, err := r.openInRoot(clean, 0); err == nil {
		return fd, nil
	}
	dirfd, err := unix.Dup(r.fd)
	if err != nil {
		return -1, err
	}
	if clean == "" {
		return dirfd, nil
	}
	done := ""
	for _, part := range strings.Split(clean, "/") {
		parent := done
		done = path.Join(done, part)
		fd, err := r.openInRoot(done, 0)
		if errors.Is(err, unix.ENOENT) {
			// Create relative to the last resolved directory, never through a path.
			err = unix.Mkdirat(dirfd, part, mode)
			if errors.Is(err, unix.EEXIST) {
				// A dangling symlink: create its target, resolved inside the root.
				target, rerr := readlinkat(dirfd, part)
				if rerr != nil {
					unix.Close(dirfd)
					return -1, fmt.Errorf("mkdir %s: %w", "/"+done, err)
				}
				if !path.IsAbs(target) {
					target = path.Join("/", parent, target)
				}
				tfd, terr := r.mkdirInRootDepth(target, mode, depth+1)
				if terr != nil {
					unix.Close(dirfd)
					return -1, terr
				}
				unix.Close(tfd)
				err = nil
			}
			if err != nil {
				unix.Close(dirfd)
				return -1, fmt.Errorf("mkdir %s: %w", "/"+done, err)
			}
			fd, err = r.openInRoot(done, 0)
		}
		if err != nil {
			unix.Close(dirfd)
			return -1, fmt.Errorf("open %s in rootfs: %w", "/"+done, err)
		}
		unix.Close(dirfd)
		dirfd = fd
	}
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(dirfd)
		return -1, fmt.Errorf("%s in rootfs is not a directory", "/"+clean)
	}
	return dirfd, nil
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// createInRoot returns an O_PATH fd of p inside the rootfs, creating it as a
// directory or an empty file when missing.
func (r *rootfs) createInRoot(p string, dir bool) (int, error) {
	if dir {
		return r.mkdirInRoot(p, 0o755)
	}
	if fd, err := r.openInRoot(p, 0); err == nil {
		return fd, nil
	}
	parent, err := r.mkdirInRoot(path.Dir(path.Clean("/"+p)), 0o755)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	base := path.Base(path.Clean("/" + p))
	fd, err := unix.Openat(parent, base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("create %s in rootfs: %w", p, err)
	}
	if err == nil {
		unix.Close(fd)
	}
	return r.openInRoot(p, 0)
}

func (r *rootfs) mount(m specs.Mount) error {
	dest := path.Clean("/" + m.Destination)
	opts := rspec.ParseMountOptions(m.Options)
	if err := checkProcMount(m, dest); err != nil {
		return err
	}
	if isBind(m) {
		return r.mountBind(m, dest, opts)
	}
	switch m.Type {
	case "cgroup", "cgroup2":
		return r.mountCgroup(m, dest, opts)
	case "proc", "sysfs":
		// CVE-2019-19921: /proc or /sys replaced by a symlink must not lead a
		// procfs mount anywhere else.
		fd, err := r.openInRoot(dest, unix.RESOLVE_NO_SYMLINKS)
		if errors.Is(err, unix.ENOENT) {
			fd, err = r.mkdirInRoot(dest, 0o555)
		}
		if err != nil {
			if errors.Is(err, unix.ELOOP) {
				return fmt.Errorf("destination %s is a symlink; %s must be mounted on a real directory", dest, m.Type)
			}
			return fmt.Errorf("open destination %s: %w", dest, err)
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("destination %s is not a directory", dest)
		}
		err = unix.Mount(m.Source, fdPath(fd), m.Type, opts.Flags, opts.Data)
		if err != nil && m.Type == "sysfs" && r.cfg.InUserNS && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
			// A user namespace without its own network namespace may not mount sysfs:
			// bind the host's, as runc does. A read-only sysfs stays read-only all the
			// way down: the host's /sys/fs/cgroup below it must not be writable
			// (CVE-2023-25809).
			m2 := m
			m2.Source, m2.Type, m2.Options = "/sys", "bind", append([]string{"rbind"}, m.Options...)
			if opts.Flags&unix.MS_RDONLY != 0 {
				m2.Options = append(m2.Options, "rro")
			}
			return r.mountBind(m2, dest, rspec.ParseMountOptions(m2.Options))
		}
		if err != nil {
			return err
		}
		return r.applyPropagation(dest, opts)
	default:
		fd, err := r.mkdirInRoot(dest, 0o755)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Mount(m.Source, fdPath(fd), m.Type, opts.Flags, opts.Data); err != nil {
			return err
		}
		return r.applyPropagation(dest, opts)
	}
}

func (r *rootfs) applyPropagation(dest string, opts rspec.ParsedMountOptions) error {
	if len(opts.Propagation) == 0 {
		return nil
	}
	fd, err := r.openInRoot(dest, 0)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", dest, err)
	}
	defer unix.Close(fd)
	for _, p := range opts.Propagation {
		if err := unix.Mount("", fdPath(fd), "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// MountAttr turns mount(2) flags into mount_setattr(2) attributes.
func MountAttr(set, clr uintptr) (attrSet, attrClr uint64) {
	pairs := []struct {
		ms   uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
		{unix.MS_NOSYMFOLLOW, unix.MOUNT_ATTR_NOSYMFOLLOW},
	}
	for _, p := range pairs {
		if set&p.ms != 0 {
			attrSet |= p.attr
		}
		if clr&p.ms != 0 {
			attrClr |= p.attr
		}
	}
	switch {
	case set&unix.MS_NOATIME != 0:
		attrSet |= unix.MOUNT_ATTR_NOATIME
		attrClr |= unix.MOUNT_ATTR__ATIME
	case set&unix.MS_STRICTATIME != 0:
		attrSet |= unix.MOUNT_ATTR_STRICTATIME
		attrClr |= unix.MOUNT_ATTR__ATIME
	case set&unix.MS_RELATIME != 0:
		attrSet |= unix.MOUNT_ATTR_RELATIME
		attrClr |= unix.MOUNT_ATTR__ATIME
	}
	return attrSet, attrClr
}

func (r *rootfs) mountBind(m specs.Mount, dest string, opts rspec.ParsedMountOptions) error {
	src := m.Source
	if src == "" {
		return errors.New("bind mount without a source")
	}
	if !filepath.IsAbs(src) {
		src = filepath.Join(r.cfg.Bundle, src)
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	target, err := r.createInRoot(dest, st.IsDir())
	if err != nil {
		return err
	}
	defer unix.Close(target)
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if opts.Recursive {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if err != nil {
		return fmt.Errorf("clone %s: %w", src, err)
	}
	defer unix.Close(tree)
	set, clr := MountAttr(opts.Flags, opts.ClearFlags)
	if set != 0 || clr != 0 {
		// Like runc, flags on a bind apply to its top mount; the r* variants recurse.
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: set, Attr_clr: clr}); err != nil {
			return fmt.Errorf("set attributes on bind of %s: %w", src, err)
		}
	}
	if opts.RecAttrSet != 0 || opts.RecAttrClr != 0 {
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: opts.RecAttrSet, Attr_clr: opts.RecAttrClr}); err != nil {
			return fmt.Errorf("set recursive attributes on bind of %s: %w", src, err)
		}
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach bind of %s: %w", src, err)
	}
	return r.applyPropagation(dest, opts)
}

// attachPrepared attaches a mount the parent prepared (an idmapped bind) onto
// its destination inside the rootfs.
func (r *rootfs) attachPrepared(m specs.Mount, tree int) error {
	defer unix.Close(tree)
	dest := path.Clean("/" + m.Destination)
	var st unix.Stat_t
	if err := unix.Fstat(tree, &st); err != nil {
		return fmt.Errorf("prepared mount: %w", err)
	}
	target, err := r.createInRoot(dest, st.Mode&unix.S_IFMT == unix.S_IFDIR)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach idmapped mount: %w", err)
	}
	return r.applyPropagation(dest, rspec.ParseMountOptions(m.Options))
}

// finish runs after the createContainer hooks: masks, read-only paths, pivot_root
// and the read-only root.
func (r *rootfs) finish() error {
	lx := r.cfg.Spec.Linux
	if lx != nil {
		if err := r.maskPaths(lx.MaskedPaths); err != nil {
			return err
		}
		if err := r.readonlyPaths(lx.ReadonlyPaths); err != nil {
			return err
		}
	}
	r.close()
	if r.cfg.NoPivot {
		if err := moveRoot(r.path); err != nil {
			return err
		}
	} else if err := pivotRoot(r.path); err != nil {
		return err
	}
	if r.cfg.Spec.Root != nil && r.cfg.Spec.Root.Readonly {
		if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return fmt.Errorf("root.readonly: remount / read-only: %w", err)
		}
	}
	if lx != nil && lx.RootfsPropagation != "" {
		flag, err := propagationFlag(lx.RootfsPropagation)
		if err != nil {
			return err
		}
		if err := unix.Mount("", "/", "", flag, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation %s: %w", lx.RootfsPropagation, err)
		}
	}
	return nil
}

func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root: %w", err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one, so no
	// directory for it is needed inside the container.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	// Unmounting the old root must not reach the host's mounts through propagation.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// moveRoot is --no-pivot: move the rootfs over / and chroot into it.
func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir %s: %w", rootfs, err)
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs to /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// maskPaths hides files behind the host's /dev/null and directories behind an
// empty read-only tmpfs. The host's /dev/null is used (and checked to be 1:3), never
// the container's: CVE-2025-31133.
func (r *rootfs) maskPaths(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	null, err := unix.Open("/dev/null", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/null: %w", err)
	}
	defer unix.Close(null)
	var st unix.Stat_t
	if err := unix.Fstat(null, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		return errors.New("host /dev/null is not the null device (char 1:3)")
	}
	for _, p := range paths {
		fd, err := r.openInRoot(p, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("linux.maskedPaths: %s: %w", p, err)
		}
		err = maskOne(fd, null)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("linux.maskedPaths: mask %s: %w", p, err)
		}
	}
	return nil
}

func maskOne(fd, null int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_RDONLY, "")
	}
	tree, err := unix.OpenTree(null, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	return unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

func (r *rootfs) readonlyPaths(paths []string) error {
	for _, p := range paths {
		fd, err := r.openInRoot(p, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("linux.readonlyPaths: %s: %w", p, err)
		}
		err = readonlyOne(fd)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("linux.readonlyPaths: %s: %w", p, err)
		}
	}
	return nil
}

func readonlyOne(fd int) error {
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return err
	}
	return unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

func applySysctls(sysctls map[string]string) error {
	for k, v := range sysctls {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if strings.Contains(k, "/") || strings.Contains(k, "..") {
			return fmt.Errorf("linux.sysctl: invalid key %q", k)
		}
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("linux.sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// procSafeFiles may be bind-mounted over their /proc counterparts (lxcfs does).
var procSafeFiles = map[string]bool{
	"/proc/cpuinfo": true, "/proc/diskstats": true, "/proc/meminfo": true, "/proc/stat": true,
	"/proc/swaps": true, "/proc/uptime": true, "/proc/loadavg": true, "/proc/slabinfo": true,
	"/proc/net/dev": true, "/proc/sys/kernel/ns_last_pid": true,
}

// checkProcMount refuses to cover /proc, or anything below it, with something
// other than procfs, so that an image cannot hide the kernel's view of the
// process behind its own files (CVE-2019-16884).
func checkProcMount(m specs.Mount, dest string) error {
	switch {
	case dest == "/proc":
		if m.Type != "proc" {
			return fmt.Errorf("%s over /proc is refused: only procfs may be mounted there", m.Type)
		}
	case strings.HasPrefix(dest, "/proc/"):
		if m.Type == "proc" || (isBind(m) && procSafeFiles[dest]) {
			return nil
		}
		return fmt.Errorf("mounting %s on %s is refused: below /proc only procfs or binds over %s are allowed", m.Type, dest, "the lxcfs files")
	}
	return nil
}
