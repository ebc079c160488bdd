// Package cgroups puts a container's processes into cgroups and applies the
// resource limits of its runtime-spec config.
//
// It is a thin adapter over github.com/opencontainers/cgroups (runc's cgroup
// code): the fs driver on cgroup v1 and hybrid hosts, fs2 on the cgroup v2
// unified hierarchy, and the systemd drivers when Config.Systemd is set. This
// package converts and validates runtime-spec resources, resolves
// linux.cgroupsPath like runc does, and adds the few things the library leaves
// to its callers (signalling every process, availability checks with errors
// that name the spec field).
//
// On a hybrid host (v1 controllers plus a cgroup2 mount at
// /sys/fs/cgroup/unified) the fs driver also creates and joins the container's
// cgroup in the unified hierarchy and in the name=systemd hierarchy; Paths
// reports those under the keys "" and "name=systemd", and Destroy removes them.
package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	// Imported for its side effect: it installs the device-rule writers
	// (devices.allow/deny on v1, an eBPF program on v2, systemd properties)
	// into the cgroup managers. Without it device rules are refused.
	_ "github.com/opencontainers/cgroups/devices" // device-rule writers
	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/cgroups/fs2"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/cgroups/systemd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	// hybridMountpoint is where hybrid hosts mount the cgroup2 hierarchy.
	hybridMountpoint = "/sys/fs/cgroup/unified"
	// systemdScopePrefix names the scope unit when --systemd-cgroup is given
	// without a cgroupsPath: "<prefix>-<id>.scope".
	systemdScopePrefix = "hull"
)

// Config describes the cgroup of one container.
type Config struct {
	// ID is the container id. It names the default cgroup when Path is "".
	ID string
	// Path is the runtime-spec linux.cgroupsPath; "" means the default.
	//
	// Without Systemd: "" means a cgroup named after ID directly below the
	// root of each hierarchy ("/<id>"); an absolute path is used as-is below
	// each hierarchy root; a relative path is relative to the runtime's own
	// cgroup (per controller, from /proc/self/cgroup; on a pure cgroup v2
	// host, like runc, relative to the parent of the runtime's own cgroup,
	// which usually has processes in it and so cannot have controllers
	// enabled for children).
	//
	// With Systemd: "slice:prefix:name", e.g. "system.slice:hull:abc"; ""
	// means "hull-<id>.scope" in the systemd default slice.
	Path string
	// Systemd selects the systemd cgroup driver (--systemd-cgroup).
	Systemd bool
	// Rootless tolerates permission errors when creating or joining the
	// cgroup, as long as Path is "" (the library's rootless semantics).
	Rootless bool
	// Resources are the container's linux.resources; may be nil. The device
	// list is the complete allowlist: the cgroup denies every device access
	// that no rule allows, so the caller must include the default devices.
	Resources *specs.LinuxResources
}

// Manager manages the cgroup(s) of one container.
// It is not safe for concurrent use.
type Manager struct {
	cfg  Config // cfg.Resources: the resources last applied or configured
	cg   *cgroups.Cgroup
	mgr  cgroups.Manager
	desc string // human-readable cgroup name for errors
}

// IsCgroup2UnifiedMode reports whether the host uses the cgroup v2 unified
// hierarchy only (no v1 controllers).
func IsCgroup2UnifiedMode() bool {
	return cgroups.IsCgroup2UnifiedMode()
}

// IsCgroup2HybridMode reports whether the host mounts cgroup2 at
// /sys/fs/cgroup/unified beside cgroup v1 hierarchies.
func IsCgroup2HybridMode() bool {
	return !cgroups.IsCgroup2UnifiedMode() && cgroups.IsCgroup2HybridMode()
}

// New validates cfg, converts its resources and returns a manager for the
// container's cgroup. It creates nothing: call Apply, then Set.
//
// Invalid resources give errors that start with the spec field, e.g.
// "linux.resources.memory.swap: ...". A requested resource whose
// controller the host lacks gives an error wrapping ErrControllerUnavailable.
func New(cfg Config) (*Manager, error) {
	res, err := convertResources(cfg.Resources)
	if err != nil {
		return nil, err
	}
	if err := checkUnified(res); err != nil {
		return nil, err
	}
	m, err := build(cfg, res, nil)
	if err != nil {
		return nil, err
	}
	if err := m.checkAvailable(res); err != nil {
		return nil, err
	}
	return m, nil
}

// Load rebuilds the manager of an existing container from the paths that
// Paths returned after Apply (persisted in state.json), for start, kill,
// delete, pause, resume, update, events and ps. cfg should be the Config the
// container was created with. A nil paths map recomputes the paths from cfg.
//
// Load is lenient about resources (so that a container can always be
// killed and deleted): if cfg.Resources no longer validate, the manager
// keeps working for everything but Set, which then writes no device rules.
func Load(cfg Config, paths map[string]string) (*Manager, error) {
	res, err := convertResources(cfg.Resources)
	if err != nil {
		res = &cgroups.Resources{SkipDevices: true}
	}
	if paths != nil {
		paths = maps.Clone(paths)
	}
	return build(cfg, res, paths)
}

// build creates the library manager for cfg and res; paths nil means
// "compute from cfg".
func build(cfg Config, res *cgroups.Resources, paths map[string]string) (*Manager, error) {
	cg, desc, inner, err := cgroupConfig(cfg)
	if err != nil {
		return nil, err
	}
	cg.Resources = res
	if cfg.Systemd && !systemd.IsRunningSystemd() {
		return nil, errors.New("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the cgroupfs driver")
	}
	unified := cgroups.IsCgroup2UnifiedMode()

	var mgr cgroups.Manager
	if paths != nil {
		mgr, err = manager.NewWithPaths(cg, paths)
	} else {
		mgr, err = manager.New(cg)
		if err == nil && !unified && !cfg.Systemd && inner != "" && !filepath.IsAbs(inner) {
			// The fs driver puts the hybrid unified cgroup of a relative
			// path below the root of the cgroup2 mount, ignoring our own
			// v2 cgroup. Make it relative to our own cgroup, like the v1
			// controllers.
			var fixed map[string]string
			if fixed, err = fixHybridRelative(mgr.GetPaths(), inner); err == nil && fixed != nil {
				mgr, err = manager.NewWithPaths(cg, fixed)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", desc, err)
	}
	return &Manager{cfg: cfg, cg: cg, mgr: mgr, desc: desc}, nil
}

// cgroupConfig translates Config's path semantics into the library's
// Cgroup fields. inner is the fs-driver path below each hierarchy root
// (relative paths are relative to our own cgroup), "" for systemd.
func cgroupConfig(cfg Config) (cg *cgroups.Cgroup, desc, inner string, err error) {
	cg = &cgroups.Cgroup{Systemd: cfg.Systemd, Rootless: cfg.Rootless}
	if cfg.Systemd {
		if cfg.Path == "" {
			if err := checkID(cfg.ID); err != nil {
				return nil, "", "", err
			}
			cg.ScopePrefix, cg.Name = systemdScopePrefix, cfg.ID
			return cg, systemdScopePrefix + "-" + cfg.ID + ".scope", "", nil
		}
		parts := strings.Split(cfg.Path, ":")
		if len(parts) != 3 || parts[2] == "" {
			return nil, "", "", fmt.Errorf("linux.cgroupsPath: with --systemd-cgroup it must have the form \"slice:prefix:name\", got %q", cfg.Path)
		}
		cg.Parent, cg.ScopePrefix, cg.Name = parts[0], parts[1], parts[2]
		return cg, cfg.Path, "", nil
	}
	if cfg.Path == "" {
		if err := checkID(cfg.ID); err != nil {
			return nil, "", "", err
		}
		// Parent+Name rather than Path: the library treats an empty Path
		// as "no explicit cgroup path", which keeps rootless permission
		// errors non-fatal, as in runc.
		cg.Parent, cg.Name = "/", cfg.ID
		return cg, "/" + cfg.ID, "/" + cfg.ID, nil
	}
	inner = cleanPath(cfg.Path)
	if inner == "/" || inner == "" || inner == "." {
		return nil, "", "", fmt.Errorf("linux.cgroupsPath: %q resolves to an existing cgroup (the root or the runtime's own); a container needs its own", cfg.Path)
	}
	cg.Path = cfg.Path
	return cg, inner, inner, nil
}

func checkID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("cgroup: invalid container id %q for the default cgroup path", id)
	}
	return nil
}

// cleanPath cleans p like the library does: absolute paths stay absolute,
// relative ones cannot climb above their base.
func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	rel, _ := filepath.Rel("/", filepath.Clean("/"+p))
	return rel
}

// fixHybridRelative returns paths with the unified ("") entry moved below
// our own cgroup2 cgroup, or nil if there is nothing to fix.
func fixHybridRelative(paths map[string]string, inner string) (map[string]string, error) {
	if _, ok := paths[""]; !ok {
		return nil, nil
	}
	own, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	ownV2, ok := own[""]
	if !ok {
		return nil, nil
	}
	fixed := maps.Clone(paths)
	fixed[""] = filepath.Join(hybridMountpoint, ownV2, inner)
	return fixed, nil
}

// checkUnified fails if res has linux.resources.unified on a host without
// the unified hierarchy (the v1 driver refuses them).
func checkUnified(res *cgroups.Resources) error {
	if len(res.Unified) > 0 && !cgroups.IsCgroup2UnifiedMode() {
		return fmt.Errorf("linux.resources.unified: %w: needs the cgroup v2 unified hierarchy, this host uses cgroup v1", ErrControllerUnavailable)
	}
	return nil
}

// checkAvailable fails if res requests a resource whose controller the
// host does not provide.
func (m *Manager) checkAvailable(res *cgroups.Resources) error {
	uses := requestedControllers(res)
	if cgroups.IsCgroup2UnifiedMode() {
		var avail []string
		if len(uses) > 0 {
			data, err := cgroups.ReadFile(fs2.UnifiedMountpoint, "cgroup.controllers")
			if err != nil {
				return fmt.Errorf("cgroup %s: read available controllers: %w", m.desc, err)
			}
			avail = strings.Fields(data)
		}
		for _, u := range uses {
			if u.v2 == "" {
				return fmt.Errorf("%s: %w: cgroup v2 has no %s controller", u.field, ErrControllerUnavailable, u.v1)
			}
			if !slices.Contains(avail, u.v2) {
				return fmt.Errorf("%s: %w: the cgroup v2 %s controller is not enabled on this host", u.field, ErrControllerUnavailable, u.v2)
			}
		}
		return nil
	}
	paths := m.mgr.GetPaths()
	for _, u := range uses {
		if paths[u.v1] == "" {
			hint := ""
			if cgroups.IsCgroup2HybridMode() && u.v2 != "" {
				hint = " (on this hybrid host it may be bound to the cgroup2 mount, which the v1 driver does not configure)"
			}
			return fmt.Errorf("%s: %w: no cgroup v1 hierarchy for %s is mounted%s", u.field, ErrControllerUnavailable, u.v1, hint)
		}
	}
	if res.MemorySwap != 0 && paths["memory"] != "" {
		mnt, err := cgroups.FindCgroupMountpoint("", "memory")
		if err == nil && !cgroups.PathExists(filepath.Join(mnt, "memory.memsw.limit_in_bytes")) {
			return fmt.Errorf("linux.resources.memory.swap: %w: swap accounting is disabled in this kernel (no memory.memsw.limit_in_bytes)", ErrControllerUnavailable)
		}
	}
	return nil
}

// Apply creates the cgroup(s) and moves pid into them; pid -1 only creates
// them. For a rootless container without an explicit path, permission
// errors are ignored (the container then runs in the caller's cgroups).
// On error the caller should kill pid and call Destroy.
func (m *Manager) Apply(pid int) error {
	if err := m.mgr.Apply(pid); err != nil {
		if errors.Is(err, cgroups.ErrRootless) {
			return nil
		}
		return fmt.Errorf("cgroup %s: apply pid %d: %w", m.desc, pid, err)
	}
	return nil
}

// AddPid moves pid into the container's existing cgroup(s), e.g. the
// process of `exec`.
func (m *Manager) AddPid(pid int) error {
	if err := m.mgr.AddPid("", pid); err != nil && !errors.Is(err, cgroups.ErrRootless) {
		return fmt.Errorf("cgroup %s: add pid %d: %w", m.desc, pid, err)
	}
	return nil
}

// Set writes the configured resources, including the device rules, into
// the cgroup(s). Call it after Apply.
func (m *Manager) Set() error {
	res := m.cg.Resources
	ownDevices := res != nil && !res.SkipDevices && len(res.Devices) > 0 && !m.cfg.Systemd && !IsCgroup2UnifiedMode() && m.mgr.Path("devices") != ""
	if ownDevices {
		// The library's v1 device emulator writes rules in its own order, but
		// runtime-spec says they apply in the listed order (and devices.list shows
		// the order they were written): write them ourselves on a fresh cgroup.
		copied := *res
		copied.SkipDevices = true
		res = &copied
	}
	if err := m.mgr.Set(res); err != nil {
		return fmt.Errorf("cgroup %s: set resources: %w", m.desc, err)
	}
	if ownDevices {
		if err := writeV1Devices(m.mgr.Path("devices"), m.cg.Resources.Devices); err != nil {
			return fmt.Errorf("cgroup %s: linux.resources.devices: %w", m.desc, err)
		}
	}
	return m.setKernelMemory(m.cfg.Resources)
}

// writeV1Devices writes device rules in order to devices.allow/deny, after a
// deny-all that resets the (inherited) list.
func writeV1Devices(dir string, rules []*devices.Rule) error {
	write := func(file, line string) error {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(line), 0); err != nil {
			return fmt.Errorf("write %q to %s: %w", line, file, err)
		}
		return nil
	}
	if err := write("devices.deny", "a"); err != nil {
		return err
	}
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		line := r.CgroupString()
		if r.Type == devices.WildcardDevice {
			// "a" with any major/minor or access means the whole list.
			line = "a"
		}
		if err := write(file, line); err != nil {
			return err
		}
	}
	return nil
}

// setKernelMemory writes the deprecated v1 kernel memory limits, which the
// library ignores. kmem.tcp still works on current kernels; kmem.limit_in_bytes
// is accepted and ignored by Linux >= 6.1, which is still the best we can do.
func (m *Manager) setKernelMemory(r *specs.LinuxResources) error {
	if r == nil || r.Memory == nil || IsCgroup2UnifiedMode() {
		return nil
	}
	dir := m.mgr.Path("memory")
	if dir == "" {
		return nil
	}
	//lint:ignore SA1019 deprecated, but engines and the validation suite still send it
	kernel := r.Memory.Kernel
	kernelTCP := r.Memory.KernelTCP
	files := []struct {
		v     *int64
		file  string
		field string
	}{
		{kernel, "memory.kmem.limit_in_bytes", "linux.resources.memory.kernel"},
		{kernelTCP, "memory.kmem.tcp.limit_in_bytes", "linux.resources.memory.kernelTCP"},
	}
	for _, f := range files {
		if f.v == nil {
			continue
		}
		p := filepath.Join(dir, f.file)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := os.WriteFile(p, []byte(strconv.FormatInt(*f.v, 10)), 0); err != nil {
			return fmt.Errorf("%s: write %s: %w", f.field, p, err)
		}
	}
	return nil
}

// Update merges r into the container's current resources and writes the
// result, for `update`. Fields that r leaves unset (nil pointers, nil
// slices and maps, empty strings) keep their current value; a nil
// r.Devices keeps the current device rules without rewriting them. On
// success Resources returns the merged resources, to persist.
func (m *Manager) Update(r *specs.LinuxResources) error {
	merged := mergeResources(m.cfg.Resources, r)
	res, err := convertResources(merged)
	if err != nil {
		return err
	}
	if err := checkUnified(res); err != nil {
		return err
	}
	if err := m.checkAvailable(res); err != nil {
		return err
	}
	res.SkipDevices = r == nil || r.Devices == nil
	if err := m.mgr.Set(res); err != nil {
		return fmt.Errorf("cgroup %s: update resources: %w", m.desc, err)
	}
	res.SkipDevices = false
	m.cg.Resources = res
	m.cfg.Resources = merged
	return nil
}

// Resources returns the container's current spec resources (those given to
// New or Load, merged with every successful Update). Do not modify them.
func (m *Manager) Resources() *specs.LinuxResources {
	return m.cfg.Resources
}

// Destroy removes the container's cgroup directories, including sub-cgroups,
// in every hierarchy. It kills nothing: the caller must kill the processes
// first. It succeeds if the directories are already gone.
func (m *Manager) Destroy() error {
	if err := m.mgr.Destroy(); err != nil {
		return fmt.Errorf("cgroup %s: destroy: %w", m.desc, err)
	}
	return nil
}

// Paths returns the cgroup directory per subsystem, to persist for Load.
// On cgroup v2 the only key is "" (the unified directory); on a hybrid host
// "" is the directory in the cgroup2 mount beside the v1 subsystems.
// After Destroy the map may be empty.
func (m *Manager) Paths() map[string]string {
	return maps.Clone(m.mgr.GetPaths())
}

// TaskFiles opens for writing the "tasks" file of the container's cgroup in
// every cgroup v1 hierarchy (co-mounted controllers once), sorted by
// controller name; the memory hierarchy's comes apart (nil without one).
// A process that writes "0" into them moves its calling thread: done before
// a single-threaded process starts any thread, that is the whole process,
// and the kernel then skips the global threadgroup lock that writing a pid
// to cgroup.procs takes, which waits for an RCU grace period (1 to 12 ms
// here, on the start path of every container). Memory is charged to the
// memory cgroup of a process's leader thread, so joining only that later
// keeps earlier work out of the container's memory usage. The permission
// check uses the credentials of the opener, so the files work in a process
// already in a user namespace. The cgroup v2 directory (pure or hybrid; see
// UnifiedPath) is not among them: use CLONE_INTO_CGROUP there.
// Call it after Apply(-1); the caller closes the files.
func (m *Manager) TaskFiles() (files []*os.File, memory *os.File, retErr error) {
	paths := m.mgr.GetPaths()
	keys := slices.Sorted(maps.Keys(paths))
	// The memory hierarchy first, so that controllers co-mounted with it
	// join with it.
	if i := slices.Index(keys, "memory"); i > 0 {
		keys = append(append([]string{"memory"}, keys[:i]...), keys[i+1:]...)
	}
	defer func() {
		if retErr != nil {
			for _, f := range files {
				f.Close()
			}
			if memory != nil {
				memory.Close()
			}
		}
	}()
	type fileID struct{ dev, ino uint64 }
	seen := map[fileID]bool{}
	for _, k := range keys {
		if k == "" {
			continue
		}
		name := filepath.Join(paths[k], "tasks")
		f, err := os.OpenFile(name, os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("cgroup %s: %w", m.desc, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("cgroup %s: stat %s: %w", m.desc, name, err)
		}
		id := fileID{st.Dev, st.Ino}
		if seen[id] {
			f.Close()
			continue
		}
		seen[id] = true
		if k == "memory" {
			memory = f
		} else {
			files = append(files, f)
		}
	}
	return files, memory, nil
}

// UnifiedPath returns the container's cgroup v2 directory (also on a hybrid
// host), or "" on a pure cgroup v1 host. It can be used with
// CLONE_INTO_CGROUP; on a hybrid host Apply is still needed for the v1
// hierarchies.
func (m *Manager) UnifiedPath() string {
	return m.mgr.Path("")
}

// Pids returns the pids of all processes in the container's cgroup and its
// sub-cgroups.
func (m *Manager) Pids() ([]int, error) {
	pids, err := m.mgr.GetAllPids()
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: list pids: %w", m.desc, err)
	}
	return pids, nil
}

// Freeze freezes every process of the container (`pause`).
func (m *Manager) Freeze() error {
	if err := m.mgr.Freeze(cgroups.Frozen); err != nil {
		return fmt.Errorf("cgroup %s: freeze: %w", m.desc, err)
	}
	return nil
}

// Thaw thaws the container's processes (`resume`).
func (m *Manager) Thaw() error {
	if err := m.mgr.Freeze(cgroups.Thawed); err != nil {
		return fmt.Errorf("cgroup %s: thaw: %w", m.desc, err)
	}
	return nil
}

// Freezer states returned by FreezerState, named like runc's container
// statuses.
const (
	StatePaused  = "paused"
	StateRunning = "running"
)

// FreezerState returns StatePaused if the cgroup is frozen and
// StateRunning otherwise (also when the host has no freezer).
func (m *Manager) FreezerState() (string, error) {
	st, err := m.mgr.GetFreezerState()
	if err != nil {
		return "", fmt.Errorf("cgroup %s: freezer state: %w", m.desc, err)
	}
	if st == cgroups.Frozen {
		return StatePaused, nil
	}
	return StateRunning, nil
}

// Stats returns the container's resource usage statistics.
func (m *Manager) Stats() (*cgroups.Stats, error) {
	st, err := m.mgr.GetStats()
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: stats: %w", m.desc, err)
	}
	return st, nil
}

// OOMKillCount returns how many processes of the container the OOM killer
// killed.
func (m *Manager) OOMKillCount() (uint64, error) {
	n, err := m.mgr.OOMKillCount()
	if err != nil {
		return 0, fmt.Errorf("cgroup %s: oom kill count: %w", m.desc, err)
	}
	return n, nil
}

// Exists reports whether the container's cgroup directory exists.
func (m *Manager) Exists() bool {
	return m.mgr.Exists()
}

// KillAll sends sig to every process in the container's cgroup.
//
// For SIGKILL it writes cgroup.kill in the cgroup v2 directory (also on a
// hybrid host) when the kernel has it (5.14+). Otherwise it freezes the
// cgroup, signals each pid and thaws it again (a container that was
// already paused stays paused, except for SIGKILL, which needs the thaw to
// take effect on v1). Processes that exit meanwhile are not an error. It
// fails with an error wrapping os.ErrNotExist if the cgroup does not exist.
func (m *Manager) KillAll(sig unix.Signal) error {
	if !m.mgr.Exists() {
		return fmt.Errorf("cgroup %s: kill: %w", m.desc, os.ErrNotExist)
	}
	if sig == unix.SIGKILL {
		if p := m.mgr.Path(""); p != "" {
			err := cgroups.WriteFile(p, "cgroup.kill", "1")
			if err == nil {
				return nil
			}
			if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("cgroup %s: kill via cgroup.kill: %w", m.desc, err)
			}
		}
	}

	st, _ := m.mgr.GetFreezerState()
	wasFrozen := st == cgroups.Frozen
	// Best effort: freezing only closes the race with forks; without a
	// freezer we still signal every pid we see.
	froze := !wasFrozen && m.mgr.Freeze(cgroups.Frozen) == nil
	pids, err := m.mgr.GetAllPids()
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("cgroup %s: kill: list pids: %w", m.desc, err))
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("cgroup %s: kill pid %d: %w", m.desc, pid, err))
		}
	}
	if froze || (wasFrozen && sig == unix.SIGKILL) {
		if err := m.mgr.Freeze(cgroups.Thawed); err != nil {
			errs = append(errs, fmt.Errorf("cgroup %s: kill: thaw: %w", m.desc, err))
		}
	}
	return errors.Join(errs...)
}
