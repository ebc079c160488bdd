package rootless

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hull-runtime/hull/engine/internal/proc"
)

func TestSubRangeFindsTheUsersRangeByNameOrUid(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(f, []byte("other:10:5\nalice:100000:65536\n1234:200000:100\nbad:x:1\n"), 0o644)
	for _, tc := range []struct {
		name string
		uid  int
		want [2]uint64
	}{{"alice", 1000, [2]uint64{100000, 65536}}, {"bob", 1234, [2]uint64{200000, 100}}} {
		got, err := subRange(f, tc.name, tc.uid)
		if err != nil || got != tc.want {
			t.Errorf("%s/%d: %v %v, want %v", tc.name, tc.uid, got, err, tc.want)
		}
	}
	if _, err := subRange(f, "carol", 999); err == nil || !strings.Contains(err.Error(), "usermod --add-subuids") {
		t.Errorf("no range: %v", err)
	}
	if _, err := subRange(filepath.Join(t.TempDir(), "none"), "alice", 1000); err == nil {
		t.Error("a missing file is not an error")
	}
}

// The pause pid file names a process by pid and start time: a later
// process with the same pid is not taken for the pause process.
func TestRunningChecksTheStartTimeNotJustThePid(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "pause.pid")
	st, err := proc.StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pf, fmt.Appendf(nil, "%d %d\n", os.Getpid(), st), 0o600)
	if pid, ok := running(pf); !ok || pid != os.Getpid() {
		t.Errorf("this process: %d %v", pid, ok)
	}
	os.WriteFile(pf, fmt.Appendf(nil, "%d %d\n", os.Getpid(), st+1), 0o600)
	if _, ok := running(pf); ok {
		t.Error("a different start time still counts as the pause process")
	}
	os.WriteFile(pf, []byte("garbage"), 0o600)
	if _, ok := running(pf); ok {
		t.Error("garbage counts as a pause process")
	}
}
