package cgroups

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	libcg "github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/systemd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The test binary re-executes itself as a helper for the relative-path test:
// the helper must run in a cgroup of our choosing, since a relative path is
// resolved against the caller's own cgroup.
const (
	helperEnv    = "HULL_CGROUPS_TEST_HELPER"
	helperRelEnv = "HULL_CGROUPS_TEST_REL"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "relative" {
		os.Exit(relativeHelper())
	}
	os.Exit(m.Run())
}

// relativeHelper waits for a line on stdin (sent once the parent has moved
// it into its cgroup), creates the cgroup for the relative path in
// $HULL_CGROUPS_TEST_REL and prints Paths() as JSON.
func relativeHelper() int {
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "helper: read stdin:", err)
		return 1
	}
	m, err := New(Config{ID: "rel", Path: os.Getenv(helperRelEnv)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	if err := m.Apply(-1); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(m.Paths()); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// ---- helpers ----

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates real cgroups")
	}
}

func randHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// hierarchyRoots returns the mount point of every cgroup hierarchy this
// process is in (v1 controllers, name=systemd, the hybrid cgroup2 mount).
func hierarchyRoots(t *testing.T) []string {
	t.Helper()
	if libcg.IsCgroup2UnifiedMode() {
		return []string{"/sys/fs/cgroup"}
	}
	mounts, err := libcg.GetCgroupMounts(false)
	if err != nil {
		t.Fatal(err)
	}
	var roots []string
	for _, mnt := range mounts {
		roots = append(roots, mnt.Mountpoint)
	}
	if libcg.IsCgroup2HybridMode() {
		roots = append(roots, hybridMountpoint)
	}
	return roots
}

// testPrefix returns a unique absolute cgroup path "/hull-test-<random>"
// and removes it from every hierarchy when the test ends, failing the test
// if something is left behind.
func testPrefix(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	return testPrefixFor(t, "/hull-test-"+randHex(t))
}

// startCmd starts cmd and kills it when the test ends.
func startCmd(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	return startCmd(t, exec.Command("sleep", "100"))
}

// probe is a shell that answers "opened" or "denied" for each line it
// reads, depending on whether it can open /dev/null for writing. (The
// command is true, not ":": a failed redirection of a special builtin
// makes sh exit.)
type probe struct {
	cmd *exec.Cmd
	in  io.Writer
	out *bufio.Reader
}

func startProbe(t *testing.T) *probe {
	t.Helper()
	cmd := exec.Command("sh", "-c", `while read -r _; do if true >/dev/null; then echo opened; else echo denied; fi; done`)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	startCmd(t, cmd)
	return &probe{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

func (p *probe) ask(t *testing.T) string {
	t.Helper()
	if _, err := io.WriteString(p.in, "\n"); err != nil {
		t.Fatal(err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// newManager creates a manager and destroys its cgroup at the end of the
// test (after the processes started later have been killed).
func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m
}

// ctrlDir returns the directory of controller ctrl (v1 name) of m.
func ctrlDir(t *testing.T, m *Manager, ctrl string) string {
	t.Helper()
	key := ctrl
	if libcg.IsCgroup2UnifiedMode() {
		key = ""
	}
	dir := m.Paths()[key]
	if dir == "" {
		t.Fatalf("no %q path in %v", key, m.Paths())
	}
	return dir
}

func readCgroupFile(t *testing.T, dir, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func ptr[T any](v T) *T { return &v }

func waitSignaled(t *testing.T, cmd *exec.Cmd, want syscall.Signal) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d still running 10s after the signal", cmd.Process.Pid)
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != want {
		t.Fatalf("pid %d: exit status %v, want killed by %v", cmd.Process.Pid, cmd.ProcessState, want)
	}
}

// ---- tests ----

func TestApplyPutsProcessInEveryHierarchy(t *testing.T) {
	prefix := testPrefix(t)
	m := newManager(t, Config{ID: "c1", Path: prefix + "/c1"})
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	if len(paths) == 0 {
		t.Fatal("Paths() is empty after Apply")
	}
	for key, dir := range paths {
		if !strings.HasSuffix(dir, prefix+"/c1") {
			t.Errorf("path %q = %s, want it to end in %s", key, dir, prefix+"/c1")
		}
		pids, err := libcg.GetPids(dir)
		if err != nil {
			t.Errorf("path %q: %v", key, err)
			continue
		}
		if !slices.Contains(pids, cmd.Process.Pid) {
			t.Errorf("path %q (%s): pid %d not in cgroup.procs %v", key, dir, cmd.Process.Pid, pids)
		}
	}
	if libcg.IsCgroup2UnifiedMode() {
		if _, ok := paths[""]; !ok || len(paths) != 1 {
			t.Errorf("cgroup v2: Paths() = %v, want only the \"\" key", paths)
		}
	} else {
		for _, want := range []string{"memory", "pids", "cpu", "devices", "freezer"} {
			if _, ok := paths[want]; !ok {
				t.Errorf("Paths() has no %q: %v", want, paths)
			}
		}
		if IsCgroup2HybridMode() {
			if p := paths[""]; p != filepath.Join(hybridMountpoint, prefix, "c1") {
				t.Errorf("hybrid: unified path = %q, want %s", p, filepath.Join(hybridMountpoint, prefix, "c1"))
			}
		}
	}
	if got, want := m.UnifiedPath(), paths[""]; got != want {
		t.Errorf("UnifiedPath() = %q, want %q", got, want)
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Errorf("Pids() = %v, want [%d]", pids, cmd.Process.Pid)
	}
	if !m.Exists() {
		t.Error("Exists() = false after Apply")
	}
}

func TestEmptyPathIsContainerIDBelowEachHierarchyRoot(t *testing.T) {
	requireRoot(t)
	id := "hull-test-" + randHex(t)
	// The cgroup is "/<id>": register the cleanup of that path.
	_ = testPrefixFor(t, "/"+id)
	m := newManager(t, Config{ID: id})
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	roots := hierarchyRoots(t)
	for key, dir := range m.Paths() {
		if filepath.Base(dir) != id || !slices.Contains(roots, filepath.Dir(dir)) {
			t.Errorf("path %q = %s, want <hierarchy root>/%s (roots %v)", key, dir, id, roots)
		}
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("path %q: %v", key, err)
		}
	}
}

// testPrefixFor is testPrefix for a given path.
func testPrefixFor(t *testing.T, prefix string) string {
	t.Helper()
	roots := hierarchyRoots(t)
	t.Cleanup(func() {
		for _, root := range roots {
			dir := filepath.Join(root, prefix)
			if _, err := os.Stat(dir); err == nil {
				if err := libcg.RemovePath(dir); err != nil {
					t.Errorf("cleanup: remove %s: %v", dir, err)
				}
			}
		}
	})
	return prefix
}

func TestSetWritesMemoryAndPidsLimits(t *testing.T) {
	prefix := testPrefix(t)
	const limit = 64 << 20
	m := newManager(t, Config{ID: "c1", Path: prefix + "/c1", Resources: &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](limit), Reservation: ptr[int64](32 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](42)},
	}})
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(); err != nil {
		t.Fatal(err)
	}
	memFile := "memory.limit_in_bytes"
	if libcg.IsCgroup2UnifiedMode() {
		memFile = "memory.max"
	}
	if got := readCgroupFile(t, ctrlDir(t, m, "memory"), memFile); got != strconv.Itoa(limit) {
		t.Errorf("%s = %s, want %d", memFile, got, limit)
	}
	if got := readCgroupFile(t, ctrlDir(t, m, "pids"), "pids.max"); got != "42" {
		t.Errorf("pids.max = %s, want 42", got)
	}
}

func TestSetWritesCPULimits(t *testing.T) {
	prefix := testPrefix(t)
	m := newManager(t, Config{ID: "c1", Path: prefix + "/c1", Resources: &specs.LinuxResources{
		CPU: &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000)},
	}})
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(); err != nil {
		t.Fatal(err)
	}
	dir := ctrlDir(t, m, "cpu")
	if libcg.IsCgroup2UnifiedMode() {
		if got := readCgroupFile(t, dir, "cpu.max"); got != "50000 100000" {
			t.Errorf("cpu.max = %q, want \"50000 100000\"", got)
		}
		if got, want := readCgroupFile(t, dir, "cpu.weight"), strconv.FormatUint(libcg.ConvertCPUSharesToCgroupV2Value(512), 10); got != want {
			t.Errorf("cpu.weight = %s, want %s", got, want)
		}
		return
	}
	for file, want := range map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"} {
		if got := readCgroupFile(t, dir, file); got != want {
			t.Errorf("%s = %s, want %s", file, got, want)
		}
	}
}

func TestRelativePathIsBelowCallersOwnCgroup(t *testing.T) {
	prefix := testPrefix(t)
	const rel = "testdir/cgrouptest/container"

	// The helper runs in prefix/own, which stands for "the runtime's own
	// cgroup".
	own := newManager(t, Config{ID: "own", Path: prefix + "/own"})
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=relative", helperRelEnv+"="+rel)
	helper.Stderr = os.Stderr
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	startCmd(t, helper)
	if err := own.Apply(helper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	var relPaths map[string]string
	if err := json.NewDecoder(stdout).Decode(&relPaths); err != nil {
		t.Fatalf("helper output: %v", err)
	}
	if err := helper.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	// Destroy the relative cgroup from here, through Load.
	t.Cleanup(func() {
		lm, err := Load(Config{ID: "rel", Path: rel}, relPaths)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		if err := lm.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	ownPaths := own.Paths()
	if len(relPaths) != len(ownPaths) {
		t.Errorf("relative Paths() %v and own Paths() %v have different keys", relPaths, ownPaths)
	}
	for key, ownDir := range ownPaths {
		want := filepath.Join(ownDir, rel)
		if libcg.IsCgroup2UnifiedMode() {
			// Like runc's fs2 driver: below the parent of our own cgroup.
			want = filepath.Join(filepath.Dir(ownDir), rel)
		}
		if got := relPaths[key]; got != want {
			t.Errorf("path %q = %q, want %q", key, got, want)
		}
		if _, err := os.Stat(want); err != nil {
			t.Errorf("path %q: %v", key, err)
		}
	}
}

func TestDestroyRemovesEveryDirAndToleratesMissingDirs(t *testing.T) {
	prefix := testPrefix(t)
	cfg := Config{ID: "c1", Path: prefix + "/c1", Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}}}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(); err != nil {
		t.Fatal(err)
	}
	// A sub-cgroup (as a container with its own cgroupns may create).
	sub := filepath.Join(ctrlDir(t, m, "pids"), "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for key, dir := range paths {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("path %q (%s) still exists after Destroy (stat: %v)", key, dir, err)
		}
	}
	if m.Exists() {
		t.Error("Exists() = true after Destroy")
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	lm, err := Load(cfg, paths)
	if err != nil {
		t.Fatal(err)
	}
	if err := lm.Destroy(); err != nil {
		t.Errorf("Destroy of a loaded manager whose dirs are gone: %v", err)
	}
}

func TestFreezeAndThawChangeFreezerState(t *testing.T) {
	prefix := testPrefix(t)
	m := newManager(t, Config{ID: "c1", Path: prefix + "/c1"})
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		t.Helper()
		s, err := m.FreezerState()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := state(); s != StateRunning {
		t.Fatalf("state after Apply = %q, want %q", s, StateRunning)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != StatePaused {
		t.Errorf("state after Freeze = %q, want %q", s, StatePaused)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != StateRunning {
		t.Errorf("state after Thaw = %q, want %q", s, StateRunning)
	}
}

func TestDeviceRulesDenyEveryDeviceNotAllowed(t *testing.T) {
	prefix := testPrefix(t)
	for _, tc := range []struct {
		name    string
		devices []specs.LinuxDeviceCgroup
		want    string
	}{
		{"no rules denies /dev/null", nil, "denied"},
		{"deny all denies /dev/null", []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}, "denied"},
		{"allowing 1:3 opens /dev/null", []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
		}, "opened"},
		{"allowing another device denies /dev/null", []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "rwm"},
		}, "denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, Config{ID: "c", Path: prefix + "/" + strings.ReplaceAll(tc.name, " ", "-"),
				Resources: &specs.LinuxResources{Devices: tc.devices}})
			p := startProbe(t)
			if got := p.ask(t); got != "opened" {
				t.Fatalf("before Apply: probe says %q, want opened", got)
			}
			if err := m.Apply(p.cmd.Process.Pid); err != nil {
				t.Fatal(err)
			}
			if err := m.Set(); err != nil {
				t.Fatal(err)
			}
			if got := p.ask(t); got != tc.want {
				t.Errorf("probe says %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUpdateMergesIntoCurrentResourcesAndKeepsDeviceRules(t *testing.T) {
	prefix := testPrefix(t)
	m := newManager(t, Config{ID: "c1", Path: prefix + "/c1", Resources: &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
		},
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](42)},
	}})
	p := startProbe(t)
	if err := m.Apply(p.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(); err != nil {
		t.Fatal(err)
	}
	if err := m.Update(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}}); err != nil {
		t.Fatal(err)
	}
	if got := readCgroupFile(t, ctrlDir(t, m, "pids"), "pids.max"); got != "10" {
		t.Errorf("pids.max = %s after Update, want 10", got)
	}
	if l := m.Resources().Memory.Limit; l == nil || *l != 64<<20 {
		t.Errorf("memory limit after a pids-only Update = %v, want %d", l, 64<<20)
	}
	if got := p.ask(t); got != "opened" {
		t.Errorf("after an Update without devices the probe says %q, want opened", got)
	}
	// Validation sees the merged resources: swap below the current limit.
	err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr[int64](1 << 20)}})
	if err == nil || !strings.Contains(err.Error(), "linux.resources.memory.swap") {
		t.Errorf("Update with swap < current limit: err = %v, want one naming linux.resources.memory.swap", err)
	}
	if err := m.Update(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}); err != nil {
		t.Fatal(err)
	}
	if got := p.ask(t); got != "denied" {
		t.Errorf("after an Update denying all devices the probe says %q, want denied", got)
	}
}

func TestLoadFromPathsControlsTheSameCgroup(t *testing.T) {
	prefix := testPrefix(t)
	cfg := Config{ID: "c1", Path: prefix + "/c1", Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](42)}}}
	m := newManager(t, cfg)
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(); err != nil {
		t.Fatal(err)
	}
	// Round-trip through JSON, as state.json does.
	data, err := json.Marshal(m.Paths())
	if err != nil {
		t.Fatal(err)
	}
	var paths map[string]string
	if err := json.Unmarshal(data, &paths); err != nil {
		t.Fatal(err)
	}
	lm, err := Load(cfg, paths)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := lm.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("loaded Pids() = %v, want it to contain %d", pids, cmd.Process.Pid)
	}
	if err := lm.Freeze(); err != nil {
		t.Fatal(err)
	}
	if s, err := m.FreezerState(); err != nil || s != StatePaused {
		t.Errorf("state seen by the original manager = %q, %v; want %q", s, err, StatePaused)
	}
	if err := lm.Thaw(); err != nil {
		t.Fatal(err)
	}
	if got := lm.UnifiedPath(); got != m.UnifiedPath() {
		t.Errorf("loaded UnifiedPath() = %q, want %q", got, m.UnifiedPath())
	}
	if err := lm.KillAll(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitSignaled(t, cmd, syscall.SIGKILL)
	if err := lm.Destroy(); err != nil {
		t.Fatal(err)
	}
	for key, dir := range paths {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("path %q (%s) still exists after Destroy of the loaded manager", key, dir)
		}
	}
}

func TestKillAllWithSIGKILLKillsEveryProcess(t *testing.T) {
	prefix := testPrefix(t)
	m := newManager(t, Config{ID: "c1", Path: prefix + "/c1"})
	a, b := startSleep(t), startSleep(t)
	if err := m.Apply(a.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.AddPid(b.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if u := m.UnifiedPath(); u != "" {
		_, err := os.Stat(filepath.Join(u, "cgroup.kill"))
		t.Logf("cgroup.kill in %s: %v (nil means it is used)", u, err)
	}
	if err := m.KillAll(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitSignaled(t, a, syscall.SIGKILL)
	waitSignaled(t, b, syscall.SIGKILL)
}

func TestKillAllWithOtherSignalsKeepsAPausedContainerPaused(t *testing.T) {
	prefix := testPrefix(t)
	m := newManager(t, Config{ID: "c1", Path: prefix + "/c1"})
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := m.KillAll(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if s, err := m.FreezerState(); err != nil || s != StatePaused {
		t.Fatalf("state after KillAll(SIGTERM) on a paused container = %q, %v; want %q", s, err, StatePaused)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	waitSignaled(t, cmd, syscall.SIGTERM)
}

func TestKillAllFailsWhenTheCgroupIsGone(t *testing.T) {
	prefix := testPrefix(t)
	m, err := New(Config{ID: "c1", Path: prefix + "/never-created"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.KillAll(unix.SIGKILL); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("KillAll on a missing cgroup: err = %v, want os.ErrNotExist", err)
	}
}

func TestStatsReportPidsAndMemoryUsage(t *testing.T) {
	prefix := testPrefix(t)
	m := newManager(t, Config{ID: "c1", Path: prefix + "/c1", Resources: &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](42)},
	}})
	cmd := startSleep(t)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(); err != nil {
		t.Fatal(err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.PidsStats.Current != 1 || st.PidsStats.Limit != 42 {
		t.Errorf("pids stats = %+v, want current 1, limit 42", st.PidsStats)
	}
	if st.MemoryStats.Usage.Limit != 64<<20 {
		t.Errorf("memory limit in stats = %d, want %d", st.MemoryStats.Usage.Limit, 64<<20)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 0 {
		t.Errorf("OOMKillCount() = %d, %v; want 0, nil", n, err)
	}
}

func TestInvalidResourcesGiveErrorsNamingTheField(t *testing.T) {
	for _, tc := range []struct {
		field string
		res   specs.LinuxResources
	}{
		{"linux.resources.memory.limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-2)}}},
		{"linux.resources.memory.reservation", specs.LinuxResources{Memory: &specs.LinuxMemory{Reservation: ptr[int64](-5)}}},
		{"linux.resources.memory.swap", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](32 << 20)}}},
		{"linux.resources.memory.swap", specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr[int64](32 << 20)}}},
		{"linux.resources.memory.swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](101)}}},
		{"linux.resources.cpu.shares", specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](1)}}},
		{"linux.resources.cpu.quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](500)}}},
		{"linux.resources.cpu.period", specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr[uint64](2000000)}}},
		{"linux.resources.cpu.burst", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](10000), Burst: ptr[uint64](20000)}}},
		{"linux.resources.cpu.cpus", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-a"}}},
		{"linux.resources.cpu.mems", specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "3-1"}}},
		{"linux.resources.cpu.idle", specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: ptr[int64](2)}}},
		{"linux.resources.pids.limit", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](-7)}}},
		{"linux.resources.blockIO.weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](5)}}},
		{"linux.resources.blockIO.weightDevice[0]", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8}}}}}},
		{"linux.resources.blockIO.throttleReadBpsDevice[0]", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: -1}, Rate: 1}}}}},
		{"linux.resources.hugepageLimits[0].pageSize", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}}},
		{"linux.resources.devices[1].type", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwm"}, {Type: "x", Access: "r"}}}},
		{"linux.resources.devices[0].access", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true}}}},
		{"linux.resources.devices[0].access", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwx"}}}},
		{"linux.resources.devices[0].major", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Major: ptr[int64](-3), Access: "r"}}}},
		{"linux.resources.network.priorities[0].name", specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: ""}}}}},
		{"linux.resources.unified", specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			res := tc.res
			_, err := New(Config{ID: "x", Path: "/hull-test-never-created", Resources: &res})
			if err == nil {
				t.Fatalf("New accepted %+v", res)
			}
			if !strings.HasPrefix(err.Error(), tc.field+":") {
				t.Errorf("error %q does not start with %q", err, tc.field+":")
			}
		})
	}
}

func TestInvalidPathsAndIDsAreRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"root cgroup", Config{ID: "x", Path: "/"}, "linux.cgroupsPath"},
		{"own cgroup", Config{ID: "x", Path: "."}, "linux.cgroupsPath"},
		{"systemd path without colons", Config{ID: "x", Path: "/a/b", Systemd: true}, "linux.cgroupsPath"},
		{"systemd path without name", Config{ID: "x", Path: "system.slice:hull:", Systemd: true}, "linux.cgroupsPath"},
		{"empty id", Config{}, "invalid container id"},
		{"id with slash", Config{ID: "a/b"}, "invalid container id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%+v): err = %v, want one mentioning %q", tc.cfg, err, tc.want)
			}
		})
	}
}

func TestMissingControllerIsAnErrorOnlyWhenRequested(t *testing.T) {
	requireRoot(t)
	var res specs.LinuxResources
	var field string
	if libcg.IsCgroup2UnifiedMode() {
		// cgroup v2 has no net_cls.
		res.Network = &specs.LinuxNetwork{ClassID: ptr[uint32](0x100001)}
		field = "linux.resources.network.classID"
	} else {
		for _, c := range []struct {
			ctrl, field string
			res         specs.LinuxResources
		}{
			{"net_cls", "linux.resources.network.classID", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](0x100001)}}},
			{"net_prio", "linux.resources.network.priorities", specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 1}}}}},
			{"rdma", "linux.resources.rdma", specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](1)}}}},
		} {
			if _, err := libcg.FindCgroupMountpoint("", c.ctrl); err != nil {
				res, field = c.res, c.field
				break
			}
		}
		if field == "" {
			t.Skip("every controller this test can request (net_cls, net_prio, rdma) is mounted here")
		}
	}
	_, err := New(Config{ID: "x", Path: "/hull-test-never-created", Resources: &res})
	if !errors.Is(err, ErrControllerUnavailable) || !strings.HasPrefix(err.Error(), field+":") {
		t.Errorf("New with %s: err = %v, want ErrControllerUnavailable naming %s", field, err, field)
	}
	// Without that resource the same host works (every other test here
	// creates cgroups without it).
	if _, err := New(Config{ID: "x", Path: "/hull-test-never-created", Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](5)}}}); err != nil {
		t.Errorf("New without %s: %v", field, err)
	}
}

func TestHugepageLimitsNeedTheHugetlbController(t *testing.T) {
	prefix := testPrefix(t)
	sizes := libcg.HugePageSizes()
	if len(sizes) == 0 {
		t.Skip("this kernel reports no huge page sizes")
	}
	res := &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: sizes[0], Limit: 4 << 20}}}
	_, hugetlbErr := libcg.FindCgroupMountpoint("", "hugetlb")
	if !libcg.IsCgroup2UnifiedMode() && hugetlbErr != nil {
		_, err := New(Config{ID: "x", Path: prefix + "/c1", Resources: res})
		if !errors.Is(err, ErrControllerUnavailable) || !strings.HasPrefix(err.Error(), "linux.resources.hugepageLimits:") {
			t.Errorf("New with hugepageLimits and no v1 hugetlb: err = %v, want ErrControllerUnavailable naming the field", err)
		}
		return
	}
	m, err := New(Config{ID: "x", Path: prefix + "/c1", Resources: res})
	if errors.Is(err, ErrControllerUnavailable) {
		t.Skipf("hugetlb controller not enabled here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Destroy() })
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(); err != nil {
		t.Fatal(err)
	}
}

func TestUnifiedResourcesNeedCgroup2(t *testing.T) {
	prefix := testPrefix(t)
	res := &specs.LinuxResources{Unified: map[string]string{"pids.max": "7"}}
	if !libcg.IsCgroup2UnifiedMode() {
		_, err := New(Config{ID: "x", Path: prefix + "/c1", Resources: res})
		if !errors.Is(err, ErrControllerUnavailable) || !strings.HasPrefix(err.Error(), "linux.resources.unified:") {
			t.Errorf("New with unified on cgroup v1: err = %v, want ErrControllerUnavailable naming linux.resources.unified", err)
		}
		return
	}
	m := newManager(t, Config{ID: "x", Path: prefix + "/c1", Resources: res})
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(); err != nil {
		t.Fatal(err)
	}
	if got := readCgroupFile(t, m.UnifiedPath(), "pids.max"); got != "7" {
		t.Errorf("pids.max = %s, want 7", got)
	}
}

func TestSystemdDriverFailsClearlyWithoutSystemd(t *testing.T) {
	if systemd.IsRunningSystemd() {
		t.Skip("systemd is running on this host: the no-systemd error path cannot be exercised")
	}
	done := make(chan error, 1)
	go func() {
		_, err := New(Config{ID: "x", Systemd: true, Path: "system.slice:hull:x"})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "systemd is not running") {
			t.Errorf("New with Systemd: err = %v, want one saying systemd is not running", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("New with Systemd hung")
	}
}

func TestMergeResourcesKeepsUnsetFields(t *testing.T) {
	old := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](100), Swap: ptr[int64](200)},
		CPU:     &specs.LinuxCPU{Shares: ptr[uint64](512), Cpus: "0"},
		Unified: map[string]string{"a.b": "1"},
		Devices: []specs.LinuxDeviceCgroup{{Access: "rwm"}},
	}
	n := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](150)},
		CPU:     &specs.LinuxCPU{Mems: "0"},
		Unified: map[string]string{"c.d": "2"},
	}
	got := mergeResources(old, n)
	if *got.Memory.Limit != 150 || *got.Memory.Swap != 200 {
		t.Errorf("memory = %+v", got.Memory)
	}
	if *got.CPU.Shares != 512 || got.CPU.Cpus != "0" || got.CPU.Mems != "0" {
		t.Errorf("cpu = %+v", got.CPU)
	}
	if len(got.Unified) != 2 || len(old.Unified) != 1 {
		t.Errorf("unified = %v (old %v)", got.Unified, old.Unified)
	}
	if len(got.Devices) != 1 {
		t.Errorf("devices = %v", got.Devices)
	}
	if *old.Memory.Limit != 100 {
		t.Error("mergeResources modified old")
	}
}
