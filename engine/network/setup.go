package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
)

// containerIDRE is libcni's container ID rule; it also keeps IDs usable as
// file names under NetnsDir and StateDir.
var containerIDRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func validateContainerID(id string) error {
	if len(id) > 128 || !containerIDRE.MatchString(id) {
		return fmt.Errorf("invalid container ID %q", id)
	}
	return nil
}

// containerRecord is what Setup is doing or did for one container. It is
// written before anything is created, so Teardown can undo a Setup that
// was killed half-way.
type containerRecord struct {
	ID          string               `json:"id"`
	Netns       string               `json:"netns"`
	Attachments []recordedAttachment `json:"attachments"`
	Ports       []PortMapping        `json:"ports,omitempty"`
	PortsOn     string               `json:"portsOn,omitempty"` // network that got the ports
	Ready       bool                 `json:"ready"`
}

type recordedAttachment struct {
	Network string   `json:"network"`
	IfName  string   `json:"ifName"`
	Aliases []string `json:"aliases,omitempty"`
	IP      string   `json:"ip,omitempty"`
}

func (m *Manager) recordPath(id string) string { return filepath.Join(m.containersDir(), id+".json") }

// IsSetUp reports whether Setup has run for the container (completely or
// not) and no Teardown has finished since.
func (m *Manager) IsSetUp(containerID string) bool {
	if validateContainerID(containerID) != nil {
		return false
	}
	_, err := os.Lstat(m.recordPath(containerID))
	return err == nil
}

func ifName(i int) string { return fmt.Sprintf("eth%d", i) }

// portMappingsArg is the portmap plugin's "portMappings" runtime config.
func portMappingsArg(ports []PortMapping) []map[string]any {
	out := make([]map[string]any, 0, len(ports))
	for _, p := range ports {
		e := map[string]any{"hostPort": int(p.HostPort), "containerPort": int(p.ContainerPort), "protocol": p.Protocol}
		if p.HostIP != "" {
			e["hostIP"] = p.HostIP
		}
		out = append(out, e)
	}
	return out
}

func (m *Manager) runtimeConf(id, ifname string, ip string, ports []PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID:    id,
		NetNS:          m.NetnsPath(id),
		IfName:         ifname,
		CapabilityArgs: map[string]any{},
	}
	if len(ports) > 0 {
		rt.CapabilityArgs["portMappings"] = portMappingsArg(ports)
	}
	if ip != "" {
		rt.CapabilityArgs["ips"] = []string{ip}
	}
	return rt
}

func normalizePorts(ports []PortMapping) ([]PortMapping, error) {
	out := make([]PortMapping, 0, len(ports))
	for _, p := range ports {
		p.Protocol = strings.ToLower(p.Protocol)
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return nil, fmt.Errorf("port mapping %d:%d: protocol %q is not tcp or udp", p.HostPort, p.ContainerPort, p.Protocol)
		}
		if p.HostPort == 0 || p.ContainerPort == 0 {
			return nil, fmt.Errorf("port mapping %d:%d/%s: ports must not be 0", p.HostPort, p.ContainerPort, p.Protocol)
		}
		if p.HostIP != "" && net.ParseIP(p.HostIP).To4() == nil {
			return nil, fmt.Errorf("port mapping %s:%d: host IP is not an IPv4 address", p.HostIP, p.HostPort)
		}
		out = append(out, p)
	}
	return out, nil
}

// Setup creates the container's network namespace at NetnsPath(containerID)
// with lo up and attaches it to each network in atts, as eth0, eth1, ... in
// order. ports are published through the first non-internal network (one
// DNAT per host port; several would race for it). No attachments is the
// "none" mode: a namespace with only lo.
//
// On any failure, including ctx being cancelled, everything already done is
// undone (CNI DEL in reverse, namespace unmounted and removed) and the error
// names the network and carries the plugin's message. If that undo itself
// fails, the container record is kept and Teardown finishes the job.
func (m *Manager) Setup(ctx context.Context, containerID string, atts []Attachment, ports []PortMapping) (*Result, error) {
	if err := validateContainerID(containerID); err != nil {
		return nil, err
	}
	ports, err := normalizePorts(ports)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", containerID, err)
	}
	cl, err := m.lockConf(false)
	if err != nil {
		return nil, err
	}
	defer cl.unlock()

	rec := containerRecord{ID: containerID, Netns: m.NetnsPath(containerID)}
	lists := make([]*libcni.NetworkConfigList, len(atts))
	var ruled []Network // networks whose host rules must be in place
	seen := map[string]bool{}
	for i, a := range atts {
		if seen[a.Network] {
			return nil, fmt.Errorf("container %s: network %q given twice", containerID, a.Network)
		}
		seen[a.Network] = true
		if err := validateName(a.Network); err != nil {
			return nil, fmt.Errorf("container %s: %w", containerID, err)
		}
		list, n, err := m.loadList(a.Network)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", containerID, err)
		}
		lists[i] = list
		if n.HostRules && !n.Internal {
			ruled = append(ruled, n)
		}
		ra := recordedAttachment{Network: a.Network, IfName: ifName(i), Aliases: a.Aliases}
		if a.IP != nil {
			if a.IP.To4() == nil {
				return nil, fmt.Errorf("container %s: network %q: static IP %s is not IPv4", containerID, a.Network, a.IP)
			}
			ra.IP = a.IP.String()
		}
		rec.Attachments = append(rec.Attachments, ra)
		if rec.PortsOn == "" && !n.Internal && len(ports) > 0 {
			rec.PortsOn = a.Network
		}
	}
	if len(ports) > 0 && rec.PortsOn == "" {
		return nil, fmt.Errorf("container %s: port mappings need a non-internal network", containerID)
	}
	rec.Ports = ports

	lk, err := lockPath(filepath.Join(m.containersDir(), containerID+".lock"))
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	if _, err := os.Lstat(m.recordPath(containerID)); err == nil {
		return nil, fmt.Errorf("container %s: network already set up (or an earlier setup did not finish; tear it down first): %w", containerID, fs.ErrExist)
	}
	if _, err := os.Lstat(rec.Netns); err == nil {
		return nil, fmt.Errorf("container %s: %s already exists: %w", containerID, rec.Netns, fs.ErrExist)
	}
	if err := m.ensureNetnsDir(); err != nil {
		return nil, err
	}
	if err := writeJSONAtomic(m.recordPath(containerID), rec); err != nil {
		return nil, fmt.Errorf("container %s: record network setup: %w", containerID, err)
	}

	res := &Result{NetnsPath: rec.Netns, Interfaces: map[string]IfaceResult{}}
	added := 0 // attachments whose ADD was started, so need DEL on failure
	fail := func(err error) (*Result, error) {
		// Undo must run to the end even when ctx is what failed.
		uctx := context.WithoutCancel(ctx)
		var undo []error
		for i := added - 1; i >= 0; i-- {
			ra := rec.Attachments[i]
			rt := m.runtimeConf(containerID, ra.IfName, ra.IP, portsFor(rec, ra.Network))
			if derr := m.cniDel(uctx, lists[i], rt); derr != nil {
				undo = append(undo, fmt.Errorf("undo network %q: %w", ra.Network, derr))
			}
			if derr := m.removeAttachment(ra.Network, containerID); derr != nil {
				undo = append(undo, derr)
			}
		}
		if len(undo) == 0 {
			if derr := removeNetns(rec.Netns); derr != nil {
				undo = append(undo, derr)
			} else if derr := os.Remove(m.recordPath(containerID)); derr != nil {
				undo = append(undo, derr)
			}
		}
		if len(undo) > 0 {
			return nil, fmt.Errorf("container %s: %w (cleanup incomplete, Teardown will retry: %w)", containerID, err, errors.Join(undo...))
		}
		return nil, fmt.Errorf("container %s: %w", containerID, err)
	}

	if err := createNetns(rec.Netns, nil); err != nil {
		_ = os.Remove(m.recordPath(containerID))
		return nil, fmt.Errorf("container %s: %w", containerID, err)
	}
	// The network's host rules are checked (three iptables execs) while
	// the plugins run: they are needed once the container runs, not before.
	rulesErr := make(chan error, 1)
	go func() {
		for _, n := range ruled {
			if err := ensureHostRules(ctx, n); err != nil {
				rulesErr <- err
				return
			}
		}
		rulesErr <- nil
	}()
	for i, ra := range rec.Attachments {
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("network %q: %w", ra.Network, err))
		}
		added = i + 1
		rt := m.runtimeConf(containerID, ra.IfName, ra.IP, portsFor(rec, ra.Network))
		r, err := m.cni.AddNetworkList(ctx, pluginsFor(lists[i], rt), rt)
		if err != nil {
			return fail(fmt.Errorf("network %q: %w", ra.Network, err))
		}
		ir, err := ifaceResult(r, ra.IfName)
		if err != nil {
			return fail(fmt.Errorf("network %q: %w", ra.Network, err))
		}
		res.Interfaces[ra.Network] = ir
		if err := m.addAttachment(ra.Network, containerID, attachedContainer{IfName: ra.IfName, IPs: ipStrings(ir.IPs), Aliases: ra.Aliases}); err != nil {
			return fail(fmt.Errorf("network %q: %w", ra.Network, err))
		}
	}
	if err := <-rulesErr; err != nil {
		return fail(err)
	}
	rec.Ready = true
	if err := writeJSONAtomic(m.recordPath(containerID), rec); err != nil {
		return fail(fmt.Errorf("record network setup: %w", err))
	}
	return res, nil
}

func portsFor(rec containerRecord, network string) []PortMapping {
	if network == rec.PortsOn {
		return rec.Ports
	}
	return nil
}

func ipStrings(ips []net.IPNet) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.IP.String())
	}
	return out
}

// ifaceResult picks the container side of a CNI result.
func ifaceResult(r types.Result, ifname string) (IfaceResult, error) {
	cur, err := types100.NewResultFromResult(r)
	if err != nil {
		return IfaceResult{}, fmt.Errorf("convert CNI result: %w", err)
	}
	out := IfaceResult{Interface: ifname}
	idx := -1
	for i, itf := range cur.Interfaces {
		if itf.Name == ifname && itf.Sandbox != "" {
			idx = i
			if mac, err := net.ParseMAC(itf.Mac); err == nil {
				out.MAC = mac
			}
		}
	}
	for _, ipc := range cur.IPs {
		if idx >= 0 && ipc.Interface != nil && *ipc.Interface != idx {
			continue
		}
		out.IPs = append(out.IPs, ipc.Address)
		if out.Gateway == nil && ipc.Gateway != nil {
			out.Gateway = ipc.Gateway
		}
	}
	if len(out.IPs) == 0 {
		return out, fmt.Errorf("CNI result has no IP address for %s", ifname)
	}
	return out, nil
}

// cniDel runs DEL for every plugin of list, last to first, and keeps going
// after a failure so one broken plugin does not strand the others' state.
//
// libcni's DelNetworkList stops at the first error and, when the cached
// ADD result is missing (ADD failed or hull died before libcni wrote it),
// runs DEL without prevResult, which makes the firewall plugin keep its
// rules. So each plugin gets the cached result or, failing that, one rebuilt
// from host-local's reservations. A plugin that is not installed is skipped:
// it cannot have run, so it has nothing to undo.
func (m *Manager) cniDel(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	prev, err := m.cni.GetNetworkListCachedResult(list, rt)
	if err != nil || prev == nil {
		prev = m.reservedResult(list, rt)
	}
	var errs []error
	plugins := pluginsFor(list, rt).Plugins
	for i := len(plugins) - 1; i >= 0; i-- {
		p := plugins[i]
		if _, err := invoke.FindInPath(p.Network.Type, m.cfg.PluginDirs); err != nil {
			continue
		}
		inject := map[string]any{"name": list.Name, "cniVersion": list.CNIVersion}
		if prev != nil {
			inject["prevResult"] = prev
		}
		pc, err := libcni.InjectConf(p, inject)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugin %s: %w", p.Network.Type, err))
			continue
		}
		if err := m.cni.DelNetwork(ctx, pc, rt); err != nil {
			errs = append(errs, fmt.Errorf("plugin %s (delete): %w", p.Network.Type, err))
		}
	}
	return errors.Join(errs...)
}

// reservedResult rebuilds the ADD result of (container, ifname) on list
// from host-local's reservation files, one per IP containing
// "<container ID>\r\n<ifname>". nil if nothing is reserved.
func (m *Manager) reservedResult(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) types.Result {
	ipam, err := hostLocalOf(list)
	if err != nil {
		return nil
	}
	dir := filepath.Join(ipam.DataDir, list.Name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var ranges []*net.IPNet
	var gateways []net.IP
	for _, set := range ipam.Ranges {
		for _, r := range set {
			_, n, err := net.ParseCIDR(r.Subnet)
			if err != nil {
				continue
			}
			gw := net.ParseIP(r.Gateway)
			if gw == nil {
				gw = firstHost(n)
			}
			ranges, gateways = append(ranges, n), append(gateways, gw)
		}
	}
	zero := 0
	res := &types100.Result{
		CNIVersion: list.CNIVersion,
		Interfaces: []*types100.Interface{{Name: rt.IfName, Sandbox: rt.NetNS}},
	}
	for _, e := range entries {
		ip := net.ParseIP(e.Name())
		if ip == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.ReplaceAll(string(data), "\r", ""), "\n")
		if len(lines) < 2 || strings.TrimSpace(lines[0]) != rt.ContainerID || strings.TrimSpace(lines[1]) != rt.IfName {
			continue
		}
		for i, n := range ranges {
			if n.Contains(ip) {
				res.IPs = append(res.IPs, &types100.IPConfig{
					Interface: &zero,
					Address:   net.IPNet{IP: ip, Mask: n.Mask},
					Gateway:   gateways[i],
				})
				break
			}
		}
	}
	if len(res.IPs) == 0 {
		return nil
	}
	return res
}

// teardownItem is one network to DEL in Teardown.
type teardownItem struct {
	network string
	list    *libcni.NetworkConfigList
	rt      *libcni.RuntimeConf
}

// Teardown undoes Setup: CNI DEL for each network (last attached first), the
// namespace unmounted and its file removed, the attachment records dropped.
// It is idempotent and never fails because something is already gone.
//
// What to tear down is the union of atts/ports (as the caller passed them
// to Setup), the record Setup wrote before starting and libcni's cache of
// completed ADDs, so a Setup interrupted at any point, even by SIGKILL, is
// cleaned up. If the namespace file was removed by hand, a scratch
// namespace holding stand-ins for the lost interfaces is mounted in its
// place so the bridge plugin can find the addresses whose NAT rules it must
// delete. On error the record and namespace are kept so a retry can finish.
func (m *Manager) Teardown(ctx context.Context, containerID string, atts []Attachment, ports []PortMapping) error {
	if err := validateContainerID(containerID); err != nil {
		return err
	}
	ports, err := normalizePorts(ports)
	if err != nil {
		return fmt.Errorf("container %s: %w", containerID, err)
	}
	cl, err := m.lockConf(false)
	if err != nil {
		return err
	}
	defer cl.unlock()
	lk, err := lockPath(filepath.Join(m.containersDir(), containerID+".lock"))
	if err != nil {
		return err
	}
	unlock := lk.unlock
	defer func() { unlock() }()

	items, err := m.teardownPlan(containerID, atts, ports)
	if err != nil {
		return fmt.Errorf("container %s: %w", containerID, err)
	}
	path := m.NetnsPath(containerID)
	if len(items) > 0 && !isNetns(path) {
		if err := m.scratchNetns(path, items); err != nil {
			return fmt.Errorf("container %s: %w", containerID, err)
		}
	}
	var errs []error
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		if err := m.cniDel(ctx, it.list, it.rt); err != nil {
			errs = append(errs, fmt.Errorf("network %q: %w", it.network, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("container %s: teardown: %w", containerID, errors.Join(errs...))
	}
	networks := map[string]bool{}
	for _, it := range items {
		networks[it.network] = true
	}
	var rec containerRecord
	if err := readJSON(m.recordPath(containerID), &rec); err == nil {
		for _, ra := range rec.Attachments {
			networks[ra.Network] = true
		}
	}
	for _, a := range atts {
		networks[a.Network] = true
	}
	for n := range networks {
		if err := m.removeAttachment(n, containerID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeNetns(path); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("container %s: teardown: %w", containerID, errors.Join(errs...))
	}
	if err := os.Remove(m.recordPath(containerID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("container %s: %w", containerID, err)
	}
	unlock = lk.unlockAndRemove
	return nil
}

// teardownPlan merges the record, the caller's view and libcni's cache into
// the list of networks to DEL, in attachment order.
func (m *Manager) teardownPlan(id string, atts []Attachment, ports []PortMapping) ([]teardownItem, error) {
	var items []teardownItem
	have := map[string]bool{} // network + "/" + ifname
	add := func(network, ifname, ip string, ports []PortMapping, cachedConf []byte) {
		key := network + "/" + ifname
		if have[key] {
			return
		}
		list, _, err := m.loadList(network)
		if err != nil && cachedConf != nil {
			list, _, err = parseList(cachedConf)
		}
		if err != nil {
			// Without a definition there is nothing to run DEL with; Remove
			// only deletes definitions nobody is attached to.
			return
		}
		rt := m.runtimeConf(id, ifname, ip, ports)
		// DEL must get the runtime config ADD got (portmap finds its rules
		// by it); libcni cached it with the result.
		if conf, crt, err := m.cni.GetNetworkListCachedConfig(list, rt); err == nil && conf != nil && crt != nil {
			rt = crt
		}
		have[key] = true
		items = append(items, teardownItem{network: network, list: list, rt: rt})
	}

	var rec containerRecord
	err := readJSON(m.recordPath(id), &rec)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, ra := range rec.Attachments {
		add(ra.Network, ra.IfName, ra.IP, portsFor(rec, ra.Network), nil)
	}
	portsOn := ""
	for _, a := range atts {
		if _, n, err := m.loadList(a.Network); err == nil && !n.Internal {
			portsOn = a.Network
			break
		}
	}
	for i, a := range atts {
		var p []PortMapping
		if a.Network == portsOn {
			p = ports
		}
		ip := ""
		if a.IP != nil {
			ip = a.IP.String()
		}
		add(a.Network, ifName(i), ip, p, nil)
	}
	cached, err := m.cni.GetCachedAttachments(id)
	if err != nil {
		return nil, fmt.Errorf("read CNI cache: %w", err)
	}
	for _, c := range cached {
		add(c.Network, c.IfName, "", nil, c.Config)
	}
	return items, nil
}

// scratchNetns mounts a fresh namespace at path for DEL to run in. For
// every network with a known address it adds a stand-in interface (a veth
// whose peer stays inside) under the original name and addresses: the
// bridge plugin's DEL reads the addresses of the interface it deletes to
// find the masquerading rules to remove, and would silently keep them
// without it. The namespace only ever contains these unconnected links.
func (m *Manager) scratchNetns(path string, items []teardownItem) error {
	if err := removeNetns(path); err != nil { // an unmounted leftover file
		return err
	}
	if err := m.ensureNetnsDir(); err != nil {
		return err
	}
	type ghost struct {
		ifname string
		addrs  []net.IPNet
	}
	var ghosts []ghost
	for _, it := range items {
		prev, err := m.cni.GetNetworkListCachedResult(it.list, it.rt)
		if err != nil || prev == nil {
			prev = m.reservedResult(it.list, it.rt)
		}
		if prev == nil {
			continue
		}
		cur, err := types100.NewResultFromResult(prev)
		if err != nil {
			continue
		}
		g := ghost{ifname: it.rt.IfName}
		for _, ipc := range cur.IPs {
			g.addrs = append(g.addrs, ipc.Address)
		}
		if len(g.addrs) > 0 {
			ghosts = append(ghosts, g)
		}
	}
	return createNetns(path, func(h *netlink.Handle) error {
		for i, g := range ghosts {
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: g.ifname}, PeerName: fmt.Sprintf("hullghost%d", i)}
			if err := h.LinkAdd(veth); err != nil {
				return fmt.Errorf("stand-in for %s: %w", g.ifname, err)
			}
			for _, a := range g.addrs {
				if err := h.AddrAdd(veth, &netlink.Addr{IPNet: &a}); err != nil {
					return fmt.Errorf("stand-in for %s: add %s: %w", g.ifname, a.String(), err)
				}
			}
		}
		return nil
	})
}
