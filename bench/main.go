// Command bench times hull-runtime beside runc and crun, in one run, on the
// same busybox bundle, and prints medians, p95 and the ratios of hull's
// medians to the others', for wall time, CPU time (user+sys), the peak
// memory charged to the container's cgroup during start, and binary sizes.
//
//	make bench                       # or: go run ./bench [flags]
//	go run ./bench -runs 100 -par-runs 5 -json /tmp/bench.json
//
// It needs root. The outer process runs `make build` (a fresh
// bin/hull-runtime), then re-executes itself under
// `unshare -m --propagation private`; that inner process unmounts
// /sys/fs/cgroup/unified (crun 1.8 refuses a hybrid host), mounts a tmpfs
// over its work dir (state roots and bundles, as /run would be), and times
// every runtime there, so each invocation pays for the runtime only.
// Runtimes run round-robin within each scenario, after warm-up rounds, each
// with its own --root; every container gets a cgroupsPath under a parent
// /hull-bench-XXXXXXXX that is removed at the end, also on error or ^C.
//
// Timing is time.Now around fork+exec and wait4 of the runtime process,
// stdio on /dev/null; CPU time is the wait4 rusage (the process and all it
// waited for). The inner process is a child subreaper, so the process a
// detached container leaves behind is reaped here and its CPU is counted too.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/test/bundle"
)

const envInner = "HULL_BENCH_INNER" // name:workdir, set for the re-executed process
const envCmdline = "HULL_BENCH_CMDLINE"

type config struct {
	runs, warmup, parRuns, memRuns int
	par                            []int
	runtimes                       []string
	paths                          map[string]string
	jsonOut                        string
	build, tmpfs, quiet            bool
	only                           map[string]bool
	timeout                        time.Duration
}

var scenarioNames = []string{"run", "lifecycle", "exec", "parallel", "memory"}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg := &config{paths: map[string]string{}}
	var par, runtimes, only string
	hull := fs.String("hull", "bin/hull-runtime", "hull-runtime binary (relative to the repository)")
	runc := fs.String("runc", "/usr/sbin/runc", "runc binary")
	crun := fs.String("crun", "/usr/bin/crun", "crun binary")
	fs.IntVar(&cfg.runs, "runs", 50, "measured runs per runtime of each sequential scenario (run, lifecycle, exec)")
	fs.IntVar(&cfg.warmup, "warmup", 5, "warm-up runs per runtime before each sequential scenario (one batch for parallel)")
	fs.StringVar(&par, "par", "10,50", "parallel batch sizes")
	fs.IntVar(&cfg.parRuns, "par-runs", 5, "measured batches per runtime and size")
	fs.IntVar(&cfg.memRuns, "mem-runs", 10, "memory samples per runtime")
	fs.StringVar(&runtimes, "runtimes", "hull,runc,crun", "runtimes to compare")
	fs.StringVar(&only, "only", strings.Join(scenarioNames, ","), "scenarios to run")
	fs.StringVar(&cfg.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&cfg.build, "build", true, "run `make build` first")
	fs.BoolVar(&cfg.tmpfs, "tmpfs", true, "keep state roots and bundles on a private tmpfs")
	fs.BoolVar(&cfg.quiet, "q", false, "no progress on stderr")
	fs.DurationVar(&cfg.timeout, "timeout", time.Minute, "kill a runtime invocation after this long")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.paths["hull"], cfg.paths["runc"], cfg.paths["crun"] = *hull, *runc, *crun
	for _, f := range strings.Split(par, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-par: bad size %q", f)
		}
		cfg.par = append(cfg.par, n)
	}
	for _, f := range strings.Split(runtimes, ",") {
		f = strings.TrimSpace(f)
		if _, ok := cfg.paths[f]; !ok {
			return nil, fmt.Errorf("-runtimes: unknown runtime %q (hull, runc, crun)", f)
		}
		cfg.runtimes = append(cfg.runtimes, f)
	}
	cfg.only = map[string]bool{}
	for _, f := range strings.Split(only, ",") {
		f = strings.TrimSpace(f)
		known := false
		for _, s := range scenarioNames {
			known = known || s == f
		}
		if !known {
			return nil, fmt.Errorf("-only: unknown scenario %q (%s)", f, strings.Join(scenarioNames, ","))
		}
		cfg.only[f] = true
	}
	if cfg.runs < 1 || cfg.warmup < 0 || cfg.parRuns < 1 || cfg.memRuns < 1 {
		return nil, errors.New("-runs, -par-runs and -mem-runs must be at least 1, -warmup at least 0")
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if v := os.Getenv(envInner); v != "" {
		name, work, _ := strings.Cut(v, ":")
		os.Exit(inner(cfg, name, work, os.Getenv(envCmdline)))
	}
	os.Exit(outer(cfg))
}

// repoRoot finds the module root above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(data), "module github.com/hull-runtime/hull\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the hull repository")
		}
		dir = parent
	}
}

// commandLine is how this run can be repeated.
func commandLine() string {
	argv0 := os.Args[0]
	if strings.Contains(argv0, "go-build") {
		argv0 = "go run ./bench"
	}
	parts := []string{argv0}
	for _, a := range os.Args[1:] {
		if a == "" || strings.ContainsAny(a, " \t'\"$\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	s := strings.Join(parts, " ")
	if os.Getenv("MAKELEVEL") != "" {
		s = "make bench  (runs: " + s + ")"
	}
	return s
}

func outer(cfg *config) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root (containers, cgroups, mount namespaces)")
		return 2
	}
	extra := []string{"-build=false"}
	if repo, err := repoRoot(); err == nil {
		if cfg.build {
			fmt.Fprintln(os.Stderr, "bench: make build")
			cmd := exec.Command("make", "-C", repo, "build")
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "bench: make build:", err)
				return 1
			}
		}
		if p := cfg.paths["hull"]; !filepath.IsAbs(p) {
			extra = append(extra, "-hull", filepath.Join(repo, p))
		}
	} else if cfg.build || !filepath.IsAbs(cfg.paths["hull"]) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if cfg.jsonOut != "" {
		abs, err := filepath.Abs(cfg.jsonOut)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 2
		}
		extra = append(extra, "-json", abs)
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: unshare (util-linux) not found")
		return 1
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "hull-bench-" + hex.EncodeToString(rnd[:])
	work, err := os.MkdirTemp("", name+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	args := append([]string{"-m", "--propagation", "private", "--", exe}, os.Args[1:]...)
	args = append(args, extra...)
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), envInner+"="+name+":"+work, envCmdline+"="+commandLine())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr

	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		_ = os.Remove(work)
		return 1
	}
	go func() {
		for s := range sigc {
			_ = cmd.Process.Signal(s) // the inner run stops and cleans up
		}
	}()
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code == 0 {
		code = 1
	}

	// The inner run cleaned up; check from here, where the unified
	// hierarchy is visible too, and sweep whatever is left.
	var left []string
	for _, dir := range findCgroups(name) {
		left = append(left, "cgroup "+dir)
	}
	if len(left) > 0 {
		left = append(left, removeCgroups(name)...)
	}
	if isMounted(work) {
		left = append(left, "mount "+work)
		_ = unix.Unmount(work, unix.MNT_DETACH)
	}
	if err := os.RemoveAll(work); err != nil {
		left = append(left, err.Error())
	}
	if len(left) > 0 {
		fmt.Fprintln(os.Stderr, "bench: left behind by the inner run (now removed where possible):", strings.Join(left, "; "))
		if cfg.jsonOut != "" {
			appendLeftovers(cfg.jsonOut, left)
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}

func appendLeftovers(path string, left []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var rep map[string]any
	if json.Unmarshal(data, &rep) != nil {
		return
	}
	prev, _ := rep["leftovers"].([]any)
	for _, l := range left {
		prev = append(prev, "outer check: "+l)
	}
	rep["leftovers"] = prev
	if data, err = json.MarshalIndent(rep, "", "  "); err == nil {
		_ = os.WriteFile(path, append(data, '\n'), 0o644)
	}
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// inner runs in the private mount namespace and does all the measuring.
func inner(cfg *config, name, work, cmdline string) int {
	start := time.Now()
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	rep := &report{
		Date:     start.Format(time.RFC3339),
		Kernel:   unix.ByteSliceToString(uts.Release[:]),
		CPUs:     numCPU(),
		CPUModel: cpuModel(),
		LoadAvg:  []string{loadavg()},
		Command:  cmdline,
		Settings: map[string]any{
			"runs": cfg.runs, "warmup": cfg.warmup, "par": cfg.par, "par_runs": cfg.parRuns,
			"mem_runs": cfg.memRuns, "tmpfs": cfg.tmpfs, "wrapper": "unshare -m --propagation private, /sys/fs/cgroup/unified unmounted",
		},
		Leftovers: []string{},
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if isMounted("/sys/fs/cgroup/unified") {
		if err := unix.Unmount("/sys/fs/cgroup/unified", 0); err != nil {
			if err := unix.Unmount("/sys/fs/cgroup/unified", unix.MNT_DETACH); err != nil {
				return fail(fmt.Errorf("umount /sys/fs/cgroup/unified: %w", err))
			}
		}
	}
	rep.Cgroups = cgroupMode()
	if cfg.tmpfs {
		if err := unix.Mount("tmpfs", work, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
			return fail(fmt.Errorf("mount tmpfs on %s: %w", work, err))
		}
		defer func() { _ = unix.Unmount(work, unix.MNT_DETACH) }()
	}
	var err error
	if devNull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
		return fail(err)
	}

	b := &bench{
		cfg: cfg, name: name, work: work, start: start,
		live: map[*runtimeInfo]map[string]bool{}, data: map[string]map[string]*series{},
		mem: map[string][]memSample{}, noted: map[string]bool{},
	}
	if _, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS); err == nil {
		b.tty = true
	}
	for _, n := range cfg.runtimes {
		r, err := probe(n, cfg.paths[n])
		if err != nil {
			return fail(err)
		}
		r.root = filepath.Join(work, "root-"+n)
		if err := os.MkdirAll(r.root, 0o700); err != nil {
			return fail(err)
		}
		if r.log, err = os.OpenFile(filepath.Join(work, n+".log"), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600); err != nil {
			return fail(err)
		}
		b.rts = append(b.rts, r)
	}
	rep.Runtimes = b.rts
	b.rootfs = filepath.Join(work, "rootfs")
	if err := bundle.Rootfs(b.rootfs); err != nil {
		return fail(err)
	}

	// From here on every child goes through the reaper.
	if b.reaper, err = newReaper([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ctx = ctx
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sigc
		fmt.Fprintln(os.Stderr, "\nbench: interrupted; finishing the current step and cleaning up")
		cancel()
	}()

	scenarios := []struct {
		name string
		run  func() error
	}{
		{"run", b.scenarioRun},
		{"lifecycle", b.scenarioLifecycle},
		{"exec", b.scenarioExec},
		{"parallel", b.scenarioParallel},
		{"memory", b.scenarioMemory},
	}
	var runErr error
	for _, s := range scenarios {
		if !cfg.only[s.name] {
			continue
		}
		if runErr = s.run(); runErr != nil {
			if !cfg.quiet {
				fmt.Fprintln(os.Stderr)
			}
			break
		}
	}
	if !cfg.quiet {
		fmt.Fprintln(os.Stderr, "bench: cleaning up")
	}
	rep.Leftovers = append(rep.Leftovers, b.cleanup()...)
	rep.Interrupted = ctx.Err() != nil
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		rep.Error = runErr.Error()
	}
	rep.Notes = b.notes
	rep.LoadAvg = append(rep.LoadAvg, loadavg())
	rep.DurationS = time.Since(start).Seconds()
	b.buildReport(rep)
	b.printReport(os.Stdout, rep)
	if cfg.jsonOut != "" {
		if err := writeJSON(cfg.jsonOut, rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		fmt.Fprintln(os.Stdout, "json:", cfg.jsonOut)
	}
	switch {
	case rep.Error != "":
		fmt.Fprintln(os.Stderr, "bench:", rep.Error)
		return 1
	case len(rep.Leftovers) > 0:
		return 1
	case rep.Interrupted:
		return 130
	}
	return 0
}

func numCPU() int {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) == nil {
		return set.Count()
	}
	return 0
}
