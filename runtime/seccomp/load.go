package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Load compiles c and installs it on the calling process, on all of its
// threads (SECCOMP_FILTER_FLAG_TSYNC). It returns the notify fd (close-on-exec)
// when a rule uses SCMP_ACT_NOTIFY, else -1.
//
// Call it on a locked OS thread right before execve, after the runtime has
// decided about no_new_privs: Load never sets no_new_privs itself, so without
// it the caller needs CAP_SYS_ADMIN. See Program.Load.
func Load(c *specs.LinuxSeccomp) (notifyFd int, err error) {
	p, err := Compile(c)
	if err != nil {
		return -1, err
	}
	return p.Load()
}

// Load installs p on the calling process and returns the notify fd
// (close-on-exec, to be handed to the seccomp agent before execve) or -1.
//
// The filter is installed with SECCOMP_FILTER_FLAG_TSYNC so every thread
// gets it. A kernel older than 5.7 cannot combine TSYNC with a notify
// listener; there the filter goes on the calling thread only, which is
// enough when execve follows (it ends every other thread).
//
// Load does not set no_new_privs: without it the kernel requires
// CAP_SYS_ADMIN in the caller's user namespace. After Load returns, the
// calling process is itself subject to the filter.
func (p *Program) Load() (notifyFd int, err error) {
	if p == nil || len(p.insns) == 0 {
		return -1, errors.New("seccomp: load: empty program")
	}
	prog := unix.SockFprog{Len: uint16(len(p.insns)), Filter: &p.insns[0]}

	flags := p.flags | unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	ret, errno := setFilter(flags, &prog)
	if errno == unix.EINVAL && !flagSupported(unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH) {
		// Linux < 5.7: no TSYNC_ESRCH, and TSYNC excludes NEW_LISTENER.
		flags &^= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
			flags &^= unix.SECCOMP_FILTER_FLAG_TSYNC
		}
		ret, errno = setFilter(flags, &prog)
	}
	runtime.KeepAlive(p.insns)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp: loading filter: %w", loadError(errno, flags))
	}

	switch {
	case flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0:
		return int(ret), nil
	case ret != 0:
		// TSYNC without TSYNC_ESRCH returns the id of a thread that
		// could not be synchronised; nothing was installed.
		return -1, fmt.Errorf("seccomp: loading filter: thread %d could not be synchronised (it has a diverging seccomp filter)", ret)
	}
	return -1, nil
}

// setFilter calls seccomp(SECCOMP_SET_MODE_FILTER, flags, prog).
func setFilter(flags uintptr, prog *unix.SockFprog) (uintptr, unix.Errno) {
	ret, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(prog)))
	return ret, errno
}

// flagSupported reports whether the running kernel accepts the seccomp(2)
// flags: it passes them with no program, which fails with EFAULT once the
// flags have been accepted and with EINVAL before.
func flagSupported(flags uintptr) bool {
	_, errno := setFilter(flags, nil)
	return errno == unix.EFAULT
}

// loadError explains a seccomp(SECCOMP_SET_MODE_FILTER) failure.
func loadError(errno unix.Errno, flags uintptr) error {
	switch errno {
	case unix.EINVAL:
		// The flags, with the first kernel that has them.
		flagNames := [...]struct {
			bit   uintptr
			name  string
			since string
		}{
			{unix.SECCOMP_FILTER_FLAG_TSYNC, string(flagTsync), "3.17"},
			{unix.SECCOMP_FILTER_FLAG_LOG, string(specs.LinuxSeccompFlagLog), "4.14"},
			{unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, string(specs.LinuxSeccompFlagSpecAllow), "4.17"},
			{unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, "SECCOMP_FILTER_FLAG_NEW_LISTENER (for " + string(specs.ActNotify) + ")", "5.0"},
			{unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH, "SECCOMP_FILTER_FLAG_TSYNC_ESRCH", "5.7"},
			{unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, string(specs.LinuxSeccompFlagWaitKillableRecv), "5.19"},
		}
		for _, f := range flagNames {
			if flags&f.bit != 0 && !flagSupported(f.bit) {
				return fmt.Errorf("%s is not supported by the running kernel (needs Linux >= %s): %w", f.name, f.since, errno)
			}
		}
	case unix.EACCES:
		return fmt.Errorf("no_new_privs is not set and the caller lacks CAP_SYS_ADMIN: %w", errno)
	case unix.ESRCH:
		return fmt.Errorf("another thread could not be synchronised (it has a diverging seccomp filter): %w", errno)
	case unix.ENOMEM:
		return fmt.Errorf("the filter, with those already installed, is too large: %w", errno)
	}
	return errno
}
