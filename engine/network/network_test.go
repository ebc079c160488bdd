package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestSetupGivesEth0InSubnetWithDefaultRouteAndContainersTalk(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-talk", "10.250.1.0/24")
	ctx := context.Background()
	atts := []Attachment{{Network: n.Name}}
	_, subnet, _ := net.ParseCIDR(n.Subnet)

	results := map[string]*Result{}
	for _, id := range []string{"talk-a", "talk-b"} {
		res, err := e.m.Setup(ctx, id, atts, nil)
		if err != nil {
			t.Fatalf("setup %s: %v", id, err)
		}
		e.teardownOnCleanup(id, atts, nil)
		results[id] = res
		ir := res.Interfaces[n.Name]
		if ir.Interface != "eth0" || len(ir.IPs) != 1 || !subnet.Contains(ir.IPs[0].IP) {
			t.Fatalf("%s: result %+v, want eth0 with an IP in %s", id, ir, subnet)
		}
		if !ir.Gateway.Equal(net.ParseIP(n.Gateway)) || len(ir.MAC) != 6 {
			t.Fatalf("%s: gateway %v mac %v, want gateway %s and a MAC", id, ir.Gateway, ir.MAC, n.Gateway)
		}
		if res.NetnsPath != e.m.NetnsPath(id) {
			t.Fatalf("netns path %s, want %s", res.NetnsPath, e.m.NetnsPath(id))
		}

		_, addrs, routes := nsLinks(t, res.NetnsPath)
		if len(addrs["eth0"]) != 1 || !addrs["eth0"][0].IP.Equal(ir.IPs[0].IP) {
			t.Fatalf("%s: eth0 addresses %v, want %s", id, addrs["eth0"], ir.IPs[0].IP)
		}
		var def bool
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(net.ParseIP(n.Gateway)) {
				def = true
			}
		}
		if !def {
			t.Fatalf("%s: no default route via %s in %v", id, n.Gateway, routes)
		}
	}

	a, b := results["talk-a"], results["talk-b"]
	echoServer(t, a.NetnsPath, 7777)
	addr := fmt.Sprintf("%s:7777", a.Interfaces[n.Name].IPs[0].IP)
	got, err := echoFrom(b.NetnsPath, addr, "hello over the bridge")
	if err != nil || got != "hello over the bridge" {
		t.Fatalf("echo from talk-b to %s: %q, %v", addr, got, err)
	}

	for _, id := range []string{"talk-a", "talk-b"} {
		if err := e.m.Teardown(ctx, id, atts, nil); err != nil {
			t.Fatalf("teardown %s: %v", id, err)
		}
		e.assertGone(id)
	}
	e.assertGone("talk-a", n)

	// The freed addresses are handed out again.
	res, err := e.m.Setup(ctx, "talk-c", atts, nil)
	if err != nil {
		t.Fatalf("setup after teardown: %v", err)
	}
	e.teardownOnCleanup("talk-c", atts, nil)
	if len(res.Interfaces[n.Name].IPs) != 1 {
		t.Fatalf("no IP after teardown: %+v", res)
	}
	if r := e.reservations(n.Name); len(r) != 1 {
		t.Fatalf("host-local reserves %v, want exactly talk-c's address", r)
	}
	if err := e.m.Teardown(ctx, "talk-c", atts, nil); err != nil {
		t.Fatal(err)
	}
	e.assertGone("talk-c", n)
}

func TestPortMappingReachesContainerFromHostLoopback(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-ports", "10.250.2.0/24")
	ctx := context.Background()

	// A free port on the host's loopback, closed again for portmap to take.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostPort := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()

	atts := []Attachment{{Network: n.Name}}
	ports := []PortMapping{{HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: 8080, Protocol: "tcp"}}
	res, err := e.m.Setup(ctx, "ports-a", atts, ports)
	if err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("ports-a", atts, ports)
	echoServer(t, res.NetnsPath, 8080)

	addr := fmt.Sprintf("127.0.0.1:%d", hostPort)
	got, err := echo(addr, "published")
	if err != nil || got != "published" {
		t.Fatalf("echo via %s: %q, %v", addr, got, err)
	}

	if err := e.m.Teardown(ctx, "ports-a", atts, ports); err != nil {
		t.Fatal(err)
	}
	e.assertGone("ports-a", n)
	if _, err := echo(addr, "x"); err == nil {
		t.Fatalf("%s still answers after teardown", addr)
	}
}

// breakNetwork appends a plugin that does not exist to a network's
// conflist, so ADD fails after bridge, portmap and firewall did their work.
func breakNetwork(t *testing.T, e *env, name string) {
	t.Helper()
	path := e.m.confPath(name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc["plugins"] = append(doc["plugins"].([]any), map[string]any{"type": "hulltest-no-such-plugin"})
	if data, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSetupWithMissingPluginLeavesNothingBehind(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-missing", "10.250.3.0/24")
	breakNetwork(t, e, n.Name)
	ctx := context.Background()
	atts := []Attachment{{Network: n.Name}}
	ports := []PortMapping{{HostPort: 18080, ContainerPort: 80}}

	_, err := e.m.Setup(ctx, "missing-a", atts, ports)
	if err == nil {
		e.teardownOnCleanup("missing-a", atts, ports)
		t.Fatal("setup succeeded with a missing plugin")
	}
	if !strings.Contains(err.Error(), n.Name) || !strings.Contains(err.Error(), "hulltest-no-such-plugin") {
		t.Fatalf("error %q does not name the network and the plugin", err)
	}
	e.assertGone("missing-a", n)
	if users, _ := e.m.usersOf(n.Name); len(users) > 0 {
		t.Fatalf("network still has users %v", users)
	}
}

func TestSetupWhoseSecondNetworkFailsUndoesTheFirst(t *testing.T) {
	e := newEnv(t)
	good := e.network("hulltest-good", "10.250.4.0/24")
	bad := e.network("hulltest-bad", "10.250.5.0/24")
	ctx := context.Background()
	// host-local refuses an address outside the subnet: a real plugin error.
	atts := []Attachment{{Network: good.Name}, {Network: bad.Name, IP: net.ParseIP("10.250.99.9")}}

	_, err := e.m.Setup(ctx, "second-a", atts, nil)
	if err == nil {
		e.teardownOnCleanup("second-a", atts, nil)
		t.Fatal("setup succeeded with an impossible static IP")
	}
	if !strings.Contains(err.Error(), `network "hulltest-bad"`) || !strings.Contains(err.Error(), "10.250.99.9") {
		t.Fatalf("error %q does not name the failing network and the plugin's message", err)
	}
	e.assertGone("second-a", good, bad)
	for _, n := range []string{good.Name, bad.Name} {
		if h, err := e.m.HostsEntries(n); err != nil || len(h) > 0 {
			t.Fatalf("%s: hosts entries %v, %v", n, h, err)
		}
	}
}

func TestSetupWithStaticIPGetsThatIP(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-static", "10.250.6.0/24")
	ctx := context.Background()
	atts := []Attachment{{Network: n.Name, IP: net.ParseIP("10.250.6.77")}}
	res, err := e.m.Setup(ctx, "static-a", atts, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("static-a", atts, nil)
	if ip := res.Interfaces[n.Name].IPs[0].IP; !ip.Equal(net.ParseIP("10.250.6.77")) {
		t.Fatalf("got %s, want 10.250.6.77", ip)
	}
}

func TestTeardownIsIdempotent(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-idem", "10.250.7.0/24")
	ctx := context.Background()
	atts := []Attachment{{Network: n.Name}}
	ports := []PortMapping{{HostIP: "127.0.0.1", HostPort: 18081, ContainerPort: 80}}
	if _, err := e.m.Setup(ctx, "idem-a", atts, ports); err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("idem-a", atts, ports)
	for i := range 3 {
		if err := e.m.Teardown(ctx, "idem-a", atts, ports); err != nil {
			t.Fatalf("teardown #%d: %v", i+1, err)
		}
		e.assertGone("idem-a", n)
	}
	if err := e.m.Teardown(ctx, "never-set-up", atts, ports); err != nil {
		t.Fatalf("teardown of a container never set up: %v", err)
	}
}

func TestTeardownAfterNetnsFileRemovedByHand(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-byhand", "10.250.8.0/24")
	ctx := context.Background()
	atts := []Attachment{{Network: n.Name}}
	ports := []PortMapping{{HostPort: 18082, ContainerPort: 80}}
	res, err := e.m.Setup(ctx, "byhand-a", atts, ports)
	if err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("byhand-a", atts, ports)
	// What `ip netns delete` would do: the namespace dies with its veth end.
	if err := unix.Unmount(res.NetnsPath, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(res.NetnsPath); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Teardown(ctx, "byhand-a", atts, ports); err != nil {
		t.Fatalf("teardown after the netns was removed: %v", err)
	}
	e.assertGone("byhand-a", n)
	if err := e.m.Teardown(ctx, "byhand-a", atts, ports); err != nil {
		t.Fatalf("second teardown: %v", err)
	}
}

func TestTeardownAfterCrashBeforeAttachmentWasRecorded(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-crash", "10.250.9.0/24")
	ctx := context.Background()
	atts := []Attachment{{Network: n.Name}}
	ports := []PortMapping{{HostIP: "127.0.0.1", HostPort: 18083, ContainerPort: 80}}
	if _, err := e.m.Setup(ctx, "crash-a", atts, ports); err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("crash-a", atts, ports)
	// hull died after CNI ADD but before recording anything: netns and
	// libcni's cache exist, hull's records do not. The caller does not
	// know the attachments either.
	if err := os.Remove(e.m.recordPath("crash-a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.m.attachmentsPath(n.Name)); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Teardown(ctx, "crash-a", nil, nil); err != nil {
		t.Fatal(err)
	}
	e.assertGone("crash-a", n)
}

func TestTeardownAfterCrashInsideCNIAdd(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-midadd", "10.250.10.0/24")
	ctx := context.Background()
	atts := []Attachment{{Network: n.Name}}
	ports := []PortMapping{{HostIP: "127.0.0.1", HostPort: 18084, ContainerPort: 80}}
	if _, err := e.m.Setup(ctx, "midadd-a", atts, ports); err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("midadd-a", atts, ports)
	// hull died after the plugins ran but before libcni cached the result:
	// only the in-progress record and host-local's reservation tell what
	// the firewall plugin must delete.
	cache := filepath.Join(e.m.cfg.CacheDir, "results", n.Name+"-midadd-a-eth0")
	if err := os.Remove(cache); err != nil {
		t.Fatalf("libcni cache layout changed? %v", err)
	}
	if err := e.m.Teardown(ctx, "midadd-a", nil, nil); err != nil {
		t.Fatal(err)
	}
	e.assertGone("midadd-a", n)
}

func TestCreateRejectsInvalidNetworks(t *testing.T) {
	e := newEnv(t)
	e.network("hulltest-first", "10.250.11.0/24")

	var hostRoute string
	if rs, _ := hostRoutes(""); len(rs) > 0 {
		hostRoute = rs[0].dst.String()
	}
	for _, tc := range []struct {
		name string
		n    Network
		want error
		msg  string
	}{
		{"duplicate name", Network{Name: "hulltest-first", Subnet: "10.250.12.0/24"}, ErrExists, "already exists"},
		{"overlapping subnet", Network{Name: "hulltest-overlap", Subnet: "10.250.11.128/25"}, ErrInvalid, `overlaps 10.250.11.0/24 of network "hulltest-first"`},
		{"containing subnet", Network{Name: "hulltest-overlap", Subnet: "10.250.0.0/16"}, ErrInvalid, "overlaps"},
		{"invalid CIDR", Network{Name: "hulltest-cidr", Subnet: "10.250.300.0/24"}, ErrInvalid, "not a CIDR"},
		{"host bits", Network{Name: "hulltest-cidr", Subnet: "10.250.12.1/24"}, ErrInvalid, "host bits"},
		{"IPv6", Network{Name: "hulltest-cidr", Subnet: "fd00:250::/64"}, ErrInvalid, "IPv4"},
		{"gateway outside", Network{Name: "hulltest-gw", Subnet: "10.250.12.0/24", Gateway: "10.250.13.1"}, ErrInvalid, "gateway"},
		{"bad characters", Network{Name: "bad/name", Subnet: "10.250.12.0/24"}, ErrInvalid, "only [a-zA-Z0-9_.-]"},
		{"leading dash", Network{Name: "-x", Subnet: "10.250.12.0/24"}, ErrInvalid, "only"},
		{"reserved", Network{Name: "host"}, ErrInvalid, "reserved"},
		{"default name", Network{Name: "hulltest-default"}, ErrInvalid, "reserved"},
		{"long bridge", Network{Name: "hulltest-br", Subnet: "10.250.12.0/24", Bridge: "sixteen-chars-xx"}, ErrInvalid, "bridge name"},
		{"driver", Network{Name: "hulltest-drv", Driver: "macvlan"}, ErrInvalid, "driver"},
		{"host route", Network{Name: "hulltest-route", Subnet: hostRoute}, ErrInvalid, "host route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.n.Subnet == "" && tc.name == "host route" {
				t.Skip("host has no routes besides the default")
			}
			_, err := e.m.Create(tc.n)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Create(%+v) = %v, want %v mentioning %q", tc.n, err, tc.want, tc.msg)
			}
			if _, err := os.Stat(e.m.confPath(tc.n.Name)); err == nil && tc.n.Name != "hulltest-first" {
				t.Fatalf("a config was written for the rejected network")
			}
		})
	}
	if l, _ := e.m.List(); len(l) != 1 {
		t.Fatalf("List after rejected creates: %v", l)
	}
}

func TestCreateAllocatesFreeSubnetsFromPool(t *testing.T) {
	e := newEnv(t)
	a, err := e.m.Create(Network{Name: "hulltest-auto1"})
	if err != nil {
		t.Fatal(err)
	}
	e.network("hulltest-fixed", "10.250.201.0/24")
	c, err := e.m.Create(Network{Name: "hulltest-auto2", Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Subnet != "10.250.200.0/24" || a.Gateway != "10.250.200.1" || c.Subnet != "10.250.202.0/24" {
		t.Fatalf("allocated %s (gw %s) and %s, want 10.250.200.0/24 (gw .1) and 10.250.202.0/24", a.Subnet, a.Gateway, c.Subnet)
	}
	if len(a.Bridge) > 15 || !strings.HasPrefix(a.Bridge, "hull-") || a.Bridge[5:] != a.ID[:10] {
		t.Fatalf("bridge %q for ID %s", a.Bridge, a.ID)
	}
	got, err := e.m.Inspect("hulltest-auto2")
	if err != nil || got.ID != c.ID || got.Labels["k"] != "v" || got.Driver != "bridge" || !got.Created.Equal(c.Created) {
		t.Fatalf("Inspect = %+v, %v; want %+v", got, err, c)
	}
	if _, err := e.m.Inspect("hulltest-nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Inspect of a missing network: %v", err)
	}
	l, err := e.m.List()
	if err != nil || len(l) != 3 || l[0].Name != "hulltest-auto1" {
		t.Fatalf("List = %v, %v", l, err)
	}
	for _, n := range l {
		if err := e.m.Remove(n.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.Remove("hulltest-auto1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestEnsureDefaultCreatesDefaultNetworkOnce(t *testing.T) {
	e := newEnv(t)
	d, err := e.m.EnsureDefault()
	if err != nil {
		t.Fatal(err)
	}
	e.bridges = append(e.bridges, d.Bridge)
	e.subnets = append(e.subnets, d.Subnet)
	if d.Name != "hulltest-default" || d.Bridge != "hulltest0" || d.Subnet != "10.250.20.0/24" || d.Gateway != "10.250.20.1" {
		t.Fatalf("default network %+v", d)
	}
	again, err := e.m.EnsureDefault()
	if err != nil || again.ID != d.ID || !again.Created.Equal(d.Created) {
		t.Fatalf("second EnsureDefault = %+v, %v; want %+v", again, err, d)
	}
	if err := e.m.Remove(d.Name); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removing the default network: %v", err)
	}
	// The default network works like any other.
	atts := []Attachment{{Network: d.Name}}
	if _, err := e.m.Setup(context.Background(), "default-a", atts, nil); err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("default-a", atts, nil)
}

func TestHostsEntriesListAttachedContainersUntilTeardown(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-dns", "10.250.13.0/24")
	ctx := context.Background()
	attsA := []Attachment{{Network: n.Name, Aliases: []string{"web", "hosts-a"}}}
	attsB := []Attachment{{Network: n.Name, Aliases: []string{"db"}}}
	ra, err := e.m.Setup(ctx, "hosts-a", attsA, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("hosts-a", attsA, nil)
	rb, err := e.m.Setup(ctx, "hosts-b", attsB, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("hosts-b", attsB, nil)

	entries, err := e.m.HostsEntries(n.Name)
	if err != nil {
		t.Fatal(err)
	}
	want := []HostEntry{
		{ContainerID: "hosts-a", IP: ra.Interfaces[n.Name].IPs[0].IP, Names: []string{"web", "hosts-a"}},
		{ContainerID: "hosts-b", IP: rb.Interfaces[n.Name].IPs[0].IP, Names: []string{"db"}},
	}
	if fmt.Sprint(entries) != fmt.Sprint(want) {
		t.Fatalf("HostsEntries = %v, want %v", entries, want)
	}

	if err := e.m.Remove(n.Name); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "hosts-a") {
		t.Fatalf("Remove of a network in use: %v", err)
	}

	if err := e.m.Teardown(ctx, "hosts-a", attsA, nil); err != nil {
		t.Fatal(err)
	}
	entries, err = e.m.HostsEntries(n.Name)
	if err != nil || len(entries) != 1 || entries[0].ContainerID != "hosts-b" {
		t.Fatalf("HostsEntries after teardown of hosts-a = %v, %v", entries, err)
	}
	if err := e.m.Teardown(ctx, "hosts-b", attsB, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Remove(n.Name); err != nil {
		t.Fatalf("Remove after all left: %v", err)
	}
	if _, err := netlink.LinkByName(n.Bridge); err == nil {
		t.Fatalf("bridge %s survived Remove", n.Bridge)
	}
}

func TestNoneNetworkHasOnlyLoopbackUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	res, err := e.m.Setup(ctx, "none-a", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("none-a", nil, nil)
	if len(res.Interfaces) != 0 {
		t.Fatalf("interfaces %v", res.Interfaces)
	}
	links, addrs, _ := nsLinks(t, res.NetnsPath)
	if len(links) != 1 || links[0].Attrs().Name != "lo" || links[0].Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("links %v, want only lo, up", links)
	}
	if len(addrs["lo"]) != 1 || !addrs["lo"][0].IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("lo addresses %v", addrs["lo"])
	}
	// lo really works: a listener and a client inside the namespace.
	echoServer(t, res.NetnsPath, 9999)
	if got, err := echoFrom(res.NetnsPath, "127.0.0.1:9999", "lo"); err != nil || got != "lo" {
		t.Fatalf("echo over the namespace's lo: %q, %v", got, err)
	}
	if err := e.m.Teardown(ctx, "none-a", nil, nil); err != nil {
		t.Fatal(err)
	}
	e.assertGone("none-a")
}

func TestSetupRefusesSecondSetupOfSameContainer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.m.Setup(ctx, "twice-a", nil, nil); err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("twice-a", nil, nil)
	if _, err := e.m.Setup(ctx, "twice-a", nil, nil); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second setup: %v", err)
	}
	if !isNetns(e.m.NetnsPath("twice-a")) {
		t.Fatal("the failed second setup removed the first one's netns")
	}
	for _, bad := range []string{"", "../x", "a/b"} {
		if _, err := e.m.Setup(ctx, bad, nil, nil); err == nil {
			t.Fatalf("setup accepted container ID %q", bad)
		}
	}
}

func TestSetupWithCancelledContextLeavesNothingBehind(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-cancel", "10.250.14.0/24")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	atts := []Attachment{{Network: n.Name}}
	if _, err := e.m.Setup(ctx, "cancel-a", atts, nil); !errors.Is(err, context.Canceled) {
		e.teardownOnCleanup("cancel-a", atts, nil)
		t.Fatalf("setup with a cancelled context: %v", err)
	}
	e.assertGone("cancel-a", n)
}

func TestSetupLeavesNoThreadInContainerNetns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var ids []string
	for i := range 4 {
		id := fmt.Sprintf("threads-%d", i)
		if _, err := e.m.Setup(ctx, id, nil, nil); err != nil {
			t.Fatal(err)
		}
		e.teardownOnCleanup(id, nil, nil)
		ids = append(ids, id)
	}
	host := hostNetns
	// Threads locked by Setup exit once their goroutine returns; give the
	// runtime a moment to reap them, then no thread may be elsewhere.
	var stray []string
	for range 50 {
		stray = stray[:0]
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
			if err == nil && ns != host {
				stray = append(stray, task.Name()+":"+ns)
			}
		}
		if len(stray) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(stray) > 0 {
		t.Fatalf("threads left in other network namespaces: %v", stray)
	}
	for _, id := range ids {
		if err := e.m.Teardown(ctx, id, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// A network's masquerade and FORWARD rules are one set for the network,
// not one per container: they outlive its containers, come back at the
// next setup when someone deleted them, and go with the network.
func TestHostRulesBelongToTheNetwork(t *testing.T) {
	e := newEnv(t)
	n := e.network("hulltest-rules", "10.250.11.0/24")
	if !n.HostRules {
		t.Fatal("a new network does not use host rules")
	}
	ctx := context.Background()
	atts := []Attachment{{Network: n.Name}}
	if got := hostRuleLines(n); len(got) != 0 {
		t.Fatalf("rules before any container: %q", got)
	}
	for _, id := range []string{"rules-a", "rules-b"} {
		if _, err := e.m.Setup(ctx, id, atts, nil); err != nil {
			t.Fatal(err)
		}
		e.teardownOnCleanup(id, atts, nil)
	}
	if got := hostRuleLines(n); len(got) != 3 {
		t.Fatalf("with two containers: %d rules, want 3 (once per network): %q", len(got), got)
	}
	for _, id := range []string{"rules-a", "rules-b"} {
		if err := e.m.Teardown(ctx, id, atts, nil); err != nil {
			t.Fatal(err)
		}
	}
	// (assertGone checks the whole network: once both are gone.)
	e.assertGone("rules-a", n)
	e.assertGone("rules-b", n)
	if got := hostRuleLines(n); len(got) != 3 {
		t.Errorf("after the containers: %d rules, want the network's 3", len(got))
	}
	// A flush (or a reboot) loses them: the next setup puts them back.
	r := hostRules(n)[0]
	if err := iptables(ctx, append([]string{"-t", r.table, "-D", r.chain}, r.spec...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Setup(ctx, "rules-c", atts, nil); err != nil {
		t.Fatal(err)
	}
	e.teardownOnCleanup("rules-c", atts, nil)
	if got := hostRuleLines(n); len(got) != 3 {
		t.Errorf("after a rule was deleted and a container set up: %d rules, want 3", len(got))
	}
	if err := e.m.Teardown(ctx, "rules-c", atts, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Remove(n.Name); err != nil {
		t.Fatal(err)
	}
	if got := hostRuleLines(n); len(got) != 0 {
		t.Errorf("after network rm: %q", got)
	}
}
