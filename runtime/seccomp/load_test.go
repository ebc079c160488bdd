package seccomp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// helperEnv, when set, turns the test binary into a helper that loads a
// profile into itself and runs probes (see runHelper); its value is a
// JSON helperRequest.
const helperEnv = "HULL_SECCOMP_TEST_HELPER"

// notifyVal is what the helper's seccomp agent answers notified syscalls with.
const notifyVal = 4242

func TestMain(m *testing.M) {
	if req := os.Getenv(helperEnv); req != "" {
		os.Exit(runHelper(req))
	}
	os.Exit(m.Run())
}

// probe is a syscall the helper makes after Load.
type probe struct {
	Sys  string    // getpid, getppid, getuid, personality, mkdirat, or "nr" for Nr
	Nr   uintptr   // the raw syscall number when Sys is "nr"
	Args [3]uint64 // raw arguments; for mkdirat Path and mode 0755 are used
	Path string
}

type helperRequest struct {
	Profile *specs.LinuxSeccomp
	Probes  []probe
	// OtherThread runs the probes on a thread that existed before Load.
	OtherThread bool
	// Agent answers one seccomp notification with notifyVal.
	Agent bool
}

type probeResult struct {
	Ret   uint64
	Errno int
}

type helperResponse struct {
	LoadErr    string
	Fd         int
	FdLink     string // readlink of the notify fd
	NoNewPrivs string // from /proc/thread-self/status after Load
	Notified   string // syscall the agent saw
	Results    []probeResult
}

func probeNr(name string) uintptr {
	switch name {
	case "getpid":
		return unix.SYS_GETPID
	case "getppid":
		return unix.SYS_GETPPID
	case "getuid":
		return unix.SYS_GETUID
	case "personality":
		return unix.SYS_PERSONALITY
	case "mkdirat":
		return unix.SYS_MKDIRAT
	}
	panic("unknown probe " + name)
}

func runProbe(p probe) probeResult {
	a := p.Args
	if p.Sys == "mkdirat" {
		path, err := unix.BytePtrFromString(p.Path)
		if err != nil {
			return probeResult{Errno: int(unix.EINVAL)}
		}
		fdcwd := unix.AT_FDCWD
		r, _, errno := unix.Syscall(unix.SYS_MKDIRAT, uintptr(fdcwd), uintptr(unsafe.Pointer(path)), 0o755)
		runtime.KeepAlive(path)
		return probeResult{Ret: uint64(r), Errno: int(errno)}
	}
	nr := p.Nr
	if p.Sys != "nr" {
		nr = probeNr(p.Sys)
	}
	r, _, errno := unix.Syscall(nr, uintptr(a[0]), uintptr(a[1]), uintptr(a[2]))
	return probeResult{Ret: uint64(r), Errno: int(errno)}
}

// runHelper is the child side: Load, then probes, then a JSON report on
// stdout. It only makes syscalls the allowlist in
// TestDefaultErrnoWithAllowlist permits.
func runHelper(reqJSON string) int {
	var req helperRequest
	if err := json.Unmarshal([]byte(reqJSON), &req); err != nil {
		fmt.Fprintln(os.Stderr, "helper: bad request:", err)
		return 2
	}
	runtime.LockOSThread()

	var other chan func()
	if req.OtherThread {
		other = make(chan func())
		ready := make(chan struct{})
		go func() {
			runtime.LockOSThread() // this thread exists before Load
			close(ready)
			for f := range other {
				f()
			}
		}()
		<-ready
	}

	var resp helperResponse
	fd, err := Load(req.Profile)
	resp.Fd = fd
	if err != nil {
		resp.LoadErr = err.Error()
		return report(resp)
	}
	if status, err := os.ReadFile("/proc/thread-self/status"); err == nil {
		for line := range strings.Lines(string(status)) {
			if v, ok := strings.CutPrefix(line, "NoNewPrivs:"); ok {
				resp.NoNewPrivs = strings.TrimSpace(v)
			}
		}
	}
	if fd >= 0 {
		resp.FdLink, _ = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	}

	agentDone := make(chan string, 1)
	if req.Agent {
		go func() {
			n, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
			if err != nil {
				agentDone <- "receive: " + err.Error()
				return
			}
			name, _ := n.Data.Syscall.GetName()
			err = libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &libseccomp.ScmpNotifResp{ID: n.ID, Val: notifyVal})
			if err != nil {
				name = "respond: " + err.Error()
			}
			agentDone <- name
		}()
	}

	run := func() {
		for _, p := range req.Probes {
			resp.Results = append(resp.Results, runProbe(p))
		}
	}
	if other != nil {
		done := make(chan struct{})
		other <- func() { run(); close(done) }
		<-done
	} else {
		run()
	}
	if req.Agent {
		resp.Notified = <-agentDone
	}
	return report(resp)
}

func report(resp helperResponse) int {
	b, err := json.Marshal(resp)
	if err != nil {
		return 2
	}
	if _, err := os.Stdout.Write(b); err != nil {
		return 2
	}
	return 0
}

// inHelper runs req in a fresh helper process and returns its report.
func inHelper(t *testing.T, req helperRequest) helperResponse {
	t.Helper()
	resp := runHelperProcess(t, os.Args[0], req, nil)
	if resp.LoadErr != "" {
		t.Fatalf("Load in helper: %s", resp.LoadErr)
	}
	if len(resp.Results) != len(req.Probes) {
		t.Fatalf("helper ran %d of %d probes", len(resp.Results), len(req.Probes))
	}
	return resp
}

// runHelperProcess runs req in a helper started from binary, as cred when
// not nil.
func runHelperProcess(t *testing.T, binary string, req helperRequest, cred *syscall.Credential) helperResponse {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading seccomp filters without no_new_privs needs root")
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var resp helperResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		t.Fatalf("helper report %q: %v (stderr: %s)", stdout.String(), err, stderr.String())
	}
	return resp
}

func denyMkdir(errnoRet uint) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errnoRet},
		},
	}
}

func wantErrno(t *testing.T, what string, got probeResult, want syscall.Errno) {
	t.Helper()
	if got.Errno != int(want) {
		t.Errorf("%s: errno %d (%v), want %d (%v)", what, got.Errno, syscall.Errno(got.Errno), int(want), want)
	}
}

func TestDeniedMkdirFailsWithErrnoRet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	resp := inHelper(t, helperRequest{
		Profile: denyMkdir(1),
		Probes:  []probe{{Sys: "mkdirat", Path: dir}, {Sys: "getpid"}},
	})
	wantErrno(t, "mkdirat", resp.Results[0], unix.EPERM)
	wantErrno(t, "getpid", resp.Results[1], 0)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory was created anyway: %v", err)
	}
	if resp.Fd != -1 {
		t.Errorf("Load returned fd %d without SCMP_ACT_NOTIFY, want -1", resp.Fd)
	}
}

func TestLoadDoesNotSetNoNewPrivs(t *testing.T) {
	resp := inHelper(t, helperRequest{Profile: denyMkdir(1)})
	if resp.NoNewPrivs != "0" {
		t.Fatalf("NoNewPrivs after Load = %q, want 0", resp.NoNewPrivs)
	}
}

func TestFilterReachesThreadsStartedBeforeLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	resp := inHelper(t, helperRequest{
		Profile:     denyMkdir(uint(unix.EROFS)),
		Probes:      []probe{{Sys: "mkdirat", Path: dir}},
		OtherThread: true,
	})
	wantErrno(t, "mkdirat on another thread", resp.Results[0], unix.EROFS)
}

func TestFlagsLogSpecAllowTsyncAreAccepted(t *testing.T) {
	c := denyMkdir(1)
	c.Flags = []specs.LinuxSeccompFlag{flagTsync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}
	resp := inHelper(t, helperRequest{
		Profile: c,
		Probes:  []probe{{Sys: "mkdirat", Path: filepath.Join(t.TempDir(), "d")}},
	})
	wantErrno(t, "mkdirat", resp.Results[0], unix.EPERM)
}

func TestArgumentFilterDeniesPersonalityQueryOnly(t *testing.T) {
	resp := inHelper(t, helperRequest{
		Profile: &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{
				Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(1)),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0xffffffff}},
			}},
		},
		Probes: []probe{
			{Sys: "personality", Args: [3]uint64{0xffffffff}},
			{Sys: "personality", Args: [3]uint64{0}}, // PER_LINUX, what it already is
		},
	})
	wantErrno(t, "personality(0xffffffff)", resp.Results[0], unix.EPERM)
	wantErrno(t, "personality(PER_LINUX)", resp.Results[1], 0)
}

func TestArgumentOperators(t *testing.T) {
	// getppid ignores its arguments, but the filter sees the registers.
	const denied = unix.ENOMSG
	type try struct {
		args [3]uint64
		deny bool
	}
	for _, tc := range []struct {
		name  string
		conds []specs.LinuxSeccompArg
		tries []try
	}{
		{"EQ", []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 5}},
			[]try{{[3]uint64{5}, true}, {[3]uint64{6}, false}}},
		{"EQ compares all 64 bits", []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0x1_0000_0005}},
			[]try{{[3]uint64{0x1_0000_0005}, true}, {[3]uint64{5}, false}}},
		{"NE", []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpNotEqual, Value: 5}},
			[]try{{[3]uint64{0, 5}, false}, {[3]uint64{0, 6}, true}}},
		{"LT", []specs.LinuxSeccompArg{{Index: 2, Op: specs.OpLessThan, Value: 5}},
			[]try{{[3]uint64{0, 0, 4}, true}, {[3]uint64{0, 0, 5}, false}}},
		{"LE", []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpLessEqual, Value: 5}},
			[]try{{[3]uint64{5}, true}, {[3]uint64{6}, false}}},
		{"GT", []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpGreaterThan, Value: 5}},
			[]try{{[3]uint64{6}, true}, {[3]uint64{5}, false}}},
		{"GE", []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpGreaterEqual, Value: 5}},
			[]try{{[3]uint64{5}, true}, {[3]uint64{4}, false}}},
		{"MASKED_EQ value is the mask, valueTwo the datum",
			[]specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 0xf0, ValueTwo: 0x20}},
			[]try{{[3]uint64{0x2f}, true}, {[3]uint64{0x3f}, false}}},
		{"conditions on different args are ANDed",
			[]specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 1}, {Index: 1, Op: specs.OpEqualTo, Value: 2}},
			[]try{{[3]uint64{1, 2}, true}, {[3]uint64{1, 3}, false}, {[3]uint64{0, 2}, false}}},
		{"conditions on the same arg become separate rules as in runc",
			[]specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 1}, {Index: 0, Op: specs.OpEqualTo, Value: 2}},
			[]try{{[3]uint64{1}, true}, {[3]uint64{2}, true}, {[3]uint64{3}, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := helperRequest{Profile: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{
					Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(denied)), Args: tc.conds,
				}},
			}}
			for _, tr := range tc.tries {
				req.Probes = append(req.Probes, probe{Sys: "getppid", Args: tr.args})
			}
			resp := inHelper(t, req)
			for i, tr := range tc.tries {
				want := syscall.Errno(0)
				if tr.deny {
					want = denied
				}
				wantErrno(t, fmt.Sprintf("getppid%#x", tr.args), resp.Results[i], want)
			}
		})
	}
}

// goRuntimeSyscalls are what the Go runtime and the helper need between
// Load and exit.
var goRuntimeSyscalls = []string{
	"futex", "mmap", "munmap", "madvise", "mprotect", "brk", "rt_sigaction", "rt_sigprocmask",
	"rt_sigreturn", "sigaltstack", "clone", "clone3", "gettid", "getpid", "tgkill", "tkill",
	"nanosleep", "clock_nanosleep", "sched_yield", "sched_getaffinity", "exit", "exit_group",
	"write", "read", "openat", "close", "fstat", "newfstatat", "statx", "fcntl", "lseek",
	"epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_ctl", "epoll_create1", "eventfd2",
	"pipe2", "getrandom", "prctl", "setitimer", "timer_create", "timer_settime", "timer_delete",
	"getrlimit", "prlimit64", "readlinkat", "membarrier", "rseq", "restart_syscall",
	"clock_gettime", "gettimeofday", "set_robust_list", "arch_prctl", "ioctl",
}

func TestDefaultErrnoWithAllowlist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	resp := inHelper(t, helperRequest{
		Profile: &specs.LinuxSeccomp{
			DefaultAction:   specs.ActErrno,
			DefaultErrnoRet: ptr(uint(unix.EACCES)),
			Syscalls:        []specs.LinuxSyscall{{Names: goRuntimeSyscalls, Action: specs.ActAllow}},
		},
		Probes: []probe{{Sys: "getpid"}, {Sys: "getppid"}, {Sys: "mkdirat", Path: dir}},
	})
	wantErrno(t, "getpid (allowed)", resp.Results[0], 0)
	wantErrno(t, "getppid (not allowed)", resp.Results[1], unix.EACCES)
	wantErrno(t, "mkdirat (not allowed)", resp.Results[2], unix.EACCES)
	if resp.Results[0].Ret == 0 {
		t.Error("getpid returned 0")
	}
}

// sysCachestat is cachestat(2), Linux 6.5: numbered above every syscall in
// goRuntimeSyscalls, and implemented by the kernels hull runs on.
const sysCachestat = 451

func TestSyscallNewerThanTheProfileFailsWithENOSYSNotTheDefaultErrno(t *testing.T) {
	var uname unix.Utsname
	if err := unix.Uname(&uname); err != nil {
		t.Fatal(err)
	}
	// Without a filter the kernel must know cachestat, or ENOSYS would
	// prove nothing: EFAULT/EBADF/EINVAL from its bad arguments, not ENOSYS.
	if _, _, errno := unix.Syscall6(sysCachestat, ^uintptr(0), 0, 0, 0, 0, 0); errno == unix.ENOSYS {
		t.Skipf("kernel %s has no cachestat", unix.ByteSliceToString(uname.Release[:]))
	}
	profile := func(extra ...string) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{
			DefaultAction:   specs.ActErrno,
			DefaultErrnoRet: ptr(uint(unix.EACCES)),
			Syscalls: []specs.LinuxSyscall{
				{Names: goRuntimeSyscalls, Action: specs.ActAllow},
				// Named with the default action: libseccomp drops the rule,
				// but the name still tells the profile knows the syscall.
				{Names: extra, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.EACCES))},
			},
		}
	}
	probes := []probe{{Sys: "nr", Nr: sysCachestat, Args: [3]uint64{^uint64(0)}}, {Sys: "getppid"}}

	resp := inHelper(t, helperRequest{Profile: profile(), Probes: probes})
	wantErrno(t, "cachestat (newer than every syscall the profile names)", resp.Results[0], unix.ENOSYS)
	wantErrno(t, "getppid (older, not allowed)", resp.Results[1], unix.EACCES)

	resp = inHelper(t, helperRequest{Profile: profile("cachestat"), Probes: probes})
	wantErrno(t, "cachestat (named by the profile)", resp.Results[0], unix.EACCES)
}

func TestLogAllowsAndTraceWithoutTracerFailsWithENOSYS(t *testing.T) {
	resp := inHelper(t, helperRequest{
		Profile: &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getppid"}, Action: specs.ActLog},
				{Names: []string{"getuid"}, Action: specs.ActTrace},
			},
		},
		Probes: []probe{{Sys: "getppid"}, {Sys: "getuid"}},
	})
	wantErrno(t, "getppid (LOG)", resp.Results[0], 0)
	wantErrno(t, "getuid (TRACE, no tracer)", resp.Results[1], unix.ENOSYS)
}

func TestKillProcessKillsWithSIGSYS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading seccomp filters without no_new_privs needs root")
	}
	b, err := json.Marshal(helperRequest{
		Profile: &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}},
		},
		Probes: []probe{{Sys: "getppid"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("helper: err %v, output %q; want death by SIGSYS", err, out)
	}
	ws := exitErr.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Fatalf("helper ended with %v, want SIGSYS", ws)
	}
}

func TestNotifyReturnsListenerFdThatReceivesTheSyscall(t *testing.T) {
	resp := inHelper(t, helperRequest{
		Profile: &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			ListenerPath:  "/run/unused.sock", // the caller's business, not Load's
			Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}},
		},
		Probes: []probe{{Sys: "getppid"}},
		Agent:  true,
	})
	if resp.Fd < 0 {
		t.Fatalf("Load returned fd %d, want a notify fd", resp.Fd)
	}
	if resp.FdLink != "anon_inode:seccomp notify" {
		t.Errorf("notify fd is %q, want anon_inode:seccomp notify", resp.FdLink)
	}
	if resp.Notified != "getppid" {
		t.Errorf("agent saw %q, want getppid", resp.Notified)
	}
	wantErrno(t, "getppid (NOTIFY)", resp.Results[0], 0)
	if resp.Results[0].Ret != notifyVal {
		t.Errorf("getppid returned %d, want the agent's %d", resp.Results[0].Ret, notifyVal)
	}
}

func TestLoadWithoutCapSysAdminOrNoNewPrivsNamesTheCause(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the helper as nobody")
	}
	// The helper runs as nobody (setuid from root clears all capabilities),
	// from a copy of the test binary nobody can execute.
	dir, err := os.MkdirTemp("", "hull-seccomp-test-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	resp := runHelperProcess(t, bin, helperRequest{Profile: denyMkdir(1)}, &syscall.Credential{Uid: 65534, Gid: 65534})
	if !strings.Contains(resp.LoadErr, "CAP_SYS_ADMIN") || !strings.Contains(resp.LoadErr, "permission denied") {
		t.Fatalf("Load as nobody: %q, want an error naming CAP_SYS_ADMIN and EACCES", resp.LoadErr)
	}
}
