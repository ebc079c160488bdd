package criu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/cgroups"
	"github.com/hull-runtime/hull/runtime/container"
	"github.com/hull-runtime/hull/runtime/state"
)

// CheckpointOptions are the options of `checkpoint` (runc's names).
type CheckpointOptions struct {
	ID string
	// CriuPath is the global --criu: the criu binary ("" = criu in PATH).
	CriuPath string
	// ImagePath is where the images go (default ./checkpoint).
	ImagePath string
	// WorkPath is where CRIU writes its log (default: ImagePath).
	WorkPath string
	// LeaveRunning keeps the container running after the dump.
	LeaveRunning bool
	// TCPEstablished, ExtUnixSk, ShellJob, FileLocks, TCPSkipInFlight,
	// LinkRemap and AutoDedup are CRIU's options of the same names.
	TCPEstablished  bool
	ExtUnixSk       bool
	ShellJob        bool
	FileLocks       bool
	TCPSkipInFlight bool
	LinkRemap       bool
	AutoDedup       bool
	// ManageCgroupsMode is soft, full, strict or ignore ("" = CRIU's default, soft).
	ManageCgroupsMode string
}

// cgroupModes are the --manage-cgroups-mode values (runc's, plus CRIU's
// none and props).
var cgroupModes = []string{"", "soft", "full", "strict", "ignore", "none", "props"}

func checkCgroupMode(m string) error {
	if !slices.Contains(cgroupModes, m) {
		return fmt.Errorf("--manage-cgroups-mode %q: want soft, full, strict or ignore", m)
	}
	return nil
}

func manageCgroupsArg(mode string) string {
	if mode == "" {
		return "--manage-cgroups"
	}
	return "--manage-cgroups=" + mode
}

// Checkpoint dumps a running (or paused) container with CRIU into
// o.ImagePath. Unless o.LeaveRunning, CRIU then kills the container's
// processes and the container is stopped: `delete` removes it and `restore`
// brings it back, under the same id or another.
//
// CRIU is checked first: when it is missing or does not work on this
// kernel, Checkpoint fails before creating anything, with the container
// untouched. When the dump fails, the container keeps running and what
// Checkpoint created in the image directory is removed.
func Checkpoint(rt *container.Runtime, o CheckpointOptions) (retErr error) {
	if err := state.ValidateID(o.ID); err != nil {
		return err
	}
	if err := checkCgroupMode(o.ManageCgroupsMode); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("cannot checkpoint container %s: %w", o.ID, errNotRoot)
	}
	unlock, err := rt.Store.Lock(o.ID)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := rt.Store.Load(o.ID)
	if err != nil {
		return err
	}
	status := rt.Status(c)
	switch status {
	case state.Running, state.Paused:
	case state.Created:
		return fmt.Errorf("cannot checkpoint container %s: it is created, not running (start it first)", o.ID)
	default:
		return fmt.Errorf("cannot checkpoint container %s: container not running (status %s)", o.ID, status)
	}
	tool, err := Usable("checkpoint", o.CriuPath)
	if err != nil {
		return err
	}

	// Everything CRIU needs to be told, before anything is written.
	spec, err := c.Spec()
	if err != nil {
		return err
	}
	cg, err := cgroups.Load(cgroups.Config{ID: c.ID, Path: c.Cgroup.Path, Systemd: c.Cgroup.Systemd, Rootless: c.Cgroup.Rootless, Resources: spec.Linux.Resources}, c.Cgroup.Paths)
	if err != nil {
		return err
	}
	mi, err := readMountinfo(c.Pid)
	if err != nil {
		return fmt.Errorf("checkpoint %s: read mounts of init %d: %w", o.ID, c.Pid, err)
	}
	terminal := spec.Process != nil && spec.Process.Terminal
	mounts, err := externalMounts(mi, spec, ownNamespace(c.Pid, "cgroup"), terminal)
	if err != nil {
		return fmt.Errorf("cannot checkpoint container %s: %w", o.ID, err)
	}
	ids := map[int]bool{}
	for _, e := range mi {
		ids[e.id] = true
	}
	files, err := stdioFiles(c.Pid, ids)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", o.ID, err)
	}
	nss, externals, err := joinedNamespaces(c.Pid, spec)
	if err != nil {
		return fmt.Errorf("cannot checkpoint container %s: %w", o.ID, err)
	}
	meta := &imageMeta{
		Version: metaVersion, ID: c.ID, CriuVersion: tool.Version, Mounts: mounts, Files: files, Namespaces: nss,
		ShellJob: o.ShellJob, TCPEstablished: o.TCPEstablished, ExtUnixSk: o.ExtUnixSk, FileLocks: o.FileLocks,
		Terminal: terminal,
	}
	// CRIU refuses (even with --shell-job) a task whose session leader is
	// outside the dumped pid namespace: say so before it fails.
	if sid := sessionOf(c.Pid); sid >= 0 && sid != c.Pid && ownNamespace(c.Pid, "pid") && (sid == 0 || !inContainer(sid, c.Pid)) {
		return fmt.Errorf("cannot checkpoint container %s: its init (pid %d) does not lead its own session (its session is %d, outside the container), and CRIU cannot dump a session whose leader it does not dump", o.ID, c.Pid, sid)
	}

	imgDir, err := absDir(o.ImagePath, "checkpoint")
	if err != nil {
		return fmt.Errorf("--image-path: %w", err)
	}
	undoImg, err := makeDir(imgDir)
	if err != nil {
		return fmt.Errorf("--image-path %s: %w", imgDir, err)
	}
	defer func() {
		if retErr != nil {
			undoImg()
		}
	}()
	logDir := imgDir
	keepLog := false
	if o.WorkPath != "" {
		if logDir, err = absDir(o.WorkPath, ""); err != nil {
			return fmt.Errorf("--work-path: %w", err)
		}
		// The work dir is the caller's place for logs: it stays, with dump.log.
		if _, err := makeDir(logDir); err != nil {
			return fmt.Errorf("--work-path %s: %w", logDir, err)
		}
		keepLog = true
	}
	if err := writeJSON(filepath.Join(imgDir, metaFile), meta); err != nil {
		return fmt.Errorf("checkpoint %s: %w", o.ID, err)
	}
	links := make([]string, 3)
	for _, f := range files {
		links[f.Fd] = f.Link
	}
	if err := writeJSON(filepath.Join(imgDir, descriptorsFile), links); err != nil {
		return fmt.Errorf("checkpoint %s: %w", o.ID, err)
	}

	args := []string{"dump", "--tree", strconv.Itoa(c.Pid), "--images-dir", imgDir,
		"--log-file", dumpLog, "-v4", "--root", c.Rootfs, manageCgroupsArg(o.ManageCgroupsMode)}
	if o.WorkPath != "" {
		args = append(args, "--work-dir", logDir)
	}
	if p := freezerPath(cg); p != "" {
		args = append(args, "--freeze-cgroup", p)
	}
	args = append(args, boolArgs(map[string]bool{
		"--leave-running": o.LeaveRunning, "--tcp-established": meta.TCPEstablished, "--ext-unix-sk": meta.ExtUnixSk,
		"--shell-job": meta.ShellJob, "--file-locks": meta.FileLocks, "--skip-in-flight": o.TCPSkipInFlight,
		"--link-remap": o.LinkRemap, "--auto-dedup": o.AutoDedup,
	})...)
	for _, m := range mounts {
		args = append(args, "--ext-mount-map", m.MountPoint+":"+m.Key)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if (f.Kind == fdFile || f.Kind == fdTTY) && !seen[f.Key] {
			seen[f.Key] = true
			args = append(args, "--external", f.Key)
		}
	}
	args = append(args, externals...)

	cmd := tool.command(args...)
	rt.Log.Debug("criu", "args", cmd.Args)
	logPath := filepath.Join(logDir, dumpLog)
	if err := tool.run(cmd, "dump", logPath); err != nil {
		if !keepLog {
			err = errors.New(strings.TrimSuffix(err.Error(), " (log: "+logPath+")"))
		}
		// CRIU resumes the tasks when a dump fails; make sure of it.
		if status == state.Running {
			if s, ferr := cg.FreezerState(); ferr == nil && s == cgroups.StatePaused {
				_ = cg.Thaw()
			}
		}
		if !c.Alive() {
			return fmt.Errorf("checkpoint %s: %w (and the container's init is gone)", o.ID, err)
		}
		return fmt.Errorf("checkpoint %s: %w; the container is still %s", o.ID, err, status)
	}
	if !o.LeaveRunning {
		// CRIU killed the tree: the container is stopped once its init is
		// gone (a zombie until its parent reaps it counts as gone).
		deadline := time.Now().Add(10 * time.Second)
		for c.Alive() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if c.Alive() {
			rt.Log.Warn("checkpoint: the container's init still runs after the dump", "id", o.ID, "pid", c.Pid)
		}
	}
	return nil
}

// boolArgs returns the flags that are set, sorted, for a stable command line.
func boolArgs(flags map[string]bool) []string {
	var out []string
	for f, on := range flags {
		if on {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// freezerPath is the cgroup CRIU freezes to collect the tasks: the v2
// directory, or the v1 freezer hierarchy's.
func freezerPath(cg *cgroups.Manager) string {
	paths := cg.Paths()
	if cgroups.IsCgroup2UnifiedMode() {
		return paths[""]
	}
	return paths["freezer"]
}

// ownNamespace reports whether pid's namespace of type ns differs from ours.
func ownNamespace(pid int, ns string) bool {
	theirs, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	ours, err2 := os.Readlink("/proc/self/ns/" + ns)
	return err1 == nil && err2 == nil && theirs != ours
}

// sessionOf returns the session id of pid, -1 if unknown.
func sessionOf(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	// state ppid pgrp session ...
	if len(f) < 4 {
		return -1
	}
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		return -1
	}
	return sid
}

// inContainer reports whether pid is in the pid namespace of the init.
func inContainer(pid, init int) bool {
	theirs, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	ours, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	return err1 == nil && err2 == nil && theirs == ours
}

// extNSKey is runc's key for an external namespace: extRootNetNS, extRootPidNS.
func extNSKey(typ string) string {
	return "extRoot" + strings.ToUpper(typ[:1]) + typ[1:] + "NS"
}

// nsProcName maps runtime-spec namespace types to /proc/PID/ns names.
var nsProcName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// joinedNamespaces lists the namespaces the container joined by path (a
// pod's network namespace ...). Network and pid namespaces are declared
// external so that CRIU does not dump them (restore gets them back with
// --inherit-fd); the others are rejoined at restore with --join-ns.
func joinedNamespaces(pid int, spec *specs.Spec) ([]extNS, []string, error) {
	if spec.Linux == nil {
		return nil, nil, nil
	}
	var nss []extNS
	var externals []string
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path == "" {
			continue
		}
		name := nsProcName[ns.Type]
		switch ns.Type {
		case specs.NetworkNamespace, specs.PIDNamespace:
			var st unix.Stat_t
			if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, name), &st); err != nil {
				return nil, nil, fmt.Errorf("linux.namespaces %s: %w", ns.Type, err)
			}
			key := extNSKey(name)
			externals = append(externals, "--external", fmt.Sprintf("%s[%d]:%s", name, st.Ino, key))
			nss = append(nss, extNS{Type: name, Key: key})
		case specs.CgroupNamespace, specs.MountNamespace:
			return nil, nil, fmt.Errorf("linux.namespaces: CRIU cannot restore into an existing %s namespace (%s)", ns.Type, ns.Path)
		default:
			nss = append(nss, extNS{Type: name})
		}
	}
	return nss, externals, nil
}

// makeDir creates dir (with its parents) if needed and returns a function
// that removes what was created: the topmost new directory, or, when dir
// existed, the entries added to it since.
func makeDir(dir string) (undo func(), err error) {
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return nil, errors.New("not a directory")
		}
		before := map[string]bool{}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			before[e.Name()] = true
		}
		return func() {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if !before[e.Name()] {
					os.RemoveAll(filepath.Join(dir, e.Name()))
				}
			}
		}, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	top := dir
	for {
		parent := filepath.Dir(top)
		if parent == top {
			break
		}
		if _, err := os.Stat(parent); err == nil {
			break
		}
		top = parent
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return func() { os.RemoveAll(top) }, nil
}
