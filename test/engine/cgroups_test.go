package engine

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// These tests need no CNI (--network none), so scripts/vm-test.sh runs them
// on a pure cgroup v2 host too (VM_ENGINE_TESTS below): each checks what the
// kernel holds for the container, through whichever hierarchy this host has.

// cgroupFile returns the host path of file in the container's cgroup in
// the hierarchy of controller (ignored on cgroup v2), from /proc/PID/cgroup.
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v2 := isCgroup2()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v2 && parts[0] == "0" {
			return filepath.Join("/sys/fs/cgroup", parts[2], file)
		}
		for _, c := range strings.Split(parts[1], ",") {
			if !v2 && c == controller {
				return filepath.Join("/sys/fs/cgroup", controller, parts[2], file)
			}
		}
	}
	t.Fatalf("pid %d: no %s cgroup in /proc/%d/cgroup", pid, controller, pid)
	return ""
}

func isCgroup2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func containerPid(t *testing.T, e *env, name string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(e.must("inspect", "--format", "{{.State.Pid}}", name)))
	if err != nil || pid <= 0 {
		t.Fatalf("inspect %s: pid %d (%v)", name, pid, err)
	}
	return pid
}

func TestLimitsStatsTopAndPauseReachTheContainersCgroup(t *testing.T) {
	e := newEnv(t)
	e.must("run", "-d", "--name", "lim", "--network", "none", "-m", "64m", "--pids-limit", "50", "--cpus", "0.5",
		img(), "sh", "-c", "while :; do sleep 0.1; done")
	pid := containerPid(t, e, "lim")

	type want struct{ controller, file, value string }
	wants := []want{
		{"memory", "memory.limit_in_bytes", "67108864"},
		{"pids", "pids.max", "50"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
	}
	if isCgroup2() {
		wants = []want{
			{"", "memory.max", "67108864"},
			{"", "pids.max", "50"},
			{"", "cpu.max", "50000 100000"},
		}
	}
	for _, w := range wants {
		if got := readTrimmed(t, cgroupFile(t, pid, w.controller, w.file)); got != w.value {
			t.Errorf("%s = %q, want %q", w.file, got, w.value)
		}
	}

	stats := e.must("stats", "--no-stream", "lim")
	if !strings.Contains(stats, "lim") || !strings.Contains(stats, "64MiB") && !strings.Contains(stats, "64MB") && !strings.Contains(stats, "67.1MB") {
		t.Errorf("stats does not show the 64 MiB limit: %q", stats)
	}
	if top := e.must("top", "lim"); !strings.Contains(top, "while :") && !strings.Contains(top, "sleep") {
		t.Errorf("top does not show the container's processes: %q", top)
	}

	e.must("pause", "lim")
	frozen := func() string {
		if isCgroup2() {
			for line := range strings.Lines(readTrimmed(t, cgroupFile(t, pid, "", "cgroup.events"))) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "frozen "); ok {
					return v
				}
			}
			return "?"
		}
		return readTrimmed(t, cgroupFile(t, pid, "freezer", "freezer.state"))
	}
	if st, f := strings.TrimSpace(e.must("inspect", "--format", "{{.State.Status}}", "lim")), frozen(); st != "paused" || (f != "1" && f != "FROZEN") {
		t.Errorf("after pause: status %q, cgroup frozen %q", st, f)
	}
	e.must("unpause", "lim")
	if st, f := strings.TrimSpace(e.must("inspect", "--format", "{{.State.Status}}", "lim")), frozen(); st != "running" || (f != "0" && f != "THAWED") {
		t.Errorf("after unpause: status %q, cgroup frozen %q", st, f)
	}
	e.must("rm", "-f", "lim")
}

func TestAnOOMKilledContainerIsReportedSo(t *testing.T) {
	e := newEnv(t)
	// tail buffers a line that never ends: it grows until the kernel kills it.
	_, errOut, err := e.hull("run", "--name", "oom", "--network", "none", "-m", "16m", "--memory-swap", "16m",
		img(), "busybox", "tail", "/dev/zero")
	if code := exitCode(err); code != 137 {
		t.Fatalf("exit code %d (%v), want 137 (SIGKILL)\n%s", code, err, errOut)
	}
	if got := strings.TrimSpace(e.must("inspect", "--format", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom")); got != "true 137" {
		t.Errorf("inspect: OOMKilled ExitCode = %q, want \"true 137\"", got)
	}
	e.must("rm", "oom")
}

func TestJoiningAnotherContainersNamespacesSharesItsNamesAndProcesses(t *testing.T) {
	e := newEnv(t)
	e.must("run", "-d", "--name", "owner", "--network", "none", "--hostname", "ownerhost",
		"--dns", "10.9.9.9", "--dns-search", "example.test", "--dns-option", "ndots:3",
		img(), "sh", "-c", "while :; do sleep 0.1; done")
	ns := func(name string) string {
		return strings.TrimSpace(e.must("exec", name, "sh", "-c", "for n in ipc pid uts net; do ls -l /proc/self/ns/$n | sed 's/.*-> //'; done"))
	}
	out := e.must("run", "--rm", "--network", "container:owner", "--ipc", "container:owner", "--pid", "container:owner", "--uts", "container:owner",
		img(), "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /etc/resolv.conf; for n in ipc pid uts net; do ls -l /proc/self/ns/$n | sed 's/.*-> //'; done")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 9 || lines[0] != "ownerhost" || !strings.Contains(lines[1], "while :") {
		t.Fatalf("joined container saw:\n%s", out)
	}
	for _, want := range []string{"nameserver 10.9.9.9", "search example.test", "options ndots:3"} {
		if !strings.Contains(out, want) {
			t.Errorf("resolv.conf of the joined container lacks %q:\n%s", want, out)
		}
	}
	if got, want := strings.Join(lines[len(lines)-4:], "\n"), ns("owner"); got != want {
		t.Errorf("namespaces of the joined container:\n%s\nowner's:\n%s", got, want)
	}
	if _, errOut, err := e.hull("run", "--rm", "--pid", "container:nosuch", img(), "true"); err == nil || !strings.Contains(errOut, "nosuch") {
		t.Errorf("--pid container:nosuch: %v %s", err, errOut)
	}
	e.must("rm", "-f", "owner")
}
