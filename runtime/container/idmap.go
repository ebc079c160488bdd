package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/initproc"
	rspec "github.com/hull-runtime/hull/runtime/spec"
)

// idmapMounts prepares the idmapped bind mounts of a spec in the runtime's own
// namespaces: marking a mount idmapped needs privilege over the filesystem's
// user namespace (the host's), which the init inside the container's user
// namespace does not have. Each becomes a detached mount fd that the init
// attaches with move_mount(2). The returned files must stay open until the init
// has started; close releases the user namespace holders.
func idmapMounts(spec *specs.Spec, bundle string, exe *os.File) (files map[int]*os.File, closeAll func(), err error) {
	files = map[int]*os.File{}
	var nsFiles []*os.File
	closeAll = func() {
		for _, f := range files {
			f.Close()
		}
		for _, f := range nsFiles {
			f.Close()
		}
	}
	cleanup := closeAll // the named result is nil on error returns
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	// One user namespace per distinct mapping.
	userns := map[string]int{}
	for i, m := range spec.Mounts {
		opts := rspec.ParseMountOptions(m.Options)
		if !opts.Idmap && len(m.UIDMappings) == 0 {
			continue
		}
		uids, gids := m.UIDMappings, m.GIDMappings
		if len(uids) == 0 {
			uids, gids = spec.Linux.UIDMappings, spec.Linux.GIDMappings
		}
		if len(uids) == 0 || len(gids) == 0 {
			return nil, nil, fmt.Errorf("config.json: mounts[%d] (%s): an idmapped mount needs uid and gid mappings (on the mount or the container's user namespace)", i, m.Destination)
		}
		key := fmt.Sprint(uids, gids)
		fd, ok := userns[key]
		if !ok {
			nsf, err := newUserns(exe, uids, gids)
			if err != nil {
				return nil, nil, fmt.Errorf("config.json: mounts[%d]: %w", i, err)
			}
			nsFiles = append(nsFiles, nsf)
			fd = int(nsf.Fd())
			userns[key] = fd
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(bundle, src)
		}
		flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
		if opts.Recursive {
			flags |= unix.AT_RECURSIVE
		}
		tree, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
		if err != nil {
			return nil, nil, fmt.Errorf("config.json: mounts[%d]: clone %s: %w", i, src, err)
		}
		files[i] = os.NewFile(uintptr(tree), "idmap-"+strconv.Itoa(i))
		// All attributes are set here: the init's user namespace has no
		// privilege over this detached tree, it only attaches it.
		set, clr := initproc.MountAttr(opts.Flags, opts.ClearFlags)
		attrs := []struct {
			flags uint
			attr  unix.MountAttr
		}{
			{unix.AT_EMPTY_PATH, unix.MountAttr{Attr_set: set, Attr_clr: clr}},
			{unix.AT_EMPTY_PATH | unix.AT_RECURSIVE, unix.MountAttr{Attr_set: opts.RecAttrSet, Attr_clr: opts.RecAttrClr}},
			{unix.AT_EMPTY_PATH, unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(fd)}},
		}
		if opts.RecursiveIdmap {
			attrs[2].flags |= unix.AT_RECURSIVE
		}
		for _, a := range attrs {
			if a.attr.Attr_set == 0 && a.attr.Attr_clr == 0 {
				continue
			}
			if err := unix.MountSetattr(tree, "", a.flags, &a.attr); err != nil {
				if a.attr.Attr_set&unix.MOUNT_ATTR_IDMAP != 0 && errors.Is(err, unix.EINVAL) {
					return nil, nil, fmt.Errorf("config.json: mounts[%d]: the filesystem of %s does not support idmapped mounts on this kernel: %w", i, src, err)
				}
				return nil, nil, fmt.Errorf("config.json: mounts[%d]: set attributes of %s: %w", i, src, err)
			}
		}
	}
	return files, closeAll, nil
}

// newUserns returns an fd of a new user namespace with the given mappings. A
// short-lived child creates it; the fd keeps it alive after the child is gone.
func newUserns(exe *os.File, uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	cmd := &exec.Cmd{
		Path:        "/proc/self/fd/" + strconv.Itoa(int(exe.Fd())),
		Args:        []string{"hull-runtime", "init"},
		Env:         []string{initproc.EnvUsernsHolder + "=1", "GOGC=off"},
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER},
	}
	for _, m := range uids {
		cmd.SysProcAttr.UidMappings = append(cmd.SysProcAttr.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	for _, m := range gids {
		cmd.SysProcAttr.GidMappings = append(cmd.SysProcAttr.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("create a user namespace for the mapping: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	if err != nil {
		return nil, fmt.Errorf("open the mapping's user namespace: %w", err)
	}
	return f, nil
}
