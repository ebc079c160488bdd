package integration

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These tests pin the container's resource limits and cgroup placement on
// the host's real cgroups. They run on cgroup v1/hybrid hosts and on pure
// cgroup v2 hosts (scripts/vm-test.sh), reading the files of the host's mode.

// ctrlFile is the path of a controller file below a cgroup root as mounted
// at /sys/fs/cgroup (the host's, or the container's cgroup mount): v1 keeps
// each controller in its own hierarchy dir, v2 has them all in one.
func ctrlFile(t *testing.T, ctrl, v1file, v2file string) string {
	if cgroup2Unified(t) {
		return "/sys/fs/cgroup/" + v2file
	}
	return "/sys/fs/cgroup/" + ctrl + "/" + v1file
}

// hostCtrlFile is ctrlFile for the container cgroup cgPath as the host sees it.
func hostCtrlFile(t *testing.T, cgPath, ctrl, v1file, v2file string) string {
	if cgroup2Unified(t) {
		return filepath.Join("/sys/fs/cgroup", cgPath, v2file)
	}
	return filepath.Join("/sys/fs/cgroup", ctrl, cgPath, v1file)
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// outDir bind-mounts a fresh host dir at /out in the container, for output
// of containers started with create/start (whose stdio nobody keeps).
func (e *env) outDir() string {
	e.t.Helper()
	d := filepath.Join(e.dir, "out")
	if err := os.MkdirAll(d, 0o777); err != nil {
		e.t.Fatal(err)
	}
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: d, Options: []string{"rbind", "rw"}})
	return d
}

// createCheckStart creates container id, calls outside while it is created
// (its cgroup exists and has its limits), starts it, waits for it to stop
// and returns what its process wrote to /out/result. args run with stdout
// and stderr going to that file.
func (e *env) createCheckStart(id string, outside func(), script string) string {
	e.t.Helper()
	out := e.outDir()
	e.spec.Process.Args = []string{"sh", "-c", "exec >/out/result 2>&1; " + script}
	e.write(id)
	e.must("create", "--bundle", e.bundle, id)
	outside()
	e.must("start", id)
	e.waitStatus(id, "stopped")
	data, err := os.ReadFile(filepath.Join(out, "result"))
	if err != nil {
		e.t.Fatalf("container wrote no result: %v", err)
	}
	e.must("delete", id)
	return string(data)
}

// dropNamespace removes a namespace type from the spec.
func (e *env) dropNamespace(typ specs.LinuxNamespaceType) {
	e.spec.Linux.Namespaces = slices.DeleteFunc(e.spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == typ })
}

func TestMemoryLimitOOMKillsTheContainerAndIsVisibleInside(t *testing.T) {
	limitFile := ctrlFile(t, "memory", "memory.limit_in_bytes", "memory.max")
	// tail keeps a line without a newline in memory: it grows to 200 MiB
	// unless the cgroup stops it.
	e := newEnv(t, "sh", "-c", "cat "+limitFile+" && head -c 200m /dev/zero | tail >/dev/null")
	limit := int64(32 << 20)
	mem := &specs.LinuxMemory{Limit: &limit}
	// swap == limit forbids swap. v1 needs swap accounting for it (the
	// runtime refuses the field without); on v2 a missing memory.swap.max
	// means no swap anyway.
	if cgroup2Unified(t) || fileExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") {
		mem.Swap = &limit
	}
	e.spec.Linux.Resources.Memory = mem
	out, code := e.run("oom")
	lines := strings.SplitN(out, "\n", 2)
	if strings.TrimSpace(lines[0]) != strconv.FormatInt(limit, 10) {
		t.Errorf("%s inside the container: %q, want %d", limitFile, lines[0], limit)
	}
	if code != 137 {
		t.Fatalf("allocating 200 MiB under a 32 MiB limit: exit %d, want 137 (OOM kill); output %q", code, out)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestPidsLimitMakesForksFail(t *testing.T) {
	e := newEnv(t)
	limit := int64(8)
	e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
	inside := ctrlFile(t, "pids", "pids.max", "pids.max")
	outside := hostCtrlFile(t, e.cgroup+"/pids", "pids", "pids.max", "pids.max")
	out := e.createCheckStart("pids", func() {
		if got := readTrim(t, outside); got != "8" {
			t.Errorf("%s on the host: %q, want 8", outside, got)
		}
	}, "cat "+inside+"; i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); done; echo forked $i")
	lines := strings.SplitN(out, "\n", 2)
	if strings.TrimSpace(lines[0]) != "8" {
		t.Errorf("%s inside the container: %q, want 8", inside, lines[0])
	}
	if !strings.Contains(out, "can't fork") || strings.Contains(out, "forked 20") {
		t.Fatalf("20 background sleeps under pids.max 8: every fork succeeded or no fork error; output %q", out)
	}
}

func TestCpuSharesBecomeCpuSharesOnV1AndCpuWeightOnV2(t *testing.T) {
	e := newEnv(t)
	shares := uint64(512)
	e.spec.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares}
	want := "512"
	if cgroup2Unified(t) {
		// The conversion of runc >= 1.3.2 and crun >= 1.23 (the
		// opencontainers/cgroups library's), which maps the v1 default 1024
		// to the v2 default 100: l = log2(shares),
		// weight = ceil(10^((l*l + 125*l)/612 - 7/34)); 512 gives 59. The
		// old linear 1 + ((shares-2)*9999)/262142 gave 20 (and 39 for 1024).
		want = "59"
	}
	inside := ctrlFile(t, "cpu", "cpu.shares", "cpu.weight")
	outside := hostCtrlFile(t, e.cgroup+"/cpu", "cpu", "cpu.shares", "cpu.weight")
	out := e.createCheckStart("cpu", func() {
		if got := readTrim(t, outside); got != want {
			t.Errorf("%s on the host: %q, want %s", outside, got, want)
		}
	}, "cat "+inside)
	if got := strings.TrimSpace(out); got != want {
		t.Fatalf("%s inside the container: %q, want %s", inside, got, want)
	}
}

// cgroupProcs returns the pids in cgroup.procs of every hierarchy's dir of
// cgroup path p.
func cgroupProcs(t *testing.T, p string) map[string][]string {
	t.Helper()
	dirs := cgroupDirs(p)
	if len(dirs) == 0 {
		t.Fatalf("cgroup %s exists in no hierarchy", p)
	}
	procs := map[string][]string{}
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		procs[d] = strings.Fields(string(data))
	}
	return procs
}

// waitProcs polls until every hierarchy's cgroup.procs of p lists n pids,
// and returns those of the first.
func waitProcs(t *testing.T, p string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs := cgroupProcs(t, p)
		ok := true
		var any []string
		for _, pids := range procs {
			ok = ok && len(pids) == n
			any = pids
		}
		if ok {
			return any
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroup %s: procs %v, want %d in each hierarchy", p, procs, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gone reports whether pid has exited (or is a zombie waiting for a reaper).
func gone(pid string) bool {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || strings.HasPrefix(s[i:], ") Z") || strings.HasPrefix(s[i:], ") X")
}

func TestKillAllWithKILLLeavesNoProcessInTheCgroupAlsoWhenPaused(t *testing.T) {
	// No pid namespace: killing the init alone would leave its children
	// running, so only a kill of every process in the cgroup passes.
	e := newEnv(t, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
	e.dropNamespace(specs.PIDNamespace)
	for _, id := range []string{"running", "paused"} {
		e.spec.Linux.CgroupsPath = "" // write names it after id
		e.write(id)
		e.must("run", "-d", "--bundle", e.bundle, id)
		cg := e.cgroup + "/" + id
		pids := waitProcs(t, cg, 3)
		if id == "paused" {
			if out, err := e.runtime("pause", id); err != nil && strings.Contains(out, "unknown command") {
				t.Skip("hull-runtime has no pause verb yet")
			} else if err != nil {
				t.Fatalf("pause: %v %s", err, out)
			}
			e.waitStatus(id, "paused")
			freezer := hostCtrlFile(t, cg, "freezer", "freezer.state", "cgroup.freeze")
			if got := readTrim(t, freezer); got != "FROZEN" && got != "1" {
				t.Fatalf("%s of a paused container: %q, want frozen", freezer, got)
			}
		}
		e.must("kill", "--all", id, "KILL")
		e.waitStatus(id, "stopped")
		waitProcs(t, cg, 0)
		for _, pid := range pids {
			deadline := time.Now().Add(5 * time.Second)
			for !gone(pid) {
				if time.Now().After(deadline) {
					t.Fatalf("%s container: pid %s still alive after kill --all KILL", id, pid)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		e.must("delete", id)
		if dirs := cgroupDirs(cg); len(dirs) > 0 {
			t.Fatalf("%s container: cgroup left after delete: %v", id, dirs)
		}
	}
}

func TestKillAllWithOtherSignalsReachesEveryProcessAndLeavesTheCgroupThawed(t *testing.T) {
	// Signals other than KILL go pid by pid inside a frozen cgroup; the
	// cgroup must be thawed again afterwards. The shell survives TERM (it
	// traps it), its sleeps do not.
	e := newEnv(t)
	e.dropNamespace(specs.PIDNamespace)
	out := e.outDir()
	e.spec.Process.Args = []string{"sh", "-c", "trap 'echo trapped >/out/sh' TERM; sleep 1000 & sleep 1000 & while :; do sleep 0.2; done"}
	e.write("term")
	e.must("run", "-d", "--bundle", e.bundle, "term")
	cg := e.cgroup + "/term"
	init := strconv.Itoa(e.state("term").Pid)
	// sh, two background sleeps and the loop's sleep.
	before := waitProcs(t, cg, 4)
	e.must("kill", "--all", "term", "TERM")
	deadline := time.Now().Add(10 * time.Second)
	for !fileExists(filepath.Join(out, "sh")) {
		if time.Now().After(deadline) {
			t.Fatal("the container's init never ran its TERM trap")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range before {
		deadline := time.Now().Add(5 * time.Second)
		for pid != init && !gone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %s of the container survived kill --all TERM", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if gone(init) {
		t.Fatal("the init exited although it traps TERM")
	}
	if st := e.state("term"); st.Status != "running" {
		t.Fatalf("after kill --all TERM: status %s, want running (cgroup left frozen?)", st.Status)
	}
	freezer := hostCtrlFile(t, cg, "freezer", "freezer.state", "cgroup.freeze")
	if got := readTrim(t, freezer); got != "THAWED" && got != "0" {
		t.Fatalf("%s after kill --all TERM: %q, want thawed", freezer, got)
	}
	// The loop goes on forking: the init is not frozen.
	waitProcs(t, cg, 2)
	e.must("kill", "--all", "term", "KILL")
	e.waitStatus("term", "stopped")
	waitProcs(t, cg, 0)
}

// procCgroups parses /proc/<pid>/cgroup into hierarchy ("" for cgroup2, else
// the first controller or name=...) → path.
func procCgroups(t *testing.T, pid string) map[string]string {
	t.Helper()
	f, err := os.Open("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrl, _, _ := strings.Cut(parts[1], ",")
		out[ctrl] = parts[2]
	}
	return out
}

// hierarchyMounts maps each hierarchy key of procCgroups to its mount point.
func hierarchyMounts(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || !strings.HasPrefix(f[4], "/sys/fs/cgroup") {
			continue
		}
		switch g[0] {
		case "cgroup2":
			out[""] = f[4]
		case "cgroup":
			for _, o := range strings.Split(g[2], ",") {
				if o != "rw" && o != "ro" && !strings.Contains(o, "release_agent") && o != "clone_children" {
					out[o] = f[4]
				}
			}
		}
	}
	return out
}

func TestAbsoluteAndRelativeCgroupsPathsLandWhereExpectedAndGoOnDelete(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	mounts := hierarchyMounts(t)
	own := procCgroups(t, "self")
	unified := cgroup2Unified(t)
	name := strings.TrimPrefix(e.cgroup, "/")
	// The relative cgroup's parent lies below our own cgroup(s), outside the
	// env's cleanup: remove it here (after the containers are gone).
	t.Cleanup(func() {
		for _, id := range []string{"abs", "rel"} {
			_, _ = e.runtime("delete", "-f", id)
		}
		for h, p := range own {
			if unified {
				p = filepath.Dir(p)
			}
			if mp, ok := mounts[h]; ok {
				if err := os.Remove(filepath.Join(mp, p, name)); err != nil && !os.IsNotExist(err) {
					t.Errorf("remove relative test cgroup: %v", err)
				}
			}
		}
	})
	cases := []struct {
		id, path string
		want     func(h string) string // expected path in hierarchy h
	}{
		{"abs", e.cgroup + "/abs", func(string) string { return e.cgroup + "/abs" }},
		// Relative to the runtime's own cgroup per hierarchy (it is ours);
		// on pure v2, like runc, to the parent of its own cgroup.
		{"rel", name + "/rel", func(h string) string {
			base := own[h]
			if unified {
				base = filepath.Dir(base)
			}
			return filepath.Join(base, name, "rel")
		}},
	}
	for _, c := range cases {
		e.spec.Linux.CgroupsPath = c.path
		e.write(c.id)
		e.must("create", "--bundle", e.bundle, c.id)
		pid := strconv.Itoa(e.state(c.id).Pid)
		got := procCgroups(t, pid)
		var dirs []string
		for h := range own {
			want := c.want(h)
			if got[h] != want {
				t.Errorf("cgroupsPath %q: init in %q in hierarchy %q, want %q", c.path, got[h], h, want)
			}
			mp, ok := mounts[h]
			if !ok {
				t.Fatalf("no mount point for cgroup hierarchy %q", h)
			}
			dir := filepath.Join(mp, want)
			if procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err != nil || !slices.Contains(strings.Fields(string(procs)), pid) {
				t.Errorf("cgroupsPath %q: %s/cgroup.procs lacks init %s (err %v)", c.path, dir, pid, err)
			}
			dirs = append(dirs, dir)
		}
		if len(dirs) == 0 {
			t.Fatal("the test process is in no cgroup hierarchy")
		}
		e.must("delete", "--force", c.id)
		for _, d := range dirs {
			if fileExists(d) {
				t.Errorf("cgroupsPath %q: %s left after delete", c.path, d)
			}
		}
	}
}

func TestCgroupMountShowsTheContainersOwnCgroupWithAndWithoutCgroupNamespace(t *testing.T) {
	memFile := ctrlFile(t, "memory", "memory.limit_in_bytes", "memory.max")
	pidsFile := ctrlFile(t, "pids", "pids.max", "pids.max")
	procsFile := ctrlFile(t, "pids", "cgroup.procs", "cgroup.procs")
	for _, cgroupns := range []bool{true, false} {
		// The cgroup has two processes when grep runs: sh and grep.
		e := newEnv(t, "sh", "-c", "cat "+memFile+" "+pidsFile+" && grep -c . "+procsFile+"; exit")
		if !cgroupns {
			e.dropNamespace(specs.CgroupNamespace)
		}
		limit, pids := int64(48<<20), int64(42)
		e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
		out, code := e.run("mnt")
		f := strings.Fields(out)
		if code != 0 || len(f) != 3 || f[0] != strconv.FormatInt(limit, 10) || f[1] != "42" || f[2] != "2" {
			t.Fatalf("cgroup namespace %v: %s, %s and the lines of %s inside: exit %d, output %q; want %d, 42 and 2",
				cgroupns, memFile, pidsFile, procsFile, code, out, limit)
		}
	}
}

// The runtime's own start-up must not count against a container's memory
// limit: a container with a small limit would be OOM-killed before its
// process runs (runc's Go init charges about 2.4 MiB here). On cgroup v1 the
// init joins the memory cgroup only once its Go runtime is up; the peak
// usage then is the container process and the init's last steps (about 0.5
// MiB with busybox; 1.8 MiB when the init joined before its runtime started).
func TestRuntimeStartupIsNotChargedToTheContainersMemoryCgroup(t *testing.T) {
	if cgroup2Unified(t) {
		t.Skip("cgroup v2: the init is cloned into the container's cgroup (CLONE_INTO_CGROUP), start-up included")
	}
	e := newEnv(t, "sleep", "30")
	e.write("memstart")
	e.must("run", "-d", "--bundle", e.bundle, "memstart")
	defer e.runtime("delete", "-f", "memstart")
	peakFile := filepath.Join("/sys/fs/cgroup/memory", e.cgroup, "memstart", "memory.max_usage_in_bytes")
	peak, err := strconv.ParseInt(readTrim(t, peakFile), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// The kernel charges in per-CPU batches of up to 256 KiB: well above
	// the 0.5 MiB seen, well below the 1.8 MiB of a charged runtime.
	if limit := int64(1280 << 10); peak > limit {
		t.Fatalf("peak memory of the container's cgroup right after start: %d KiB, want at most %d KiB", peak>>10, limit>>10)
	}
}
