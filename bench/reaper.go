package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// exit is what wait4 reported for one process.
type exit struct {
	status syscall.WaitStatus
	rusage syscall.Rusage
	at     time.Time // taken right after wait4 returned
}

// cpu is user+sys of the process and every descendant it waited for.
func (e exit) cpu() time.Duration {
	return time.Duration(e.rusage.Utime.Nano() + e.rusage.Stime.Nano())
}

// reaper is the only waiter in the inner bench process. The process is a
// child subreaper, so a detached container's process (left behind by
// `create` or `run -d`) is reparented to it: reaping it here gives its
// rusage too, which for runc includes the `runc init` Go start-up that
// `create` alone would hide. Every child is therefore started through
// spawn (never os/exec, whose Wait would race with wait4(-1)).
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan exit
	orphans map[int]exit // reaped, nobody waiting (yet)
	kick    chan struct{}
	sigchld chan os.Signal
	env     []string
}

func newReaper(env []string) (*reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("PR_SET_CHILD_SUBREAPER: %w", err)
	}
	r := &reaper{
		waiting: map[int]chan exit{},
		orphans: map[int]exit{},
		kick:    make(chan struct{}, 1),
		sigchld: make(chan os.Signal, 1),
		env:     env,
	}
	signal.Notify(r.sigchld, syscall.SIGCHLD)
	go r.loop()
	return r, nil
}

func (r *reaper) loop() {
	for {
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		pid, err := syscall.Wait4(-1, &ws, syscall.WALL, &ru)
		now := time.Now()
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.ECHILD):
			// No child now: wait for a spawn, a SIGCHLD, or poll for
			// orphans reparented to us (no signal announces those).
			select {
			case <-r.kick:
			case <-r.sigchld:
			case <-time.After(5 * time.Millisecond):
			}
			continue
		case err != nil:
			time.Sleep(time.Millisecond)
			continue
		}
		if !ws.Exited() && !ws.Signaled() {
			continue // stopped or continued: not an exit
		}
		e := exit{status: ws, rusage: ru, at: now}
		r.mu.Lock()
		if ch, ok := r.waiting[pid]; ok {
			delete(r.waiting, pid)
			ch <- e
		} else {
			r.orphans[pid] = e
		}
		r.mu.Unlock()
	}
}

// expect returns a channel that receives the exit of pid, a live process
// that is (or will be) our child, e.g. a container's init after `create`.
func (r *reaper) expect(pid int) chan exit {
	ch := make(chan exit, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.orphans[pid]; ok {
		delete(r.orphans, pid)
		// The caller knows pid is alive, or has just been: a record is
		// only trusted if the pid is gone now, otherwise it is a stale one
		// from an earlier process with the same number.
		if unix.Kill(pid, 0) == unix.ESRCH {
			ch <- e
			return ch
		}
	}
	r.waiting[pid] = ch
	return ch
}

// forget drops interest in pid (its exit, when reaped, becomes an orphan record).
func (r *reaper) forget(pid int) {
	r.mu.Lock()
	delete(r.waiting, pid)
	r.mu.Unlock()
}

// spawnOpts says where a child's stdio goes.
type spawnOpts struct {
	stdout  *os.File // nil: /dev/null
	stderr  *os.File // nil: /dev/null
	timeout time.Duration
}

var devNull *os.File

// run starts argv (stdin /dev/null), waits for it and returns its exit and
// wall time, measured from just before fork to just after wait4.
func (r *reaper) run(argv []string, o spawnOpts) (exit, time.Duration, error) {
	stdout, stderr := devNull, devNull
	if o.stdout != nil {
		stdout = o.stdout
	}
	if o.stderr != nil {
		stderr = o.stderr
	}
	attr := &syscall.ProcAttr{
		Env:   r.env,
		Files: []uintptr{devNull.Fd(), stdout.Fd(), stderr.Fd()},
		// Own process group: a terminal ^C reaches the bench, which
		// stops cleanly, and not a runtime in the middle of a create.
		Sys: &syscall.SysProcAttr{Setpgid: true},
	}
	ch := make(chan exit, 1)
	r.mu.Lock()
	start := time.Now()
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err != nil {
		r.mu.Unlock()
		return exit{}, 0, fmt.Errorf("%s: %w", argv[0], err)
	}
	delete(r.orphans, pid)
	r.waiting[pid] = ch
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	timeout := o.timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case e := <-ch:
		return e, e.at.Sub(start), nil
	case <-t.C:
		_ = unix.Kill(-pid, unix.SIGKILL)
		_ = unix.Kill(pid, unix.SIGKILL)
		e := <-ch
		return e, e.at.Sub(start), fmt.Errorf("%s: killed after %v", argv[0], timeout)
	}
}
