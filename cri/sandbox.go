package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hull-runtime/hull/engine"
	"github.com/hull-runtime/hull/engine/container"
)

// runtimeFor maps a CRI runtime handler to the OCI runtime hull runs.
func (s *Server) runtimeFor(handler string) (string, error) {
	if handler == "" {
		return s.opts.DefaultRuntime, nil
	}
	if rt, ok := s.opts.RuntimeHandlers[handler]; ok {
		return rt, nil
	}
	return "", status.Errorf(codes.InvalidArgument, "runtime handler %q is not configured (hull serve --runtime-handler NAME=RUNTIME)", handler)
}

// RunPodSandbox starts a pod's sandbox: the sandbox (pause) image in the
// pod's network, IPC and UTS namespaces, which the pod's containers join.
// On any failure nothing is left.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	m := cfg.GetMetadata()
	if m == nil || m.Name == "" || m.Namespace == "" || m.Uid == "" {
		return nil, status.Error(codes.InvalidArgument, "pod sandbox config: metadata needs a name, namespace and uid")
	}
	rt, err := s.runtimeFor(req.RuntimeHandler)
	if err != nil {
		return nil, err
	}
	linux := cfg.GetLinux()
	nsOpts := linux.GetSecurityContext().GetNamespaceOptions()
	sl := sandboxLinux{
		CgroupParent: linux.GetCgroupParent(), Hostname: cfg.Hostname, LogDirectory: cfg.LogDirectory,
		Network: int32(nsOpts.GetNetwork()), PID: int32(nsOpts.GetPid()), IPC: int32(nsOpts.GetIpc()),
	}
	slJSON, err := json.Marshal(sl)
	if err != nil {
		return nil, err
	}
	hostNet := nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE
	labels, err := criLabels(kindSandbox, m, cfg.Labels, cfg.Annotations, map[string]string{
		labelHandler: req.RuntimeHandler, labelConfig: string(slJSON), labelHostNetwork: strconv.FormatBool(hostNet),
	})
	if err != nil {
		return nil, err
	}
	o := engine.RunOptions{
		Name: sandboxName(m), Image: s.opts.SandboxImage, Pull: "missing", Runtime: rt,
		CgroupParent: s.cgroupParent(linux.GetCgroupParent()),
		Network:      s.opts.Network, StopTimeout: 10,
	}
	if err := checkCgroupParent(o.CgroupParent); err != nil {
		return nil, err
	}
	o.Spec.Labels = labels
	o.Spec.Hostname = cfg.Hostname
	o.Spec.Sysctls = linux.GetSysctls()
	sc := linux.GetSecurityContext()
	o.Spec.Privileged = sc.GetPrivileged()
	o.Spec.ReadOnly = sc.GetReadonlyRootfs()
	o.Spec.SecurityOpt = append(o.Spec.SecurityOpt, "no-new-privileges")
	if u := sc.GetRunAsUser(); u != nil {
		o.Spec.User = strconv.FormatInt(u.Value, 10)
		if g := sc.GetRunAsGroup(); g != nil {
			o.Spec.User += ":" + strconv.FormatInt(g.Value, 10)
		}
	}
	if hostNet {
		o.Network = "host"
	} else {
		for _, pm := range cfg.PortMappings {
			if pm.HostPort <= 0 {
				continue // not published on the node
			}
			proto := strings.ToLower(pm.Protocol.String())
			if pm.Protocol == runtimeapi.Protocol_SCTP {
				return nil, status.Error(codes.InvalidArgument, "port mapping: SCTP is not supported")
			}
			p := fmt.Sprintf("%d:%d/%s", pm.HostPort, pm.ContainerPort, proto)
			if pm.HostIp != "" {
				p = pm.HostIp + ":" + p
			}
			o.Publish = append(o.Publish, p)
		}
	}
	if nsOpts.GetIpc() == runtimeapi.NamespaceMode_NODE {
		o.IPC = "host"
	}
	if nsOpts.GetPid() == runtimeapi.NamespaceMode_NODE {
		o.PID = "host"
	}
	if d := cfg.DnsConfig; d != nil && !hostNet {
		o.DNS, o.DNSSearch, o.DNSOptions = d.Servers, d.Searches, d.Options
	}
	e := s.opts.Engine
	c, err := e.Create(ctx, o)
	if err != nil {
		return nil, createError("pod sandbox "+o.Name, err)
	}
	if _, err := e.Start(ctx, c); err != nil {
		if rerr := e.Remove(context.WithoutCancel(ctx), c, true, true); rerr != nil {
			err = errors.Join(err, fmt.Errorf("removing it again: %w", rerr))
		}
		return nil, fmt.Errorf("start pod sandbox %s: %w", o.Name, err)
	}
	s.log.Info("cri: pod sandbox ready", "id", c.ID, "name", o.Name)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: c.ID}, nil
}

// createError makes a name conflict AlreadyExists, as the kubelet expects.
func createError(what string, err error) error {
	if errors.Is(err, container.ErrNameInUse) {
		return status.Errorf(codes.AlreadyExists, "%s: %v", what, err)
	}
	return fmt.Errorf("create %s: %w", what, err)
}

// cgroupParent is the pod's cgroup: the kubelet's (cgroupfs driver paths
// such as /kubepods/burstable/podUID), or hull's default.
func (s *Server) cgroupParent(p string) string {
	if p == "" {
		return s.opts.CgroupParent
	}
	return p
}

func checkCgroupParent(p string) error {
	if p != "" && !strings.HasPrefix(p, "/") {
		return status.Errorf(codes.InvalidArgument, "cgroup parent %q: hull uses the cgroupfs driver; run the kubelet with --cgroup-driver=cgroupfs", p)
	}
	return nil
}

// StopPodSandbox stops every container of the pod, then the sandbox, and
// frees the pod's network (its address and port mappings). Stopping one
// that is gone succeeds.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.lookup(req.PodSandboxId, kindSandbox)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.StopPodSandboxResponse{}, nil // idempotent, as the CRI asks
	}
	if err != nil {
		return nil, err
	}
	e := s.opts.Engine
	ctrs, err := s.podContainers(sb.ID)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, c := range ctrs {
		if err := e.Stop(ctx, c, 0); err != nil {
			errs = append(errs, fmt.Errorf("stop container %s: %w", c.Name, err))
		}
	}
	if err := e.Stop(ctx, sb, 10*time.Second); err != nil {
		errs = append(errs, fmt.Errorf("stop pod sandbox %s: %w", sb.Name, err))
	}
	if len(errs) == 0 {
		if err := e.NetworkDown(ctx, sb); err != nil {
			errs = append(errs, fmt.Errorf("pod sandbox %s: network: %w", sb.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// podContainers lists the containers of sandbox id.
func (s *Server) podContainers(id string) ([]*container.Container, error) {
	all, err := s.list(kindContainer)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, c := range all {
		if c.Labels[labelSandboxID] == id {
			out = append(out, c)
		}
	}
	return out, nil
}

// RemovePodSandbox removes the pod's containers and its sandbox, running
// or not. Removing one that is gone succeeds.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.lookup(req.PodSandboxId, kindSandbox)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	e := s.opts.Engine
	ctrs, err := s.podContainers(sb.ID)
	if err != nil {
		return nil, err
	}
	for _, c := range ctrs {
		if err := e.Remove(ctx, c, true, true); err != nil {
			return nil, fmt.Errorf("remove container %s of pod sandbox %s: %w", c.Name, sb.Name, err)
		}
	}
	if err := e.Remove(ctx, sb, true, true); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %s: %w", sb.Name, err)
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// sandboxState is READY while the sandbox's process runs.
func (s *Server) sandboxState(ctx context.Context, sb *container.Container) (runtimeapi.PodSandboxState, engine.State) {
	st := s.opts.Engine.State(ctx, sb)
	if st.Running {
		return runtimeapi.PodSandboxState_SANDBOX_READY, st
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY, st
}

// PodSandboxStatus describes one sandbox: state, address, namespaces.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.lookup(req.PodSandboxId, kindSandbox)
	if err != nil {
		return nil, err
	}
	state, st := s.sandboxState(ctx, sb)
	var meta runtimeapi.PodSandboxMetadata
	decoded(sb, labelMetadata, &meta)
	var sl sandboxLinux
	decoded(sb, labelConfig, &sl)
	ps := &runtimeapi.PodSandboxStatus{
		Id: sb.ID, Metadata: &meta, State: state, CreatedAt: sb.Created.UnixNano(),
		Labels: stringMap(sb, labelLabels), Annotations: stringMap(sb, labelAnnotations),
		RuntimeHandler: sb.Labels[labelHandler],
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network: runtimeapi.NamespaceMode(sl.Network), Pid: runtimeapi.NamespaceMode(sl.PID), Ipc: runtimeapi.NamespaceMode(sl.IPC),
		}}},
	}
	if sb.Labels[labelHostNetwork] != "true" && state == runtimeapi.PodSandboxState_SANDBOX_READY {
		if ips, err := s.opts.Engine.Addresses(sb); err == nil && len(ips) > 0 {
			ps.Network.Ip = ips[0].String()
			for _, ip := range ips[1:] {
				ps.Network.AdditionalIps = append(ps.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip.String()})
			}
		}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: ps}
	if req.Verbose {
		info, err := json.Marshal(map[string]any{"pid": st.Pid, "name": sb.Name, "image": sb.ImageRef, "runtime": sb.Runtime, "config": sl})
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	if req.Verbose || ps.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		// The kubelet reads the pod's containers' statuses with it (PLEG).
		ctrs, err := s.podContainers(sb.ID)
		if err == nil {
			for _, c := range ctrs {
				resp.ContainersStatuses = append(resp.ContainersStatuses, s.containerStatus(ctx, c))
			}
		}
	}
	resp.Timestamp = time.Now().UnixNano()
	return resp, nil
}

// ListPodSandbox lists the sandboxes a filter selects (id or unique id
// prefix, state, labels).
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	all, err := s.list(kindSandbox)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range all {
		if f.GetId() != "" && !strings.HasPrefix(sb.ID, f.GetId()) {
			continue
		}
		labels := stringMap(sb, labelLabels)
		if !matchLabels(labels, f.GetLabelSelector()) {
			continue
		}
		state, _ := s.sandboxState(ctx, sb)
		if f.GetState() != nil && f.GetState().State != state {
			continue
		}
		var meta runtimeapi.PodSandboxMetadata
		decoded(sb, labelMetadata, &meta)
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id: sb.ID, Metadata: &meta, State: state, CreatedAt: sb.Created.UnixNano(),
			Labels: labels, Annotations: stringMap(sb, labelAnnotations), RuntimeHandler: sb.Labels[labelHandler],
		})
	}
	return resp, nil
}
