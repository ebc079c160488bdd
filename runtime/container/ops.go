package container

import (
	"errors"
	"fmt"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/cgroups"
	"github.com/hull-runtime/hull/runtime/hooks"
	"github.com/hull-runtime/hull/runtime/initproc"
	"github.com/hull-runtime/hull/runtime/state"
)

// Status computes the live status of a loaded container.
func (rt *Runtime) Status(c *state.Container) string {
	if c.Creating && !c.LockHeld && rt.Store.Locked(c.ID) {
		return state.Creating
	}
	if c.Creating || !c.Alive() {
		return state.Stopped
	}
	if _, err := os.Lstat(rt.Store.FifoPath(c.ID)); err == nil {
		return state.Created
	}
	if cg, err := rt.cgroup(c); err == nil {
		if s, err := cg.FreezerState(); err == nil && s == state.Paused {
			return state.Paused
		}
	}
	return state.Running
}

// cgroup rebuilds a container's cgroup manager for everything but changing
// limits: without its resources, so the config need not be decoded.
func (rt *Runtime) cgroup(c *state.Container) (*cgroups.Manager, error) {
	return cgroups.Load(cgroups.Config{ID: c.ID, Path: c.Cgroup.Path, Systemd: c.Cgroup.Systemd, Rootless: c.Cgroup.Rootless}, c.Cgroup.Paths)
}

// load locks and loads a container; the caller must call the returned unlock.
func (rt *Runtime) load(id string) (*state.Container, func(), error) {
	if err := state.ValidateID(id); err != nil {
		return nil, nil, err
	}
	unlock, err := rt.Store.Lock(id)
	if err != nil {
		return nil, nil, err
	}
	c, err := rt.Store.Load(id)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	c.LockHeld = true
	return c, unlock, nil
}

// Start releases a created container's init to exec the user process, then runs
// the poststart hooks.
func (rt *Runtime) Start(id string) error {
	c, unlock, err := rt.load(id)
	if err != nil {
		return err
	}
	defer unlock()
	switch st := rt.Status(c); st {
	case state.Created:
	case state.Stopped:
		return fmt.Errorf("cannot start container %s: its init has exited (status stopped)", id)
	default:
		return fmt.Errorf("cannot start container %s: it is %s, not created", id, st)
	}
	if err := rt.releaseFifo(c); err != nil {
		return err
	}
	if !c.HasProcess {
		// The init exits once released: the container is stopped.
		return fmt.Errorf("cannot start container %s: config.json has no process to run", id)
	}
	rt.runPoststart(c)
	return nil
}

// runPoststart runs the poststart hooks of a container just started.
func (rt *Runtime) runPoststart(c *state.Container) {
	if h := c.Hooks; h != nil && len(h.Poststart) > 0 {
		// runtime-spec: a failing poststart hook is logged; the lifecycle goes on.
		if err := hooks.RunAll("poststart", h.Poststart, c.OCIState(state.Running)); err != nil {
			rt.Log.Warn("poststart hook failed", "id", c.ID, "err", err)
		}
	}
}

// releaseFifo reads the byte the init writes into the exec fifo, which lets it go
// on to exec, then waits for EOF: the init holds the fifo open until its execve
// closes it. It never blocks on an init that has died.
func (rt *Runtime) releaseFifo(c *state.Container) error {
	path := rt.Store.FifoPath(c.ID)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo of %s: %w", c.ID, err)
	}
	defer unix.Close(fd)
	got := false
	var extra []byte // after the release byte: an error from the init, if any
	buf := make([]byte, 4096)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait on exec fifo of %s: %w", c.ID, err)
		}
		if n > 0 {
			r, err := unix.Read(fd, buf)
			switch {
			case r > 0:
				data := buf[:r]
				if !got {
					got = true
					data = data[1:]
					// The fifo is consumed: from now on the container counts as started.
					if err := os.Remove(path); err != nil {
						return fmt.Errorf("remove exec fifo of %s: %w", c.ID, err)
					}
				}
				extra = append(extra, data...)
				continue
			case r == 0 && got:
				if len(extra) > 0 && extra[0] == initproc.StartFailed {
					return fmt.Errorf("container %s failed to start: %s", c.ID, extra[1:])
				}
				return nil
			case r == 0 || errors.Is(err, unix.EAGAIN):
				// No writer yet (POLLHUP before the init opened its end): keep waiting.
				time.Sleep(time.Millisecond)
			}
		}
		if !c.Alive() {
			// The init may have written its error and exited between the
			// poll and this check: what it wrote is still in the fifo.
			for {
				r, _ := unix.Read(fd, buf)
				if r <= 0 {
					break
				}
				data := buf[:r]
				if !got {
					got, data = true, data[1:]
					if err := os.Remove(path); err != nil {
						return fmt.Errorf("remove exec fifo of %s: %w", c.ID, err)
					}
				}
				extra = append(extra, data...)
			}
			if got && len(extra) > 0 && extra[0] == initproc.StartFailed {
				return fmt.Errorf("container %s failed to start: %s", c.ID, extra[1:])
			}
			if got {
				return nil
			}
			return fmt.Errorf("cannot start container %s: its init exited before start", c.ID)
		}
	}
}

// StateJSON is what `state` and `list --format json` print (runc's shape).
type StateJSON struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// State returns the state of one container.
func (rt *Runtime) State(id string) (*StateJSON, error) {
	if err := state.ValidateID(id); err != nil {
		return nil, err
	}
	c, err := rt.Store.Load(id)
	if err != nil {
		return nil, err
	}
	return rt.stateOf(c), nil
}

func (rt *Runtime) stateOf(c *state.Container) *StateJSON {
	st := rt.Status(c)
	pid := c.Pid
	if st == state.Stopped {
		pid = 0
	}
	return &StateJSON{
		OCIVersion: c.OCIVersion, ID: c.ID, Pid: pid, Status: st, Bundle: c.Bundle,
		Rootfs: c.Rootfs, Created: c.Created, Owner: c.Owner, Annotations: c.Annotations,
	}
}

// List returns the state of every container under the root.
func (rt *Runtime) List() ([]*StateJSON, error) {
	ids, err := rt.Store.List()
	if err != nil {
		return nil, err
	}
	out := make([]*StateJSON, 0, len(ids))
	for _, id := range ids {
		c, err := rt.Store.Load(id)
		if err != nil {
			rt.Log.Warn("skipping container with unreadable state", "id", id, "err", err)
			continue
		}
		out = append(out, rt.stateOf(c))
	}
	return out, nil
}

// Kill sends sig to the container's init, or with all to every process in its cgroup.
func (rt *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	c, unlock, err := rt.load(id)
	if err != nil {
		return err
	}
	defer unlock()
	st := rt.Status(c)
	if st == state.Stopped && !all {
		return fmt.Errorf("cannot kill container %s: container not running (status stopped)", id)
	}
	if all {
		cg, err := rt.cgroup(c)
		if err != nil {
			return err
		}
		if c.Cgroup.Rootless && !cg.Exists() {
			// No cgroup of its own (rootless, none could be made): its
			// processes cannot be listed, and the cgroup it runs in is its
			// caller's. With a pid namespace of its own, SIGKILL of the
			// init ends them all; anything else would be a guess.
			if sig == unix.SIGKILL && ownPidNS(c) {
				if st == state.Stopped {
					return nil
				}
				return signalInit(c, sig)
			}
			return fmt.Errorf("cannot kill all processes of container %s: it has no cgroup of its own (rootless without a delegated cgroup); signal its init instead (without --all)", id)
		}
		if st == state.Paused && sig == unix.SIGKILL {
			defer cg.Thaw()
		}
		return cg.KillAll(sig)
	}
	return signalInit(c, sig)
}

// ownPidNS reports whether the container has a new pid namespace.
func ownPidNS(c *state.Container) bool {
	spec, err := c.Spec()
	if err != nil || spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			return ns.Path == ""
		}
	}
	return false
}

// signalInit signals the recorded init through a pidfd, so a recycled pid is never hit.
func signalInit(c *state.Container, sig unix.Signal) error {
	pfd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("container %s: init process %d is gone", c.ID, c.Pid)
		}
		return fmt.Errorf("container %s: pidfd_open %d: %w", c.ID, c.Pid, err)
	}
	defer unix.Close(pfd)
	if !c.Alive() {
		return fmt.Errorf("container %s: init process %d is gone", c.ID, c.Pid)
	}
	if err := unix.PidfdSendSignal(pfd, sig, nil, 0); err != nil {
		return fmt.Errorf("container %s: signal %d: %w", c.ID, sig, err)
	}
	return nil
}

// waitGone waits until the recorded init has exited (it may be a zombie of another parent).
func waitGone(c *state.Container, timeout time.Duration) error {
	pfd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		return nil // already reaped
	}
	defer unix.Close(pfd)
	if !c.Alive() {
		return nil
	}
	fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, err := unix.Poll(fds, int(time.Until(deadline)/time.Millisecond)+1)
		if n > 0 {
			return nil
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for init %d: %w", c.Pid, err)
		}
	}
	return fmt.Errorf("init %d did not exit within %s", c.Pid, timeout)
}

// Delete removes a stopped (or, like runc, created) container; force kills a
// running one first. Poststop hooks run last; their failures are reported but do
// not stop the cleanup.
func (rt *Runtime) Delete(id string, force bool) error {
	c, unlock, err := rt.load(id)
	if err != nil {
		if force && errors.Is(err, state.ErrNotExist) {
			// A create killed before its first record: only the dir exists.
			if _, serr := os.Stat(rt.Store.Dir(id)); serr == nil {
				return rt.Store.Remove(id)
			}
			return nil
		}
		if errors.Is(err, state.ErrNotExist) {
			return err
		}
		// Corrupt state: force removes what is left.
		if force {
			return rt.Store.Remove(id)
		}
		return err
	}
	defer unlock()
	st := rt.Status(c)
	switch st {
	case state.Stopped:
	default:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s (use --force)", id, st)
		}
		if err := rt.killAndWait(c); err != nil {
			return err
		}
	}
	var errs []error
	if cg, err := rt.cgroup(c); err == nil {
		// Stragglers (a container without its own pid namespace) go with it.
		if pids, _ := cg.Pids(); len(pids) > 0 {
			_ = cg.KillAll(unix.SIGKILL)
		}
		if err := DestroyCgroup(cg); err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, err)
	}
	if h := c.Hooks; h != nil && len(h.Poststop) > 0 {
		if err := hooks.RunAll("poststop", h.Poststop, c.OCIState(state.Stopped)); err != nil {
			rt.Log.Warn("poststop hook failed", "id", id, "err", err)
		}
	}
	if err := rt.Store.Remove(id); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (rt *Runtime) killAndWait(c *state.Container) error {
	if cg, err := rt.cgroup(c); err == nil {
		if s, _ := cg.FreezerState(); s == state.Paused {
			_ = cg.KillAll(unix.SIGKILL)
			_ = cg.Thaw()
		}
	}
	if err := signalInit(c, unix.SIGKILL); err != nil && c.Alive() {
		return err
	}
	return waitGone(c, 10*time.Second)
}

// DestroyCgroup removes a container's cgroup; processes just killed may take a
// moment to leave it.
func DestroyCgroup(cg *cgroups.Manager) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = cg.Destroy(); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}
