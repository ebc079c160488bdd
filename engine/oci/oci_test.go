package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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

// runtimeBin builds (once per test binary) or takes HULL_RUNTIME.
func runtimeBin(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (real containers)")
	}
	if p := os.Getenv("HULL_RUNTIME"); p != "" {
		return p
	}
	p := filepath.Join(t.TempDir(), "hull-runtime")
	out, err := exec.Command("go", "build", "-o", p, "github.com/hull-runtime/hull/cmd/hull-runtime").CombinedOutput()
	if err != nil {
		t.Fatalf("build hull-runtime: %v\n%s", err, out)
	}
	return p
}

func TestDrivesAContainerThroughItsLifecycle(t *testing.T) {
	bin := runtimeBin(t)
	dir := t.TempDir()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := "oci-test-" + hex.EncodeToString(b)
	s := bundle.Spec("sleep", "60")
	s.Linux.CgroupsPath = "/hull-oci-test-" + hex.EncodeToString(b)
	if err := bundle.Write(filepath.Join(dir, "bundle"), s); err != nil {
		t.Fatal(err)
	}
	rt, err := New(bin, filepath.Join(dir, "root"), false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// stdio on /dev/null: a detached container keeps its stdio open.
	if err := exec.Command(bin, append(rt.GlobalArgs(), "run", "-d", "--bundle", filepath.Join(dir, "bundle"), id)...).Run(); err != nil {
		t.Fatalf("run -d: %v", err)
	}
	t.Cleanup(func() { _ = rt.Delete(context.Background(), id, true) })
	st, err := rt.State(ctx, id)
	if err != nil || st.Status != "running" || st.Pid <= 0 {
		t.Fatalf("state: %+v %v", st, err)
	}
	pids, err := rt.Ps(ctx, id)
	if err != nil || len(pids) != 1 || pids[0] != st.Pid {
		t.Errorf("ps: %v %v (init %d)", pids, err, st.Pid)
	}
	if err := rt.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st, _ := rt.State(ctx, id); st.Status != "paused" {
		t.Errorf("after pause: %s", st.Status)
	}
	if err := rt.Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
	cmd, cleanup, err := rt.ExecCommand(ctx, id, &specs.Process{Args: []string{"echo", "from-exec"}, Cwd: "/", Env: []string{"PATH=/bin"}}, ExecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eout, err := cmd.CombinedOutput()
	cleanup()
	if err != nil || strings.TrimSpace(string(eout)) != "from-exec" {
		t.Errorf("exec: %q %v", eout, err)
	}
	if err := rt.Kill(ctx, id, unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := rt.State(ctx, id)
		if err == nil && st.Status == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not stopped after SIGKILL: %+v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := rt.Delete(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.State(ctx, id); !errors.Is(err, ErrNotExist) {
		t.Errorf("state after delete: %v, want ErrNotExist", err)
	}
}

func TestUnknownRuntimesAreRefusedWithTheirName(t *testing.T) {
	if _, err := New("no-such-runtime-xyz", t.TempDir(), false); err == nil || !strings.Contains(err.Error(), "no-such-runtime-xyz") {
		t.Errorf("New of a missing runtime: %v", err)
	}
	f := filepath.Join(t.TempDir(), "not-exec")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(f, t.TempDir(), false); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Errorf("New of a non-executable: %v", err)
	}
}

func TestRuntimeMessagePrefersTheJSONErrorLine(t *testing.T) {
	in := []byte("{\"level\":\"warning\",\"msg\":\"ignored\"}\n{\"level\":\"error\",\"msg\":\"container foo does not exist\"}\n")
	if got := runtimeMessage(in); got != "container foo does not exist" {
		t.Errorf("got %q", got)
	}
	if got := runtimeMessage([]byte("plain failure\n\n")); got != "plain failure" {
		t.Errorf("got %q", got)
	}
}
