package specgen

import (
	"runtime"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The default seccomp profile follows Docker's (moby profiles/seccomp, as of
// Docker 25-28): an allowlist with EPERM as the default, where some syscalls
// are added only when the container holds the capability that the kernel
// checks for them anyway, so a --cap-add is not defeated by seccomp.
//
// Decisions, and why:
//   - io_uring_setup/enter/register are NOT allowed, as in Docker since 25.0:
//     io_uring has been the source of many kernel privilege escalations, and
//     the operations it performs are not seen by seccomp.
//   - Syscalls added to the kernel after the lists Docker's profile was
//     built from, that only do what already-allowed calls do (cachestat,
//     fchmodat2, the futex2 calls, map_shadow_stack, mseal, the *xattrat
//     calls), are allowed, so new libcs do not hit EPERM where they expect
//     the old call's behaviour. listmount, statmount and the lsm_* calls
//     are not.
//   - The ptrace and process_vm_* group that Docker gates on kernel >= 4.8
//     is unconditional: hull needs a newer kernel than that anyway.
//
// Syscall names that the linked libseccomp does not know are skipped when
// the profile is compiled, as runc does, so the list may name syscalls
// newer than the host's libseccomp.

// errnoEPERM is the default errno, as in Docker's profile.
const errnoEPERM = uint(unix.EPERM)

// errnoENOSYS is returned for clone3 without CAP_SYS_ADMIN: the argument
// filter cannot look into clone3's struct, and ENOSYS makes libc fall back to
// clone, whose flags can be filtered.
const errnoENOSYS = uint(unix.ENOSYS)

// namespaceCloneFlags are the clone flags that create namespaces; clone is
// allowed without CAP_SYS_ADMIN only when none is set.
const namespaceCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// baseSyscalls are allowed for every container, whatever its capabilities.
// Sorted, one entry per name.
var baseSyscalls = []string{
	"_llseek", "_newselect",
	"accept", "accept4", "access", "adjtimex", "alarm",
	"bind", "brk",
	"cachestat", "capget", "capset", "chdir", "chmod", "chown", "chown32",
	"clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
	"clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
	"close", "close_range", "connect", "copy_file_range", "creat",
	"dup", "dup2", "dup3",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
	"epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
	"execve", "execveat", "exit", "exit_group",
	"faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
	"fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown",
	"fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr",
	"flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
	"fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
	"ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait",
	"futex_waitv", "futex_wake", "futimesat",
	"get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents",
	"getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid",
	"getgid32", "getgroups", "getgroups32", "getitimer", "getpeername",
	"getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
	"getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
	"getrusage", "getsid", "getsockname", "getsockopt", "gettid",
	"gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat",
	"inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
	"io_cancel", "io_destroy", "io_getevents", "io_pgetevents",
	"io_pgetevents_time64", "io_setup", "io_submit", "ioctl", "ioprio_get",
	"ioprio_set", "ipc",
	"kill",
	"landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
	"lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr",
	"listxattrat", "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat",
	"lstat64",
	"madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
	"mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
	"mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify",
	"mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
	"mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
	"msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
	"name_to_handle_at", "nanosleep", "newfstatat",
	"open", "openat", "openat2",
	"pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
	"pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
	"pread64", "preadv", "preadv2", "prlimit64", "process_mrelease",
	"process_vm_readv", "process_vm_writev", "pselect6", "pselect6_time64",
	"ptrace", "pwrite64", "pwritev", "pwritev2",
	"read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
	"recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
	"removexattrat", "rename", "renameat", "renameat2", "restart_syscall",
	"rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
	"rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
	"rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
	"sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
	"sched_getattr", "sched_getparam", "sched_getscheduler",
	"sched_rr_get_interval", "sched_rr_get_interval_time64",
	"sched_setaffinity", "sched_setattr", "sched_setparam",
	"sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
	"semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
	"sendfile64", "sendmmsg", "sendmsg", "sendto", "set_robust_list",
	"set_thread_area", "set_tid_address", "setfsgid", "setfsgid32", "setfsuid",
	"setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
	"setitimer", "setpgid", "setpriority", "setregid", "setregid32",
	"setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid",
	"setreuid32", "setrlimit", "setsid", "setsockopt", "setuid", "setuid32",
	"setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
	"sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn",
	"socketcall", "socketpair", "splice", "stat", "stat64", "statfs",
	"statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
	"syncfs", "sysinfo",
	"tee", "tgkill", "time", "timer_create", "timer_delete",
	"timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
	"timer_settime64", "timerfd_create", "timerfd_gettime",
	"timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
	"tkill", "truncate", "truncate64",
	"ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
	"utimensat_time64", "utimes",
	"vfork", "vmsplice",
	"wait4", "waitid", "waitpid", "write", "writev",
}

// archSyscalls are allowed in addition on the named native architecture
// (GOARCH): the calls its libc and runtimes need that exist only there.
var archSyscalls = map[string][]string{
	"amd64": {"arch_prctl", "modify_ldt"},
	"386":   {"modify_ldt"},
	"arm64": {"arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls", "sync_file_range2"},
	"arm":   {"arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls", "sync_file_range2"},
}

// capSyscalls lists, per capability, the syscalls added when the container
// holds it. The kernel checks that capability for these calls (or for what
// makes them dangerous), so granting the capability and not the syscall
// would only confuse. CAP_SYS_ADMIN's list also lifts the clone and clone3
// restrictions (see SeccompFor).
var capSyscalls = map[string][]string{
	"CAP_DAC_READ_SEARCH": {"open_by_handle_at"},
	"CAP_SYS_ADMIN": {
		"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
		"fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount",
		"open_tree", "perf_event_open", "quotactl", "quotactl_fd",
		"setdomainname", "sethostname", "setns", "syslog", "umount", "umount2",
		"unshare",
	},
	"CAP_SYS_BOOT":       {"reboot"},
	"CAP_SYS_CHROOT":     {"chroot"},
	"CAP_SYS_MODULE":     {"delete_module", "finit_module", "init_module"},
	"CAP_SYS_PACCT":      {"acct"},
	"CAP_SYS_PTRACE":     {"kcmp", "pidfd_getfd", "process_madvise"},
	"CAP_SYS_RAWIO":      {"ioperm", "iopl"},
	"CAP_SYS_TIME":       {"clock_settime", "clock_settime64", "settimeofday", "stime"},
	"CAP_SYS_TTY_CONFIG": {"vhangup"},
	"CAP_SYS_NICE":       {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"},
	"CAP_SYSLOG":         {"syslog"},
	"CAP_BPF":            {"bpf"},
	"CAP_PERFMON":        {"perf_event_open"},
}

// personalities are the personality(2) arguments allowed: PER_LINUX,
// PER_LINUX32, UNAME26, PER_LINUX32|UNAME26 and 0xffffffff (query). Other
// personalities turn off ASLR (ADDR_NO_RANDOMIZE) or enable legacy
// behaviour that has been used in exploits.
var personalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// afVsock is AF_VSOCK: sockets of that family reach the hypervisor host and
// are refused, as in Docker's profile.
const afVsock = 40

// seccompArchitectures returns the architectures the filter covers for the
// native arch: the native one plus the compat ABIs its kernel can run.
func seccompArchitectures(goarch string) []specs.Arch {
	switch goarch {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "386":
		return []specs.Arch{specs.ArchX86}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	case "arm":
		return []specs.Arch{specs.ArchARM}
	case "riscv64":
		return []specs.Arch{specs.ArchRISCV64}
	case "ppc64le":
		return []specs.Arch{specs.ArchPPC64LE}
	case "s390x":
		return []specs.Arch{specs.ArchS390X, specs.ArchS390}
	}
	return nil // native only
}

// DefaultSeccomp returns the default seccomp profile for a container with
// Docker's default capabilities (DefaultCapabilities). Each call returns a
// new value.
func DefaultSeccomp() *specs.LinuxSeccomp {
	return SeccompFor(DefaultCapabilities())
}

// SeccompFor returns the default seccomp profile for a container whose
// bounding set is caps ("CAP_SYS_ADMIN" spelling). It is an allowlist with
// EPERM for everything else, as strict as Docker's default profile:
//
//   - the syscalls every process needs (baseSyscalls, plus the native
//     architecture's own in archSyscalls);
//   - socket, except for AF_VSOCK;
//   - personality, only for the harmless personalities;
//   - without CAP_SYS_ADMIN: clone only without namespace flags, and clone3
//     fails with ENOSYS so that libc falls back to clone;
//   - for each capability held, the syscalls in capSyscalls.
//
// Each call returns a new value.
func SeccompFor(caps []string) *specs.LinuxSeccomp {
	return seccompFor(caps, runtime.GOARCH)
}

func seccompFor(caps []string, goarch string) *specs.LinuxSeccomp {
	allow := map[string]bool{}
	for _, n := range baseSyscalls {
		allow[n] = true
	}
	for _, n := range archSyscalls[goarch] {
		allow[n] = true
	}
	sysAdmin := false
	for _, c := range caps {
		c = normalizeCap(c)
		if c == "CAP_SYS_ADMIN" {
			sysAdmin = true
		}
		for _, n := range capSyscalls[c] {
			allow[n] = true
		}
	}
	names := make([]string, 0, len(allow))
	for n := range allow {
		names = append(names, n)
	}
	slices.Sort(names)

	eperm := errnoEPERM
	sc := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   seccompArchitectures(goarch),
		Syscalls: []specs.LinuxSyscall{
			{Names: names, Action: specs.ActAllow},
			{
				Names:  []string{"socket"},
				Action: specs.ActAllow,
				Args:   []specs.LinuxSeccompArg{{Index: 0, Value: afVsock, Op: specs.OpNotEqual}},
			},
		},
	}
	for _, p := range personalities {
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{
			Names:  []string{"personality"},
			Action: specs.ActAllow,
			Args:   []specs.LinuxSeccompArg{{Index: 0, Value: p, Op: specs.OpEqualTo}},
		})
	}
	if !sysAdmin {
		// s390 passes clone's flags in the second argument.
		flagsArg := uint(0)
		if goarch == "s390x" {
			flagsArg = 1
		}
		enosys := errnoENOSYS
		sc.Syscalls = append(sc.Syscalls,
			specs.LinuxSyscall{
				Names:  []string{"clone"},
				Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{
					Index: flagsArg, Value: namespaceCloneFlags, ValueTwo: 0, Op: specs.OpMaskedEqual,
				}},
			},
			specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		)
	}
	return sc
}
