package container

import (
	"errors"
	"fmt"
	"os"

	"github.com/hull-runtime/hull/runtime/state"
)

// Pause freezes every process of a running container through its cgroup
// (the v1 freezer or cgroup.freeze on v2); `state` then reports "paused".
//
// Unlike runc, a created container cannot be paused: its init waits on the
// exec fifo, and a frozen init would never let `start` finish.
func (rt *Runtime) Pause(id string) error {
	c, unlock, err := rt.load(id)
	if err != nil {
		return err
	}
	defer unlock()
	switch st := rt.Status(c); st {
	case state.Running:
	case state.Paused:
		return fmt.Errorf("cannot pause container %s: it is already paused", id)
	case state.Created:
		return fmt.Errorf("cannot pause container %s: it is created, not running (start it first)", id)
	default:
		return fmt.Errorf("cannot pause container %s: container not running (status %s)", id, st)
	}
	cg, err := rt.cgroup(c)
	if err != nil {
		return err
	}
	if err := cg.Freeze(); err != nil {
		return fmt.Errorf("pause container %s: %w", id, err)
	}
	// The init may have exited between the status check and the freeze: a
	// frozen empty cgroup is not a paused container (runc checks this too).
	if pids, err := cg.Pids(); (err == nil && len(pids) == 0) || !c.Alive() {
		_ = cg.Thaw()
		return fmt.Errorf("cannot pause container %s: its processes have exited", id)
	}
	return nil
}

// Resume thaws a paused container.
func (rt *Runtime) Resume(id string) error {
	c, unlock, err := rt.load(id)
	if err != nil {
		return err
	}
	defer unlock()
	if st := rt.Status(c); st != state.Paused {
		return fmt.Errorf("cannot resume container %s: container not paused (status %s)", id, st)
	}
	cg, err := rt.cgroup(c)
	if err != nil {
		return err
	}
	if err := cg.Thaw(); err != nil {
		return fmt.Errorf("resume container %s: %w", id, err)
	}
	return nil
}

// Processes returns the host pids of every process in the container's
// cgroup (and its sub-cgroups), for `ps`. A stopped container whose cgroup
// is already gone has none.
func (rt *Runtime) Processes(id string) ([]int, error) {
	if err := state.ValidateID(id); err != nil {
		return nil, err
	}
	c, err := rt.Store.Load(id)
	if err != nil {
		return nil, err
	}
	cg, err := rt.cgroup(c)
	if err != nil {
		return nil, err
	}
	pids, err := cg.Pids()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !c.Alive() {
			return nil, nil
		}
		return nil, err
	}
	return pids, nil
}
