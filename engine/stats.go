package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	"github.com/hull-runtime/hull/engine/container"
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

// Stats reads c's statistics through its runtime (`events --stats`, which
// runc, crun and hull-runtime print alike), so every cgroup layout the
// runtime knows is read the runtime's way.
func (e *Engine) Stats(ctx context.Context, c *container.Container) (Stats, error) {
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
	s := Stats{At: time.Now(), CPU: d.CPU.Usage.Total, Memory: d.Memory.Usage.Usage, MemoryLimit: d.Memory.Usage.Limit, Pids: d.Pids.Current}
	raw := d.Memory.Raw
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
	return s, nil
}

// WritableLayerUsage is the disk space and inodes c's writable layer holds.
func (e *Engine) WritableLayerUsage(ctx context.Context, c *container.Container) (bytes, inodes uint64, err error) {
	u, err := e.Images.Snapshots.Usage(ctx, c.Snapshot)
	if err != nil {
		return 0, 0, err
	}
	return uint64(u.Size), uint64(u.Inodes), nil
}
