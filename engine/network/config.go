package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nameRE is the name rule of Docker, Podman and libcni's
// ValidateNetworkName, so a name accepted here never fails later in libcni.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// maxNameLen keeps libcni's cache file name "<net>-<container>-<ifname>"
// well under the 255-byte file name limit.
const maxNameLen = 128

// reservedName reports names of network modes the engine handles without
// CNI (and Docker's "bridge", which users type meaning the default network).
func reservedName(name string) bool {
	switch name {
	case "none", "host", "bridge", "container":
		return true
	}
	return false
}

func validateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("network name is empty: %w", ErrInvalid)
	case len(name) > maxNameLen:
		return fmt.Errorf("network name %.20q... is longer than %d characters: %w", name, maxNameLen, ErrInvalid)
	case !nameRE.MatchString(name):
		return fmt.Errorf("network name %q: only [a-zA-Z0-9_.-] allowed, starting with a letter or digit: %w", name, ErrInvalid)
	}
	return nil
}

var bridgeRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$`)

func validateBridgeName(name string) error {
	if !bridgeRE.MatchString(name) {
		return fmt.Errorf("bridge name %q: 1-15 characters of [a-zA-Z0-9_.-]: %w", name, ErrInvalid)
	}
	return nil
}

// parseSubnet accepts an IPv4 network address in CIDR form with room for a
// gateway and at least one container.
func parseSubnet(s string) (*net.IPNet, error) {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("subnet %q is not a CIDR: %w", s, ErrInvalid)
	}
	if ip.To4() == nil {
		return nil, fmt.Errorf("subnet %q: only IPv4 subnets are supported: %w", s, ErrInvalid)
	}
	if !ip.Equal(n.IP) {
		return nil, fmt.Errorf("subnet %q has host bits set (network address is %s): %w", s, n, ErrInvalid)
	}
	if ones, _ := n.Mask.Size(); ones > 30 {
		return nil, fmt.Errorf("subnet %q is too small (at most /30): %w", s, ErrInvalid)
	}
	n.IP = n.IP.To4()
	return n, nil
}

func overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

func firstHost(n *net.IPNet) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(n.IP.To4())+1)
	return ip
}

// meta is hull's part of a conflist, under the top-level key "hull".
type meta struct {
	ID       string `json:"id"`
	Driver   string `json:"driver"`
	Subnet   string `json:"subnet"`
	Gateway  string `json:"gateway,omitempty"`
	Bridge   string `json:"bridge"`
	Internal bool   `json:"internal,omitempty"`
	DNS      bool   `json:"dns,omitempty"`
	// HostRules: see Network.HostRules.
	HostRules bool              `json:"hostRules,omitempty"`
	Created   time.Time         `json:"created"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// buildConflist renders n as the CNI configuration list hull runs: bridge
// with host-local IPAM, and portmap where a gateway exists to route back
// (run only for containers that publish ports, see pluginsFor). Podman's
// CNI-era chain also had tuning (it did nothing here: no sysctls are passed
// to it), firewall and the bridge's ipMasq: those two install rules per
// container, about twenty iptables execs per run; with HostRules the same
// effect comes from three rules per network (hostrules.go).
func (m *Manager) buildConflist(n Network) ([]byte, error) {
	rng := map[string]any{"subnet": n.Subnet}
	if n.Gateway != "" {
		rng["gateway"] = n.Gateway
	}
	ipam := map[string]any{
		"type": "host-local",
		// A private dataDir keeps reservations per boot (under --runroot)
		// and away from other CNI users of /var/lib/cni/networks.
		"dataDir": m.ipamDir(),
		"ranges":  [][]map[string]any{{rng}},
	}
	if !n.Internal {
		ipam["routes"] = []map[string]any{{"dst": "0.0.0.0/0"}}
	}
	plugins := []map[string]any{{
		"type":         "bridge",
		"bridge":       n.Bridge,
		"isGateway":    !n.Internal,
		"ipMasq":       !n.Internal && !n.HostRules,
		"hairpinMode":  true,
		"capabilities": map[string]bool{"ips": true},
		"ipam":         ipam,
	}}
	if !n.Internal {
		plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	}
	if !n.HostRules {
		plugins = append(plugins,
			// An explicit backend keeps the plugin from probing firewalld over D-Bus.
			map[string]any{"type": "firewall", "backend": "iptables"},
		)
	}
	doc := map[string]any{
		"cniVersion": cniVersion,
		"name":       n.Name,
		"plugins":    plugins,
		"hull": meta{
			ID: n.ID, Driver: n.Driver, Subnet: n.Subnet, Gateway: n.Gateway, Bridge: n.Bridge,
			Internal: n.Internal, DNS: n.DNS, HostRules: n.HostRules, Created: n.Created, Labels: n.Labels,
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// loadList reads and parses the conflist of network name.
func (m *Manager) loadList(name string) (*libcni.NetworkConfigList, Network, error) {
	data, err := os.ReadFile(m.confPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Network{}, fmt.Errorf("network %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, Network{}, fmt.Errorf("network %q: %w", name, err)
	}
	list, n, err := parseList(data)
	if err != nil {
		return nil, Network{}, fmt.Errorf("network %q: %s: %w", name, m.confPath(name), err)
	}
	if list.Name != name {
		return nil, Network{}, fmt.Errorf("network %q: %s names network %q: %w", name, m.confPath(name), list.Name, ErrInvalid)
	}
	return list, n, nil
}

// parseList parses a conflist and the Network it describes. Conflists
// without hull's metadata (written by hand) are described from their
// bridge plugin as far as possible.
func parseList(data []byte) (*libcni.NetworkConfigList, Network, error) {
	list, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		return nil, Network{}, err
	}
	if len(list.Plugins) == 0 {
		return nil, Network{}, fmt.Errorf("no plugins: %w", ErrInvalid)
	}
	var doc struct {
		Hull *meta `json:"hull"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, Network{}, err
	}
	n := Network{Name: list.Name}
	if h := doc.Hull; h != nil {
		n.ID, n.Driver, n.Subnet, n.Gateway, n.Bridge = h.ID, h.Driver, h.Subnet, h.Gateway, h.Bridge
		n.Internal, n.DNS, n.Created, n.Labels = h.Internal, h.DNS, h.Created, h.Labels
		n.HostRules = h.HostRules
		return list, n, nil
	}
	n.Driver = list.Plugins[0].Network.Type
	if ipam, err := hostLocalOf(list); err == nil && len(ipam.Ranges) > 0 && len(ipam.Ranges[0]) > 0 {
		n.Subnet, n.Gateway = ipam.Ranges[0][0].Subnet, ipam.Ranges[0][0].Gateway
	}
	var br struct {
		Bridge string `json:"bridge"`
	}
	_ = json.Unmarshal(list.Plugins[0].Bytes, &br)
	n.Bridge = br.Bridge
	return list, n, nil
}

// hostLocal is the part of host-local's configuration hull reads back.
type hostLocal struct {
	Type    string `json:"type"`
	DataDir string `json:"dataDir"`
	Ranges  [][]struct {
		Subnet  string `json:"subnet"`
		Gateway string `json:"gateway"`
	} `json:"ranges"`
}

// hostLocalOf returns the host-local IPAM section of the list's first plugin.
func hostLocalOf(list *libcni.NetworkConfigList) (*hostLocal, error) {
	var p struct {
		IPAM *hostLocal `json:"ipam"`
	}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &p); err != nil {
		return nil, err
	}
	if p.IPAM == nil || p.IPAM.Type != "host-local" {
		return nil, fmt.Errorf("network %q does not use host-local IPAM", list.Name)
	}
	if p.IPAM.DataDir == "" {
		p.IPAM.DataDir = "/var/lib/cni/networks"
	}
	return p.IPAM, nil
}

// lockConf serialises network definition changes (exclusive) against
// Setup's use of them (shared), so Remove cannot delete a network that a
// concurrent Setup is attaching to.
func (m *Manager) lockConf(exclusive bool) (*fileLock, error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	path := filepath.Join(m.cfg.ConfDir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock network config: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock network config: %w", err)
	}
	return &fileLock{f: f}, nil
}

// List returns all networks, sorted by name.
func (m *Manager) List() ([]Network, error) {
	entries, err := os.ReadDir(m.cfg.ConfDir)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []Network
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".conflist")
		if !ok || e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		_, n, err := m.loadList(name)
		if err != nil {
			return nil, fmt.Errorf("list networks: %w", err)
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Inspect returns the network called name; errors.Is(err, ErrNotFound) if
// there is none.
func (m *Manager) Inspect(name string) (Network, error) {
	if err := validateName(name); err != nil {
		return Network{}, err
	}
	_, n, err := m.loadList(name)
	return n, err
}

// EnsureDefault returns the default network, creating it on first use with
// Config.DefaultSubnet on Config.DefaultBridge. Its ID is derived from its
// name, like Podman's, so it is the same on every host.
func (m *Manager) EnsureDefault() (Network, error) {
	l, err := m.lockConf(true)
	if err != nil {
		return Network{}, err
	}
	defer l.unlock()
	if _, n, err := m.loadList(m.cfg.DefaultNetwork); err == nil || !errors.Is(err, ErrNotFound) {
		return n, err
	}
	sum := sha256.Sum256([]byte(m.cfg.DefaultNetwork))
	return m.create(Network{
		Name:    m.cfg.DefaultNetwork,
		ID:      hex.EncodeToString(sum[:]),
		Subnet:  m.cfg.DefaultSubnet,
		Bridge:  m.cfg.DefaultBridge,
		Created: time.Now().UTC(),
	})
}

// Create defines a user network. Zero fields get defaults: Driver "bridge",
// a random ID, bridge "hull-<first 10 hex digits of the ID>", the first free
// /24 of Config.SubnetPool that overlaps neither another network nor a
// host route, and the subnet's first address as gateway. Errors wrap
// ErrExists for a duplicate name and ErrInvalid for anything else wrong.
func (m *Manager) Create(n Network) (Network, error) {
	if err := validateName(n.Name); err != nil {
		return Network{}, err
	}
	if reservedName(n.Name) || n.Name == m.cfg.DefaultNetwork {
		return Network{}, fmt.Errorf("network name %q is reserved: %w", n.Name, ErrInvalid)
	}
	if n.ID != "" {
		return Network{}, fmt.Errorf("network %q: the ID is assigned by hull: %w", n.Name, ErrInvalid)
	}
	l, err := m.lockConf(true)
	if err != nil {
		return Network{}, err
	}
	defer l.unlock()
	var id [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Network{}, err
	}
	n.ID = hex.EncodeToString(id[:])
	if n.Created.IsZero() {
		n.Created = time.Now().UTC()
	}
	return m.create(n)
}

// create validates n against the existing networks and writes it. The
// caller holds the exclusive config lock.
func (m *Manager) create(n Network) (Network, error) {
	existing, err := m.List()
	if err != nil {
		return Network{}, err
	}
	for _, e := range existing {
		if e.Name == n.Name {
			return Network{}, fmt.Errorf("network %q: %w", n.Name, ErrExists)
		}
	}
	switch n.Driver {
	case "":
		n.Driver = "bridge"
	case "bridge":
	default:
		return Network{}, fmt.Errorf("network %q: driver %q not supported (only bridge): %w", n.Name, n.Driver, ErrInvalid)
	}

	if n.Bridge == "" {
		n.Bridge = "hull-" + n.ID[:10]
	}
	if err := validateBridgeName(n.Bridge); err != nil {
		return Network{}, fmt.Errorf("network %q: %w", n.Name, err)
	}
	for _, e := range existing {
		if e.Bridge == n.Bridge {
			return Network{}, fmt.Errorf("network %q: bridge %q is already used by network %q: %w", n.Name, n.Bridge, e.Name, ErrInvalid)
		}
	}

	routes, err := hostRoutes(n.Bridge)
	if err != nil {
		return Network{}, fmt.Errorf("network %q: %w", n.Name, err)
	}
	var subnet *net.IPNet
	if n.Subnet == "" {
		if subnet, err = m.freeSubnet(existing, routes); err != nil {
			return Network{}, fmt.Errorf("network %q: %w", n.Name, err)
		}
	} else {
		if subnet, err = parseSubnet(n.Subnet); err != nil {
			return Network{}, fmt.Errorf("network %q: %w", n.Name, err)
		}
		if err := checkFree(subnet, existing, routes); err != nil {
			return Network{}, fmt.Errorf("network %q: %w", n.Name, err)
		}
	}
	n.Subnet = subnet.String()

	switch {
	case n.Internal && n.Gateway != "":
		return Network{}, fmt.Errorf("network %q: internal networks have no gateway: %w", n.Name, ErrInvalid)
	case n.Internal:
	case n.Gateway == "":
		n.Gateway = firstHost(subnet).String()
	default:
		gw := net.ParseIP(n.Gateway).To4()
		if gw == nil || !subnet.Contains(gw) || gw.Equal(subnet.IP) {
			return Network{}, fmt.Errorf("network %q: gateway %q is not a host address in %s: %w", n.Name, n.Gateway, subnet, ErrInvalid)
		}
		n.Gateway = gw.String()
	}

	n.HostRules = true
	data, err := m.buildConflist(n)
	if err != nil {
		return Network{}, err
	}
	list, _, err := parseList(data)
	if err != nil {
		return Network{}, fmt.Errorf("network %q: generated config: %w", n.Name, err)
	}
	// Fail now, not at the first container start, if a plugin is missing.
	if _, err := m.cni.ValidateNetworkList(context.Background(), list); err != nil {
		return Network{}, fmt.Errorf("network %q: CNI plugins in %v: %w", n.Name, m.cfg.PluginDirs, err)
	}
	if err := writeFileAtomic(m.confPath(n.Name), data, 0o644); err != nil {
		return Network{}, fmt.Errorf("network %q: write config: %w", n.Name, err)
	}
	return n, nil
}

// hostRoute is a destination the host already routes somewhere.
type hostRoute struct {
	dst *net.IPNet
	dev string
}

// hostRoutes lists the host's IPv4 routes with a real destination, except
// those through bridge (a stale bridge of the network being created must
// not block its own subnet). Default routes cover everything and say
// nothing about conflicts, so they are skipped.
func hostRoutes(bridge string) ([]hostRoute, error) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	var out []hostRoute
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			continue
		}
		if r.Dst.IP.IsLoopback() {
			continue
		}
		dev := ""
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		if dev == bridge {
			continue
		}
		out = append(out, hostRoute{dst: r.Dst, dev: dev})
	}
	return out, nil
}

func checkFree(subnet *net.IPNet, existing []Network, routes []hostRoute) error {
	for _, e := range existing {
		_, en, err := net.ParseCIDR(e.Subnet)
		if err == nil && overlaps(subnet, en) {
			return fmt.Errorf("subnet %s overlaps %s of network %q: %w", subnet, en, e.Name, ErrInvalid)
		}
	}
	for _, r := range routes {
		if overlaps(subnet, r.dst) {
			return fmt.Errorf("subnet %s overlaps host route %s dev %s: %w", subnet, r.dst, r.dev, ErrInvalid)
		}
	}
	return nil
}

// freeSubnet returns the first /24 of the pool that checkFree accepts.
func (m *Manager) freeSubnet(existing []Network, routes []hostRoute) (*net.IPNet, error) {
	ones, _ := m.pool.Mask.Size()
	base := binary.BigEndian.Uint32(m.pool.IP.To4())
	for i := uint32(0); i < 1<<(24-ones); i++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+i<<8)
		cand := &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}
		if checkFree(cand, existing, routes) == nil {
			return cand, nil
		}
	}
	return nil, fmt.Errorf("no free /24 left in subnet pool %s", m.pool)
}

// Remove deletes a network that no container uses: its definition, its
// bridge and its IP reservation directory. It refuses (ErrInUse) while
// containers are attached, as recorded by Setup or known to libcni's cache,
// and refuses to remove the default network.
func (m *Manager) Remove(name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	if name == m.cfg.DefaultNetwork {
		return fmt.Errorf("network %q is the default network and cannot be removed: %w", name, ErrInvalid)
	}
	l, err := m.lockConf(true)
	if err != nil {
		return err
	}
	defer l.unlock()
	list, n, err := m.loadList(name)
	if err != nil {
		return err
	}
	users, err := m.usersOf(name)
	if err != nil {
		return fmt.Errorf("network %q: %w", name, err)
	}
	if len(users) > 0 {
		return fmt.Errorf("network %q: containers %s: %w", name, strings.Join(users, ", "), ErrInUse)
	}
	if n.HostRules && !n.Internal {
		if err := removeHostRules(context.Background(), n); err != nil {
			return fmt.Errorf("network %q: %w", name, err)
		}
	}
	if err := os.Remove(m.confPath(name)); err != nil {
		return fmt.Errorf("network %q: %w", name, err)
	}
	// The bridge plugin never deletes bridges; without this every removed
	// network would leave one behind with its gateway address and route.
	if n.Bridge != "" {
		if link, err := netlink.LinkByName(n.Bridge); err == nil && link.Type() == "bridge" {
			if err := netlink.LinkDel(link); err != nil {
				return fmt.Errorf("network %q: delete bridge %s: %w", name, n.Bridge, err)
			}
		}
	}
	if ipam, err := hostLocalOf(list); err == nil && ipam.DataDir == m.ipamDir() {
		if err := os.RemoveAll(filepath.Join(ipam.DataDir, name)); err != nil {
			return fmt.Errorf("network %q: %w", name, err)
		}
	}
	_ = os.Remove(m.attachmentsPath(name))
	return nil
}
