package specgen

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/seccomp"
)

// bpfProgram compiles sc with the runtime's compiler (libseccomp) and
// returns the classic BPF instructions the kernel would run.
func bpfProgram(t *testing.T, sc *specs.LinuxSeccomp) []unix.SockFilter {
	t.Helper()
	p, err := seccomp.Compile(sc)
	if err != nil {
		t.Fatalf("seccomp.Compile: %v", err)
	}
	raw, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	raw = raw[8:] // the flags word
	insns := make([]unix.SockFilter, len(raw)/8)
	for i := range insns {
		b := raw[i*8:]
		insns[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
	}
	return insns
}

// runBPF evaluates a seccomp program on struct seccomp_data, with the
// subset of classic BPF libseccomp emits.
func runBPF(t *testing.T, prog []unix.SockFilter, arch uint32, nr int32, args [6]uint64) uint32 {
	t.Helper()
	var data [64]byte
	binary.LittleEndian.PutUint32(data[0:], uint32(nr))
	binary.LittleEndian.PutUint32(data[4:], arch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[16+8*i:], a)
	}
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if int(in.K)+4 > len(data) {
				t.Fatalf("load beyond seccomp_data at %d", in.K)
			}
			a = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_LD | unix.BPF_MEM:
			a = mem[in.K]
		case unix.BPF_ST:
			mem[in.K] = a
		case unix.BPF_LDX | unix.BPF_MEM:
			x = mem[in.K]
		case unix.BPF_STX:
			mem[in.K] = x
		case unix.BPF_MISC | unix.BPF_TAX:
			x = a
		case unix.BPF_MISC | unix.BPF_TXA:
			a = x
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= in.K
		case unix.BPF_ALU | unix.BPF_OR | unix.BPF_K:
			a |= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			var ok bool
			switch in.Code & 0xf0 {
			case unix.BPF_JEQ:
				ok = a == in.K
			case unix.BPF_JGT:
				ok = a > in.K
			case unix.BPF_JGE:
				ok = a >= in.K
			case unix.BPF_JSET:
				ok = a&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		case unix.BPF_RET | unix.BPF_A:
			return a
		default:
			t.Fatalf("unsupported BPF instruction %#x at %d", in.Code, pc)
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

const (
	retAllow = unix.SECCOMP_RET_ALLOW
	retEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retNOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

func retName(r uint32) string {
	switch r {
	case retAllow:
		return "allow"
	case retEPERM:
		return "EPERM"
	case retNOSYS:
		return "ENOSYS"
	}
	return fmt.Sprintf("%#x", r)
}

// The default profile compiles with libseccomp and answers as Docker's
// does, for the native ABI and the 32-bit one.
func TestDefaultSeccompBehaviour(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("syscall numbers below are x86_64's")
	}
	const (
		archX8664 = unix.AUDIT_ARCH_X86_64
		archI386  = unix.AUDIT_ARCH_I386
		x32Bit    = 0x40000000
	)
	def := bpfProgram(t, DefaultSeccomp())
	admin := bpfProgram(t, SeccompFor(append(DefaultCapabilities(), "CAP_SYS_ADMIN")))
	ptrace := bpfProgram(t, SeccompFor(append(DefaultCapabilities(), "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_SYS_MODULE", "CAP_BPF")))
	noChroot := bpfProgram(t, SeccompFor(slices.DeleteFunc(DefaultCapabilities(), func(c string) bool { return c == "CAP_SYS_CHROOT" })))

	type call struct {
		name string
		prog []unix.SockFilter
		arch uint32
		nr   int32
		args [6]uint64
		want uint32
	}
	a0 := func(v uint64) [6]uint64 { return [6]uint64{v} }
	calls := []call{
		// Always allowed.
		{"read", def, archX8664, unix.SYS_READ, a0(0), retAllow},
		{"write", def, archX8664, unix.SYS_WRITE, a0(1), retAllow},
		{"execve", def, archX8664, unix.SYS_EXECVE, a0(0), retAllow},
		{"futex", def, archX8664, unix.SYS_FUTEX, a0(0), retAllow},
		{"epoll_pwait", def, archX8664, unix.SYS_EPOLL_PWAIT, a0(0), retAllow},
		{"openat2", def, archX8664, unix.SYS_OPENAT2, a0(0), retAllow},
		{"arch_prctl", def, archX8664, unix.SYS_ARCH_PRCTL, a0(0), retAllow},
		{"ptrace (kernel >= 4.8)", def, archX8664, unix.SYS_PTRACE, a0(0), retAllow},
		{"chroot (CAP_SYS_CHROOT is a default)", def, archX8664, unix.SYS_CHROOT, a0(0), retAllow},
		{"clone, thread flags", def, archX8664, unix.SYS_CLONE, a0(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD), retAllow},
		{"socket AF_INET", def, archX8664, unix.SYS_SOCKET, a0(unix.AF_INET), retAllow},
		{"personality PER_LINUX", def, archX8664, unix.SYS_PERSONALITY, a0(0), retAllow},
		{"personality query", def, archX8664, unix.SYS_PERSONALITY, a0(0xffffffff), retAllow},
		{"i386 read", def, archI386, 3, a0(0), retAllow},
		{"x32 read", def, archX8664, x32Bit | unix.SYS_READ, a0(0), retAllow},

		// Refused by default.
		{"mount", def, archX8664, unix.SYS_MOUNT, a0(0), retEPERM},
		{"umount2", def, archX8664, unix.SYS_UMOUNT2, a0(0), retEPERM},
		{"unshare", def, archX8664, unix.SYS_UNSHARE, a0(unix.CLONE_NEWUSER), retEPERM},
		{"setns", def, archX8664, unix.SYS_SETNS, a0(0), retEPERM},
		{"kexec_load", def, archX8664, unix.SYS_KEXEC_LOAD, a0(0), retEPERM},
		{"kexec_file_load", def, archX8664, unix.SYS_KEXEC_FILE_LOAD, a0(0), retEPERM},
		{"open_by_handle_at", def, archX8664, unix.SYS_OPEN_BY_HANDLE_AT, a0(0), retEPERM},
		{"bpf", def, archX8664, unix.SYS_BPF, a0(0), retEPERM},
		{"perf_event_open", def, archX8664, unix.SYS_PERF_EVENT_OPEN, a0(0), retEPERM},
		{"keyctl", def, archX8664, unix.SYS_KEYCTL, a0(0), retEPERM},
		{"add_key", def, archX8664, unix.SYS_ADD_KEY, a0(0), retEPERM},
		{"userfaultfd", def, archX8664, unix.SYS_USERFAULTFD, a0(0), retEPERM},
		{"init_module", def, archX8664, unix.SYS_INIT_MODULE, a0(0), retEPERM},
		{"reboot", def, archX8664, unix.SYS_REBOOT, a0(0), retEPERM},
		{"swapon", def, archX8664, unix.SYS_SWAPON, a0(0), retEPERM},
		{"io_uring_setup (Docker >= 25)", def, archX8664, unix.SYS_IO_URING_SETUP, a0(0), retEPERM},
		{"io_uring_enter", def, archX8664, unix.SYS_IO_URING_ENTER, a0(0), retEPERM},
		{"kcmp", def, archX8664, unix.SYS_KCMP, a0(0), retEPERM},
		{"pivot_root", def, archX8664, unix.SYS_PIVOT_ROOT, a0(0), retEPERM},
		{"clone CLONE_NEWUSER", def, archX8664, unix.SYS_CLONE, a0(unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)), retEPERM},
		{"clone CLONE_NEWNS", def, archX8664, unix.SYS_CLONE, a0(unix.CLONE_NEWNS), retEPERM},
		{"clone CLONE_NEWCGROUP", def, archX8664, unix.SYS_CLONE, a0(unix.CLONE_NEWCGROUP), retEPERM},
		{"clone3 falls back", def, archX8664, unix.SYS_CLONE3, a0(0), retNOSYS},
		{"socket AF_VSOCK", def, archX8664, unix.SYS_SOCKET, a0(unix.AF_VSOCK), retEPERM},
		{"personality ADDR_NO_RANDOMIZE", def, archX8664, unix.SYS_PERSONALITY, a0(0x0040000) /* ADDR_NO_RANDOMIZE */, retEPERM},
		{"i386 mount", def, archI386, 21, a0(0), retEPERM},
		{"x32 mount", def, archX8664, x32Bit | unix.SYS_MOUNT, a0(0), retEPERM},
		{"unknown arch", def, unix.AUDIT_ARCH_AARCH64, 0, a0(0), unix.SECCOMP_RET_KILL_THREAD},

		// Capability-gated groups.
		{"CAP_SYS_ADMIN mount", admin, archX8664, unix.SYS_MOUNT, a0(0), retAllow},
		{"CAP_SYS_ADMIN unshare", admin, archX8664, unix.SYS_UNSHARE, a0(unix.CLONE_NEWNS), retAllow},
		{"CAP_SYS_ADMIN clone NEWUSER", admin, archX8664, unix.SYS_CLONE, a0(unix.CLONE_NEWUSER), retAllow},
		{"CAP_SYS_ADMIN clone3", admin, archX8664, unix.SYS_CLONE3, a0(0), retAllow},
		{"CAP_SYS_ADMIN bpf", admin, archX8664, unix.SYS_BPF, a0(0), retAllow},
		{"CAP_SYS_ADMIN still no kexec", admin, archX8664, unix.SYS_KEXEC_LOAD, a0(0), retEPERM},
		{"CAP_SYS_ADMIN still no io_uring", admin, archX8664, unix.SYS_IO_URING_SETUP, a0(0), retEPERM},
		{"CAP_SYS_PTRACE kcmp", ptrace, archX8664, unix.SYS_KCMP, a0(0), retAllow},
		{"CAP_DAC_READ_SEARCH open_by_handle_at", ptrace, archX8664, unix.SYS_OPEN_BY_HANDLE_AT, a0(0), retAllow},
		{"CAP_SYS_MODULE finit_module", ptrace, archX8664, unix.SYS_FINIT_MODULE, a0(0), retAllow},
		{"CAP_BPF bpf", ptrace, archX8664, unix.SYS_BPF, a0(0), retAllow},
		{"CAP_BPF is not CAP_SYS_ADMIN", ptrace, archX8664, unix.SYS_MOUNT, a0(0), retEPERM},
		{"chroot needs CAP_SYS_CHROOT", noChroot, archX8664, unix.SYS_CHROOT, a0(0), retEPERM},
	}
	for _, c := range calls {
		if got := runBPF(t, c.prog, c.arch, c.nr, c.args); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, retName(got), retName(c.want))
		}
	}
}

// The profile's shape: EPERM default, the three x86 ABIs, no rule
// repeated, and the generated profile is different per capability set.
func TestSeccompProfileShape(t *testing.T) {
	sc := DefaultSeccomp()
	if sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != uint(unix.EPERM) {
		t.Errorf("default = %s %v, want SCMP_ACT_ERRNO EPERM", sc.DefaultAction, sc.DefaultErrnoRet)
	}
	if got := seccompFor(nil, "amd64").Architectures; !slices.Equal(got, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}) {
		t.Errorf("amd64 architectures = %v", got)
	}
	if got := seccompFor(nil, "arm64").Architectures; !slices.Equal(got, []specs.Arch{specs.ArchAARCH64, specs.ArchARM}) {
		t.Errorf("arm64 architectures = %v", got)
	}
	if !slices.IsSorted(baseSyscalls) || len(slices.Compact(slices.Clone(baseSyscalls))) != len(baseSyscalls) {
		t.Error("baseSyscalls is not sorted and unique")
	}
	for _, forbidden := range []string{"mount", "unshare", "setns", "kexec_load", "open_by_handle_at", "bpf", "io_uring_setup", "keyctl", "clone", "clone3", "ptrace_scope", "personality", "socket"} {
		if slices.Contains(baseSyscalls, forbidden) {
			t.Errorf("%s is unconditionally allowed", forbidden)
		}
	}
	// Every profile compiles, down to no capability at all and all of them.
	for _, caps := range [][]string{nil, DefaultCapabilities(), testHost().Capabilities} {
		if _, err := seccomp.Compile(SeccompFor(caps)); err != nil {
			t.Errorf("caps %v: %v", caps, err)
		}
	}
	// Each call is a fresh value.
	a, b := DefaultSeccomp(), DefaultSeccomp()
	a.Syscalls[0].Names[0] = "changed"
	if b.Syscalls[0].Names[0] == "changed" {
		t.Error("DefaultSeccomp returns shared state")
	}
}

// Generate picks the profile for the container's final capabilities.
func TestGenerateSeccompFollowsCaps(t *testing.T) {
	s := mustGen(t, testImage(), stdRootfs(t), Options{CapAdd: []string{"SYS_ADMIN"}})
	if !slices.Contains(s.Linux.Seccomp.Syscalls[0].Names, "mount") {
		t.Error("--cap-add SYS_ADMIN: mount not allowed by seccomp")
	}
	s = mustGen(t, testImage(), stdRootfs(t), Options{})
	if slices.Contains(s.Linux.Seccomp.Syscalls[0].Names, "mount") {
		t.Error("default container may mount")
	}
}

// A profile file in Docker's format is resolved for the capabilities, the
// architecture and the kernel.
func TestDockerProfile(t *testing.T) {
	profile := `{
		"defaultAction": "SCMP_ACT_ERRNO",
		"defaultErrnoRet": 38,
		"archMap": [
			{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
			{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
		],
		"syscalls": [
			{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
			{"name": "getpid", "action": "SCMP_ACT_ALLOW"},
			{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}], "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
			{"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
			{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
			{"names": ["future"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
			{"names": ["old"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}}
		]
	}`
	names := func(sc *specs.LinuxSeccomp) []string {
		var out []string
		for _, r := range sc.Syscalls {
			out = append(out, r.Names...)
		}
		return out
	}
	sc, err := resolveDockerProfile([]byte(profile), DefaultCapabilities(), "amd64", [2]int{6, 18})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"read", "write", "getpid", "clone", "arch_prctl", "ptrace"}; !slices.Equal(names(sc), want) {
		t.Errorf("default caps, amd64: %v, want %v", names(sc), want)
	}
	if !slices.Equal(sc.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}) {
		t.Errorf("architectures = %v", sc.Architectures)
	}
	if *sc.DefaultErrnoRet != 38 {
		t.Errorf("defaultErrnoRet = %d", *sc.DefaultErrnoRet)
	}
	sc, err = resolveDockerProfile([]byte(profile), []string{"SYS_ADMIN"}, "arm64", [2]int{4, 4})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"read", "write", "getpid", "mount", "set_tls", "old"}; !slices.Equal(names(sc), want) {
		t.Errorf("SYS_ADMIN, arm64, kernel 4.4: %v, want %v", names(sc), want)
	}
	if _, err := seccomp.Compile(sc); err != nil {
		t.Errorf("resolved profile does not compile: %v", err)
	}

	for _, bad := range []struct{ json, frag string }{
		{`{`, "decoding"},
		{`{"syscalls": []}`, "no defaultAction"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86"}]}`, "both architectures and archMap"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "x"}}]}`, "minKernel"},
	} {
		_, err := resolveDockerProfile([]byte(bad.json), nil, "amd64", [2]int{6, 1})
		wantErr(t, err, bad.frag)
	}

	// Through Generate, from a file.
	path := t.TempDir() + "/profile.json"
	must(t, os.WriteFile(path, []byte(profile), 0o600))
	s := mustGen(t, testImage(), stdRootfs(t), Options{SecurityOpt: []string{"seccomp=" + path}})
	if s.Linux.Seccomp == nil || *s.Linux.Seccomp.DefaultErrnoRet != 38 {
		t.Errorf("seccomp from file = %+v", s.Linux.Seccomp)
	}
}

const childEnv = "HULL_SPECGEN_SECCOMP_CHILD"

// TestMain runs the seccomp child when asked (see
// TestDefaultSeccompInKernel).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(seccompChild())
	}
	os.Exit(m.Run())
}

// seccompChild installs the default profile on itself and reports how
// some syscalls fare, one "name errno" per line.
func seccompChild() int {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("nnp", err)
		return 1
	}
	if _, err := seccomp.Load(DefaultSeccomp()); err != nil {
		fmt.Println("load", err)
		return 1
	}
	report := func(name string, errno unix.Errno) { fmt.Printf("%s %d\n", name, int(errno)) }
	_, _, e := unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
	report("getpid", e)
	report("unshare", errnoOf(unix.Unshare(unix.CLONE_NEWUTS)))
	_, _, e = unix.RawSyscall6(unix.SYS_MOUNT, 0, 0, 0, 0, 0, 0)
	report("mount", e)
	_, _, e = unix.RawSyscall(unix.SYS_OPEN_BY_HANDLE_AT, ^uintptr(0), 0, 0)
	report("open_by_handle_at", e)
	_, _, e = unix.RawSyscall(unix.SYS_BPF, 0, 0, 0)
	report("bpf", e)
	_, _, e = unix.RawSyscall(unix.SYS_IO_URING_SETUP, 0, 0, 0)
	report("io_uring_setup", e)
	_, _, e = unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	report("clone3", e)
	dirfd := unix.AT_FDCWD // a variable: a negative constant cannot become a uintptr
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC}
	p, _ := unix.BytePtrFromString("/")
	fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT2, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
	report("openat2", e)
	if e == 0 {
		unix.Close(int(fd))
	}
	return 0
}

func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	e, _ := err.(unix.Errno)
	return e
}

// The default profile loads into the kernel, and a process under it gets
// the answers Docker's profile gives: EPERM for namespaces, mount, handles,
// bpf and io_uring; ENOSYS for clone3; getpid and openat2 work.
func TestDefaultSeccompInKernel(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		got[k] = v
	}
	want := map[string]unix.Errno{
		"getpid": 0, "openat2": 0,
		"unshare": unix.EPERM, "mount": unix.EPERM, "open_by_handle_at": unix.EPERM,
		"bpf": unix.EPERM, "io_uring_setup": unix.EPERM, "clone3": unix.ENOSYS,
	}
	for k, w := range want {
		if got[k] != fmt.Sprint(int(w)) {
			t.Errorf("%s: errno %s, want %d (%v)", k, got[k], int(w), w)
		}
	}
}
