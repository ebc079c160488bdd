package cri

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hull-runtime/hull/engine"
	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/monitor"
	"github.com/hull-runtime/hull/engine/oci"
	"github.com/hull-runtime/hull/engine/specgen"
)

// labelMounts records the CRI mounts, for ContainerStatus.
const labelMounts = labelPrefix + "mounts"

// CreateContainer creates a container in a pod: it joins the sandbox's
// network, IPC and UTS namespaces (and its PID namespace when the pod
// shares one), goes in the pod's cgroup and logs in the CRI format where
// the kubelet reads. The image must be present (the kubelet pulls first).
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	sb, err := s.lookup(req.PodSandboxId, kindSandbox)
	if err != nil {
		return nil, err
	}
	cfg := req.GetConfig()
	m := cfg.GetMetadata()
	if m == nil || m.Name == "" {
		return nil, status.Error(codes.InvalidArgument, "container config: metadata needs a name")
	}
	if cfg.GetImage().GetImage() == "" {
		return nil, status.Error(codes.InvalidArgument, "container config: no image")
	}
	var pod runtimeapi.PodSandboxMetadata
	decoded(sb, labelMetadata, &pod)
	var sl sandboxLinux
	decoded(sb, labelConfig, &sl)
	rt, err := s.runtimeFor(sb.Labels[labelHandler])
	if err != nil {
		return nil, err
	}

	logPath := ""
	if cfg.LogPath != "" && sl.LogDirectory != "" {
		logPath = filepath.Join(sl.LogDirectory, cfg.LogPath)
	}
	mountsJSON, err := json.Marshal(cfg.Mounts)
	if err != nil {
		return nil, err
	}
	labels, err := criLabels(kindContainer, m, cfg.Labels, cfg.Annotations, map[string]string{
		labelSandboxID: sb.ID, labelImage: cfg.Image.Image, labelLogPath: logPath, labelMounts: string(mountsJSON),
	})
	if err != nil {
		return nil, err
	}
	o := engine.RunOptions{
		Name: containerName(m, &pod), Image: cfg.Image.Image, Pull: "never", Runtime: rt,
		CgroupParent: s.cgroupParent(sl.CgroupParent),
		Network:      "container:" + sb.ID, UTS: "container:" + sb.ID, IPC: "container:" + sb.ID,
		LogPath: logPath, LogFormat: monitor.LogFormatCRI, StopTimeout: 10, NoHealthcheck: true,
	}
	if logPath == "" {
		o.LogFormat = ""
	}
	if sb.Labels[labelHostNetwork] == "true" {
		o.UTS = "host"
	}
	o.Spec.Labels = labels
	o.Spec.Annotations = cfg.Annotations
	if len(cfg.Command) > 0 {
		// Kubernetes' command replaces the image's entrypoint and, with it,
		// its cmd; args alone replace only the cmd.
		o.Spec.Entrypoint, o.Spec.EntrypointSet = cfg.Command, true
	}
	o.Spec.Cmd = cfg.Args
	for _, kv := range cfg.Envs {
		o.Spec.Env = append(o.Spec.Env, kv.Key+"="+string(kv.Value))
	}
	o.Spec.Workdir = cfg.WorkingDir
	o.Spec.TTY, o.Spec.Interactive = cfg.Tty, cfg.Stdin
	for _, d := range cfg.Devices {
		perm := d.Permissions
		if perm == "" {
			perm = "rwm"
		}
		o.Spec.Devices = append(o.Spec.Devices, d.HostPath+":"+d.ContainerPath+":"+perm)
	}
	for _, mnt := range cfg.Mounts {
		sm, err := bindMount(mnt)
		if err != nil {
			return nil, err
		}
		o.Spec.Mounts = append(o.Spec.Mounts, sm)
	}
	if err := s.applyLinux(&o, cfg.GetLinux(), sb.ID); err != nil {
		return nil, err
	}
	c, err := s.opts.Engine.Create(ctx, o)
	if err != nil {
		return nil, createError("container "+o.Name, err)
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: c.ID}, nil
}

// bindMount turns a CRI mount into the engine's bind mount. A host path
// that does not exist is made a directory, as containerd and CRI-O do.
func bindMount(m *runtimeapi.Mount) (specgen.Mount, error) {
	if m.Image != nil && m.Image.Image != "" {
		return specgen.Mount{}, status.Errorf(codes.Unimplemented, "mount at %s: image volumes are not supported", m.ContainerPath)
	}
	if m.ContainerPath == "" || m.HostPath == "" {
		return specgen.Mount{}, status.Errorf(codes.InvalidArgument, "mount %q -> %q: both paths are needed", m.HostPath, m.ContainerPath)
	}
	if _, err := os.Stat(m.HostPath); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(m.HostPath, 0o755); err != nil {
			return specgen.Mount{}, fmt.Errorf("mount host path %s: %w", m.HostPath, err)
		}
	}
	sm := specgen.Mount{Source: m.HostPath, Destination: m.ContainerPath, ReadOnly: m.Readonly, Type: "bind"}
	if m.RecursiveReadOnly {
		// Read-only all the way down (mount_setattr), which only makes
		// sense for a read-only mount that receives no new mounts.
		if !m.Readonly {
			return specgen.Mount{}, status.Errorf(codes.InvalidArgument, "mount at %s: recursive read-only needs readonly", m.ContainerPath)
		}
		if m.Propagation != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return specgen.Mount{}, status.Errorf(codes.InvalidArgument, "mount at %s: recursive read-only needs private propagation, not %s", m.ContainerPath, m.Propagation)
		}
		sm.Options = append(sm.Options, "rro")
	}
	switch m.Propagation {
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		sm.Options = append(sm.Options, "rslave")
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		sm.Options = append(sm.Options, "rshared")
	default:
		sm.Options = append(sm.Options, "rprivate")
	}
	return sm, nil
}

// applyLinux maps the container's Linux config: resources, user, security.
func (s *Server) applyLinux(o *engine.RunOptions, l *runtimeapi.LinuxContainerConfig, sandboxID string) error {
	if r := l.GetResources(); r != nil {
		o.Spec.Memory = r.MemoryLimitInBytes
		if r.MemorySwapLimitInBytes > 0 {
			o.Spec.MemorySwap = r.MemorySwapLimitInBytes
		}
		o.Spec.CPUShares = r.CpuShares
		if r.CpuQuota > 0 && r.CpuPeriod > 0 {
			o.Spec.CPUs = float64(r.CpuQuota) / float64(r.CpuPeriod)
		}
		o.Spec.CPUSetCPUs = r.CpusetCpus
		if r.OomScoreAdj != 0 {
			adj := int(r.OomScoreAdj)
			o.Spec.OOMScoreAdj = &adj
		}
	}
	sc := l.GetSecurityContext()
	if sc == nil {
		return nil
	}
	o.Spec.Privileged = sc.Privileged
	o.Spec.ReadOnly = sc.ReadonlyRootfs
	if sc.MaskedPaths != nil || sc.ReadonlyPaths != nil {
		// The kubelet sends the defaults, or none for an unmasked procMount.
		o.Spec.SystemPaths = &specgen.SystemPaths{Masked: sc.MaskedPaths, ReadOnly: sc.ReadonlyPaths}
	}
	if caps := sc.Capabilities; caps != nil {
		o.Spec.CapAdd, o.Spec.CapDrop = caps.AddCapabilities, caps.DropCapabilities
	}
	if sc.NoNewPrivs {
		o.Spec.SecurityOpt = append(o.Spec.SecurityOpt, "no-new-privileges")
	}
	switch sp := sc.Seccomp; {
	case sp == nil || sp.ProfileType == runtimeapi.SecurityProfile_Unconfined:
		// The kubelet's default is unconfined (its SeccompDefault gate
		// asks for RuntimeDefault explicitly).
		if !sc.Privileged {
			o.Spec.SecurityOpt = append(o.Spec.SecurityOpt, "seccomp=unconfined")
		}
	case sp.ProfileType == runtimeapi.SecurityProfile_Localhost:
		if !filepath.IsAbs(sp.LocalhostRef) {
			return status.Errorf(codes.InvalidArgument, "seccomp localhost profile %q: not an absolute path", sp.LocalhostRef)
		}
		o.Spec.SecurityOpt = append(o.Spec.SecurityOpt, "seccomp="+sp.LocalhostRef)
	}
	user := ""
	switch {
	case sc.RunAsUser != nil:
		user = strconv.FormatInt(sc.RunAsUser.Value, 10)
	case sc.RunAsUsername != "":
		user = sc.RunAsUsername
	}
	if sc.RunAsGroup != nil {
		// The CRI refuses a group without a user (critest pins it).
		if user == "" {
			return status.Error(codes.InvalidArgument, "security context: runAsGroup needs runAsUser or runAsUsername")
		}
		user += ":" + strconv.FormatInt(sc.RunAsGroup.Value, 10)
	}
	o.Spec.User = user
	for _, g := range sc.SupplementalGroups {
		o.Spec.GroupAdd = append(o.Spec.GroupAdd, strconv.FormatInt(g, 10))
	}
	ns := sc.GetNamespaceOptions()
	switch ns.GetPid() {
	case runtimeapi.NamespaceMode_POD:
		o.PID = "container:" + sandboxID
	case runtimeapi.NamespaceMode_NODE:
		o.PID = "host"
	case runtimeapi.NamespaceMode_TARGET:
		o.PID = "container:" + ns.TargetId
	}
	if ns.GetIpc() == runtimeapi.NamespaceMode_NODE {
		o.IPC = "host"
	}
	return nil
}

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.lookup(req.ContainerId, kindContainer)
	if err != nil {
		return nil, err
	}
	if st := s.opts.Engine.State(ctx, c); st.Status != engine.StatusCreated {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is %s, not created: a container starts once", c.ID, st.Status)
	}
	if _, err := s.opts.Engine.Start(ctx, c); err != nil {
		return nil, fmt.Errorf("start container %s: %w", c.Name, err)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer stops a running container: its stop signal, SIGKILL after
// the timeout. A stopped one is left as it is; a missing one is no error.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.lookup(req.ContainerId, kindContainer)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.StopContainerResponse{}, nil // idempotent, as the CRI asks
	}
	if err != nil {
		return nil, err
	}
	if err := s.opts.Engine.Stop(ctx, c, time.Duration(req.Timeout)*time.Second); err != nil {
		return nil, fmt.Errorf("stop container %s: %w", c.Name, err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container, running or not. Removing one that is
// gone succeeds.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.lookup(req.ContainerId, kindContainer)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.opts.Engine.Remove(ctx, c, true, true); err != nil {
		return nil, fmt.Errorf("remove container %s: %w", c.Name, err)
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// containerState maps the engine's status.
func containerState(st engine.State) runtimeapi.ContainerState {
	switch st.Status {
	case engine.StatusCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case engine.StatusRunning, engine.StatusPaused:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case engine.StatusExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// containerStatus describes c for ContainerStatus and PodSandboxStatus.
func (s *Server) containerStatus(ctx context.Context, c *container.Container) *runtimeapi.ContainerStatus {
	st := s.opts.Engine.State(ctx, c)
	var meta runtimeapi.ContainerMetadata
	decoded(c, labelMetadata, &meta)
	cs := &runtimeapi.ContainerStatus{
		Id: c.ID, Metadata: &meta, State: containerState(st), CreatedAt: c.Created.UnixNano(),
		Image: &runtimeapi.ImageSpec{Image: c.Labels[labelImage]}, ImageRef: c.ImageID, ImageId: c.ImageID,
		Labels: stringMap(c, labelLabels), Annotations: stringMap(c, labelAnnotations), LogPath: c.Labels[labelLogPath],
	}
	decoded(c, labelMounts, &cs.Mounts)
	if !st.StartedAt.IsZero() {
		cs.StartedAt = st.StartedAt.UnixNano()
	}
	if ex := st.Exit; ex != nil && cs.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		if !ex.StartedAt.IsZero() {
			cs.StartedAt = ex.StartedAt.UnixNano()
		}
		cs.FinishedAt = ex.FinishedAt.UnixNano()
		cs.ExitCode = int32(ex.ExitCode)
		switch {
		case ex.OOMKilled:
			cs.Reason = "OOMKilled"
		case ex.ExitCode == 0:
			cs.Reason = "Completed"
		default:
			cs.Reason = "Error"
		}
		cs.Message = ex.Error
	}
	return cs
}

// ContainerStatus describes one container.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.lookup(req.ContainerId, kindContainer)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: s.containerStatus(ctx, c)}
	if req.Verbose {
		st := s.opts.Engine.State(ctx, c)
		info, err := json.Marshal(map[string]any{"pid": st.Pid, "name": c.Name, "sandboxID": c.Labels[labelSandboxID], "runtime": c.Runtime})
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// ListContainers lists the containers a filter selects.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	all, err := s.list(kindContainer)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range all {
		if f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(c.Labels[labelSandboxID], f.GetPodSandboxId()) {
			continue
		}
		labels := stringMap(c, labelLabels)
		if !matchLabels(labels, f.GetLabelSelector()) {
			continue
		}
		state := containerState(s.opts.Engine.State(ctx, c))
		if f.GetState() != nil && f.GetState().State != state {
			continue
		}
		var meta runtimeapi.ContainerMetadata
		decoded(c, labelMetadata, &meta)
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id: c.ID, PodSandboxId: c.Labels[labelSandboxID], Metadata: &meta, State: state, CreatedAt: c.Created.UnixNano(),
			Image: &runtimeapi.ImageSpec{Image: c.Labels[labelImage]}, ImageRef: c.ImageID, ImageId: c.ImageID,
			Labels: labels, Annotations: stringMap(c, labelAnnotations),
		})
	}
	return resp, nil
}

// maxExecOutput bounds what ExecSync keeps of each stream, as containerd
// does: a probe that prints without end must not exhaust the server.
const maxExecOutput = 16 << 20

// cappedBuffer keeps the first max bytes written to it and drops the rest.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// ExecSync runs a command in a running container and returns its output
// and exit code; past the timeout the command is killed and the call fails
// with DeadlineExceeded.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, err := s.lookup(req.ContainerId, kindContainer)
	if err != nil {
		return nil, err
	}
	if len(req.Cmd) == 0 {
		return nil, status.Error(codes.InvalidArgument, "exec: no command")
	}
	if st := s.opts.Engine.State(ctx, c); !st.Running {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", c.ID)
	}
	p, rt, err := s.opts.Engine.ExecBase(c)
	if err != nil {
		return nil, err
	}
	p.Args = req.Cmd
	pidDir, err := os.MkdirTemp("", "hull-exec-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(pidDir)
	pidFile := filepath.Join(pidDir, "pid")
	x, cleanup, err := rt.ExecCommand(context.WithoutCancel(ctx), c.ID, p, oci.ExecOptions{PidFile: pidFile})
	if err != nil {
		return nil, err
	}
	defer cleanup()
	stdout, stderr := &cappedBuffer{max: maxExecOutput}, &cappedBuffer{max: maxExecOutput}
	x.Stdout, x.Stderr = stdout, stderr
	if err := x.Start(); err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- x.Wait() }()
	var timeout <-chan time.Time
	if req.Timeout > 0 {
		t := time.NewTimer(time.Duration(req.Timeout) * time.Second)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case err = <-done:
	case <-timeout:
		killExec(pidFile, x, done)
		return nil, status.Errorf(codes.DeadlineExceeded, "exec in %s: command %q timed out after %ds", c.Name, req.Cmd, req.Timeout)
	case <-ctx.Done():
		killExec(pidFile, x, done)
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, fmt.Errorf("exec in %s: %w", c.Name, err)
		}
		code = ee.ExitCode()
		if code < 0 {
			code = 128 + int(ee.Sys().(syscall.WaitStatus).Signal())
		}
		if code == 255 && strings.Contains(stderr.String(), "exec") && stdout.Len() == 0 {
			// The runtime could not start the command at all.
			return nil, fmt.Errorf("exec in %s: %s", c.Name, strings.TrimSpace(stderr.String()))
		}
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// killExec kills the exec'd process in the container and waits for the
// runtime's exec, its parent, to reap it and exit. Killing the runtime
// first would leave the process to the container's init, which may never
// reap it: a zombie that still shows in ps. The runtime is killed only if
// it does not exit by itself.
func killExec(pidFile string, x *exec.Cmd, done <-chan error) {
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = x.Process.Kill()
		<-done
	}
}

// ReopenContainerLog makes the container's monitor open its log file anew,
// after the kubelet renamed it to rotate it.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.lookup(req.ContainerId, kindContainer)
	if err != nil {
		return nil, err
	}
	st := s.opts.Engine.State(ctx, c)
	path := c.Labels[labelLogPath]
	if !st.Running || st.Monitor == 0 || path == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running with a log file", c.ID)
	}
	if err := syscall.Kill(st.Monitor, syscall.SIGHUP); err != nil {
		return nil, fmt.Errorf("reopen log of %s: signal its monitor: %w", c.Name, err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; {
		if _, err := os.Stat(path); err == nil {
			return &runtimeapi.ReopenContainerLogResponse{}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("reopen log of %s: %s did not appear", c.Name, path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// UpdateContainerResources changes a running container's cgroup limits
// through its runtime's update.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.lookup(req.ContainerId, kindContainer)
	if err != nil {
		return nil, err
	}
	r := req.GetLinux()
	if r == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	if st := s.opts.Engine.State(ctx, c); !st.Running {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", c.ID)
	}
	lr := &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}, Unified: r.Unified}
	if r.CpuShares > 0 {
		shares := uint64(r.CpuShares)
		lr.CPU.Shares = &shares
	}
	if r.CpuQuota != 0 {
		lr.CPU.Quota = &r.CpuQuota
	}
	if r.CpuPeriod > 0 {
		period := uint64(r.CpuPeriod)
		lr.CPU.Period = &period
	}
	if r.MemoryLimitInBytes > 0 {
		lr.Memory = &specs.LinuxMemory{Limit: &r.MemoryLimitInBytes}
		if r.MemorySwapLimitInBytes > 0 {
			lr.Memory.Swap = &r.MemorySwapLimitInBytes
		}
	}
	rt, err := s.opts.Engine.Runtime(c)
	if err != nil {
		return nil, err
	}
	if err := rt.Update(ctx, c.ID, lr); err != nil {
		return nil, fmt.Errorf("update resources of %s: %w", c.Name, err)
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}
