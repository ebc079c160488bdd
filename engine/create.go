package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/monitor"
	"github.com/hull-runtime/hull/engine/network"
	"github.com/hull-runtime/hull/engine/oci"
	"github.com/hull-runtime/hull/engine/slirp"
	"github.com/hull-runtime/hull/engine/specgen"
	"github.com/hull-runtime/hull/image"
	"github.com/hull-runtime/hull/image/snapshot"
)

// RunOptions are `hull create` and `hull run`'s options.
type RunOptions struct {
	Name    string `json:"name,omitempty"`
	Image   string `json:"image"`
	Pull    string `json:"pull,omitempty"`    // missing (default), always, never
	Runtime string `json:"runtime,omitempty"` // hull-runtime (default), runc, crun or a path
	// Spec holds everything that shapes the runtime-spec config.
	Spec specgen.Options `json:"spec"`
	// Volumes are -v values: "name:/path[:ro]", "/host:/path[:ro,z]", "/path" (anonymous).
	Volumes []string `json:"volumes,omitempty"`
	// Network is --network: "" or "bridge" (the default network), "none",
	// "host", "container:NAME" or a user network's name.
	Network        string   `json:"network,omitempty"`
	NetworkAliases []string `json:"networkAliases,omitempty"`
	Publish        []string `json:"publish,omitempty"` // -p [ip:]host:container[/proto]
	// PublishAll (-P) publishes every port the image EXPOSEs (and --expose
	// adds) that -p does not, on a free host port each.
	PublishAll bool     `json:"publishAll,omitempty"`
	Expose     []string `json:"expose,omitempty"` // --expose PORT[/PROTO]
	DNS        []string `json:"dns,omitempty"`
	// DNSSearch and DNSOptions are resolv.conf's search domains and
	// options (--dns-search, --dns-option); with none of DNS, DNSSearch
	// and DNSOptions the host's resolv.conf is used.
	DNSSearch  []string `json:"dnsSearch,omitempty"`
	DNSOptions []string `json:"dnsOptions,omitempty"`
	// IPC, PID and UTS are --ipc, --pid and --uts: "" (or "private") for
	// a new namespace, "host", or "container:NAME" to join a running
	// container's.
	IPC        string   `json:"ipc,omitempty"`
	PID        string   `json:"pid,omitempty"`
	UTS        string   `json:"uts,omitempty"`
	AddHost    []string `json:"addHost,omitempty"` // name:ip
	Restart    string   `json:"restart,omitempty"`
	AutoRemove bool     `json:"autoRemove,omitempty"`
	// CgroupParent is the cgroup the container's goes below ("/hull").
	CgroupParent string `json:"cgroupParent,omitempty"`
	// LogPath, if set, is the log file instead of the record's ctr.log;
	// LogFormat is monitor.LogFormatJSON (the default) or
	// monitor.LogFormatCRI, the kubelet's, which it rotates itself (so such
	// a log is never rotated by size here).
	LogPath       string                `json:"logPath,omitempty"`
	LogFormat     string                `json:"logFormat,omitempty"`
	LogMaxSize    int64                 `json:"logMaxSize,omitempty"`
	LogMaxFiles   int                   `json:"logMaxFiles,omitempty"`
	StopTimeout   int                   `json:"stopTimeout,omitempty"` // seconds; 0: 10
	Health        *monitor.HealthConfig `json:"health,omitempty"`
	NoHealthcheck bool                  `json:"noHealthcheck,omitempty"`
	// Ports and Attachments are resolved at create.
	Ports       []network.PortMapping `json:"ports,omitempty"`
	Attachments []network.Attachment  `json:"attachments,omitempty"`
	// AnonymousVolumes were made for this container (removed by rm -v).
	AnonymousVolumes []string `json:"anonymousVolumes,omitempty"`
	NamedVolumes     []string `json:"namedVolumes,omitempty"`
}

// options decodes a container's recorded options.
func options(c *container.Container) (*RunOptions, error) {
	var o RunOptions
	if err := json.Unmarshal(c.Options, &o); err != nil {
		return nil, fmt.Errorf("container %s: options are corrupt: %w", c.Name, err)
	}
	return &o, nil
}

// resolveImage finds the image, pulling it as --pull says.
func (e *Engine) resolveImage(ctx context.Context, name, policy string) (image.Summary, error) {
	switch policy {
	case "", "missing":
		found, err := e.Images.Find(name)
		if err == nil {
			return found[0], nil
		}
		if !errors.Is(err, image.ErrNotFound) {
			return image.Summary{}, err
		}
	case "always":
	case "never":
		found, err := e.Images.Find(name)
		if err != nil {
			return image.Summary{}, fmt.Errorf("%w (and --pull never)", err)
		}
		return found[0], nil
	default:
		return image.Summary{}, fmt.Errorf("--pull %q: use always, missing or never", policy)
	}
	if _, err := e.Images.Pull(ctx, name, image.PullOptions{}); err != nil {
		return image.Summary{}, err
	}
	found, err := e.Images.Find(name)
	if err != nil {
		return image.Summary{}, err
	}
	return found[0], nil
}

// Create makes a container: its record, its writable snapshot (mounted),
// volumes, network plan, and bundle. On error nothing is left.
func (e *Engine) Create(ctx context.Context, o RunOptions) (_ *container.Container, retErr error) {
	rt, err := oci.New(o.Runtime, e.runtimeRoot(), false)
	if err != nil {
		return nil, err
	}
	sum, err := e.resolveImage(ctx, o.Image, o.Pull)
	if err != nil {
		return nil, err
	}
	_, m, err := e.Images.Manifest(sum.Target)
	if err != nil {
		return nil, err
	}
	imgCfg, err := e.Images.Config(m)
	if err != nil {
		return nil, err
	}
	u, err := e.Images.DB.GetUnpacked(e.Images.SnapshotterName, sum.Manifest)
	if err != nil {
		return nil, fmt.Errorf("image %s is not unpacked: pull it again: %w", o.Image, err)
	}
	top := ""
	if n := len(u.ChainIDs); n > 0 {
		top = u.ChainIDs[n-1]
	}
	c := &container.Container{Name: o.Name, Image: o.Image, ImageRef: sum.Name, ImageID: sum.ID.String(),
		Runtime: rt.Path(), Snapshotter: e.Images.SnapshotterName, Labels: o.Spec.Labels}
	if err := e.Containers.Create(c); err != nil {
		return nil, err
	}
	c.Snapshot = c.ID
	var undo []func()
	defer func() {
		if retErr != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			_ = e.Containers.Remove(c)
		}
	}()
	mounts, err := e.Images.Snapshots.Prepare(ctx, c.Snapshot, top)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	undo = append(undo, func() { _ = e.Images.Snapshots.Remove(context.Background(), c.Snapshot) })
	rootfs := e.rootfsDir(c.ID)
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return nil, err
	}
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return nil, fmt.Errorf("container %s: mount its root filesystem: %w", c.Name, err)
	}
	undo = append(undo, func() { _ = snapshot.UnmountAll(rootfs); _ = os.RemoveAll(e.stateDir(c.ID)) })

	if err := e.planVolumes(c, &o, imgCfg, rootfs); err != nil {
		return nil, err
	}
	undo = append(undo, func() {
		for _, v := range o.AnonymousVolumes {
			_ = e.Volumes.Remove(v, true, nil)
		}
	})
	if err := e.planNetwork(c, &o, imgCfg.Config.ExposedPorts); err != nil {
		return nil, err
	}
	if err := e.joinNamespaces(ctx, &o); err != nil {
		return nil, err
	}
	if err := e.writeEtcFiles(c, &o); err != nil {
		return nil, err
	}
	o.Spec.ID, o.Spec.Name = c.ID, c.Name
	parent := o.CgroupParent
	if parent == "" {
		parent = "/hull"
	}
	if !strings.HasPrefix(parent, "/") || strings.Contains(parent, "..") {
		return nil, fmt.Errorf("--cgroup-parent %q: an absolute cgroup path", parent)
	}
	o.Spec.CgroupsPath = strings.TrimSuffix(parent, "/") + "/" + c.ID
	rootlessNoCgroups := specgen.InUserNS() && unix.Access(cgroupDir(parent), unix.W_OK) != nil
	if rootlessNoCgroups {
		// Rootless without a delegated cgroup subtree: the container runs
		// in the engine's cgroup, as Podman's does on cgroup v1.
		o.Spec.CgroupsPath = ""
	}
	spec, err := specgen.Generate(imgCfg, rootfs, o.Spec)
	if err != nil {
		return nil, err
	}
	if rootlessNoCgroups {
		if what := limitsIn(spec.Linux.Resources); what != "" {
			return nil, fmt.Errorf("%s needs a cgroup, and this rootless engine has none it may write (no delegated cgroup v2 subtree): drop the limit or run as root", what)
		}
	}
	if o.Health == nil && !o.NoHealthcheck {
		if raw, err := e.Images.RawConfig(m); err == nil {
			o.Health = healthFromImage(raw)
		}
	}
	if spec.Process != nil {
		c.Command = spec.Process.Args
	}
	bundle := filepath.Join(e.Containers.Dir(c.ID), "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return nil, fmt.Errorf("container %s: write bundle: %w", c.Name, err)
	}
	if c.Options, err = json.Marshal(o); err != nil {
		return nil, err
	}
	if err := e.Containers.Update(c); err != nil {
		return nil, err
	}
	return c, nil
}

// dockerHealthcheck is the HEALTHCHECK of a Docker image config (not in
// the OCI config type).
type dockerHealthcheck struct {
	Test        []string      `json:"Test"`
	Interval    time.Duration `json:"Interval"`
	Timeout     time.Duration `json:"Timeout"`
	StartPeriod time.Duration `json:"StartPeriod"`
	Retries     int           `json:"Retries"`
}

// healthFromImage turns an image config's HEALTHCHECK into the monitor's config.
func healthFromImage(raw []byte) *monitor.HealthConfig {
	var cfg struct {
		Config struct {
			Healthcheck *dockerHealthcheck `json:"Healthcheck"`
		} `json:"config"`
	}
	if json.Unmarshal(raw, &cfg) != nil || cfg.Config.Healthcheck == nil {
		return nil
	}
	h := cfg.Config.Healthcheck
	if len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil
	}
	hc := &monitor.HealthConfig{Interval: h.Interval, Timeout: h.Timeout, Retries: h.Retries, StartPeriod: h.StartPeriod}
	switch h.Test[0] {
	case "CMD":
		hc.Exec = h.Test[1:]
	case "CMD-SHELL":
		hc.Cmd = strings.Join(h.Test[1:], " ")
	default:
		return nil
	}
	return hc
}

// planVolumes resolves -v values and the image's VOLUME paths into mounts.
func (e *Engine) planVolumes(c *container.Container, o *RunOptions, img ocispec.Image, rootfs string) error {
	seen := map[string]bool{}
	for _, v := range o.Volumes {
		parts := strings.Split(v, ":")
		var src, dst, opts string
		switch len(parts) {
		case 1:
			dst = parts[0]
		case 2:
			src, dst = parts[0], parts[1]
		case 3:
			src, dst, opts = parts[0], parts[1], parts[2]
		default:
			return fmt.Errorf("-v %q: want [SOURCE:]DEST[:OPTIONS]", v)
		}
		if !filepath.IsAbs(dst) {
			return fmt.Errorf("-v %q: the destination must be an absolute path", v)
		}
		m := specgen.Mount{Destination: filepath.Clean(dst), Type: "bind"}
		for _, opt := range strings.Split(opts, ",") {
			switch opt {
			case "":
			case "ro":
				m.ReadOnly = true
			case "rw":
			case "z", "Z", "rprivate", "private", "rslave", "slave", "rshared", "shared", "nocopy":
				m.Options = append(m.Options, opt)
			default:
				return fmt.Errorf("-v %q: unknown option %q (ro, rw, z, Z, propagation)", v, opt)
			}
		}
		switch {
		case src == "":
			vol, err := e.Volumes.Create("", nil)
			if err != nil {
				return err
			}
			o.AnonymousVolumes = append(o.AnonymousVolumes, vol.Name)
			m.Source = vol.Mountpoint
		case filepath.IsAbs(src):
			if _, err := os.Stat(src); err != nil {
				return fmt.Errorf("-v %q: the host path %s: %w", v, src, err)
			}
			m.Source = src
		default:
			vol, err := e.Volumes.GetOrCreate(src)
			if err != nil {
				return fmt.Errorf("-v %q: %w", v, err)
			}
			o.NamedVolumes = append(o.NamedVolumes, vol.Name)
			m.Source = vol.Mountpoint
		}
		seen[m.Destination] = true
		o.Spec.Mounts = append(o.Spec.Mounts, m)
	}
	vols, err := specgen.ImageVolumes(img, rootfs)
	if err != nil {
		return err
	}
	for _, dst := range vols {
		if seen[dst] {
			continue
		}
		vol, err := e.Volumes.Create("", nil)
		if err != nil {
			return err
		}
		o.AnonymousVolumes = append(o.AnonymousVolumes, vol.Name)
		o.Spec.Mounts = append(o.Spec.Mounts, specgen.Mount{Source: vol.Mountpoint, Destination: dst, Type: "bind"})
	}
	return nil
}

// planNetwork resolves --network, -p and aliases; the namespace itself is
// made at start.
func (e *Engine) planNetwork(c *container.Container, o *RunOptions, exposed map[string]struct{}) error {
	mode := o.Network
	switch {
	case mode == "host":
		o.Spec.NetNSPath = "host"
		if len(o.Publish) > 0 {
			return errors.New("-p cannot be used with --network host (the container uses the host's ports)")
		}
		return nil
	case mode == "none":
		o.Spec.NetNSPath = e.Network.NetnsPath(c.ID)
		if len(o.Publish) > 0 {
			return errors.New("-p cannot be used with --network none")
		}
		return nil
	case strings.HasPrefix(mode, "container:"):
		other, err := e.Containers.Get(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return fmt.Errorf("--network %s: %w", mode, err)
		}
		oo, err := options(other)
		if err != nil {
			return err
		}
		o.Spec.NetNSPath = oo.Spec.NetNSPath
		return nil
	case mode == NetworkSlirp || ((mode == "" || mode == "bridge") && specgen.InUserNS()):
		// Rootless: a user cannot make bridges or iptables rules in the
		// host's network namespace; slirp4netns needs neither.
		if err := slirp.Available(); err != nil {
			return fmt.Errorf("--network %s: %w", orDefault(mode, "bridge"), err)
		}
		o.Network = NetworkSlirp
		o.Spec.NetNSPath = e.Network.NetnsPath(c.ID)
		if len(o.DNS) == 0 {
			o.DNS = []string{slirp.DNS}
		}
		return e.planPorts(o, exposed)
	case mode == "" || mode == "bridge":
		n, err := e.Network.EnsureDefault()
		if err != nil {
			return err
		}
		mode = n.Name
	}
	if specgen.InUserNS() {
		return fmt.Errorf("--network %s: user networks are CNI bridges, which need root; rootless containers use slirp4netns (the default), host or none", mode)
	}
	if _, err := e.Network.Inspect(mode); err != nil {
		return fmt.Errorf("--network %s: %w (see `hull network ls`)", mode, err)
	}
	aliases := append([]string{c.Name, c.ID[:12]}, o.NetworkAliases...)
	o.Attachments = []network.Attachment{{Network: mode, Aliases: aliases}}
	o.Spec.NetNSPath = e.Network.NetnsPath(c.ID)
	return e.planPorts(o, exposed)
}

// planPorts resolves -p and -P into o.Ports.
func (e *Engine) planPorts(o *RunOptions, exposed map[string]struct{}) error {
	for _, p := range o.Publish {
		pm, err := parsePublish(p)
		if err != nil {
			return err
		}
		o.Ports = append(o.Ports, pm)
	}
	if o.PublishAll {
		all, err := exposedPorts(exposed, o.Expose)
		if err != nil {
			return err
		}
		for _, p := range all {
			if published(o.Ports, p) {
				continue
			}
			pm, err := parsePublish(p)
			if err != nil {
				return err
			}
			o.Ports = append(o.Ports, pm)
		}
	}
	return nil
}

// exposedPorts lists the image's EXPOSE ports and --expose's as
// "PORT/PROTO", sorted; --expose takes ranges (8000-8002/tcp) as Docker's.
func exposedPorts(image map[string]struct{}, expose []string) ([]string, error) {
	set := map[string]bool{}
	for p := range image {
		set[p] = true
	}
	for _, x := range expose {
		spec, proto, _ := strings.Cut(x, "/")
		if proto == "" {
			proto = "tcp"
		}
		lo, hi, isRange := strings.Cut(spec, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		b := a
		if err == nil && isRange {
			b, err = strconv.ParseUint(hi, 10, 16)
		}
		if err != nil || a == 0 || b < a || b-a > 1000 || (proto != "tcp" && proto != "udp") {
			return nil, fmt.Errorf("--expose %q: want PORT[-PORT][/tcp|udp]", x)
		}
		for p := a; p <= b; p++ {
			set[strconv.FormatUint(p, 10)+"/"+proto] = true
		}
	}
	var out []string
	for p := range set {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// published reports whether container port p ("80/tcp") already has a -p.
func published(ports []network.PortMapping, p string) bool {
	port, proto, _ := strings.Cut(p, "/")
	for _, pm := range ports {
		if strconv.Itoa(int(pm.ContainerPort)) == port && pm.Protocol == proto {
			return true
		}
	}
	return false
}

// cgroupDir is where the cgroup parent would be made: on cgroup v2 (or the
// unified mount of a hybrid host) the directory itself, on v1 the memory
// hierarchy's, as a probe of whether this engine may make cgroups there.
func cgroupDir(parent string) string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return nearestExisting("/sys/fs/cgroup" + parent)
	}
	return nearestExisting("/sys/fs/cgroup/memory" + parent)
}

// nearestExisting is p or its closest existing ancestor.
func nearestExisting(p string) string {
	for p != "/" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		p = filepath.Dir(p)
	}
	return p
}

// limitsIn names the first resource limit r sets ("" if none): the ones a
// container without a cgroup cannot have. Device rules are left out: they
// only narrow what the runtime allows anyway.
func limitsIn(r *specs.LinuxResources) string {
	switch {
	case r == nil:
		return ""
	case r.Memory != nil && (r.Memory.Limit != nil || r.Memory.Reservation != nil || r.Memory.Swap != nil):
		return "--memory"
	case r.CPU != nil && (r.CPU.Quota != nil || r.CPU.Shares != nil || r.CPU.Cpus != "" || r.CPU.Mems != ""):
		return "--cpus/--cpu-shares/--cpuset-cpus"
	case r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0:
		return "--pids-limit"
	case r.BlockIO != nil && r.BlockIO.Weight != nil:
		return "--blkio-weight"
	}
	return ""
}

// parsePublish parses -p [ip:][hostPort:]containerPort[/proto]; a missing
// host port is a free one.
func parsePublish(p string) (network.PortMapping, error) {
	var pm network.PortMapping
	spec, proto, _ := strings.Cut(p, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return pm, fmt.Errorf("-p %q: protocol must be tcp or udp", p)
	}
	pm.Protocol = proto
	parts := strings.Split(spec, ":")
	var hostIP, hostPort, ctrPort string
	switch len(parts) {
	case 1:
		ctrPort = parts[0]
	case 2:
		hostPort, ctrPort = parts[0], parts[1]
	case 3:
		hostIP, hostPort, ctrPort = parts[0], parts[1], parts[2]
	default:
		return pm, fmt.Errorf("-p %q: want [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]", p)
	}
	if hostIP != "" && net.ParseIP(hostIP) == nil {
		return pm, fmt.Errorf("-p %q: %q is not an IP address", p, hostIP)
	}
	cp, err := strconv.ParseUint(ctrPort, 10, 16)
	if err != nil || cp == 0 {
		return pm, fmt.Errorf("-p %q: bad container port %q", p, ctrPort)
	}
	if hostPort == "" {
		free, err := freePort(proto)
		if err != nil {
			return pm, fmt.Errorf("-p %q: %w", p, err)
		}
		hostPort = strconv.Itoa(free)
	}
	hp, err := strconv.ParseUint(hostPort, 10, 16)
	if err != nil || hp == 0 {
		return pm, fmt.Errorf("-p %q: bad host port %q", p, hostPort)
	}
	pm.HostIP, pm.HostPort, pm.ContainerPort = hostIP, uint16(hp), uint16(cp)
	return pm, nil
}

func freePort(proto string) (int, error) {
	if proto == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf and points the spec at them.
func (e *Engine) writeEtcFiles(c *container.Container, o *RunOptions) error {
	if name, ok := strings.CutPrefix(o.Network, "container:"); ok {
		// Sharing a network namespace shares its names too, as Docker's
		// --network container: and a pod's containers do.
		other, err := e.Containers.Get(name)
		if err != nil {
			return fmt.Errorf("--network %s: %w", o.Network, err)
		}
		oo, err := options(other)
		if err != nil {
			return err
		}
		o.Spec.HostnameFile, o.Spec.HostsFile, o.Spec.ResolvConf = oo.Spec.HostnameFile, oo.Spec.HostsFile, oo.Spec.ResolvConf
		return nil
	}
	dir := e.Containers.Dir(c.ID)
	hostname := o.Spec.Hostname
	if hostname == "" {
		hostname = c.ID[:12]
		if o.Network == "host" {
			hostname, _ = os.Hostname()
		}
	}
	o.Spec.HostnameFile = filepath.Join(dir, "hostname")
	if err := os.WriteFile(o.Spec.HostnameFile, []byte(hostname+"\n"), 0o644); err != nil {
		return err
	}
	o.Spec.HostsFile = filepath.Join(dir, "hosts")
	if err := e.writeHosts(c, o, nil); err != nil {
		return err
	}
	o.Spec.ResolvConf = filepath.Join(dir, "resolv.conf")
	return os.WriteFile(o.Spec.ResolvConf, resolvConf(o.DNS, o.DNSSearch, o.DNSOptions, o.Network == "host"), 0o644)
}

// resolvConf is the host's resolv.conf, or --dns servers; loopback
// resolvers (systemd-resolved's stub) do not work from a network namespace.
func resolvConf(dns, search, options []string, hostNet bool) []byte {
	var b strings.Builder
	if len(dns)+len(search)+len(options) > 0 {
		for _, s := range dns {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
		if len(search) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
		}
		if len(options) > 0 {
			fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
		}
		return []byte(b.String())
	}
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if !hostNet && len(f) >= 2 && f[0] == "nameserver" {
			if ip := net.ParseIP(f[1]); ip != nil && ip.IsLoopback() {
				continue
			}
		}
		b.WriteString(line + "\n")
	}
	return []byte(strings.TrimRight(b.String(), "\n") + "\n")
}

// writeHosts writes the container's /etc/hosts: localhost, its own name at
// its addresses, --add-host entries and the other containers on its
// networks (hull's DNS between containers).
func (e *Engine) writeHosts(c *container.Container, o *RunOptions, own []net.IP) error {
	data, err := e.hostsFile(c, o, own)
	if err != nil {
		return err
	}
	// In place, not by rename: a running container has the file bind-mounted
	// and would keep seeing the old inode.
	return os.WriteFile(o.Spec.HostsFile, data, 0o644)
}

// rewriteHosts is writeHosts for a peer of the container being started or
// removed: it rewrites the file only if it exists. The peer may be being
// removed at the same time, and a hosts file created again in the
// directory its rm is deleting made that rm fail ("directory not empty");
// writing to a file unlinked meanwhile is harmless.
func (e *Engine) rewriteHosts(c *container.Container, o *RunOptions, own []net.IP) error {
	data, err := e.hostsFile(c, o, own)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(o.Spec.HostsFile, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("container %s: rewrite its hosts file: %w", c.Name, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("container %s: rewrite its hosts file: %w", c.Name, err)
	}
	return nil
}

// hostsFile is the content of the container's /etc/hosts.
func (e *Engine) hostsFile(c *container.Container, o *RunOptions, own []net.IP) ([]byte, error) {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	hostname := o.Spec.Hostname
	if hostname == "" {
		hostname = c.ID[:12]
	}
	for _, ip := range own {
		fmt.Fprintf(&b, "%s\t%s %s\n", ip, hostname, c.Name)
	}
	for _, h := range o.AddHost {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || net.ParseIP(ip) == nil {
			return nil, fmt.Errorf("--add-host %q: want NAME:IP", h)
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	for _, a := range o.Attachments {
		entries, err := e.Network.HostsEntries(a.Network)
		if err != nil {
			continue
		}
		for _, he := range entries {
			if he.ContainerID == c.ID {
				continue
			}
			fmt.Fprintf(&b, "%s\t%s\n", he.IP, strings.Join(he.Names, " "))
		}
	}
	return []byte(b.String()), nil
}
