package container

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/initproc"
	"github.com/hull-runtime/hull/runtime/nsenter"
	"github.com/hull-runtime/hull/runtime/state"
)

// ExecOptions are the flags of `exec` that are not part of the process.
type ExecOptions struct {
	ID            string
	Process       *specs.Process
	PidFile       string
	ConsoleSocket string
	PreserveFds   int
	// IgnorePaused lets exec start a process in a paused container (it stays
	// frozen until resume), as runc's --ignore-paused.
	IgnorePaused bool
	// SubCgroup is --cgroup: a sub-cgroup (v2) of the container to put the process in.
	SubCgroup string
	Stdin     *os.File
	Stdout    *os.File
	Stderr    *os.File
}

// nsOrder is the order namespaces are joined in: user first, so that the
// others are joined with the capabilities it grants; mnt last but one.
var nsOrder = []struct {
	typ  specs.LinuxNamespaceType
	proc string
}{
	{specs.UserNamespace, "user"}, {specs.IPCNamespace, "ipc"}, {specs.UTSNamespace, "uts"},
	{specs.NetworkNamespace, "net"}, {specs.PIDNamespace, "pid"}, {specs.CgroupNamespace, "cgroup"},
	{specs.TimeNamespace, "time"}, {specs.MountNamespace, "mnt"},
}

// Exec starts a process inside a running container and returns it; the caller
// waits for it (it is our child) or releases it.
func (rt *Runtime) Exec(o ExecOptions) (_ *os.Process, retErr error) {
	c, unlock, err := rt.load(o.ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st := rt.Status(c)
	switch st {
	case state.Running:
	case state.Paused:
		if o.IgnorePaused {
			break
		}
		return nil, fmt.Errorf("cannot exec in container %s: it is paused (resume it first)", o.ID)
	default:
		return nil, fmt.Errorf("cannot exec in container %s: it is %s, not running", o.ID, st)
	}
	if o.Process == nil || len(o.Process.Args) == 0 {
		return nil, errors.New("exec: no command given")
	}
	if o.Process.Terminal && o.ConsoleSocket == "" {
		return nil, errors.New("exec: --tty needs --console-socket")
	}
	if !o.Process.Terminal && o.ConsoleSocket != "" {
		return nil, errors.New("exec: --console-socket given without --tty")
	}
	cg, err := rt.cgroup(c)
	if err != nil {
		return nil, err
	}

	// The namespaces of the container's init that differ from ours.
	var joins []string
	for _, ns := range nsOrder {
		theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", c.Pid, ns.proc))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // kernel without this namespace type
			}
			return nil, fmt.Errorf("container %s: read namespace %s of init %d: %w", o.ID, ns.proc, c.Pid, err)
		}
		ours, _ := os.Readlink("/proc/self/ns/" + ns.proc)
		if theirs != ours {
			joins = append(joins, fmt.Sprintf("%s:/proc/%d/ns/%s", ns.proc, c.Pid, ns.proc))
		}
	}
	// The init must still be the recorded one now that we hold its ns paths.
	if !c.Alive() {
		return nil, fmt.Errorf("cannot exec in container %s: its init exited", o.ID)
	}

	pidR, pidW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pidR.Close()
	defer pidW.Close()

	l, err := newInitLaunch(o.Stdin, o.Stdout, o.Stderr, o.PreserveFds)
	if err != nil {
		return nil, err
	}
	defer l.close()
	cmd, addFd, parentSock, childSock := l.cmd, l.addFd, l.parent, l.child
	cmd.Env = append(cmd.Env,
		nsenter.EnvForkPidFd+"="+addFd(pidW),
		nsenter.EnvJoin+"="+strings.Join(joins, ","),
	)
	if st != state.Paused {
		// Die with us until the execve (finalizeAndExec clears it). A frozen
		// process (--ignore-paused) must outlive us: we do not wait for it.
		cmd.Env = append(cmd.Env, initproc.EnvDieWithParent+"=1")
	}
	if o.ConsoleSocket != "" {
		conn, err := dialUnix("--console-socket", o.ConsoleSocket)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		cmd.Env = append(cmd.Env, initproc.EnvConsoleFd+"="+addFd(conn))
	}
	spec, err := c.Spec()
	if err != nil {
		return nil, err
	}
	seccompCfg := spec.Linux.Seccomp
	seccompc := rt.compileSeccomp(seccompCfg)
	if conn, err := addSeccompListener(seccompCfg, cmd, addFd); err != nil {
		return nil, err
	} else if conn != nil {
		defer conn.Close()
	}
	// Like an init, the process starts in the container's cgroups (see
	// Create); a paused container's would freeze the intermediate before it
	// reports the pid, and --cgroup or a cgroup we do not own is moved by pid.
	joinAtStart := st != state.Paused && o.SubCgroup == "" && !c.Cgroup.Rootless && !c.Cgroup.Systemd && cg.Exists()
	if joinAtStart {
		closeCg, err := startInCgroup(cg, cmd, addFd)
		if err != nil {
			return nil, err
		}
		defer closeCg()
	}
	// The intermediate joins the namespaces, forks the real process (our child,
	// through CLONE_PARENT), reports its pid and exits.
	if err := l.setPath(); err != nil {
		return nil, err
	}
	if err := cmd.Run(); err != nil {
		if joinAtStart && errors.Is(err, unix.EAGAIN) {
			return nil, fmt.Errorf("exec in container %s: no room for another process in its cgroup (pids limit reached?): %w", o.ID, err)
		}
		return nil, fmt.Errorf("exec in container %s: join its namespaces: %w", o.ID, err)
	}
	childSock.Close()
	pidW.Close()
	line, err := bufio.NewReader(pidR).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil || pid <= 0 {
		return nil, fmt.Errorf("exec in container %s: no pid from the namespace helper (%v)", o.ID, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			_ = proc.Kill()
			_, _ = proc.Wait()
		}
	}()
	// The process decodes its config while we put it into the cgroup; it goes
	// on only on MsgGo.
	xc := &initproc.ExecConfig{ID: o.ID, Process: o.Process, PreserveFds: o.PreserveFds, Seccomp: seccompCfg,
		State: c.OCIState(state.Running), Pid: pid}
	if xc.SeccompBPF, err = (<-seccompc).get(); err != nil {
		return nil, err
	}
	enc := json.NewEncoder(parentSock)
	if err := enc.Encode(initproc.Message{Type: initproc.MsgExec, Exec: xc}); err != nil {
		return nil, fmt.Errorf("exec in container %s: send process: %w", o.ID, err)
	}
	if joinAtStart {
		// Already there.
	} else if o.SubCgroup != "" {
		if err := addToSubCgroup(cg.Paths(), o.SubCgroup, pid); err != nil {
			return nil, err
		}
	} else if c.Cgroup.Rootless && !cg.Exists() {
		// A rootless container without a cgroup of its own (none could be made).
	} else if err := cg.AddPid(pid); err != nil {
		return nil, err
	}
	if err := enc.Encode(initproc.Message{Type: initproc.MsgGo}); err != nil {
		return nil, fmt.Errorf("exec in container %s: resume process: %w", o.ID, err)
	}
	// EOF without a message: the sync socket was closed by a successful execve.
	// In a paused container (--ignore-paused) the process is frozen before it
	// gets there: it starts on resume, and setup errors go to its stderr.
	var msg initproc.Message
	if st == state.Paused {
		// nothing to wait for
	} else if err := json.NewDecoder(parentSock).Decode(&msg); err == nil {
		if msg.Type == initproc.MsgError {
			return nil, fmt.Errorf("exec in container %s: %s", o.ID, msg.Error)
		}
		return nil, fmt.Errorf("exec in container %s: unexpected message %q", o.ID, msg.Type)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("exec in container %s: %w", o.ID, err)
	}
	if o.PidFile != "" {
		if err := WritePidFile(o.PidFile, pid); err != nil {
			return nil, err
		}
	}
	return proc, nil
}

// addToSubCgroup is exec --cgroup: on v2 a sub-cgroup of the container's; on
// v1, "controller:path" pairs or a path for every controller.
func addToSubCgroup(paths map[string]string, sub string, pid int) error {
	if strings.Contains(sub, "..") {
		return fmt.Errorf("--cgroup %s: must stay below the container's cgroup", sub)
	}
	for key, dir := range paths {
		target := sub
		if ctrl, p, ok := strings.Cut(sub, ":"); ok {
			if ctrl != key {
				continue
			}
			target = p
		}
		d := filepath.Join(dir, target)
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("--cgroup %s: add pid %d to %s: %w", sub, pid, d, err)
		}
	}
	return nil
}
