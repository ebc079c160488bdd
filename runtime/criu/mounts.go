package criu

import (
	"fmt"
	"github.com/moby/sys/mountinfo"
	"os"
	"path"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mountEntry is one line of /proc/PID/mountinfo.
type mountEntry struct {
	id, parent int
	dev        string // major:minor
	root       string // path of the mount's root inside its filesystem
	mountPoint string
	fsType     string
	superOpts  string
}

// parseMountinfo parses a mountinfo file's text.
func parseMountinfo(data string) ([]mountEntry, error) {
	infos, err := mountinfo.GetMountsFromReader(strings.NewReader(data), nil)
	if err != nil {
		return nil, fmt.Errorf("parse mountinfo: %w", err)
	}
	out := make([]mountEntry, 0, len(infos))
	for _, m := range infos {
		out = append(out, mountEntry{
			id: m.ID, parent: m.Parent, dev: fmt.Sprintf("%d:%d", m.Major, m.Minor),
			root: m.Root, mountPoint: m.Mountpoint, fsType: m.FSType, superOpts: m.VFSOptions,
		})
	}
	return out, nil
}

// Kinds of external mounts: where restore finds the host side of each.
const (
	mountBind    = "bind"    // a bind mount of config.json: its source
	mountBindSub = "bindsub" // a mount below an rbind of config.json: source + the rest of the path
	mountNull    = "null"    // a masked file: the host's /dev/null
	mountDevice  = "device"  // a host device bound in (user namespaces): the device path
	mountCgroup  = "cgroup"  // a cgroup v1 hierarchy bound in without a cgroup namespace: the new cgroup dir
	mountConsole = "console" // /dev/console bound to the terminal: the new pty slave
)

// nullKey is the name masked files get in the image (runc's, so that images
// move between the two runtimes).
const nullKey = "/dev/null"

// extMount is one mount of the container that comes from outside its mount
// namespace. CRIU cannot dump those: the dump names them (mount point → Key)
// and restore maps each Key to a host path.
type extMount struct {
	// MountPoint is where the container sees it.
	MountPoint string `json:"mountPoint"`
	// Key is the name in the image.
	Key  string `json:"key"`
	Kind string `json:"kind"`
	// Dest is the config.json destination a mountBindSub lives below.
	Dest string `json:"dest,omitempty"`
	// Controllers of a cgroup v1 hierarchy (from its super options).
	Controllers []string `json:"controllers,omitempty"`
}

// fresh filesystems are mounted anew by CRIU at restore when their root is
// the filesystem's root.
var freshTypes = map[string]bool{
	"proc": true, "sysfs": true, "tmpfs": true, "devpts": true, "mqueue": true,
	"cgroup": true, "cgroup2": true, "bpf": true, "securityfs": true, "debugfs": true,
	"tracefs": true, "binfmt_misc": true, "fusectl": true, "pstore": true, "configfs": true,
}

// externalMounts finds the mounts of the container (from its init's
// mountinfo) that come from outside its mount namespace and says what each
// is, from the spec: binds of config.json, masked files, host devices, and,
// without a cgroup namespace, cgroup hierarchies. Anything else from outside
// is an error: nothing could restore it.
func externalMounts(mountinfo []mountEntry, spec *specs.Spec, ownCgroupNS bool, terminal bool) ([]extMount, error) {
	binds, specDests := map[string]bool{}, map[string]bool{}
	var bindDests []string
	for _, m := range spec.Mounts {
		specDests[path.Clean("/"+m.Destination)] = true
		if isBind(m) {
			d := path.Clean("/" + m.Destination)
			binds[d] = true
			bindDests = append(bindDests, d)
		}
	}
	// Longest first: a mount below two rbinds belongs to the inner one.
	sort.Slice(bindDests, func(i, j int) bool { return len(bindDests[i]) > len(bindDests[j]) })
	masked, devices := map[string]bool{}, map[string]bool{}
	if spec.Linux != nil {
		for _, p := range spec.Linux.MaskedPaths {
			masked[path.Clean("/"+p)] = true
		}
		for _, d := range spec.Linux.Devices {
			devices[path.Clean("/"+d.Path)] = true
		}
	}
	var rootDev, rootRoot string
	for _, e := range mountinfo {
		if e.mountPoint == "/" {
			rootDev, rootRoot = e.dev, e.root
		}
	}
	var out []extMount
	for _, e := range mountinfo {
		mp := e.mountPoint
		if mp == "/" {
			continue
		}
		if binds[mp] {
			out = append(out, extMount{MountPoint: mp, Key: mp, Kind: mountBind})
			continue
		}
		if terminal && mp == "/dev/console" && e.fsType == "devpts" {
			// The pty is external (its master is outside): so is its bind.
			out = append(out, extMount{MountPoint: mp, Key: mp, Kind: mountConsole})
			continue
		}
		if masked[mp] && e.root == "/null" {
			out = append(out, extMount{MountPoint: mp, Key: nullKey, Kind: mountNull})
			continue
		}
		if dest := below(mp, bindDests); dest != "" && !specDests[mp] && !masked[mp] {
			// Brought in by an rbind of config.json: the host's, whatever it is.
			out = append(out, extMount{MountPoint: mp, Key: mp, Kind: mountBindSub, Dest: dest})
			continue
		}
		if internalMount(e, mountinfo, rootDev, rootRoot, ownCgroupNS) {
			continue
		}
		switch {
		case devices[mp]:
			out = append(out, extMount{MountPoint: mp, Key: mp, Kind: mountDevice})
		case e.fsType == "cgroup" || e.fsType == "cgroup2":
			out = append(out, extMount{MountPoint: mp, Key: mp, Kind: mountCgroup, Controllers: cgroupControllers(e)})
		default:
			return nil, fmt.Errorf("mount %s (%s, %s from %s) comes from outside the container and is not in config.json: CRIU could not restore it", mp, e.fsType, e.root, e.dev)
		}
	}
	return out, nil
}

// below returns the first of dirs that p is strictly below, or "".
func below(p string, dirs []string) string {
	for _, d := range dirs {
		if strings.HasPrefix(p, d+"/") {
			return d
		}
	}
	return ""
}

// internalMount reports whether CRIU can dump a mount by itself: a fresh
// pseudo filesystem, or a bind of something else mounted in the container.
func internalMount(e mountEntry, all []mountEntry, rootDev, rootRoot string, ownCgroupNS bool) bool {
	if e.fsType == "cgroup" || e.fsType == "cgroup2" {
		// In a cgroup namespace the container mounted its own hierarchy;
		// without one it bound the host's (runc's v1 case).
		return ownCgroupNS || e.root == "/"
	}
	if freshTypes[e.fsType] && e.root == "/" {
		return true
	}
	if e.dev == rootDev && within(e.root, rootRoot) {
		return true // a bind of something in the rootfs
	}
	for _, o := range all {
		// A bind of (a part of) a filesystem the container mounted itself,
		// e.g. the read-only /proc/sys, or /dev/console from /dev/pts.
		if o.id != e.id && o.dev == e.dev && freshTypes[o.fsType] && o.root == "/" {
			return true
		}
	}
	return false
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// cgroupControllers lists a v1 hierarchy's controllers from its super
// options ("rw,memory" → memory; "rw,xattr,name=systemd" → name=systemd);
// "" stands for cgroup2.
func cgroupControllers(e mountEntry) []string {
	if e.fsType == "cgroup2" {
		return []string{""}
	}
	skip := map[string]bool{"rw": true, "ro": true, "xattr": true, "noprefix": true, "clone_children": true, "cpuset_v2_mode": true}
	var out []string
	for _, o := range strings.Split(e.superOpts, ",") {
		if o == "" || skip[o] || strings.HasPrefix(o, "release_agent=") {
			continue
		}
		out = append(out, o)
	}
	return out
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// readMountinfo reads and parses /proc/PID/mountinfo.
func readMountinfo(pid int) ([]mountEntry, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return nil, err
	}
	return parseMountinfo(string(data))
}
