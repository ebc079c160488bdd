package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// terminal is a pty pair standing in for the user's terminal: hull runs
// on the slave as its controlling terminal, the test types into and reads
// from the master.
type terminal struct {
	t      *testing.T
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
}

func newTerminal(t *testing.T, rows, cols uint16) (*terminal, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, master: m, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { m.Close(); s.Close() })
	return term, s
}

// waitFor waits until the terminal has shown s.
func (term *terminal) waitFor(s string) {
	term.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		term.mu.Lock()
		got := term.out.String()
		term.mu.Unlock()
		if strings.Contains(got, s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	term.mu.Lock()
	defer term.mu.Unlock()
	term.t.Fatalf("the terminal never showed %q; it shows %q", s, term.out.String())
}

func (term *terminal) text() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// startOnTerminal starts hull with the pty slave as its controlling
// terminal (a new session), as a shell would.
func (e *env) startOnTerminal(slave *os.File, args ...string) (*exec.Cmd, chan error) {
	e.t.Helper()
	if len(args) > 0 && args[0] == "run" {
		args = append([]string{"run", "--cgroup-parent", cgroupParent}, args[1:]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "hull"), append([]string{"--root", e.root, "--runroot", e.runroot, "--registries-conf", "/nonexistent"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		cancel()
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); cancel() }()
	return cmd, done
}

func waitExit(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("hull did not return")
		return nil
	}
}

func TestRunWithATerminalIsRawSizedAndResized(t *testing.T) {
	e := newEnv(t)
	term, slave := newTerminal(t, 33, 91)
	_, done := e.startOnTerminal(slave, "run", "--rm", "-it", img(), "sh", "-c",
		`echo "size $(stty size) term $TERM"; printf 'prompt> '; read x; echo "got [$x]"; read y; echo "size $(stty size)"; exit 3`)
	// The size is there before the first command runs; the prompt shows
	// without a newline (raw output, not the line-based log).
	term.waitFor("size 33 91 term xterm")
	term.waitFor("prompt> ")
	// The container's pty echoes and edits the line: the user's terminal
	// is raw, so it shows the echo once.
	if _, err := term.master.Write([]byte("abc\r")); err != nil {
		t.Fatal(err)
	}
	term.waitFor("got [abc]")
	if n := strings.Count(term.text(), "abc"); n != 2 {
		t.Errorf("abc shown %d times (echo once, then the output): %q", n, term.text())
	}
	// A resize of the user's terminal reaches the container.
	if err := unix.IoctlSetWinsize(int(term.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 100}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	term.master.Write([]byte("\r"))
	term.waitFor("size 40 100")
	err := waitExit(t, done)
	if exitCode(err) != 3 {
		t.Errorf("exit code %d (%v), want 3; terminal: %q", exitCode(err), err, term.text())
	}
	// The terminal is back in cooked mode.
	tio, terr := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if terr != nil || tio.Lflag&unix.ICANON == 0 || tio.Oflag&unix.OPOST == 0 {
		t.Errorf("the terminal was left raw: %+v %v", tio, terr)
	}
}

func TestDetachKeysLeaveTheContainerRunning(t *testing.T) {
	e := newEnv(t)
	term, slave := newTerminal(t, 24, 80)
	_, done := e.startOnTerminal(slave, "run", "-it", "--name", "detachme", img(), "sh", "-c", `echo ready; while :; do read x; echo "echo [$x]"; done`)
	term.waitFor("ready")
	// ctrl-p alone is passed on with what follows it.
	term.master.Write([]byte("a\x10b\r"))
	term.waitFor("echo [a\x10b]")
	term.master.Write([]byte{0x10, 0x11})
	if err := waitExit(t, done); err != nil {
		t.Fatalf("hull after the detach keys: %v; terminal %q", err, term.text())
	}
	if st := strings.TrimSpace(e.must("inspect", "--format", "{{.State.Status}}", "detachme")); st != "running" {
		t.Errorf("after detaching the container is %q", st)
	}
	e.must("rm", "-f", "detachme")
}

// Under every runtime: runc refuses a console socket without --detach, so
// `exec -t` failed under runc while it used one.
func TestExecWithATerminal(t *testing.T) {
	for _, rt := range []string{"hull-runtime", "runc", "crun"} {
		t.Run(rt, func(t *testing.T) {
			if _, err := exec.LookPath(rt); err != nil && rt != "hull-runtime" {
				t.Skipf("%s not installed", rt)
			}
			e := newEnv(t)
			e.must("run", "-d", "--name", "box", "--runtime", rt, img(), "sleep", "60")
			term, slave := newTerminal(t, 21, 77)
			_, done := e.startOnTerminal(slave, "exec", "-it", "box", "sh", "-c", `echo "$(tty) $(stty size) $TERM"; read x; echo "got [$x]"; exit 4`)
			term.waitFor("/dev/pts/0 21 77 xterm")
			term.master.Write([]byte("typed\r"))
			term.waitFor("got [typed]")
			if err := waitExit(t, done); exitCode(err) != 4 {
				t.Errorf("exec exit code %d (%v), want 4; terminal %q", exitCode(err), err, term.text())
			}
		})
	}
}

func TestStdinIsDeliveredWhenItArrivesBeforeTheContainerStarts(t *testing.T) {
	e := newEnv(t)
	// The piped input and its EOF reach the monitor before the container
	// exists: they must wait for it, not vanish (cat would wait forever).
	cmd := exec.Command(filepath.Join(binDir, "hull"), "--root", e.root, "--runroot", e.runroot, "--registries-conf", "/nonexistent",
		"run", "--cgroup-parent", cgroupParent, "--rm", "-i", img(), "sh", "-c", "cat; echo done")
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
	cmd.Stdin = strings.NewReader("line one\nline two\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || out.String() != "line one\nline two\ndone\n" {
			t.Errorf("%v: stdout %q, stderr %q", err, out.String(), errb.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("hull run -i never returned: the input or its end was lost (stdout %q)", out.String())
	}
}
