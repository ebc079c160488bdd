package initproc

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// execProcess runs an `exec` process inside a running container. It only
// returns on failure.
func execProcess(x *ExecConfig) error {
	if x.Process == nil || len(x.Process.Args) == 0 {
		return errors.New("exec: no process to run")
	}
	p := &initProc{
		cfg: &Config{ID: x.ID, PreserveFds: x.PreserveFds, Spec: &specs.Spec{
			Process: x.Process,
			Linux:   &specs.Linux{Seccomp: x.Seccomp},
		}},
		fifoFd:      -1,
		notifyState: x.State,
		notifyPid:   x.Pid,
	}
	if x.Process.Terminal {
		// We are in the container's mount namespace, at its root.
		master, err := unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("exec --tty: open /dev/pts/ptmx in the container: %w", err)
		}
		if p.console, err = newPty(master, x.Process.ConsoleSize); err != nil {
			return err
		}
	}
	if x.Seccomp != nil {
		var err error
		if p.seccomp, err = loadProgram(x.SeccompBPF, x.Seccomp); err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
	}
	if x.Process.OOMScoreAdj != nil {
		if err := writeOOMScoreAdj(*x.Process.OOMScoreAdj); err != nil {
			return err
		}
	}
	if err := p.resolveExec(); err != nil {
		return err
	}
	return p.finalizeAndExec()
}
