package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"unsafe"

	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/caps"
	"github.com/hull-runtime/hull/runtime/hooks"
)

func runHooks(kind string, hs []specs.Hook, st *specs.State) error {
	return hooks.Run(kind, hs, st)
}

func envValue(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// resolveExec finds the program in the container before create reports success,
// so a typo in process.args fails `create`, not a later `start`, as with runc.
func (p *initProc) resolveExec() error {
	proc := p.cfg.Spec.Process
	name := proc.Args[0]
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return fmt.Errorf("process.args[0] %q: %w", name, err)
		}
		p.exePath = name
		return nil
	}
	pathEnv, ok := envValue(proc.Env, "PATH")
	if !ok {
		pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		c := path.Join(dir, name)
		if checkExecutable(c) == nil {
			p.exePath = c
			return nil
		}
	}
	return fmt.Errorf("process.args[0]: exec: %q: executable file not found in $PATH", name)
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode().Perm()&0o111 == 0 {
		return errors.New("permission denied (not executable)")
	}
	return nil
}

// waitStart blocks until `start` opens the exec fifo. The fifo is reached through
// the host's /proc, held open since before pivot_root, so the container's /proc
// (which it may not even mount) is never trusted.
func (p *initProc) waitStart() error {
	fd, err := unix.Openat(p.procFd, "self/fd/"+strconv.Itoa(p.fifoFd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := unix.Write(fd, []byte("0")); err != nil {
		unix.Close(fd)
		return fmt.Errorf("write exec fifo: %w", err)
	}
	// fd stays open (close-on-exec): `start` sees EOF only once execve has
	// happened (or the init died), so poststart hooks run after the exec; a
	// failure before the exec is written there for `start` to report.
	unix.Close(p.fifoFd)
	p.fifoFd = fd
	return nil
}

func (p *initProc) finalizeAndExec() error {
	spec := p.cfg.Spec
	proc := spec.Process
	if spec.Hooks != nil && len(spec.Hooks.StartContainer) > 0 {
		st := &specs.State{Version: specs.Version, ID: p.cfg.ID, Status: specs.StateCreated, Pid: os.Getpid(), Bundle: p.cfg.Bundle, Annotations: spec.Annotations}
		if err := runHooks("startContainer", spec.Hooks.StartContainer, st); err != nil {
			return err
		}
	}
	if p.console != nil {
		if err := setControllingTerminal(p.console); err != nil {
			return err
		}
	}
	for _, rl := range proc.Rlimits {
		if err := setRlimit(rl); err != nil {
			return err
		}
	}
	// Before the uid change and capability drop: real-time policies and I/O
	// classes may need CAP_SYS_NICE / CAP_SYS_ADMIN.
	if err := setScheduler(proc.Scheduler); err != nil {
		return err
	}
	if err := setIOPriority(proc.IOPriority); err != nil {
		return err
	}
	if lx := spec.Linux; lx != nil {
		if err := setPersonality(lx.Personality); err != nil {
			return err
		}
		if err := setMemoryPolicy(lx.MemoryPolicy); err != nil {
			return err
		}
	}
	if proc.User.Umask != nil {
		unix.Umask(int(*proc.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	env := proc.Env
	if _, ok := envValue(env, "HOME"); !ok {
		env = append(env, "HOME="+homeDir(int(proc.User.UID)))
	}
	cwd := proc.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("process.cwd %s: %w", cwd, err)
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("process.cwd %s: chdir: %w", cwd, err)
	}
	// CVE-2024-21626: a cwd reached through a leaked fd would be outside the root.
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("process.cwd %s resolves outside the container root", cwd)
	}
	// No fd of the runtime may reach the container: everything above the preserved
	// fds is closed on exec.
	if err := unix.CloseRange(uint(3+p.cfg.PreserveFds), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark fds close-on-exec: %w", err)
	}
	var capSet *caps.Set
	if proc.Capabilities != nil {
		var err error
		if capSet, err = caps.FromSpec(proc.Capabilities); err != nil {
			return err
		}
		if err := capSet.ApplyBounding(); err != nil {
			return err
		}
	}
	if p.seccomp != nil && !proc.NoNewPrivileges {
		// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while
		// still privileged, as runc does.
		if err := p.loadSeccomp(); err != nil {
			return err
		}
	}
	if err := setUser(proc.User); err != nil {
		return err
	}
	if capSet != nil {
		if err := capSet.ApplyRest(); err != nil {
			return err
		}
	}
	if proc.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("process.noNewPrivileges: %w", err)
		}
		if p.seccomp != nil {
			if err := p.loadSeccomp(); err != nil {
				return err
			}
		}
	}
	// An exec'd process dies with `hull-runtime exec` until here, not after.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0)
	resetIgnoredSignals()
	if err := unix.Exec(p.exePath, proc.Args, env); err != nil {
		return fmt.Errorf("exec %s: %w", p.exePath, err)
	}
	return nil
}

func homeDir(uid int) string {
	users, err := user.ParsePasswdFileFilter("/etc/passwd", func(u user.User) bool { return u.Uid == uid })
	if err == nil && len(users) > 0 && users[0].Home != "" {
		return users[0].Home
	}
	return "/"
}

func setControllingTerminal(tty *os.File) error {
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(int(tty.Fd()), unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(tty.Fd()), fd, 0); err != nil {
			return fmt.Errorf("dup pty onto fd %d: %w", fd, err)
		}
	}
	return tty.Close()
}

var rlimitTypes = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

func setRlimit(rl specs.POSIXRlimit) error {
	res, ok := rlimitTypes[rl.Type]
	if !ok {
		return fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
	}
	if err := unix.Prlimit(0, res, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}, nil); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("process.rlimits %s: raising the hard limit to %d needs CAP_SYS_RESOURCE: %w", rl.Type, rl.Hard, err)
		}
		return fmt.Errorf("process.rlimits %s: %w", rl.Type, err)
	}
	return nil
}

// setUser switches to process.user. caps.Set.ApplyBounding has set keepcaps, so
// the permitted set survives for ApplyRest.
func setUser(u specs.User) error {
	groups := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int(g))
	}
	if err := unix.Setgroups(groups); err != nil {
		// In a user namespace with setgroups denied an empty list is the only option.
		if !(errors.Is(err, unix.EPERM) && len(groups) == 0) {
			return fmt.Errorf("process.user.additionalGids: setgroups: %w", err)
		}
	}
	// The raw syscalls change only this thread; that is fine: it is the thread that execs.
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("process.user.gid %d: setresgid: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("process.user.uid %d: setresuid: %w", u.UID, e)
	}
	return nil
}

// loadSeccomp installs the compiled filter and, for SCMP_ACT_NOTIFY, sends the
// notify fd with the container's state to the listener, as runc does.
func (p *initProc) loadSeccomp() error {
	fd, err := p.seccomp.Load()
	if err != nil {
		return fmt.Errorf("linux.seccomp: %w", err)
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	conn, err := fdFromEnv(EnvSeccompFd)
	if err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath: no connection to the listener: %w", err)
	}
	defer unix.Close(conn)
	msg := specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      p.notifyPid,
		Metadata: p.cfg.Spec.Linux.Seccomp.ListenerMetadata,
	}
	if p.notifyState != nil {
		msg.State = *p.notifyState
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("linux.seccomp: encode listener message: %w", err)
	}
	if err := unix.Sendmsg(conn, data, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath: send notify fd: %w", err)
	}
	return nil
}

// resetIgnoredSignals gives the container's process default dispositions
// for the signals whoever started the runtime ignored: execve keeps
// ignored signals ignored (caught ones it resets), and a container must not
// inherit, say, an ignored SIGTERM from the engine's shell. Only signals that
// are ignored change, so none of the Go runtime's handlers is touched on
// the way to execve. A seccomp profile that refuses rt_sigaction leaves them.
func resetIgnoredSignals() {
	// The kernel's struct sigaction starts with the handler on every
	// architecture; zeros are SIG_DFL with no flags and an empty mask.
	var dfl, old [4]uint64
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
			continue
		}
		if old[0] == 1 { // SIG_IGN
			_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
		}
	}
}
