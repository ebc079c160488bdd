// Package oci drives an OCI runtime through the command line that runc
// defined and hull-runtime and crun share: create, start, state, kill,
// delete, pause, resume, exec, ps, update. hull uses hull-runtime by default
// and runc, crun or any binary with that CLI by --runtime.
package oci

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

	"github.com/hull-runtime/hull/engine/oci/hybrid"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Runtime is an OCI runtime an engine can drive. The CLI type is the one
// implementation; the interface lets tests and the monitor stand in.
type Runtime interface {
	// Name is the runtime as the user chose it ("hull-runtime", "runc", a path).
	Name() string
	// Path is the runtime's binary.
	Path() string
	// Root is the runtime's state directory (its --root).
	Root() string
	State(ctx context.Context, id string) (*State, error)
	Kill(ctx context.Context, id string, sig unix.Signal, all bool) error
	Delete(ctx context.Context, id string, force bool) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Ps(ctx context.Context, id string) ([]int, error)
	Update(ctx context.Context, id string, r *specs.LinuxResources) error
	// ExecCommand returns the command that runs process p in container id
	// (the caller wires its stdio and runs it).
	ExecCommand(ctx context.Context, id string, p *specs.Process, o ExecOptions) (*exec.Cmd, func(), error)
}

// State is `runtime state`'s output.
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"` // creating, created, running, paused, stopped
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ExecOptions are the flags of `runtime exec` besides the process.
type ExecOptions struct {
	Detach        bool
	ConsoleSocket string
	PidFile       string
	PreserveFds   int
}

// ErrNotExist is returned (wrapped) when the runtime does not know the container.
var ErrNotExist = errors.New("container does not exist in the runtime")

// ErrNotRunning is returned (wrapped) when the runtime refuses a signal
// because the container has stopped: it exited between a caller's look at
// it and the kill.
var ErrNotRunning = errors.New("container is not running")

// CLI is a runtime binary with runc's command line.
type CLI struct {
	name, path, root string
	systemdCgroup    bool
}

// KnownRuntimes are the names --runtime takes without a path.
var knownRuntimes = []string{"hull-runtime", "runc", "crun"}

// New finds the runtime called name ("hull-runtime", "runc", "crun") in
// PATH (and, for hull-runtime, beside the running binary), or takes name as
// a path, and checks it is an executable. root is its --root.
func New(name, root string, systemdCgroup bool) (*CLI, error) {
	if name == "" {
		name = "hull-runtime"
	}
	path := name
	if !strings.Contains(name, "/") {
		var err error
		path, err = exec.LookPath(name)
		if err != nil && name == "hull-runtime" {
			// The engine is usually installed beside its runtime.
			if self, serr := os.Executable(); serr == nil {
				cand := filepath.Join(filepath.Dir(self), name)
				if _, serr := os.Stat(cand); serr == nil {
					path, err = cand, nil
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("--runtime %s: not found in PATH (use one of %s, or a path): %w", name, strings.Join(knownRuntimes, ", "), err)
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("--runtime %s: %w", name, err)
	}
	if err := unix.Access(abs, unix.X_OK); err != nil {
		return nil, fmt.Errorf("--runtime %s: %s is not executable: %w", name, abs, err)
	}
	return &CLI{name: name, path: abs, root: root, systemdCgroup: systemdCgroup}, nil
}

// Name implements Runtime.
func (c *CLI) Name() string { return c.name }

// Path implements Runtime.
func (c *CLI) Path() string { return c.path }

// Root implements Runtime.
func (c *CLI) Root() string { return c.root }

// GlobalArgs are the flags that go before every verb.
func (c *CLI) GlobalArgs() []string {
	args := []string{"--root", c.root}
	if c.systemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	return args
}

func (c *CLI) command(ctx context.Context, args ...string) *exec.Cmd {
	argv := hybrid.Argv(c.path, append(c.GlobalArgs(), args...)...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// run runs a verb and turns a failure into an error carrying the runtime's
// own message.
func (c *CLI) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := c.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := runtimeMessage(stderr.Bytes())
		if msg == "" {
			msg = err.Error()
		}
		e := fmt.Errorf("%s %s: %s", c.name, args[0], msg)
		switch {
		case isNotExist(msg):
			return nil, fmt.Errorf("%w: %w", e, ErrNotExist)
		case isNotRunning(msg):
			return nil, fmt.Errorf("%w: %w", e, ErrNotRunning)
		}
		return nil, e
	}
	return stdout.Bytes(), nil
}

// runtimeMessage extracts the error from a runtime's stderr: runc and
// hull-runtime print "msg" fields with --log-format json, plain lines
// otherwise; the last non-empty line is the error.
func runtimeMessage(stderr []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		var j struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(l), &j) == nil && j.Msg != "" {
			return j.Msg
		}
		return l
	}
	return ""
}

func isNotExist(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "does not exist") || strings.Contains(m, "not found") || strings.Contains(m, "no such container")
}

// isNotRunning matches runc's, crun's and hull-runtime's refusals to signal
// a stopped container.
func isNotRunning(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "not running") || strings.Contains(m, "container is stopped")
}

// State implements Runtime.
func (c *CLI) State(ctx context.Context, id string) (*State, error) {
	out, err := c.run(ctx, "state", id)
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("%s state %s: %w", c.name, id, err)
	}
	return &s, nil
}

// Kill implements Runtime.
func (c *CLI) Kill(ctx context.Context, id string, sig unix.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := c.run(ctx, append(args, id, strconv.Itoa(int(sig)))...)
	return err
}

// Delete implements Runtime.
func (c *CLI) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := c.run(ctx, append(args, id)...)
	return err
}

// Pause implements Runtime.
func (c *CLI) Pause(ctx context.Context, id string) error {
	_, err := c.run(ctx, "pause", id)
	return err
}

// Resume implements Runtime.
func (c *CLI) Resume(ctx context.Context, id string) error {
	_, err := c.run(ctx, "resume", id)
	return err
}

// Ps implements Runtime.
func (c *CLI) Ps(ctx context.Context, id string) ([]int, error) {
	out, err := c.run(ctx, "ps", "--format", "json", id)
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("%s ps %s: %w", c.name, id, err)
	}
	return pids, nil
}

// Update implements Runtime.
func (c *CLI) Update(ctx context.Context, id string, r *specs.LinuxResources) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	cmd := c.command(ctx, "update", "--resources", "-", id)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s update %s: %s", c.name, id, orErr(runtimeMessage(stderr.Bytes()), err))
	}
	return nil
}

func orErr(msg string, err error) string {
	if msg != "" {
		return msg
	}
	return err.Error()
}

// ExecCommand implements Runtime: the process goes to the runtime as a
// --process file (removed by the returned cleanup).
func (c *CLI) ExecCommand(ctx context.Context, id string, p *specs.Process, o ExecOptions) (*exec.Cmd, func(), error) {
	f, err := os.CreateTemp("", "hull-exec-*.json")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.Remove(f.Name()) }
	if err := json.NewEncoder(f).Encode(p); err != nil {
		f.Close()
		cleanup()
		return nil, nil, err
	}
	if err := f.Close(); err != nil {
		cleanup()
		return nil, nil, err
	}
	args := []string{"exec", "--process", f.Name()}
	if o.Detach {
		args = append(args, "--detach")
	}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	if o.PidFile != "" {
		args = append(args, "--pid-file", o.PidFile)
	}
	if o.PreserveFds > 0 {
		args = append(args, "--preserve-fds", strconv.Itoa(o.PreserveFds))
	}
	return c.command(ctx, append(args, id)...), cleanup, nil
}
