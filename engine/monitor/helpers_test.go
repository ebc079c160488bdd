package monitor

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/test/bundle"
)

// Binaries for the integration tests: TestMain builds them. Set only there,
// read-only afterwards.
var (
	monitorBin string // hull-monitor, built like the release (static, stripped)
	runtimeBin string // /work/main/bin/hull-runtime
	rootless   string // why integration tests are skipped, if they are
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		rootless = "integration tests need root (they start real containers)"
		return m.Run()
	}
	if _, err := os.Stat(bundle.Busybox); err != nil {
		fmt.Println("integration tests need /bin/busybox: apt-get install busybox-static")
		return 1
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	runtimeBin = filepath.Join(repo, "bin", "hull-runtime")
	if _, err := os.Stat(runtimeBin); err != nil {
		// Only this target: the rest of `make build` belongs to others.
		mk := exec.Command("make", "-C", repo, "bin/hull-runtime")
		mk.Stdout, mk.Stderr = os.Stdout, os.Stderr
		if err := mk.Run(); err != nil {
			fmt.Println("make bin/hull-runtime:", err)
			return 1
		}
	}
	// HULL_MONITOR_BIN tests a prebuilt binary (an installed one, or one
	// built with -race).
	if monitorBin = os.Getenv("HULL_MONITOR_BIN"); monitorBin != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "hull-monitor-bin-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	monitorBin = filepath.Join(dir, "hull-monitor")
	// The same flags as the Makefile line proposed for bin/hull-monitor, so
	// the RSS test measures what ships.
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", monitorBin, "github.com/hull-runtime/hull/cmd/hull-monitor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("build hull-monitor:", err)
		return 1
	}
	return m.Run()
}

func needRoot(t *testing.T) {
	t.Helper()
	if rootless != "" {
		t.Skip(rootless)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ctr is one test container: its own bundle, runtime root, state dir and
// cgroup parent (/hull-monitor-test-RANDOM), all removed in cleanup.
type ctr struct {
	t      *testing.T
	cfg    *Config
	spec   *specs.Spec
	dir    string
	cgroup string
	pid    int // the container's first init
	mon    int // the monitor
}

func newCtr(t *testing.T, args ...string) *ctr {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	c := &ctr{t: t, dir: dir, cgroup: "/hull-monitor-test-" + randHex(4), spec: bundle.Spec(args...)}
	id := "mt-" + randHex(4)
	c.spec.Linux.CgroupsPath = c.cgroup + "/" + id
	if err := bundle.Rootfs(filepath.Join(dir, "bundle", "rootfs")); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	c.cfg = &Config{
		ID: id, Bundle: filepath.Join(dir, "bundle"), Runtime: runtimeBin,
		RuntimeRoot: filepath.Join(dir, "runtime-root"), StateDir: state,
		LogPath: filepath.Join(dir, "ctr.log"),
	}
	t.Cleanup(c.cleanup)
	return c
}

// start writes config.json and launches the monitor.
func (c *ctr) start() {
	c.t.Helper()
	if err := c.tryStart(); err != nil {
		c.t.Fatalf("launch: %v", err)
	}
}

func (c *ctr) tryStart() error {
	if err := bundle.WriteConfig(c.cfg.Bundle, c.spec); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, err := Launch(ctx, monitorBin, c.cfg, nil)
	if err != nil {
		return err
	}
	c.pid = pid
	c.mon, err = MonitorPid(c.cfg.StateDir)
	if err == nil && c.mon == 0 && !c.exited() {
		err = errors.New("no live monitor after a successful launch")
	}
	return err
}

func (c *ctr) exited() bool {
	_, err := ReadExit(c.cfg.StateDir)
	return err == nil
}

// runtime runs the container's runtime with its --root.
func (c *ctr) runtime(args ...string) (string, error) {
	cmd := exec.Command(c.cfg.Runtime, append([]string{"--root", c.cfg.RuntimeRoot}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kill signals the container through the runtime.
func (c *ctr) kill(sig string) {
	c.t.Helper()
	if out, err := c.runtime("kill", c.cfg.ID, sig); err != nil {
		c.t.Fatalf("runtime kill: %v: %s", err, out)
	}
}

// waitMonitorExit waits until the monitor process is gone, then returns
// exit.json.
func (c *ctr) waitMonitorExit(timeout time.Duration) *ExitStatus {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for alive(c.mon) {
		if time.Now().After(deadline) {
			c.t.Fatalf("monitor %d still running after %s", c.mon, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ex, err := ReadExit(c.cfg.StateDir)
	if err != nil {
		c.t.Fatalf("exit.json: %v", err)
	}
	return ex
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && len(data) > i+2 && data[i+2] != 'Z'
}

// waitFor polls cond.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logEntry is one json-file record.
type logEntry struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

// readLog parses a json-file log strictly: every line one record with a
// valid RFC3339Nano time.
func readLog(t *testing.T, path string) []logEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e logEntry
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Fatalf("log time %q: %v", e.Time, err)
		}
		if e.Stream != "stdout" && e.Stream != "stderr" {
			t.Fatalf("log stream %q", e.Stream)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func countLog(t *testing.T, path, text string) int {
	n := 0
	for _, e := range readLog(t, path) {
		if e.Log == text {
			n++
		}
	}
	return n
}

// cleanup kills whatever is left: the monitor, the container (runtime
// delete -f), processes in the test's cgroups, the cgroups; then it checks
// that the runtime kept no state.
func (c *ctr) cleanup() {
	if pid, _ := MonitorPid(c.cfg.StateDir); pid > 0 {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	if out, err := c.runtime("list", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			_, _ = c.runtime("delete", "-f", id)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", c.cgroup))
	if st, err := os.Stat(filepath.Join("/sys/fs/cgroup", c.cgroup)); err == nil && st.IsDir() {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", c.cgroup))
	}
	for _, d := range dirs {
		subs, _ := filepath.Glob(filepath.Join(d, "*", "cgroup.procs"))
		for _, procs := range subs {
			data, _ := os.ReadFile(procs)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
			for i := 0; i < 50 && os.Remove(filepath.Dir(procs)) != nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.t.Errorf("remove test cgroup %s: %v", d, err)
		}
	}
	_ = unix.Unmount(filepath.Join(c.dir, "small"), unix.MNT_DETACH)
}

// assertNoRuntimeState fails if the runtime still knows the container.
func (c *ctr) assertNoRuntimeState() {
	c.t.Helper()
	ents, _ := os.ReadDir(c.cfg.RuntimeRoot)
	for _, e := range ents {
		if e.Name() == c.cfg.ID {
			c.t.Errorf("runtime state %s left in %s", e.Name(), c.cfg.RuntimeRoot)
		}
	}
}

// status reads /proc/PID/status fields.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}
