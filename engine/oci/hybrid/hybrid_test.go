package hybrid

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOtherRuntimesRunAsGiven(t *testing.T) {
	for _, rt := range []string{"/usr/bin/runc", "/usr/local/bin/hull-runtime", "runc"} {
		if got := Argv(rt, "--root", "/r", "state", "x"); !slices.Equal(got, []string{rt, "--root", "/r", "state", "x"}) {
			t.Errorf("Argv(%s) = %q", rt, got)
		}
	}
}

// A stand-in named crun reports what it sees at /sys/fs/cgroup/unified:
// on a hybrid host with controllers there it must not see the cgroup2
// mount, and the host must still have it afterwards.
func TestCrunDoesNotSeeAUnifiedMountWithControllers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a mount namespace)")
	}
	crun := filepath.Join(t.TempDir(), "crun")
	if err := os.WriteFile(crun, []byte("#!/bin/sh\necho \"$@\"; stat -fc %T /sys/fs/cgroup/unified 2>/dev/null || echo absent\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hybrid := unifiedHasControllers()
	argv := Argv(crun, "create", "a b")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] != "create a b" {
		t.Fatalf("the arguments did not arrive as given: %q", out)
	}
	if hybrid && lines[1] == "cgroup2fs" {
		t.Errorf("crun still sees the unified cgroup2 mount (argv %q)", argv)
	}
	if hybrid != unifiedHasControllers() {
		t.Error("the host's unified mount changed")
	}
	t.Logf("hybrid host with unified controllers: %v; crun saw %s", hybrid, lines[1])
}
