package specgen

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Docker's capability rules: the default set in bounding, effective and
// permitted (never inheritable or ambient), --cap-add/--cap-drop in any
// spelling, ALL on either side, privileged.
func TestCapabilities(t *testing.T) {
	rootfs := stdRootfs(t)
	all := testHost().Capabilities
	without := func(drop ...string) []string {
		return slices.DeleteFunc(DefaultCapabilities(), func(c string) bool { return slices.Contains(drop, c) })
	}
	tests := []struct {
		name       string
		o          Options
		want       []string
		err        string
		privileged bool
	}{
		{name: "defaults", want: DefaultCapabilities()},
		{name: "add short and long names", o: Options{CapAdd: []string{"NET_ADMIN", "cap_sys_ptrace"}}, want: append(DefaultCapabilities(), "CAP_NET_ADMIN", "CAP_SYS_PTRACE")},
		{name: "drop", o: Options{CapDrop: []string{"NET_RAW", "CAP_MKNOD"}}, want: without("CAP_NET_RAW", "CAP_MKNOD")},
		{name: "add wins over drop", o: Options{CapAdd: []string{"CHOWN"}, CapDrop: []string{"CHOWN"}}, want: append(without("CAP_CHOWN"), "CAP_CHOWN")},
		{name: "drop ALL then add", o: Options{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"}}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "drop all (lower case)", o: Options{CapDrop: []string{"all"}}, want: nil},
		{name: "add ALL minus drops", o: Options{CapAdd: []string{"ALL"}, CapDrop: []string{"SYS_ADMIN"}}, want: slices.DeleteFunc(slices.Clone(all), func(c string) bool { return c == "CAP_SYS_ADMIN" })},
		{name: "duplicates collapse", o: Options{CapAdd: []string{"KILL", "CAP_KILL"}}, want: DefaultCapabilities()},
		{name: "privileged", o: Options{Privileged: true}, want: all},
		{name: "unknown add", o: Options{CapAdd: []string{"FOO"}}, err: "--cap-add FOO: unknown capability"},
		{name: "unknown drop", o: Options{CapDrop: []string{"CAP_BAR"}}, err: "--cap-drop CAP_BAR: unknown capability"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := gen(t, testImage(), rootfs, tt.o)
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := s.Process.Capabilities
			for set, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
				if !slices.Equal(got, tt.want) {
					t.Errorf("%s = %v\nwant %v", set, got, tt.want)
				}
			}
			if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
				t.Errorf("inheritable %v ambient %v, want empty", c.Inheritable, c.Ambient)
			}
		})
	}
}

// Privileged: all capabilities, no seccomp, no masked or read-only paths,
// the host's devices with an allow-all device cgroup, writable /sys and
// cgroupfs.
func TestPrivileged(t *testing.T) {
	rootfs := stdRootfs(t)
	devDir := t.TempDir()
	if err := unix.Mknod(filepath.Join(devDir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("mknod: %v", err)
	}
	for _, d := range []string{"pts", "net"} {
		if err := os.Mkdir(filepath.Join(devDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, unix.Mknod(filepath.Join(devDir, "pts/0"), unix.S_IFCHR|0o620, int(unix.Mkdev(136, 0))))
	must(t, unix.Mknod(filepath.Join(devDir, "net/tun"), unix.S_IFCHR|0o666, int(unix.Mkdev(10, 200))))
	must(t, unix.Mknod(filepath.Join(devDir, "console"), unix.S_IFCHR|0o600, int(unix.Mkdev(5, 1))))
	must(t, unix.Mknod(filepath.Join(devDir, "sda"), unix.S_IFBLK|0o660, int(unix.Mkdev(8, 0))))
	must(t, os.Symlink("null", filepath.Join(devDir, "link")))

	h := testHost()
	h.DevDir = devDir
	s := mustGen(t, testImage(), rootfs, Options{Privileged: true, Host: h, SecurityOpt: []string{"seccomp=builtin"}})
	if s.Linux.Seccomp != nil {
		t.Error("privileged container has seccomp")
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("masked %v readonly %v, want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	var paths []string
	for _, d := range s.Linux.Devices {
		paths = append(paths, d.Path+":"+d.Type)
	}
	slices.Sort(paths)
	if want := []string{"/dev/net/tun:c", "/dev/null:c", "/dev/sda:b"}; !slices.Equal(paths, want) {
		t.Errorf("devices = %v, want %v (no pts, console or symlinks)", paths, want)
	}
	if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Access != "rwm" || r[0].Type != "" {
		t.Errorf("device cgroup = %+v, want allow all", r)
	}
	for _, dest := range []string{"/sys", "/sys/fs/cgroup"} {
		m := findMount(s, dest)
		if m == nil || slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rw") {
			t.Errorf("%s = %+v, want rw", dest, m)
		}
	}
	// --device is ignored with --privileged, as in Docker.
	if _, err := gen(t, testImage(), rootfs, Options{Privileged: true, Host: h, Devices: []string{"/nonexistent"}}); err != nil {
		t.Errorf("--device with --privileged: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The standard filesystems with Docker's options, in order.
func TestDefaultMounts(t *testing.T) {
	rootfs := stdRootfs(t)
	s := mustGen(t, testImage(), rootfs, Options{})
	want := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
	}
	if len(s.Mounts) != len(want) {
		t.Fatalf("mounts = %+v\nwant %+v", s.Mounts, want)
	}
	for i := range want {
		g, w := s.Mounts[i], want[i]
		if g.Destination != w.Destination || g.Type != w.Type || g.Source != w.Source || !slices.Equal(g.Options, w.Options) {
			t.Errorf("mount %d = %+v, want %+v", i, g, w)
		}
	}

	// --shm-size, --ipc host, a joined IPC namespace's /dev/shm.
	s = mustGen(t, testImage(), rootfs, Options{ShmSize: 1 << 30})
	if m := findMount(s, "/dev/shm"); !slices.Contains(m.Options, "size=1073741824") {
		t.Errorf("/dev/shm = %+v, want size=1073741824", m)
	}
	s = mustGen(t, testImage(), rootfs, Options{IPCHost: true})
	if m := findMount(s, "/dev/shm"); m.Type != "bind" || m.Source != "/dev/shm" {
		t.Errorf("--ipc host: /dev/shm = %+v, want the host's", m)
	}
	if m := findMount(s, "/dev/mqueue"); m.Type != "mqueue" {
		t.Errorf("--ipc host: /dev/mqueue = %+v, want an mqueue mount (made in the host's IPC namespace)", m)
	}
	s = mustGen(t, testImage(), rootfs, Options{IPCNSPath: "/proc/self/ns/ipc", ShmPath: "/run/hull/c1/shm"})
	if m := findMount(s, "/dev/shm"); m.Type != "bind" || m.Source != "/run/hull/c1/shm" {
		t.Errorf("--ipc container: /dev/shm = %+v, want the other's", m)
	}
}

// Docker's masked and read-only paths.
func TestMaskedAndReadonlyPaths(t *testing.T) {
	s := mustGen(t, testImage(), stdRootfs(t), Options{})
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/acpi", "/proc/scsi", "/sys/devices/virtual/powercap", "/proc/interrupts"} {
		if !slices.Contains(s.Linux.MaskedPaths, p) {
			t.Errorf("%s is not masked", p)
		}
	}
	if want := []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}; !slices.Equal(s.Linux.ReadonlyPaths, want) {
		t.Errorf("readonly = %v, want %v", s.Linux.ReadonlyPaths, want)
	}
	s = mustGen(t, testImage(), stdRootfs(t), Options{SecurityOpt: []string{"systempaths=unconfined"}})
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Error("systempaths=unconfined left masked paths")
	}
}

// The default device cgroup, and --device adding a node and its rule.
func TestDevices(t *testing.T) {
	rootfs := stdRootfs(t)
	s := mustGen(t, testImage(), rootfs, Options{})
	if len(s.Linux.Devices) != 0 {
		t.Errorf("devices = %+v, want none (the runtime adds the defaults)", s.Linux.Devices)
	}
	rules := s.Linux.Resources.Devices
	if r := rules[0]; r.Allow || r.Access != "rwm" || r.Type != "" || r.Major != nil {
		t.Errorf("first rule = %+v, want deny all", r)
	}
	allowed := func(rules []specs.LinuxDeviceCgroup, typ string, major, minor int64, acc string) bool {
		ok := false
		for _, r := range rules {
			if (r.Type == "" || r.Type == "a" || r.Type == typ) &&
				(r.Major == nil || *r.Major == major) && (r.Minor == nil || *r.Minor == minor) &&
				strings.Contains(r.Access, acc) {
				ok = r.Allow
			}
		}
		return ok
	}
	for _, d := range []struct {
		typ          string
		major, minor int64
		acc          string
		want         bool
	}{
		{"c", 1, 3, "rw", true},   // null
		{"c", 1, 5, "rw", true},   // zero
		{"c", 1, 7, "rw", true},   // full
		{"c", 1, 8, "rw", true},   // random
		{"c", 1, 9, "rw", true},   // urandom
		{"c", 5, 0, "rw", true},   // tty
		{"c", 5, 2, "rw", true},   // ptmx
		{"c", 136, 4, "rw", true}, // pts
		{"c", 10, 229, "rw", false},
		{"b", 8, 0, "r", false},
		{"b", 8, 0, "m", true},
		{"c", 1, 1, "r", false}, // /dev/mem
	} {
		if got := allowed(rules, d.typ, d.major, d.minor, d.acc); got != d.want {
			t.Errorf("%s %d:%d %s allowed = %v, want %v", d.typ, d.major, d.minor, d.acc, got, d.want)
		}
	}

	s = mustGen(t, testImage(), rootfs, Options{Devices: []string{"/dev/null:/dev/mynull:r", "/dev/zero"}})
	if len(s.Linux.Devices) != 2 {
		t.Fatalf("devices = %+v", s.Linux.Devices)
	}
	if d := s.Linux.Devices[0]; d.Path != "/dev/mynull" || d.Type != "c" || d.Major != 1 || d.Minor != 3 {
		t.Errorf("device = %+v, want /dev/mynull c 1:3", d)
	}
	last := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-2]
	if !last.Allow || *last.Major != 1 || *last.Minor != 3 || last.Access != "r" {
		t.Errorf("rule = %+v, want allow c 1:3 r", last)
	}
	plain := filepath.Join(t.TempDir(), "plain")
	must(t, os.WriteFile(plain, nil, 0o644))
	for _, bad := range []struct{ dev, frag string }{
		{"/nonexistent", "--device /nonexistent"},
		{"dev/null", "not an absolute host path"},
		{"/dev/null:/dev/x:rwz", "invalid permissions"},
		{plain, "not a device node"},
		{"/dev/null:relative", "not an absolute path"},
	} {
		_, err := gen(t, testImage(), rootfs, Options{Devices: []string{bad.dev}})
		wantErr(t, err, bad.frag)
	}
}

// Namespaces: new pid, net, ipc, uts, mount; host or joined ones left out
// or given by path; cgroup on cgroup v2.
func TestNamespaces(t *testing.T) {
	rootfs := stdRootfs(t)
	type nsWant map[specs.LinuxNamespaceType]string // type → path; absent = not present
	tests := []struct {
		name string
		o    Options
		v2   bool
		want nsWant
		err  string
	}{
		{name: "defaults v1", want: nsWant{"pid": "", "network": "", "ipc": "", "uts": "", "mount": ""}},
		{name: "defaults v2", v2: true, want: nsWant{"pid": "", "network": "", "ipc": "", "uts": "", "mount": "", "cgroup": ""}},
		{name: "host network", o: Options{NetNSPath: "host"}, want: nsWant{"pid": "", "ipc": "", "uts": "", "mount": ""}},
		{name: "joined network", o: Options{NetNSPath: "/proc/self/ns/net"}, want: nsWant{"pid": "", "network": "/proc/self/ns/net", "ipc": "", "uts": "", "mount": ""}},
		{name: "host pid ipc uts", o: Options{PIDHost: true, IPCHost: true, UTSHost: true}, want: nsWant{"network": "", "mount": ""}},
		{name: "joined pid ipc", o: Options{PIDNSPath: "/proc/1/ns/pid", IPCNSPath: "/proc/1/ns/ipc"}, want: nsWant{"pid": "/proc/1/ns/pid", "network": "", "ipc": "/proc/1/ns/ipc", "uts": "", "mount": ""}},
		{name: "host and path", o: Options{PIDHost: true, PIDNSPath: "/proc/1/ns/pid"}, err: "conflicting"},
		{name: "relative path", o: Options{NetNSPath: "ns/net"}, err: "not an absolute path"},
		{name: "hostname with host uts", o: Options{UTSHost: true, Hostname: "x"}, err: "--hostname x: conflicts with --uts host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testHost()
			h.CgroupV2 = tt.v2
			s, err := gen(t, testImage(), rootfs, Options{Host: h, ID: "abc", PIDHost: tt.o.PIDHost, IPCHost: tt.o.IPCHost, UTSHost: tt.o.UTSHost, NetNSPath: tt.o.NetNSPath, PIDNSPath: tt.o.PIDNSPath, IPCNSPath: tt.o.IPCNSPath, Hostname: tt.o.Hostname})
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := nsWant{}
			for _, ns := range s.Linux.Namespaces {
				got[ns.Type] = ns.Path
			}
			if len(got) != len(tt.want) {
				t.Errorf("namespaces = %v, want %v", got, tt.want)
			}
			for typ, path := range tt.want {
				if p, ok := got[typ]; !ok || p != path {
					t.Errorf("namespace %s = %q (present %v), want %q", typ, p, ok, path)
				}
			}
			if tt.o.UTSHost && s.Hostname != "" {
				t.Errorf("hostname %q with the host's UTS namespace", s.Hostname)
			}
		})
	}
}

// Resource options to linux.resources, with Docker's checks.
func TestResources(t *testing.T) {
	rootfs := stdRootfs(t)
	ptr := func(v int64) *int64 { return &v }
	tests := []struct {
		name                 string
		o                    Options
		limit, swap, reserve *int64
		quota                *int64
		shares               uint64
		cpus                 string
		pids                 *int64
		err                  string
	}{
		{name: "none"},
		{name: "memory gets as much swap", o: Options{Memory: 512 << 20}, limit: ptr(512 << 20), swap: ptr(1 << 30)},
		{name: "memory-swap total", o: Options{Memory: 512 << 20, MemorySwap: 768 << 20}, limit: ptr(512 << 20), swap: ptr(768 << 20)},
		{name: "unlimited swap", o: Options{Memory: 512 << 20, MemorySwap: -1}, limit: ptr(512 << 20), swap: ptr(-1)},
		{name: "reservation", o: Options{MemoryReservation: 100 << 20}, reserve: ptr(100 << 20)},
		{name: "cpus", o: Options{CPUs: 1.5}, quota: ptr(150000)},
		{name: "cpus small", o: Options{CPUs: 0.01}, quota: ptr(1000)},
		{name: "shares", o: Options{CPUShares: 512}, shares: 512},
		{name: "shares clamped", o: Options{CPUShares: 1}, shares: 2},
		{name: "cpuset", o: Options{CPUSetCPUs: "0-1,3"}, cpus: "0-1,3"},
		{name: "pids", o: Options{PidsLimit: 100}, pids: ptr(100)},
		{name: "pids unlimited", o: Options{PidsLimit: -1}, pids: ptr(-1)},
		{name: "memory too small", o: Options{Memory: 1 << 20}, err: "--memory 1048576: the minimum is 6MB"},
		{name: "swap below memory", o: Options{Memory: 512 << 20, MemorySwap: 256 << 20}, err: "--memory-swap"},
		{name: "swap without memory", o: Options{MemorySwap: 256 << 20}, err: "needs --memory"},
		{name: "reservation above memory", o: Options{Memory: 64 << 20, MemoryReservation: 128 << 20}, err: "--memory-reservation"},
		{name: "too many cpus", o: Options{CPUs: 8}, err: "--cpus 8: the host has 4 CPUs"},
		{name: "too few cpus", o: Options{CPUs: 0.001}, err: "--cpus"},
		{name: "cpuset syntax", o: Options{CPUSetCPUs: "0-x"}, err: "--cpuset-cpus 0-x"},
		{name: "cpuset unavailable", o: Options{CPUSetCPUs: "7"}, err: "CPU 7 is not available"},
		{name: "no swap accounting: no default swap", o: Options{Memory: 512 << 20, Host: noSwap()}, limit: ptr(512 << 20)},
		{name: "no swap accounting: explicit swap refused", o: Options{Memory: 512 << 20, MemorySwap: 1 << 30, Host: noSwap()}, err: "does not account swap"},
		{name: "pids negative", o: Options{PidsLimit: -2}, err: "--pids-limit -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := gen(t, testImage(), rootfs, tt.o)
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := s.Linux.Resources
			eq := func(field string, got, want *int64) {
				if (got == nil) != (want == nil) || (got != nil && *got != *want) {
					t.Errorf("%s = %v, want %v", field, deref(got), deref(want))
				}
			}
			var m specs.LinuxMemory
			if r.Memory != nil {
				m = *r.Memory
			}
			eq("memory.limit", m.Limit, tt.limit)
			eq("memory.swap", m.Swap, tt.swap)
			eq("memory.reservation", m.Reservation, tt.reserve)
			var c specs.LinuxCPU
			if r.CPU != nil {
				c = *r.CPU
			}
			eq("cpu.quota", c.Quota, tt.quota)
			if tt.quota != nil && (c.Period == nil || *c.Period != 100000) {
				t.Errorf("cpu.period = %v, want 100000", c.Period)
			}
			if (c.Shares == nil && tt.shares != 0) || (c.Shares != nil && *c.Shares != tt.shares) {
				t.Errorf("cpu.shares = %v, want %d", c.Shares, tt.shares)
			}
			if c.Cpus != tt.cpus {
				t.Errorf("cpu.cpus = %q, want %q", c.Cpus, tt.cpus)
			}
			var pids *int64
			if r.Pids != nil {
				pids = r.Pids.Limit
			}
			eq("pids.limit", pids, tt.pids)
		})
	}
}

func noSwap() *Host {
	h := testHost()
	h.SwapLimit = false
	return h
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Rlimits: a default nofile that never exceeds the host's hard limit, the
// user's --ulimit values, and an error for a hard limit that cannot be
// raised.
func TestRlimits(t *testing.T) {
	rootfs := stdRootfs(t)
	type rl = specs.POSIXRlimit
	tests := []struct {
		name string
		host func(*Host)
		ulim []string
		want []rl
		err  string
	}{
		{name: "default nofile capped at the host hard limit", want: []rl{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 20000}}},
		{name: "default nofile with room", host: func(h *Host) { h.RlimitHard["RLIMIT_NOFILE"] = 1 << 30 }, want: []rl{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1 << 20}}},
		{name: "default nofile with a tiny host limit", host: func(h *Host) { h.RlimitHard["RLIMIT_NOFILE"] = 512 }, want: []rl{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 512}}},
		{name: "CAP_SYS_RESOURCE lifts the cap", host: func(h *Host) { h.CanRaiseRlimits = true }, want: []rl{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1 << 20}}},
		{name: "user nofile", ulim: []string{"nofile=1024:2048"}, want: []rl{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}}},
		{name: "nproc and later wins", ulim: []string{"nproc=100", "nproc=512"}, want: []rl{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 20000}, {Type: "RLIMIT_NPROC", Soft: 512, Hard: 512}}},
		{name: "unlimited memlock", ulim: []string{"memlock=-1:-1"}, want: []rl{{Type: "RLIMIT_MEMLOCK", Soft: rlimInfinity, Hard: rlimInfinity}, {Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 20000}}},
		{name: "above the hard limit", ulim: []string{"nofile=1024:50000"}, err: "--ulimit nofile=1024:50000: hard limit 50000 is above the current hard limit 20000"},
		{name: "soft above hard", ulim: []string{"nofile=10:5"}, err: "soft limit 10 is above the hard limit 5"},
		{name: "unknown", ulim: []string{"bogus=1"}, err: `--ulimit bogus=1: unknown limit "bogus"`},
		{name: "syntax", ulim: []string{"nofile"}, err: "NAME=SOFT[:HARD]"},
		{name: "value", ulim: []string{"nofile=x"}, err: `invalid value "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testHost()
			if tt.host != nil {
				tt.host(h)
			}
			s, err := gen(t, testImage(), rootfs, Options{Host: h, Ulimits: tt.ulim})
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Process.Rlimits, tt.want) {
				t.Errorf("rlimits = %+v, want %+v", s.Process.Rlimits, tt.want)
			}
		})
	}
}

// --read-only, --tmpfs with Docker's defaults, user mounts replacing
// defaults, ordering, network files.
func TestRootAndMounts(t *testing.T) {
	rootfs := stdRootfs(t)
	s := mustGen(t, testImage(), rootfs, Options{})
	if s.Root.Readonly || s.Root.Path != rootfs {
		t.Errorf("root = %+v", s.Root)
	}
	s = mustGen(t, testImage(), rootfs, Options{
		ReadOnly:   true,
		Tmpfs:      []string{"/run", "/tmp:exec,size=64m,mode=1777"},
		ResolvConf: "/var/lib/hull/c/resolv.conf",
		HostsFile:  "/var/lib/hull/c/hosts",
		Mounts: []Mount{
			{Source: "/srv/data", Destination: "/data/sub", ReadOnly: true, Options: []string{"z", "rshared"}},
			{Source: "/srv", Destination: "/data/", Options: []string{"nosuid"}},
			{Source: "/my/hosts", Destination: "/etc/hosts"},
			{Destination: "/dev/shm", Type: "tmpfs", Options: []string{"size=1g"}},
		},
	})
	if !s.Root.Readonly {
		t.Error("root not read-only")
	}
	check := func(dest, typ, src string, opts ...string) {
		t.Helper()
		m := findMount(s, dest)
		if m == nil {
			t.Errorf("no mount at %s", dest)
			return
		}
		if m.Type != typ || m.Source != src || !slices.Equal(m.Options, opts) {
			t.Errorf("%s = %s %s %q, want %s %s %q", dest, m.Type, m.Source, m.Options, typ, src, opts)
		}
	}
	check("/run", "tmpfs", "tmpfs", "rw", "noexec", "nosuid", "nodev")
	check("/tmp", "tmpfs", "tmpfs", "rw", "nosuid", "nodev", "exec", "size=64m", "mode=1777")
	check("/data/sub", "bind", "/srv/data", "rbind", "rshared", "ro")
	check("/data", "bind", "/srv", "rbind", "nosuid", "rprivate")
	check("/etc/hosts", "bind", "/my/hosts", "rbind", "rprivate")
	check("/etc/resolv.conf", "bind", "/var/lib/hull/c/resolv.conf", "rbind", "rprivate", "ro")
	check("/dev/shm", "tmpfs", "tmpfs", "rw", "noexec", "nosuid", "nodev", "size=1g")
	n := 0
	for _, m := range s.Mounts {
		if m.Destination == "/dev/shm" || m.Destination == "/etc/hosts" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("replaced mounts appear %d times, want once each", n)
	}
	idx := func(dest string) int {
		return slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
	}
	if idx("/data") > idx("/data/sub") {
		t.Error("/data/sub is mounted before its parent /data")
	}
	if s.Linux.RootfsPropagation != "rshared" {
		t.Errorf("rootfsPropagation = %q, want rshared for an rshared bind", s.Linux.RootfsPropagation)
	}

	// A user /dev replaces every default under /dev.
	s = mustGen(t, testImage(), rootfs, Options{Mounts: []Mount{{Source: "/dev", Destination: "/dev"}}})
	for _, m := range s.Mounts {
		if strings.HasPrefix(m.Destination, "/dev/") {
			t.Errorf("default %s kept under a user /dev", m.Destination)
		}
	}

	for _, bad := range []struct {
		o    Options
		frag string
	}{
		{Options{Tmpfs: []string{"run"}}, "--tmpfs run: destination \"run\" is not an absolute path"},
		{Options{Tmpfs: []string{"/run:bogus"}}, `--tmpfs /run:bogus: unknown option "bogus"`},
		{Options{Tmpfs: []string{"/run:size"}}, "needs a value"},
		{Options{Tmpfs: []string{"/run", "/run/"}}, "duplicate mount point /run"},
		{Options{Mounts: []Mount{{Source: "rel", Destination: "/x"}}}, "not an absolute host path"},
		{Options{Mounts: []Mount{{Source: "/a", Destination: "/"}}}, "cannot mount over the container's root"},
		{Options{Mounts: []Mount{{Source: "/a", Destination: "/x", Options: []string{"size=1"}}}}, `unknown or unsupported option "size=1"`},
		{Options{Mounts: []Mount{{Source: "/a", Destination: "/x", Type: "nfs"}}}, "unsupported mount type"},
	} {
		_, err := gen(t, testImage(), rootfs, bad.o)
		wantErr(t, err, bad.frag)
	}
}

// Sysctls: only namespaced ones, net.* refused with the host's network,
// IPC ones with the host's IPC namespace.
func TestSysctls(t *testing.T) {
	rootfs := stdRootfs(t)
	tests := []struct {
		name string
		o    Options
		want map[string]string
		err  string
	}{
		{name: "net and ipc", o: Options{Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "fs.mqueue.msg_max": "20", "kernel.msgmax": "9", "kernel.sem": "1 2 3 4"}},
			want: map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "fs.mqueue.msg_max": "20", "kernel.msgmax": "9", "kernel.sem": "1 2 3 4"}},
		{name: "slash form", o: Options{Sysctls: map[string]string{"net/ipv4/conf/eth0.100/rp_filter": "1"}}, want: map[string]string{"net.ipv4.conf.eth0/100.rp_filter": "1"}},
		{name: "joined netns ok", o: Options{NetNSPath: newNetNS(t), Sysctls: map[string]string{"net.core.somaxconn": "1024"}}, want: map[string]string{"net.core.somaxconn": "1024"}},
		{name: "joined netns that is the host's", o: Options{NetNSPath: "/proc/self/ns/net", Sysctls: map[string]string{"net.core.somaxconn": "1"}}, err: "network namespace /proc/self/ns/net is the host's"},
		{name: "host network", o: Options{NetNSPath: "host", Sysctls: map[string]string{"net.core.somaxconn": "1"}}, err: "--sysctl net.core.somaxconn=1: not allowed with the host's network namespace"},
		{name: "host ipc", o: Options{IPCHost: true, Sysctls: map[string]string{"kernel.shmmax": "1"}}, err: "--sysctl kernel.shmmax=1: not allowed with the host's IPC namespace"},
		{name: "not namespaced", o: Options{Sysctls: map[string]string{"kernel.panic": "1"}}, err: "--sysctl kernel.panic=1: not a namespaced sysctl"},
		{name: "vm", o: Options{Sysctls: map[string]string{"vm.swappiness": "1"}}, err: "not a namespaced sysctl"},
		{name: "hostname", o: Options{Sysctls: map[string]string{"kernel.hostname": "x"}}, err: "not a namespaced sysctl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := gen(t, testImage(), rootfs, tt.o)
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Linux.Sysctl) != len(tt.want) {
				t.Errorf("sysctl = %v, want %v", s.Linux.Sysctl, tt.want)
			}
			for k, v := range tt.want {
				if s.Linux.Sysctl[k] != v {
					t.Errorf("sysctl %s = %q, want %q", k, s.Linux.Sysctl[k], v)
				}
			}
		})
	}
}

// --security-opt parsing.
func TestSecurityOpts(t *testing.T) {
	rootfs := stdRootfs(t)
	tests := []struct {
		opts    []string
		nnp     bool
		seccomp bool
		err     string
	}{
		{seccomp: true},
		{opts: []string{"no-new-privileges"}, nnp: true, seccomp: true},
		{opts: []string{"no-new-privileges=true"}, nnp: true, seccomp: true},
		{opts: []string{"no-new-privileges:true"}, nnp: true, seccomp: true},
		{opts: []string{"no-new-privileges", "no-new-privileges=false"}, seccomp: true},
		{opts: []string{"seccomp=unconfined"}},
		{opts: []string{"seccomp=unconfined", "seccomp=builtin"}, seccomp: true},
		{opts: []string{"label=disable", "label:type:svirt_t", "apparmor=unconfined"}, seccomp: true},
		{opts: []string{"no-new-privileges=maybe"}, err: "--security-opt no-new-privileges=maybe: want true or false"},
		{opts: []string{"seccomp"}, err: "--security-opt seccomp"},
		{opts: []string{"seccomp=/nonexistent/profile.json"}, err: "--security-opt seccomp=/nonexistent/profile.json"},
		{opts: []string{"bogus=1"}, err: "--security-opt bogus=1: unknown security option"},
		{opts: []string{"systempaths=confined"}, err: "systempaths"},
	}
	for _, tt := range tests {
		s, err := gen(t, testImage(), rootfs, Options{SecurityOpt: tt.opts})
		if tt.err != "" {
			wantErr(t, err, tt.err)
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.opts, err)
		}
		if s.Process.NoNewPrivileges != tt.nnp || (s.Linux.Seccomp != nil) != tt.seccomp {
			t.Errorf("%q: nnp %v seccomp %v, want %v %v", tt.opts, s.Process.NoNewPrivileges, s.Linux.Seccomp != nil, tt.nnp, tt.seccomp)
		}
	}
}

// Image volumes are resolved inside the rootfs: symlinks cannot point the
// caller at a host path (CVE-2022-23648).
func TestImageVolumes(t *testing.T) {
	rootfs := mkRootfs(t, map[string]string{"etc/passwd": testPasswd, "srv/keep": ""})
	must(t, os.Symlink("/etc", filepath.Join(rootfs, "to-etc")))
	must(t, os.Symlink("../../..", filepath.Join(rootfs, "srv/up")))
	must(t, os.Symlink("../../../../../../tmp/x", filepath.Join(rootfs, "srv/escape")))
	must(t, os.MkdirAll(filepath.Join(rootfs, "a"), 0o755))
	must(t, os.Symlink("/a/../../../var/lib", filepath.Join(rootfs, "a/lib")))

	vols := func(paths ...string) ocispec.Image {
		img := testImage()
		img.Config.Volumes = map[string]struct{}{}
		for _, p := range paths {
			img.Config.Volumes[p] = struct{}{}
		}
		return img
	}
	tests := []struct {
		name string
		img  ocispec.Image
		want []string
		err  string
	}{
		{name: "plain, cleaned, deduplicated", img: vols("/data", "/data/", "/var//log/../lib"), want: []string{"/data", "/var/lib"}},
		{name: "symlink to /etc stays in the rootfs", img: vols("/to-etc"), want: []string{"/etc"}},
		{name: "symlink below a symlink", img: vols("/to-etc/ssl"), want: []string{"/etc/ssl"}},
		{name: "escape via .. lands inside", img: vols("/srv/escape"), want: []string{"/tmp/x"}},
		{name: "absolute symlink with ..", img: vols("/a/lib"), want: []string{"/var/lib"}},
		{name: "symlink to ../../.. is the root", img: vols("/srv/up"), err: "resolves to the container's root"},
		{name: "dot-dot path is the root", img: vols("/../.."), err: "resolves to the container's root"},
		{name: "relative", img: vols("data"), err: `image volume "data": not an absolute path`},
		{name: "none", img: testImage(), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ImageVolumes(tt.img, rootfs)
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("volumes = %q, want %q", got, tt.want)
			}
		})
	}
	// Nothing was created on the host or in the rootfs.
	if _, err := os.Lstat(filepath.Join(rootfs, "tmp")); !os.IsNotExist(err) {
		t.Errorf("ImageVolumes created %s/tmp", rootfs)
	}
}
