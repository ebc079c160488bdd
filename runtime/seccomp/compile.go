package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// optimizeAbove is the rule count above which libseccomp is asked for a
// binary-tree filter (SetOptimize(2)). As in runc: libseccomp <= 2.5.4
// misbehaves with the tree and no rules, and short filters gain nothing.
const optimizeAbove = 32

// bpfMaxInsns is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const bpfMaxInsns = 4096

// sockFilterSize is the size of struct sock_filter.
const sockFilterSize = 8

// Program is a seccomp filter compiled to classic BPF, with the seccomp(2)
// flags it must be installed with. It holds no libseccomp state: it can be
// compiled in one place and loaded in another, any number of times.
type Program struct {
	insns []unix.SockFilter
	// flags are the seccomp(2) flags asked for by the profile:
	// SECCOMP_FILTER_FLAG_LOG, _SPEC_ALLOW, _WAIT_KILLABLE_RECV, and
	// _NEW_LISTENER when a rule uses SCMP_ACT_NOTIFY. Load adds TSYNC.
	flags uintptr
}

// Len returns the number of BPF instructions in the program.
func (p *Program) Len() int { return len(p.insns) }

// Notify reports whether loading the program returns a notify fd, that is
// whether a rule uses SCMP_ACT_NOTIFY.
func (p *Program) Notify() bool { return p.flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 }

// Compile validates c and compiles it to a BPF program for the native
// architecture plus c.Architectures. It needs no privileges and changes
// nothing in the calling process.
//
// Rules are built as runc builds them: syscall names libseccomp does not know
// are skipped (logged at debug level); rules whose action equals the default
// action are skipped (libseccomp rejects them); the conditions of one rule
// are ANDed, except that when two conditions test the same argument index
// every condition becomes a rule of its own (so they are ORed). When the
// default action denies, the program starts with the ENOSYS stub (see
// enosysStub).
func Compile(c *specs.LinuxSeccomp) (*Program, error) {
	if c == nil {
		return nil, errors.New("seccomp: compile: no configuration")
	}
	if err := Validate(c); err != nil {
		return nil, err
	}
	filter, err := newFilter(c)
	if err != nil {
		return nil, err
	}
	defer filter.Release()

	insns, err := exportBPF(filter)
	if err != nil {
		return nil, fmt.Errorf("seccomp: compile: %w", err)
	}
	stub, err := enosysStub(c)
	if err != nil {
		return nil, err
	}
	if len(stub)+len(insns) > bpfMaxInsns {
		return nil, fmt.Errorf("seccomp: compiled filter has %d BPF instructions, the kernel accepts at most %d", len(stub)+len(insns), bpfMaxInsns)
	}
	insns = append(stub, insns...)
	p := &Program{insns: insns}
	for _, f := range c.Flags {
		bit, _ := flagBit(f)
		p.flags |= bit
	}
	p.flags &^= unix.SECCOMP_FILTER_FLAG_TSYNC // always used; Load decides how
	if notifyUsed(c) {
		p.flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	return p, nil
}

// newFilter builds a libseccomp filter from a validated c.
func newFilter(c *specs.LinuxSeccomp) (_ *libseccomp.ScmpFilter, err error) {
	defAct := action(c.DefaultAction, c.DefaultErrnoRet)
	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, fmt.Errorf("seccomp: creating filter with default action %s: %w", c.DefaultAction, err)
	}
	defer func() {
		if err != nil {
			filter.Release()
		}
	}()

	// The filter is never loaded through libseccomp (see Program.Load), but
	// make sure no_new_privs stays the runtime's decision should it ever be.
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("seccomp: clearing the filter's no_new_privs attribute: %w", err)
	}

	for i, a := range c.Architectures {
		info, _ := archInfo(a)
		if err := filter.AddArch(info.arch); err != nil {
			return nil, fmt.Errorf("%s.architectures[%d]: adding %s: %w", field, i, a, err)
		}
	}

	rules := 0
	for _, sc := range c.Syscalls {
		rules += len(sc.Names)
	}
	if rules > optimizeAbove {
		if err := filter.SetOptimize(2); err != nil {
			// Not fatal: an older libseccomp builds a linear filter.
			slog.Debug("seccomp: binary tree optimization not available", "err", err)
		}
	}

	for i, sc := range c.Syscalls {
		if err := addRules(filter, defAct, sc, fmt.Sprintf("%s.syscalls[%d]", field, i)); err != nil {
			return nil, err
		}
	}
	return filter, nil
}

// addRules adds the rules of one validated syscalls[] entry; path names it
// in errors.
func addRules(filter *libseccomp.ScmpFilter, defAct libseccomp.ScmpAction, sc specs.LinuxSyscall, path string) error {
	act := action(sc.Action, sc.ErrnoRet)
	if act == defAct {
		// libseccomp refuses a rule that repeats the default action, and it
		// would change nothing.
		return nil
	}

	conds := make([]libseccomp.ScmpCondition, 0, len(sc.Args))
	var seen [6]bool
	split := false
	for k, arg := range sc.Args {
		op, _ := compareOp(arg.Op)
		cond, err := libseccomp.MakeCondition(arg.Index, op, arg.Value, arg.ValueTwo)
		if err != nil {
			return fmt.Errorf("%s.args[%d]: %w", path, k, err)
		}
		conds = append(conds, cond)
		split = split || seen[arg.Index]
		seen[arg.Index] = true
	}

	for j, name := range sc.Names {
		call, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			slog.Debug("seccomp: ignoring syscall unknown to libseccomp", "name", name, "field", fmt.Sprintf("%s.names[%d]", path, j))
			continue
		}
		switch {
		case len(conds) == 0:
			err = filter.AddRule(call, act)
		case split:
			// libseccomp cannot AND two conditions on the same argument;
			// runc (and so every profile written for it) adds each
			// condition as a rule of its own.
			for _, cond := range conds {
				if err = filter.AddRuleConditional(call, act, []libseccomp.ScmpCondition{cond}); err != nil {
					break
				}
			}
		default:
			err = filter.AddRuleConditional(call, act, conds)
		}
		if err != nil {
			return fmt.Errorf("%s.names[%d]: adding rule for %q with action %s: %w", path, j, name, sc.Action, err)
		}
	}
	return nil
}

// exportBPF renders filter to classic BPF. libseccomp 2.5 can only write it
// to a file descriptor, so it goes through a memfd.
func exportBPF(filter *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	fd, err := unix.MemfdCreate("hull-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating memfd for BPF export: %w", err)
	}
	f := os.NewFile(uintptr(fd), "hull-seccomp-bpf")
	defer f.Close()

	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("exporting BPF: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewinding BPF memfd: %w", err)
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading exported BPF: %w", err)
	}
	return decodeBPF(raw)
}

// decodeBPF turns libseccomp's export (an array of struct sock_filter in
// host byte order) into instructions.
func decodeBPF(raw []byte) ([]unix.SockFilter, error) {
	if len(raw) == 0 || len(raw)%sockFilterSize != 0 {
		return nil, fmt.Errorf("exported BPF is %d bytes, not a whole number of %d-byte instructions", len(raw), sockFilterSize)
	}
	n := len(raw) / sockFilterSize
	if n > bpfMaxInsns {
		return nil, fmt.Errorf("compiled filter has %d BPF instructions, the kernel accepts at most %d", n, bpfMaxInsns)
	}
	insns := make([]unix.SockFilter, n)
	for i := range insns {
		b := raw[i*sockFilterSize:]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:2]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:8]),
		}
	}
	return insns, nil
}
