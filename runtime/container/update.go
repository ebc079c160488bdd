package container

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hull-runtime/hull/runtime/cgroups"
	"github.com/hull-runtime/hull/runtime/state"
)

// Update changes the resource limits of a created, running or paused
// container (`update`). Fields that r leaves unset keep their current value;
// device rules are never rewritten unless r lists them. The merged resources
// are written to the cgroup and then persisted in state.json, so that later
// updates and `events` start from them. It returns the merged resources.
func (rt *Runtime) Update(id string, r *specs.LinuxResources) (*specs.LinuxResources, error) {
	c, unlock, err := rt.load(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if st := rt.Status(c); st == state.Stopped {
		return nil, fmt.Errorf("cannot update container %s: container not running (status %s)", id, st)
	}
	r = zeroMeansUnchanged(r)
	spec, err := c.Spec()
	if err != nil {
		return nil, err
	}
	cg, err := cgroups.Load(cgroups.Config{ID: c.ID, Path: c.Cgroup.Path, Systemd: c.Cgroup.Systemd, Rootless: c.Cgroup.Rootless, Resources: spec.Linux.Resources}, c.Cgroup.Paths)
	if err != nil {
		return nil, err
	}
	if m := r.Memory; m != nil && m.Limit != nil && *m.Limit == -1 && m.Swap == nil {
		// runc: an unlimited memory limit with no swap value means both
		// unlimited; otherwise a v1 memory+swap limit below the new memory
		// limit would be refused. Only needed when a swap limit is set.
		if cur := cg.Resources(); cur != nil && cur.Memory != nil && cur.Memory.Swap != nil && *cur.Memory.Swap != 0 {
			mc := *m
			unlimited := int64(-1)
			mc.Swap = &unlimited
			rc := *r
			rc.Memory = &mc
			r = &rc
		}
	}
	if err := cg.Update(r); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	spec.Linux.Resources = cg.Resources()
	err = c.SetSpec(spec)
	if err == nil {
		err = rt.Store.Save(c)
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: the new limits are applied but not recorded: %w", id, err)
	}
	return spec.Linux.Resources, nil
}

// zeroMeansUnchanged returns a copy of r without the numeric limits that are
// 0, which runc's `update` treats as "leave as is" (the cgroup library
// writes nothing for them either). Engines built on runtime-spec types
// before 1.3 always send "pids": {"limit": 0}, which would otherwise become
// a limit of one process.
func zeroMeansUnchanged(r *specs.LinuxResources) *specs.LinuxResources {
	var out specs.LinuxResources
	if r != nil {
		out = *r
	}
	unset := func(p **int64) {
		if *p != nil && **p == 0 {
			*p = nil
		}
	}
	unsetU := func(p **uint64) {
		if *p != nil && **p == 0 {
			*p = nil
		}
	}
	if out.Memory != nil {
		m := *out.Memory
		unset(&m.Limit)
		unset(&m.Reservation)
		unset(&m.Swap)
		out.Memory = &m
	}
	if out.CPU != nil {
		c := *out.CPU
		unsetU(&c.Shares)
		unset(&c.Quota)
		unsetU(&c.Period)
		unsetU(&c.RealtimePeriod)
		unset(&c.RealtimeRuntime)
		out.CPU = &c
	}
	if out.Pids != nil {
		p := *out.Pids
		unset(&p.Limit)
		out.Pids = &p
	}
	if out.BlockIO != nil && out.BlockIO.Weight != nil && *out.BlockIO.Weight == 0 {
		b := *out.BlockIO
		b.Weight = nil
		out.BlockIO = &b
	}
	return &out
}
