package seccomp

import (
	"encoding/binary"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// filterMarker stands in for libseccomp's program after the stub.
const filterMarker = 0x7fff1234

// runStub runs stub followed by a one-instruction "filter" returning
// filterMarker on a seccomp_data of arch and nr, and returns the result.
// x/net/bpf loads words big-endian, so the data is written big-endian: the
// stub compares the words it loads, not their byte order.
func runStub(t *testing.T, stub []unix.SockFilter, arch, nr uint32) uint32 {
	t.Helper()
	prog := make([]bpf.Instruction, 0, len(stub)+1)
	for _, in := range stub {
		prog = append(prog, bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble())
	}
	prog = append(prog, bpf.RetConstant{Val: filterMarker})
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("stub is not a valid BPF program: %v", err)
	}
	data := make([]byte, 64) // sizeof(struct seccomp_data)
	binary.BigEndian.PutUint32(data[dataNr:], nr)
	binary.BigEndian.PutUint32(data[dataArch:], arch)
	ret, err := vm.Run(data)
	if err != nil {
		t.Fatalf("running stub: %v", err)
	}
	return uint32(ret)
}

const retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

func TestENOSYSStubAnswersSyscallsNewerThanTheProfilePerArchitecture(t *testing.T) {
	c := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "clone3"}, Action: specs.ActAllow},
			// Unknown to libseccomp: must not raise the limit.
			{Names: []string{"hull_syscall_from_the_future"}, Action: specs.ActAllow},
		},
	}
	stub, err := enosysStub(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(stub) == 0 {
		t.Fatal("no stub for a profile whose default action denies")
	}
	const clone3 = 435 // the same number on x86_64, i386 and x32
	for _, tc := range []struct {
		what     string
		arch, nr uint32
		want     uint32
	}{
		{"x86_64 read", unix.AUDIT_ARCH_X86_64, 0, filterMarker},
		{"x86_64 clone3 (the highest named)", unix.AUDIT_ARCH_X86_64, clone3, filterMarker},
		{"x86_64 one above", unix.AUDIT_ARCH_X86_64, clone3 + 1, retENOSYS},
		{"x86_64 -1", unix.AUDIT_ARCH_X86_64, 0xffffffff, retENOSYS}, // has the x32 bit: above x32's limit
		{"x32 clone3", unix.AUDIT_ARCH_X86_64, x32SyscallBit | clone3, filterMarker},
		{"x32 one above", unix.AUDIT_ARCH_X86_64, x32SyscallBit | (clone3 + 1), retENOSYS},
		{"i386 clone3", unix.AUDIT_ARCH_I386, clone3, filterMarker},
		{"i386 one above", unix.AUDIT_ARCH_I386, clone3 + 1, retENOSYS},
		{"arch not in the profile", unix.AUDIT_ARCH_AARCH64, 1000, filterMarker},
	} {
		if got := runStub(t, stub, tc.arch, tc.nr); got != tc.want {
			t.Errorf("%s (arch %#x nr %#x): stub returned %#x, want %#x", tc.what, tc.arch, tc.nr, got, tc.want)
		}
	}
}

func TestENOSYSStubWithoutX32LeavesX32SyscallsToTheFilter(t *testing.T) {
	c := &specs.LinuxSeccomp{
		DefaultAction: specs.ActKillProcess,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}},
	}
	stub, err := enosysStub(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := runStub(t, stub, unix.AUDIT_ARCH_X86_64, x32SyscallBit|1000); got != filterMarker {
		t.Errorf("x32 syscall without x32 in the filter: stub returned %#x, want the filter to decide", got)
	}
	if got := runStub(t, stub, unix.AUDIT_ARCH_X86_64, 1); got != retENOSYS {
		t.Errorf("write, above read: stub returned %#x, want ENOSYS", got)
	}
}

func TestNoENOSYSStubWhenTheDefaultActionDoesNotDeny(t *testing.T) {
	enosys := uint(unix.ENOSYS)
	for _, c := range []*specs.LinuxSeccomp{
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}},
		{DefaultAction: specs.ActLog, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}},
		{DefaultAction: specs.ActErrno, DefaultErrnoRet: &enosys, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}},
		{DefaultAction: specs.ActErrno}, // names nothing: no limit to draw
	} {
		stub, err := enosysStub(c)
		if err != nil {
			t.Fatal(err)
		}
		if stub != nil {
			t.Errorf("default %s (errnoRet %v, %d rules): got a %d-instruction stub, want none", c.DefaultAction, c.DefaultErrnoRet, len(c.Syscalls), len(stub))
		}
	}
}
