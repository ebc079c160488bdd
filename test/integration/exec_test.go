package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// startSleeper runs a detached container whose init sleeps, for exec tests.
func startSleeper(t *testing.T, id string, edit func(e *env)) *env {
	t.Helper()
	e := newEnv(t, "sleep", "100")
	if edit != nil {
		edit(e)
	}
	e.write(id)
	e.must("run", "-d", "--bundle", e.bundle, id)
	return e
}

func TestExecRunsInEveryNamespaceAndTheCgroupOfTheContainer(t *testing.T) {
	e := startSleeper(t, "ex", func(e *env) {
		e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: "user"})
		e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
		e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	})
	init := e.state("ex").Pid
	out, err := e.runtime("exec", "--pid-file", filepath.Join(e.dir, "xpid"), "-d", "ex", "sleep", "50")
	if err != nil {
		t.Fatalf("exec -d: %v %s", err, out)
	}
	data, _ := os.ReadFile(filepath.Join(e.dir, "xpid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pid <= 0 {
		t.Fatalf("pid file %q", data)
	}
	for _, ns := range []string{"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"} {
		a, _ := os.Readlink("/proc/" + strconv.Itoa(init) + "/ns/" + ns)
		b, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + ns)
		if a == "" || a != b {
			t.Errorf("namespace %s: exec'd process %q, init %q", ns, b, a)
		}
	}
	a, _ := os.ReadFile("/proc/" + strconv.Itoa(init) + "/cgroup")
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if string(a) != string(b) || !strings.Contains(string(a), e.cgroup) {
		t.Errorf("exec'd process cgroups\n%s\nwant the init's\n%s", b, a)
	}
	st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if !strings.Contains(string(st), "Uid:\t200000") {
		t.Errorf("exec'd process is not container root (host uid 200000):\n%s", st)
	}
}

func TestExecPassesOutputExitCodeUserAndEnv(t *testing.T) {
	e := startSleeper(t, "ex2", nil)
	out := e.must("exec", "-e", "FOO=bar", "--cwd", "/tmp", "ex2", "sh", "-c", `echo "$FOO $(pwd) $(id -u)"`)
	if strings.TrimSpace(out) != "bar /tmp 0" {
		t.Fatalf("exec output %q", out)
	}
	out = e.must("exec", "-u", "1000:1001", "-g", "1002", "ex2", "id")
	if !strings.Contains(out, "uid=1000") || !strings.Contains(out, "gid=1001") || !strings.Contains(out, "1002") {
		t.Fatalf("exec --user/--additional-gids: %q", out)
	}
	_, err := e.runtime("exec", "ex2", "sh", "-c", "exit 7")
	if code := exitCode(err); code != 7 {
		t.Fatalf("exec exit code %d, want 7", code)
	}
	if out, err := e.runtime("exec", "ex2", "no-such-program"); err == nil || !strings.Contains(out, "no-such-program") {
		t.Fatalf("exec of a missing program: err %v, output %q", err, out)
	}
}

func TestExecWithProcessJSON(t *testing.T) {
	e := startSleeper(t, "ex3", nil)
	p := specs.Process{Args: []string{"sh", "-c", "echo from-json $X"}, Env: []string{"X=1", "PATH=/bin"}, Cwd: "/"}
	data, _ := json.Marshal(p)
	f := filepath.Join(e.dir, "process.json")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := e.must("exec", "--process", f, "ex3"); strings.TrimSpace(out) != "from-json 1" {
		t.Fatalf("exec --process: %q", out)
	}
}

func TestExecIntoAStoppedContainerFails(t *testing.T) {
	e := startSleeper(t, "ex4", nil)
	e.must("kill", "ex4", "KILL")
	e.waitStatus("ex4", "stopped")
	if out, err := e.runtime("exec", "ex4", "true"); err == nil || !strings.Contains(out, "stopped") {
		t.Fatalf("exec into a stopped container: err %v, output %q", err, out)
	}
}

func TestExecWithTerminalRelaysThePty(t *testing.T) {
	e := startSleeper(t, "ex5", nil)
	out := e.must("exec", "-t", "ex5", "sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty")
	if !strings.Contains(out, "is-a-tty") {
		t.Fatalf("exec -t: %q", out)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// exec --ignore-paused starts the process frozen; it runs once resumed.
func TestExecIgnorePausedStartsFrozenAndRunsOnResume(t *testing.T) {
	e := startSleeper(t, "exp", nil)
	e.must("pause", "exp")
	pidFile := filepath.Join(e.dir, "xpid")
	e.must("exec", "-d", "--ignore-paused", "--pid-file", pidFile, "exp", "sh", "-c", "touch /dev/shm/ran; sleep 50")
	e.must("resume", "exp")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.runtime("exec", "exp", "test", "-e", "/dev/shm/ran"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the process exec'd while paused did not run after resume")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
