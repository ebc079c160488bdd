package monitor

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper collects every child of the monitor with wait4(-1). The monitor is a
// child subreaper: besides the runtime processes it spawns, it inherits the
// container's init (left behind by `create`) and any intermediate process a
// runtime orphans, and it must reap them all or they stay zombies. One
// reaper owns all waiting, so the monitor does not use os/exec (whose Wait
// would race with wait4(-1) for the same children).
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	// unclaimed keeps exits nobody waited for yet: the container's init can
	// die between the runtime's exit and the moment the monitor reads the
	// pid file. Bounded: orphans nobody will ever claim are forgotten.
	unclaimed map[int]unix.WaitStatus
	sigc      chan os.Signal
	done      chan struct{}
}

const maxUnclaimed = 64

func newReaper() *reaper {
	r := &reaper{
		waiters:   map[int]chan unix.WaitStatus{},
		unclaimed: map[int]unix.WaitStatus{},
		sigc:      make(chan os.Signal, 1),
		done:      make(chan struct{}),
	}
	signal.Notify(r.sigc, unix.SIGCHLD)
	go r.loop()
	return r
}

func (r *reaper) stop() {
	signal.Stop(r.sigc)
	close(r.done)
}

func (r *reaper) loop() {
	for {
		select {
		case <-r.sigc:
			r.reapAll()
		case <-r.done:
			return
		}
	}
}

func (r *reaper) reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		} else {
			if len(r.unclaimed) >= maxUnclaimed {
				clear(r.unclaimed)
			}
			r.unclaimed[pid] = ws
		}
		r.mu.Unlock()
	}
}

// watch returns a channel that receives pid's wait status. pid must be a
// child of the monitor (its own, or reparented to it).
func (r *reaper) watch(pid int) <-chan unix.WaitStatus {
	ch := make(chan unix.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		ch <- ws
		return ch
	}
	r.waiters[pid] = ch
	// A SIGCHLD that arrived before the registration was already handled.
	go r.kick()
	return ch
}

func (r *reaper) kick() {
	select {
	case r.sigc <- unix.SIGCHLD:
	default:
	}
}

// forget drops a waiter that will never be read.
func (r *reaper) forget(pid int) {
	r.mu.Lock()
	delete(r.waiters, pid)
	r.mu.Unlock()
}

// start spawns a process and returns its exit channel. The lock is held
// across the fork so the reaper cannot reap the child before it is known.
func (r *reaper) start(argv []string, env []string, files []*os.File, setsid bool) (int, <-chan unix.WaitStatus, error) {
	ch := make(chan unix.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	attr := &os.ProcAttr{Dir: "/", Env: env, Files: files}
	if setsid {
		attr.Sys = &syscall.SysProcAttr{Setsid: true}
	}
	p, err := os.StartProcess(argv[0], argv, attr)
	if err != nil {
		return 0, nil, err
	}
	pid := p.Pid
	// The process is reaped by wait4 here, never through p.
	_ = p.Release()
	r.waiters[pid] = ch
	return pid, ch, nil
}

// exitCode is Docker's: the status, or 128+signal.
func exitCode(ws unix.WaitStatus) (code, sig int) {
	switch {
	case ws.Exited():
		return ws.ExitStatus(), 0
	case ws.Signaled():
		return 128 + int(ws.Signal()), int(ws.Signal())
	}
	return 255, 0
}
