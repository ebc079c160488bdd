package specgen

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"

	rtspec "github.com/hull-runtime/hull/runtime/spec"
)

// DefaultShmSize is the size of /dev/shm when Options.ShmSize is 0: 64 MiB,
// as Docker.
const DefaultShmSize = 64 << 20

// InitDestination is where Options.InitPath is bind-mounted in the
// container, outside any directory an image is likely to populate.
const InitDestination = "/run/hull-init"

// defaultMounts returns Docker's standard filesystems. /sys and the cgroup
// filesystem are read-only unless the container is privileged.
func defaultMounts(o *Options) []specs.Mount {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgroupOpts := []string{"ro", "nosuid", "noexec", "nodev"}
	if o.Privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
		cgroupOpts = []string{"rw", "nosuid", "noexec", "nodev"}
	}
	shmSize := o.ShmSize
	if shmSize == 0 {
		shmSize = DefaultShmSize
	}
	sys := specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts}
	cgroup := specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgroupOpts}
	if o.Host != nil && o.Host.InUserNS {
		// A user namespace may mount sysfs only with a network namespace
		// it owns, and never the host's cgroup hierarchies: bind them.
		if o.NetNSPath == "host" {
			sys = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: append([]string{"rbind"}, sysOpts...)}
		}
		cgroup = specs.Mount{Destination: "/sys/fs/cgroup", Type: "bind", Source: "/sys/fs/cgroup", Options: append([]string{"rbind"}, cgroupOpts...)}
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		sys,
		cgroup,
	}
	switch {
	case o.IPCHost:
		// The host's IPC namespace: show its queues and shared memory
		// rather than new, empty instances. An mqueue mount shows the
		// queues of the IPC namespace it is made in, the host's here, so
		// it needs no /dev/mqueue on the host (which many hosts lack).
		ms = append(ms,
			specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}},
		)
	default:
		ms = append(ms, specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}})
		if o.ShmPath != "" {
			ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: o.ShmPath, Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
		} else {
			ms = append(ms, specs.Mount{
				Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
				Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shmSize, 10)},
			})
		}
	}
	return ms
}

// containerPath checks that p is an absolute in-container path and returns
// it cleaned. what names the option for errors.
func containerPath(what, p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("%s: empty destination", what)
	case strings.IndexByte(p, 0) >= 0:
		return "", fmt.Errorf("%s: destination contains a NUL byte", what)
	case !filepath.IsAbs(p):
		return "", fmt.Errorf("%s: destination %q is not an absolute path", what, p)
	}
	p = filepath.Clean(p)
	if p == "/" {
		return "", fmt.Errorf("%s: cannot mount over the container's root", what)
	}
	return p, nil
}

// tmpfsDefaults are Docker's options for --tmpfs and tmpfs mounts.
var tmpfsDefaults = []string{"rw", "noexec", "nosuid", "nodev"}

// tmpfsData are the tmpfs filesystem options accepted in --tmpfs (with a
// "=value"), besides the generic mount flags.
var tmpfsData = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge", "inode64", "inode32", "noswap", "quota", "usrquota", "grpquota"}

// parseTmpfs parses --tmpfs DEST[:OPTIONS].
func parseTmpfs(arg string) (specs.Mount, error) {
	what := "--tmpfs " + arg
	dest, opts, _ := strings.Cut(arg, ":")
	dest, err := containerPath(what, dest)
	if err != nil {
		return specs.Mount{}, err
	}
	var user []string
	if opts != "" {
		user = strings.Split(opts, ",")
	}
	o, err := tmpfsOptions(what, user)
	if err != nil {
		return specs.Mount{}, err
	}
	return specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: o}, nil
}

// tmpfsOptions merges user options into Docker's tmpfs defaults: "exec"
// replaces "noexec" and so on, a later option wins over an earlier one.
func tmpfsOptions(what string, user []string) ([]string, error) {
	out := slices.Clone(tmpfsDefaults)
	// opposite maps an option to the default it overrides.
	opposite := map[string]string{
		"exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid",
		"dev": "nodev", "nodev": "dev", "ro": "rw", "rw": "ro",
	}
	for _, u := range user {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		key, _, hasValue := strings.Cut(u, "=")
		switch {
		case slices.Contains(tmpfsData, key):
			if !hasValue && key != "inode64" && key != "inode32" && key != "noswap" && !strings.HasSuffix(key, "quota") {
				return nil, fmt.Errorf("%s: option %q needs a value", what, key)
			}
			out = slices.DeleteFunc(out, func(s string) bool { k, _, _ := strings.Cut(s, "="); return k == key })
		case hasValue:
			return nil, fmt.Errorf("%s: unknown option %q", what, u)
		case u == "tmpcopyup" || u == "notmpcopyup":
			// Podman's: copy the image's content into the tmpfs. Only
			// tmpcopyup means anything to the runtime.
			out = slices.DeleteFunc(out, func(s string) bool { return s == "tmpcopyup" })
			if u == "notmpcopyup" {
				continue
			}
		case u == "bind" || u == "rbind" || u == "remount":
			return nil, fmt.Errorf("%s: option %q makes no sense for a tmpfs", what, u)
		default:
			if rtspec.ParseMountOptions([]string{u}).Data != "" {
				return nil, fmt.Errorf("%s: unknown option %q", what, u)
			}
			if opp, ok := opposite[u]; ok {
				out = slices.DeleteFunc(out, func(s string) bool { return s == opp })
			}
			out = slices.DeleteFunc(out, func(s string) bool { return s == u })
		}
		out = append(out, u)
	}
	return out, nil
}

// droppedBindOptions are accepted in Mount.Options and left out of the
// spec: SELinux relabelling (z, Z: no SELinux here), volume-driver and
// Docker Desktop hints.
var droppedBindOptions = []string{"z", "Z", "nocopy", "consistent", "cached", "delegated"}

// userMount converts one of Options.Mounts.
func userMount(m Mount) (specs.Mount, error) {
	what := "mount " + m.Source + ":" + m.Destination
	dest, err := containerPath(what, m.Destination)
	if err != nil {
		return specs.Mount{}, err
	}
	switch m.Type {
	case "tmpfs":
		opts := slices.Clone(m.Options)
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		o, err := tmpfsOptions(what, opts)
		if err != nil {
			return specs.Mount{}, err
		}
		return specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: o}, nil
	case "", "bind":
	default:
		return specs.Mount{}, fmt.Errorf("%s: unsupported mount type %q (want bind or tmpfs)", what, m.Type)
	}
	if m.Source == "" || !filepath.IsAbs(m.Source) {
		return specs.Mount{}, fmt.Errorf("%s: source %q is not an absolute host path", what, m.Source)
	}
	// Docker: recursive by default, rprivate unless a propagation is given,
	// "ro" for read-only.
	opts := []string{"rbind"}
	propagation := ""
	for _, o := range m.Options {
		switch {
		case slices.Contains(droppedBindOptions, o):
			continue
		case o == "bind" || o == "rbind":
			opts[0] = o
			continue
		case o == "ro" || o == "rw" || o == "readonly":
			if o != "rw" {
				m.ReadOnly = true
			} else {
				m.ReadOnly = false
			}
			continue
		}
		p := rtspec.ParseMountOptions([]string{o})
		switch {
		case p.Data != "" || o == "remount" || o == "tmpcopyup":
			return specs.Mount{}, fmt.Errorf("%s: unknown or unsupported option %q", what, o)
		case len(p.Propagation) > 0:
			propagation = o
		default:
			opts = append(opts, o)
		}
	}
	if propagation == "" {
		propagation = "rprivate"
	}
	opts = append(opts, propagation)
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: dest, Type: "bind", Source: filepath.Clean(m.Source), Options: opts}, nil
}

// fileBind is a bind mount of a host file the engine writes (resolv.conf,
// hosts, hostname): read-only with --read-only, as Docker.
func fileBind(src, dest string, ro bool) specs.Mount {
	opts := []string{"rbind", "rprivate"}
	if ro {
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: dest, Type: "bind", Source: src, Options: opts}
}

// depth is the number of components in a clean absolute path: mounts are
// ordered by it so a parent is mounted before what is mounted inside it.
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// mounts assembles every mount: Docker's defaults, minus those the user
// replaces (a user mount on /dev replaces everything under /dev too), then
// the network files, --tmpfs and Options.Mounts ordered parents first, then
// the init binary.
func mounts(o *Options) ([]specs.Mount, error) {
	var user []specs.Mount
	seen := map[string]string{}
	addUser := func(what string, m specs.Mount) error {
		if prev, dup := seen[m.Destination]; dup {
			return fmt.Errorf("%s: duplicate mount point %s (also %s)", what, m.Destination, prev)
		}
		seen[m.Destination] = what
		user = append(user, m)
		return nil
	}
	for _, t := range o.Tmpfs {
		m, err := parseTmpfs(t)
		if err != nil {
			return nil, err
		}
		if err := addUser("--tmpfs "+t, m); err != nil {
			return nil, err
		}
	}
	for _, um := range o.Mounts {
		m, err := userMount(um)
		if err != nil {
			return nil, err
		}
		if err := addUser("mount "+um.Source+":"+um.Destination, m); err != nil {
			return nil, err
		}
	}
	// The engine's files give way to a user's mount at the same place, as
	// in Docker (-v ./hosts:/etc/hosts).
	for _, f := range []struct{ src, dest, flag string }{
		{o.ResolvConf, "/etc/resolv.conf", "ResolvConf"},
		{o.HostsFile, "/etc/hosts", "HostsFile"},
		{o.HostnameFile, "/etc/hostname", "HostnameFile"},
	} {
		if f.src == "" {
			continue
		}
		if !filepath.IsAbs(f.src) {
			return nil, fmt.Errorf("%s %q: not an absolute host path", f.flag, f.src)
		}
		if _, dup := seen[f.dest]; !dup {
			user = append(user, fileBind(f.src, f.dest, o.ReadOnly))
		}
	}
	slices.SortStableFunc(user, func(a, b specs.Mount) int { return depth(a.Destination) - depth(b.Destination) })

	_, userDev := seen["/dev"]
	var out []specs.Mount
	for _, m := range defaultMounts(o) {
		if _, replaced := seen[m.Destination]; replaced {
			continue
		}
		if userDev && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		out = append(out, m)
	}
	out = append(out, user...)
	if o.Init {
		if o.InitPath == "" || !filepath.IsAbs(o.InitPath) {
			return nil, fmt.Errorf("--init: init binary path %q is not an absolute host path", o.InitPath)
		}
		out = append(out, specs.Mount{
			Destination: InitDestination, Type: "bind", Source: o.InitPath,
			Options: []string{"bind", "ro", "nosuid", "nodev", "rprivate"},
		})
	}
	return out, nil
}

// rootfsPropagation returns the propagation of the container's root that
// bind mounts asking for shared or slave propagation need (Docker makes the
// root rshared or rslave for them); "" keeps the runtime's default.
func rootfsPropagation(ms []specs.Mount) string {
	prop := ""
	for _, m := range ms {
		if m.Type != "bind" {
			continue
		}
		for _, o := range m.Options {
			switch o {
			case "shared", "rshared":
				return "rshared"
			case "slave", "rslave":
				prop = "rslave"
			}
		}
	}
	return prop
}

// ImageVolumes returns the in-container paths of the image's
// Config.Volumes, cleaned, sorted and without duplicates. Each path is
// resolved inside rootfs as the container will see it: a symlink in the
// image is followed, but never out of rootfs (CVE-2022-23648), so a volume
// declared at /data -> /etc is returned as /etc, and one that points at
// ../../.. is returned as where that lands inside the rootfs. A volume that
// is relative, or that resolves to the container's root, is an error: the
// caller must not create or mount anything for it.
func ImageVolumes(img ocispec.Image, rootfs string) ([]string, error) {
	if rootfs == "" {
		return nil, fmt.Errorf("image volumes: no rootfs")
	}
	root := filepath.Clean(rootfs)
	var out []string
	for _, v := range sortedKeys(img.Config.Volumes) {
		what := fmt.Sprintf("image volume %q", v)
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("%s: contains a NUL byte", what)
		}
		if !filepath.IsAbs(v) {
			return nil, fmt.Errorf("%s: not an absolute path", what)
		}
		host, err := securejoin.SecureJoin(root, v)
		if err != nil {
			return nil, fmt.Errorf("%s: resolving it in the rootfs: %w", what, err)
		}
		rel, err := filepath.Rel(root, host)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			// SecureJoin never leaves root; refuse rather than trust it.
			return nil, fmt.Errorf("%s: escapes the rootfs", what)
		}
		in := filepath.Clean("/" + rel)
		if in == "/" {
			return nil, fmt.Errorf("%s: resolves to the container's root directory", what)
		}
		if !slices.Contains(out, in) {
			out = append(out, in)
		}
	}
	slices.Sort(out)
	return out, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
