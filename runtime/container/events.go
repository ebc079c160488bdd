package container

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/cgroups"

	hcgroups "github.com/hull-runtime/hull/runtime/cgroups"
	"github.com/hull-runtime/hull/runtime/state"
)

// Event is one JSON object of `events`, in runc's shape: type "stats" with
// Data, or type "oom" without.
type Event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// The types below mirror runc's types/events.go (the stable JSON of
// `runc events`), field for field and in the same order, so tools that parse
// runc's output parse ours. PSI only appears on hosts that report it, as in
// newer runc.

// Stats is the data of a "stats" event.
type Stats struct {
	CPU               CPU                 `json:"cpu"`
	CPUSet            CPUSet              `json:"cpuset"`
	Memory            Memory              `json:"memory"`
	Pids              Pids                `json:"pids"`
	Blkio             Blkio               `json:"blkio"`
	Hugetlb           map[string]Hugetlb  `json:"hugetlb"`
	IntelRdt          IntelRdt            `json:"intel_rdt"`
	NetworkInterfaces []*NetworkInterface `json:"network_interfaces"`
}

// PSIData is one line of a pressure stall information file.
type PSIData struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total"`
}

// PSIStats is a cgroup v2 *.pressure file.
type PSIStats struct {
	Some PSIData `json:"some"`
	Full PSIData `json:"full"`
}

// Hugetlb is the usage of one huge page size.
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// BlkioEntry is one per-device, per-operation block I/O counter.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio are the block I/O counters (blkio on v1, io on v2).
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
	PSI                     *PSIStats    `json:"psi,omitempty"`
}

// Pids is the pids controller's count and limit (0: unlimited).
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// Throttling is the CFS bandwidth throttling of the cgroup.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUUsage is CPU time in nanoseconds since the cgroup was created.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// CPU is the cpu (and v1 cpuacct) usage of the cgroup.
type CPU struct {
	Usage      CPUUsage   `json:"usage"`
	Throttling Throttling `json:"throttling"`
	PSI        *PSIStats  `json:"psi,omitempty"`
}

// CPUSet is the v1 cpuset state of the cgroup.
type CPUSet struct {
	CPUs                  []uint16 `json:"cpus,omitempty"`
	CPUExclusive          uint64   `json:"cpu_exclusive"`
	Mems                  []uint16 `json:"mems,omitempty"`
	MemHardwall           uint64   `json:"mem_hardwall"`
	MemExclusive          uint64   `json:"mem_exclusive"`
	MemoryMigrate         uint64   `json:"memory_migrate"`
	MemorySpreadPage      uint64   `json:"memory_spread_page"`
	MemorySpreadSlab      uint64   `json:"memory_spread_slab"`
	MemoryPressure        uint64   `json:"memory_pressure"`
	SchedLoadBalance      uint64   `json:"sched_load_balance"`
	SchedRelaxDomainLevel int64    `json:"sched_relax_domain_level"`
}

// MemoryEntry is one memory counter with its limit, in bytes.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Memory is the memory usage of the cgroup; Raw is memory.stat.
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage"`
	Swap      MemoryEntry       `json:"swap"`
	Kernel    MemoryEntry       `json:"kernel"`
	KernelTCP MemoryEntry       `json:"kernelTCP"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
	PSI       *PSIStats         `json:"psi,omitempty"`
}

// IntelRdt is empty: hull does not manage Intel RDT (resctrl) groups.
type IntelRdt struct {
	L3CacheSchema string `json:"l3_cache_schema,omitempty"`
	MemBwSchema   string `json:"mem_bw_schema,omitempty"`
}

// NetworkInterface is the shape runc uses for interface counters. Like runc
// for OCI bundles (whose network is set up by the engine), hull reports none.
type NetworkInterface struct {
	Name      string
	RxBytes   uint64
	RxPackets uint64
	RxErrors  uint64
	RxDropped uint64
	TxBytes   uint64
	TxPackets uint64
	TxErrors  uint64
	TxDropped uint64
}

// Stats returns the resource usage of a created, running or paused container
// (`events --stats`).
func (rt *Runtime) Stats(id string) (*Stats, error) {
	c, cg, err := rt.liveCgroup(id)
	if err != nil {
		return nil, err
	}
	return statsOf(c.ID, cg)
}

func statsOf(id string, cg *hcgroups.Manager) (*Stats, error) {
	st, err := cg.Stats()
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	return convertStats(st), nil
}

// liveCgroup loads a container that is not stopped and its cgroup manager.
// It does not hold the container's lock: reading statistics must not block
// the lifecycle verbs.
func (rt *Runtime) liveCgroup(id string) (*state.Container, *hcgroups.Manager, error) {
	if err := state.ValidateID(id); err != nil {
		return nil, nil, err
	}
	c, err := rt.Store.Load(id)
	if err != nil {
		return nil, nil, err
	}
	if rt.Status(c) == state.Stopped {
		return nil, nil, fmt.Errorf("container with id %s is not running", id)
	}
	cg, err := rt.cgroup(c)
	if err != nil {
		return nil, nil, err
	}
	return c, cg, nil
}

// oomPoll is how often Events checks the OOM kill counter and whether the
// container still runs.
const oomPoll = 100 * time.Millisecond

// Events reports a "stats" event every interval and an "oom" event whenever
// the container's OOM kill count has risen, until the container stops, ctx
// is done or emit fails. Like runc, a failure to read the statistics once is
// logged and the stream goes on.
func (rt *Runtime) Events(ctx context.Context, id string, interval time.Duration, emit func(*Event) error) error {
	if interval <= 0 {
		return errors.New("events: the interval must be greater than 0")
	}
	c, cg, err := rt.liveCgroup(id)
	if err != nil {
		return err
	}
	ooms, err := cg.OOMKillCount()
	watchOOM := err == nil
	if !watchOOM {
		rt.Log.Warn("no oom events: cannot read the oom kill count", "id", id, "err", err)
	}
	poll := time.NewTicker(min(oomPoll, interval))
	defer poll.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			s, err := statsOf(id, cg)
			if err != nil {
				if !c.Alive() {
					return nil
				}
				rt.Log.Error("read container statistics", "id", id, "err", err)
				continue
			}
			if err := emit(&Event{Type: "stats", ID: id, Data: s}); err != nil {
				return err
			}
		case <-poll.C:
			// The counter first: an OOM kill that stopped the container is
			// still reported.
			if watchOOM {
				n, err := cg.OOMKillCount()
				if err == nil && n > ooms {
					if err := emit(&Event{Type: "oom", ID: id}); err != nil {
						return err
					}
				}
				if err == nil {
					ooms = n
				}
			}
			if !c.Alive() {
				return nil
			}
		}
	}
}

// convertStats turns the cgroup library's statistics into runc's event shape
// (runc's convertLibcontainerStats).
func convertStats(cg *cgroups.Stats) *Stats {
	var s Stats
	s.Pids = Pids{Current: cg.PidsStats.Current, Limit: cg.PidsStats.Limit}

	u := cg.CpuStats.CpuUsage
	s.CPU.Usage = CPUUsage{
		Total: u.TotalUsage, Percpu: u.PercpuUsage,
		PercpuKernel: u.PercpuUsageInKernelmode, PercpuUser: u.PercpuUsageInUsermode,
		Kernel: u.UsageInKernelmode, User: u.UsageInUsermode,
	}
	t := cg.CpuStats.ThrottlingData
	s.CPU.Throttling = Throttling{Periods: t.Periods, ThrottledPeriods: t.ThrottledPeriods, ThrottledTime: t.ThrottledTime}
	s.CPU.PSI = convertPSI(cg.CpuStats.PSI)

	cs := cg.CPUSetStats
	s.CPUSet = CPUSet{
		CPUs: cs.CPUs, CPUExclusive: cs.CPUExclusive, Mems: cs.Mems, MemHardwall: cs.MemHardwall,
		MemExclusive: cs.MemExclusive, MemoryMigrate: cs.MemoryMigrate, MemorySpreadPage: cs.MemorySpreadPage,
		MemorySpreadSlab: cs.MemorySpreadSlab, MemoryPressure: cs.MemoryPressure,
		SchedLoadBalance: cs.SchedLoadBalance, SchedRelaxDomainLevel: cs.SchedRelaxDomainLevel,
	}

	m := cg.MemoryStats
	s.Memory = Memory{
		Cache:     m.Cache,
		Usage:     convertMemoryEntry(m.Usage),
		Swap:      convertMemoryEntry(m.SwapUsage),
		Kernel:    convertMemoryEntry(m.KernelUsage),
		KernelTCP: convertMemoryEntry(m.KernelTCPUsage),
		Raw:       m.Stats,
		PSI:       convertPSI(m.PSI),
	}

	b := cg.BlkioStats
	s.Blkio = Blkio{
		IoServiceBytesRecursive: convertBlkio(b.IoServiceBytesRecursive),
		IoServicedRecursive:     convertBlkio(b.IoServicedRecursive),
		IoQueuedRecursive:       convertBlkio(b.IoQueuedRecursive),
		IoServiceTimeRecursive:  convertBlkio(b.IoServiceTimeRecursive),
		IoWaitTimeRecursive:     convertBlkio(b.IoWaitTimeRecursive),
		IoMergedRecursive:       convertBlkio(b.IoMergedRecursive),
		IoTimeRecursive:         convertBlkio(b.IoTimeRecursive),
		SectorsRecursive:        convertBlkio(b.SectorsRecursive),
		PSI:                     convertPSI(b.PSI),
	}

	s.Hugetlb = make(map[string]Hugetlb, len(cg.HugetlbStats))
	for size, h := range cg.HugetlbStats {
		s.Hugetlb[size] = Hugetlb{Usage: h.Usage, Max: h.MaxUsage, Failcnt: h.Failcnt}
	}
	return &s
}

func convertMemoryEntry(d cgroups.MemoryData) MemoryEntry {
	return MemoryEntry{Limit: d.Limit, Usage: d.Usage, Max: d.MaxUsage, Failcnt: d.Failcnt}
}

func convertBlkio(in []cgroups.BlkioStatEntry) []BlkioEntry {
	var out []BlkioEntry
	for _, e := range in {
		out = append(out, BlkioEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	return out
}

func convertPSI(p *cgroups.PSIStats) *PSIStats {
	if p == nil {
		return nil
	}
	conv := func(d cgroups.PSIData) PSIData {
		return PSIData{Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300, Total: d.Total}
	}
	return &PSIStats{Some: conv(p.Some), Full: conv(p.Full)}
}
