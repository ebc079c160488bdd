package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A create killed while the runtime's hooks run leaves a record that says
// stopped, an init that died with it, and nothing once deleted.
func TestCreateKilledDuringHooksLeavesACleanableRecord(t *testing.T) {
	e := newEnv(t, "true")
	marker := filepath.Join(e.dir, "hook-ran")
	e.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + marker + "; sleep 30"}}}}
	e.write("killed")
	before := len(initProcesses())
	cmd := exec.Command(runtimeBin, "--root", e.root, "create", "--bundle", e.bundle, "killed")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the createRuntime hook never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// The hook (same process group) goes too.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	deadline = time.Now().Add(10 * time.Second)
	for len(initProcesses()) > before {
		if time.Now().After(deadline) {
			t.Fatal("the init outlived the killed create")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := e.state("killed"); st.Status != "stopped" {
		t.Fatalf("status after a killed create: %q, want stopped", st.Status)
	}
	e.must("delete", "killed")
	if dirs := cgroupDirs(e.cgroup + "/killed"); len(dirs) > 0 {
		t.Fatalf("cgroup left: %v", dirs)
	}
}

// SIGKILL of create at many points of its run: delete --force always cleans up.
func TestCreateKilledAtRandomPointsIsAlwaysCleanable(t *testing.T) {
	e := newEnv(t, "true")
	for i, delay := range []time.Duration{0, 1, 2, 3, 5, 8, 12, 20, 30, 50} {
		id := "k" + strconv.Itoa(i)
		e.spec.Linux.CgroupsPath = ""
		e.write(id)
		cmd := exec.Command(runtimeBin, "--root", e.root, "create", "--bundle", e.bundle, id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if out, err := e.runtime("delete", "--force", id); err != nil && !strings.Contains(out, "does not exist") {
			t.Fatalf("delete --force after create killed at %v: %v %s", delay*time.Millisecond, err, out)
		}
		if _, err := os.Stat(filepath.Join(e.root, id)); err == nil {
			t.Fatalf("state dir of %s left after delete --force", id)
		}
		if dirs := cgroupDirs(e.cgroup + "/" + id); len(dirs) > 0 {
			t.Fatalf("cgroup of %s left after delete --force (killed at %v): %v", id, delay*time.Millisecond, dirs)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(initProcesses()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("init processes left: %v", initProcesses())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
