package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	"github.com/hull-runtime/hull/engine/container"
	rcgroups "github.com/hull-runtime/hull/runtime/cgroups"
)

// Stats is one reading of a running container's cgroup statistics.
type Stats struct {
	At time.Time
	// CPU is the CPU time used, in nanoseconds.
	CPU uint64
	// Memory is the cgroup's memory use and limit; WorkingSet is the use
	// less inactive file pages (what the kubelet evicts by), RSS the
	// anonymous memory; PageFaults and MajorPageFaults count since start.
	Memory, MemoryLimit, WorkingSet, RSS uint64
	PageFaults, MajorPageFaults          uint64
	Pids                                 uint64
}

// Stats reads c's statistics from its cgroup, whichever runtime runs it
// (crun has no `events`), with the cgroup adapter hull-runtime uses, so v1,
// hybrid and v2 layouts read alike and a poll (the kubelet's, every few
// seconds for every container) costs no process. A container without a
// cgroup of its own (rootless without delegation) is read through its
// runtime's `events --stats`.
func (e *Engine) Stats(ctx context.Context, c *container.Container) (Stats, error) {
	if o, err := options(c); err == nil && o.Spec.CgroupsPath != "" {
		m, err := rcgroups.Load(rcgroups.Config{ID: c.ID, Path: o.Spec.CgroupsPath}, nil)
		if err != nil {
			return Stats{}, fmt.Errorf("stats of %s: %w", c.Name, err)
		}
		cs, err := m.Stats()
		if err != nil {
			return Stats{}, fmt.Errorf("stats of %s: %w", c.Name, err)
		}
		return statsFrom(time.Now(), cs.CpuStats.CpuUsage.TotalUsage, cs.MemoryStats.Usage.Usage, cs.MemoryStats.Usage.Limit,
			cs.PidsStats.Current, cs.MemoryStats.Stats), nil
	}
	return e.runtimeStats(ctx, c)
}

// runtimeStats reads c's statistics through its runtime's `events --stats`.
func (e *Engine) runtimeStats(ctx context.Context, c *container.Container) (Stats, error) {
	out, err := exec.CommandContext(ctx, c.Runtime, "--root", e.runtimeRoot(), "events", "--stats", c.ID).Output()
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %s: %w", c.Name, err)
	}
	var ev struct {
		Data struct {
			CPU struct {
				Usage struct {
					Total uint64 `json:"total"`
				} `json:"usage"`
			} `json:"cpu"`
			Memory struct {
				Usage struct {
					Usage uint64 `json:"usage"`
					Limit uint64 `json:"limit"`
				} `json:"usage"`
				// Raw is memory.stat: cgroup v1 names (total_*) or v2's.
				Raw map[string]uint64 `json:"raw"`
			} `json:"memory"`
			Pids struct {
				Current uint64 `json:"current"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &ev); err != nil {
		return Stats{}, fmt.Errorf("stats of %s: %w", c.Name, err)
	}
	d := ev.Data
	return statsFrom(time.Now(), d.CPU.Usage.Total, d.Memory.Usage.Usage, d.Memory.Usage.Limit, d.Pids.Current, d.Memory.Raw), nil
}

// statsFrom builds a reading; raw is memory.stat, with cgroup v1's names
// (total_*) or v2's.
func statsFrom(at time.Time, cpu, mem, limit, pids uint64, raw map[string]uint64) Stats {
	s := Stats{At: at, CPU: cpu, Memory: mem, MemoryLimit: limit, Pids: pids}
	pick := func(v1, v2 string) uint64 {
		if v, ok := raw[v1]; ok {
			return v
		}
		return raw[v2]
	}
	inactive := pick("total_inactive_file", "inactive_file")
	if s.Memory > inactive {
		s.WorkingSet = s.Memory - inactive
	}
	s.RSS = pick("total_rss", "anon")
	s.PageFaults, s.MajorPageFaults = pick("total_pgfault", "pgfault"), pick("total_pgmajfault", "pgmajfault")
	return s
}

// WritableLayerUsage is the disk space and inodes c's writable layer holds.
func (e *Engine) WritableLayerUsage(ctx context.Context, c *container.Container) (bytes, inodes uint64, err error) {
	u, err := e.Images.Snapshots.Usage(ctx, c.Snapshot)
	if err != nil {
		return 0, 0, err
	}
	return uint64(u.Size), uint64(u.Inodes), nil
}
