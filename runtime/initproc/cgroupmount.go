package initproc

import (
	"errors"
	"fmt"
	"github.com/moby/sys/mountinfo"
	"os"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	rspec "github.com/hull-runtime/hull/runtime/spec"
)

// hostCgroupMount is one cgroup hierarchy mounted on the host.
type hostCgroupMount struct {
	mountPoint string
	fsType     string   // cgroup or cgroup2
	options    []string // controllers or name=..., for a fresh v1 mount
}

func hostCgroupMounts() ([]hostCgroupMount, error) {
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return (m.FSType != "cgroup" && m.FSType != "cgroup2") || !strings.HasPrefix(m.Mountpoint, "/sys/fs/cgroup"), false
	})
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []hostCgroupMount
	for _, m := range mounts {
		var opts []string
		for _, o := range strings.Split(m.VFSOptions, ",") {
			if o != "rw" && o != "ro" && !strings.HasPrefix(o, "release_agent") && o != "clone_children" && o != "nsdelegate" && o != "memory_recursiveprot" {
				opts = append(opts, o)
			}
		}
		out = append(out, hostCgroupMount{mountPoint: m.Mountpoint, fsType: m.FSType, options: opts})
	}
	return out, nil
}

// containerDirFor finds the container's cgroup dir inside a host hierarchy.
func (r *rootfs) containerDirFor(mp string) string {
	for _, p := range r.cfg.CgroupPaths {
		if p == mp || strings.HasPrefix(p, mp+"/") {
			return p
		}
	}
	return ""
}

// mountCgroup handles "cgroup" and "cgroup2" mounts: on a pure v2 host one cgroup2
// mount (fresh with a cgroup namespace, else a bind of the container's cgroup); on a
// v1 or hybrid host a tmpfs with one directory per hierarchy, as runc lays it out.
func (r *rootfs) mountCgroup(m specs.Mount, dest string, opts rspec.ParsedMountOptions) error {
	mounts, err := hostCgroupMounts()
	if err != nil {
		return err
	}
	flags := opts.Flags
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		fd, err := r.mkdirInRoot(dest, 0o555)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return r.mountHierarchy(fd, hostCgroupMount{mountPoint: "/sys/fs/cgroup", fsType: "cgroup2"}, flags)
	}
	fd, err := r.mkdirInRoot(dest, 0o755)
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		unix.Close(fd)
		return fmt.Errorf("mount tmpfs: %w", err)
	}
	unix.Close(fd)
	top, err := r.openInRoot(dest, 0)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	for _, hm := range mounts {
		name := path.Base(hm.mountPoint)
		if hm.mountPoint == "/sys/fs/cgroup" || r.containerDirFor(hm.mountPoint) == "" && !r.cfg.NewCgroupNS {
			continue
		}
		if err := unix.Mkdirat(top, name, 0o755); err != nil {
			return fmt.Errorf("mkdir %s/%s: %w", dest, name, err)
		}
		sub, err := r.openInRoot(path.Join(dest, name), unix.RESOLVE_NO_SYMLINKS)
		if err != nil {
			return err
		}
		err = r.mountHierarchy(sub, hm, flags)
		unix.Close(sub)
		if err != nil {
			return err
		}
		// Co-mounted controllers (cpu,cpuacct) get a symlink per controller.
		if strings.Contains(name, ",") {
			for _, c := range strings.Split(name, ",") {
				if err := unix.Symlinkat(name, top, c); err != nil && !os.IsExist(err) {
					return fmt.Errorf("symlink %s/%s: %w", dest, c, err)
				}
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		if err := unix.MountSetattr(top, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return fmt.Errorf("make %s read-only: %w", dest, err)
		}
	}
	return nil
}

// mountHierarchy mounts one hierarchy on fd: a fresh cgroup filesystem when the
// container has its own cgroup namespace (its root is then the container's
// cgroup), else a bind of the container's directory.
func (r *rootfs) mountHierarchy(fd int, hm hostCgroupMount, flags uintptr) error {
	if r.cfg.NewCgroupNS {
		data := strings.Join(hm.options, ",")
		if hm.fsType == "cgroup2" {
			data = ""
		}
		err := unix.Mount(hm.fsType, fdPath(fd), hm.fsType, flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data)
		if err == nil {
			return nil
		}
		// In a user namespace the kernel refuses a fresh mount whose options
		// differ from the host's (nsdelegate...), or a v1 hierarchy at all: bind
		// the container's own cgroup instead, as runc and crun do.
		if !r.cfg.InUserNS || (!errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EPERM)) || r.containerDirFor(hm.mountPoint) == "" {
			return fmt.Errorf("mount %s (%s): %w", hm.fsType, data, err)
		}
	}
	src := r.containerDirFor(hm.mountPoint)
	if src == "" {
		return fmt.Errorf("container has no cgroup in %s", hm.mountPoint)
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("clone %s: %w", src, err)
	}
	defer unix.Close(tree)
	set := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC)
	if flags&unix.MS_RDONLY != 0 {
		set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: set}); err != nil {
		return fmt.Errorf("set attributes on %s: %w", src, err)
	}
	return unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}
