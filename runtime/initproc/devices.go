package initproc

import (
	"errors"
	"fmt"
	"os"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultDevices are created in every container whose /dev is not bound from
// the host, as runc does.
func DefaultDevices() []specs.LinuxDevice {
	mode := os.FileMode(0o666)
	zero := uint32(0)
	dev := func(p string, major, minor int64) specs.LinuxDevice {
		return specs.LinuxDevice{Path: p, Type: "c", Major: major, Minor: minor, FileMode: &mode, UID: &zero, GID: &zero}
	}
	return []specs.LinuxDevice{
		dev("/dev/null", 1, 3), dev("/dev/zero", 1, 5), dev("/dev/full", 1, 7),
		dev("/dev/random", 1, 8), dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0),
	}
}

func (r *rootfs) createDevices() error {
	devs := DefaultDevices()
	if r.cfg.Spec.Linux != nil {
		devs = append(devs, r.cfg.Spec.Linux.Devices...)
	}
	for i, d := range devs {
		if err := r.createDevice(d); err != nil {
			if i >= len(DefaultDevices()) {
				return fmt.Errorf("linux.devices[%d] %s: %w", i-len(DefaultDevices()), d.Path, err)
			}
			return fmt.Errorf("create default device %s: %w", d.Path, err)
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	dev, err := r.mkdirInRoot("/dev", 0o755)
	if err != nil {
		return fmt.Errorf("create /dev: %w", err)
	}
	defer unix.Close(dev)
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dev, path.Base(l[1])); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	// /dev/ptmx must lead to the container's own devpts instance.
	if err := unix.Unlinkat(dev, "ptmx", 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove /dev/ptmx: %w", err)
	}
	if err := unix.Symlinkat("pts/ptmx", dev, "ptmx"); err != nil {
		return fmt.Errorf("symlink /dev/ptmx: %w", err)
	}
	return nil
}

func (r *rootfs) createDevice(d specs.LinuxDevice) error {
	p := path.Clean("/" + d.Path)
	parent, err := r.mkdirInRoot(path.Dir(p), 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	base := path.Base(p)
	if r.cfg.InUserNS {
		return r.bindHostDevice(parent, base, p)
	}
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return fmt.Errorf("unknown device type %q", d.Type)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	// A stale node or a planted symlink is replaced, never followed.
	if err := unix.Unlinkat(parent, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove existing %s: %w", p, err)
	}
	old := unix.Umask(0)
	err = unix.Mknodat(parent, base, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(parent, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	return nil
}

// bindHostDevice is for user namespaces, where mknod is not allowed: bind the
// host's node of the same path onto an empty file.
func (r *rootfs) bindHostDevice(parent int, base, p string) error {
	fd, err := unix.Openat(parent, base, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	defer unix.Close(fd)
	tree, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("clone host %s: %w", p, err)
	}
	defer unix.Close(tree)
	return unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// setupConsole creates a pty in the container's devpts, sends its master to the
// console socket, binds the slave over /dev/console and returns the slave, to
// become the controlling terminal and stdio.
func (r *rootfs) setupConsole() (*os.File, error) {
	how := unix.OpenHow{Flags: unix.O_RDWR | unix.O_NOCTTY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS}
	master, err := unix.Openat2(r.fd, "dev/pts/ptmx", &how)
	if err != nil {
		return nil, fmt.Errorf("process.terminal: open /dev/pts/ptmx (is devpts mounted on /dev/pts?): %w", err)
	}
	slave, err := newPty(master, r.cfg.Spec.Process.ConsoleSize)
	if err != nil {
		return nil, err
	}
	if err := r.bindConsole(int(slave.Fd())); err != nil {
		slave.Close()
		return nil, err
	}
	return slave, nil
}

// newPty takes a freshly opened ptmx, checks it is on devpts, sends it to the
// console socket and returns the slave. It closes master.
func newPty(master int, size *specs.Box) (*os.File, error) {
	defer unix.Close(master)
	sockFd, err := fdFromEnv(EnvConsoleFd)
	if err != nil {
		return nil, fmt.Errorf("process.terminal is set but no console socket was passed: %w", err)
	}
	defer unix.Close(sockFd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(master, &sfs); err != nil || sfs.Type != unix.DEVPTS_SUPER_MAGIC {
		return nil, errors.New("process.terminal: /dev/pts/ptmx is not on devpts")
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(master, unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("get pty number: %w", err)
	}
	slaveFd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return nil, fmt.Errorf("open pty peer: %w", errno)
	}
	slave := os.NewFile(slaveFd, fmt.Sprintf("/dev/pts/%d", n))
	if size != nil {
		_ = unix.IoctlSetWinsize(int(slaveFd), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)})
	}
	if err := unix.Sendmsg(sockFd, []byte(slave.Name()), unix.UnixRights(master), nil, 0); err != nil {
		slave.Close()
		return nil, fmt.Errorf("send pty master to console socket: %w", err)
	}
	return slave, nil
}

// bindConsole mounts the pty slave over /dev/console. An existing /dev/console,
// even a symlink planted by the image, is replaced, never followed (CVE-2025-52565).
func (r *rootfs) bindConsole(slave int) error {
	dev, err := r.mkdirInRoot("/dev", 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	if err := unix.Unlinkat(dev, "console", 0); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("remove /dev/console: %w", err)
	}
	fd, err := unix.Openat(dev, "console", unix.O_CREAT|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	defer unix.Close(fd)
	tree, err := unix.OpenTree(slave, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("clone pty for /dev/console: %w", err)
	}
	defer unix.Close(tree)
	if err := unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount pty on /dev/console: %w", err)
	}
	return nil
}
