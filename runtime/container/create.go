// Package container is the parent side of hull-runtime's verbs: it starts the
// init in new namespaces, puts it in its cgroup, drives it through setup over the
// sync socket, runs the hooks that belong to the runtime, and keeps state.json.
package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/cgroups"
	"github.com/hull-runtime/hull/runtime/exeseal"
	"github.com/hull-runtime/hull/runtime/hooks"
	"github.com/hull-runtime/hull/runtime/initproc"
	"github.com/hull-runtime/hull/runtime/nsenter"
	"github.com/hull-runtime/hull/runtime/seccomp"
	rspec "github.com/hull-runtime/hull/runtime/spec"
	"github.com/hull-runtime/hull/runtime/state"
)

// Runtime holds the global options of hull-runtime.
type Runtime struct {
	Store         state.Store
	SystemdCgroup bool
	Rootless      bool
	Log           *slog.Logger
}

// CreateOptions are the flags of `create` (and `run`).
type CreateOptions struct {
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	PreserveFds   int
	NoPivot       bool
	NoNewKeyring  bool
	Stdin         *os.File
	Stdout        *os.File
	Stderr        *os.File
	// Spec, when set, is the bundle's config.json already loaded with
	// spec.Load (run reads it first to decide on a terminal).
	Spec *specs.Spec
	// StartNow also starts the container, for `run`: the init goes on to
	// exec without the exec fifo round trip of a separate Start, and the
	// poststart hooks run before Create returns.
	StartNow bool
}

// Init is a created container's init process, for `run` to wait on.
type Init struct {
	Process *os.Process
	State   *state.Container
	// Started: create also started it (CreateOptions.StartNow).
	Started bool
}

// Create sets up a container and leaves its init waiting on the exec fifo.
// On any error nothing is left behind: no state dir, cgroup, mount or process.
func (rt *Runtime) Create(o CreateOptions) (_ *Init, retErr error) {
	if err := state.ValidateID(o.ID); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", o.Bundle, err)
	}
	spec := o.Spec
	if spec == nil {
		if spec, err = rspec.Load(bundle); err != nil {
			return nil, err
		}
	}
	if spec.Linux == nil {
		return nil, errors.New("config.json: linux: required on Linux")
	}
	terminal := spec.Process != nil && spec.Process.Terminal
	if terminal && o.ConsoleSocket == "" {
		return nil, errors.New("config.json: process.terminal is true: --console-socket is required")
	}
	if !terminal && o.ConsoleSocket != "" {
		return nil, errors.New("--console-socket given but process.terminal is false in config.json")
	}
	if spec.Linux.IntelRdt != nil {
		if _, err := os.Stat("/sys/fs/resctrl/schemata"); err != nil {
			return nil, errors.New("config.json: linux.intelRdt: Intel RDT is not available on this host (resctrl is not mounted at /sys/fs/resctrl)")
		}
		return nil, errors.New("config.json: linux.intelRdt: Intel RDT is not supported by hull-runtime yet")
	}
	// Compiling a seccomp profile can take longer than the whole start (about
	// 20 ms for Podman's default): from the cache, beside the rest of create.
	seccompc := rt.compileSeccomp(spec.Linux.Seccomp)
	cg, err := cgroups.New(cgroups.Config{ID: o.ID, Path: spec.Linux.CgroupsPath, Systemd: rt.SystemdCgroup, Rootless: rt.Rootless, Resources: WithDefaultDeviceRules(spec)})
	if err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	if err := rt.Store.CreateDir(o.ID); err != nil {
		return nil, err
	}
	unlock, err := rt.Store.Lock(o.ID)
	if err != nil {
		rt.Store.Remove(o.ID)
		return nil, err
	}
	defer unlock()

	c := &state.Container{
		ID: o.ID, Bundle: bundle, Rootfs: spec.Root.Path, Created: time.Now().UTC(),
		Owner: "", Annotations: spec.Annotations,
		Cgroup: state.CgroupInfo{Path: spec.Linux.CgroupsPath, Systemd: rt.SystemdCgroup, Rootless: rt.Rootless},
	}
	if err := c.SetSpec(spec); err != nil {
		rt.Store.Remove(o.ID)
		return nil, err
	}
	// The in-progress record comes first: if this process is killed from here
	// on, `delete` finds the cgroup to clean up (the init dies with us).
	c.Creating = true
	c.Cgroup.Paths = cg.Paths()
	if err := rt.Store.Save(c); err != nil {
		rt.Store.Remove(o.ID)
		return nil, err
	}
	var proc *os.Process
	cgApplied := false
	defer func() {
		if retErr == nil {
			return
		}
		if proc != nil {
			_ = proc.Kill()
			_, _ = proc.Wait()
		}
		if cgApplied {
			if err := cg.Destroy(); err != nil {
				rt.Log.Warn("cleanup after failed create: remove cgroup", "id", o.ID, "err", err)
			}
		}
		if err := rt.Store.Remove(o.ID); err != nil {
			rt.Log.Warn("cleanup after failed create", "id", o.ID, "err", err)
		}
	}()

	fifo := rt.Store.FifoPath(o.ID)
	if err := unix.Mkfifo(fifo, 0o622); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	// mkfifo honours the umask; the init may run as a mapped uid that needs "other" write.
	if err := os.Chmod(fifo, 0o622); err != nil {
		return nil, fmt.Errorf("chmod exec fifo: %w", err)
	}
	fifoPath, err := os.OpenFile(fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifoPath.Close()

	l, err := newInitLaunch(o.Stdin, o.Stdout, o.Stderr, o.PreserveFds)
	if err != nil {
		return nil, err
	}
	defer l.close()
	cmd, addFd, exe, parentSock, childSock := l.cmd, l.addFd, l.exe, l.parent, l.child
	cmd.Env = append(cmd.Env,
		initproc.EnvFifoFd+"="+addFd(fifoPath),
		// Until create has finished, the init dies with us (see MsgCreated).
		initproc.EnvDieWithParent+"=1",
	)
	if o.ConsoleSocket != "" {
		conn, err := dialUnix("--console-socket", o.ConsoleSocket)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		cmd.Env = append(cmd.Env, initproc.EnvConsoleFd+"="+addFd(conn))
	}

	if conn, err := addSeccompListener(spec.Linux.Seccomp, cmd, addFd); err != nil {
		return nil, err
	} else if conn != nil {
		defer conn.Close()
	}
	mountFds, closeMounts, err := idmapMounts(spec, bundle, exe)
	if err != nil {
		return nil, err
	}
	defer closeMounts()

	icfg := &initproc.Config{
		ID: o.ID, Bundle: bundle, Rootfs: spec.Root.Path, Spec: spec,
		NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring, PreserveFds: o.PreserveFds,
	}
	for i, f := range mountFds {
		if icfg.MountFds == nil {
			icfg.MountFds = map[int]int{}
		}
		n, _ := strconv.Atoi(addFd(f))
		icfg.MountFds[i] = n
	}
	attr := &syscall.SysProcAttr{}
	var timeOffsets *string          // a new time namespace with these offsets
	var joins []specs.LinuxNamespace // joined in this process's thread before clone
	var ctorJoins []string           // joined by the nsenter constructor in the init
	hasMount := false
	// Already in a user namespace (a rootless engine's): no mknod either.
	icfg.InUserNS = RunningInUserNS()
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.MountNamespace {
			hasMount = true
		}
		if ns.Path != "" {
			switch ns.Type {
			case specs.UserNamespace:
				ctorJoins = append([]string{"user:" + ns.Path}, ctorJoins...)
				icfg.InUserNS = true
			case specs.MountNamespace:
				ctorJoins = append(ctorJoins, "mnt:"+ns.Path)
			default:
				joins = append(joins, ns)
			}
			continue
		}
		switch ns.Type {
		case specs.CgroupNamespace:
			// Unshared by the init once it is in its cgroup, so that cgroup is the root.
			icfg.NewCgroupNS = true
		case specs.TimeNamespace:
			var b strings.Builder
			for clock, off := range spec.Linux.TimeOffsets {
				fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
			}
			lines := b.String()
			timeOffsets = &lines
		case specs.UserNamespace:
			attr.Cloneflags |= unix.CLONE_NEWUSER
			icfg.InUserNS = true
			for _, m := range spec.Linux.UIDMappings {
				attr.UidMappings = append(attr.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
			}
			for _, m := range spec.Linux.GIDMappings {
				attr.GidMappings = append(attr.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
			}
			attr.GidMappingsEnableSetgroups = true
			// Writing the maps does not change the child's credentials: it is still
			// host root, unmapped, until it sets its ids inside the namespace.
			if !mapsRoot(spec.Linux.UIDMappings) || !mapsRoot(spec.Linux.GIDMappings) {
				return nil, errors.New("config.json: linux.uidMappings/gidMappings: a new user namespace needs container uid and gid 0 mapped")
			}
			attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
		default:
			f, ok := rspec.CloneFlag(ns.Type)
			if !ok {
				return nil, fmt.Errorf("config.json: linux.namespaces: unknown namespace type %q", ns.Type)
			}
			attr.Cloneflags |= f
		}
	}
	// Without a mount namespace nothing may be mounted (it would land on the
	// host): the init only chroots into the rootfs, as runc does.
	icfg.NoMountNS = !hasMount
	if len(ctorJoins) > 0 {
		cmd.Env = append(cmd.Env, nsenter.EnvJoin+"="+strings.Join(ctorJoins, ","))
	}
	cmd.SysProcAttr = attr
	// Rootless user namespaces and time namespaces are made by the nsenter
	// constructor (see ctorStart); everything else by clone flags.
	var rl *ctorStart
	if (attr.Cloneflags&unix.CLONE_NEWUSER != 0 && os.Geteuid() != 0) || timeOffsets != nil {
		if rl, err = newCtorStart(cmd, spec, timeOffsets); err != nil {
			return nil, err
		}
		defer rl.close()
	}

	// Nobody moves the init into its cgroups by pid, which takes the kernel's
	// global threadgroup lock and waits for an RCU grace period (up to 12 ms
	// here, on the start path): it is cloned into the cgroup v2 one
	// (CLONE_INTO_CGROUP), and joins the v1 ones itself (startInCgroup).
	joinAtStart := !rt.SystemdCgroup && !rt.Rootless
	if joinAtStart {
		cgApplied = true
		if err := cg.Apply(-1); err != nil {
			return nil, err
		}
		closeCg, err := startInCgroup(cg, cmd, addFd)
		if err != nil {
			return nil, err
		}
		defer closeCg()
	}
	if err := l.setPath(); err != nil {
		return nil, err
	}
	release, err := startInNamespaces(cmd, joins)
	if err != nil {
		return nil, fmt.Errorf("start container init: %w", err)
	}
	// The init's parent-death signal is tied to the thread that forked it.
	defer release()
	proc = cmd.Process
	if rl != nil {
		if proc, err = rl.finish(cmd); err != nil {
			proc = nil
			return nil, err
		}
	}
	childSock.Close()

	// The init decodes its config while we put it into its cgroups; it starts
	// the setup only on MsgGo, once it is there.
	icfg.CgroupPaths = cg.Paths()
	if icfg.SeccompBPF, err = (<-seccompc).get(); err != nil {
		return nil, err
	}
	enc := json.NewEncoder(parentSock)
	dec := json.NewDecoder(parentSock)
	if err := enc.Encode(initproc.Message{Type: initproc.MsgConfig, Config: icfg}); err != nil {
		return nil, fmt.Errorf("send config to init: %w", initErr(err, proc))
	}
	// Apply can fail halfway (some hierarchies created): always destroy on error.
	cgApplied = true
	if !joinAtStart {
		if err := cg.Apply(proc.Pid); err != nil {
			return nil, err
		}
	}
	if err := cg.Set(); err != nil {
		return nil, err
	}
	if err := moveNetDevices(spec.Linux.NetDevices, proc.Pid); err != nil {
		return nil, err
	}
	c.Cgroup.Paths = cg.Paths()
	c.Pid = proc.Pid
	if c.PidStartTime, _, err = state.ProcStartTime(proc.Pid); err != nil {
		return nil, fmt.Errorf("read start time of init %d: %w", proc.Pid, err)
	}
	if err := enc.Encode(initproc.Message{Type: initproc.MsgGo}); err != nil {
		return nil, fmt.Errorf("resume init: %w", initErr(err, proc))
	}
	for done := false; !done; {
		var msg initproc.Message
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("container init exited during setup: %w", initErr(nil, proc))
			}
			return nil, fmt.Errorf("read from init: %w", err)
		}
		switch msg.Type {
		case initproc.MsgError:
			return nil, errors.New(msg.Error)
		case initproc.MsgHooks:
			st := c.OCIState(state.Creating)
			if spec.Hooks != nil {
				// prestart hooks have always been given "created" (runc, the validation suite).
				//lint:ignore SA1019 prestart is deprecated but engines still send it.
				if err := hooks.Run("prestart", spec.Hooks.Prestart, c.OCIState(state.Created)); err != nil { //nolint:staticcheck
					_ = enc.Encode(initproc.Message{Type: initproc.MsgError, Error: err.Error()})
					return nil, err
				}
				if err := hooks.Run("createRuntime", spec.Hooks.CreateRuntime, st); err != nil {
					_ = enc.Encode(initproc.Message{Type: initproc.MsgError, Error: err.Error()})
					return nil, err
				}
			}
			if err := enc.Encode(initproc.Message{Type: initproc.MsgHooksOK, State: st}); err != nil {
				return nil, fmt.Errorf("resume init: %w", initErr(err, proc))
			}
		case initproc.MsgReady:
			done = true
		default:
			return nil, fmt.Errorf("unexpected message %q from init", msg.Type)
		}
	}
	c.Creating = false
	startNow := o.StartNow && spec.Process != nil
	if startNow {
		// Without its exec fifo a live container counts as running.
		if err := os.Remove(fifo); err != nil {
			return nil, fmt.Errorf("remove exec fifo: %w", err)
		}
	}
	if err := rt.Store.Save(c); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := WritePidFile(o.PidFile, proc.Pid); err != nil {
			return nil, err
		}
	}
	// The init drops its parent-death signal and closes the socket (or, told
	// to start, execs, which closes it): from the EOF on it outlives us.
	next := initproc.MsgCreated
	if startNow {
		next = initproc.MsgStart
	}
	if err := enc.Encode(initproc.Message{Type: next}); err != nil {
		return nil, fmt.Errorf("tell init create is done: %w", initErr(err, proc))
	}
	var last initproc.Message
	switch err := dec.Decode(&last); {
	case err == nil && last.Type == initproc.MsgError:
		return nil, fmt.Errorf("container %s failed to start: %s", o.ID, last.Error)
	case err == nil:
		return nil, fmt.Errorf("unexpected message %q from init", last.Type)
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("wait for init: %w", err)
	}
	if startNow {
		rt.runPoststart(c)
	}
	return &Init{Process: proc, State: c, Started: startNow}, nil
}

// startInCgroup makes cmd start in the container's existing cgroups: cloned
// into the cgroup v2 directory; the v1 hierarchies are joined by the nsenter
// constructor, but memory, which the init joins once its Go runtime is up
// (initproc.EnvMemoryTasks). The returned func closes what cmd inherits.
func startInCgroup(cg *cgroups.Manager, cmd *exec.Cmd, addFd func(*os.File) string) (func(), error) {
	var toClose []*os.File
	closeAll := func() {
		for _, f := range toClose {
			f.Close()
		}
	}
	if p := cg.UnifiedPath(); p != "" {
		dir, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("open cgroup %s: %w", p, err)
		}
		toClose = append(toClose, dir)
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
	}
	tasks, memory, err := cg.TaskFiles()
	if err != nil {
		closeAll()
		return nil, err
	}
	toClose = append(toClose, tasks...)
	if len(tasks) > 0 {
		fds := make([]string, len(tasks))
		for i, f := range tasks {
			fds[i] = addFd(f)
		}
		cmd.Env = append(cmd.Env, nsenter.EnvCgroupTasks+"="+strings.Join(fds, ","))
	}
	if memory != nil {
		toClose = append(toClose, memory)
		cmd.Env = append(cmd.Env, initproc.EnvMemoryTasks+"="+addFd(memory))
	}
	return closeAll, nil
}

// initErr describes why the init went away: its exit status, if it has one.
func initErr(err error, p *os.Process) error {
	var ws unix.WaitStatus
	wpid, werr := unix.Wait4(p.Pid, &ws, unix.WNOHANG, nil)
	if werr == nil && wpid == p.Pid {
		switch {
		case ws.Exited():
			return fmt.Errorf("init exited with status %d (see stderr)", ws.ExitStatus())
		case ws.Signaled():
			return fmt.Errorf("init killed by signal %v", ws.Signal())
		}
	}
	if err == nil {
		return errors.New("init closed the sync socket")
	}
	return err
}

// startInNamespaces starts cmd from a thread that has first joined the given
// namespaces: a clone inherits them. The thread is never unlocked, so Go
// discards it afterwards instead of reusing it in foreign namespaces.
// The returned release lets that thread go; until then it stays parked, as the
// init's parent-death signal would fire when it exits.
func startInNamespaces(cmd *exec.Cmd, joins []specs.LinuxNamespace) (release func(), err error) {
	if len(joins) == 0 {
		return func() {}, cmd.Start()
	}
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer func() { <-done }()
		runtime.LockOSThread()
		for _, ns := range joins {
			f, err := os.Open(ns.Path)
			if err != nil {
				errc <- fmt.Errorf("linux.namespaces %s: %w", ns.Type, err)
				return
			}
			flag, _ := rspec.CloneFlag(ns.Type)
			err = unix.Setns(int(f.Fd()), int(flag))
			f.Close()
			if err != nil {
				errc <- fmt.Errorf("linux.namespaces %s: join %s: %w", ns.Type, ns.Path, err)
				return
			}
		}
		errc <- cmd.Start()
	}()
	return func() { close(done) }, <-errc
}

// dialUnix connects to a unix socket and returns the connection as a file to
// pass to the init; what names the option for errors.
func dialUnix(what, path string) (*os.File, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	f, err := conn.File()
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return f, nil
}

// addSeccompListener connects to linux.seccomp.listenerPath when the profile
// notifies; the init sends the notify fd over this connection.
func addSeccompListener(sc *specs.LinuxSeccomp, cmd *exec.Cmd, addFd func(*os.File) string) (*os.File, error) {
	if sc == nil || sc.ListenerPath == "" {
		return nil, nil
	}
	conn, err := dialUnix("linux.seccomp.listenerPath", sc.ListenerPath)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(cmd.Env, initproc.EnvSeccompFd+"="+addFd(conn))
	return conn, nil
}

// initLaunch is what create and exec share to start `hull-runtime init`: the
// re-exec of the sealed binary with the caller's stdio and preserved fds
// (3..3+preserve-1) and the sync socket; addFd passes one more file and
// returns its fd number in the init.
type initLaunch struct {
	cmd           *exec.Cmd
	addFd         func(*os.File) string
	exe           *os.File // the sealed binary
	exeHigh       *os.File // exe at the fd number cmd.Path names (setPath)
	parent, child *os.File // ends of the sync socket
}

func newInitLaunch(stdin, stdout, stderr *os.File, preserve int) (*initLaunch, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("sync socketpair: %w", err)
	}
	l := &initLaunch{parent: os.NewFile(uintptr(fds[0]), "sync-parent"), child: os.NewFile(uintptr(fds[1]), "sync-child")}
	if l.exe, err = exeseal.Open(); err != nil {
		l.close()
		return nil, err
	}
	l.cmd = &exec.Cmd{
		Args:   []string{"hull-runtime", "init"},
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
		// The init lives milliseconds: no GC, one P, and no cgroup-aware
		// GOMAXPROCS (which keeps the host's cgroup files open in the init).
		Env: []string{"GOGC=off", "GODEBUG=containermaxprocs=0,updatemaxprocs=0", "GOMAXPROCS=1"},
	}
	for i := 0; i < preserve; i++ {
		l.cmd.ExtraFiles = append(l.cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	l.addFd = func(f *os.File) string {
		l.cmd.ExtraFiles = append(l.cmd.ExtraFiles, f)
		return strconv.Itoa(2 + len(l.cmd.ExtraFiles))
	}
	l.cmd.Env = append(l.cmd.Env, initproc.EnvSyncFd+"="+l.addFd(l.child))
	return l, nil
}

// setPath points cmd at the sealed binary, once every file is added. The
// path is resolved in the child after its fd shuffle, which dup2s ExtraFiles
// onto 3, 4, ... and first moves fds in the way to len(fds) and up: the
// binary gets an fd number above all of that.
func (l *initLaunch) setPath() error {
	n := 3 + len(l.cmd.ExtraFiles)
	fd, err := unix.FcntlInt(l.exe.Fd(), unix.F_DUPFD_CLOEXEC, 2*n+8)
	if err != nil {
		return fmt.Errorf("dup sealed binary: %w", err)
	}
	l.exeHigh = os.NewFile(uintptr(fd), "exe")
	l.cmd.Path = "/proc/self/fd/" + strconv.Itoa(fd)
	return nil
}

func (l *initLaunch) close() {
	l.parent.Close()
	l.child.Close()
	if l.exe != nil {
		l.exe.Close()
	}
	if l.exeHigh != nil {
		l.exeHigh.Close()
	}
}

// WritePidFile writes pid to path atomically (temp file + rename), for --pid-file.
func WritePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("--pid-file %s: %w", path, err)
	}
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("--pid-file %s: %w", path, err)
	}
	if err := os.Rename(tmp, abs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--pid-file %s: %w", path, err)
	}
	return nil
}

// WithDefaultDeviceRules returns the spec's resources with the device rules every
// container needs (runc's list) and the linux.devices nodes appended.
func WithDefaultDeviceRules(s *specs.Spec) *specs.LinuxResources {
	var r specs.LinuxResources
	if s.Linux.Resources != nil {
		r = *s.Linux.Resources
	}
	rule := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		mj, mn := &major, &minor
		if major < 0 {
			mj = nil
		}
		if minor < 0 {
			mn = nil
		}
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: mj, Minor: mn, Access: access}
	}
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	rules = append(rules, r.Devices...)
	rules = append(rules,
		rule("c", -1, -1, "m"), rule("b", -1, -1, "m"),
		rule("c", 1, 3, "rwm"), rule("c", 1, 8, "rwm"), rule("c", 1, 7, "rwm"),
		rule("c", 5, 0, "rwm"), rule("c", 1, 5, "rwm"), rule("c", 1, 9, "rwm"),
		rule("c", 5, 1, "rwm"), rule("c", 136, -1, "rwm"), rule("c", 5, 2, "rwm"),
	)
	for _, d := range s.Linux.Devices {
		if d.Type == "p" {
			continue
		}
		t := d.Type
		if t == "u" {
			t = "c"
		}
		rules = append(rules, rule(t, d.Major, d.Minor, "rwm"))
	}
	r.Devices = rules
	return &r
}

func mapsRoot(m []specs.LinuxIDMapping) bool {
	for _, e := range m {
		if e.ContainerID == 0 && e.Size > 0 {
			return true
		}
	}
	return false
}

type compiled struct {
	bpf []byte
	err error
}

func (c compiled) get() ([]byte, error) { return c.bpf, c.err }

// compileSeccomp compiles (or finds in the cache under --root) a seccomp
// profile in the background; the result is read from the channel.
func (rt *Runtime) compileSeccomp(sc *specs.LinuxSeccomp) <-chan compiled {
	ch := make(chan compiled, 1)
	if sc == nil {
		ch <- compiled{}
		return ch
	}
	go func() {
		p, err := seccomp.CompileCached(sc, filepath.Join(rt.Store.Root, SeccompCacheDir))
		if err != nil {
			ch <- compiled{err: fmt.Errorf("config.json: linux.seccomp: %w", err)}
			return
		}
		bpf, err := p.MarshalBinary()
		ch <- compiled{bpf: bpf, err: err}
	}()
	return ch
}

// SeccompCacheDir, below --root, holds compiled seccomp profiles.
const SeccompCacheDir = ".seccomp-cache"
