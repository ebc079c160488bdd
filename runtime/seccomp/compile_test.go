package seccomp

import (
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestCompileEveryActionArchFlagAndOperator(t *testing.T) {
	p, err := Compile(validProfile())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if p.Len() < 10 {
		t.Fatalf("Compile: %d instructions, want a real program", p.Len())
	}
	if !p.Notify() {
		t.Fatal("Notify() = false for a profile with SCMP_ACT_NOTIFY")
	}
}

func TestCompileSkipsRulesThatRepeatTheDefaultAction(t *testing.T) {
	// ERRNO without errnoRet is ERRNO(EPERM), the same as the default:
	// libseccomp rejects such a rule, runc skips it.
	c := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: ptr(uint(1)),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat"}, Action: specs.ActErrno},
			{Names: []string{"getpid"}, Action: specs.ActAllow},
		},
	}
	if _, err := Compile(c); err != nil {
		t.Fatalf("Compile: %v", err)
	}
}

func TestCompileKeepsRulesWithAnotherErrno(t *testing.T) {
	base := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	with := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(38))}},
	}
	p0, err := Compile(base)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := Compile(with)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Len() <= p0.Len() {
		t.Fatalf("rule ERRNO(38) under default ERRNO(EPERM) was dropped: %d vs %d instructions", p1.Len(), p0.Len())
	}
}

// largeProfile is an allowlist of more than optimizeAbove syscalls.
func largeProfile() *specs.LinuxSeccomp {
	c := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	names := []string{"read", "write", "openat", "close", "fstat", "lseek", "mmap", "mprotect", "munmap", "brk",
		"rt_sigaction", "rt_sigprocmask", "ioctl", "pread64", "pwrite64", "readv", "writev", "pipe2", "dup", "dup3",
		"nanosleep", "getpid", "socket", "connect", "accept4", "sendto", "recvfrom", "bind", "listen", "clone",
		"execve", "exit", "wait4", "kill", "uname", "fcntl", "getcwd", "chdir", "fchdir", "exit_group"}
	for _, n := range names {
		c.Syscalls = append(c.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActAllow})
	}
	return c
}

func TestCompileLargeProfileUsesBinaryTree(t *testing.T) {
	// More than optimizeAbove rules: exercises SetOptimize(2).
	p, err := Compile(largeProfile())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if p.Notify() {
		t.Fatal("Notify() = true without SCMP_ACT_NOTIFY")
	}
}

func TestCompileRejectsNil(t *testing.T) {
	if _, err := Compile(nil); err == nil {
		t.Fatal("Compile(nil): no error")
	}
}

func TestDecodeBPFRejectsTruncatedAndOversizedPrograms(t *testing.T) {
	for _, n := range []int{0, 7, 9} {
		if _, err := decodeBPF(make([]byte, n)); err == nil {
			t.Errorf("decodeBPF(%d bytes): no error", n)
		}
	}
	if _, err := decodeBPF(make([]byte, (bpfMaxInsns+1)*sockFilterSize)); err == nil {
		t.Error("decodeBPF: accepted more than BPF_MAXINSNS instructions")
	}
	insns, err := decodeBPF(make([]byte, 3*sockFilterSize))
	if err != nil || len(insns) != 3 {
		t.Errorf("decodeBPF(3 instructions) = %d, %v", len(insns), err)
	}
}

func BenchmarkCompile(b *testing.B) {
	c := largeProfile()
	for b.Loop() {
		if _, err := Compile(c); err != nil {
			b.Fatal(err)
		}
	}
}
