package cgroups

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Limits enforced by the kernel (or by the spec) that are cheap to check
// before anything is written, so that the error can name the spec field.
const (
	minCPUShares  = 2
	maxCPUShares  = 262144
	minCFSQuotaUs = 1000    // kernel: cpu.cfs_quota_us >= 1ms
	minCFSPeriod  = 1000    // kernel: cpu.cfs_period_us in [1ms, 1s]
	maxCFSPeriod  = 1000000 //
	minBlkWeight  = 10
	maxBlkWeight  = 1000
	maxSwappiness = 100
)

// convertResources turns runtime-spec resources into the resources of
// opencontainers/cgroups, validating every field on the way. r may be nil,
// which yields empty (but non-nil) resources: no limits and a device
// allowlist that denies everything.
func convertResources(r *specs.LinuxResources) (*cgroups.Resources, error) {
	res := &cgroups.Resources{}
	if r == nil {
		return res, nil
	}
	if err := convertDevices(r.Devices, res); err != nil {
		return nil, err
	}
	if err := convertMemory(r.Memory, res); err != nil {
		return nil, err
	}
	if err := convertCPU(r.CPU, res); err != nil {
		return nil, err
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		if l := *r.Pids.Limit; l < -1 {
			return nil, fmt.Errorf("linux.resources.pids.limit: must be -1 (unlimited) or >= 0, got %d", l)
		}
		v := *r.Pids.Limit
		res.PidsLimit = &v
	}
	if err := convertBlockIO(r.BlockIO, res); err != nil {
		return nil, err
	}
	for i, l := range r.HugepageLimits {
		if l.Pagesize == "" {
			return nil, fmt.Errorf("linux.resources.hugepageLimits[%d].pageSize: must not be empty", i)
		}
		if sizes := cgroups.HugePageSizes(); !slices.Contains(sizes, l.Pagesize) {
			return nil, fmt.Errorf("linux.resources.hugepageLimits[%d].pageSize: %q is not a huge page size of this host (supported: %s)",
				i, l.Pagesize, strings.Join(sizes, ", "))
		}
		res.HugetlbLimit = append(res.HugetlbLimit, &cgroups.HugepageLimit{Pagesize: l.Pagesize, Limit: l.Limit})
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			res.NetClsClassid = *n.ClassID
		}
		for i, p := range n.Priorities {
			if p.Name == "" || strings.ContainsAny(p.Name, " \t\n/") {
				return nil, fmt.Errorf("linux.resources.network.priorities[%d].name: invalid interface name %q", i, p.Name)
			}
			res.NetPrioIfpriomap = append(res.NetPrioIfpriomap, &cgroups.IfPrioMap{Interface: p.Name, Priority: int64(p.Priority)})
		}
	}
	if len(r.Rdma) > 0 {
		res.Rdma = make(map[string]cgroups.LinuxRdma, len(r.Rdma))
		for dev, l := range r.Rdma {
			if dev == "" || strings.ContainsAny(dev, " \t\n") {
				return nil, fmt.Errorf("linux.resources.rdma: invalid device name %q", dev)
			}
			res.Rdma[dev] = cgroups.LinuxRdma{HcaHandles: l.HcaHandles, HcaObjects: l.HcaObjects}
		}
	}
	if len(r.Unified) > 0 {
		res.Unified = make(map[string]string, len(r.Unified))
		for k, v := range r.Unified {
			ctrl, param, ok := strings.Cut(k, ".")
			if !ok || ctrl == "" || param == "" || strings.ContainsAny(k, "/\x00") {
				return nil, fmt.Errorf("linux.resources.unified: key %q must be a cgroup file name of the form CONTROLLER.PARAMETER", k)
			}
			res.Unified[k] = v
		}
	}
	return res, nil
}

func convertDevices(devs []specs.LinuxDeviceCgroup, res *cgroups.Resources) error {
	for i, d := range devs {
		field := fmt.Sprintf("linux.resources.devices[%d]", i)
		var t devconfig.Type
		switch d.Type {
		case "", "a":
			t = devconfig.WildcardDevice
		case "b":
			t = devconfig.BlockDevice
		case "c":
			t = devconfig.CharDevice
		default:
			return fmt.Errorf("%s.type: invalid device type %q (want a, b or c)", field, d.Type)
		}
		major, minor := int64(devconfig.Wildcard), int64(devconfig.Wildcard)
		if d.Major != nil {
			if major = *d.Major; major < -1 {
				return fmt.Errorf("%s.major: invalid device number %d", field, major)
			}
		}
		if d.Minor != nil {
			if minor = *d.Minor; minor < -1 {
				return fmt.Errorf("%s.minor: invalid device number %d", field, minor)
			}
		}
		if d.Access == "" {
			// runc rejects an empty access string too: in cgroup v1 an
			// empty permission set is not a valid rule.
			return fmt.Errorf("%s.access: must not be empty (a combination of r, w and m)", field)
		}
		if strings.Trim(d.Access, "rwm") != "" {
			return fmt.Errorf("%s.access: invalid access %q (a combination of r, w and m)", field, d.Access)
		}
		res.Devices = append(res.Devices, &devconfig.Rule{
			Type:        t,
			Major:       major,
			Minor:       minor,
			Permissions: devconfig.Permissions(d.Access),
			Allow:       d.Allow,
		})
	}
	return nil
}

// checkBytes validates a memory value: -1 (unlimited), 0 (unset) or positive.
func checkBytes(field string, v *int64) error {
	if v != nil && *v < -1 {
		return fmt.Errorf("linux.resources.memory.%s: must be -1 (unlimited) or a number of bytes >= 0, got %d", field, *v)
	}
	return nil
}

func convertMemory(m *specs.LinuxMemory, res *cgroups.Resources) error {
	if m == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    *int64
		dst  *int64
	}{
		{"limit", m.Limit, &res.Memory},
		{"reservation", m.Reservation, &res.MemoryReservation},
		{"swap", m.Swap, &res.MemorySwap},
	} {
		if err := checkBytes(f.name, f.v); err != nil {
			return err
		}
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	// Swap is memory+swap (v1 semantics), so it cannot be below the limit,
	// and it means nothing without a limit.
	switch {
	case res.MemorySwap > 0 && res.Memory > 0 && res.MemorySwap < res.Memory:
		return fmt.Errorf("linux.resources.memory.swap: memory+swap limit %d must be >= linux.resources.memory.limit %d",
			res.MemorySwap, res.Memory)
	case res.MemorySwap > 0 && res.Memory == 0:
		return fmt.Errorf("linux.resources.memory.swap: memory+swap limit %d needs linux.resources.memory.limit to be set", res.MemorySwap)
	}
	if m.Swappiness != nil {
		// The library treats the uint64 form of -1 as "unset"; keep that.
		if s := *m.Swappiness; s > maxSwappiness && s != math.MaxUint64 {
			return fmt.Errorf("linux.resources.memory.swappiness: must be between 0 and %d, got %d", maxSwappiness, s)
		}
		v := *m.Swappiness
		res.MemorySwappiness = &v
	}
	if m.DisableOOMKiller != nil {
		res.OomKillDisable = *m.DisableOOMKiller
	}
	if m.CheckBeforeUpdate != nil {
		res.MemoryCheckBeforeUpdate = *m.CheckBeforeUpdate
	}
	// Kernel and KernelTCP are deprecated and ignored (removed from the
	// kernel in 5.4 and absent from cgroup v2), as runc does.
	// UseHierarchy is always on in current kernels.
	return nil
}

func convertCPU(c *specs.LinuxCPU, res *cgroups.Resources) error {
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 {
		s := *c.Shares
		if s < minCPUShares || s > maxCPUShares {
			return fmt.Errorf("linux.resources.cpu.shares: must be between %d and %d, got %d", minCPUShares, maxCPUShares, s)
		}
		res.CpuShares = s
		res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(s)
	}
	if c.Quota != nil {
		q := *c.Quota
		if q < -1 || (q > 0 && q < minCFSQuotaUs) {
			return fmt.Errorf("linux.resources.cpu.quota: must be -1 (unlimited) or >= %d microseconds, got %d", minCFSQuotaUs, q)
		}
		res.CpuQuota = q
	}
	if c.Period != nil && *c.Period != 0 {
		p := *c.Period
		if p < minCFSPeriod || p > maxCFSPeriod {
			return fmt.Errorf("linux.resources.cpu.period: must be between %d and %d microseconds, got %d", minCFSPeriod, maxCFSPeriod, p)
		}
		res.CpuPeriod = p
	}
	if c.Burst != nil {
		b := *c.Burst
		if res.CpuQuota > 0 && b > uint64(res.CpuQuota) {
			return fmt.Errorf("linux.resources.cpu.burst: %d must not be larger than linux.resources.cpu.quota %d", b, res.CpuQuota)
		}
		res.CpuBurst = &b
	}
	if c.RealtimeRuntime != nil {
		if v := *c.RealtimeRuntime; v < -1 {
			return fmt.Errorf("linux.resources.cpu.realtimeRuntime: must be -1 or >= 0, got %d", v)
		}
		res.CpuRtRuntime = *c.RealtimeRuntime
	}
	if c.RealtimePeriod != nil {
		res.CpuRtPeriod = *c.RealtimePeriod
	}
	if c.RealtimeRuntime != nil && c.RealtimePeriod != nil && res.CpuRtRuntime > 0 && uint64(res.CpuRtRuntime) > res.CpuRtPeriod {
		return fmt.Errorf("linux.resources.cpu.realtimeRuntime: %d must not be larger than linux.resources.cpu.realtimePeriod %d",
			res.CpuRtRuntime, res.CpuRtPeriod)
	}
	if c.Cpus != "" {
		if err := checkList(c.Cpus); err != nil {
			return fmt.Errorf("linux.resources.cpu.cpus: %w", err)
		}
		res.CpusetCpus = c.Cpus
	}
	if c.Mems != "" {
		if err := checkList(c.Mems); err != nil {
			return fmt.Errorf("linux.resources.cpu.mems: %w", err)
		}
		res.CpusetMems = c.Mems
	}
	if c.Idle != nil {
		if v := *c.Idle; v != 0 && v != 1 {
			return fmt.Errorf("linux.resources.cpu.idle: must be 0 or 1, got %d", v)
		}
		v := *c.Idle
		res.CPUIdle = &v
	}
	return nil
}

// checkList validates a cpuset list such as "0-3,7".
func checkList(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return fmt.Errorf("invalid list %q: bad element %q", s, part)
		}
		if isRange {
			b, err := strconv.ParseUint(hi, 10, 32)
			if err != nil || b < a {
				return fmt.Errorf("invalid list %q: bad range %q", s, part)
			}
		}
	}
	return nil
}

func checkWeight(field string, w *uint16) (uint16, error) {
	if w == nil || *w == 0 {
		return 0, nil
	}
	if *w < minBlkWeight || *w > maxBlkWeight {
		return 0, fmt.Errorf("%s: must be between %d and %d, got %d", field, minBlkWeight, maxBlkWeight, *w)
	}
	return *w, nil
}

func checkDevNum(field string, major, minor int64) error {
	if major < 0 || minor < 0 {
		return fmt.Errorf("%s: invalid device %d:%d", field, major, minor)
	}
	return nil
}

func convertBlockIO(b *specs.LinuxBlockIO, res *cgroups.Resources) error {
	if b == nil {
		return nil
	}
	var err error
	if res.BlkioWeight, err = checkWeight("linux.resources.blockIO.weight", b.Weight); err != nil {
		return err
	}
	if res.BlkioLeafWeight, err = checkWeight("linux.resources.blockIO.leafWeight", b.LeafWeight); err != nil {
		return err
	}
	for i, wd := range b.WeightDevice {
		field := fmt.Sprintf("linux.resources.blockIO.weightDevice[%d]", i)
		if err := checkDevNum(field, wd.Major, wd.Minor); err != nil {
			return err
		}
		if wd.Weight == nil && wd.LeafWeight == nil {
			return fmt.Errorf("%s: at least one of weight or leafWeight must be set", field)
		}
		w, err := checkWeight(field+".weight", wd.Weight)
		if err != nil {
			return err
		}
		lw, err := checkWeight(field+".leafWeight", wd.LeafWeight)
		if err != nil {
			return err
		}
		res.BlkioWeightDevice = append(res.BlkioWeightDevice, cgroups.NewWeightDevice(wd.Major, wd.Minor, w, lw))
	}
	for _, t := range []struct {
		name string
		src  []specs.LinuxThrottleDevice
		dst  *[]*cgroups.ThrottleDevice
	}{
		{"throttleReadBpsDevice", b.ThrottleReadBpsDevice, &res.BlkioThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", b.ThrottleWriteBpsDevice, &res.BlkioThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", b.ThrottleReadIOPSDevice, &res.BlkioThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", b.ThrottleWriteIOPSDevice, &res.BlkioThrottleWriteIOPSDevice},
	} {
		for i, td := range t.src {
			if err := checkDevNum(fmt.Sprintf("linux.resources.blockIO.%s[%d]", t.name, i), td.Major, td.Minor); err != nil {
				return err
			}
			*t.dst = append(*t.dst, cgroups.NewThrottleDevice(td.Major, td.Minor, td.Rate))
		}
	}
	return nil
}

// controllerUse is one requested resource group and the controller it needs.
type controllerUse struct {
	field string // spec field, e.g. "linux.resources.memory"
	v1    string // cgroup v1 subsystem name
	v2    string // cgroup v2 controller name; "" if v2 has no equivalent
}

// requestedControllers lists the controllers that res actually needs.
// Devices and freezer are not listed: they are handled separately.
func requestedControllers(res *cgroups.Resources) []controllerUse {
	var out []controllerUse
	if res.Memory != 0 || res.MemoryReservation != 0 || res.MemorySwap != 0 || res.MemorySwappiness != nil || res.OomKillDisable {
		out = append(out, controllerUse{"linux.resources.memory", "memory", "memory"})
	}
	if res.CpuShares != 0 || res.CpuQuota != 0 || res.CpuPeriod != 0 || res.CpuBurst != nil ||
		res.CpuRtRuntime != 0 || res.CpuRtPeriod != 0 || res.CPUIdle != nil {
		out = append(out, controllerUse{"linux.resources.cpu", "cpu", "cpu"})
	}
	if res.CpusetCpus != "" || res.CpusetMems != "" {
		out = append(out, controllerUse{"linux.resources.cpu.cpus/mems", "cpuset", "cpuset"})
	}
	if res.PidsLimit != nil {
		out = append(out, controllerUse{"linux.resources.pids", "pids", "pids"})
	}
	if res.BlkioWeight != 0 || res.BlkioLeafWeight != 0 || len(res.BlkioWeightDevice) > 0 ||
		len(res.BlkioThrottleReadBpsDevice) > 0 || len(res.BlkioThrottleWriteBpsDevice) > 0 ||
		len(res.BlkioThrottleReadIOPSDevice) > 0 || len(res.BlkioThrottleWriteIOPSDevice) > 0 {
		out = append(out, controllerUse{"linux.resources.blockIO", "blkio", "io"})
	}
	if len(res.HugetlbLimit) > 0 {
		out = append(out, controllerUse{"linux.resources.hugepageLimits", "hugetlb", "hugetlb"})
	}
	if res.NetClsClassid != 0 {
		out = append(out, controllerUse{"linux.resources.network.classID", "net_cls", ""})
	}
	if len(res.NetPrioIfpriomap) > 0 {
		out = append(out, controllerUse{"linux.resources.network.priorities", "net_prio", ""})
	}
	if len(res.Rdma) > 0 {
		out = append(out, controllerUse{"linux.resources.rdma", "rdma", "rdma"})
	}
	return out
}

// ErrControllerUnavailable is wrapped by the errors for requested resources
// whose cgroup controller this host does not provide (check with errors.Is).
var ErrControllerUnavailable = errors.New("cgroup controller not available")
