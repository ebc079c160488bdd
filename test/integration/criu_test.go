package integration

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// checkpoint and restore go through CRIU. Which of the two tests below runs
// depends on the host: where `criu check` fails (CRIU missing, or too old
// for the kernel, like Debian 12's CRIU 3.17 on kernel 6.18) the verbs must
// fail fast and change nothing; where it passes, a container is
// checkpointed and restored for real.

// criuCounter counts seconds into /data/counter, a bind mount of the
// host directory data/ beside the bundle (so checkpoint and restore go
// through an external bind mount), and prints each count.
var criuCounter = []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /data/counter; echo tick $i; sleep 1; done"}

// criuWorks runs `criu check` and says why CRIU cannot be used, if it cannot.
func criuWorks() (bool, string) {
	path, err := exec.LookPath("criu")
	if err != nil {
		return false, "criu is not installed"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "check").CombinedOutput()
	if err != nil {
		return false, "criu check: " + strings.TrimSpace(string(out))
	}
	return true, ""
}

// newCounterEnv makes an env whose bundle runs criuCounter.
func newCounterEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, criuCounter...)
	data := filepath.Join(e.dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: data, Options: []string{"rbind", "rw"}})
	return e
}

// startCounter runs the counting container detached, its stdio on pipes
// (what engines give containers): stdout is collected in e's output.
func (e *env) startCounter(id string) (int, *pipedOutput) {
	e.t.Helper()
	e.write(id)
	out := e.pipedRuntime("run", "--detach", "--bundle", e.bundle, id)
	e.waitStatus(id, "running")
	return e.state(id).Pid, out
}

// pipedOutput collects what is written to a pipe.
type pipedOutput struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (p *pipedOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// wait waits for s to show up in the output.
func (p *pipedOutput) wait(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q never showed up in the output:\n%s", s, p.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pipedRuntime runs hull-runtime with stdin on /dev/null and stdout and
// stderr on a pipe, whose output it collects (also after hull-runtime
// exits: a detached container keeps the pipe).
func (e *env) pipedRuntime(args ...string) *pipedOutput {
	e.t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Close() })
	out := &pipedOutput{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			out.mu.Lock()
			out.buf.Write(buf[:n])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	cmd := exec.Command(runtimeBin, append([]string{"--root", e.root}, args...)...)
	cmd.Stdout, cmd.Stderr = w, w
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	w.Close()
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(120 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		err = errors.New("timed out")
	}
	if err != nil {
		e.t.Fatalf("hull-runtime %v: %v\n%s", args, err, out.String())
	}
	return out
}

// counter reads /data/counter (0 before the first write). The shell
// truncates the file before writing the next value: an empty read is that
// moment, not a value, so it reads again.
func (e *env) counter() int {
	for i := 0; ; i++ {
		data, err := os.ReadFile(filepath.Join(e.dir, "data", "counter"))
		if err != nil {
			return 0
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil || i == 100 {
			return n
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *env) waitCounter(min int) int {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if n := e.counter(); n >= min {
			return n
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("counter stuck at %d, want >= %d", e.counter(), min)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nextCounter waits for the counter to change from n and returns the new value.
func (e *env) nextCounter(n int) int {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := e.counter(); m != n {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("counter stuck at %d", n)
	return 0
}

// stillCounter checks that the counter does not move for a while.
func (e *env) stillCounter(what string) int {
	e.t.Helper()
	n := e.counter()
	time.Sleep(2500 * time.Millisecond)
	if m := e.counter(); m != n {
		e.t.Fatalf("%s: the counter moved from %d to %d", what, n, m)
	}
	return n
}

// TestCriuUnusableFailsFastAndChangesNothing pins the behaviour on hosts
// where CRIU cannot work: checkpoint and restore exit non-zero at once with
// a message that names the problem, the container keeps running, and no
// image directory, state or mount is left.
func TestCriuUnusableFailsFastAndChangesNothing(t *testing.T) {
	ok, why := criuWorks()
	if ok {
		t.Skip("CRIU works on this host (`criu check` passes): TestCriuCheckpointRestore tests the real thing")
	}
	e := newCounterEnv(t)
	pid, _ := e.startCounter("c1")

	images := filepath.Join(e.dir, "images")
	start := time.Now()
	out, err := e.runtime("checkpoint", "--image-path", images, "--work-path", filepath.Join(e.dir, "work"), "c1")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("checkpoint succeeded without a working CRIU:\n%s", out)
	}
	t.Logf("checkpoint failed in %v (criu: %s):\n%s", took, why, out)
	if took > 30*time.Second {
		t.Errorf("checkpoint took %v to fail: not fast", took)
	}
	for _, want := range []string{"cannot checkpoint", "CRIU"} {
		if !strings.Contains(out, want) {
			t.Errorf("checkpoint error does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(why, "criu check") && !strings.Contains(out, "criu check") {
		t.Errorf("checkpoint error does not quote `criu check`:\n%s", out)
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine") {
		t.Errorf("checkpoint crashed:\n%s", out)
	}
	for _, p := range []string{images, filepath.Join(e.dir, "work")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("checkpoint left %s behind (stat: %v)", p, err)
		}
	}
	if st := e.state("c1"); st.Status != "running" || st.Pid != pid {
		t.Errorf("after the failed checkpoint: status %s pid %d, want running pid %d", st.Status, st.Pid, pid)
	}
	n := e.counter()
	e.waitCounter(n + 1) // still counting

	// A pre-existing image directory stays as it was.
	if err := os.Mkdir(images, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := e.runtime("checkpoint", "--image-path", images, "--leave-running", "c1"); err == nil {
		t.Fatalf("checkpoint --leave-running succeeded without a working CRIU:\n%s", out)
	}
	if ents, _ := os.ReadDir(images); len(ents) != 0 {
		t.Errorf("checkpoint wrote into the existing image directory: %v", ents)
	}

	// A --criu that does not exist is named as missing.
	out, err = e.runtime("--criu", filepath.Join(e.dir, "no-such-criu"), "checkpoint", "--image-path", images, "c1")
	if err == nil || !strings.Contains(out, "not installed") {
		t.Errorf("checkpoint with a missing --criu: err %v, want a \"not installed\" error:\n%s", err, out)
	}

	// restore fails the same way and creates no container.
	out, err = e.runtime("restore", "--detach", "--image-path", images, "--bundle", e.bundle, "c2")
	if err == nil {
		t.Fatalf("restore succeeded without a working CRIU:\n%s", out)
	}
	if !strings.Contains(out, "cannot restore") || !strings.Contains(out, "CRIU") {
		t.Errorf("restore error does not name the problem:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(e.root, "c2")); !os.IsNotExist(err) {
		t.Errorf("restore left a state dir for c2 (stat: %v)", err)
	}
	if st := e.state("c1"); st.Status != "running" || st.Pid != pid {
		t.Errorf("after the failed restore: status %s pid %d, want running pid %d", st.Status, st.Pid, pid)
	}
	e.must("delete", "--force", "c1")
}

// TestCriuCheckpointRestore checkpoints a counting container, checks it
// stopped, restores it under the same id and checks it counts on from
// where it was; then checkpoints it with --leave-running, running and paused.
func TestCriuCheckpointRestore(t *testing.T) {
	if ok, why := criuWorks(); !ok {
		t.Skipf("CRIU cannot work on this host (%s): TestCriuUnusableFailsFastAndChangesNothing covers it", why)
	}
	e := newCounterEnv(t)
	pid, out1 := e.startCounter("c1")
	e.waitCounter(3)
	out1.wait(t, "tick 3")

	images := filepath.Join(e.dir, "images")
	e.must("checkpoint", "--image-path", images, "c1")
	if _, err := os.Stat(filepath.Join(images, "inventory.img")); err != nil {
		t.Fatalf("no CRIU image: %v", err)
	}
	e.waitStatus("c1", "stopped")
	saved := e.stillCounter("after checkpoint")
	t.Logf("checkpointed pid %d at count %d", pid, saved)

	out2 := e.pipedRuntime("restore", "--detach", "--image-path", images, "--bundle", e.bundle, "c1")
	st := e.state("c1")
	if st.Status != "running" || st.Pid <= 0 {
		t.Fatalf("after restore: status %s pid %d", st.Status, st.Pid)
	}
	// The shell's variable lives on: a fresh start would count from 1.
	if next := e.nextCounter(saved); next != saved+1 {
		t.Fatalf("after restoring at %d the counter went to %d: the process started over", saved, next)
	}
	t.Logf("restored as pid %d, counting on from %d", st.Pid, saved)
	// Its stdout is now restore's (the pipe it had was the caller's).
	out2.wait(t, "tick "+strconv.Itoa(saved+1))
	if strings.Contains(out1.String(), "tick "+strconv.Itoa(saved+1)) {
		t.Errorf("the restored container still writes to the old pipe")
	}
	if ps := e.must("ps", "--format", "json", "c1"); !strings.Contains(ps, strconv.Itoa(st.Pid)) {
		t.Errorf("the restored init %d is not in the container's cgroup: ps %s", st.Pid, ps)
	}

	// --leave-running: the container goes on.
	e.must("checkpoint", "--leave-running", "--image-path", filepath.Join(e.dir, "images2"), "c1")
	if st2 := e.state("c1"); st2.Status != "running" || st2.Pid != st.Pid {
		t.Errorf("after checkpoint --leave-running: status %s pid %d, want running pid %d", st2.Status, st2.Pid, st.Pid)
	}
	e.waitCounter(e.counter() + 1)

	// A paused container stays paused.
	e.must("pause", "c1")
	e.must("checkpoint", "--leave-running", "--image-path", filepath.Join(e.dir, "images3"), "c1")
	if st3 := e.state("c1"); st3.Status != "paused" {
		t.Errorf("after checkpoint --leave-running of a paused container: status %s", st3.Status)
	}
	e.stillCounter("paused after checkpoint")
	e.must("resume", "c1")
	e.waitCounter(e.counter() + 1)
	e.must("delete", "--force", "c1")
}

// TestCriuRestoreInTheForeground restores under a new id without --detach:
// restore waits for the container, exits with its status and deletes it.
func TestCriuRestoreInTheForeground(t *testing.T) {
	if ok, why := criuWorks(); !ok {
		t.Skipf("CRIU cannot work on this host (%s)", why)
	}
	e := newCounterEnv(t)
	e.startCounter("c1")
	e.waitCounter(2)
	images := filepath.Join(e.dir, "images")
	e.must("checkpoint", "--image-path", images, "c1")
	e.must("delete", "c1")
	saved := e.counter()

	out, err := os.Create(filepath.Join(e.dir, "restore.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(runtimeBin, "--root", e.root, "restore", "--image-path", images, "--bundle", e.bundle, "c2")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	e.waitCounter(saved + 2)
	e.waitStatus("c2", "running")
	e.must("kill", "c2", "KILL")
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("restore did not return after the container was killed")
	}
	data, _ := os.ReadFile(out.Name())
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Errorf("restore exited with %v, want status 137 (SIGKILL):\n%s", err, data)
	}
	// The restored process wrote its ticks to restore's stdout.
	if !strings.Contains(string(data), "tick "+strconv.Itoa(saved+1)) {
		t.Errorf("restore's output lacks the restored process's ticks after %d:\n%s", saved, data)
	}
	if ids := strings.Fields(e.must("list", "-q")); len(ids) != 0 {
		t.Errorf("containers left after the foreground restore: %v", ids)
	}
}

// TestCriuTerminalContainer checkpoints a container with a terminal and
// restores it on a new pty sent to the console socket.
func TestCriuTerminalContainer(t *testing.T) {
	if ok, why := criuWorks(); !ok {
		t.Skipf("CRIU cannot work on this host (%s)", why)
	}
	e := newCounterEnv(t)
	e.spec.Process.Terminal = true
	e.write("tty")
	sock1, got1 := criuConsoleSocket(t, filepath.Join(e.dir, "console1.sock"))
	e.must("create", "--bundle", e.bundle, "--console-socket", sock1, "tty")
	master1 := criuMaster(t, got1)
	defer master1.Close()
	e.must("start", "tty")
	e.waitCounter(2)
	images := filepath.Join(e.dir, "images")
	e.must("checkpoint", "--image-path", images, "tty")
	e.waitStatus("tty", "stopped")
	saved := e.counter()

	sock2, got2 := criuConsoleSocket(t, filepath.Join(e.dir, "console2.sock"))
	e.must("restore", "--detach", "--image-path", images, "--bundle", e.bundle, "--console-socket", sock2, "tty")
	master2 := criuMaster(t, got2)
	defer master2.Close()
	want := "tick " + strconv.Itoa(saved+2)
	var out strings.Builder
	buf := make([]byte, 256)
	_ = master2.SetReadDeadline(time.Now().Add(30 * time.Second))
	for !strings.Contains(out.String(), want) {
		n, err := master2.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(out.String(), want) {
		t.Fatalf("the restored container does not write to the new pty: read %q, want %q", out.String(), want)
	}
	e.must("delete", "--force", "tty")
}

// criuConsoleSocket listens on path and delivers the first pty master sent to it.
func criuConsoleSocket(t *testing.T, path string) (string, chan *os.File) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan *os.File, 1)
	go func() {
		defer close(got)
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) == 0 {
			return
		}
		if fds, _ := unix.ParseUnixRights(&msgs[0]); len(fds) > 0 {
			got <- os.NewFile(uintptr(fds[0]), "master")
		}
	}()
	return path, got
}

func criuMaster(t *testing.T, got chan *os.File) *os.File {
	t.Helper()
	select {
	case m := <-got:
		if m != nil {
			return m
		}
	case <-time.After(30 * time.Second):
	}
	t.Fatal("no pty master received on the console socket")
	return nil
}
