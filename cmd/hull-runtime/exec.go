package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/container"
	"github.com/hull-runtime/hull/runtime/state"
)

// multiFlag collects a repeatable option.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdExec(g *globals, args []string) error {
	fs := newFlags("exec")
	var (
		consoleSocket, pidfdSocket, cwd, user, processFile, pidFile, label, apparmor string
		env, gids, capsAdd, cgroups                                                  multiFlag
		tty, detach, noNewPrivs, ignorePaused                                        bool
		preserveFds                                                                  int
	)
	fs.StringVar(&consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fs.StringVar(&pidfdSocket, "pidfd-socket", "", "accepted for runc compatibility; unused")
	fs.StringVar(&cwd, "cwd", "", "working directory in the container")
	fs.Var(&env, "env", "set an environment variable (repeatable)")
	fs.Var(&env, "e", "set an environment variable (repeatable)")
	fs.BoolVar(&tty, "tty", false, "allocate a pseudo-TTY")
	fs.BoolVar(&tty, "t", false, "allocate a pseudo-TTY")
	fs.StringVar(&user, "user", "", "UID[:GID] to run as")
	fs.StringVar(&user, "u", "", "UID[:GID] to run as")
	fs.Var(&gids, "additional-gids", "additional gid (repeatable)")
	fs.Var(&gids, "g", "additional gid (repeatable)")
	fs.StringVar(&processFile, "process", "", "process.json describing the process")
	fs.StringVar(&processFile, "p", "", "process.json describing the process")
	fs.BoolVar(&detach, "detach", false, "do not wait for the process")
	fs.BoolVar(&detach, "d", false, "do not wait for the process")
	fs.StringVar(&pidFile, "pid-file", "", "write the process's pid to this file")
	fs.StringVar(&label, "process-label", "", "SELinux label (unsupported: SELinux is not enabled)")
	fs.StringVar(&apparmor, "apparmor", "", "AppArmor profile (unsupported: AppArmor is not enabled)")
	fs.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	fs.Var(&capsAdd, "cap", "add a capability (repeatable)")
	fs.Var(&capsAdd, "c", "add a capability (repeatable)")
	fs.IntVar(&preserveFds, "preserve-fds", 0, "pass this many fds after stdio to the process")
	fs.Var(&cgroups, "cgroup", "sub-cgroup to run in (repeatable, [controller:]path)")
	fs.BoolVar(&ignorePaused, "ignore-paused", false, "exec even if the container is paused")
	// Options end at the container id: what follows is the command and its own flags.
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	pos := fs.Args()
	if len(pos) > 0 && pos[0] == "--" {
		pos = pos[1:]
	}
	if len(pos) < 1 {
		return errors.New("exec: container id is required")
	}
	id, command := pos[0], pos[1:]
	rt := g.runtime()
	if err := state.ValidateID(id); err != nil {
		return err
	}
	c, err := rt.Store.Load(id)
	if err != nil {
		return err
	}
	if label != "" {
		return errors.New("exec: --process-label: SELinux is not supported on this host")
	}
	if apparmor != "" {
		return errors.New("exec: --apparmor: AppArmor is not supported on this host")
	}

	var proc *specs.Process
	if processFile != "" {
		data, err := os.ReadFile(processFile)
		if err != nil {
			return fmt.Errorf("exec --process: %w", err)
		}
		proc = new(specs.Process)
		if err := json.Unmarshal(data, proc); err != nil {
			return fmt.Errorf("exec --process %s: %w", processFile, err)
		}
	} else {
		if len(command) == 0 {
			return errors.New("exec: no command given (hull-runtime exec ID COMMAND [ARGS...] or --process FILE)")
		}
		spec, err := c.Spec()
		if err != nil {
			return err
		}
		base := specs.Process{}
		if spec.Process != nil {
			base = *spec.Process
		}
		proc = &base
		proc.Args = command
		proc.Terminal = tty
		proc.ConsoleSize = nil
		proc.Env = append(append([]string{}, base.Env...), env...)
		if cwd != "" {
			proc.Cwd = cwd
		}
		if user != "" {
			u, g, hasG, err := parseUser(user)
			if err != nil {
				return err
			}
			proc.User.UID = u
			if hasG {
				proc.User.GID = g
			}
		}
		if len(gids) > 0 {
			proc.User.AdditionalGids = nil
			for _, s := range gids {
				v, err := strconv.ParseUint(s, 10, 32)
				if err != nil {
					return fmt.Errorf("exec --additional-gids %q: not a number", s)
				}
				proc.User.AdditionalGids = append(proc.User.AdditionalGids, uint32(v))
			}
		}
		if len(capsAdd) > 0 {
			cp := specs.LinuxCapabilities{}
			if base.Capabilities != nil {
				cp = *base.Capabilities
			}
			for _, cname := range capsAdd {
				cname = strings.ToUpper(cname)
				if !strings.HasPrefix(cname, "CAP_") {
					cname = "CAP_" + cname
				}
				cp.Bounding = append(cp.Bounding, cname)
				cp.Effective = append(cp.Effective, cname)
				cp.Permitted = append(cp.Permitted, cname)
			}
			proc.Capabilities = &cp
		}
		if noNewPrivs {
			proc.NoNewPrivileges = true
		}
	}
	if proc.Cwd == "" {
		proc.Cwd = "/"
	}

	var relay *ttyRelay
	if proc.Terminal && consoleSocket == "" {
		if detach {
			return errors.New("exec: cannot allocate a terminal for a detached process without --console-socket")
		}
		if relay, err = newTTYRelay(); err != nil {
			return err
		}
		defer relay.close()
		consoleSocket = relay.path()
	}
	sigc := catchSignals(!detach)
	p, err := rt.Exec(container.ExecOptions{
		ID: id, Process: proc, PidFile: pidFile, ConsoleSocket: consoleSocket, PreserveFds: preserveFds,
		SubCgroup: strings.Join(cgroups, ","), IgnorePaused: ignorePaused, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	if err != nil {
		return err
	}
	if relay != nil {
		if err := relay.start(); err != nil {
			_ = p.Kill()
			return err
		}
	}
	if detach {
		return p.Release()
	}
	return waitForwarding(p, sigc, relay)
}

// waitForwarding waits for a child, forwarding our signals to it, and returns
// its exit status as an exitError (like runc: 128+n for a signal).
func waitForwarding(p *os.Process, sigs *signals, relay *ttyRelay) error {
	sigc := sigs.wait()
	// The wait can last as long as the container: collect garbage again, but
	// not on the start path of a short container.
	gcOn := time.AfterFunc(5*time.Second, func() { debug.SetGCPercent(100) })
	defer gcOn.Stop()

	done := make(chan *os.ProcessState, 1)
	go func() {
		ps, _ := p.Wait()
		done <- ps
	}()
	for {
		select {
		case s := <-sigc:
			sig, ok := s.(unix.Signal)
			if !ok || sig == unix.SIGCHLD || sig == unix.SIGURG || sig == unix.SIGPIPE {
				continue
			}
			_ = p.Signal(sig)
		case ps := <-done:
			if relay != nil {
				relay.drain()
			}
			code := 255
			if ps != nil {
				ws := ps.Sys().(syscall.WaitStatus)
				switch {
				case ws.Exited():
					code = ws.ExitStatus()
				case ws.Signaled():
					code = 128 + int(ws.Signal())
				}
			}
			if code != 0 {
				return exitError(code)
			}
			return nil
		}
	}
}

// parseUser parses "uid[:gid]" (numeric, as runc's exec --user).
func parseUser(s string) (uid, gid uint32, hasGid bool, err error) {
	us, gs, hasGid := strings.Cut(s, ":")
	u, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, false, fmt.Errorf("exec --user %q: want numeric UID[:GID]", s)
	}
	if hasGid {
		g, err := strconv.ParseUint(gs, 10, 32)
		if err != nil {
			return 0, 0, false, fmt.Errorf("exec --user %q: want numeric UID[:GID]", s)
		}
		gid = uint32(g)
	}
	return uint32(u), gid, hasGid, nil
}

// signals is a channel of caught signals whose set-up may still be running.
type signals struct {
	c     chan os.Signal
	ready chan struct{}
}

// catchSignals starts catching forwardedSignals in the background (when on).
func catchSignals(on bool) *signals {
	s := &signals{c: make(chan os.Signal, 16), ready: make(chan struct{})}
	if !on {
		close(s.ready)
		return s
	}
	go func() {
		signal.Notify(s.c, forwardedSignals...)
		close(s.ready)
	}()
	return s
}

func (s *signals) wait() chan os.Signal {
	<-s.ready
	return s.c
}

// forwardedSignals are relayed to the container's process by run, exec and
// restore. Not every signal: catching all of them (signal.Notify with no
// list) costs milliseconds of start-up, and SIGCHLD, SIGPIPE, SIGURG and the
// real-time signals Go uses internally are ours.
var forwardedSignals = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGWINCH, unix.SIGCONT, unix.SIGALRM, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU,
	unix.SIGVTALRM, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGIO, unix.SIGPWR,
}
