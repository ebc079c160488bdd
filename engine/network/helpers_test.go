package network

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The tests need root, the plugins in /usr/lib/cni and iptables. They only
// ever put traffic on loopback and inside namespaces they create, use
// subnets in 10.250.0.0/16 and keep all CNI state in t.TempDir().

const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// sharedChains are the chains portmap and firewall create once per host and
// keep by design; per-container chains and rules must not outlive Teardown.
var sharedChains = map[string]bool{
	"CNI-HOSTPORT-DNAT": true, "CNI-HOSTPORT-SETMARK": true, "CNI-HOSTPORT-MASQ": true,
	"CNI-FORWARD": true, "CNI-ADMIN": true,
}

var (
	skipReason string
	// baseline is the host's rules before the tests; only chains that
	// appear after it are ever deleted.
	baseline string
	// hostNetns is the namespace the test binary started in, read before
	// any test could move a thread.
	hostNetns string
)

func TestMain(m *testing.M) {
	switch {
	case os.Geteuid() != 0:
		skipReason = "needs root"
	case !fileExists("/usr/lib/cni/bridge"):
		skipReason = "needs CNI plugins in /usr/lib/cni"
	default:
		if _, err := exec.LookPath("iptables-save"); err != nil {
			skipReason = "needs iptables"
		}
	}
	if skipReason != "" {
		os.Exit(m.Run())
	}
	hostNetns, _ = os.Readlink("/proc/self/ns/net")
	before := ruleSnapshot()
	baseline = before
	fwd, _ := os.ReadFile(ipForwardPath)
	code := m.Run()
	// The bridge plugin turns on forwarding for gateway networks; put the
	// host back the way it was.
	if len(fwd) > 0 {
		_ = os.WriteFile(ipForwardPath, fwd, 0o644)
	}
	removeNewChains(before, nil)
	if after := ruleSnapshot(); after != before {
		fmt.Fprintf(os.Stderr, "iptables differ after the tests:\n--- before\n%s--- after\n%s", before, after)
		code = 1
	}
	os.Exit(code)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func needRoot(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// ruleSnapshot is the rules and user chains of iptables and ip6tables,
// without counters and empty built-in chains (nf_tables creates those).
func ruleSnapshot() string {
	var b strings.Builder
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		out, _ := exec.Command(cmd).Output()
		table := ""
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "*"):
				table = l[1:]
			case strings.HasPrefix(l, "-A "):
				fmt.Fprintf(&b, "%s %s %s\n", cmd, table, l)
			case strings.HasPrefix(l, ":") && strings.Contains(l, " - "):
				fmt.Fprintf(&b, "%s %s %s\n", cmd, table, strings.Fields(l)[0])
			}
		}
	}
	return b.String()
}

var chainDeclRE = regexp.MustCompile(`^(iptables|ip6tables)-save (\S+) :(\S+)$`)

// removeNewChains deletes the chains (and jumps to them) that appeared
// since before and that pick accepts (nil: all of them).
func removeNewChains(before string, pick func(chain string) bool) {
	old := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		old[l] = true
	}
	type chain struct{ cmd, table, name string }
	var chains []chain
	for _, l := range strings.Split(ruleSnapshot(), "\n") {
		if mm := chainDeclRE.FindStringSubmatch(l); mm != nil && !old[l] && (pick == nil || pick(mm[3])) {
			chains = append(chains, chain{strings.TrimSuffix(mm[1], "-save"), mm[2], mm[3]})
		}
	}
	for _, c := range chains {
		out, _ := exec.Command(c.cmd, "-t", c.table, "-S").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j "+c.name) {
				args := append([]string{"-t", c.table, "-D"}, splitRule(l[3:])...)
				_ = exec.Command(c.cmd, args...).Run()
			}
		}
	}
	for _, c := range chains {
		_ = exec.Command(c.cmd, "-t", c.table, "-F", c.name).Run()
	}
	for _, c := range chains {
		_ = exec.Command(c.cmd, "-t", c.table, "-X", c.name).Run()
	}
}

// splitRule splits an iptables -S rule into arguments, honouring quotes.
func splitRule(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, esc := false, false
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc = true
		case r == '"':
			inQ = !inQ
		case r == ' ' && !inQ:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// hostRuleComment marks the rules a network keeps while it exists
// (hostrules.go): they name its subnet but belong to no container.
const hostRuleComment = `--comment "hull network `

// leakedRules lists rules that belong to a container: anything naming one
// of subnets or a chain that is not one of the shared ones, but the
// networks' own host rules.
func leakedRules(subnets ...string) []string {
	var leaks []string
	for _, l := range strings.Split(ruleSnapshot(), "\n") {
		if l == "" || strings.Contains(l, hostRuleComment) {
			continue
		}
		f := strings.Fields(l)
		if mm := chainDeclRE.FindStringSubmatch(l); mm != nil {
			if strings.HasPrefix(mm[3], "CNI-") && !sharedChains[mm[3]] {
				leaks = append(leaks, l)
			}
			continue
		}
		for i, w := range f {
			if w == "-j" && i+1 < len(f) && strings.HasPrefix(f[i+1], "CNI-") && !sharedChains[f[i+1]] {
				leaks = append(leaks, l)
			}
		}
		for _, s := range subnets {
			if strings.Contains(l, strings.TrimSuffix(s, "0/24")) {
				leaks = append(leaks, l)
				break
			}
		}
	}
	return leaks
}

// env is one test's private manager and everything to clean after it.
type env struct {
	t       *testing.T
	m       *Manager
	dir     string
	subnets []string
	bridges []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	e := &env{t: t, dir: dir}
	m, err := New(Config{
		ConfDir:        filepath.Join(dir, "root", "networks"),
		PluginDirs:     []string{"/usr/lib/cni"},
		CacheDir:       filepath.Join(dir, "run", "cni"),
		NetnsDir:       filepath.Join(dir, "run", "netns"),
		StateDir:       filepath.Join(dir, "run", "network"),
		DefaultSubnet:  "10.250.20.0/24",
		DefaultNetwork: "hulltest-default",
		DefaultBridge:  "hulltest0",
		SubnetPool:     "10.250.200.0/22",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(e.cleanup)
	return e
}

// network creates a network on subnet and schedules its bridge for deletion.
func (e *env) network(name, subnet string) Network {
	e.t.Helper()
	n, err := e.m.Create(Network{Name: name, Subnet: subnet, DNS: true})
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	e.subnets = append(e.subnets, n.Subnet)
	e.bridges = append(e.bridges, n.Bridge)
	return n
}

// cleanup checks that nothing was left behind, then removes it anyway so a
// failed test does not poison the next one or the host.
func (e *env) cleanup() {
	t := e.t
	if leaks := leakedRules(e.subnets...); len(leaks) > 0 {
		t.Errorf("iptables rules left behind:\n%s", strings.Join(leaks, "\n"))
	}
	for _, b := range e.bridges {
		if l, err := netlink.LinkByName(b); err == nil {
			links, _ := netlink.LinkList()
			for _, s := range links {
				if s.Attrs().MasterIndex == l.Attrs().Index {
					t.Errorf("interface %s still on bridge %s", s.Attrs().Name, b)
					_ = netlink.LinkDel(s)
				}
			}
			_ = netlink.LinkDel(l)
		}
	}
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(e.dir))
	for i := len(mounts) - 1; i >= 0; i-- {
		mp := mounts[i].Mountpoint
		if mp != e.m.cfg.NetnsDir { // the shared netns dir itself is expected
			t.Errorf("mount left behind: %s", mp)
		}
		_ = unix.Unmount(mp, unix.MNT_DETACH)
	}
	// The networks' host rules stay until a network is removed; the test's
	// networks go with it here (some tests remove them and check).
	if nets, err := e.m.List(); err == nil {
		for _, n := range nets {
			if n.HostRules && !n.Internal {
				if err := removeHostRules(context.Background(), n); err != nil {
					t.Errorf("remove the host rules of network %s: %v", n.Name, err)
				}
			}
		}
	}
	removeRulesMatching(e.subnets)
	removeNewChains(baseline, func(name string) bool { return !sharedChains[name] })
}

// hostRuleLines are the network's host rules present in iptables-save.
func hostRuleLines(n Network) []string {
	var out []string
	for _, l := range strings.Split(ruleSnapshot(), "\n") {
		if strings.Contains(l, hostRuleComment+n.Name+`"`) {
			out = append(out, l)
		}
	}
	return out
}

// removeRulesMatching deletes per-container rules a failed test left.
func removeRulesMatching(subnets []string) {
	for _, cmd := range []string{"iptables"} {
		for _, table := range []string{"nat", "filter"} {
			out, _ := exec.Command(cmd, "-t", table, "-S").Output()
			for _, l := range strings.Split(string(out), "\n") {
				for _, s := range subnets {
					if strings.HasPrefix(l, "-A ") && strings.Contains(l, strings.TrimSuffix(s, "0/24")) {
						_ = exec.Command(cmd, append([]string{"-t", table, "-D"}, splitRule(l[3:])...)...).Run()
					}
				}
			}
		}
	}
}

// inNetns runs fn on a disposable OS thread that has joined the namespace
// at path. Sockets fn creates stay in that namespace and may be used from any
// goroutine.
func inNetns(path string, fn func() error) error {
	return onDisposableThread(func() error {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns %s: %w", path, err)
		}
		return fn()
	})
}

// echoServer listens on port inside the namespace at path and echoes one
// line per connection.
func echoServer(t *testing.T, path string, port int) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(path, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", path, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(c, io.LimitReader(c, 64))
			}()
		}
	}()
}

// echo dials addr, sends msg and returns what comes back.
func echo(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp4", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// echoFrom runs echo from inside the namespace at path.
func echoFrom(path, addr, msg string) (got string, err error) {
	err = inNetns(path, func() error {
		got, err = echo(addr, msg)
		return err
	})
	return got, err
}

// nsLinks returns the links and IPv4 routes inside the namespace at path.
func nsLinks(t *testing.T, path string) (links []netlink.Link, addrs map[string][]netlink.Addr, routes []netlink.Route) {
	t.Helper()
	addrs = map[string][]netlink.Addr{}
	if err := inNetns(path, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		if links, err = h.LinkList(); err != nil {
			return err
		}
		for _, l := range links {
			a, err := h.AddrList(l, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			addrs[l.Attrs().Name] = a
		}
		routes, err = h.RouteList(nil, netlink.FAMILY_V4)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return links, addrs, routes
}

// reservations lists host-local's reserved IPs for a network.
func (e *env) reservations(network string) []string {
	entries, _ := os.ReadDir(filepath.Join(e.m.ipamDir(), network))
	var ips []string
	for _, d := range entries {
		if net.ParseIP(d.Name()) != nil {
			ips = append(ips, d.Name())
		}
	}
	return ips
}

// bridgePorts lists the interfaces enslaved to a bridge.
func bridgePorts(bridge string) []string {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return nil
	}
	links, _ := netlink.LinkList()
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// assertGone checks that nothing of container id is left on the host.
func (e *env) assertGone(id string, networks ...Network) {
	e.t.Helper()
	if _, err := os.Lstat(e.m.NetnsPath(id)); err == nil {
		e.t.Errorf("netns file %s still exists", e.m.NetnsPath(id))
	}
	if _, err := os.Lstat(e.m.recordPath(id)); err == nil {
		e.t.Errorf("container record of %s still exists", id)
	}
	for _, n := range networks {
		if r := e.reservations(n.Name); len(r) > 0 {
			e.t.Errorf("network %s: host-local still reserves %v", n.Name, r)
		}
		if p := bridgePorts(n.Bridge); len(p) > 0 {
			e.t.Errorf("network %s: bridge %s still has %v", n.Name, n.Bridge, p)
		}
		if r := leakedRules(n.Subnet); len(r) > 0 {
			e.t.Errorf("network %s: iptables rules left: %v", n.Name, r)
		}
	}
	if c, _ := e.m.cni.GetCachedAttachments(id); len(c) > 0 {
		e.t.Errorf("libcni cache still has %d attachments of %s", len(c), id)
	}
}

func (e *env) teardownOnCleanup(id string, atts []Attachment, ports []PortMapping) {
	e.t.Cleanup(func() {
		if err := e.m.Teardown(context.Background(), id, atts, ports); err != nil {
			e.t.Errorf("cleanup teardown %s: %v", id, err)
		}
	})
}
