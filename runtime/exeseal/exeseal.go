// Package exeseal gives the runtime a read-only handle on its own binary to
// re-exec as the container's init (CVE-2019-5736): a process in the container
// that opens /proc/<init>/exe for writing gets EROFS instead of the host binary.
//
// The handle is a detached read-only bind mount of /proc/self/exe made with
// open_tree(2) and mount_setattr(2): two syscalls, no copy of the binary.
package exeseal

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Open returns a handle on the running binary that can be exec'd through
// /proc/self/fd/N and cannot be written through.
func Open() (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID})
		if err == nil {
			return os.NewFile(uintptr(fd), "hull-runtime (sealed)"), nil
		}
		unix.Close(fd)
	}
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("seal /proc/self/exe: %w", err)
	}
	// Without CAP_SYS_ADMIN over our mount namespace (rootless): a sealed memfd copy.
	return memfdCopy()
}

func memfdCopy() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open /proc/self/exe: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("hull-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "hull-runtime (memfd)")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copy binary to memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return f, nil
}
