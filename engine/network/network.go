// Package network is hull's container networking: network definitions stored
// as CNI configuration lists, network namespaces bind-mounted under a
// per-boot directory, and CNI ADD/DEL through libcni with the stock
// containernetworking plugins (bridge + host-local, portmap, firewall).
//
// # Layout on disk
//
//   - Config.ConfDir/<name>.conflist: one CNI configuration list per network.
//     hull's own metadata (ID, subnet, labels, creation time) rides in a
//     top-level "hull" key that libcni and the plugins ignore, so the file is
//     both the definition and what runs; there is no second database to drift.
//   - Config.CacheDir: libcni's result cache, which holds what DEL needs.
//   - Config.StateDir: runtime state (per-boot, under --runroot):
//     containers/<id>.json records what Setup is doing or did for a container,
//     networks/<name>.json lists the containers attached to a network (for
//     hosts files and for Remove), ipam/ is host-local's reservation store.
//   - Config.NetnsDir/<containerID>: the container's network namespace, a bind
//     mount of a namespace file.
//
// # Crash safety
//
// Setup writes the container record before it creates anything, and
// Teardown takes the union of that record, the caller's attachments and
// libcni's cache, so a hull killed at any point between "netns created" and
// "attachment recorded" is cleaned up by a later Teardown. DEL is run one
// plugin at a time with a prevResult that comes from libcni's cache or, when
// the crash came before libcni wrote it, is rebuilt from host-local's
// reservation files; without it the firewall plugin would keep its rules.
//
// # DNS
//
// Name resolution between containers is hosts-file based (HostsEntries):
// the engine writes /etc/hosts of each container on a network from the
// attachment list and rewrites the others' when one joins or leaves. That
// needs no resolver process and no CNI plugin beyond the standard ones
// (dnsname is not installed here), and keeps working while hull is not
// running, at the cost of rewriting a few small files per start and stop.
package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

// Defaults used by New for zero Config fields.
const (
	DefaultNetworkName = "hull"
	DefaultBridgeName  = "hull0"
	// Not Podman's 10.88.0.0/16: both engines often share a host.
	DefaultSubnet     = "10.87.0.0/16"
	DefaultSubnetPool = "10.89.0.0/16"

	// cniVersion is the highest version Debian's plugins 1.1.1 speak.
	cniVersion = "1.0.0"
)

// Errors callers may test with errors.Is.
var (
	ErrNotFound = errors.New("network not found")
	ErrExists   = errors.New("network already exists")
	ErrInUse    = errors.New("network has containers attached")
	ErrInvalid  = errors.New("invalid network configuration")
)

// Config says where the Manager keeps its files and which defaults it uses.
type Config struct {
	// ConfDir holds one .conflist per network, under the engine's --root.
	ConfDir string
	// PluginDirs are searched for CNI plugin binaries; default /usr/lib/cni, /opt/cni/bin.
	PluginDirs []string
	// CacheDir is libcni's cache (results needed for DEL), under --runroot.
	CacheDir string
	// NetnsDir holds the bind-mounted network namespace files, under --runroot.
	NetnsDir string
	// StateDir holds attachment records, locks and host-local's IP
	// reservations, under --runroot; default: "network" beside NetnsDir.
	StateDir string
	// DefaultSubnet is the subnet of the default network; default 10.87.0.0/16.
	DefaultSubnet string
	// DefaultNetwork and DefaultBridge name the default network and its
	// bridge; default "hull" and "hull0".
	DefaultNetwork string
	DefaultBridge  string
	// SubnetPool is carved into /24s for networks created without a subnet;
	// default 10.89.0.0/16.
	SubnetPool string
}

// Network is one network definition.
type Network struct {
	Name     string
	ID       string
	Driver   string // only "bridge"
	Subnet   string // CIDR, IPv4
	Gateway  string // empty for internal networks
	Bridge   string // host bridge interface
	Internal bool   // no gateway, no masquerading, no port mapping
	// HostRules: hull keeps one masquerade and two FORWARD rules for the
	// whole network (Docker's layout) instead of the bridge plugin's
	// per-container NAT chain and the firewall plugin's per-container
	// rules; every network hull creates has it. Conflists without it
	// (older hull, written by hand) run their plugins as they are.
	HostRules bool
	DNS       bool // containers resolve each other through HostsEntries
	Created   time.Time
	Labels    map[string]string
}

// PortMapping publishes a container port on the host through the portmap plugin.
type PortMapping struct {
	HostIP        string // empty: all host addresses
	HostPort      uint16
	ContainerPort uint16
	Protocol      string // tcp or udp; empty means tcp
}

// Attachment connects a container to one network.
type Attachment struct {
	Network string
	// Aliases are the names other containers on the network resolve to this
	// container through HostsEntries; the engine passes the container name,
	// its short ID and any --network-alias values.
	Aliases []string
	// IP optionally requests a static address from the network's subnet.
	IP net.IP
}

// IfaceResult is what one network gave the container.
type IfaceResult struct {
	Interface string // name inside the container, eth0, eth1, ...
	IPs       []net.IPNet
	MAC       net.HardwareAddr
	Gateway   net.IP
}

// Result describes a container's network namespace after Setup.
type Result struct {
	NetnsPath  string
	Interfaces map[string]IfaceResult // by network name
}

// HostEntry is one line of a container's /etc/hosts.
type HostEntry struct {
	ContainerID string
	IP          net.IP
	Names       []string
}

// Manager owns hull's networks. It keeps no state in memory beyond its
// configuration: every method reads the files under its directories and
// takes file locks, so several hull processes can share one set of dirs.
type Manager struct {
	cfg  Config
	cni  *libcni.CNIConfig
	exec invoke.Exec

	defaultSubnet *net.IPNet
	pool          *net.IPNet
}

// New checks cfg, fills defaults and creates the directories.
func New(cfg Config) (*Manager, error) {
	if cfg.ConfDir == "" || cfg.CacheDir == "" || cfg.NetnsDir == "" {
		return nil, fmt.Errorf("network: ConfDir, CacheDir and NetnsDir are required")
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs()
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(filepath.Dir(cfg.NetnsDir), "network")
	}
	if cfg.DefaultSubnet == "" {
		cfg.DefaultSubnet = DefaultSubnet
	}
	if cfg.DefaultNetwork == "" {
		cfg.DefaultNetwork = DefaultNetworkName
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = DefaultBridgeName
	}
	if cfg.SubnetPool == "" {
		cfg.SubnetPool = DefaultSubnetPool
	}
	m := &Manager{cfg: cfg}
	var err error
	if m.defaultSubnet, err = parseSubnet(cfg.DefaultSubnet); err != nil {
		return nil, fmt.Errorf("network: default subnet: %w", err)
	}
	if m.pool, err = parseSubnet(cfg.SubnetPool); err != nil {
		return nil, fmt.Errorf("network: subnet pool: %w", err)
	}
	if ones, _ := m.pool.Mask.Size(); ones > 24 {
		return nil, fmt.Errorf("network: subnet pool %s is smaller than one /24: %w", cfg.SubnetPool, ErrInvalid)
	}
	if err := validateName(cfg.DefaultNetwork); err != nil {
		return nil, fmt.Errorf("network: default network: %w", err)
	}
	if err := validateBridgeName(cfg.DefaultBridge); err != nil {
		return nil, fmt.Errorf("network: default bridge: %w", err)
	}
	for _, d := range []string{cfg.ConfDir, cfg.CacheDir, cfg.NetnsDir, m.containersDir(), m.attachmentsDir(), m.ipamDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	// Plugin stderr is dropped rather than copied to ours: plugins report
	// failures in their JSON error, which libcni turns into the returned error.
	m.exec = &invoke.DefaultExec{RawExec: &invoke.RawExec{}, PluginDecoder: version.PluginDecoder{}}
	m.cni = libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, cfg.CacheDir, m.exec)
	return m, nil
}

// NetnsPath is where Setup bind-mounts the container's network namespace.
func (m *Manager) NetnsPath(containerID string) string {
	return filepath.Join(m.cfg.NetnsDir, containerID)
}

func (m *Manager) containersDir() string  { return filepath.Join(m.cfg.StateDir, "containers") }
func (m *Manager) attachmentsDir() string { return filepath.Join(m.cfg.StateDir, "networks") }
func (m *Manager) ipamDir() string        { return filepath.Join(m.cfg.StateDir, "ipam") }
func (m *Manager) confPath(name string) string {
	return filepath.Join(m.cfg.ConfDir, name+".conflist")
}

// DefaultPluginDirs are where CNI plugins are looked for when Config names
// none: Debian's containernetworking-plugins, then the upstream location.
func DefaultPluginDirs() []string { return []string{"/usr/lib/cni", "/opt/cni/bin"} }
