package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestRunReturnsTheContainerExitCode(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo out; exit 3")
	out, code := e.run("exitcode")
	if code != 3 {
		t.Fatalf("exit code %d, want 3 (output %q)", code, out)
	}
	if !strings.Contains(out, "out") {
		t.Fatalf("container stdout not passed through: %q", out)
	}
}

func TestCreateStartKillDeleteLifecycle(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.write("life")
	pidFile := filepath.Join(e.dir, "pid")
	e.must("create", "--bundle", e.bundle, "--pid-file", pidFile, "life")
	st := e.state("life")
	if st.Status != "created" || st.Pid <= 0 {
		t.Fatalf("after create: %+v", st)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q (err %v), state pid %d", data, err, st.Pid)
	}
	if _, err := e.runtime("create", "--bundle", e.bundle, "life"); err == nil {
		t.Fatal("second create with the same id succeeded")
	}
	e.must("start", "life")
	e.waitStatus("life", "running")
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/comm"); strings.TrimSpace(string(comm)) != "sleep" {
		t.Fatalf("init did not exec the process: comm %q", comm)
	}
	if out, err := e.runtime("delete", "life"); err == nil || !strings.Contains(out, "running") {
		t.Fatalf("delete of a running container: err %v, out %q", err, out)
	}
	e.must("kill", "life", "KILL")
	e.waitStatus("life", "stopped")
	e.must("delete", "life")
	if _, err := e.runtime("state", "life"); err == nil {
		t.Fatal("state of a deleted container succeeded")
	}
	if dirs := cgroupDirs(e.cgroup + "/life"); len(dirs) > 0 {
		t.Fatalf("cgroup left after delete: %v", dirs)
	}
}

func TestDeleteOfCreatedContainerNeedsForceAndKillsItsInit(t *testing.T) {
	e := newEnv(t, "true")
	e.write("created")
	e.must("create", "--bundle", e.bundle, "created")
	pid := e.state("created").Pid
	// runtime-spec: deleting a container that is not stopped MUST fail.
	if out, err := e.runtime("delete", "created"); err == nil || !strings.Contains(out, "created") {
		t.Fatalf("delete of a created container without --force: err %v, out %q", err, out)
	}
	if st := e.state("created"); st.Status != "created" {
		t.Fatalf("failed delete changed the container: %+v", st)
	}
	e.must("delete", "--force", "created")
	if err := unix.Kill(pid, 0); err == nil {
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(st), ") Z") {
			t.Fatalf("init %d still alive after delete", pid)
		}
	}
}

func TestKillAcceptsSignalNamesAndNumbers(t *testing.T) {
	e := newEnv(t, "sh", "-c", "trap 'exit 0' USR1; while true; do sleep 0.1; done")
	e.write("sigs")
	e.must("run", "-d", "--bundle", e.bundle, "sigs")
	e.must("kill", "sigs", "SIGUSR1")
	e.waitStatus("sigs", "stopped")
	e.must("delete", "sigs")
	e.write("sigs2")
	e.must("run", "--detach", "--bundle", e.bundle, "sigs2")
	e.must("kill", "sigs2", "9")
	e.waitStatus("sigs2", "stopped")
	if _, err := e.runtime("kill", "sigs2", "NOTASIGNAL"); err == nil {
		t.Fatal("kill with an unknown signal succeeded")
	}
}

func TestListShowsContainersAsTableAndJSON(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.write("l1")
	e.must("create", "--bundle", e.bundle, "l1")
	if out := e.must("list", "-q"); strings.TrimSpace(out) != "l1" {
		t.Fatalf("list -q: %q", out)
	}
	if out := e.must("list"); !strings.Contains(out, "l1") || !strings.Contains(out, "created") {
		t.Fatalf("list: %q", out)
	}
	if out := e.must("list", "--format", "json"); !strings.Contains(out, `"status":"created"`) {
		t.Fatalf("list --format json: %q", out)
	}
}

func TestUnknownGlobalFlagsDoNotBreakTheCLI(t *testing.T) {
	e := newEnv(t, "true")
	out, err := e.runtime("--some-future-flag", "--log-format", "json", "list", "-q")
	if err != nil {
		t.Fatalf("unknown global flag broke the CLI: %v %s", err, out)
	}
}

func TestErrorsGoToTheLogFileAsJSON(t *testing.T) {
	e := newEnv(t, "true")
	logf := filepath.Join(e.dir, "log.json")
	if _, err := e.runtime("--log", logf, "--log-format", "json", "start", "nonexistent"); err == nil {
		t.Fatal("start of a nonexistent container succeeded")
	}
	data, _ := os.ReadFile(logf)
	if !strings.Contains(string(data), `"level":"error"`) || !strings.Contains(string(data), "nonexistent") {
		t.Fatalf("log file %q lacks a json error line", data)
	}
}

func TestPreservedFdsReachTheContainer(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo through-fd3 >&3")
	e.write("fds")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(runtimeBin, "--root", e.root, "run", "--preserve-fds", "1", "--bundle", e.bundle, "fds")
	cmd.ExtraFiles = []*os.File{w}
	out, err := cmd.CombinedOutput()
	w.Close()
	if err != nil {
		t.Fatalf("run: %v %s", err, out)
	}
	buf := make([]byte, 64)
	n, _ := r.Read(buf)
	if strings.TrimSpace(string(buf[:n])) != "through-fd3" {
		t.Fatalf("read %q from the preserved fd", buf[:n])
	}
}

// The init is exec'd through /proc/self/fd/N of the sealed binary, resolved
// after preserved fds are moved to 3, 4, ...: N must not be one of them.
func TestManyPreservedFdsDoNotClobberTheSealedBinary(t *testing.T) {
	const n = 24
	e := newEnv(t, "sh", "-c", fmt.Sprintf("echo through-fd%d >&%d", 2+n, 2+n))
	e.write("manyfds")
	var files []*os.File
	for i := 0; i < n; i++ {
		f, err := os.Open("/dev/null")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	files[n-1] = w
	cmd := exec.Command(runtimeBin, "--root", e.root, "run", "--preserve-fds", strconv.Itoa(n), "--bundle", e.bundle, "manyfds")
	cmd.ExtraFiles = files
	out, err := cmd.CombinedOutput()
	w.Close()
	if err != nil {
		t.Fatalf("run with %d preserved fds: %v %s", n, err, out)
	}
	buf := make([]byte, 64)
	k, _ := r.Read(buf)
	if want := fmt.Sprintf("through-fd%d", 2+n); strings.TrimSpace(string(buf[:k])) != want {
		t.Fatalf("read %q from the last preserved fd, want %q", buf[:k], want)
	}
}

func TestTerminalMasterIsSentToTheConsoleSocket(t *testing.T) {
	e := newEnv(t, "sh", "-c", "tty; echo on-the-pty")
	e.spec.Process.Terminal = true
	e.write("tty")
	sockPath := filepath.Join(e.dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) == 0 {
			got <- nil
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		if len(fds) == 0 {
			got <- nil
			return
		}
		got <- os.NewFile(uintptr(fds[0]), "master")
	}()
	e.must("create", "--bundle", e.bundle, "--console-socket", sockPath, "tty")
	var master *os.File
	select {
	case master = <-got:
	case <-time.After(10 * time.Second):
	}
	if master == nil {
		t.Fatal("no pty master received on the console socket")
	}
	defer master.Close()
	e.must("start", "tty")
	var out strings.Builder
	buf := make([]byte, 256)
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(out.String(), "on-the-pty") {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(out.String(), "on-the-pty") || !strings.Contains(out.String(), "/dev/") {
		t.Fatalf("pty output %q", out.String())
	}
}

func TestHooksRunInOrderWithStateOnStdin(t *testing.T) {
	e := newEnv(t, "true")
	logf := filepath.Join(e.dir, "hooks.log")
	hook := func(name string) []string {
		return []string{"sh", "-c", "echo " + name + " $(cat | grep -o '\"id\":\"[^\"]*\"') >> " + logf}
	}
	e.spec.Hooks = &specs.Hooks{}
	h := e.spec.Hooks
	//lint:ignore SA1019 engines still send prestart hooks; they must keep working
	h.Prestart = []specs.Hook{{Path: "/bin/sh", Args: hook("prestart")}}
	h.CreateRuntime = []specs.Hook{{Path: "/bin/sh", Args: hook("createRuntime")}}
	h.CreateContainer = []specs.Hook{{Path: "/bin/sh", Args: hook("createContainer")}}
	h.StartContainer = []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "true"}}}
	h.Poststart = []specs.Hook{{Path: "/bin/sh", Args: hook("poststart")}}
	h.Poststop = []specs.Hook{{Path: "/bin/sh", Args: hook("poststop")}}
	if _, code := e.run("hooked"); code != 0 {
		t.Fatalf("run exit %d", code)
	}
	data, _ := os.ReadFile(logf)
	want := "prestart \"id\":\"hooked\"\ncreateRuntime \"id\":\"hooked\"\ncreateContainer \"id\":\"hooked\"\npoststart \"id\":\"hooked\"\npoststop \"id\":\"hooked\"\n"
	if string(data) != want {
		t.Fatalf("hook log:\n%s\nwant:\n%s", data, want)
	}
}

func TestJoiningANetworkNamespaceByPath(t *testing.T) {
	holder := exec.Command("unshare", "--net", "sleep", "100")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	nsPath := "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/net"
	var want string
	for i := 0; i < 100; i++ {
		want, _ = os.Readlink(nsPath)
		self, _ := os.Readlink("/proc/self/ns/net")
		if want != self {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	e := newEnv(t, "readlink", "/proc/self/ns/net")
	for i, ns := range e.spec.Linux.Namespaces {
		if ns.Type == "network" {
			e.spec.Linux.Namespaces[i].Path = nsPath
		}
	}
	out, code := e.run("joinnet")
	if code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("container netns %q (exit %d), want %q", out, code, want)
	}
}

func TestUserNamespaceMapsRootToAnUnprivilegedHostUID(t *testing.T) {
	e := newEnv(t, "sh", "-c", "id -u; cat /proc/self/uid_map")
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: "user"})
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	out, code := e.run("userns")
	f := strings.Fields(out)
	if code != 0 || len(f) < 4 || f[0] != "0" || f[2] != "100000" {
		t.Fatalf("userns container: exit %d, output %q", code, out)
	}
}

// Regression: seccomp used to be compiled after process.rlimits were applied, so
// a low RLIMIT_AS made libseccomp fail with ENOMEM in the init.
func TestSeccompWorksWithALowAddressSpaceLimit(t *testing.T) {
	e := newEnv(t, "sh", "-c", "ulimit -v; mkdir /tmp/denied && echo mkdir-allowed")
	e.spec.Process.Rlimits = append(e.spec.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_AS", Hard: 2 << 30, Soft: 1 << 30})
	errno := uint(1)
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno}},
	}
	out, code := e.run("seccomp-as")
	if code == 0 || strings.Contains(out, "mkdir-allowed") || !strings.Contains(out, "1048576") {
		t.Fatalf("exit %d, output %q: want RLIMIT_AS 1048576 KiB and mkdir denied", code, out)
	}
}

// `run` of a terminal container without --console-socket relays the pty itself, as runc does.
func TestRunWithTerminalAndNoConsoleSocketRelaysThePty(t *testing.T) {
	e := newEnv(t, "sh", "-c", "tty; echo via-pty")
	e.spec.Process.Terminal = true
	out, code := e.run("runtty")
	if code != 0 || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "via-pty") {
		t.Fatalf("exit %d, output %q", code, out)
	}
	e.write("runtty-d")
	if _, err := e.runtime("run", "-d", "--bundle", e.bundle, "runtty-d"); err == nil {
		t.Fatal("run -d of a terminal container without --console-socket succeeded")
	}
}

// runtime-spec: a failing startContainer hook makes start fail and stops the container.
func TestFailingStartContainerHookFailsStart(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.spec.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo start-hook-failed >&2; exit 1"}}}}
	e.write("sc")
	e.must("create", "--bundle", e.bundle, "sc")
	out, err := e.runtime("start", "sc")
	if err == nil || !strings.Contains(out, "start-hook-failed") {
		t.Fatalf("start with a failing startContainer hook: err %v, output %q", err, out)
	}
	e.waitStatus("sc", "stopped")
}

func TestProcessAttributesReachTheContainerProcess(t *testing.T) {
	e := newEnv(t, "sh", "-c", "grep -E '^policy' /proc/self/sched; uname -m; cat /proc/uptime")
	e.spec.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}
	e.spec.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}
	e.spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: "time"})
	e.spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}}
	out, code := e.run("attrs")
	if code != 0 {
		t.Fatalf("exit %d: %q", code, out)
	}
	if lines := strings.Split(out, "\n"); len(strings.Fields(lines[0])) != 3 || strings.Fields(lines[0])[2] != "3" {
		t.Errorf("scheduler policy not SCHED_BATCH (3): %q", out)
	}
	if !strings.Contains(out, "i686") {
		t.Errorf("personality LINUX32 not applied (uname -m): %q", out)
	}
	f := strings.Fields(out)
	if len(f) < 2 {
		t.Fatalf("output %q", out)
	}
	up, err := strconv.ParseFloat(f[len(f)-2], 64)
	if err != nil || up < 86400*365 {
		t.Errorf("boottime offset not applied: uptime %q", f[len(f)-2])
	}
}

// linux.netDevices: a host device moves into the container, renamed, with its address.
func TestNetDeviceMovesIntoTheContainerWithItsAddress(t *testing.T) {
	var name string
	veth := func() {
		t.Helper()
		// A fresh name each time: a pair whose namespace went away is destroyed asynchronously.
		name = "hulld" + randHex(3)
		if out, err := exec.Command("ip", "link", "add", name, "type", "veth", "peer", "name", name+"p").CombinedOutput(); err != nil {
			t.Fatalf("create a veth pair: %v %s", err, out)
		}
		peer := name + "p"
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", peer).Run() })
	}
	veth()
	if out, err := exec.Command("ip", "addr", "add", "10.123.45.6/24", "dev", name).CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v %s", err, out)
	}
	e := newEnv(t, "sh", "-c", "ls /sys/class/net; grep -q 10.123.45.6 /proc/net/fib_trie && echo address-kept")
	e.spec.Linux.NetDevices = map[string]specs.LinuxNetDevice{name: {Name: "ctr0"}}
	e.write("netdev")
	e.spec.Linux.CgroupsPath = ""
	e.must("create", "--bundle", e.bundle, "netdev")
	if _, err := net.InterfaceByName(name); err == nil {
		t.Fatalf("device %s is still on the host after create", name)
	}
	e.must("delete", "--force", "netdev")
	// A virtual device is destroyed with the namespace: make another pair for the run.
	veth()
	if out, err := exec.Command("ip", "addr", "add", "10.123.45.6/24", "dev", name).CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v %s", err, out)
	}
	e.spec.Linux.NetDevices = map[string]specs.LinuxNetDevice{name: {Name: "ctr0"}}
	out, code := e.run("netdev2")
	if code != 0 || !strings.Contains(out, "ctr0") || !strings.Contains(out, "address-kept") {
		t.Fatalf("exit %d, output %q: want ctr0 with 10.123.45.6 in the container", code, out)
	}
}

// Regression: with a terminal the init kept create's stdout until start, so a
// caller waiting for create's pipes to close (containerd's shim) hung.
func TestCreateWithTerminalReleasesTheCallersStdio(t *testing.T) {
	e := newEnv(t, "sh")
	e.spec.Process.Terminal = true
	e.write("ttypipe")
	sockPath := filepath.Join(e.dir, "c.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.AcceptUnix()
		if err == nil {
			buf, oob := make([]byte, 256), make([]byte, 64)
			_, _, _, _, _ = c.ReadMsgUnix(buf, oob)
			c.Close()
		}
	}()
	cmd := exec.Command(runtimeBin, "--root", e.root, "create", "--bundle", e.bundle, "--console-socket", sockPath, "ttypipe")
	done := make(chan error, 1)
	go func() { _, err := cmd.CombinedOutput(); done <- err }() // pipes: returns only when all writers are gone
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("create: %v", err)
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("create's stdout pipe stayed open: the created init still holds it")
	}
}

// `run` forwards the signals it gets to the container's process.
func TestRunForwardsSignalsToTheContainer(t *testing.T) {
	e := newEnv(t, "sh", "-c", "trap 'exit 42' TERM; echo trapped; while true; do sleep 0.1; done")
	e.write("fwd")
	out, err := os.CreateTemp(e.dir, "out-")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(runtimeBin, "--root", e.root, "run", "--bundle", e.bundle, "fwd")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(out.Name())
		if strings.Contains(string(data), "trapped") {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("container did not start: %q", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if code := exitCode(err); code != 42 {
		t.Fatalf("run exited %d after SIGTERM, want the container's 42", code)
	}
}
