package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/hull-runtime/hull/engine"
	"github.com/hull-runtime/hull/engine/monitor"
	"github.com/hull-runtime/hull/engine/network"
	"github.com/hull-runtime/hull/engine/oci"
)

// Exec, Attach and PortForward return a URL on hull's streaming server
// (Kubernetes' own, k8s.io/cri-streaming, as containerd and CRI-O use):
// the kubelet, or crictl, connects there and the server calls back into
// streamRuntime with the connection's streams.

// Exec returns the URL for an interactive exec.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if _, err := s.runningContainer(ctx, req.ContainerId); err != nil {
		return nil, err
	}
	return s.stream.GetExec(req)
}

// Attach returns the URL for attaching to a container's stdio.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if _, err := s.runningContainer(ctx, req.ContainerId); err != nil {
		return nil, err
	}
	return s.stream.GetAttach(req)
}

// PortForward returns the URL for forwarding ports into a pod.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := s.lookup(req.PodSandboxId, kindSandbox)
	if err != nil {
		return nil, err
	}
	if state, _ := s.sandboxState(ctx, sb); state != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", sb.ID)
	}
	return s.stream.GetPortForward(req)
}

func (s *Server) runningContainer(ctx context.Context, id string) (*engine.State, error) {
	c, err := s.lookup(id, kindContainer)
	if err != nil {
		return nil, err
	}
	st := s.opts.Engine.State(ctx, c)
	if !st.Running {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", c.ID)
	}
	return &st, nil
}

// streamRuntime serves the streaming server's calls.
type streamRuntime struct{ s *Server }

var _ streaming.Runtime = streamRuntime{}

// Exec runs cmd in the container with the client's streams; a non-zero
// exit is reported as the exit code, not as a failure of the stream.
func (r streamRuntime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	c, err := r.s.lookup(containerID, kindContainer)
	if err != nil {
		return err
	}
	p, rt, err := r.s.opts.Engine.ExecBase(c)
	if err != nil {
		return err
	}
	p.Args, p.Terminal = cmd, tty
	var code int
	if tty {
		sizes := make(chan engine.TerminalSize, 1)
		go func() {
			defer close(sizes)
			for sz := range resize {
				sizes <- engine.TerminalSize{Rows: sz.Height, Cols: sz.Width}
			}
		}()
		code, err = engine.ExecTTY(ctx, rt, c.ID, p, in, out, sizes)
	} else {
		code, err = execPipes(ctx, rt, c.ID, p, in, out, errw)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", cmd, code), Code: code}
	}
	return nil
}

// execPipes runs the process with its stdio on the streams.
func execPipes(ctx context.Context, rt *oci.CLI, id string, p *specs.Process, in io.Reader, out, errw io.Writer) (int, error) {
	x, cleanup, err := rt.ExecCommand(context.WithoutCancel(ctx), id, p, oci.ExecOptions{})
	if err != nil {
		return -1, err
	}
	defer cleanup()
	if in != nil {
		x.Stdin = in
	}
	if out != nil {
		x.Stdout = out
	}
	if errw != nil {
		x.Stderr = errw
	}
	err = x.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	return 0, nil
}

// Attach connects the client to the container's stdio through its monitor.
func (r streamRuntime) Attach(ctx context.Context, containerID string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	c, err := r.s.lookup(containerID, kindContainer)
	if err != nil {
		return err
	}
	client, err := monitor.DialAttach(ctx, r.s.opts.Engine.AttachSocket(c), tty)
	if err != nil {
		return err
	}
	defer client.Close()
	go func() {
		for sz := range resize {
			_ = client.Resize(sz.Height, sz.Width)
		}
	}()
	var stdout, stderr io.Writer = io.Discard, io.Discard
	if out != nil {
		stdout = out
	}
	if errw != nil {
		stderr = errw
	}
	return client.Stream(ctx, in, stdout, stderr)
}

// PortForward connects stream to port on the pod's loopback, from inside
// the pod's network namespace.
func (r streamRuntime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sb, err := r.s.lookup(podSandboxID, kindSandbox)
	if err != nil {
		return err
	}
	nsPath, err := r.s.opts.Engine.NetnsPath(sb)
	if err != nil {
		return err
	}
	conn, err := network.DialInNetns(ctx, nsPath, "tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		return fmt.Errorf("port forward to %d in pod %s: %w", port, sb.Name, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, stream); closeWrite(conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

func closeWrite(c any) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
