package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/sys/mountinfo"
)

// pushVariant pushes the test busybox under another tag with its image
// config changed by change, and returns the new reference.
func pushVariant(t *testing.T, tag string, change func(cf *v1.Config)) string {
	t.Helper()
	src, err := name.ParseReference(img(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	base, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	change(&cf.Config)
	variant, err := mutate.ConfigFile(base, cf)
	if err != nil {
		t.Fatal(err)
	}
	ref := regAddr + "/busybox:" + tag
	dst, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, variant); err != nil {
		t.Fatal(err)
	}
	return ref
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// waitLog waits until the container's log holds text n times.
func (e *env) waitLog(ctr, text string, n int) {
	e.t.Helper()
	if !waitFor(10*time.Second, func() bool {
		out, errOut, _ := e.hull("logs", ctr)
		return strings.Count(out+errOut, text) >= n
	}) {
		out, errOut, _ := e.hull("logs", ctr)
		e.t.Fatalf("%s: %q not logged %d times in 10 s: %q %q", ctr, text, n, out, errOut)
	}
}

// inspect is one `hull inspect --format` value, trimmed.
func (e *env) inspect(ctr, format string) string {
	e.t.Helper()
	return strings.TrimSpace(e.must("inspect", "--format", format, ctr))
}

// containerIPv4 is the address of eth0 inside a running container, read
// with busybox's ip applet: `hull inspect` has no NetworkSettings.
func (e *env) containerIPv4(ctr string) net.IP {
	e.t.Helper()
	out := e.must("exec", ctr, "busybox", "ip", "-o", "-4", "addr", "show", "dev", "eth0")
	m := regexp.MustCompile(`inet (\d+\.\d+\.\d+\.\d+)/`).FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("%s: no IPv4 address on eth0: %q", ctr, out)
	}
	return net.ParseIP(m[1])
}

// hostPeerIndex is the host ifindex of the veth peer of the container's
// eth0 ("eth0@ifN"), to find that veth on the host later.
func (e *env) hostPeerIndex(ctr string) int {
	e.t.Helper()
	out := e.must("exec", ctr, "busybox", "ip", "-o", "link", "show", "dev", "eth0")
	m := regexp.MustCompile(`eth0@if(\d+)`).FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("%s: eth0 is not a veth: %q", ctr, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// hostLinkExists reports whether the host has a link with this ifindex.
func hostLinkExists(t *testing.T, index int) bool {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, strconv.Itoa(index)+": ") {
			return true
		}
	}
	return false
}

// containerCgroups lists the cgroup directories of a container under this
// test binary's cgroup parent, in every hierarchy.
func containerCgroups(id string) []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroupParent + "/" + id)
	if _, err := os.Stat("/sys/fs/cgroup" + cgroupParent + "/" + id); err == nil {
		dirs = append(dirs, "/sys/fs/cgroup"+cgroupParent+"/"+id)
	}
	return dirs
}

// iptablesRules returns the rules in iptables-save that match re.
func iptablesRules(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var hits []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A ") && re.MatchString(l) {
			hits = append(hits, l)
		}
	}
	return hits
}

// checkNothingLeft fails t for anything a removed container could leave on
// the host: mounts, network namespaces, network records, cgroups, iptables
// rules naming its id or address.
func (e *env) checkNothingLeft(id string, ip net.IP) {
	t := e.t
	t.Helper()
	if ps := e.must("ps", "-a", "-q", "--no-trunc"); strings.Contains(ps, id) {
		t.Errorf("container %.12s still listed", id)
	}
	for _, dir := range []string{e.root, filepath.Join(e.runroot, "containers")} {
		ms, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		for _, m := range ms {
			if strings.Contains(m.Mountpoint, id) {
				t.Errorf("left mounted: %s", m.Mountpoint)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(e.runroot, "netns", id)); err == nil {
		t.Errorf("netns file of %.12s left", id)
	}
	if _, err := os.Lstat(filepath.Join(e.runroot, "network", "containers", id+".json")); err == nil {
		t.Errorf("network record of %.12s left", id)
	}
	for _, d := range containerCgroups(id) {
		t.Errorf("cgroup left: %s", d)
	}
	// Per-container rules (portmap's, the CNI plugins') name its id or
	// its own address.
	re := regexp.QuoteMeta(id)
	if ip != nil {
		re += "|" + regexp.QuoteMeta(ip.String()+"/32")
	}
	for _, l := range iptablesRules(t, regexp.MustCompile(re)) {
		t.Errorf("iptables rule left: %s", l)
	}
}

func TestTwentyParallelDetachedRunsAllSucceed(t *testing.T) {
	e := newEnv(t)
	const n = 20
	names := make([]string, n)
	ids := make([]string, n)
	fails := make([]string, n)
	var wg sync.WaitGroup
	// No pull first: the twenty also race to pull and unpack the image.
	for i := range n {
		names[i] = fmt.Sprintf("p%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut, err := e.hull("run", "-d", "--name", names[i], img(), "sleep", "60")
			if err != nil {
				fails[i] = fmt.Sprintf("run %s: %v: %s", names[i], err, errOut)
			}
			ids[i] = strings.TrimSpace(out)
		}()
	}
	wg.Wait()
	for _, f := range fails {
		if f != "" {
			t.Error(f)
		}
	}
	if t.Failed() {
		return
	}
	listed := map[string]bool{}
	for _, id := range strings.Fields(e.must("ps", "-q", "--no-trunc")) {
		listed[id] = true
	}
	if len(listed) != n {
		t.Errorf("ps -q lists %d distinct containers, want %d", len(listed), n)
	}
	for i, id := range ids {
		if !listed[id] {
			t.Errorf("%s (%q) is not listed as running", names[i], id)
		}
	}
	// One address each on the default network, and the container's hosts
	// file names it at that address.
	_, defaultNet, _ := net.ParseCIDR("10.87.0.0/16")
	owner := map[string]string{}
	ips := make([]net.IP, n)
	peers := make([]int, n)
	for i, ctr := range names {
		ip := e.containerIPv4(ctr)
		ips[i], peers[i] = ip, e.hostPeerIndex(ctr)
		if !defaultNet.Contains(ip) {
			t.Errorf("%s: %s is not on the default network %s", ctr, ip, defaultNet)
		}
		if other, dup := owner[ip.String()]; dup {
			t.Errorf("%s and %s both have %s", other, ctr, ip)
		}
		owner[ip.String()] = ctr
		if hosts := e.must("exec", ctr, "cat", "/etc/hosts"); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ip.String()) + `\s.*\b` + ctr + `\b`).MatchString(hosts) {
			t.Errorf("%s: /etc/hosts does not name it at %s:\n%s", ctr, ip, hosts)
		}
	}
	// Removed at once too.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, errOut, err := e.hull("rm", "-f", names[i]); err != nil {
				fails[i] = fmt.Sprintf("rm -f %s: %v: %s", names[i], err, errOut)
			}
		}()
	}
	wg.Wait()
	for _, f := range fails {
		if f != "" {
			t.Error(f)
		}
	}
	if ps := e.must("ps", "-a", "-q"); strings.TrimSpace(ps) != "" {
		t.Errorf("rm -f left %q", ps)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.runroot, "netns")); len(entries) != 0 {
		t.Errorf("network namespaces left: %d", len(entries))
	}
	for i, id := range ids {
		e.checkNothingLeft(id, ips[i])
		if hostLinkExists(t, peers[i]) {
			t.Errorf("%s: its host veth (ifindex %d) is still there", names[i], peers[i])
		}
	}
}

// stopTimed runs `hull stop args...` and returns how long it took.
func (e *env) stopTimed(args ...string) time.Duration {
	e.t.Helper()
	start := time.Now()
	e.must(append([]string{"stop"}, args...)...)
	return time.Since(start)
}

func TestStopUsesTheStopSignalAndTimeout(t *testing.T) {
	e := newEnv(t)
	// A shell as PID 1 gets only the signals it has a handler for: a stop
	// with the wrong signal would wait for the timeout and SIGKILL (137).
	const loop = "echo ready; while :; do sleep 0.1; done"
	stopSig := pushVariant(t, "stopsignal", func(c *v1.Config) { c.StopSignal = "SIGUSR2" })

	e.must("run", "-d", "--name", "usr1", "--stop-signal", "USR1", img(), "sh", "-c", "trap 'exit 9' USR1; "+loop)
	e.must("run", "-d", "--name", "deaf", img(), "sh", "-c", "trap '' TERM; "+loop)
	e.must("run", "-d", "--name", "deaf-timeout", "--stop-timeout", "1", img(), "sh", "-c", "trap '' TERM; "+loop)
	e.must("run", "-d", "--name", "image-signal", stopSig, "sh", "-c", "trap 'exit 12' USR2; "+loop)
	e.must("run", "-d", "--name", "flag-over-image", "--stop-signal", "USR1", stopSig, "sh", "-c", "trap 'exit 9' USR1; trap 'exit 12' USR2; "+loop)
	for _, c := range []string{"usr1", "deaf", "deaf-timeout", "image-signal", "flag-over-image"} {
		e.waitLog(c, "ready", 1)
	}

	t.Run("--stop-signal", func(t *testing.T) {
		if d := e.stopTimed("usr1"); d > 3*time.Second {
			t.Errorf("stop took %v: USR1 was not sent", d)
		}
		if code := e.inspect("usr1", "{{.State.Status}} {{.State.ExitCode}}"); code != "exited 9" {
			t.Errorf("after stop: %q, want exited 9 (the USR1 trap)", code)
		}
	})
	t.Run("stop -t kills after the timeout", func(t *testing.T) {
		d := e.stopTimed("-t", "1", "deaf")
		if d < time.Second || d >= 5*time.Second {
			t.Errorf("stop -t 1 took %v, want 1 s to 5 s", d)
		}
		if code := e.inspect("deaf", "{{.State.Status}} {{.State.ExitCode}}"); code != "exited 137" {
			t.Errorf("after stop: %q, want exited 137 (SIGKILL)", code)
		}
	})
	t.Run("--stop-timeout at run", func(t *testing.T) {
		d := e.stopTimed("deaf-timeout")
		if d < time.Second || d >= 5*time.Second {
			t.Errorf("stop of a --stop-timeout 1 container took %v, want 1 s to 5 s", d)
		}
		if code := e.inspect("deaf-timeout", "{{.State.Status}} {{.State.ExitCode}}"); code != "exited 137" {
			t.Errorf("after stop: %q, want exited 137 (SIGKILL)", code)
		}
	})
	t.Run("the image's StopSignal", func(t *testing.T) {
		if d := e.stopTimed("image-signal"); d > 3*time.Second {
			t.Errorf("stop took %v: the image's SIGUSR2 was not sent", d)
		}
		if code := e.inspect("image-signal", "{{.State.Status}} {{.State.ExitCode}}"); code != "exited 12" {
			t.Errorf("after stop: %q, want exited 12 (the USR2 trap)", code)
		}
	})
	t.Run("--stop-signal over the image's", func(t *testing.T) {
		if d := e.stopTimed("flag-over-image"); d > 3*time.Second {
			t.Errorf("stop took %v", d)
		}
		if code := e.inspect("flag-over-image", "{{.State.Status}} {{.State.ExitCode}}"); code != "exited 9" {
			t.Errorf("after stop: %q, want exited 9 (USR1 from the flag, not the image's USR2)", code)
		}
	})
}

// healthOf is the health status inspect shows, "none" without a check.
func (e *env) healthOf(ctr string) string {
	e.t.Helper()
	return e.inspect(ctr, "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}")
}

// healthSequence polls the health status until want shows or d passes and
// returns the distinct statuses seen, in order.
func (e *env) healthSequence(ctr, want string, d time.Duration) []string {
	e.t.Helper()
	var seen []string
	waitFor(d, func() bool {
		h := e.healthOf(ctr)
		if len(seen) == 0 || seen[len(seen)-1] != h {
			seen = append(seen, h)
		}
		return h == want
	})
	return seen
}

func TestHealthcheckStatus(t *testing.T) {
	e := newEnv(t)
	t.Run("--health-cmd", func(t *testing.T) {
		// Docker's rules: Retries failures in a row make the container
		// unhealthy, except during the start period while it never was
		// healthy. With checks every 200 ms and /tmp/ok made after 1 s,
		// the start period is what keeps it "starting" until then.
		e.must("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "200ms", "--health-retries", "2",
			"--health-start-period", "5s", img(), "sh", "-c", "sleep 1; : > /tmp/ok; while :; do sleep 0.1; done")
		// Right after run: a check is configured, so it is starting.
		if h := e.healthOf("hc"); h != "starting" {
			t.Errorf("right after run: health %q, want starting", h)
		}
		if seq := e.healthSequence("hc", "healthy", 10*time.Second); strings.Join(seq, " ") != "starting healthy" {
			t.Fatalf("health went %v, want starting then healthy", seq)
		}
		e.must("exec", "hc", "busybox", "rm", "/tmp/ok")
		if seq := e.healthSequence("hc", "unhealthy", 10*time.Second); strings.Join(seq, " ") != "healthy unhealthy" {
			t.Fatalf("after rm /tmp/ok health went %v, want healthy then unhealthy", seq)
		}
		if streak, _ := strconv.Atoi(e.inspect("hc", "{{.State.Health.FailingStreak}}")); streak < 2 {
			t.Errorf("failing streak %d, want at least 2 (--health-retries)", streak)
		}
		if out := e.inspect("hc", "{{range .State.Health.Log}}{{.ExitCode}} {{end}}"); !strings.HasSuffix(out, "1 1") {
			t.Errorf("health log exit codes %q, want the last two failed (1)", out)
		}
	})
	t.Run("failures before the first success count without a start period", func(t *testing.T) {
		e.must("run", "-d", "--name", "hc-early", "--health-cmd", "test -f /tmp/ok", "--health-interval", "200ms", "--health-retries", "2",
			img(), "sh", "-c", "sleep 3; : > /tmp/ok; while :; do sleep 0.1; done")
		if seq := e.healthSequence("hc-early", "healthy", 10*time.Second); strings.Join(seq, " ") != "starting unhealthy healthy" {
			t.Fatalf("health went %v, want starting, unhealthy (2 failures), then healthy", seq)
		}
	})
	withHealth := pushVariant(t, "healthcheck", func(c *v1.Config) {
		c.Healthcheck = &v1.HealthConfig{Test: []string{"CMD-SHELL", "test -f /tmp/ok"}, Interval: 200 * time.Millisecond, Retries: 1}
	})
	t.Run("the image's HEALTHCHECK", func(t *testing.T) {
		e.must("run", "-d", "--name", "img-hc", withHealth, "sh", "-c", ": > /tmp/ok; while :; do sleep 0.1; done")
		if seq := e.healthSequence("img-hc", "healthy", 10*time.Second); seq[len(seq)-1] != "healthy" {
			t.Fatalf("health went %v, want healthy", seq)
		}
		e.must("exec", "img-hc", "busybox", "rm", "/tmp/ok")
		if seq := e.healthSequence("img-hc", "unhealthy", 10*time.Second); seq[len(seq)-1] != "unhealthy" {
			t.Fatalf("after rm /tmp/ok health went %v, want unhealthy (Retries 1)", seq)
		}
	})
	t.Run("--no-healthcheck", func(t *testing.T) {
		e.must("run", "-d", "--name", "no-hc", "--no-healthcheck", withHealth, "sh", "-c", "while :; do sleep 0.1; done")
		// Five intervals of the image's check.
		time.Sleep(time.Second)
		if h := e.healthOf("no-hc"); h != "none" {
			t.Errorf("--no-healthcheck: health %q, want none", h)
		}
	})
}

func TestAFailingCNIPluginLeavesNothing(t *testing.T) {
	for _, c := range []struct {
		name   string
		plugin map[string]any
		want   string // in the error
	}{
		// Last in the chain: bridge and portmap (the run publishes a port)
		// have run, so there is a veth, an address and DNAT rules to undo.
		{"a plugin that is not installed", map[string]any{"type": "hull-e2e-no-such-plugin"}, "hull-e2e-no-such-plugin"},
		// An installed plugin that fails with a CNI error: tuning refuses
		// a sysctl outside the container's interface set. Its dataDir
		// keeps its backups in the test's dir.
		{"a plugin that returns an error", map[string]any{"type": "tuning", "sysctl": map[string]string{"net.ipv4.conf.eth0.hull_e2e_no_such": "1"}}, "hull_e2e_no_such"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			if c.plugin["type"] == "tuning" {
				c.plugin["dataDir"] = filepath.Join(t.TempDir(), "tuning")
			}
			const subnet = "10.250.93.0/24"
			e.must("network", "create", "--subnet", subnet, "e2enet")
			conf := filepath.Join(e.root, "networks", "e2enet.conflist")
			var doc map[string]any
			data, err := os.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			doc["plugins"] = append(doc["plugins"].([]any), c.plugin)
			bridge := doc["hull"].(map[string]any)["bridge"].(string)
			if data, err = json.Marshal(doc); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(conf, data, 0o644); err != nil {
				t.Fatal(err)
			}
			vethsBefore := hostVeths(t)

			_, errOut, err := e.hull("run", "--rm", "--network", "e2enet", "-p", fmt.Sprintf("127.0.0.1:%d:80", freePort(t)), img(), "true")
			if err == nil {
				t.Fatal("run on a network whose plugin fails succeeded")
			}
			if !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "e2enet") {
				t.Errorf("error %q does not name the plugin (%s) and the network", errOut, c.want)
			}
			// The bridge plugin made the bridge: the failure came after it
			// had plugged a veth in and reserved an address.
			if exec.Command("ip", "link", "show", bridge).Run() != nil {
				t.Fatalf("no bridge %s: the chain failed before the bridge plugin ran, nothing was there to undo", bridge)
			}
			if ps := e.must("ps", "-a", "-q"); strings.TrimSpace(ps) != "" {
				t.Errorf("left container %q", ps)
			}
			if entries, _ := os.ReadDir(filepath.Join(e.runroot, "netns")); len(entries) != 0 {
				t.Errorf("network namespaces left: %d", len(entries))
			}
			for _, dir := range []string{"containers", "networks"} {
				entries, _ := os.ReadDir(filepath.Join(e.runroot, "network", dir))
				for _, f := range entries {
					if !strings.HasSuffix(f.Name(), ".lock") {
						t.Errorf("network state left: %s/%s", dir, f.Name())
					}
				}
			}
			if reserved, _ := os.ReadDir(filepath.Join(e.runroot, "network", "ipam", "e2enet")); len(reserved) > 0 {
				for _, f := range reserved {
					if net.ParseIP(f.Name()) != nil {
						t.Errorf("address still reserved: %s", f.Name())
					}
				}
			}
			if entries, _ := os.ReadDir(filepath.Join(e.runroot, "cni-cache", "results")); len(entries) != 0 {
				t.Errorf("CNI results cached: %d", len(entries))
			}
			// Per-container rules name the container (portmap's comments;
			// the error gives its id), its address in the subnet or, in the
			// CNI plugins' comments, the network; the network's own rules
			// (its subnet, "hull network e2enet") stay until network rm.
			re := `10\.250\.93\.\d+/32|name: \\"e2enet\\"`
			if id := regexp.MustCompile(`[0-9a-f]{64}`).FindString(errOut); id != "" {
				re += "|" + id
			}
			for _, l := range iptablesRules(t, regexp.MustCompile(re)) {
				t.Errorf("iptables rule left: %s", l)
			}
			if out, _ := exec.Command("ip", "-o", "link", "show", "master", bridge).Output(); len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("links left on %s: %s", bridge, out)
			}
			if after := hostVeths(t); after != vethsBefore {
				t.Errorf("host veths: %d before, %d after", vethsBefore, after)
			}
			if out, errOut, err := e.hull("network", "rm", "e2enet"); err != nil {
				t.Errorf("network rm: %v %s %s", err, out, errOut)
			}
			if exec.Command("ip", "link", "show", bridge).Run() == nil {
				t.Errorf("bridge %s left after network rm", bridge)
			}
			for _, l := range iptablesRules(t, regexp.MustCompile(`e2enet|10\.250\.93\.`)) {
				t.Errorf("iptables rule left after network rm: %s", l)
			}
		})
	}
}

// hostVeths counts the host's veth links.
func hostVeths(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

// hullCmd is the command e.hull runs, for callers that start it themselves.
func (e *env) hullCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, "hull"), append([]string{"--root", e.root, "--runroot", e.runroot, "--registries-conf", "/nonexistent"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
	return cmd
}

// alive reports whether pid is a live process (not gone, not a zombie:
// this host's init reaps nothing, so orphans stay zombies).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	f := strings.Fields(string(data[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		t.Fatalf("%s: %q", path, data)
	}
	return pid
}

// killMonitor SIGKILLs a container's monitor and waits until it is dead.
func (e *env) killMonitor(id string) {
	e.t.Helper()
	mon := readPid(e.t, filepath.Join(e.runroot, "containers", id, "monitor.pid"))
	if err := syscall.Kill(mon, syscall.SIGKILL); err != nil {
		e.t.Fatalf("kill the monitor %d: %v", mon, err)
	}
	if !waitFor(5*time.Second, func() bool { return !alive(mon) }) {
		e.t.Fatalf("monitor %d survived SIGKILL", mon)
	}
}

// splitRule splits an iptables-save rule into arguments (double quotes
// group, backslash escapes inside them).
func splitRule(s string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQuote, have = !inQuote, true
		case c == ' ' && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}

// forgetIPTables deletes what a reboot takes from iptables for one
// container: the rules naming its id or its /32 address, and the per-
// container chains they jump to. Rule by rule with -D, not a table
// restore, so that nobody else's rules on this host are touched.
func forgetIPTables(t *testing.T, id string, ip net.IP) {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	shared := map[string]bool{"CNI-FORWARD": true, "CNI-ADMIN": true, "CNI-HOSTPORT-DNAT": true, "CNI-HOSTPORT-MASQ": true, "CNI-HOSTPORT-SETMARK": true}
	table := ""
	chains := map[string][]string{} // table -> per-container chains
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "*") {
			table = l[1:]
			continue
		}
		if !strings.HasPrefix(l, "-A ") || !(strings.Contains(l, id) || strings.Contains(l, ip.String()+"/32")) {
			continue
		}
		args := splitRule(l)
		args[0] = "-D"
		for i, a := range args {
			if (a == "-j" || a == "-g") && i+1 < len(args) && strings.HasPrefix(args[i+1], "CNI-") && !shared[args[i+1]] {
				chains[table] = append(chains[table], args[i+1])
			}
		}
		if out, err := exec.Command("iptables", append([]string{"-t", table}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("iptables -t %s %q: %v %s", table, args, err, out)
		}
	}
	for table, cs := range chains {
		for _, c := range cs {
			_ = exec.Command("iptables", "-t", table, "-F", c).Run()
			_ = exec.Command("iptables", "-t", table, "-X", c).Run()
		}
	}
}

// simulateReboot does to one running container what a reboot does: its
// monitor and processes die without recording an exit, the per-boot
// runroot (runtime state, mounts, netns, network state) vanishes, the
// kernel's iptables rules and cgroups go, and the boot id changes.
func (e *env) simulateReboot(id string, ip net.IP) {
	t := e.t
	t.Helper()
	pid, _ := strconv.Atoi(e.inspect(id, "{{.State.Pid}}"))
	e.killMonitor(id)
	rt, rtRoot := filepath.Join(binDir, "hull-runtime"), filepath.Join(e.runroot, "runtime")
	if out, err := exec.Command(rt, "--root", rtRoot, "kill", "--all", id, "KILL").CombinedOutput(); err != nil {
		t.Fatalf("hull-runtime kill: %v %s", err, out)
	}
	if !waitFor(5*time.Second, func() bool { return !alive(pid) }) {
		t.Fatalf("container init %d survived SIGKILL", pid)
	}
	if out, err := exec.Command(rt, "--root", rtRoot, "delete", "--force", id).CombinedOutput(); err != nil {
		t.Fatalf("hull-runtime delete: %v %s", err, out)
	}
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(e.runroot))
	if err != nil {
		t.Fatal(err)
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if err := syscall.Unmount(ms[i].Mountpoint, syscall.MNT_DETACH); err != nil {
			t.Fatalf("unmount %s: %v", ms[i].Mountpoint, err)
		}
	}
	if err := os.RemoveAll(e.runroot); err != nil {
		t.Fatal(err)
	}
	forgetIPTables(t, id, ip)
	for _, d := range containerCgroups(id) {
		t.Fatalf("cgroup left after the runtime's delete: %s", d)
	}
	rec := filepath.Join(e.root, "containers", id, "container.json")
	data, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if c["boot"] != strings.TrimSpace(string(boot)) {
		t.Fatalf("the record's boot id %v is not this boot's %s", c["boot"], boot)
	}
	uuid, _ := os.ReadFile("/proc/sys/kernel/random/uuid")
	c["boot"] = strings.TrimSpace(string(uuid))
	if data, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAfterARebootPsShowsExitedAndRmCleansUp(t *testing.T) {
	t.Run("reboot", func(t *testing.T) {
		e := newEnv(t)
		// A published port: portmap's per-container rules go with the
		// reboot and come back with the start.
		port := freePort(t)
		id := strings.TrimSpace(e.must("run", "-d", "--name", "boot", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), img(),
			"sh", "-c", "echo started; while :; do echo served | nc -l -p 8080; done"))
		e.waitLog("boot", "started", 1)
		if got := dialUntil(port, "served"); !strings.Contains(got, "served") {
			t.Fatalf("port %d answered %q before the reboot", port, got)
		}
		if len(iptablesRules(t, regexp.MustCompile(id))) == 0 {
			t.Fatal("no iptables rule names the container: the check after rm would prove nothing")
		}
		e.simulateReboot(id, e.containerIPv4("boot"))

		if st := strings.TrimSpace(e.must("ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}")); !strings.HasPrefix(st, "boot exited Exited") {
			t.Errorf("ps -a after the reboot: %q, want boot exited Exited ...", st)
		}
		if ps := e.must("ps", "-q"); strings.TrimSpace(ps) != "" {
			t.Errorf("ps lists %q as running after the reboot", ps)
		}
		if msg := e.inspect("boot", "{{.State.Error}}"); !strings.Contains(msg, "reboot") {
			t.Errorf("inspect's State.Error %q does not say the host rebooted", msg)
		}
		if code := strings.TrimSpace(e.must("wait", "boot")); code != "-1" {
			t.Errorf("wait printed %q, want -1 (unknown)", code)
		}

		e.must("start", "boot")
		e.waitLog("boot", "started", 2)
		if st := e.inspect("boot", "{{.State.Status}}"); st != "running" {
			t.Errorf("after start: %q", st)
		}
		ip := e.containerIPv4("boot") // its network is set up again
		if got := dialUntil(port, "served"); !strings.Contains(got, "served") {
			t.Errorf("port %d answered %q after the restart", port, got)
		}
		e.must("rm", "-f", "boot")
		e.checkNothingLeft(id, ip)
		if entries, _ := os.ReadDir(filepath.Join(e.runroot, "netns")); len(entries) != 0 {
			t.Errorf("network namespaces left: %d", len(entries))
		}
	})

	// Without a reboot the init outlives its SIGKILLed monitor. As with
	// Podman, the container is running as long as that process lives;
	// then it is exited, with an unknown code.
	t.Run("monitor SIGKILLed", func(t *testing.T) {
		e := newEnv(t)
		const loop = "echo started; while :; do sleep 0.1; done"
		ids := map[string]string{}
		pids := map[string]int{}
		ips := map[string]net.IP{}
		for _, c := range []string{"orphan", "orphan-rm"} {
			ids[c] = strings.TrimSpace(e.must("run", "-d", "--name", c, img(), "sh", "-c", loop))
			e.waitLog(c, "started", 1)
			pids[c], _ = strconv.Atoi(e.inspect(c, "{{.State.Pid}}"))
			ips[c] = e.containerIPv4(c)
			e.killMonitor(ids[c])
		}
		if st := e.must("ps", "--format", "{{.Names}} {{.State}}"); !strings.Contains(st, "orphan running") || !strings.Contains(st, "orphan-rm running") {
			t.Errorf("ps with the monitors gone and the processes alive: %q, want both running", st)
		}

		// wait follows the container, not the monitor.
		wait := e.hullCmd("wait", "orphan")
		var waitOut bytes.Buffer
		wait.Stdout = &waitOut
		if err := wait.Start(); err != nil {
			t.Fatal(err)
		}
		waited := make(chan error, 1)
		go func() { waited <- wait.Wait() }()
		waitedEarly := false
		select {
		case err := <-waited:
			waitedEarly = true
			t.Errorf("wait returned (%v, %q) while the container runs", err, waitOut.String())
		case <-time.After(time.Second):
		}
		if err := syscall.Kill(pids["orphan"], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !waitFor(5*time.Second, func() bool {
			st := e.must("ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}", "--filter", "name=orphan")
			return strings.Contains(st, "orphan exited Exited")
		}) {
			t.Errorf("ps -a 5 s after the init died: %q", e.must("ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"))
		}
		if !waitedEarly {
			select {
			case err := <-waited:
				if err != nil || strings.TrimSpace(waitOut.String()) != "-1" {
					t.Errorf("wait: %v, printed %q, want -1 (unknown)", err, waitOut.String())
				}
			case <-time.After(5 * time.Second):
				_ = wait.Process.Kill()
				<-waited
				t.Error("wait did not return after the container died")
			}
		}
		if msg := e.inspect("orphan", "{{.State.Error}}"); !strings.Contains(msg, "monitor") {
			t.Errorf("inspect's State.Error %q does not say the monitor is gone", msg)
		}
		e.must("rm", "orphan")
		e.checkNothingLeft(ids["orphan"], ips["orphan"])

		// Running, so rm needs -f; rm -f kills a container its monitor
		// no longer follows.
		if _, _, err := e.hull("rm", "orphan-rm"); err == nil {
			t.Error("rm without -f removed a running container")
		}
		e.must("rm", "-f", "orphan-rm")
		if alive(pids["orphan-rm"]) {
			t.Errorf("rm -f left the init %d running", pids["orphan-rm"])
		}
		e.checkNothingLeft(ids["orphan-rm"], ips["orphan-rm"])
		if entries, _ := os.ReadDir(filepath.Join(e.runroot, "netns")); len(entries) != 0 {
			t.Errorf("network namespaces left: %d", len(entries))
		}
	})
}

// freePort returns a TCP port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// dialUntil connects to 127.0.0.1:port until it reads want, for at most
// 10 s, and returns what it read last.
func dialUntil(port int, want string) string {
	var got string
	waitFor(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		got = string(b)
		return strings.Contains(got, want)
	})
	return got
}

// curlUntil GETs url with curl until it answers 200 with the nginx
// welcome page, for at most 15 s, and returns the last output.
func curlUntil(t *testing.T, url string) (string, bool) {
	t.Helper()
	var last string
	ok := waitFor(15*time.Second, func() bool {
		out, err := exec.Command("curl", "-sS", "--max-time", "2", "-w", "\n%{http_code}", url).CombinedOutput()
		last = string(out)
		return err == nil && strings.HasSuffix(last, "\n200") && strings.Contains(last, "Welcome to nginx!")
	})
	return last, ok
}

func TestCurlReachesAPublishedPort(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	reg := seedRegistry(t)
	e := newEnv(t)
	nginx := reg + "/e2e-test-images/nginx:1.14-2"

	t.Run("-p 127.0.0.1:PORT:80", func(t *testing.T) {
		port := freePort(t)
		e.must("run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), nginx)
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		if out, ok := curlUntil(t, url); !ok {
			t.Fatalf("curl %s: %q", url, out)
		}
		e.must("rm", "-f", "web")
		if out, err := exec.Command("curl", "-sS", "--max-time", "2", url).CombinedOutput(); err == nil {
			t.Errorf("curl %s after rm answered %q", url, out)
		}
	})
	t.Run("-P", func(t *testing.T) {
		_, errOut, err := e.hull("run", "-d", "--name", "web-all", "-P", "--expose", "9000/udp", nginx)
		if err != nil {
			t.Fatalf("run -P: %v %s", err, errOut)
		}
		ports := e.must("port", "web-all")
		m := regexp.MustCompile(`(?m)^80/tcp -> ([0-9.]+):(\d+)$`).FindStringSubmatch(ports)
		if m == nil {
			t.Fatalf("port printed %q, want 80/tcp -> IP:PORT", ports)
		}
		if !regexp.MustCompile(`(?m)^9000/udp -> 0\.0\.0\.0:\d+$`).MatchString(ports) {
			t.Errorf("--expose 9000/udp with -P: port printed %q", ports)
		}
		// Docker's one-port form, and inspect's NetworkSettings agree.
		if one := strings.TrimSpace(e.must("port", "web-all", "80/tcp")); one != m[1]+":"+m[2] {
			t.Errorf("port web-all 80/tcp: %q, want %s:%s", one, m[1], m[2])
		}
		if hp := strings.TrimSpace(e.must("inspect", "--format", `{{(index .NetworkSettings.Ports "80/tcp" 0).HostPort}} {{.NetworkSettings.IPAddress}}`, "web-all")); !strings.HasPrefix(hp, m[2]+" 10.") {
			t.Errorf("inspect NetworkSettings: %q", hp)
		}
		host := m[1]
		if host == "0.0.0.0" {
			host = "127.0.0.1"
		}
		url := fmt.Sprintf("http://%s:%s/", host, m[2])
		if out, ok := curlUntil(t, url); !ok {
			t.Fatalf("curl %s: %q", url, out)
		}
		e.must("rm", "-f", "web-all")
	})
}
