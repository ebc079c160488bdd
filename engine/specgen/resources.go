package specgen

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cpuPeriod is the CFS period --cpus is expressed in, as Docker: 100 ms.
const cpuPeriod = 100000

// minMemory is Docker's smallest --memory: below it the container's own
// runtime overhead gets it OOM-killed.
const minMemory = 6 << 20

// resources maps the resource options onto linux.resources (devices are
// added by the caller).
func resources(o *Options, h *Host) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if o.Memory < 0 {
		return nil, fmt.Errorf("--memory %d: must be positive", o.Memory)
	}
	if o.Memory > 0 {
		if o.Memory < minMemory {
			return nil, fmt.Errorf("--memory %d: the minimum is 6MB", o.Memory)
		}
		r.Memory = &specs.LinuxMemory{Limit: i64(o.Memory)}
	}
	switch {
	case o.MemorySwap == 0:
		// Docker: as much swap as memory, so memory+swap is twice the
		// memory limit; nothing when the host cannot limit swap.
		if o.Memory > 0 && h.SwapLimit {
			r.Memory.Swap = i64(2 * o.Memory)
		}
	case o.MemorySwap == -1:
		// Unlimited swap; without --memory or swap accounting there is
		// nothing to lift.
		if o.Memory > 0 && h.SwapLimit {
			r.Memory.Swap = i64(-1)
		}
	case o.MemorySwap < -1:
		return nil, fmt.Errorf("--memory-swap %d: must be -1 (unlimited) or at least --memory", o.MemorySwap)
	default:
		if o.Memory == 0 {
			return nil, fmt.Errorf("--memory-swap %d: needs --memory (it is the total of memory and swap)", o.MemorySwap)
		}
		if o.MemorySwap < o.Memory {
			return nil, fmt.Errorf("--memory-swap %d: must be at least --memory %d (it is the total of memory and swap)", o.MemorySwap, o.Memory)
		}
		if !h.SwapLimit {
			// Docker warns and drops the limit; hull cannot warn, and a
			// limit the user asked for must not silently vanish.
			return nil, fmt.Errorf("--memory-swap %d: this host's memory cgroup does not account swap (swapaccount)", o.MemorySwap)
		}
		r.Memory.Swap = i64(o.MemorySwap)
	}
	if o.MemoryReservation < 0 {
		return nil, fmt.Errorf("--memory-reservation %d: must be positive", o.MemoryReservation)
	}
	if o.MemoryReservation > 0 {
		if o.Memory > 0 && o.MemoryReservation > o.Memory {
			return nil, fmt.Errorf("--memory-reservation %d: must be at most --memory %d", o.MemoryReservation, o.Memory)
		}
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		r.Memory.Reservation = i64(o.MemoryReservation)
	}

	if o.CPUs != 0 {
		if math.IsNaN(o.CPUs) || o.CPUs < 0.01 {
			return nil, fmt.Errorf("--cpus %g: the minimum is 0.01", o.CPUs)
		}
		if h.NumCPU > 0 && o.CPUs > float64(h.NumCPU) {
			return nil, fmt.Errorf("--cpus %g: the host has %d CPUs", o.CPUs, h.NumCPU)
		}
		quota := int64(math.Round(o.CPUs * cpuPeriod))
		period := uint64(cpuPeriod)
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if o.CPUShares < 0 {
		return nil, fmt.Errorf("--cpu-shares %d: must be positive", o.CPUShares)
	}
	if o.CPUShares > 0 {
		// The kernel's range; Docker clamps the same way.
		s := uint64(min(max(o.CPUShares, 2), 262144))
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		r.CPU.Shares = &s
	}
	if o.CPUSetCPUs != "" {
		cpus, err := parseCPUList(o.CPUSetCPUs)
		if err != nil {
			return nil, fmt.Errorf("--cpuset-cpus %s: %w", o.CPUSetCPUs, err)
		}
		if h.OnlineCPUs != "" {
			online, err := parseCPUList(h.OnlineCPUs)
			if err == nil {
				for _, c := range cpus {
					if !slices.Contains(online, c) {
						return nil, fmt.Errorf("--cpuset-cpus %s: CPU %d is not available (online: %s)", o.CPUSetCPUs, c, h.OnlineCPUs)
					}
				}
			}
		}
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		r.CPU.Cpus = o.CPUSetCPUs
	}
	switch {
	case o.PidsLimit > 0:
		r.Pids = &specs.LinuxPids{Limit: i64(o.PidsLimit)}
	case o.PidsLimit == -1:
		// Explicitly unlimited, also when a parent cgroup default exists.
		r.Pids = &specs.LinuxPids{Limit: i64(-1)}
	case o.PidsLimit < -1:
		return nil, fmt.Errorf("--pids-limit %d: must be positive, or -1 for unlimited", o.PidsLimit)
	}
	return r, nil
}

// parseCPUList parses a cpuset list such as "0-3,5".
func parseCPUList(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("invalid CPU %q", part)
		}
		b := a
		if isRange {
			b, err = strconv.Atoi(hi)
			if err != nil || b < a {
				return nil, fmt.Errorf("invalid CPU range %q", part)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("CPU range %q is too large", part)
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// ulimitNames maps Docker's --ulimit names to rlimit types.
var ulimitNames = map[string]string{
	"as":         "RLIMIT_AS",
	"core":       "RLIMIT_CORE",
	"cpu":        "RLIMIT_CPU",
	"data":       "RLIMIT_DATA",
	"fsize":      "RLIMIT_FSIZE",
	"locks":      "RLIMIT_LOCKS",
	"memlock":    "RLIMIT_MEMLOCK",
	"msgqueue":   "RLIMIT_MSGQUEUE",
	"nice":       "RLIMIT_NICE",
	"nofile":     "RLIMIT_NOFILE",
	"nproc":      "RLIMIT_NPROC",
	"rss":        "RLIMIT_RSS",
	"rtprio":     "RLIMIT_RTPRIO",
	"rttime":     "RLIMIT_RTTIME",
	"sigpending": "RLIMIT_SIGPENDING",
	"stack":      "RLIMIT_STACK",
}

// rlimitResource maps rlimit types to resource numbers, for probing.
var rlimitResource = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// rlimInfinity is RLIM_INFINITY.
const rlimInfinity = math.MaxUint64

// Default nofile limits: a soft limit of 1024 keeps select(2)-based
// programs working (systemd and containerd 2 use it), the hard limit lets
// programs that need more raise it (2^20 is the kernel's default nr_open).
const (
	defaultNofileSoft = 1024
	defaultNofileHard = 1 << 20
)

// parseUlimitValue parses one side of --ulimit: a number, or -1/unlimited.
func parseUlimitValue(s string) (uint64, error) {
	if s == "-1" || s == "unlimited" {
		return rlimInfinity, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid value %q", s)
	}
	return v, nil
}

// rlimits returns the process's rlimits: the user's --ulimit values, plus a
// default nofile when the user gave none. Without CAP_SYS_RESOURCE a hard
// limit cannot be raised, so a default never exceeds the current hard
// limit, and a --ulimit above it is an error here rather than an EPERM from
// the runtime.
func rlimits(o *Options, h *Host) ([]specs.POSIXRlimit, error) {
	set := map[string]specs.POSIXRlimit{}
	for _, arg := range o.Ulimits {
		what := "--ulimit " + arg
		name, val, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, fmt.Errorf("%s: want NAME=SOFT[:HARD]", what)
		}
		typ, known := ulimitNames[strings.ToLower(strings.TrimSpace(name))]
		if !known {
			return nil, fmt.Errorf("%s: unknown limit %q", what, name)
		}
		softS, hardS, hasHard := strings.Cut(val, ":")
		soft, err := parseUlimitValue(softS)
		if err != nil {
			return nil, fmt.Errorf("%s: soft limit: %w", what, err)
		}
		hard := soft
		if hasHard {
			if hard, err = parseUlimitValue(hardS); err != nil {
				return nil, fmt.Errorf("%s: hard limit: %w", what, err)
			}
		}
		if soft > hard {
			return nil, fmt.Errorf("%s: soft limit %d is above the hard limit %d", what, soft, hard)
		}
		if cur, known := h.RlimitHard[typ]; known && !h.CanRaiseRlimits && hard > cur {
			return nil, fmt.Errorf("%s: hard limit %s is above the current hard limit %s, and raising it needs CAP_SYS_RESOURCE", what, fmtLimit(hard), fmtLimit(cur))
		}
		set[typ] = specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard}
	}
	if _, given := set["RLIMIT_NOFILE"]; !given {
		hard := uint64(defaultNofileHard)
		if cur, known := h.RlimitHard["RLIMIT_NOFILE"]; known && !h.CanRaiseRlimits && cur < hard {
			hard = cur
		}
		if hard > 0 {
			set["RLIMIT_NOFILE"] = specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: min(defaultNofileSoft, hard), Hard: hard}
		}
	}
	out := make([]specs.POSIXRlimit, 0, len(set))
	for _, k := range sortedKeys(set) {
		out = append(out, set[k])
	}
	return out, nil
}

func fmtLimit(v uint64) string {
	if v == rlimInfinity {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// ipcSysctls are the kernel.* sysctls of the IPC namespace that Docker
// accepts.
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// sysctls checks --sysctl against the namespaced sysctls Docker accepts: a
// sysctl outside the container's own namespaces would change the host.
func sysctls(o *Options) (map[string]string, error) {
	if len(o.Sysctls) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(o.Sysctls))
	for _, k := range sortedKeys(o.Sysctls) {
		v := o.Sysctls[k]
		what := "--sysctl " + k + "=" + v
		name := sysctlDots(k)
		switch {
		case strings.HasPrefix(name, "net."):
			if o.NetNSPath == "host" {
				return nil, fmt.Errorf("%s: not allowed with the host's network namespace (--network host)", what)
			}
			if o.NetNSPath != "" && sameNamespace(o.NetNSPath, "/proc/self/ns/net") {
				// A joined path that is in fact the host's namespace.
				return nil, fmt.Errorf("%s: network namespace %s is the host's", what, o.NetNSPath)
			}
		case slices.Contains(ipcSysctls, name) || strings.HasPrefix(name, "fs.mqueue."):
			if o.IPCHost {
				return nil, fmt.Errorf("%s: not allowed with the host's IPC namespace (--ipc host)", what)
			}
		default:
			return nil, fmt.Errorf("%s: not a namespaced sysctl (allowed: net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*)", what)
		}
		if strings.ContainsAny(name, "\x00") || strings.Contains(name, "..") || strings.HasSuffix(name, ".") {
			return nil, fmt.Errorf("%s: invalid name", what)
		}
		out[name] = v
	}
	return out, nil
}

// sameNamespace reports whether the namespace files a and b are the same
// namespace; an unreadable file is not.
func sameNamespace(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// sysctlDots converts "net/ipv4/ip_forward" (sysctl.d(5) slash form) to the
// dotted form, swapping "." and "/" so "net/ipv4/conf/eth0.100/rp_filter"
// becomes "net.ipv4.conf.eth0/100.rp_filter".
func sysctlDots(name string) string {
	i := strings.IndexAny(name, "./")
	if i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}

// ParseSignal parses a stop signal as Docker does: a name with or without
// "SIG" in any case ("SIGTERM", "term", "RTMIN+3") or a number (1-64).
func ParseSignal(s string) (unix.Signal, error) {
	if s == "" {
		return 0, fmt.Errorf("empty signal")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q: out of range 1-64", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if rest, ok := strings.CutPrefix(name, "RTMIN"); ok {
		return rtSignal(s, 34, rest, 1)
	}
	if rest, ok := strings.CutPrefix(name, "RTMAX"); ok {
		return rtSignal(s, 64, rest, -1)
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q", s)
}

// rtSignal parses the "+N"/"-N" after RTMIN (base 34) or RTMAX (base 64).
func rtSignal(s string, base int, rest string, dir int) (unix.Signal, error) {
	n := 0
	if rest != "" {
		sign := 1
		switch rest[0] {
		case '+':
		case '-':
			sign = -1
		default:
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		v, err := strconv.Atoi(rest[1:])
		if err != nil || sign != dir {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		n = sign * v
	}
	sig := base + n
	if sig < 34 || sig > 64 {
		return 0, fmt.Errorf("invalid signal %q: out of range", s)
	}
	return unix.Signal(sig), nil
}

// signalName returns "SIGTERM" for a named signal and the number otherwise
// (real-time signals).
func signalName(sig unix.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return strconv.Itoa(int(sig))
}
