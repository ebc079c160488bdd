package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/copier"
	"github.com/hull-runtime/hull/image/snapshot"
)

// CopyRoot opens container c's root filesystem for `hull cp` and returns it
// with a func that releases it.
//
// A running container's root is /proc/PID/root of its init: the container's
// own mount namespace, so its volumes and bind mounts are there at their
// paths, as Docker copies them. A created or stopped container's root is
// its snapshot, mounted for the copy if it is not (after a reboot) and
// unmounted by release; it has no volumes then. The container's lock is held
// until release so that it cannot start (or be removed) under the copy.
func (e *Engine) CopyRoot(ctx context.Context, c *container.Container) (root *copier.Root, release func() error, err error) {
	where := "in container " + c.Name
	// A container can start between the state check and taking the lock,
	// or be starting (its monitor up, no pid yet): then it is looked at
	// again, for a few seconds at most.
	procErrs := 0
	for range 100 {
		st := e.State(ctx, c)
		if st.Running && st.Pid > 0 {
			f, err := e.openProcRoot(ctx, c, st.Pid)
			if err != nil {
				// It may have just exited: look again, a few times.
				if procErrs++; procErrs >= 3 {
					return nil, nil, err
				}
				continue
			}
			r := copier.NewRoot(f, where)
			return r, r.Close, nil
		}
		if st.Running {
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		unlock, err := e.Containers.Lock(c.ID)
		if err != nil {
			return nil, nil, err
		}
		if st := e.State(ctx, c); st.Running {
			unlock()
			continue
		}
		root, release, err := e.openStoppedRoot(ctx, c, where)
		if err != nil {
			unlock()
			return nil, nil, err
		}
		return root, func() error {
			defer unlock()
			return release()
		}, nil
	}
	return nil, nil, fmt.Errorf("container %s keeps changing state; try again", c.Name)
}

// openProcRoot opens /proc/PID/root of the container's init, making sure
// that the pid was not reused by another process meanwhile: a pidfd taken
// first must still be alive after the open, and the runtime must still
// report that pid for the container.
func (e *Engine) openProcRoot(ctx context.Context, c *container.Container, pid int) (*os.File, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs("/proc", &sfs); err != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
		return nil, fmt.Errorf("container %s: /proc is not procfs (%v)", c.Name, err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("container %s: its process %d: %w", c.Name, pid, err)
	}
	defer unix.Close(pidfd)
	p := "/proc/" + strconv.Itoa(pid) + "/root"
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("container %s: open its root %s: %w", c.Name, p, err)
	}
	alive := func() bool { return unix.PidfdSendSignal(pidfd, 0, nil, 0) == nil }
	if !alive() {
		unix.Close(fd)
		return nil, fmt.Errorf("container %s exited while its root was opened", c.Name)
	}
	if st := e.State(ctx, c); !st.Running || st.Pid != pid || !alive() {
		unix.Close(fd)
		return nil, fmt.Errorf("container %s changed state while its root was opened; try again", c.Name)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// openStoppedRoot opens the rootfs mountpoint of a container that is not
// running (the caller holds its lock), mounting the snapshot if needed.
func (e *Engine) openStoppedRoot(ctx context.Context, c *container.Container, where string) (*copier.Root, func() error, error) {
	stateDir, dir := e.stateDir(c.ID), e.rootfsDir(c.ID)
	_, statErr := os.Stat(stateDir)
	hadState := statErr == nil
	mounted, err := mountinfo.Mounted(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("container %s: is its root filesystem mounted: %w", c.Name, err)
	}
	undo := func() error { return nil }
	if !mounted {
		// Only empty directories go: the ones mountRootfs made.
		removeDirs := func() {
			_ = os.Remove(dir)
			if !hadState {
				_ = os.Remove(stateDir)
			}
		}
		if err := e.mountRootfs(ctx, c); err != nil {
			removeDirs()
			return nil, nil, err
		}
		undo = func() error {
			if err := snapshot.UnmountAll(dir); err != nil {
				return fmt.Errorf("container %s: unmount its root filesystem after the copy: %w", c.Name, err)
			}
			removeDirs()
			return nil
		}
	}
	root, err := copier.OpenRoot(dir, where)
	if err != nil {
		return nil, nil, errors.Join(err, undo())
	}
	return root, func() error { return errors.Join(root.Close(), undo()) }, nil
}
