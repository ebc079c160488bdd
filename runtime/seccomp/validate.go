// Package seccomp compiles the linux.seccomp section of a runtime-spec
// config.json into a classic BPF program with libseccomp and installs it on
// the calling process.
//
// The work is split in two steps so that compiling (cgo, libseccomp, a few
// milliseconds for a large profile) can happen ahead of time, and later be
// cached, while installing is a single seccomp(2) call made right before
// execve:
//
//	prog, err := seccomp.Compile(cfg) // anywhere, any thread
//	...
//	fd, err := prog.Load()            // locked OS thread, just before execve
//
// Load(cfg) does both. The runtime, not this package, decides about
// no_new_privs: the filter is installed without setting it, which the kernel
// allows only to callers holding CAP_SYS_ADMIN.
package seccomp

import (
	"errors"
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// field is the config.json path of the seccomp section, used to prefix errors.
const field = "linux.seccomp"

// flagTsync is the spelling runtime-spec documents for SECCOMP_FILTER_FLAG_TSYNC;
// specs-go has no constant for it.
const flagTsync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

// maxRet is the largest errnoRet: SECCOMP_RET_DATA is 16 bits wide.
const maxRet = unix.SECCOMP_RET_DATA

// Validate checks a seccomp configuration without compiling or loading it.
//
// It reports, each error naming the config.json field at fault: missing or
// unknown actions, architectures, flags and operators; argument indexes above
// 5; errnoRet/defaultErrnoRet on actions other than SCMP_ACT_ERRNO and
// SCMP_ACT_TRACE or above 65535; SCMP_ACT_NOTIFY as the default action or on
// write(2); a listenerPath without any SCMP_ACT_NOTIFY rule or the reverse;
// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without SCMP_ACT_NOTIFY; and actions
// or architectures the linked libseccomp cannot handle.
//
// Syscall names libseccomp does not know are not errors: like runc, Compile
// skips them, so that one profile serves kernels and libseccomp versions of
// different ages. A nil c is valid (no seccomp).
//
// All problems are reported at once, joined with errors.Join.
func Validate(c *specs.LinuxSeccomp) error {
	if c == nil {
		return nil
	}
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf(path+": "+format, args...))
	}

	api, _ := libseccomp.GetAPI() // 0 when libseccomp cannot tell
	checkAction := func(path string, a specs.LinuxSeccompAction) bool {
		if a == "" {
			bad(path, "must be set")
			return false
		}
		info, ok := actionInfo(a)
		if !ok {
			bad(path, "unknown action %q", a)
			return false
		}
		if api < info.minAPI {
			bad(path, "%s needs %s (libseccomp API level %d), the running libseccomp and kernel provide level %d", a, info.needs, info.minAPI, api)
		}
		return true
	}
	checkRet := func(path string, a specs.LinuxSeccompAction, ret *uint) {
		switch {
		case ret == nil:
		case a != specs.ActErrno && a != specs.ActTrace:
			bad(path, "only valid with %s or %s, not %s", specs.ActErrno, specs.ActTrace, a)
		case *ret > maxRet:
			bad(path, "%d is out of range (0-%d)", *ret, maxRet)
		}
	}

	if checkAction(field+".defaultAction", c.DefaultAction) && c.DefaultAction == specs.ActNotify {
		// Nothing could run to hand the listener fd to the agent.
		bad(field+".defaultAction", "%s cannot be the default action", specs.ActNotify)
	}
	checkRet(field+".defaultErrnoRet", c.DefaultAction, c.DefaultErrnoRet)

	major, minor, micro := libseccomp.GetLibraryVersion()
	for i, a := range c.Architectures {
		path := fmt.Sprintf("%s.architectures[%d]", field, i)
		info, ok := archInfo(a)
		if !ok {
			bad(path, "unknown architecture %q", a)
			continue
		}
		if info.since6 && major == 2 && minor < 6 {
			bad(path, "%s needs libseccomp >= 2.6.0, this hull is linked against %d.%d.%d", a, major, minor, micro)
		}
	}

	notify := false
	for i, sc := range c.Syscalls {
		path := fmt.Sprintf("%s.syscalls[%d]", field, i)
		for j, name := range sc.Names {
			if name == "" {
				bad(fmt.Sprintf("%s.names[%d]", path, j), "empty syscall name")
			}
		}
		if !checkAction(path+".action", sc.Action) {
			continue
		}
		checkRet(path+".errnoRet", sc.Action, sc.ErrnoRet)
		for k, arg := range sc.Args {
			argPath := fmt.Sprintf("%s.args[%d]", path, k)
			if arg.Index > 5 {
				bad(argPath+".index", "%d is out of range (syscalls have arguments 0-5)", arg.Index)
			}
			if _, ok := compareOp(arg.Op); !ok {
				if arg.Op == "" {
					bad(argPath+".op", "must be set")
				} else {
					bad(argPath+".op", "unknown operator %q", arg.Op)
				}
			}
		}
		if sc.Action == specs.ActNotify {
			notify = true
			for j, name := range sc.Names {
				// The runtime sends the notify fd to the listener with
				// sendmsg(2) after loading the filter, and writes errors with
				// write(2): neither may wait on the agent that has no fd yet.
				if name == "write" || name == "sendmsg" {
					bad(fmt.Sprintf("%s.names[%d]", path, j), "%s cannot be used for %s", specs.ActNotify, name)
				}
			}
		}
	}

	for i, f := range c.Flags {
		path := fmt.Sprintf("%s.flags[%d]", field, i)
		if _, ok := flagBit(f); !ok {
			bad(path, "unknown flag %q", f)
			continue
		}
		if f == specs.LinuxSeccompFlagWaitKillableRecv && !notify {
			bad(path, "%s needs a syscall with action %s", f, specs.ActNotify)
		}
	}

	switch {
	case notify && c.ListenerPath == "":
		bad(field+".listenerPath", "required when a syscall uses %s", specs.ActNotify)
	case !notify && c.ListenerPath != "":
		bad(field+".listenerPath", "set, but no syscall uses %s", specs.ActNotify)
	}

	return errors.Join(errs...)
}

// actionProps describes a runtime-spec action.
type actionProps struct {
	act    libseccomp.ScmpAction
	minAPI uint   // libseccomp API level needed (see seccomp_api_get(3))
	needs  string // what minAPI means, for errors
}

// actionInfo maps a runtime-spec action to libseccomp's. The errno/trace
// return code is not set here.
func actionInfo(a specs.LinuxSeccompAction) (actionProps, bool) {
	switch a {
	case specs.ActKill, specs.ActKillThread:
		// SCMP_ACT_KILL is libseccomp's old name for KILL_THREAD.
		return actionProps{act: libseccomp.ActKillThread}, true
	case specs.ActKillProcess:
		return actionProps{act: libseccomp.ActKillProcess, minAPI: 3, needs: "Linux >= 4.14"}, true
	case specs.ActTrap:
		return actionProps{act: libseccomp.ActTrap}, true
	case specs.ActErrno:
		return actionProps{act: libseccomp.ActErrno}, true
	case specs.ActTrace:
		return actionProps{act: libseccomp.ActTrace}, true
	case specs.ActAllow:
		return actionProps{act: libseccomp.ActAllow}, true
	case specs.ActLog:
		return actionProps{act: libseccomp.ActLog, minAPI: 3, needs: "Linux >= 4.14"}, true
	case specs.ActNotify:
		return actionProps{act: libseccomp.ActNotify, minAPI: 5, needs: "libseccomp >= 2.5.0 and Linux >= 5.0"}, true
	}
	return actionProps{}, false
}

// action returns the libseccomp action for a, with ret (default EPERM) as
// the return code of SCMP_ACT_ERRNO and SCMP_ACT_TRACE. a must be valid.
func action(a specs.LinuxSeccompAction, ret *uint) libseccomp.ScmpAction {
	info, _ := actionInfo(a)
	code := uint(unix.EPERM)
	if ret != nil {
		code = *ret
	}
	return info.act.SetReturnCode(int16(uint16(code)))
}

// archProps describes a runtime-spec architecture.
type archProps struct {
	arch   libseccomp.ScmpArch
	since6 bool // added in libseccomp 2.6.0
}

// archInfo maps a runtime-spec architecture to libseccomp's.
func archInfo(a specs.Arch) (archProps, bool) {
	switch a {
	case specs.ArchX86:
		return archProps{libseccomp.ArchX86, false}, true
	case specs.ArchX86_64:
		return archProps{libseccomp.ArchAMD64, false}, true
	case specs.ArchX32:
		return archProps{libseccomp.ArchX32, false}, true
	case specs.ArchARM:
		return archProps{libseccomp.ArchARM, false}, true
	case specs.ArchAARCH64:
		return archProps{libseccomp.ArchARM64, false}, true
	case specs.ArchMIPS:
		return archProps{libseccomp.ArchMIPS, false}, true
	case specs.ArchMIPS64:
		return archProps{libseccomp.ArchMIPS64, false}, true
	case specs.ArchMIPS64N32:
		return archProps{libseccomp.ArchMIPS64N32, false}, true
	case specs.ArchMIPSEL:
		return archProps{libseccomp.ArchMIPSEL, false}, true
	case specs.ArchMIPSEL64:
		return archProps{libseccomp.ArchMIPSEL64, false}, true
	case specs.ArchMIPSEL64N32:
		return archProps{libseccomp.ArchMIPSEL64N32, false}, true
	case specs.ArchPPC:
		return archProps{libseccomp.ArchPPC, false}, true
	case specs.ArchPPC64:
		return archProps{libseccomp.ArchPPC64, false}, true
	case specs.ArchPPC64LE:
		return archProps{libseccomp.ArchPPC64LE, false}, true
	case specs.ArchS390:
		return archProps{libseccomp.ArchS390, false}, true
	case specs.ArchS390X:
		return archProps{libseccomp.ArchS390X, false}, true
	case specs.ArchPARISC:
		return archProps{libseccomp.ArchPARISC, false}, true
	case specs.ArchPARISC64:
		return archProps{libseccomp.ArchPARISC64, false}, true
	case specs.ArchRISCV64:
		return archProps{libseccomp.ArchRISCV64, false}, true
	case specs.ArchLOONGARCH64:
		return archProps{libseccomp.ArchLOONGARCH64, true}, true
	case specs.ArchM68K:
		return archProps{libseccomp.ArchM68K, true}, true
	case specs.ArchSH:
		return archProps{libseccomp.ArchSH, true}, true
	case specs.ArchSHEB:
		return archProps{libseccomp.ArchSHEB, true}, true
	}
	return archProps{}, false
}

// compareOp maps a runtime-spec operator to libseccomp's.
func compareOp(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, bool) {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, true
	case specs.OpLessThan:
		return libseccomp.CompareLess, true
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, true
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, true
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, true
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, true
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, true
	}
	return libseccomp.CompareInvalid, false
}

// flagBit maps a runtime-spec flag to its seccomp(2) flag bit.
func flagBit(f specs.LinuxSeccompFlag) (uintptr, bool) {
	switch f {
	case flagTsync:
		return unix.SECCOMP_FILTER_FLAG_TSYNC, true
	case specs.LinuxSeccompFlagLog:
		return unix.SECCOMP_FILTER_FLAG_LOG, true
	case specs.LinuxSeccompFlagSpecAllow:
		return unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, true
	case specs.LinuxSeccompFlagWaitKillableRecv:
		return unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, true
	}
	return 0, false
}

// notifyUsed reports whether a syscall rule uses SCMP_ACT_NOTIFY.
func notifyUsed(c *specs.LinuxSeccomp) bool {
	for _, sc := range c.Syscalls {
		if sc.Action == specs.ActNotify {
			return true
		}
	}
	return false
}
