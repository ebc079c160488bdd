package criu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/internal/pty"
	"github.com/hull-runtime/hull/runtime/cgroups"
	"github.com/hull-runtime/hull/runtime/container"
	rspec "github.com/hull-runtime/hull/runtime/spec"
	"github.com/hull-runtime/hull/runtime/state"
)

// RestoreOptions are the options of `restore` (runc's names).
type RestoreOptions struct {
	ID string
	// CriuPath is the global --criu ("" = criu in PATH).
	CriuPath string
	// Bundle holds config.json and the rootfs the container is restored on.
	Bundle string
	// ImagePath is the checkpoint (default ./checkpoint).
	ImagePath string
	// WorkPath is where CRIU writes restore.log (default: ImagePath).
	WorkPath string
	// PidFile receives the restored init's pid.
	PidFile string
	// ConsoleSocket receives the master of the container's new terminal.
	ConsoleSocket string
	// TCPEstablished, ExtUnixSk, ShellJob, FileLocks: CRIU's options; those
	// the checkpoint used are repeated anyway.
	TCPEstablished bool
	ExtUnixSk      bool
	ShellJob       bool
	FileLocks      bool
	AutoDedup      bool
	// ManageCgroupsMode is soft, full, strict or ignore ("" = soft).
	ManageCgroupsMode string
	// Stdin, Stdout and Stderr replace the init's fds 0-2 when they were
	// pipes or files outside the container (runc's rule).
	Stdin, Stdout, Stderr *os.File
}

// Restore brings a checkpoint back as container o.ID, with the config.json
// of o.Bundle, in new cgroups; the restored init is a child of the caller
// (CRIU's --restore-sibling), for `restore` without --detach to wait on.
// A stopped container of the same id (the checkpointed one) is deleted
// first; any other container of that id is an error.
//
// CRIU is checked first: when it is missing or does not work on this
// kernel, Restore fails before changing anything. When the restore fails,
// everything it created is removed.
func Restore(rt *container.Runtime, o RestoreOptions) (_ *container.Init, retErr error) {
	if err := state.ValidateID(o.ID); err != nil {
		return nil, err
	}
	if err := checkCgroupMode(o.ManageCgroupsMode); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("cannot restore container %s: %w", o.ID, errNotRoot)
	}
	tool, err := Usable("restore", o.CriuPath)
	if err != nil {
		return nil, err
	}
	imgDir, err := absDir(o.ImagePath, "checkpoint")
	if err != nil {
		return nil, fmt.Errorf("--image-path: %w", err)
	}
	if _, err := os.Stat(filepath.Join(imgDir, inventoryFile)); err != nil {
		return nil, fmt.Errorf("--image-path %s: no CRIU checkpoint there (%s: %w)", imgDir, inventoryFile, errors.Unwrap(err))
	}
	meta, err := readMeta(imgDir)
	if err != nil {
		return nil, err
	}
	descriptors, err := readDescriptors(imgDir)
	if err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", o.Bundle, err)
	}
	spec, err := rspec.Load(bundle)
	if err != nil {
		return nil, err
	}
	if spec.Linux == nil {
		return nil, errors.New("config.json: linux: required on Linux")
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, errors.New("config.json: root.path: required")
	}
	terminal := spec.Process != nil && spec.Process.Terminal
	if terminal && o.ConsoleSocket == "" {
		return nil, errors.New("config.json: process.terminal is true: --console-socket is required")
	}
	if !terminal && o.ConsoleSocket != "" {
		return nil, errors.New("--console-socket given but process.terminal is false in config.json")
	}
	if meta == nil {
		meta = metaFromSpec(spec, descriptors)
	}
	if meta.Terminal != terminal {
		return nil, fmt.Errorf("config.json: process.terminal is %v but the checkpoint was made with %v", terminal, meta.Terminal)
	}
	cgCfg := cgroups.Config{ID: o.ID, Path: spec.Linux.CgroupsPath, Systemd: rt.SystemdCgroup, Rootless: rt.Rootless, Resources: container.WithDefaultDeviceRules(spec)}
	cg, err := cgroups.New(cgCfg)
	if err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}

	// A stopped container of this id (typically the one checkpointed)
	// makes room; any other state is a conflict.
	if old, err := rt.Store.Load(o.ID); err == nil {
		if st := rt.Status(old); st != state.Stopped {
			return nil, fmt.Errorf("container with id %q already exists and is %s", o.ID, st)
		}
		if err := rt.Delete(o.ID, false); err != nil {
			return nil, fmt.Errorf("remove the stopped container %s to restore it: %w", o.ID, err)
		}
	}

	if err := rt.Store.CreateDir(o.ID); err != nil {
		return nil, err
	}
	unlock, err := rt.Store.Lock(o.ID)
	if err != nil {
		rt.Store.Remove(o.ID)
		return nil, err
	}
	defer unlock()
	var undo []func()
	defer func() {
		if retErr != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	undo = append(undo, func() {
		if err := rt.Store.Remove(o.ID); err != nil {
			rt.Log.Warn("cleanup after failed restore", "id", o.ID, "err", err)
		}
	})

	// The cgroup exists, with its limits and device rules, before CRIU puts
	// the tasks in it (--cgroup-root): CRIU's soft mode then leaves it alone.
	undo = append(undo, func() {
		if cg.Exists() {
			_ = cg.KillAll(unix.SIGKILL)
		}
		if err := container.DestroyCgroup(cg); err != nil {
			rt.Log.Warn("cleanup after failed restore: remove cgroup", "id", o.ID, "err", err)
		}
	})
	if err := cg.Apply(-1); err != nil {
		return nil, err
	}
	if err := cg.Set(); err != nil {
		return nil, err
	}
	paths := cg.Paths()

	// CRIU wants the root as a mount point whose parent is not overmounted.
	root := filepath.Join(rt.Store.Dir(o.ID), "criu-root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, fmt.Errorf("restore %s: %w", o.ID, err)
	}
	defer os.Remove(root)
	if err := prepareMountpoints(spec.Root.Path, spec); err != nil {
		return nil, fmt.Errorf("restore %s: %w", o.ID, err)
	}
	if err := unix.Mount(spec.Root.Path, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("restore %s: bind the rootfs %s: %w", o.ID, spec.Root.Path, err)
	}
	defer unix.Unmount(root, unix.MNT_DETACH)
	if err := unix.Mount("", root, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("restore %s: make %s private: %w", o.ID, root, err)
	}

	logDir := imgDir
	if o.WorkPath != "" {
		if logDir, err = absDir(o.WorkPath, ""); err != nil {
			return nil, fmt.Errorf("--work-path: %w", err)
		}
		if err := os.MkdirAll(logDir, 0o700); err != nil {
			return nil, fmt.Errorf("--work-path %s: %w", logDir, err)
		}
	}
	pidFile := filepath.Join(rt.Store.Dir(o.ID), "criu-restore.pid")

	args := []string{"restore", "--images-dir", imgDir, "--log-file", restoreLog, "-v4",
		"--root", root, "--restore-detached", "--restore-sibling", "--pidfile", pidFile,
		"--evasive-devices", manageCgroupsArg(o.ManageCgroupsMode)}
	if o.WorkPath != "" {
		args = append(args, "--work-dir", logDir)
	}
	args = append(args, boolArgs(map[string]bool{
		"--tcp-established": o.TCPEstablished || meta.TCPEstablished, "--ext-unix-sk": o.ExtUnixSk || meta.ExtUnixSk,
		"--shell-job": o.ShellJob || meta.ShellJob, "--file-locks": o.FileLocks || meta.FileLocks,
		"--auto-dedup": o.AutoDedup,
	})...)
	args = append(args, cgroupRootArgs(paths)...)

	cmd := tool.command()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	addFd := func(f *os.File) int {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		return 2 + len(cmd.ExtraFiles)
	}

	var console string
	if terminal {
		master, slave, err := pty.Open()
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", o.ID, err)
		}
		defer slave.Close()
		err = sendConsole(o.ConsoleSocket, master, slave.Name())
		master.Close()
		if err != nil {
			return nil, err
		}
		console = slave.Name()
		fd := addFd(slave)
		seen := map[string]bool{}
		for _, f := range meta.Files {
			if f.Kind == fdTTY && !seen[f.Key] {
				seen[f.Key] = true
				args = append(args, "--inherit-fd", fmt.Sprintf("fd[%d]:%s", fd, f.Key))
			}
		}
	}
	seen := map[string]bool{}
	stdio := []*os.File{o.Stdin, o.Stdout, o.Stderr}
	for _, f := range meta.Files {
		if seen[f.Key] || f.Key == "" || (terminal && f.Kind == fdTTY) {
			continue
		}
		if f.Kind == fdPipe || f.Kind == fdFile || f.Kind == fdTTY {
			if err := checkInherited(f, stdio[f.Fd]); err != nil {
				return nil, fmt.Errorf("cannot restore container %s: %w", o.ID, err)
			}
			seen[f.Key] = true
			args = append(args, "--inherit-fd", fmt.Sprintf("fd[%d]:%s", f.Fd, f.Key))
		}
	}

	mapped := map[string]bool{}
	for _, m := range meta.Mounts {
		if mapped[m.Key] {
			continue
		}
		src, err := mountSource(m, spec, bundle, paths, console)
		if err != nil {
			return nil, fmt.Errorf("cannot restore container %s: %w", o.ID, err)
		}
		mapped[m.Key] = true
		args = append(args, "--ext-mount-map", m.Key+":"+src)
	}

	for _, ns := range meta.Namespaces {
		p := nsPath(spec, ns.Type)
		if p == "" {
			return nil, fmt.Errorf("cannot restore container %s: the checkpoint joined an existing %s namespace: config.json must give its path in linux.namespaces", o.ID, ns.Type)
		}
		if ns.Key == "" {
			args = append(args, "--join-ns", ns.Type+":"+p)
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("linux.namespaces %s: %w", ns.Type, err)
		}
		defer f.Close()
		args = append(args, "--inherit-fd", fmt.Sprintf("fd[%d]:%s", addFd(f), ns.Key))
	}

	if o.ManageCgroupsMode == "ignore" && cgroups.IsCgroup2UnifiedMode() {
		// CRIU leaves the tasks where it runs itself: start it in the cgroup.
		dir, err := os.Open(paths[""])
		if err != nil {
			return nil, fmt.Errorf("restore %s: open cgroup: %w", o.ID, err)
		}
		defer dir.Close()
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	}

	cmd.Args = append([]string{tool.Path}, args...)
	rt.Log.Debug("criu", "args", cmd.Args)
	if err := tool.run(cmd, "restore", filepath.Join(logDir, restoreLog)); err != nil {
		return nil, fmt.Errorf("restore %s: %w", o.ID, err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, fmt.Errorf("restore %s: criu wrote no pid: %w", o.ID, err)
	}
	os.Remove(pidFile)
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("restore %s: bad pid %q from criu", o.ID, data)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() {
		_ = proc.Kill()
		_, _ = proc.Wait()
	})
	if err := cg.AddPid(pid); err != nil {
		return nil, err
	}
	c := &state.Container{
		ID: o.ID, Bundle: bundle, Rootfs: spec.Root.Path, Pid: pid, Created: time.Now().UTC(),
		Annotations: spec.Annotations,
		Cgroup:      state.CgroupInfo{Path: spec.Linux.CgroupsPath, Systemd: rt.SystemdCgroup, Rootless: rt.Rootless, Paths: paths},
	}
	if err := c.SetSpec(spec); err != nil {
		return nil, err
	}
	if c.PidStartTime, _, err = state.ProcStartTime(pid); err != nil {
		return nil, fmt.Errorf("restore %s: the restored init %d is gone: %w", o.ID, pid, err)
	}
	if err := rt.Store.Save(c); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := container.WritePidFile(o.PidFile, pid); err != nil {
			return nil, err
		}
	}
	return &container.Init{Process: proc, State: c}, nil
}

// checkInherited checks that our fd can stand in for the init's: CRIU
// reopens an external regular file and refuses it unless its size is the
// one at the dump.
func checkInherited(f extFile, ours *os.File) error {
	if ours == nil {
		return fmt.Errorf("the checkpointed init had fd %d (%s) but restore has none to give it", f.Fd, f.Link)
	}
	if f.Kind != fdFile || !f.Regular {
		return nil
	}
	st, err := ours.Stat()
	if err != nil {
		return fmt.Errorf("fd %d: %w", f.Fd, err)
	}
	if st.Size() != f.Size {
		return fmt.Errorf("the checkpointed init's fd %d was the regular file %s of %d bytes, and CRIU reattaches such a file only to one of the same size (restore's fd %d has %d bytes); give containers that are to be checkpointed pipes, a terminal or /dev/null as stdio, as containerd and Podman do", f.Fd, f.Link, f.Size, f.Fd, st.Size())
	}
	return nil
}

// metaFromSpec describes an image without hull-criu.json (made by runc)
// the way runc restores it: binds of config.json and masked files are
// external mounts, pipes on fds 0-2 are inherited.
func metaFromSpec(spec *specs.Spec, descriptors []string) *imageMeta {
	m := &imageMeta{Terminal: spec.Process != nil && spec.Process.Terminal}
	for _, mnt := range spec.Mounts {
		if isBind(mnt) {
			d := path.Clean("/" + mnt.Destination)
			m.Mounts = append(m.Mounts, extMount{MountPoint: d, Key: d, Kind: mountBind})
		}
	}
	if spec.Linux != nil {
		if len(spec.Linux.MaskedPaths) > 0 {
			m.Mounts = append(m.Mounts, extMount{MountPoint: nullKey, Key: nullKey, Kind: mountNull})
		}
		for _, d := range spec.Linux.Devices {
			p := path.Clean("/" + d.Path)
			m.Mounts = append(m.Mounts, extMount{MountPoint: p, Key: p, Kind: mountDevice})
		}
	}
	for i, d := range descriptors {
		if strings.HasPrefix(d, "pipe:") {
			m.Files = append(m.Files, extFile{Fd: i, Link: d, Kind: fdPipe, Key: d})
		}
	}
	return m
}

// mountSource is the host path an external mount of the image is restored from.
func mountSource(m extMount, spec *specs.Spec, bundle string, paths map[string]string, console string) (string, error) {
	switch m.Kind {
	case mountNull:
		return "/dev/null", nil
	case mountDevice:
		return m.MountPoint, nil
	case mountConsole:
		if console == "" {
			return "", errors.New("the checkpoint has a terminal but no new one was made")
		}
		return console, nil
	case mountCgroup:
		for _, c := range m.Controllers {
			if p, ok := paths[c]; ok {
				return p, nil
			}
		}
		return "", fmt.Errorf("cgroup mount %s: the new container has no cgroup for %v", m.MountPoint, m.Controllers)
	case mountBind, mountBindSub:
		dest := m.MountPoint
		if m.Kind == mountBindSub {
			dest = m.Dest
		}
		for _, s := range spec.Mounts {
			if isBind(s) && path.Clean("/"+s.Destination) == dest {
				src := s.Source
				if !filepath.IsAbs(src) {
					src = filepath.Join(bundle, src)
				}
				if m.Kind == mountBindSub {
					src = filepath.Join(src, strings.TrimPrefix(m.MountPoint, dest))
				}
				return src, nil
			}
		}
		return "", fmt.Errorf("the checkpoint has a bind mount on %s but config.json has none", dest)
	}
	return "", fmt.Errorf("mount %s: unknown kind %q in %s", m.MountPoint, m.Kind, metaFile)
}

// nsPath is the path config.json gives for a namespace (by /proc name).
func nsPath(spec *specs.Spec, name string) string {
	for _, ns := range spec.Linux.Namespaces {
		if nsProcName[ns.Type] == name {
			return ns.Path
		}
	}
	return ""
}

// cgroupRootArgs tells CRIU to put the restored tasks in the new container's
// cgroups: --cgroup-root CONTROLLER:/path per hierarchy (":/path" is cgroup2),
// paths relative to each hierarchy's mount.
func cgroupRootArgs(paths map[string]string) []string {
	mounts := cgroupMounts()
	rel := func(dir string) string {
		best := ""
		for _, mp := range mounts {
			if within(dir, mp) && len(mp) > len(best) {
				best = mp
			}
		}
		if best == "" {
			return ""
		}
		r := strings.TrimPrefix(dir, best)
		if r == "" {
			r = "/"
		}
		return r
	}
	if cgroups.IsCgroup2UnifiedMode() {
		if r := rel(paths[""]); r != "" {
			return []string{"--cgroup-root", r}
		}
		return nil
	}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		if r := rel(paths[k]); r != "" {
			args = append(args, "--cgroup-root", k+":"+r)
		}
	}
	return args
}

// cgroupMounts lists the mount points of the cgroup hierarchies we see.
func cgroupMounts() []string {
	mi, err := readMountinfo(os.Getpid())
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range mi {
		if e.fsType == "cgroup" || e.fsType == "cgroup2" {
			out = append(out, e.mountPoint)
		}
	}
	return out
}

// prepareMountpoints creates the mount points of config.json's mounts that
// the rootfs lacks (CRIU mounts onto them but does not create them), except
// on filesystems CRIU restores with their content (tmpfs) or that provide
// their own (proc, sysfs, cgroups). Paths are resolved inside the rootfs.
func prepareMountpoints(rootfs string, spec *specs.Spec) error {
	r, err := os.OpenRoot(rootfs)
	if err != nil {
		return fmt.Errorf("rootfs %s: %w", rootfs, err)
	}
	defer r.Close()
	var tmpfs []string
	for _, m := range spec.Mounts {
		if m.Type == "tmpfs" {
			tmpfs = append(tmpfs, path.Clean("/"+m.Destination))
		}
	}
	below := func(p string, dirs ...string) bool {
		for _, d := range dirs {
			if strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	}
	for _, m := range spec.Mounts {
		dest := path.Clean("/" + m.Destination)
		if dest == "/" || m.Type == "cgroup" || m.Type == "cgroup2" || below(dest, tmpfs...) || below(dest, "/proc", "/sys") {
			continue
		}
		rel := strings.TrimPrefix(dest, "/")
		if _, err := r.Stat(rel); err == nil {
			continue
		}
		file := false
		if isBind(m) {
			if st, err := os.Stat(m.Source); err == nil && !st.IsDir() {
				file = true
			}
		}
		if !file {
			if err := r.MkdirAll(rel, 0o755); err != nil {
				return fmt.Errorf("mounts: create mount point %s: %w", dest, err)
			}
			continue
		}
		if err := r.MkdirAll(path.Dir(rel), 0o755); err != nil {
			return fmt.Errorf("mounts: create mount point %s: %w", dest, err)
		}
		f, err := r.OpenFile(rel, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return fmt.Errorf("mounts: create mount point %s: %w", dest, err)
		}
		f.Close()
	}
	return nil
}

// sendConsole sends the pty master over the console socket, with the
// slave's name as the message (what the init does at create).
func sendConsole(socket string, master *os.File, name string) error {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		return fmt.Errorf("--console-socket %s: %w", socket, err)
	}
	defer conn.Close()
	if _, _, err := conn.WriteMsgUnix([]byte(name), unix.UnixRights(int(master.Fd())), nil); err != nil {
		return fmt.Errorf("--console-socket %s: send the pty master: %w", socket, err)
	}
	return nil
}
