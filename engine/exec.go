package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/oci"
	"github.com/hull-runtime/hull/internal/pty"
)

// ExecBase returns what an exec into c starts from: the container's own
// process (environment, working directory, user, capabilities, rlimits,
// no_new_privileges, AppArmor/SELinux labels) from its bundle, without a
// terminal, and the runtime that runs c.
func (e *Engine) ExecBase(c *container.Container) (*specs.Process, *oci.CLI, error) {
	data, err := os.ReadFile(filepath.Join(e.Containers.Dir(c.ID), "bundle", "config.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("container %s: bundle: %w", c.Name, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, nil, fmt.Errorf("container %s: bundle config.json: %w", c.Name, err)
	}
	if spec.Process == nil {
		return nil, nil, fmt.Errorf("container %s: bundle has no process", c.Name)
	}
	p := *spec.Process
	p.Terminal, p.ConsoleSize = false, nil
	p.Env = append([]string(nil), p.Env...)
	rt, err := e.Runtime(c)
	if err != nil {
		return nil, nil, err
	}
	return &p, rt, nil
}

// Runtime returns the OCI runtime that runs c, with the engine's state root.
func (e *Engine) Runtime(c *container.Container) (*oci.CLI, error) {
	return oci.New(c.Runtime, e.runtimeRoot(), false)
}

// NetworkDown tears down the network of a container that is not running:
// its CNI attachments (so their addresses are free again), port mappings
// and namespace. The CRI's StopPodSandbox needs this at stop, where `hull
// stop` leaves the network for `rm` or the next start. Doing it twice is
// harmless.
func (e *Engine) NetworkDown(ctx context.Context, c *container.Container) error {
	unlock, err := e.Containers.Lock(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if st := e.State(ctx, c); st.Running {
		return fmt.Errorf("container %s is running: stop it before its network", c.Name)
	}
	o, err := options(c)
	if err != nil {
		return err
	}
	return e.teardownNetwork(ctx, c, o)
}

// Addresses returns c's addresses on its networks, in attachment order:
// there while its network is set up.
func (e *Engine) Addresses(c *container.Container) ([]net.IP, error) {
	o, err := options(c)
	if err != nil {
		return nil, err
	}
	var out []net.IP
	for _, a := range o.Attachments {
		entries, err := e.Network.HostsEntries(a.Network)
		if err != nil {
			continue // the network was removed: no address on it
		}
		for _, he := range entries {
			if he.ContainerID == c.ID {
				out = append(out, he.IP)
			}
		}
	}
	return out, nil
}

// NetnsPath returns the network namespace c's processes run in: a path, or
// "host" for the host's.
func (e *Engine) NetnsPath(c *container.Container) (string, error) {
	o, err := options(c)
	if err != nil {
		return "", err
	}
	return o.Spec.NetNSPath, nil
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct{ Rows, Cols uint16 }

// ExecTTY runs p in container id with a terminal, in the foreground, and
// returns its exit code. The runtime's stdio is the slave of a pty held
// here: the runtime allocates the container's terminal itself and relays it
// to its stdio, as every runtime does in the foreground (runc refuses a
// console socket without --detach). in goes to the pty, the output comes
// out of it into out (TERM is xterm unless p sets it); each size from sizes is set on the pty and the
// runtime gets SIGWINCH to pass it on. What the runtime says on failure
// comes back in the error.
func ExecTTY(ctx context.Context, rt *oci.CLI, id string, p *specs.Process, in io.Reader, out io.Writer, sizes <-chan TerminalSize) (int, error) {
	p.Terminal = true
	if !slices.ContainsFunc(p.Env, func(kv string) bool { return strings.HasPrefix(kv, "TERM=") }) {
		p.Env = append(p.Env, "TERM=xterm")
	}
	master, slave, err := pty.Open()
	if err != nil {
		return -1, err
	}
	defer master.Close()
	setSize := func(sz TerminalSize) {
		_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Rows, Col: sz.Cols})
	}
	// A size known before the start is the runtime's first.
	select {
	case sz, ok := <-sizes:
		if ok {
			setSize(sz)
		}
	default:
	}
	x, cleanup, err := rt.ExecCommand(context.WithoutCancel(ctx), id, p, oci.ExecOptions{})
	if err != nil {
		slave.Close()
		return -1, err
	}
	defer cleanup()
	var stderr bytes.Buffer
	x.Stdin, x.Stdout, x.Stderr = slave, slave, &stderr
	err = x.Start()
	slave.Close() // the runtime holds it now: EIO on the master once it is gone
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- x.Wait() }()
	go func() {
		for sz := range sizes {
			setSize(sz)
			_ = x.Process.Signal(unix.SIGWINCH)
		}
	}()
	if in != nil {
		go func() { _, _ = io.Copy(master, in) }()
	}
	outDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(out, master)
		close(outDone)
	}()
	select {
	case err = <-exited:
	case <-ctx.Done():
		_ = x.Process.Signal(unix.SIGTERM)
		err = <-exited
	}
	// Output still in the pty comes next; a process in the container that
	// kept the terminal open must not hold us.
	select {
	case <-outDone:
	case <-time.After(time.Second):
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// With a terminal the process's own output goes to the pty: an
		// error on the runtime's stderr is the runtime's (it could not
		// start the process).
		if msg := strings.TrimSpace(stderr.String()); strings.Contains(strings.ToLower(msg), "error") {
			return -1, fmt.Errorf("exec in %s: %s", id, msg)
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	return 0, nil
}
