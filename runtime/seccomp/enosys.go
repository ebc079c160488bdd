package seccomp

import (
	"fmt"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The ENOSYS stub.
//
// A profile is written against the syscalls its author knew of. A syscall
// added to the kernel later would get the profile's default action, usually
// EPERM, and C libraries take EPERM as "the kernel has it and refused": they
// do not fall back to the older syscall they would use on an older kernel
// (clone3 → clone, fchmodat2 → fchmodat, faccessat2 → faccessat). The same
// holds for a syscall the profile names but this hull's libseccomp does not
// know: its rule cannot be compiled. So, as runc does, the program starts
// with a stub that answers ENOSYS, "this kernel has no such syscall", for
// every syscall numbered above the highest one the profile names (per
// architecture), and hands everything else to libseccomp's filter.

// seccompData offsets (struct seccomp_data).
const (
	dataNr   = 0
	dataArch = 4
)

// x32SyscallBit marks x32 syscalls, which share AUDIT_ARCH_X86_64.
const x32SyscallBit = 0x40000000

// auditArch returns the AUDIT_ARCH value the kernel reports in
// seccomp_data.arch for a, and false for an architecture the stub skips.
// x32 reports AUDIT_ARCH_X86_64 (its syscall numbers carry x32SyscallBit).
func auditArch(a libseccomp.ScmpArch) (uint32, bool) {
	switch a {
	case libseccomp.ArchAMD64, libseccomp.ArchX32:
		return unix.AUDIT_ARCH_X86_64, true
	case libseccomp.ArchX86:
		return unix.AUDIT_ARCH_I386, true
	case libseccomp.ArchARM:
		return unix.AUDIT_ARCH_ARM, true
	case libseccomp.ArchARM64:
		return unix.AUDIT_ARCH_AARCH64, true
	case libseccomp.ArchMIPS:
		return unix.AUDIT_ARCH_MIPS, true
	case libseccomp.ArchMIPS64:
		return unix.AUDIT_ARCH_MIPS64, true
	case libseccomp.ArchMIPS64N32:
		return unix.AUDIT_ARCH_MIPS64N32, true
	case libseccomp.ArchMIPSEL:
		return unix.AUDIT_ARCH_MIPSEL, true
	case libseccomp.ArchMIPSEL64:
		return unix.AUDIT_ARCH_MIPSEL64, true
	case libseccomp.ArchMIPSEL64N32:
		return unix.AUDIT_ARCH_MIPSEL64N32, true
	case libseccomp.ArchPPC:
		return unix.AUDIT_ARCH_PPC, true
	case libseccomp.ArchPPC64:
		return unix.AUDIT_ARCH_PPC64, true
	case libseccomp.ArchPPC64LE:
		return unix.AUDIT_ARCH_PPC64LE, true
	case libseccomp.ArchS390:
		return unix.AUDIT_ARCH_S390, true
	case libseccomp.ArchS390X:
		return unix.AUDIT_ARCH_S390X, true
	case libseccomp.ArchRISCV64:
		return unix.AUDIT_ARCH_RISCV64, true
	}
	return 0, false
}

// stubWanted reports whether the profile's default action denies: only then
// can a new syscall be refused with the wrong errno. An allowing, logging,
// traced or notified default already lets the kernel or an agent answer.
func stubWanted(c *specs.LinuxSeccomp) bool {
	switch c.DefaultAction {
	case specs.ActKill, specs.ActKillThread, specs.ActKillProcess, specs.ActTrap:
		return true
	case specs.ActErrno:
		return c.DefaultErrnoRet == nil || *c.DefaultErrnoRet != uint(unix.ENOSYS)
	}
	return false
}

// stubArch is one architecture's check in the stub.
type stubArch struct {
	audit uint32
	// max is the highest syscall number the profile names on this
	// architecture. For AUDIT_ARCH_X86_64, max covers x86_64 and maxX32
	// covers x32 (hasX32 says whether x32 is in the filter at all).
	max, maxX32 uint32
	has, hasX32 bool
}

// stubArches returns the architectures of the filter with the highest
// syscall number the profile names on each, in a stable order.
func stubArches(c *specs.LinuxSeccomp) ([]stubArch, error) {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("native architecture: %w", err)
	}
	arches := []libseccomp.ScmpArch{native}
	for _, a := range c.Architectures {
		info, _ := archInfo(a)
		if !slices.Contains(arches, info.arch) {
			arches = append(arches, info.arch)
		}
	}

	byAudit := map[uint32]*stubArch{}
	var order []uint32
	for _, a := range arches {
		audit, ok := auditArch(a)
		if !ok {
			continue // the filter still handles it; it just gets no stub
		}
		sa := byAudit[audit]
		if sa == nil {
			sa = &stubArch{audit: audit}
			byAudit[audit] = sa
			order = append(order, audit)
		}
		for _, sc := range c.Syscalls {
			for _, name := range sc.Names {
				nr, err := libseccomp.GetSyscallFromNameByArch(name, a)
				if err != nil || int32(nr) < 0 {
					continue // unknown here, or a multiplexed pseudo-syscall
				}
				n := uint32(nr)
				if a == libseccomp.ArchX32 {
					sa.maxX32 = max(sa.maxX32, n)
					sa.hasX32 = true
				} else {
					sa.max = max(sa.max, n)
					sa.has = true
				}
			}
		}
	}
	out := make([]stubArch, 0, len(order))
	for _, audit := range order {
		if sa := byAudit[audit]; sa.has || sa.hasX32 {
			out = append(out, *sa)
		}
	}
	return out, nil
}

// label names a place in the stub for the assembler below.
type label int

const (
	toFilter label = -1 // the first instruction of libseccomp's program
	toEnosys label = -2 // return ENOSYS
)

// stubInsn is a stub instruction whose jumps name labels (indices of stub
// instructions, or toFilter/toEnosys) rather than offsets.
type stubInsn struct {
	code   uint16
	k      uint32
	jt, jf label
	ja     label // for BPF_JA
}

// enosysStub returns the stub for c, or nil when c needs none.
func enosysStub(c *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if !stubWanted(c) {
		return nil, nil
	}
	arches, err := stubArches(c)
	if err != nil || len(arches) == 0 {
		return nil, err
	}

	const (
		ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jgt  = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ja   = unix.BPF_JMP | unix.BPF_JA
	)
	prog := []stubInsn{{code: ldW, k: dataArch}}
	// compare ends an architecture's block: above max is ENOSYS, the rest
	// goes to the filter.
	compare := func(has bool, maxNr uint32) stubInsn {
		if !has {
			return stubInsn{code: ja, ja: toFilter}
		}
		return stubInsn{code: jgt, k: maxNr, jt: toEnosys, jf: toFilter}
	}
	for _, a := range arches {
		// jeq arch: fall into this block, else skip to the next one.
		head := len(prog)
		prog = append(prog, stubInsn{code: jeq, k: a.audit}, stubInsn{code: ldW, k: dataNr})
		if a.audit == unix.AUDIT_ARCH_X86_64 {
			// jset x32 bit → the x32 compare (two ahead), else x86_64's.
			j := label(len(prog))
			prog = append(prog, stubInsn{code: jset, k: x32SyscallBit, jt: j + 2, jf: j + 1},
				compare(a.has, a.max), compare(a.hasX32, a.maxX32))
		} else {
			prog = append(prog, compare(true, a.max))
		}
		prog[head].jt = label(head + 1)
		prog[head].jf = label(len(prog)) // the next block (or the fallthrough below)
	}
	// An architecture without a block: libseccomp's filter decides.
	prog = append(prog, stubInsn{code: ja, ja: toFilter})
	enosysAt := len(prog)
	filterAt := enosysAt + 1

	out := make([]unix.SockFilter, 0, filterAt)
	resolve := func(pc int, l label) (int, error) {
		target := int(l)
		switch l {
		case toFilter:
			target = filterAt
		case toEnosys:
			target = enosysAt
		}
		off := target - pc - 1
		if off < 0 {
			return 0, fmt.Errorf("seccomp: ENOSYS stub: backward jump at %d", pc)
		}
		return off, nil
	}
	for pc, in := range prog {
		f := unix.SockFilter{Code: in.code, K: in.k}
		switch in.code {
		case ja:
			off, err := resolve(pc, in.ja)
			if err != nil {
				return nil, err
			}
			f.K = uint32(off)
		case jeq, jgt, jset:
			t, err := resolve(pc, in.jt)
			if err != nil {
				return nil, err
			}
			e, err := resolve(pc, in.jf)
			if err != nil {
				return nil, err
			}
			if t > 255 || e > 255 {
				return nil, fmt.Errorf("seccomp: ENOSYS stub: jump at %d out of range", pc)
			}
			f.Jt, f.Jf = uint8(t), uint8(e)
		}
		out = append(out, f)
	}
	out = append(out, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)})
	return out, nil
}
