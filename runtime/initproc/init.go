package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/seccomp"
)

// Main is the entry point of `hull-runtime init`. It never returns: it either execs
// the container process or exits non-zero after reporting why to the parent.
func Main() {
	// Namespaces set per thread (cgroup), capabilities and seccomp must all apply
	// to the thread that finally calls execve: stay on the main thread.
	runtime.LockOSThread()
	if os.Getenv(EnvUsernsHolder) != "" {
		for {
			_ = unix.Pause()
		}
	}
	// Until create has finished, die with it: a create killed halfway must not
	// leave an init waiting forever.
	// (If it died before the prctl, the sync socket is at EOF and we exit on
	// the next read.)
	if os.Getenv(EnvDieWithParent) != "" {
		os.Unsetenv(EnvDieWithParent)
		_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	}
	sync, err := fdFromEnv(EnvSyncFd)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hull-runtime init: %v (init is started by hull-runtime create, not by hand)\n", err)
		os.Exit(1)
	}
	sock := os.NewFile(uintptr(sync), "sync")
	enc := json.NewEncoder(sock)
	dec := json.NewDecoder(sock)
	fail := func(err error) {
		_ = enc.Encode(Message{Type: MsgError, Error: err.Error()})
		os.Exit(1)
	}

	var msg Message
	if err := dec.Decode(&msg); err != nil {
		fail(fmt.Errorf("read config from parent: %v", err))
	}
	if msg.Type == MsgExec && msg.Exec != nil {
		var goMsg Message
		if err := dec.Decode(&goMsg); err != nil || goMsg.Type != MsgGo {
			os.Exit(1) // the parent failed to put us in the container's cgroup
		}
		if err := joinMemoryCgroup(); err != nil {
			fail(err)
		}
		// The sync socket is close-on-exec: EOF tells the parent the exec happened.
		fail(execProcess(msg.Exec))
	}
	if msg.Type != MsgConfig || msg.Config == nil {
		fail(fmt.Errorf("unexpected first message %q from parent", msg.Type))
	}
	var goMsg Message
	if err := dec.Decode(&goMsg); err != nil || goMsg.Type != MsgGo {
		// The parent failed to set up our cgroups and is killing us.
		os.Exit(1)
	}
	if err := joinMemoryCgroup(); err != nil {
		fail(err)
	}
	p := &initProc{cfg: msg.Config, enc: enc, dec: dec}
	if err := p.setup(); err != nil {
		fail(err)
	}
	if err := enc.Encode(Message{Type: MsgReady}); err != nil {
		os.Exit(1)
	}
	var created Message
	if err := dec.Decode(&created); err != nil || (created.Type != MsgCreated && created.Type != MsgStart) {
		os.Exit(1) // create failed after all and kills us
	}
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0)
	startNow := created.Type == MsgStart
	if startNow {
		unix.Close(p.fifoFd)
		p.fifoFd = -1
	} else {
		sock.Close()
		if err := p.waitStart(); err != nil {
			// Nobody listens on the sync socket any more: the container's stderr is the
			// only place left to say why the process did not start.
			fmt.Fprintf(os.Stderr, "hull-runtime init: %v\n", err)
			os.Exit(127)
		}
	}
	if msg.Config.Spec.Process == nil {
		os.Exit(0)
	}
	// Like runc's init, lead a session of our own (a terminal container gets
	// one in setControllingTerminal): CRIU cannot checkpoint a container
	// whose session leader is outside its pid namespace.
	if !p.sessionLeader {
		_, _ = unix.Setsid()
	}
	err = p.finalizeAndExec()
	if startNow {
		fail(err)
	}
	// `start` is still reading the fifo: it reports this as its own error.
	_, _ = unix.Write(p.fifoFd, append([]byte{StartFailed}, err.Error()...))
	fmt.Fprintf(os.Stderr, "hull-runtime init: %v\n", err)
	os.Exit(127)
}

func fdFromEnv(name string) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return -1, fmt.Errorf("%s is not set", name)
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 0 {
		return -1, fmt.Errorf("%s=%q is not an fd", name, v)
	}
	os.Unsetenv(name)
	return fd, nil
}

// initProc carries the init's state between setup steps.
type initProc struct {
	cfg *Config
	enc *json.Encoder
	dec *json.Decoder

	procFd  int      // O_PATH fd of the host /proc, valid after pivot_root
	fifoFd  int      // O_PATH fd of the exec fifo; after start, its write end
	console *os.File // pty slave of an exec'd process, made its stdio before exec
	// sessionLeader: the init already made its pty the controlling terminal.
	sessionLeader bool
	exePath       string // container path of the program, resolved before start
	// seccomp is compiled during setup: errors surface at create, and nothing
	// needs to allocate after process.rlimits (RLIMIT_AS) are applied.
	seccomp *seccomp.Program
	// notifyState is sent with a seccomp notify fd (the container state and
	// the process's host pid).
	notifyState *specs.State
	notifyPid   int
}

func (p *initProc) setup() error {
	spec := p.cfg.Spec
	var err error
	p.procFd, err = unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc: %w", err)
	}
	if p.fifoFd, err = fdFromEnv(EnvFifoFd); err != nil {
		return err
	}
	if p.cfg.NewCgroupNS {
		// The parent has put us in our cgroup: the namespace's root is that cgroup.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if spec.Linux != nil {
		if err := applySysctls(spec.Linux.Sysctl); err != nil {
			return err
		}
	}
	if spec.Process != nil && spec.Process.OOMScoreAdj != nil {
		if err := writeOOMScoreAdj(*spec.Process.OOMScoreAdj); err != nil {
			return err
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("hostname: sethostname %q: %w", spec.Hostname, err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("domainname: setdomainname %q: %w", spec.Domainname, err)
		}
	}
	if !p.cfg.NoNewKeyring {
		// A fresh session keyring, so the container cannot read the host's keys.
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + p.cfg.ID); err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	r := newRootfs(p.cfg)
	defer r.close()
	if !p.cfg.NoMountNS {
		if err := r.prepare(); err != nil {
			return err
		}
		if spec.Process != nil && spec.Process.Terminal {
			tty, err := r.setupConsole()
			if err != nil {
				return err
			}
			// The pty becomes our stdio now, as with runc: the caller's stdio
			// must not stay open while the container waits in "created"
			// (containerd's shim waits for create's pipes to close).
			if err := setControllingTerminal(tty); err != nil {
				return err
			}
			p.sessionLeader = true
		}
	} else if spec.Process != nil && spec.Process.Terminal {
		return errors.New("process.terminal needs a mount namespace (linux.namespaces) for the container's devpts")
	}
	// prestart and createRuntime hooks run in the runtime's namespaces: the parent runs them.
	if err := p.enc.Encode(Message{Type: MsgHooks}); err != nil {
		return fmt.Errorf("ask parent to run hooks: %w", err)
	}
	var msg Message
	if err := p.dec.Decode(&msg); err != nil {
		return fmt.Errorf("wait for parent hooks: %w", err)
	}
	if msg.Type != MsgHooksOK {
		return fmt.Errorf("parent aborted the create: %s", msg.Error)
	}
	p.notifyState, p.notifyPid = msg.State, msg.State.Pid
	if spec.Hooks != nil && len(spec.Hooks.CreateContainer) > 0 {
		if err := runHooks("createContainer", spec.Hooks.CreateContainer, msg.State); err != nil {
			return err
		}
	}
	if p.cfg.NoMountNS {
		if err := unix.Chroot(p.cfg.Rootfs); err != nil {
			return fmt.Errorf("chroot %s: %w", p.cfg.Rootfs, err)
		}
		if err := unix.Chdir("/"); err != nil {
			return fmt.Errorf("chdir /: %w", err)
		}
	} else if err := r.finish(); err != nil {
		return err
	}
	if spec.Process == nil {
		return nil
	}
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		if p.seccomp, err = loadProgram(p.cfg.SeccompBPF, spec.Linux.Seccomp); err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
	}
	return p.resolveExec()
}

// writeOOMScoreAdj goes through the host's /proc (valid before pivot_root; for
// exec, through "/proc/self" which procfs resolves for the caller).
func writeOOMScoreAdj(v int) error {
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(v)), 0); err != nil {
		return fmt.Errorf("process.oomScoreAdj: write /proc/self/oom_score_adj: %w", err)
	}
	return nil
}

// loadProgram decodes the filter the parent compiled, or compiles it here.
func loadProgram(bpf []byte, sc *specs.LinuxSeccomp) (*seccomp.Program, error) {
	if len(bpf) == 0 {
		return seccomp.Compile(sc)
	}
	p := new(seccomp.Program)
	return p, p.UnmarshalBinary(bpf)
}

// joinMemoryCgroup moves the init into the container's cgroup in the v1
// memory hierarchy, once its config is decoded: it writes "0" into the
// "tasks" fd the parent passed (EnvMemoryTasks). The nsenter constructor
// joined the other v1 hierarchies before the Go runtime started; this one
// waits so that the runtime's start-up is not charged to the container (a
// container with a small memory limit must not pay for its runtime).
// Writing "0" moves the calling thread only, without the global lock that
// moving a pid takes; it is the main thread, locked, which is the leader
// whose memory cgroup every page the process touches is charged to, and the
// thread that execs the container process.
func joinMemoryCgroup() error {
	v := os.Getenv(EnvMemoryTasks)
	if v == "" {
		return nil
	}
	os.Unsetenv(EnvMemoryTasks)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return fmt.Errorf("join memory cgroup: bad fd %q in %s", v, EnvMemoryTasks)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("0")); err != nil {
		name, _ := os.Readlink("/proc/self/fd/" + v)
		return fmt.Errorf("join cgroup %s: %w", name, err)
	}
	return nil
}
