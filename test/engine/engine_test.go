// Package engine tests the `hull` binary's container commands as a user
// runs them, with real containers: hull, hull-monitor and hull-runtime built
// into one directory, images from an in-process registry on 127.0.0.1, a
// private --root/--runroot per test, and everything removed afterwards.
package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/moby/sys/mountinfo"

	"github.com/hull-runtime/hull/test/hoststate"
	"github.com/hull-runtime/hull/test/testimage"
)

var binDir, regAddr string

// cgroupParent is this test binary's own cgroup parent (removed at the
// end): concurrent runs of the tests never share one.
var cgroupParent = fmt.Sprintf("/hull-e2e-%d", os.Getpid())

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("engine tests need root (real containers); skipping")
		os.Exit(0)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		fmt.Println("no /bin/busybox (busybox-static); skipping")
		os.Exit(0)
	}
	// HULL_ENGINE_BIN_DIR names prebuilt hull, hull-monitor and
	// hull-runtime binaries, for hosts without Go (scripts/vm-test.sh).
	dir := os.Getenv("HULL_ENGINE_BIN_DIR")
	prebuilt := dir != ""
	if !prebuilt {
		var err error
		if dir, err = os.MkdirTemp("", "hull-engine-bin-"); err != nil {
			log.Fatal(err)
		}
		for _, b := range []string{"hull", "hull-monitor", "hull-runtime"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b), "github.com/hull-runtime/hull/cmd/"+b)
			if out, err := cmd.CombinedOutput(); err != nil {
				log.Fatalf("build %s: %v\n%s", b, err, out)
			}
		}
	}
	binDir = dir
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	regAddr = l.Addr().String()
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(l)
	if err := pushBusybox(regAddr + "/busybox:latest"); err != nil {
		log.Fatal(err)
	}
	undo := hoststate.Record(cgroupParent)
	code := m.Run()
	if seedStop != nil {
		seedStop()
	}
	srv.Close()
	if !prebuilt {
		os.RemoveAll(dir)
	}
	if err := undo(); err != nil {
		fmt.Println("engine tests: restoring the host:", err)
		code = 1
	}
	os.Exit(code)
}

// pushBusybox pushes an image of Debian's static busybox with its applets.
func pushBusybox(ref string) error {
	img, err := testimage.Busybox(nil)
	if err != nil {
		return err
	}
	return testimage.Push(ref, img)
}

// env is one private engine root.
type env struct {
	t             *testing.T
	root, runroot string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := t.TempDir()
	e := &env{t: t, root: filepath.Join(d, "root"), runroot: filepath.Join(d, "run")}
	t.Cleanup(func() { e.cleanup(d) })
	return e
}

// cleanup removes every container (force), then checks nothing is left
// mounted under the test's dirs but the per-boot netns dir.
func (e *env) cleanup(d string) {
	out, _, _ := e.hull("ps", "-a", "-q", "--no-trunc")
	for _, id := range strings.Fields(out) {
		_, _, _ = e.hull("rm", "-f", "-v", id)
	}
	_, _, _ = e.hull("network", "rm", "e2enet")
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(d))
	for i := len(mounts) - 1; i >= 0; i-- {
		mp := mounts[i].Mountpoint
		if !strings.HasSuffix(mp, "/netns") {
			e.t.Errorf("left mounted: %s", mp)
		}
		_ = exec.Command("umount", "-l", mp).Run()
	}
}

func (e *env) hull(args ...string) (string, string, error) {
	if len(args) > 0 && (args[0] == "run" || args[0] == "create") {
		args = append([]string{args[0], "--cgroup-parent", cgroupParent}, args[1:]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "hull"), append([]string{"--root", e.root, "--runroot", e.runroot, "--registries-conf", "/nonexistent"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.hull(args...)
	if err != nil {
		e.t.Fatalf("hull %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

func img() string { return regAddr + "/busybox:latest" }

func TestRunPrintsTheOutputAndReturnsTheExitCode(t *testing.T) {
	e := newEnv(t)
	out, errOut, err := e.hull("run", "--rm", img(), "sh", "-c", "echo to-stdout; echo to-stderr >&2; id -u; exit 3")
	if exitCode(err) != 3 {
		t.Fatalf("exit code %d (%v), want 3\n%s", exitCode(err), err, errOut)
	}
	if out != "to-stdout\n0\n" || !strings.Contains(errOut, "to-stderr") {
		t.Errorf("stdout %q stderr %q", out, errOut)
	}
	if ps := e.must("ps", "-a", "-q"); strings.TrimSpace(ps) != "" {
		t.Errorf("--rm left %q", ps)
	}
}

func TestADetachedContainerIsListedLoggedStoppedAndRemoved(t *testing.T) {
	e := newEnv(t)
	// PID 1 ignores signals it has no handler for (as with Docker): the
	// shell traps the stop signal.
	id := strings.TrimSpace(e.must("run", "-d", "--name", "bg", img(), "sh", "-c", "trap 'exit 7' TERM; echo started; while :; do sleep 0.1; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	if ps := e.must("ps", "--format", "{{.Names}} {{.State}}"); strings.TrimSpace(ps) != "bg running" {
		t.Errorf("ps: %q", ps)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.must("logs", "bg"), "started") {
		if time.Now().After(deadline) {
			t.Fatal("no log line")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	e.must("stop", "-t", "5", "bg")
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stop took %v: the container traps SIGTERM", d)
	}
	if st := e.must("ps", "-a", "--format", "{{.Status}}"); !strings.HasPrefix(st, "Exited (7)") {
		t.Errorf("status after stop: %q", st)
	}
	if code := strings.TrimSpace(e.must("wait", "bg")); code != "7" {
		t.Errorf("wait printed %q", code)
	}
	e.must("rm", "bg")
	if ps := e.must("ps", "-a", "-q"); strings.TrimSpace(ps) != "" {
		t.Errorf("rm left %q", ps)
	}
}

func TestAPublishedPortIsReachableOnLoopback(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	e.must("run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), img(), "sh", "-c", "while true; do echo served | nc -l -p 8080; done")
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			b, _ := io.ReadAll(c)
			c.Close()
			if got = string(b); strings.Contains(got, "served") {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(got, "served") {
		t.Fatalf("port %d answered %q", port, got)
	}
	e.must("rm", "-f", "web")
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Error("the port still answers after rm")
	}
}

func TestANamedVolumeSurvivesTheContainer(t *testing.T) {
	e := newEnv(t)
	e.must("run", "--rm", "-v", "keep:/store", img(), "sh", "-c", "echo kept > /store/f")
	if out := e.must("run", "--rm", "-v", "keep:/store:ro", img(), "cat", "/store/f"); out != "kept\n" {
		t.Errorf("second container read %q", out)
	}
	if _, _, err := e.hull("run", "--rm", "-v", "keep:/store:ro", img(), "sh", "-c", "echo x > /store/g"); err == nil {
		t.Error("wrote to a read-only volume")
	}
	if out := e.must("volume", "ls", "-q"); !strings.Contains(out, "keep") {
		t.Errorf("volume ls: %q", out)
	}
	// --mount says the same as -v, and tmpfs and binds with it.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "host-file"), []byte("from host\n"), 0o644)
	out := e.must("run", "--rm",
		"--mount", "type=volume,source=keep,target=/store,readonly",
		"--mount", "type=bind,source="+src+",target=/in,readonly",
		"--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m",
		img(), "sh", "-c", "cat /store/f /in/host-file; grep ' /scratch ' /proc/mounts; touch /in/x 2>/dev/null && echo wrote-bind; touch /store/x 2>/dev/null && echo wrote-volume; exit 0")
	if !strings.Contains(out, "kept\nfrom host\n") || !strings.Contains(out, "tmpfs /scratch tmpfs") || !strings.Contains(out, "size=1024k") || strings.Contains(out, "wrote-") {
		t.Errorf("--mount: %q", out)
	}
	if _, errOut, err := e.hull("run", "--rm", "--mount", "type=bind,source=/no/such/dir,target=/x", img(), "true"); err == nil || !strings.Contains(errOut, "bind source path does not exist") {
		t.Errorf("--mount with a missing bind source: %v %q", err, errOut)
	}
	e.must("volume", "rm", "keep")
}

func TestContainersOnAUserNetworkReachEachOtherByName(t *testing.T) {
	e := newEnv(t)
	e.must("network", "create", "--subnet", "10.250.91.0/24", "e2enet")
	e.must("run", "-d", "--name", "server", "--network", "e2enet", img(), "sh", "-c", "while true; do echo pong | nc -l -p 7777; done")
	time.Sleep(300 * time.Millisecond)
	out, errOut, err := e.hull("run", "--rm", "--network", "e2enet", img(), "sh", "-c", "for i in 1 2 3 4 5; do echo ping | nc -w 2 server 7777 && exit 0; sleep 0.5; done; exit 1")
	if err != nil || !strings.Contains(out, "pong") {
		t.Fatalf("client: %q %q %v", out, errOut, err)
	}
	e.must("rm", "-f", "server")
	e.must("network", "rm", "e2enet")
}

func TestTheRestartPolicyRestartsAFailingContainer(t *testing.T) {
	e := newEnv(t)
	e.must("run", "-d", "--name", "flaky", "--restart", "on-failure:2", img(), "sh", "-c", "echo run; exit 1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		logs := e.must("logs", "flaky")
		st := e.must("ps", "-a", "--format", "{{.State}}")
		if strings.Count(logs, "run") == 3 && strings.TrimSpace(st) == "exited" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %d runs, state %q", strings.Count(logs, "run"), st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestFailuresLeaveNothingBehind(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rm", regAddr + "/no/such:image", "true"}, "not found"},
		{[]string{"run", "--rm", "--runtime", "/bin/false", img(), "true"}, "start container"},
		{[]string{"run", "--rm", "--cap-add", "NOT_A_CAP", img(), "true"}, "NOT_A_CAP"},
		{[]string{"run", "--rm", "-p", "99999:80", img(), "true"}, "port"},
		{[]string{"run", "--rm", img(), "/no/such/program"}, "no/such/program"},
	}
	for _, c := range cases {
		_, errOut, err := e.hull(c.args...)
		if err == nil {
			t.Errorf("%v succeeded", c.args)
			continue
		}
		if !strings.Contains(errOut, c.want) {
			t.Errorf("%v: error %q does not mention %q", c.args, errOut, c.want)
		}
		if ps := e.must("ps", "-a", "-q"); strings.TrimSpace(ps) != "" {
			t.Errorf("%v left container %q", c.args, ps)
		}
	}
	if netns, _ := os.ReadDir(filepath.Join(e.runroot, "netns")); len(netns) != 0 {
		t.Errorf("network namespaces left: %d", len(netns))
	}
}

func TestRuncAndCrunRunTheSameContainer(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed")
	}
	e := newEnv(t)
	if out := e.must("run", "--rm", "--runtime", "runc", img(), "echo", "under-runc"); out != "under-runc\n" {
		t.Errorf("runc: %q", out)
	}
	if _, err := exec.LookPath("crun"); err != nil {
		t.Log("crun not installed: only runc checked")
		return
	}
	// crun refuses hybrid hosts unless hull hides the unified mount from it:
	// this runs on whatever host the tests run on, hybrid or pure v2.
	if out := e.must("run", "--rm", "--runtime", "crun", img(), "echo", "under-crun"); out != "under-crun\n" {
		t.Errorf("crun: %q", out)
	}
	e.must("run", "-d", "--name", "c", "--runtime", "crun", img(), "sleep", "60")
	if out := e.must("exec", "c", "echo", "exec-under-crun"); out != "exec-under-crun\n" {
		t.Errorf("crun exec: %q", out)
	}
	e.must("pause", "c")
	if st := strings.TrimSpace(e.must("inspect", "--format", "{{.State.Status}}", "c")); st != "paused" {
		t.Errorf("crun pause: %q", st)
	}
	e.must("unpause", "c")
	e.must("rm", "-f", "c")
}

func TestExecInspectPauseAndKill(t *testing.T) {
	e := newEnv(t)
	e.must("run", "-d", "--name", "box", "-e", "FROM_RUN=1", img(), "sh", "-c", "while :; do sleep 0.1; done")
	if out := e.must("exec", "-e", "EXTRA=2", "box", "sh", "-c", "echo $FROM_RUN$EXTRA; exit 0"); out != "12\n" {
		t.Errorf("exec output %q", out)
	}
	if _, _, err := e.hull("exec", "box", "sh", "-c", "exit 4"); exitCode(err) != 4 {
		t.Errorf("exec exit code %d, want 4", exitCode(err))
	}
	if st := strings.TrimSpace(e.must("inspect", "--format", "{{.State.Status}} {{.State.Running}} {{.Name}}", "box")); st != "running true /box" {
		t.Errorf("inspect: %q", st)
	}
	e.must("pause", "box")
	if st := strings.TrimSpace(e.must("inspect", "--format", "{{.State.Status}}", "box")); st != "paused" {
		t.Errorf("after pause: %q", st)
	}
	e.must("unpause", "box")
	e.must("kill", "box")
	if code := strings.TrimSpace(e.must("wait", "box")); code != "137" {
		t.Errorf("exit code after kill: %s", code)
	}
	if st := strings.TrimSpace(e.must("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "box")); st != "exited 137" {
		t.Errorf("inspect after kill: %q", st)
	}
	e.must("container", "prune", "-f")
	if ps := e.must("ps", "-a", "-q"); strings.TrimSpace(ps) != "" {
		t.Errorf("container prune left %q", ps)
	}
}

func TestAttachSeesLiveOutputAndStatsReadTheCgroup(t *testing.T) {
	e := newEnv(t)
	e.must("run", "-d", "--name", "talker", img(), "sh", "-c", "i=0; while [ $i -lt 30 ]; do echo line$i; i=$((i+1)); sleep 0.1; done")
	out, errOut, err := e.hull("attach", "talker")
	if err != nil {
		t.Fatalf("attach: %v %s", err, errOut)
	}
	if !strings.Contains(out, "line29") {
		t.Errorf("attach did not see the end of the output: %q", out)
	}
	e.must("run", "-d", "--name", "busy", "-m", "64m", img(), "sh", "-c", "while :; do :; done")
	stats := e.must("stats", "--no-stream", "busy")
	if !strings.Contains(stats, "busy") || !strings.Contains(stats, "64MB") && !strings.Contains(stats, "67.1MB") {
		t.Errorf("stats: %q", stats)
	}
	e.must("rm", "-f", "busy", "talker")
}

// SIGKILL of `hull run` can land between any two steps (record, snapshot,
// mount, volumes, network, monitor); `hull rm -f` and the prunes then clean
// up whatever it had made.
func TestAKilledRunIsCleanedUpByRmAndPrune(t *testing.T) {
	e := newEnv(t)
	e.must("pull", "-q", img())
	for i, delay := range []time.Duration{20 * time.Millisecond, 60 * time.Millisecond, 120 * time.Millisecond, 200 * time.Millisecond, 350 * time.Millisecond} {
		cmd := exec.Command(filepath.Join(binDir, "hull"), "--root", e.root, "--runroot", e.runroot, "--registries-conf", "/nonexistent",
			"run", "-d", "--cgroup-parent", cgroupParent, "--name", fmt.Sprintf("k%d", i), img(), "sleep", "1000")
		cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	for _, id := range strings.Fields(e.must("ps", "-a", "-q", "--no-trunc")) {
		if _, errOut, err := e.hull("rm", "-f", "-v", id); err != nil {
			t.Errorf("rm -f %s: %v %s", id, err, errOut)
		}
	}
	e.must("container", "prune", "-f")
	e.must("volume", "prune", "-f")
	if ps := e.must("ps", "-a", "-q"); strings.TrimSpace(ps) != "" {
		t.Errorf("containers left: %q", ps)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.runroot, "netns")); len(entries) != 0 {
		t.Errorf("network namespaces left: %d", len(entries))
	}
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(e.root))
	more, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(filepath.Join(e.runroot, "containers")))
	for _, m := range append(mounts, more...) {
		t.Errorf("left mounted: %s", m.Mountpoint)
	}
	if out, _ := exec.Command("pgrep", "-f", "hull-monitor.*"+e.runroot).Output(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("monitors left: %s", out)
	}
}

func TestAnExitedContainerStartsAgainOnItsNetwork(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	// The first run's network (namespace, address, port mapping) is still
	// set up after it exits: each start must replace it, not trip on it.
	e.must("run", "--name", "again", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), img(), "echo", "run")
	for range 2 {
		e.must("start", "again")
		if code := strings.TrimSpace(e.must("wait", "again")); code != "0" {
			t.Fatalf("wait after start: %q", code)
		}
	}
	if n := strings.Count(e.must("logs", "again"), "run\n"); n != 3 {
		t.Errorf("3 runs logged %d times", n)
	}
	if p := e.must("port", "again"); !strings.Contains(p, fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Errorf("port after restarts: %q", p)
	}
	e.must("rm", "again")
}
