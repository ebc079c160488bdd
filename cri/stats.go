package cri

import (
	"context"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hull-runtime/hull/engine"
	"github.com/hull-runtime/hull/engine/container"
)

// cpuSamples remembers each container's last CPU reading, to report a rate
// (UsageNanoCores) as containerd does: CPU time used between two calls.
type cpuSamples struct {
	mu   sync.Mutex
	last map[string]engine.Stats
}

func (c *cpuSamples) rate(id string, now engine.Stats) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]engine.Stats{}
	}
	prev, ok := c.last[id]
	c.last[id] = now
	if !ok || !now.At.After(prev.At) || now.CPU < prev.CPU {
		return 0
	}
	return uint64(float64(now.CPU-prev.CPU) / float64(now.At.Sub(prev.At).Nanoseconds()) * 1e9)
}

// forget drops the samples of containers that are gone.
func (c *cpuSamples) forget(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.last {
		if !keep[id] {
			delete(c.last, id)
		}
	}
}

// containerStats reads one running container's statistics.
func (s *Server) containerStats(ctx context.Context, c *container.Container) (*runtimeapi.ContainerStats, error) {
	st, err := s.opts.Engine.Stats(ctx, c)
	if err != nil {
		return nil, err
	}
	return s.containerStatsFrom(ctx, c, st), nil
}

// containerStatsFrom describes c from one reading.
func (s *Server) containerStatsFrom(ctx context.Context, c *container.Container, st engine.Stats) *runtimeapi.ContainerStats {
	var meta runtimeapi.ContainerMetadata
	decoded(c, labelMetadata, &meta)
	cs := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id: c.ID, Metadata: &meta, Labels: stringMap(c, labelLabels), Annotations: stringMap(c, labelAnnotations),
	}}
	ts := st.At.UnixNano()
	cs.Cpu = &runtimeapi.CpuUsage{
		Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPU},
		UsageNanoCores: &runtimeapi.UInt64Value{Value: s.cpu.rate(c.ID, st)},
	}
	cs.Memory = &runtimeapi.MemoryUsage{
		Timestamp: ts, WorkingSetBytes: &runtimeapi.UInt64Value{Value: st.WorkingSet},
		UsageBytes: &runtimeapi.UInt64Value{Value: st.Memory}, RssBytes: &runtimeapi.UInt64Value{Value: st.RSS},
		PageFaults: &runtimeapi.UInt64Value{Value: st.PageFaults}, MajorPageFaults: &runtimeapi.UInt64Value{Value: st.MajorPageFaults},
	}
	if st.MemoryLimit > 0 && st.MemoryLimit < 1<<62 && st.MemoryLimit > st.WorkingSet {
		cs.Memory.AvailableBytes = &runtimeapi.UInt64Value{Value: st.MemoryLimit - st.WorkingSet}
	}
	if b, inodes, err := s.opts.Engine.WritableLayerUsage(ctx, c); err == nil {
		cs.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp: ts, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: s.fs.root},
			UsedBytes: &runtimeapi.UInt64Value{Value: b}, InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
		}
	}
	return cs
}

// ContainerStats reads one container's statistics; it must be running.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.lookup(req.ContainerId, kindContainer)
	if err != nil {
		return nil, err
	}
	if st := s.opts.Engine.State(ctx, c); !st.Running {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running: no statistics", c.ID)
	}
	cs, err := s.containerStats(ctx, c)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: cs}, nil
}

// ListContainerStats reads the statistics of the running containers a
// filter selects.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	all, err := s.list(kindContainer)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	resp := &runtimeapi.ListContainerStatsResponse{}
	seen := map[string]bool{}
	for _, c := range all {
		seen[c.ID] = true
		if f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()) ||
			f.GetPodSandboxId() != "" && !strings.HasPrefix(c.Labels[labelSandboxID], f.GetPodSandboxId()) ||
			!matchLabels(stringMap(c, labelLabels), f.GetLabelSelector()) {
			continue
		}
		if st := s.opts.Engine.State(ctx, c); !st.Running {
			continue
		}
		cs, err := s.containerStats(ctx, c)
		if err != nil {
			continue // it stopped meanwhile
		}
		resp.Stats = append(resp.Stats, cs)
	}
	if f == nil {
		s.cpu.forget(seen)
	}
	return resp, nil
}

// podStats sums a ready pod's containers (and its sandbox process).
func (s *Server) podStats(ctx context.Context, sb *container.Container) (*runtimeapi.PodSandboxStats, error) {
	var meta runtimeapi.PodSandboxMetadata
	decoded(sb, labelMetadata, &meta)
	ps := &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: sb.ID, Metadata: &meta, Labels: stringMap(sb, labelLabels), Annotations: stringMap(sb, labelAnnotations)},
		Linux:      &runtimeapi.LinuxPodSandboxStats{},
	}
	ctrs, err := s.podContainers(sb.ID)
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	var cpu, nanoCores, mem, ws, rss, procs uint64
	if st, err := s.opts.Engine.Stats(ctx, sb); err == nil {
		cpu, mem, ws, rss, procs = st.CPU, st.Memory, st.WorkingSet, st.RSS, st.Pids
		nanoCores = s.cpu.rate(sb.ID, st)
	}
	for _, c := range ctrs {
		if st := s.opts.Engine.State(ctx, c); !st.Running {
			continue
		}
		st, err := s.opts.Engine.Stats(ctx, c)
		if err != nil {
			continue
		}
		cs := s.containerStatsFrom(ctx, c, st)
		ps.Linux.Containers = append(ps.Linux.Containers, cs)
		cpu += cs.Cpu.UsageCoreNanoSeconds.GetValue()
		nanoCores += cs.Cpu.UsageNanoCores.GetValue()
		mem += cs.Memory.UsageBytes.GetValue()
		ws += cs.Memory.WorkingSetBytes.GetValue()
		rss += cs.Memory.RssBytes.GetValue()
		procs += st.Pids
	}
	ps.Linux.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}, UsageNanoCores: &runtimeapi.UInt64Value{Value: nanoCores}}
	ps.Linux.Memory = &runtimeapi.MemoryUsage{Timestamp: now, UsageBytes: &runtimeapi.UInt64Value{Value: mem}, WorkingSetBytes: &runtimeapi.UInt64Value{Value: ws}, RssBytes: &runtimeapi.UInt64Value{Value: rss}}
	ps.Linux.Process = &runtimeapi.ProcessUsage{Timestamp: now, ProcessCount: &runtimeapi.UInt64Value{Value: procs}}
	return ps, nil
}

// PodSandboxStats reads a ready pod's statistics.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.lookup(req.PodSandboxId, kindSandbox)
	if err != nil {
		return nil, err
	}
	if state, _ := s.sandboxState(ctx, sb); state != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready: no statistics", sb.ID)
	}
	ps, err := s.podStats(ctx, sb)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: ps}, nil
}

// ListPodSandboxStats reads the statistics of the ready pods a filter
// selects.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	all, err := s.list(kindSandbox)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxStatsResponse{}
	for _, sb := range all {
		if f.GetId() != "" && !strings.HasPrefix(sb.ID, f.GetId()) || !matchLabels(stringMap(sb, labelLabels), f.GetLabelSelector()) {
			continue
		}
		if state, _ := s.sandboxState(ctx, sb); state != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		ps, err := s.podStats(ctx, sb)
		if err != nil {
			continue
		}
		resp.Stats = append(resp.Stats, ps)
	}
	return resp, nil
}
