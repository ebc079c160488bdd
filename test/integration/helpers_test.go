// Package integration drives the built hull-runtime binary against real
// containers. It needs root; each test has its own --root, bundle and cgroup
// path under a temp dir and checks that nothing is left behind.
package integration

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/test/bundle"
)

// runtimeBin is the hull-runtime built for this test run.
var runtimeBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("integration tests need root (they start real containers): skipped")
		os.Exit(0)
	}
	if _, err := os.Stat(bundle.Busybox); err != nil {
		fmt.Println("integration tests need /bin/busybox: apt-get install busybox-static")
		os.Exit(1)
	}
	// HULL_RUNTIME names a prebuilt binary (the VM tier has no Go toolchain).
	if runtimeBin = os.Getenv("HULL_RUNTIME"); runtimeBin != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "hull-itest-bin-")
	if err != nil {
		panic(err)
	}
	// Rootless tests run the binary as an unprivileged user.
	if err := os.Chmod(dir, 0o755); err != nil {
		panic(err)
	}
	runtimeBin = filepath.Join(dir, "hull-runtime")
	build := exec.Command("go", "build", "-o", runtimeBin, "github.com/hull-runtime/hull/cmd/hull-runtime")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("build hull-runtime:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's private world: state root, bundle, cgroup parent.
type env struct {
	t      *testing.T
	dir    string
	root   string
	bundle string
	cgroup string // cgroupsPath parent, e.g. /hull-test-abcd
	spec   *specs.Spec
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newEnv makes a busybox bundle running args, with its own cgroup parent. The
// cleanup force-deletes every container left, then fails the test on any
// leftover state dir, mount or cgroup.
func newEnv(t *testing.T, args ...string) *env {
	t.Helper()
	dir := t.TempDir()
	// User-namespaced containers must be able to traverse the bundle path.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, dir: dir, root: filepath.Join(dir, "state"), bundle: filepath.Join(dir, "bundle"), cgroup: "/hull-test-" + randHex(4)}
	e.spec = bundle.Spec(args...)
	if err := bundle.Rootfs(filepath.Join(e.bundle, "rootfs")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)
	return e
}

func writeConfig(dir string, s *specs.Spec) error { return bundle.WriteConfig(dir, s) }

// write saves the (possibly edited) spec; id names the container's cgroup.
func (e *env) write(id string) {
	e.t.Helper()
	if e.spec.Linux != nil && e.spec.Linux.CgroupsPath == "" {
		e.spec.Linux.CgroupsPath = e.cgroup + "/" + id
	}
	if err := bundle.WriteConfig(e.bundle, e.spec); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) cleanup() {
	out, _ := e.runtime("list", "-q")
	for _, id := range strings.Fields(out) {
		if _, err := e.runtime("delete", "-f", id); err != nil {
			e.t.Errorf("cleanup: delete %s: %v", id, err)
		}
	}
	ents, _ := os.ReadDir(e.root)
	for _, ent := range ents {
		if ent.Name() == ".seccomp-cache" {
			continue // compiled profiles, kept on purpose
		}
		e.t.Errorf("leak: state dir %s left in --root", ent.Name())
	}
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(data), e.dir) {
		e.t.Errorf("leak: mounts under %s:\n%s", e.dir, grepLines(string(data), e.dir))
	}
	for _, cg := range cgroupDirs(e.cgroup) {
		// Remove the test's parent cgroup; a child left inside is a leak.
		subs, _ := filepath.Glob(filepath.Join(cg, "*", "cgroup.procs"))
		if len(subs) > 0 {
			e.t.Errorf("leak: cgroup %s still exists", filepath.Dir(subs[0]))
			for _, s := range subs {
				_ = os.Remove(filepath.Dir(s))
			}
		}
		if err := os.Remove(cg); err != nil && !os.IsNotExist(err) {
			e.t.Errorf("remove test cgroup %s: %v", cg, err)
		}
	}
}

// cgroupDirs lists the dirs of cgroup path p in every mounted hierarchy that has it.
func cgroupDirs(p string) []string {
	var out []string
	mounts, _ := filepath.Glob("/sys/fs/cgroup/*")
	mounts = append(mounts, "/sys/fs/cgroup")
	for _, m := range mounts {
		d := filepath.Join(m, p)
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

func grepLines(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// runtime runs hull-runtime with the env's --root and returns combined output.
func (e *env) runtime(args ...string) (string, error) {
	cmd := exec.Command(runtimeBin, append([]string{"--root", e.root}, args...)...)
	// A file, not a pipe: a created container keeps create's stdio open, and
	// exec.Cmd would wait for a pipe to close.
	out, err := os.CreateTemp(e.dir, "out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		err = fmt.Errorf("hull-runtime %v: timed out", args)
	}
	data, _ := os.ReadFile(out.Name())
	return string(data), err
}

// must runs hull-runtime and fails the test on error.
func (e *env) must(args ...string) string {
	e.t.Helper()
	out, err := e.runtime(args...)
	if err != nil {
		e.t.Fatalf("hull-runtime %v: %v\n%s", args, err, out)
	}
	return out
}

// run runs the bundle in the foreground and returns its output and exit code.
func (e *env) run(id string) (string, int) {
	e.t.Helper()
	e.write(id)
	out, err := e.runtime("run", "--bundle", e.bundle, id)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return out, ee.ExitCode()
		}
		e.t.Fatalf("run: %v", err)
	}
	return out, 0
}

type stateOut struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

func (e *env) state(id string) stateOut {
	e.t.Helper()
	var st stateOut
	out := e.must("state", id)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("state %s: %v\n%s", id, err, out)
	}
	return st
}

// waitStatus polls `state` until the container reaches want.
func (e *env) waitStatus(id, want string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.state(id)
		if st.Status == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s: status %s, want %s", id, st.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cgroup2Unified reports whether /sys/fs/cgroup is the cgroup v2 unified
// hierarchy (`stat -f -c %T /sys/fs/cgroup` says cgroup2fs).
func cgroup2Unified(t *testing.T) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatalf("statfs /sys/fs/cgroup: %v", err)
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}
