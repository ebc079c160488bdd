package initproc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Per-process attributes of the runtime-spec that are set right before execve
// and inherited by it: personality, scheduler, I/O priority, NUMA memory policy.

func setPersonality(p *specs.LinuxPersonality) error {
	if p == nil {
		return nil
	}
	// <linux/personality.h>: PER_LINUX 0x0000, PER_LINUX32 0x0008.
	var persona uint64
	switch p.Domain {
	case specs.PerLinux:
		persona = 0x0000
	case specs.PerLinux32:
		persona = 0x0008
	default:
		return fmt.Errorf("linux.personality.domain: unknown domain %q", p.Domain)
	}
	if len(p.Flags) > 0 {
		return fmt.Errorf("linux.personality.flags: no flags are defined, got %v", p.Flags)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(persona), 0, 0); e != 0 {
		return fmt.Errorf("linux.personality: %w", e)
	}
	return nil
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: unix.SCHED_NORMAL, specs.SchedFIFO: unix.SCHED_FIFO, specs.SchedRR: unix.SCHED_RR,
	specs.SchedBatch: unix.SCHED_BATCH, specs.SchedISO: 4, specs.SchedIdle: unix.SCHED_IDLE,
	specs.SchedDeadline: unix.SCHED_DEADLINE,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10,
	specs.SchedFlagUtilClampMin: 0x20, specs.SchedFlagUtilClampMax: 0x40,
}

func setScheduler(s *specs.Scheduler) error {
	if s == nil {
		return nil
	}
	policy, ok := schedPolicies[s.Policy]
	if !ok {
		return fmt.Errorf("process.scheduler.policy: unknown policy %q", s.Policy)
	}
	attr := unix.SchedAttr{
		Size: unix.SizeofSchedAttr, Policy: policy, Nice: s.Nice, Priority: uint32(s.Priority),
		Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period,
	}
	for _, f := range s.Flags {
		v, ok := schedFlags[f]
		if !ok {
			return fmt.Errorf("process.scheduler.flags: unknown flag %q", f)
		}
		attr.Flags |= v
	}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("process.scheduler (%s): sched_setattr: %w", s.Policy, err)
	}
	return nil
}

const ioprioWhoProcess = 1

var ioprioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

func setIOPriority(p *specs.LinuxIOPriority) error {
	if p == nil {
		return nil
	}
	class, ok := ioprioClasses[p.Class]
	if !ok {
		return fmt.Errorf("process.ioPriority.class: unknown class %q", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return fmt.Errorf("process.ioPriority.priority: %d is outside 0-7", p.Priority)
	}
	prio := class<<13 | p.Priority
	if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(prio)); e != 0 {
		return fmt.Errorf("process.ioPriority: ioprio_set: %w", e)
	}
	return nil
}

var mpolModes = map[specs.MemoryPolicyModeType]int{
	specs.MpolDefault: unix.MPOL_DEFAULT, specs.MpolPreferred: unix.MPOL_PREFERRED, specs.MpolBind: unix.MPOL_BIND,
	specs.MpolInterleave: unix.MPOL_INTERLEAVE, specs.MpolLocal: unix.MPOL_LOCAL,
	specs.MpolPreferredMany: unix.MPOL_PREFERRED_MANY, specs.MpolWeightedInterleave: 6,
}

var mpolFlags = map[specs.MemoryPolicyFlagType]int{
	specs.MpolFStaticNodes: unix.MPOL_F_STATIC_NODES, specs.MpolFRelativeNodes: unix.MPOL_F_RELATIVE_NODES,
	specs.MpolFNumaBalancing: unix.MPOL_F_NUMA_BALANCING,
}

// setMemoryPolicy applies linux.memoryPolicy with set_mempolicy(2).
func setMemoryPolicy(mp *specs.LinuxMemoryPolicy) error {
	if mp == nil {
		return nil
	}
	mode, ok := mpolModes[mp.Mode]
	if !ok {
		return fmt.Errorf("linux.memoryPolicy.mode: unknown mode %q", mp.Mode)
	}
	for _, f := range mp.Flags {
		v, ok := mpolFlags[f]
		if !ok {
			return fmt.Errorf("linux.memoryPolicy.flags: unknown flag %q", f)
		}
		mode |= v
	}
	mask, maxNode, err := parseNodeMask(mp.Nodes)
	if err != nil {
		return fmt.Errorf("linux.memoryPolicy.nodes %q: %w", mp.Nodes, err)
	}
	var ptr uintptr
	if len(mask) > 0 {
		ptr = uintptr(unsafe.Pointer(&mask[0]))
	}
	if _, _, e := unix.Syscall(unix.SYS_SET_MEMPOLICY, uintptr(mode), ptr, uintptr(maxNode)); e != 0 {
		return fmt.Errorf("linux.memoryPolicy (%s, nodes %q): set_mempolicy: %w", mp.Mode, mp.Nodes, e)
	}
	return nil
}

// parseNodeMask turns "0-3,5" into a bitmask of longs and the maxnode argument.
func parseNodeMask(s string) ([]uint64, int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, 0, nil
	}
	var nodes []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, 0, fmt.Errorf("bad node %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, 0, fmt.Errorf("bad range %q", part)
			}
		}
		if b >= 4096 {
			return nil, 0, errors.New("node numbers above 4095 are not supported")
		}
		for n := a; n <= b; n++ {
			nodes = append(nodes, n)
		}
	}
	highest := 0
	for _, n := range nodes {
		highest = max(highest, n)
	}
	mask := make([]uint64, highest/64+1)
	for _, n := range nodes {
		mask[n/64] |= 1 << (n % 64)
	}
	// maxnode counts bits and the kernel ignores the last one: pass one more.
	return mask, len(mask)*64 + 1, nil
}
