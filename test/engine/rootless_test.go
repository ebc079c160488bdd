package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rootlessEnv is hull run by an unprivileged user (../shared/vm/
// rootless-user.sh's rootlesstest, with subordinate ids) with private
// XDG dirs: the engine enters the user's own user and mount namespaces.
type rootlessEnv struct {
	t        *testing.T
	uid, gid int
	bin      string
	home     string
	runDir   string
}

func newRootlessEnv(t *testing.T) *rootlessEnv {
	t.Helper()
	u, err := user.Lookup("rootlesstest")
	if err != nil {
		t.Skip("no user rootlesstest (../shared/vm/rootless-user.sh makes one)")
	}
	for _, tool := range []string{"newuidmap", "newgidmap", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := t.TempDir()
	// The user must reach the binaries: the per-test dir and its parent.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := &rootlessEnv{t: t, uid: uid, gid: gid, bin: filepath.Join(dir, "bin"), home: filepath.Join(dir, "home"), runDir: filepath.Join(dir, "run")}
	// The test binaries live in a root-only temp dir: a copy the user can run.
	if err := os.Mkdir(e.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"hull", "hull-monitor", "hull-runtime"} {
		data, err := os.ReadFile(filepath.Join(binDir, b))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.bin, b), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{e.home, e.runDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(e.cleanup)
	return e
}

// hull runs hull as the user, with its default (rootless) storage paths.
func (e *rootlessEnv) hull(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.bin, "hull"), append([]string{"--registries-conf", "/nonexistent"}, args...)...)
	cmd.Env = []string{"PATH=" + e.bin + ":/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + e.home, "XDG_RUNTIME_DIR=" + e.runDir, "USER=rootlesstest"}
	cmd.Dir = e.home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.gid)}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (e *rootlessEnv) must(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.hull(args...)
	if err != nil {
		e.t.Fatalf("hull %s (as rootlesstest): %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// pausePid is the user's pause process, 0 if none.
func (e *rootlessEnv) pausePid() int {
	b, err := os.ReadFile(filepath.Join(e.runDir, "hull", "pause.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
	return pid
}

// cleanup removes the user's containers, then ends the pause process (its
// mounts go with its mount namespace) and checks nothing of the user's is
// left running.
func (e *rootlessEnv) cleanup() {
	out, _, _ := e.hull("ps", "-a", "-q", "--no-trunc")
	for _, id := range strings.Fields(out) {
		_, _, _ = e.hull("rm", "-f", id)
	}
	if pid := e.pausePid(); pid > 0 {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := e.processes()
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Errorf("processes of this test's rootless engine left: %v", left)
			for pid := range left {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processes are the user's processes that belong to this test: the pause
// process and whatever names the test's directories (monitors, runtimes,
// slirp4netns).
func (e *rootlessEnv) processes() map[int]string {
	out := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	pause := e.pausePid()
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fi, err := os.Stat("/proc/" + d.Name())
		if err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(e.uid) {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		line := strings.ReplaceAll(string(cmd), "\x00", " ")
		if pid == pause || strings.Contains(line, filepath.Dir(e.bin)) {
			out[pid] = line
		}
	}
	return out
}

func TestRootlessRunsContainersInTheUsersNamespace(t *testing.T) {
	e := newRootlessEnv(t)
	out, errOut, err := e.hull("run", "--rm", "--network", "none", img(), "sh", "-c", "id -u; cat /proc/self/uid_map; exit 3")
	if exitCode(err) != 3 {
		t.Fatalf("exit %d (%v): %s%s", exitCode(err), err, out, errOut)
	}
	// Root in the container is the user on the host, the rest subordinate ids.
	f := strings.Fields(out)
	if len(f) < 4 || f[0] != "0" || f[1] != "0" || f[2] != strconv.Itoa(e.uid) || f[3] != "1" {
		t.Errorf("id and uid_map: %q", out)
	}
	pause := e.pausePid()
	if pause == 0 {
		t.Fatal("no pause process recorded")
	}
	st, err := os.Stat("/proc/" + strconv.Itoa(pause))
	if err != nil || st.Sys().(*syscall.Stat_t).Uid != uint32(e.uid) {
		t.Fatalf("pause process %d: %v", pause, err)
	}

	// A second command joins the same namespaces: the image pulled by the
	// first is there, the detached container's mounts survive between commands.
	e.must("run", "-d", "--name", "bg", "--network", "none", img(), "sh", "-c", "echo started; while :; do sleep 0.1; done")
	if got := e.pausePid(); got != pause {
		t.Errorf("pause process changed: %d then %d", pause, got)
	}
	if ps := e.must("ps", "--format", "{{.Names}} {{.State}}"); strings.TrimSpace(ps) != "bg running" {
		t.Errorf("ps: %q", ps)
	}
	if out := e.must("exec", "bg", "cat", "/etc/hostname"); strings.TrimSpace(out) == "" {
		t.Error("exec printed nothing")
	}
	start := time.Now()
	e.must("stop", "-t", "1", "bg")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v", d)
	}
	if logs := e.must("logs", "bg"); logs != "started\n" {
		t.Errorf("logs: %q", logs)
	}
	e.must("rm", "bg")

	// What needs root says so.
	_, errOut, err = e.hull("run", "--rm", "--network", "none", "--memory", "64m", img(), "true")
	if err == nil || !strings.Contains(errOut, "--memory needs a cgroup") {
		t.Errorf("--memory rootless: %v %q", err, errOut)
	}
	if _, _, err := e.hull("network", "create", "mine"); err == nil {
		defer e.hull("network", "rm", "mine")
	}
	if _, errOut, err = e.hull("run", "--rm", "--network", "mine", img(), "true"); err == nil || !strings.Contains(errOut, "need root") {
		t.Errorf("a user network rootless: %v %q", err, errOut)
	}
}

func TestRootlessNetworkingPublishesPortsThroughSlirp4netns(t *testing.T) {
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("slirp4netns not installed")
	}
	e := newRootlessEnv(t)
	// slirp4netns opens /dev/net/tun as the user: 0666 on Debian, 0600 on
	// some VMs. The test widens it for its run only.
	if fi, err := os.Stat("/dev/net/tun"); err == nil && fi.Mode().Perm()&0o006 != 0o006 {
		if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
			t.Skipf("/dev/net/tun is %v and cannot be opened up: %v", fi.Mode().Perm(), err)
		}
		t.Cleanup(func() { _ = os.Chmod("/dev/net/tun", fi.Mode().Perm()) })
	}
	out := e.must("run", "--rm", img(), "sh", "-c", "cat /etc/resolv.conf; ip -4 -o addr show tap0 2>/dev/null || cat /proc/net/dev")
	if !strings.Contains(out, "nameserver 10.0.2.3") || !strings.Contains(out, "tap0") {
		t.Errorf("the container's network: %q", out)
	}
	port := freePort(t)
	e.must("run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), img(), "sh", "-c", "while true; do echo served | nc -l -p 8080; done")
	var got string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if got = string(b); strings.Contains(got, "served") {
			break
		}
	}
	if !strings.Contains(got, "served") {
		t.Fatalf("127.0.0.1:%d answered %q", port, got)
	}
	e.must("rm", "-f", "web")
	// rm waits for slirp4netns to exit; its parent (init, here) reaps it.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-u", strconv.Itoa(e.uid), "slirp4netns").Output()
		if len(bytes.TrimSpace(out)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("slirp4netns still runs after rm: %s", out)
			break
		}
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Error("the port still answers after rm")
	}
}
