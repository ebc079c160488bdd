//go:build linux

package unpack

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// xattrArgs is the kernel's struct xattr_args (include/uapi/linux/xattr.h).
type xattrArgs struct {
	value uint64
	size  uint32
	flags uint32
}

// lsetxattrAt sets an xattr on name inside the directory dirfd without
// following name if it is a symlink.
//
// Symlinks, devices and fifos have no fd fsetxattr accepts: an O_PATH fd is
// refused, and opening a device or fifo for real has side effects (a driver's
// open, a fifo blocking). setxattrat(2) (Linux 6.13) with AT_SYMLINK_NOFOLLOW
// does it on (dir fd, name). Older kernels get lsetxattr on
// "/proc/self/fd/DIRFD/NAME": the magic link is our own, already resolved,
// directory fd and lsetxattr does not follow NAME itself, so nothing from the
// layer is followed either way. (lsetxattr on /proc/self/fd/N of an O_PATH fd
// of the symlink would act on the magic link, not the symlink.)
func lsetxattrAt(dirfd int, name, attr string, value []byte) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	a, err := unix.BytePtrFromString(attr)
	if err != nil {
		return err
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	args := xattrArgs{size: uint32(len(value))}
	if len(value) > 0 {
		// The kernel reads value through a u64 in args, which the garbage
		// collector does not see: pin the bytes so they neither move nor die.
		pin.Pin(&value[0])
		args.value = uint64(uintptr(unsafe.Pointer(&value[0])))
	}
	_, _, errno := unix.Syscall6(unix.SYS_SETXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(p)
	runtime.KeepAlive(a)
	switch errno {
	case 0:
		return nil
	case unix.ENOSYS:
		return lsetxattrProc(dirfd, name, attr, value)
	default:
		return errno
	}
}

// lsetxattrProc is lsetxattrAt for kernels without setxattrat.
func lsetxattrProc(dirfd int, name, attr string, value []byte) error {
	return unix.Lsetxattr("/proc/self/fd/"+strconv.Itoa(dirfd)+"/"+name, attr, value, 0)
}

// chmodAt sets the permission bits of name inside dirfd, a device or fifo the
// caller just made, without following name.
//
// fchmodat2(AT_SYMLINK_NOFOLLOW) (Linux 6.6) does it on (dir fd, name). Older
// kernels: open name O_PATH|O_NOFOLLOW, check that it is what was made (type
// wantType), and chmod through /proc/self/fd/N, which reaches exactly the
// inode the O_PATH fd holds.
func chmodAt(dirfd int, name string, mode uint32, wantType uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	return chmodProc(dirfd, name, mode, wantType)
}

// chmodProc is chmodAt for kernels without fchmodat2.
func chmodProc(dirfd int, name string, mode uint32, wantType uint32) error {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != wantType {
		return fmt.Errorf("%q changed type under us: %w", name, unix.EINVAL)
	}
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

// readNames lists the directory dirfd through a fresh fd, so that dirfd's own
// offset (it may be cached and read again) is left alone.
func readNames(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

// removeAt removes name inside dirfd, recursively if it is a directory, never
// following a symlink: the recursion opens each directory with O_NOFOLLOW
// relative to its parent's fd. A missing name is not an error.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
