package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/oci"
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
