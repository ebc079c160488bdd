package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These tests cover the verbs that manage a running container: ps, pause,
// resume, update and events. They read the container's cgroup files on
// cgroup v1/hybrid hosts and on pure cgroup v2 hosts.

// manageCgroupFile reads a file of container id's cgroup: v1file in the
// ctrl hierarchy, or v2file in the unified one.
func (e *env) manageCgroupFile(id, ctrl, v1file, v2file string) string {
	e.t.Helper()
	p := filepath.Join("/sys/fs/cgroup", ctrl, e.cgroup, id, v1file)
	if cgroup2Unified(e.t) {
		p = filepath.Join("/sys/fs/cgroup", e.cgroup, id, v2file)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// savedResources reads linux.resources back from the container's state.json.
func (e *env) savedResources(id string) specs.LinuxResources {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(e.root, id, "state.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var st struct {
		Config struct {
			Linux struct {
				Resources specs.LinuxResources `json:"resources"`
			} `json:"linux"`
		} `json:"config"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		e.t.Fatalf("state.json: %v", err)
	}
	return st.Config.Linux.Resources
}

func (e *env) memoryLimit(id string) string {
	return e.manageCgroupFile(id, "memory", "memory.limit_in_bytes", "memory.max")
}

func (e *env) pidsMax(id string) string {
	return e.manageCgroupFile(id, "pids", "pids.max", "pids.max")
}

func (e *env) psJSON(id string) []int {
	e.t.Helper()
	out := e.must("ps", "--format", "json", id)
	var pids []int
	if err := json.Unmarshal([]byte(out), &pids); err != nil {
		e.t.Fatalf("ps --format json: %v\n%s", err, out)
	}
	return pids
}

// mustFail runs hull-runtime, wants it to fail and its output to mention want.
func (e *env) mustFail(want string, args ...string) {
	e.t.Helper()
	out, err := e.runtime(args...)
	if err == nil || !strings.Contains(out, want) {
		e.t.Fatalf("hull-runtime %v: err %v, output %q; want a failure mentioning %q", args, err, out, want)
	}
}

func TestPsListsTheInitAndAnExecdProcessAsJSONAndTable(t *testing.T) {
	e := startSleeper(t, "ps1", nil)
	init := e.state("ps1").Pid
	e.must("exec", "-d", "--pid-file", filepath.Join(e.dir, "xpid"), "ps1", "sleep", "77")
	data, _ := os.ReadFile(filepath.Join(e.dir, "xpid"))
	xpid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if xpid <= 0 {
		t.Fatalf("pid file %q", data)
	}

	pids := e.psJSON("ps1")
	slices.Sort(pids)
	want := []int{init, xpid}
	slices.Sort(want)
	if !slices.Equal(pids, want) {
		t.Fatalf("ps --format json: %v, want the init and the exec'd process %v", pids, want)
	}

	// Table: the host's ps -ef, header plus the container's lines only.
	lines := strings.Split(strings.TrimSpace(e.must("ps", "ps1")), "\n")
	if len(lines) != 3 || !slices.Contains(strings.Fields(lines[0]), "PID") {
		t.Fatalf("ps table: want a header and 2 lines:\n%s", strings.Join(lines, "\n"))
	}
	for _, p := range []int{init, xpid} {
		if !slices.ContainsFunc(lines[1:], func(l string) bool { return slices.Contains(strings.Fields(l), strconv.Itoa(p)) }) {
			t.Errorf("ps table has no line for pid %d:\n%s", p, strings.Join(lines, "\n"))
		}
	}
	// ps options after the id go to ps.
	out := e.must("ps", "ps1", "-o", "pid,args")
	if !strings.Contains(out, "sleep 77") || !strings.Contains(out, "sleep 100") || strings.Count(strings.TrimSpace(out), "\n") != 2 {
		t.Fatalf("ps ID -o pid,args:\n%s", out)
	}
	e.mustFail("PID", "ps", "ps1", "-o", "comm")
	e.mustFail("invalid format", "ps", "--format", "yaml", "ps1")
}

func TestPauseFreezesTheContainerAndExecFailsUntilResume(t *testing.T) {
	e := startSleeper(t, "pz", nil)
	init := e.state("pz").Pid
	frozen := func() string { return e.manageCgroupFile("pz", "freezer", "freezer.state", "cgroup.freeze") }

	e.must("pause", "pz")
	if st := e.state("pz"); st.Status != "paused" || st.Pid != init {
		t.Fatalf("after pause: %+v, want status paused and pid %d", st, init)
	}
	if f := frozen(); f != "FROZEN" && f != "1" {
		t.Fatalf("freezer after pause: %q", f)
	}
	if pids := e.psJSON("pz"); !slices.Contains(pids, init) {
		t.Errorf("ps of a paused container: %v, want the init %d", pids, init)
	}
	e.mustFail("paused", "exec", "pz", "true")
	e.mustFail("already paused", "pause", "pz")

	e.must("resume", "pz")
	if st := e.state("pz"); st.Status != "running" {
		t.Fatalf("after resume: status %s, want running", st.Status)
	}
	if f := frozen(); f != "THAWED" && f != "0" {
		t.Fatalf("freezer after resume: %q", f)
	}
	if out := e.must("exec", "pz", "echo", "awake"); strings.TrimSpace(out) != "awake" {
		t.Fatalf("exec after resume: %q", out)
	}
	e.mustFail("not paused", "resume", "pz")
	e.mustFail("container id is required", "pause")
}

func TestUpdateChangesTheCgroupAndStateKeepsTheMergedLimits(t *testing.T) {
	e := startSleeper(t, "up", nil)
	e.must("update", "--memory", "64m", "--pids-limit", "20", "up")
	if got := e.memoryLimit("up"); got != "67108864" {
		t.Errorf("memory limit after update --memory 64m: %s", got)
	}
	if got := e.pidsMax("up"); got != "20" {
		t.Errorf("pids.max after update --pids-limit 20: %s", got)
	}
	r := e.savedResources("up")
	if r.Memory == nil || r.Memory.Limit == nil || *r.Memory.Limit != 64<<20 || r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit != 20 {
		t.Fatalf("state.json resources after update: %+v", r)
	}

	// A later update changes one limit and keeps the others.
	e.must("update", "--pids-limit", "30", "up")
	if got, mem := e.pidsMax("up"), e.memoryLimit("up"); got != "30" || mem != "67108864" {
		t.Errorf("after update --pids-limit 30: pids.max %s, memory %s", got, mem)
	}
	r = e.savedResources("up")
	if *r.Memory.Limit != 64<<20 || *r.Pids.Limit != 30 {
		t.Errorf("state.json after the second update: memory %d, pids %d", *r.Memory.Limit, *r.Pids.Limit)
	}

	// -1 lifts a limit.
	e.must("update", "--memory", "-1", "--pids-limit", "-1", "up")
	if got := e.memoryLimit("up"); got == "67108864" {
		t.Errorf("memory limit after update --memory -1: still %s", got)
	}
	if got := e.pidsMax("up"); got != "max" {
		t.Errorf("pids.max after update --pids-limit -1: %s", got)
	}
}

func TestUpdateFromAResourcesFileAndStdin(t *testing.T) {
	e := startSleeper(t, "upr", nil)
	f := filepath.Join(e.dir, "resources.json")
	if err := os.WriteFile(f, []byte(`{"memory": {"limit": 33554432}, "pids": {"limit": 25}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("update", "-r", f, "upr")
	if mem, pids := e.memoryLimit("upr"), e.pidsMax("upr"); mem != "33554432" || pids != "25" {
		t.Fatalf("after update -r: memory %s, pids.max %s", mem, pids)
	}

	stdin := func(js string) {
		t.Helper()
		cmd := exec.Command(runtimeBin, "--root", e.root, "update", "-r", "-", "upr")
		cmd.Stdin = strings.NewReader(js)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("update -r - <<< %s: %v\n%s", js, err, out)
		}
	}
	// runc (and engines on runtime-spec < 1.3, which always send it) treat
	// a pids limit of 0 as "unchanged".
	stdin(`{"pids": {"limit": 0}, "memory": {"limit": 50331648}}`)
	if mem, pids := e.memoryLimit("upr"), e.pidsMax("upr"); mem != "50331648" || pids != "25" {
		t.Fatalf("after update -r - with pids limit 0: memory %s, pids.max %s", mem, pids)
	}
	stdin(`{"pids": {"limit": 40}}`)
	if pids := e.pidsMax("upr"); pids != "40" {
		t.Fatalf("after update -r - with pids limit 40: pids.max %s", pids)
	}
	if r := e.savedResources("upr"); *r.Memory.Limit != 48<<20 || *r.Pids.Limit != 40 {
		t.Fatalf("state.json after the updates: memory %d, pids %d", *r.Memory.Limit, *r.Pids.Limit)
	}
	e.mustFail("no such file", "update", "-r", filepath.Join(e.dir, "missing.json"), "upr")
	if err := os.WriteFile(f, []byte(`{"memory": `), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustFail("LinuxResources", "update", "-r", f, "upr")
}

func TestUpdateErrorsNameTheOption(t *testing.T) {
	e := startSleeper(t, "upe", nil)
	e.mustFail("--memory", "update", "--memory", "12x", "upe")
	e.mustFail("--cpu-quota", "update", "--cpu-quota", "5", "upe")
	e.mustFail("--pids-limit", "update", "--pids-limit", "many", "upe")
	e.mustFail("Intel RDT", "update", "--l3-cache-schema", "L3:0=f", "upe")
	e.mustFail("Intel RDT", "update", "--mem-bw-schema", "MB:0=50", "upe")
	if r := e.savedResources("upe"); r.Memory != nil && r.Memory.Limit != nil {
		t.Errorf("a failed update changed state.json: memory limit %d", *r.Memory.Limit)
	}
}

func TestManageVerbsOnAStoppedContainerFailClearly(t *testing.T) {
	e := startSleeper(t, "stp", nil)
	e.must("kill", "stp", "KILL")
	e.waitStatus("stp", "stopped")
	e.mustFail("not running", "pause", "stp")
	e.mustFail("not paused", "resume", "stp")
	e.mustFail("not running", "update", "--memory", "64m", "stp")
	e.mustFail("not running", "events", "--stats", "stp")
	e.mustFail("not running", "events", "stp")
	if out := strings.TrimSpace(e.must("ps", "--format", "json", "stp")); out != "null" && out != "[]" {
		t.Errorf("ps --format json of a stopped container: %q", out)
	}
	e.mustFail("does not exist", "ps", "nosuch")
}

// statsEvent is the part of runc's stats event that the tests look at.
type statsEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data *struct {
		CPU struct {
			Usage struct {
				Total  uint64   `json:"total"`
				Percpu []uint64 `json:"percpu"`
			} `json:"usage"`
		} `json:"cpu"`
		Memory struct {
			Usage struct {
				Usage uint64 `json:"usage"`
				Limit uint64 `json:"limit"`
			} `json:"usage"`
		} `json:"memory"`
		Pids struct {
			Current uint64 `json:"current"`
			Limit   uint64 `json:"limit"`
		} `json:"pids"`
	} `json:"data"`
}

func TestEventsStatsPrintsOneRuncStyleStatsObject(t *testing.T) {
	e := startSleeper(t, "ev", func(e *env) {
		limit, mem := int64(50), int64(128<<20)
		e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
		e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
	})
	// Some CPU time to account.
	e.must("exec", "ev", "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
	out := e.must("events", "--stats", "ev")
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("events --stats: want one line:\n%s", out)
	}
	var ev statsEvent
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Data == nil {
		t.Fatalf("events --stats: %v\n%s", err, out)
	}
	if ev.Type != "stats" || ev.ID != "ev" {
		t.Errorf("events --stats: type %q id %q", ev.Type, ev.ID)
	}
	d := ev.Data
	if d.CPU.Usage.Total == 0 || (len(d.CPU.Usage.Percpu) == 0 && !cgroup2Unified(t)) {
		t.Errorf("cpu usage: %+v", d.CPU.Usage)
	}
	if d.Memory.Usage.Usage == 0 || d.Memory.Usage.Limit != 128<<20 {
		t.Errorf("memory usage: %+v, want a usage and the 128 MiB limit", d.Memory.Usage)
	}
	if d.Pids.Current < 1 || d.Pids.Limit != 50 {
		t.Errorf("pids: %+v, want at least the init and the limit 50", d.Pids)
	}
	// The keys of runc's types.Stats, in its JSON spelling.
	var raw struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal([]byte(out), &raw)
	for _, k := range []string{"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"} {
		if _, ok := raw.Data[k]; !ok {
			t.Errorf("stats data has no %q", k)
		}
	}
}

func TestEventsStreamReportsAnOOMKillAndEndsWhenTheContainerStops(t *testing.T) {
	e := startSleeper(t, "oomev", func(e *env) {
		limit := int64(16 << 20)
		mem := &specs.LinuxMemory{Limit: &limit}
		// No swap to escape to (v1 needs swap accounting for the field).
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil || cgroup2Unified(t) {
			mem.Swap = &limit
		}
		e.spec.Linux.Resources.Memory = mem
	})
	cmd := exec.Command(runtimeBin, "--root", e.root, "events", "--interval", "200ms", "oomev")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	next := func(what string) (statsEvent, bool) {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				return statsEvent{}, false
			}
			var ev statsEvent
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("events: invalid JSON line: %v\n%s", err, l)
			}
			return ev, true
		case <-time.After(20 * time.Second):
			t.Fatalf("events: no %s within 20s", what)
		}
		return statsEvent{}, false
	}
	// The first stats event shows the stream (and its OOM baseline) is up.
	if ev, ok := next("stats event"); !ok || ev.Type != "stats" || ev.ID != "oomev" {
		t.Fatalf("first event: %+v (stream open %v)", ev, ok)
	}

	// tail keeps a line without a newline in memory: 64 MiB under 16 MiB.
	out, err := e.runtime("exec", "oomev", "sh", "-c", "head -c 64m /dev/zero | tail >/dev/null")
	if exitCode(err) != 137 {
		t.Fatalf("allocating 64 MiB under a 16 MiB limit: exit %d, want 137 (OOM kill); output %q", exitCode(err), out)
	}
	for {
		ev, ok := next("oom event")
		if !ok {
			t.Fatal("events ended without an oom event")
		}
		if ev.Type == "oom" {
			if ev.ID != "oomev" || ev.Data != nil {
				t.Fatalf("oom event: %+v", ev)
			}
			break
		}
		if ev.Type != "stats" {
			t.Fatalf("unexpected event type %q", ev.Type)
		}
	}

	// The OOM killer may have taken the init too (it can pick more than one
	// victim): a kill that finds the container stopped is fine here.
	if out, err := e.runtime("kill", "oomev", "KILL"); err != nil && !strings.Contains(out, "stopped") {
		t.Fatalf("kill: %v %s", err, out)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-lines:
			if ok {
				continue
			}
			if err := <-exited; err != nil {
				t.Fatalf("events exited with %v after the container stopped", err)
			}
			return
		case <-deadline:
			t.Fatal("events still running 10s after the container stopped")
		}
	}
}
