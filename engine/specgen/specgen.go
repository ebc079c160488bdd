// Package specgen turns an OCI image config plus the options of `hull run`
// into a runtime-spec config.json that hull-runtime, runc and crun accept,
// with Docker's semantics and defaults: what a user who knows `docker run`
// expects.
//
// The rootfs is hostile: the only files read from it are /etc/passwd and
// /etc/group, resolved inside it (openat2 RESOLVE_IN_ROOT) and read only
// when they are regular files. Nothing from the image (labels, env, paths)
// selects a host path, binary, hook or logger: host paths come only from
// Options, which the engine fills from the user's command line and its own
// state. Image labels are not copied into annotations (Docker does not
// either, and runtimes such as crun act on some annotation keys).
package specgen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options are the settings of `hull run` that shape config.json. Host paths
// in it (InitPath, ResolvConf, Mounts sources, ...) are trusted: the caller
// takes them from the user or its own state, never from the image.
type Options struct {
	// ID is the container's id; its first 12 characters are the default
	// hostname, as in Docker. Name is the container's name (not used in
	// the spec; kept for callers that build one Options per container).
	ID, Name string
	// Hostname and Domainname set the UTS names. Hostname defaults to the
	// id's first 12 characters, or the host's name with --network host.
	Hostname, Domainname string
	// Env holds "K=V" entries; a later one wins, and they override the
	// image's. The caller resolves a bare "K" from its own environment
	// before calling: here it is an error.
	Env []string
	// User is "uid", "uid:gid", "name", "name:group" (or a mix), resolved
	// against the rootfs's /etc/passwd and /etc/group. Empty: the image's.
	User string
	// Workdir is the process's working directory, absolute. Empty: the
	// image's, or "/".
	Workdir string
	// Entrypoint replaces the image's when EntrypointSet (an empty one
	// means none, as --entrypoint "").
	Entrypoint    []string
	EntrypointSet bool
	// Cmd replaces the image's Cmd. nil: the image's Cmd, unless the
	// entrypoint is overridden (Docker then drops the image's Cmd).
	Cmd []string
	// TTY allocates a terminal (process.terminal, TERM=xterm).
	// Interactive (-i) only concerns the caller's stdio handling.
	TTY, Interactive bool
	// ConsoleSize is the terminal's size at create (process.consoleSize):
	// the first thing in the container sees it, before any resize.
	ConsoleSize *specs.Box `json:",omitempty"`
	// ReadOnly mounts the root filesystem read-only.
	ReadOnly bool
	// Privileged gives every capability, every host device, no seccomp,
	// no masked or read-only paths, and writable /sys and cgroupfs.
	Privileged bool
	// Init runs InitPath (a host path such as /usr/bin/catatonit or tini)
	// as PID 1, bind-mounted read-only at InitDestination.
	Init     bool
	InitPath string
	// CapAdd and CapDrop adjust the default capabilities: "NET_ADMIN",
	// "CAP_NET_ADMIN" (any case) or "ALL".
	CapAdd, CapDrop []string
	// SecurityOpt holds --security-opt values: seccomp=unconfined,
	// seccomp=builtin, seccomp=PROFILE.json (Docker's format),
	// no-new-privileges[=true|false], systempaths=unconfined; label=... and
	// apparmor=... are accepted and ignored. Anything else is an error.
	SecurityOpt []string
	// Memory, MemorySwap (memory+swap, -1 unlimited) and
	// MemoryReservation in bytes; CPUs as a fraction of CPUs; CPUShares a
	// relative weight; CPUSetCPUs a list such as "0-3,5". 0 means unset.
	Memory, MemorySwap, MemoryReservation int64
	CPUs                                  float64
	CPUShares                             int64
	CPUSetCPUs                            string
	// PidsLimit: 0 unset, -1 unlimited.
	PidsLimit int64
	// Ulimits holds --ulimit values: "nofile=1024:2048", "nproc=512",
	// "memlock=-1".
	Ulimits []string
	// Devices holds --device values: "/dev/fuse", "/dev/sda:/dev/xvda:rwm".
	Devices []string
	// Tmpfs holds --tmpfs values: "/run", "/run:rw,size=64m,mode=1777".
	Tmpfs []string
	// Mounts are binds and volumes already resolved to host paths.
	Mounts []Mount
	// ShmSize is the size of /dev/shm in bytes; 0 means 64 MiB.
	ShmSize int64
	// ShmPath, when set, is a host directory bind-mounted at /dev/shm
	// instead of a new tmpfs: the /dev/shm of the container whose IPC
	// namespace is joined (--ipc container:NAME), as Docker shares it.
	ShmPath string
	// Sysctls are namespaced sysctls (net.*, kernel.msg*, kernel.sem,
	// kernel.shm*, fs.mqueue.*).
	Sysctls map[string]string
	// Labels are the engine's metadata; they are not copied into the spec.
	Labels map[string]string
	// Annotations are copied into the spec's annotations.
	Annotations map[string]string
	// StopSignal overrides the image's; it is validated and recorded in the
	// annotation AnnotationStopSignal.
	StopSignal string
	// NetNSPath is a network namespace to join; "host" shares the host's
	// (no network namespace); "" creates a new, private one.
	NetNSPath string
	// UTSHost, IPCHost and PIDHost share the host's namespaces. IPCNSPath,
	// PIDNSPath and UTSNSPath join existing ones (container:NAME resolved by
	// the caller; a joined UTS namespace keeps its owner's hostname).
	UTSHost, IPCHost, PIDHost       bool
	IPCNSPath, PIDNSPath, UTSNSPath string
	// ResolvConf, HostsFile and HostnameFile are host files bind-mounted at
	// /etc/resolv.conf, /etc/hosts and /etc/hostname.
	ResolvConf, HostsFile, HostnameFile string
	// CgroupsPath is passed through to linux.cgroupsPath.
	CgroupsPath string
	// OOMScoreAdj is the process's oom_score_adj (-1000 to 1000).
	OOMScoreAdj *int
	// GroupAdd lists additional groups, names or ids (--group-add).
	GroupAdd []string

	// SystemPaths, if not nil, replaces the default masked and read-only
	// paths (a CRI client sends its own, empty for an unmasked procMount).
	SystemPaths *SystemPaths `json:",omitempty"`

	// Host describes the machine; nil means ProbeHost. Tests and callers
	// that generate many specs set it.
	Host *Host
}

// SystemPaths are the paths masked and made read-only in a container.
type SystemPaths struct {
	Masked, ReadOnly []string
}

// Mount is a bind mount or tmpfs the caller resolved (-v, --mount).
type Mount struct {
	// Source is the host path (binds only).
	Source string
	// Destination is the absolute path in the container.
	Destination string
	// ReadOnly mounts it read-only.
	ReadOnly bool
	// Options are extra mount options: propagation (rprivate, rshared,
	// rslave...), nosuid, nodev, noexec, bind (not recursive), tmpfs
	// options; "z", "Z" and "nocopy" are accepted and dropped.
	Options []string
	// Type is "bind" (the default) or "tmpfs".
	Type string
}

// Host holds the facts about the machine that Generate's defaults depend
// on.
type Host struct {
	// CgroupV2 is set on a pure cgroup v2 host: containers then get a
	// private cgroup namespace, as Docker does there.
	CgroupV2 bool
	// Hostname is the host's name, for --uts host and --network host.
	Hostname string
	// NumCPU bounds --cpus; OnlineCPUs ("0-7") checks --cpuset-cpus.
	NumCPU     int
	OnlineCPUs string
	// SwapLimit is set when the memory cgroup accounts swap, so that a
	// memory+swap limit can be set (Docker's SwapLimit).
	SwapLimit bool
	// Capabilities the kernel supports, "CAP_X" spelling: what privileged
	// and --cap-add ALL grant. nil: probed.
	Capabilities []string
	// RlimitHard holds the current hard limits ("RLIMIT_NOFILE" → n), and
	// CanRaiseRlimits whether this process may raise them
	// (CAP_SYS_RESOURCE).
	RlimitHard      map[string]uint64
	CanRaiseRlimits bool
	// Kernel is the running kernel's MAJOR.MINOR, for minKernel in
	// seccomp profiles.
	Kernel [2]int
	// DevDir is where host devices are listed for --privileged; "" means
	// /dev.
	DevDir string
	// InUserNS: the engine runs in a user namespace of its own (rootless):
	// root there is not root on the host, so hard rlimits cannot be raised
	// and the cgroup filesystem (and, without a network namespace of the
	// container's own, sysfs) cannot be mounted: they are bind-mounted.
	InUserNS bool
}

// ProbeHost reads the facts Generate needs from the running system.
func ProbeHost() (*Host, error) {
	h := &Host{NumCPU: runtime.NumCPU(), RlimitHard: map[string]uint64{}}
	var sfs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &sfs); err == nil {
		h.CgroupV2 = sfs.Type == unix.CGROUP2_SUPER_MAGIC
	}
	h.SwapLimit = swapAccounting(h.CgroupV2)
	h.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		h.OnlineCPUs = strings.TrimSpace(string(b))
	}
	caps, err := supportedCaps()
	if err != nil {
		return nil, err
	}
	h.Capabilities = caps
	for name, res := range rlimitResource {
		var rl unix.Rlimit
		if err := unix.Getrlimit(res, &rl); err == nil {
			h.RlimitHard[name] = rl.Max
		}
	}
	h.InUserNS = InUserNS()
	// Raising a hard limit takes CAP_SYS_RESOURCE in the initial user namespace.
	h.CanRaiseRlimits = hasEffectiveCap(unix.CAP_SYS_RESOURCE) && !h.InUserNS
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		h.Kernel, _ = parseKernel(unix.ByteSliceToString(uts.Release[:]))
	}
	return h, nil
}

// swapAccounting reports whether the memory cgroup can limit swap: on v1
// the memsw files exist; on v2 memory.swap.max exists in non-root cgroups
// (looked for in the root's children, where containers are placed).
func swapAccounting(v2 bool) bool {
	if !v2 {
		_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		return err == nil
	}
	ents, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", e.Name(), "memory.swap.max")); err == nil {
				return true
			}
		}
	}
	return false
}

// hasEffectiveCap reports whether this process has capability c effective.
func hasEffectiveCap(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}

// SpecVersion is the ociVersion of generated configs. Everything Generate
// emits exists in runtime-spec 1.1.0, and older runtimes check the
// version: crun 1.8 (Debian 12) refuses anything newer than 1.1 with
// "unknown version specified", while runc and hull-runtime take any 1.x.
const SpecVersion = "1.1.0"

// AnnotationStopSignal records the container's stop signal, the key
// image-spec's conversion rules give Config.StopSignal.
const AnnotationStopSignal = "org.opencontainers.image.stopSignal"

// DefaultPath is the PATH a container gets when the image sets none, as
// in Docker.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maskedPaths are hidden from unprivileged containers (Docker's list): they
// leak host information (kcore, keys, timer and scheduler state, firmware,
// RAPL power readings used by the PLATYPUS side channel) or reach hardware.
func maskedPaths() []string {
	return []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
}

// readonlyPaths are read-only in unprivileged containers (Docker's list):
// writing them would change the host kernel or its hardware.
func readonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

// Generate builds the runtime config for running img's rootfs (the host
// directory rootfs, already unpacked and mounted) with options o. It reads
// /etc/passwd and /etc/group inside rootfs and, for --device and
// --privileged, the host's device nodes; it changes nothing. Errors name the
// option at fault.
func Generate(img ocispec.Image, rootfs string, o Options) (*specs.Spec, error) {
	if rootfs == "" || !filepath.IsAbs(rootfs) {
		return nil, fmt.Errorf("rootfs %q is not an absolute path", rootfs)
	}
	h := o.Host
	if h == nil {
		var err error
		if h, err = ProbeHost(); err != nil {
			return nil, err
		}
	}
	if h.Capabilities == nil {
		// A hand-made Host without the list: privileged and --cap-add ALL
		// need it.
		hc := *h
		caps, err := supportedCaps()
		if err != nil {
			return nil, err
		}
		hc.Capabilities = caps
		h = &hc
	}
	o.Host = h
	cfg := img.Config
	sec, err := parseSecurityOpts(o.SecurityOpt)
	if err != nil {
		return nil, err
	}

	// Process: command, user, environment, working directory.
	args, err := command(cfg, &o)
	if err != nil {
		return nil, err
	}
	userSpec, userWhat := cfg.User, "image config User"
	if o.User != "" {
		userSpec, userWhat = o.User, "--user"
	}
	eu, err := resolveUser(rootfs, userSpec, userWhat, o.GroupAdd)
	if err != nil {
		return nil, err
	}
	cwd, err := workdir(cfg.WorkingDir, o.Workdir)
	if err != nil {
		return nil, err
	}
	hostname, envHostname, err := hostnames(&o, h)
	if err != nil {
		return nil, err
	}
	env, err := environment(cfg.Env, o.Env, envHostname, o.TTY, eu.home)
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(&o, h.Capabilities)
	if err != nil {
		return nil, err
	}
	rl, err := rlimits(&o, h)
	if err != nil {
		return nil, err
	}
	if o.OOMScoreAdj != nil && (*o.OOMScoreAdj < -1000 || *o.OOMScoreAdj > 1000) {
		return nil, fmt.Errorf("--oom-score-adj %d: must be between -1000 and 1000", *o.OOMScoreAdj)
	}

	s := &specs.Spec{
		Version: SpecVersion,
		Root:    &specs.Root{Path: rootfs, Readonly: o.ReadOnly},
		Process: &specs.Process{
			Terminal:    o.TTY,
			ConsoleSize: consoleSize(o),
			User: specs.User{
				UID:            eu.uid,
				GID:            eu.gid,
				AdditionalGids: eu.gids,
			},
			Args: args,
			Env:  env,
			Cwd:  cwd,
			// Inheritable and ambient stay empty: filling them lets a
			// non-root process keep capabilities across execve of a
			// program without file capabilities (CVE-2022-24769).
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: append([]string(nil), caps...),
				Permitted: append([]string(nil), caps...),
			},
			Rlimits:         rl,
			NoNewPrivileges: sec.noNewPrivileges,
			OOMScoreAdj:     o.OOMScoreAdj,
		},
		Hostname:   hostname,
		Domainname: o.Domainname,
		Linux: &specs.Linux{
			CgroupsPath: o.CgroupsPath,
		},
	}

	if s.Mounts, err = mounts(&o); err != nil {
		return nil, err
	}
	s.Linux.RootfsPropagation = rootfsPropagation(s.Mounts)
	if s.Linux.Namespaces, err = namespaces(&o, h); err != nil {
		return nil, err
	}
	if s.Linux.Resources, err = resources(&o, h); err != nil {
		return nil, err
	}
	if s.Linux.Sysctl, err = sysctls(&o); err != nil {
		return nil, err
	}

	// Devices.
	if o.Privileged {
		dir := h.DevDir
		if dir == "" {
			dir = "/dev"
		}
		if s.Linux.Devices, err = hostDevices(dir); err != nil {
			return nil, err
		}
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else {
		s.Linux.Resources.Devices = defaultDeviceRules()
		seen := map[string]bool{}
		for _, d := range o.Devices {
			devs, rules, err := parseDevice(d)
			if err != nil {
				return nil, err
			}
			for _, dev := range devs {
				if seen[dev.Path] {
					return nil, fmt.Errorf("--device %s: %s is given twice", d, dev.Path)
				}
				seen[dev.Path] = true
			}
			s.Linux.Devices = append(s.Linux.Devices, devs...)
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rules...)
		}
	}

	// Confinement.
	if !o.Privileged && !sec.unmaskSystemPaths {
		s.Linux.MaskedPaths = maskedPaths()
		s.Linux.ReadonlyPaths = readonlyPaths()
		if o.SystemPaths != nil {
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = o.SystemPaths.Masked, o.SystemPaths.ReadOnly
		}
	}
	switch {
	case o.Privileged || sec.seccompUnconfined:
	case sec.seccompProfile != "":
		if s.Linux.Seccomp, err = loadSeccompProfile(sec.seccompProfile, caps, h); err != nil {
			return nil, err
		}
	default:
		s.Linux.Seccomp = SeccompFor(caps)
	}

	// Annotations: the user's, and the stop signal.
	stop, stopWhat := cfg.StopSignal, "image config StopSignal"
	if o.StopSignal != "" {
		stop, stopWhat = o.StopSignal, "--stop-signal"
	}
	if len(o.Annotations) > 0 || stop != "" {
		s.Annotations = make(map[string]string, len(o.Annotations)+1)
	}
	if stop != "" {
		sig, err := ParseSignal(stop)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", stopWhat, stop, err)
		}
		s.Annotations[AnnotationStopSignal] = signalName(sig)
	}
	for k, v := range o.Annotations {
		if k == "" {
			return nil, fmt.Errorf("--annotation =%s: empty key", v)
		}
		s.Annotations[k] = v
	}
	return s, nil
}

// command combines entrypoint and cmd as Docker does, and puts the init
// binary in front for --init.
func command(cfg ocispec.ImageConfig, o *Options) ([]string, error) {
	entrypoint, cmd := cfg.Entrypoint, cfg.Cmd
	if o.EntrypointSet {
		entrypoint = o.Entrypoint
		// Docker: a new entrypoint drops the image's Cmd, which was
		// written for the old one.
		cmd = nil
	}
	if o.Cmd != nil {
		cmd = o.Cmd
	}
	args := append(append([]string(nil), entrypoint...), cmd...)
	if len(args) == 0 {
		return nil, errors.New("no command specified: the image has no Entrypoint or Cmd, give one")
	}
	if args[0] == "" {
		return nil, errors.New("the command's program name is empty")
	}
	for _, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("command argument %q contains a NUL byte", a)
		}
	}
	if o.Init {
		// "--" ends the init's own options (tini and catatonit both
		// accept it), so the command may start with "-".
		args = append([]string{InitDestination, "--"}, args...)
	}
	return args, nil
}

// workdir returns the working directory: the option's, the image's, or "/".
func workdir(image, opt string) (string, error) {
	wd, what := image, "image config WorkingDir"
	if opt != "" {
		wd, what = opt, "--workdir"
	}
	if wd == "" {
		return "/", nil
	}
	if strings.IndexByte(wd, 0) >= 0 {
		return "", fmt.Errorf("%s: contains a NUL byte", what)
	}
	if !filepath.IsAbs(wd) {
		return "", fmt.Errorf("%s %q: the working directory must be an absolute path", what, wd)
	}
	return filepath.Clean(wd), nil
}

// hostnames returns the spec's hostname (empty with --uts host, where the
// container keeps the host's) and the value of $HOSTNAME.
func hostnames(o *Options, h *Host) (spec, env string, err error) {
	if o.UTSHost {
		if o.Hostname != "" {
			return "", "", fmt.Errorf("--hostname %s: conflicts with --uts host", o.Hostname)
		}
		if o.Domainname != "" {
			return "", "", fmt.Errorf("--domainname %s: conflicts with --uts host", o.Domainname)
		}
		return "", h.Hostname, nil
	}
	if o.UTSNSPath != "" {
		// A joined UTS namespace keeps its owner's names: the runtime
		// may not set them. Hostname is what the owner set, for $HOSTNAME.
		if o.Domainname != "" {
			return "", "", fmt.Errorf("--domainname %s: the container joins another's UTS namespace", o.Domainname)
		}
		return "", o.Hostname, nil
	}
	name := o.Hostname
	switch {
	case name != "":
		if err := checkHostname(name); err != nil {
			return "", "", fmt.Errorf("--hostname %s: %w", name, err)
		}
	case o.NetNSPath == "host" && h.Hostname != "":
		// Docker: a container on the host's network looks like the host.
		name = h.Hostname
	case len(o.ID) >= 12:
		name = o.ID[:12]
	default:
		name = o.ID
	}
	if o.Domainname != "" {
		if err := checkHostname(o.Domainname); err != nil {
			return "", "", fmt.Errorf("--domainname %s: %w", o.Domainname, err)
		}
	}
	return name, name, nil
}

// checkHostname applies the kernel's limit and refuses characters that
// make no sense in a host name.
func checkHostname(n string) error {
	if len(n) > 64 {
		return errors.New("longer than 64 characters")
	}
	for _, r := range n {
		if !(r == '-' || r == '.' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("invalid character %q", r)
		}
	}
	return nil
}

// environment merges the environment as Docker does: PATH (when the image
// has none), HOSTNAME and TERM (with -t) first, then the image's, then the
// user's, a later value replacing an earlier one in place. HOME comes from
// the user's passwd entry when nobody set it.
func environment(image, user []string, hostname string, tty bool, home string) ([]string, error) {
	var env []string
	index := map[string]int{}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			env[i] = kv
			return
		}
		index[k] = len(env)
		env = append(env, kv)
	}
	imageHasPath := false
	for _, kv := range image {
		if strings.HasPrefix(kv, "PATH=") {
			imageHasPath = true
		}
	}
	if !imageHasPath {
		set("PATH=" + DefaultPath)
	}
	if hostname != "" {
		set("HOSTNAME=" + hostname)
	}
	if tty {
		set("TERM=xterm")
	}
	for _, kv := range image {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.IndexByte(kv, 0) >= 0 {
			// A malformed image entry would make the runtime refuse the
			// config; the image cannot mean anything by it.
			continue
		}
		set(kv)
	}
	for _, kv := range user {
		k, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("--env %s: no value (the caller resolves a bare name from its environment)", kv)
		case k == "":
			return nil, fmt.Errorf("--env %s: empty variable name", kv)
		case strings.IndexByte(kv, 0) >= 0:
			return nil, fmt.Errorf("--env %s: contains a NUL byte", k)
		}
		set(kv)
	}
	if _, ok := index["HOME"]; !ok {
		set("HOME=" + home)
	}
	return env, nil
}

// namespaces returns the namespaces, as Docker creates them: pid, network,
// ipc, uts and mount, each unless shared with the host or joined by path,
// and cgroup on cgroup v2 hosts.
func namespaces(o *Options, h *Host) ([]specs.LinuxNamespace, error) {
	var ns []specs.LinuxNamespace
	add := func(t specs.LinuxNamespaceType, host bool, path, hostFlag, pathFlag string) error {
		if host && path != "" {
			return fmt.Errorf("%s and %s %s: conflicting options", hostFlag, pathFlag, path)
		}
		if host {
			return nil
		}
		if path != "" {
			if !filepath.IsAbs(path) {
				return fmt.Errorf("%s %s: not an absolute path", pathFlag, path)
			}
			path = filepath.Clean(path)
		}
		ns = append(ns, specs.LinuxNamespace{Type: t, Path: path})
		return nil
	}
	if err := add(specs.PIDNamespace, o.PIDHost, o.PIDNSPath, "--pid host", "pid namespace"); err != nil {
		return nil, err
	}
	netPath := o.NetNSPath
	if netPath == "host" {
		netPath = ""
	}
	if err := add(specs.NetworkNamespace, o.NetNSPath == "host", netPath, "--network host", "network namespace"); err != nil {
		return nil, err
	}
	if err := add(specs.IPCNamespace, o.IPCHost, o.IPCNSPath, "--ipc host", "ipc namespace"); err != nil {
		return nil, err
	}
	if err := add(specs.UTSNamespace, o.UTSHost, o.UTSNSPath, "--uts host", "uts namespace"); err != nil {
		return nil, err
	}
	ns = append(ns, specs.LinuxNamespace{Type: specs.MountNamespace})
	if h.CgroupV2 {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return ns, nil
}

func consoleSize(o Options) *specs.Box {
	if !o.TTY {
		return nil
	}
	return o.ConsoleSize
}

// InUserNS reports whether this process is in a user namespace other than
// the initial one, which maps the whole id range ("0 0 4294967295"): a
// rootless engine's.
func InUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}
