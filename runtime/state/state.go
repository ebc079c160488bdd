// Package state keeps the per-container state directory of hull-runtime under --root:
// state.json written atomically, an exec fifo, and a flock that serialises operations
// on one container.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// File names inside a container's state directory.
const (
	stateFile = "state.json"
	lockFile  = ".lock"
	// FifoName is the exec fifo that `start` opens to release the container's init.
	FifoName = "exec.fifo"
)

// Status values, as runc prints them.
const (
	Creating = "creating"
	Created  = "created"
	Running  = "running"
	Paused   = "paused"
	Stopped  = "stopped"
)

// ErrNotExist is returned when a container id has no state directory.
var ErrNotExist = errors.New("container does not exist")

// CgroupInfo is what is needed to rebuild the container's cgroup manager later.
type CgroupInfo struct {
	Path     string            `json:"path"`
	Systemd  bool              `json:"systemd,omitempty"`
	Rootless bool              `json:"rootless,omitempty"`
	Paths    map[string]string `json:"paths,omitempty"`
}

// Container is the persisted state of one container.
type Container struct {
	ID           string            `json:"id"`
	Bundle       string            `json:"bundle"`
	Rootfs       string            `json:"rootfs"`
	Pid          int               `json:"pid"`
	PidStartTime uint64            `json:"pid_start_time"`
	Created      time.Time         `json:"created"`
	Owner        string            `json:"owner"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Cgroup       CgroupInfo        `json:"cgroup"`
	// Creating is set while `create` runs: a record left with it by a killed
	// create is a stopped container (its init died with create) whose cgroup
	// and state `delete` removes.
	Creating bool `json:"creating,omitempty"`
	// LockHeld is set (never saved) when this process holds the container's
	// lock: then no create can be running elsewhere.
	LockHeld bool `json:"-"`
	// OCIVersion, Hooks and HasProcess are the parts of the config that
	// start, state, kill and delete need; SetSpec fills them.
	OCIVersion string       `json:"oci_version,omitempty"`
	Hooks      *specs.Hooks `json:"hooks,omitempty"`
	HasProcess bool         `json:"has_process,omitempty"`
	// Config is the validated config.json, for the verbs that need more of
	// it (exec, update, checkpoint): Spec decodes it on first use. A whole
	// spec costs a process that lives a few milliseconds more than half a
	// millisecond to decode cold, on the path of every start and delete.
	Config json.RawMessage `json:"config"`
	spec   *specs.Spec
}

// SetSpec records s as the container's config.
func (c *Container) SetSpec(s *specs.Spec) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode config of %s: %w", c.ID, err)
	}
	c.Config, c.spec = raw, s
	c.OCIVersion, c.Hooks, c.HasProcess = s.Version, s.Hooks, s.Process != nil
	return nil
}

// Spec returns the container's config, decoding it on first use.
func (c *Container) Spec() (*specs.Spec, error) {
	if c.spec == nil {
		var s specs.Spec
		if err := json.Unmarshal(c.Config, &s); err != nil {
			return nil, fmt.Errorf("config of %s in its state is corrupt: %w", c.ID, err)
		}
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		c.spec = &s
	}
	return c.spec, nil
}

// Store is a --root directory.
type Store struct {
	Root string
}

var validID = regexp.MustCompile(`^[\w+\-.]+$`)

// ValidateID rejects ids that could escape the root directory or confuse tools.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("container id cannot be empty")
	}
	if len(id) > 1024 || !validID.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: use letters, digits, '_', '+', '-' and '.'", id)
	}
	return nil
}

// Dir is the state directory of a container.
func (s Store) Dir(id string) string { return filepath.Join(s.Root, id) }

// Lock takes the container's exclusive lock; the returned func releases it.
// The lock file lives in the state dir, so a container being created holds it
// from the moment its dir exists.
func (s Store) Lock(id string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.Dir(id), lockFile), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("lock container %s: %w", id, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock container %s: %w", id, err)
	}
	return func() { f.Close() }, nil
}

// CreateDir makes a new state directory, failing if the id is taken.
func (s Store) CreateDir(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := os.MkdirAll(s.Root, 0o711); err != nil {
		return fmt.Errorf("create state root %s: %w", s.Root, err)
	}
	if err := os.Mkdir(s.Dir(id), 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("container with id %q already exists", id)
		}
		return fmt.Errorf("create state dir: %w", err)
	}
	return nil
}

// Save writes state.json atomically (temp file + rename). The state root is
// normally on tmpfs, where fsync buys nothing, so it is skipped there.
func (s Store) Save(c *Container) error {
	dir := s.Dir(c.ID)
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode state of %s: %w", c.ID, err)
	}
	tmp, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return fmt.Errorf("write state of %s: %w", c.ID, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write state of %s: %w", c.ID, err)
	}
	if !onTmpfs(dir) {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("sync state of %s: %w", c.ID, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state of %s: %w", c.ID, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("write state of %s: %w", c.ID, err)
	}
	return nil
}

func onTmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// Load reads a container's state.json.
func (s Store) Load(id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(id), stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	var c Container
	if err := json.Unmarshal(data, &c); err != nil || len(c.Config) == 0 {
		if err == nil {
			err = errors.New("no config")
		}
		return nil, fmt.Errorf("state of %s is corrupt (%s): %w", id, filepath.Join(s.Dir(id), stateFile), err)
	}
	return &c, nil
}

// Remove deletes a container's state directory.
func (s Store) Remove(id string) error {
	if err := os.RemoveAll(s.Dir(id)); err != nil {
		return fmt.Errorf("remove state of %s: %w", id, err)
	}
	return nil
}

// List returns the ids that have a state.json, sorted.
func (s Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", s.Root, err)
	}
	var ids []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.Root, e.Name(), stateFile)); err == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// FifoPath is the exec fifo of a container.
func (s Store) FifoPath(id string) string { return filepath.Join(s.Dir(id), FifoName) }

// ProcStartTime reads field 22 (starttime) of /proc/<pid>/stat, which with the pid
// identifies a process across pid reuse. It also reports whether it is a zombie.
func ProcStartTime(pid int) (start uint64, zombie bool, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	// comm may contain spaces and parens: fields start after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, false, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return start, f[0] == "Z" || f[0] == "X", nil
}

// Locked reports whether another process holds the container's lock (a
// create still running).
func (s Store) Locked(id string) bool {
	f, err := os.Open(filepath.Join(s.Dir(id), lockFile))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return true
	}
	return false
}

// Alive reports whether the container's init is still the process it recorded.
func (c *Container) Alive() bool {
	if c.Pid <= 0 {
		return false
	}
	start, zombie, err := ProcStartTime(c.Pid)
	return err == nil && !zombie && start == c.PidStartTime
}

// OCIState is the runtime-spec state of the container (for hooks), with status set by the caller.
func (c *Container) OCIState(status string) *specs.State {
	pid := c.Pid
	if status == Stopped {
		pid = 0
	}
	return &specs.State{
		Version:     specs.Version,
		ID:          c.ID,
		Status:      specs.ContainerState(status),
		Pid:         pid,
		Bundle:      c.Bundle,
		Annotations: c.Annotations,
	}
}
