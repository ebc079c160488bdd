package seccomp

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// LibraryVersion is the version of the libseccomp the binary runs with.
func LibraryVersion() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}

// filterFlags are the runtime-spec flag names and their seccomp(2) values.
var filterFlags = []struct {
	name specs.LinuxSeccompFlag
	bit  uint
}{
	{specs.LinuxSeccompFlagLog, unix.SECCOMP_FILTER_FLAG_LOG},
	{specs.LinuxSeccompFlagSpecAllow, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
	// WAIT_KILLABLE_RECV is only valid with NEW_LISTENER.
	{specs.LinuxSeccompFlagWaitKillableRecv, 1<<5 | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER},
}

// SupportedFlags probes which filter flags this kernel accepts, as runc does:
// seccomp(SET_MODE_FILTER, flag, NULL) fails with EFAULT for a known flag and
// EINVAL for an unknown one, without installing anything.
func SupportedFlags() []string {
	var out []string
	for _, f := range filterFlags {
		_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f.bit), 0)
		if errors.Is(e, unix.EFAULT) {
			out = append(out, string(f.name))
		}
	}
	return out
}
