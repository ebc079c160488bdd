package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/monitor"
	"github.com/hull-runtime/hull/engine/network"
	"github.com/hull-runtime/hull/engine/oci"
	"github.com/hull-runtime/hull/engine/slirp"
	"github.com/hull-runtime/hull/engine/specgen"
	"github.com/hull-runtime/hull/image/snapshot"
)

// Status values, as Docker prints them.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusExited  = "exited"
)

// State is a container's live status.
type State struct {
	Status   string
	Pid      int
	Exit     *monitor.ExitStatus // when exited
	Running  bool
	Monitor  int // the monitor's pid, 0 if gone
	Restarts int
	// StartedAt is when the running container's current run began.
	StartedAt time.Time
}

// State computes where a container is: from its monitor, its exit record
// and the runtime; a dead monitor or a reboot does not fool it.
func (e *Engine) State(ctx context.Context, c *container.Container) State {
	dir := e.stateDir(c.ID)
	var st State
	st.Monitor, _ = monitor.MonitorPid(dir)
	ex, exErr := monitor.ReadExit(dir)
	if exErr == nil {
		st.Restarts = ex.Restarts
	}
	// Without the runtime when the files settle it: a recorded exit, or a
	// container never started. Each runtime call is a process.
	switch {
	case exErr == nil && !ex.Restarting && st.Monitor == 0:
		st.Status, st.Exit = StatusExited, ex
		return st
	case exErr != nil && st.Monitor == 0 && c.Boot == "":
		st.Status = StatusCreated
		return st
	}
	rt, err := oci.New(c.Runtime, e.runtimeRoot(), false)
	var rs *oci.State
	if err == nil {
		rs, _ = rt.State(ctx, c.ID)
	}
	switch {
	case rs != nil && (rs.Status == "running" || rs.Status == "paused"):
		st.Pid, st.Running = rs.Pid, true
		st.Status = StatusRunning
		// The runtime writes the pid file at create, just before start.
		if fi, err := os.Stat(filepath.Join(dir, monitor.ContainerPidFile)); err == nil {
			st.StartedAt = fi.ModTime()
		}
		if rs.Status == "paused" {
			st.Status = StatusPaused
		}
	case exErr == nil && !ex.Restarting:
		st.Status, st.Exit = StatusExited, ex
	case exErr == nil && ex.Restarting && st.Monitor != 0:
		st.Status, st.Exit = "restarting", ex
	case st.Monitor != 0:
		// The monitor is starting the container, or has seen it exit and
		// not yet written exit.json: not settled, so still running.
		st.Status, st.Running = StatusRunning, true
	case c.Boot != "" && c.Boot == container.BootID():
		// Started this boot, no exit record, not running: the monitor
		// died with it (SIGKILL) or the runtime lost it.
		st.Status = StatusExited
		st.Exit = &monitor.ExitStatus{ExitCode: -1, Error: "the container's monitor is gone; its exit code is unknown"}
	case c.Boot != "":
		st.Status = StatusExited
		st.Exit = &monitor.ExitStatus{ExitCode: -1, Error: "the host rebooted"}
	default:
		st.Status = StatusCreated
	}
	return st
}

// NetworkSlirp is the --network of rootless containers by default:
// slirp4netns (engine/slirp) instead of a CNI bridge.
const NetworkSlirp = "slirp4netns"

// cniPorts are the port mappings CNI's portmap sets up: none for slirp4netns,
// which publishes them itself.
func cniPorts(o *RunOptions) []network.PortMapping {
	if o.Network == NetworkSlirp {
		return nil
	}
	return o.Ports
}

func slirpPorts(ports []network.PortMapping) []slirp.Port {
	out := make([]slirp.Port, 0, len(ports))
	for _, p := range ports {
		out = append(out, slirp.Port{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol})
	}
	return out
}

// slirpSocket is the slirp4netns API socket of container id: short, as a
// socket path must be.
func (e *Engine) slirpSocket(id string) string {
	return filepath.Join(e.Runroot, "slirp", id[:16]+".sock")
}

// teardownNetwork undoes the container's network setup: slirp4netns if it
// runs one, then the namespace and CNI attachments.
func (e *Engine) teardownNetwork(ctx context.Context, c *container.Container, o *RunOptions) error {
	serr := slirp.Stop(e.stateDir(c.ID))
	return errors.Join(serr, e.Network.Teardown(ctx, c.ID, o.Attachments, cniPorts(o)))
}

// StartOptions change how Start starts a container.
type StartOptions struct {
	// Attach, if not nil, is one end of a connected unix stream socket
	// (see AttachPair) that the monitor serves as an attach client from
	// before the container is created: a foreground `run` reads every byte
	// on the other end, with no race against a short-lived container.
	Attach *os.File
}

// AttachPair returns a connected pair of unix stream sockets: the first for
// StartOptions.Attach (the caller closes it once Start returns), the second
// for monitor.NewAttachClient. Non-blocking, so that the client end is
// served by Go's poller and closing it ends a blocked read (a detach).
func AttachPair() (monitorEnd, clientEnd *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("attach socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "attach-monitor"), os.NewFile(uintptr(fds[1]), "attach-client"), nil
}

// Start starts a created or exited container under a new monitor and
// returns the container's pid. On error the container is as before.
func (e *Engine) Start(ctx context.Context, c *container.Container) (int, error) {
	return e.StartWith(ctx, c, StartOptions{})
}

// AttachSocket is the path of the container's attach socket (it exists
// while its monitor runs).
func (e *Engine) AttachSocket(c *container.Container) string {
	return filepath.Join(e.stateDir(c.ID), monitor.AttachSocket)
}

// StartWith is Start with options.
func (e *Engine) StartWith(ctx context.Context, c *container.Container, so StartOptions) (_ int, retErr error) {
	unlock, err := e.Containers.Lock(c.ID)
	if err != nil {
		return 0, err
	}
	defer unlock()
	o, err := options(c)
	if err != nil {
		return 0, err
	}
	if st := e.State(ctx, c); st.Running {
		return st.Pid, fmt.Errorf("container %s is already running", c.Name)
	}
	dir := e.stateDir(c.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	// A previous run's records go: this run writes its own.
	for _, f := range []string{monitor.ExitFile, monitor.StopFile, monitor.HealthFile} {
		_ = os.Remove(filepath.Join(dir, f))
	}
	if err := e.mountRootfs(ctx, c); err != nil {
		return 0, err
	}
	var undo []func()
	defer func() {
		if retErr != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if o.Spec.NetNSPath != "" && o.Spec.NetNSPath != "host" && o.Spec.NetNSPath == e.Network.NetnsPath(c.ID) {
		// A previous run's network (its monitor does not tear it down when
		// the container exits): a fresh namespace for this run.
		if e.Network.IsSetUp(c.ID) {
			if err := e.teardownNetwork(ctx, c, o); err != nil {
				return 0, fmt.Errorf("container %s: tear down the previous run's network: %w", c.Name, err)
			}
		}
		res, err := e.Network.Setup(ctx, c.ID, o.Attachments, cniPorts(o))
		if err != nil {
			return 0, err
		}
		undo = append(undo, func() { _ = e.teardownNetwork(context.Background(), c, o) })
		if o.Network == NetworkSlirp {
			if err := slirp.Start(o.Spec.NetNSPath, e.stateDir(c.ID), e.slirpSocket(c.ID), slirpPorts(o.Ports)); err != nil {
				return 0, fmt.Errorf("container %s: %w", c.Name, err)
			}
		}
		var own []net.IP
		for _, ifr := range res.Interfaces {
			for _, ipn := range ifr.IPs {
				own = append(own, ipn.IP)
			}
		}
		if err := e.writeHosts(c, o, own); err != nil {
			return 0, err
		}
		e.refreshPeers(c, o)
	}
	stopSig := e.stopSignal(c, o)
	policy, err := monitor.ParseRestartPolicy(orDefault(o.Restart, "no"))
	if err != nil {
		return 0, fmt.Errorf("--restart %q: %w", o.Restart, err)
	}
	maxSize, maxFiles := o.LogMaxSize, o.LogMaxFiles
	if maxSize == 0 {
		maxSize = 20 << 20
	}
	if maxFiles == 0 {
		maxFiles = 5
	}
	logPath := filepath.Join(e.Containers.Dir(c.ID), "ctr.log")
	if o.LogPath != "" {
		logPath = o.LogPath
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return 0, fmt.Errorf("start container %s: log directory: %w", c.Name, err)
		}
	}
	if o.LogFormat == monitor.LogFormatCRI {
		maxSize, maxFiles = 0, 1
	}
	cfg := &monitor.Config{
		ID: c.ID, Bundle: filepath.Join(e.Containers.Dir(c.ID), "bundle"), Runtime: c.Runtime, RuntimeRoot: e.runtimeRoot(),
		StateDir: dir, LogPath: logPath, LogFormat: o.LogFormat, LogMaxSize: maxSize, LogMaxFiles: maxFiles,
		TTY: o.Spec.TTY, Stdin: o.Spec.Interactive, Restart: policy, Health: o.Health, StopSignal: stopSig,
	}
	pid, err := monitor.Launch(ctx, e.MonitorBin, cfg, so.Attach)
	if err != nil {
		return 0, fmt.Errorf("start container %s: %w", c.Name, err)
	}
	c.Boot = container.BootID()
	if err := e.Containers.Update(c); err != nil {
		return pid, err
	}
	return pid, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// refreshPeers rewrites /etc/hosts of the other containers on c's
// networks, so that they resolve c by name.
func (e *Engine) refreshPeers(c *container.Container, o *RunOptions) {
	for _, a := range o.Attachments {
		entries, err := e.Network.HostsEntries(a.Network)
		if err != nil {
			continue
		}
		for _, he := range entries {
			if he.ContainerID == c.ID {
				continue
			}
			peer, err := e.Containers.Get(he.ContainerID)
			if err != nil {
				continue
			}
			po, err := options(peer)
			if err != nil {
				continue
			}
			_ = e.rewriteHosts(peer, po, []net.IP{he.IP})
		}
	}
}

// mountRootfs mounts the container's snapshot if it is not (after a reboot).
func (e *Engine) mountRootfs(ctx context.Context, c *container.Container) error {
	dir := e.rootfsDir(c.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if ok, _ := mountinfo.Mounted(dir); ok {
		return nil
	}
	mounts, err := e.Images.Snapshots.Mounts(ctx, c.Snapshot)
	if err != nil {
		return fmt.Errorf("container %s: its snapshot: %w", c.Name, err)
	}
	return snapshot.MountAll(mounts, dir)
}

// Stop stops a running container: its stop signal, then SIGKILL after
// timeout; the monitor records the exit and does not restart it.
func (e *Engine) Stop(ctx context.Context, c *container.Container, timeout time.Duration) error {
	st := e.State(ctx, c)
	if !st.Running {
		return nil
	}
	o, err := options(c)
	if err != nil {
		return err
	}
	if err := monitor.RequestStop(e.stateDir(c.ID)); err != nil {
		return err
	}
	rt, err := oci.New(c.Runtime, e.runtimeRoot(), false)
	if err != nil {
		return err
	}
	sig := e.stopSignal(c, o)
	if st.Status == StatusPaused {
		_ = rt.Resume(ctx, c.ID)
	}
	// A container that exits on its own meanwhile is stopped, not a
	// failure to stop it. Runtimes word that differently (runc's kill --all
	// may fail on the cgroup the exit just removed), so a failed kill is
	// checked against the container's state.
	kill := func(sig unix.Signal, all bool) error {
		err := rt.Kill(ctx, c.ID, sig, all)
		if err == nil || errors.Is(err, oci.ErrNotExist) || errors.Is(err, oci.ErrNotRunning) {
			return nil
		}
		if e.waitExit(ctx, c, 100*time.Millisecond) {
			return nil
		}
		return err
	}
	if err := kill(sig, false); err != nil {
		return err
	}
	if e.waitExit(ctx, c, timeout) {
		return nil
	}
	if err := kill(unix.SIGKILL, true); err != nil {
		return err
	}
	if !e.waitExit(ctx, c, 10*time.Second) {
		return fmt.Errorf("container %s did not exit after SIGKILL", c.Name)
	}
	return nil
}

// stopSignal is the signal that stops c: the one specgen resolved at
// create and recorded in the bundle's annotations (--stop-signal, else the
// image's StopSignal). o.Spec.StopSignal alone is only the flag: stopping
// with it ignored the image's StopSignal and waited for the SIGKILL.
func (e *Engine) stopSignal(c *container.Container, o *RunOptions) unix.Signal {
	name := o.Spec.StopSignal
	if data, err := os.ReadFile(filepath.Join(e.Containers.Dir(c.ID), "bundle", "config.json")); err == nil {
		var spec struct {
			Annotations map[string]string `json:"annotations"`
		}
		if json.Unmarshal(data, &spec) == nil && spec.Annotations[specgen.AnnotationStopSignal] != "" {
			name = spec.Annotations[specgen.AnnotationStopSignal]
		}
	}
	if name != "" {
		if sig, err := specgen.ParseSignal(name); err == nil {
			return sig
		}
	}
	return unix.SIGTERM
}

// waitExit waits until the container is no longer running (and its
// monitor has recorded it), at most d.
func (e *Engine) waitExit(ctx context.Context, c *container.Container, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		st := e.State(ctx, c)
		if !st.Running && (st.Monitor == 0 || st.Exit != nil) {
			return true
		}
		time.Sleep(25 * time.Millisecond)
	}
	return false
}

// settled reports whether a started container has exited for good, from
// the monitor's files alone: exit.json without a restart coming, or no
// monitor (SIGKILLed, or gone with a reboot) and so an unknown code.
func (e *Engine) settled(c *container.Container) (code int, done bool) {
	dir := e.stateDir(c.ID)
	if ex, err := monitor.ReadExit(dir); err == nil && !ex.Restarting {
		return ex.ExitCode, true
	}
	if pid, _ := monitor.MonitorPid(dir); pid == 0 && c.Boot != "" {
		return -1, true
	}
	return 0, false
}

// Wait blocks until the container exits and returns its exit code (-1 if
// unknown). It reads the monitor's files, not the runtime, every 10 ms; the
// runtime only once the monitor is gone.
func (e *Engine) Wait(ctx context.Context, c *container.Container) (int, error) {
	if c.Boot == "" {
		if st := e.State(ctx, c); st.Status == StatusCreated {
			return -1, fmt.Errorf("container %s is not started", c.Name)
		}
	}
	for {
		every := 10 * time.Millisecond
		if code, done := e.settled(c); done {
			if !e.outlivedMonitor(ctx, c) {
				return code, nil
			}
			// Each check of an orphan runs the runtime: poll slower.
			every = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(every):
		}
	}
}

// outlivedMonitor reports whether c's init still runs although its monitor
// is gone (SIGKILLed: the init was reparented, not killed). ps shows such
// a container running, as Podman does while its process lives, so Wait
// must not report an exit until the runtime sees the process gone.
func (e *Engine) outlivedMonitor(ctx context.Context, c *container.Container) bool {
	if ex, err := monitor.ReadExit(e.stateDir(c.ID)); err == nil && !ex.Restarting {
		return false
	}
	return e.State(ctx, c).Running
}

// runtimeMayKnow reports whether the runtime may hold state for container
// id. hull-runtime, runc and crun keep it in a directory named by the id
// under their --root: without that directory there is nothing to delete,
// and a `state` exec (a few ms on every rm) is saved. Other runtimes are
// asked.
func runtimeMayKnow(rt oci.Runtime, id string) bool {
	switch filepath.Base(rt.Path()) {
	case "hull-runtime", "runc", "crun":
		_, err := os.Lstat(filepath.Join(rt.Root(), id))
		return err == nil
	}
	return true
}

// Remove deletes a container and everything it holds; a running one only
// with force (killed first). volumes also removes its anonymous volumes.
func (e *Engine) Remove(ctx context.Context, c *container.Container, force, volumes bool) error {
	st := e.State(ctx, c)
	if st.Running || st.Monitor != 0 {
		if !force {
			return fmt.Errorf("container %s is %s: stop it first, or use --force", c.Name, st.Status)
		}
		if err := e.Stop(ctx, c, 0); err != nil {
			return err
		}
	}
	unlock, err := e.Containers.Lock(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	// A create killed before it wrote the options: clean up by the
	// conventions (snapshot and netns named by the id) instead.
	o, err := options(c)
	partial := err != nil
	if partial {
		o = &RunOptions{}
	}
	if c.Snapshot == "" {
		c.Snapshot = c.ID
	}
	var errs []error
	// Only a container the runtime knows needs deleting there (a runtime
	// that failed at create, or a broken one, knows none).
	if rt, err := oci.New(c.Runtime, e.runtimeRoot(), false); err == nil && runtimeMayKnow(rt, c.ID) {
		if _, err := rt.State(ctx, c.ID); err == nil {
			if err := rt.Delete(ctx, c.ID, true); err != nil && !errors.Is(err, oci.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if partial || o.Spec.NetNSPath == e.Network.NetnsPath(c.ID) {
		if err := e.teardownNetwork(ctx, c, o); err != nil {
			errs = append(errs, err)
		}
		e.refreshPeers(c, o)
	}
	if err := snapshot.UnmountAll(e.rootfsDir(c.ID)); err != nil {
		errs = append(errs, err)
	}
	if err := e.Images.Snapshots.Remove(ctx, c.Snapshot); err != nil && !errors.Is(err, snapshot.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(e.stateDir(c.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	if volumes {
		for _, v := range o.AnonymousVolumes {
			if err := e.Volumes.Remove(v, true, nil); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		// Keep the record: `hull rm` again retries what failed.
		return fmt.Errorf("remove container %s: %w", c.Name, errors.Join(errs...))
	}
	return e.Containers.Remove(c)
}
