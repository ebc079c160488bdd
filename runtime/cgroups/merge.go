package cgroups

import (
	"maps"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// pick returns n if it is set, else o.
func pick[T any](n, o *T) *T {
	if n != nil {
		return n
	}
	return o
}

// pickSlice returns n if it is non-nil, else o.
func pickSlice[T any](n, o []T) []T {
	if n != nil {
		return n
	}
	return o
}

// mergeMap returns o with the keys of n set over it, without modifying
// either.
func mergeMap[V any](n, o map[string]V) map[string]V {
	if n == nil {
		return o
	}
	out := maps.Clone(o)
	if out == nil {
		out = make(map[string]V, len(n))
	}
	maps.Copy(out, n)
	return out
}

// mergeResources returns old with every field that n sets replaced, for
// Update. Neither argument is modified.
func mergeResources(old, n *specs.LinuxResources) *specs.LinuxResources {
	var out specs.LinuxResources
	if old != nil {
		out = *old
	}
	if n == nil {
		return &out
	}
	out.Devices = pickSlice(n.Devices, out.Devices)
	if n.Memory != nil {
		var m specs.LinuxMemory
		if out.Memory != nil {
			m = *out.Memory
		}
		nm := n.Memory
		m.Limit = pick(nm.Limit, m.Limit)
		m.Reservation = pick(nm.Reservation, m.Reservation)
		m.Swap = pick(nm.Swap, m.Swap)
		m.Swappiness = pick(nm.Swappiness, m.Swappiness)
		m.DisableOOMKiller = pick(nm.DisableOOMKiller, m.DisableOOMKiller)
		m.UseHierarchy = pick(nm.UseHierarchy, m.UseHierarchy)
		m.CheckBeforeUpdate = pick(nm.CheckBeforeUpdate, m.CheckBeforeUpdate)
		out.Memory = &m
	}
	if n.CPU != nil {
		var c specs.LinuxCPU
		if out.CPU != nil {
			c = *out.CPU
		}
		nc := n.CPU
		c.Shares = pick(nc.Shares, c.Shares)
		c.Quota = pick(nc.Quota, c.Quota)
		c.Burst = pick(nc.Burst, c.Burst)
		c.Period = pick(nc.Period, c.Period)
		c.RealtimeRuntime = pick(nc.RealtimeRuntime, c.RealtimeRuntime)
		c.RealtimePeriod = pick(nc.RealtimePeriod, c.RealtimePeriod)
		c.Idle = pick(nc.Idle, c.Idle)
		if nc.Cpus != "" {
			c.Cpus = nc.Cpus
		}
		if nc.Mems != "" {
			c.Mems = nc.Mems
		}
		out.CPU = &c
	}
	if n.Pids != nil && n.Pids.Limit != nil {
		out.Pids = &specs.LinuxPids{Limit: n.Pids.Limit}
	}
	if n.BlockIO != nil {
		var b specs.LinuxBlockIO
		if out.BlockIO != nil {
			b = *out.BlockIO
		}
		nb := n.BlockIO
		b.Weight = pick(nb.Weight, b.Weight)
		b.LeafWeight = pick(nb.LeafWeight, b.LeafWeight)
		b.WeightDevice = pickSlice(nb.WeightDevice, b.WeightDevice)
		b.ThrottleReadBpsDevice = pickSlice(nb.ThrottleReadBpsDevice, b.ThrottleReadBpsDevice)
		b.ThrottleWriteBpsDevice = pickSlice(nb.ThrottleWriteBpsDevice, b.ThrottleWriteBpsDevice)
		b.ThrottleReadIOPSDevice = pickSlice(nb.ThrottleReadIOPSDevice, b.ThrottleReadIOPSDevice)
		b.ThrottleWriteIOPSDevice = pickSlice(nb.ThrottleWriteIOPSDevice, b.ThrottleWriteIOPSDevice)
		out.BlockIO = &b
	}
	out.HugepageLimits = pickSlice(n.HugepageLimits, out.HugepageLimits)
	if n.Network != nil {
		var nw specs.LinuxNetwork
		if out.Network != nil {
			nw = *out.Network
		}
		nw.ClassID = pick(n.Network.ClassID, nw.ClassID)
		nw.Priorities = pickSlice(n.Network.Priorities, nw.Priorities)
		out.Network = &nw
	}
	out.Rdma = mergeMap(n.Rdma, out.Rdma)
	out.Unified = mergeMap(n.Unified, out.Unified)
	return &out
}
