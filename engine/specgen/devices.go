package specgen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The runtime creates /dev/null, zero, full, random, urandom, tty, console
// and ptmx itself (runtime-spec "Default Devices"), so, as Docker, the spec
// does not list them in linux.devices; it only allows them in the device
// cgroup.

func i64(v int64) *int64 { return &v }

// defaultDeviceRules is the device cgroup Docker's containers end up with:
// deny everything, allow mknod of any node (creating one is harmless, using
// it is what is controlled), and read/write/mknod for the default devices,
// the pty devices and /dev/net/tun (which still needs --device to appear).
// The list is complete rather than relying on a runtime to append its own
// defaults, so hull-runtime, runc and crun set the same cgroup.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	allow := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
		if major >= 0 {
			r.Major = i64(major)
		}
		if minor >= 0 {
			r.Minor = i64(minor)
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		allow("c", -1, -1, "m"),    // mknod of any char device
		allow("b", -1, -1, "m"),    // mknod of any block device
		allow("c", 1, 3, "rwm"),    // /dev/null
		allow("c", 1, 5, "rwm"),    // /dev/zero
		allow("c", 1, 7, "rwm"),    // /dev/full
		allow("c", 1, 8, "rwm"),    // /dev/random
		allow("c", 1, 9, "rwm"),    // /dev/urandom
		allow("c", 5, 0, "rwm"),    // /dev/tty
		allow("c", 5, 1, "rwm"),    // /dev/console
		allow("c", 5, 2, "rwm"),    // /dev/ptmx
		allow("c", 136, -1, "rwm"), // /dev/pts/*
		allow("c", 10, 200, "rwm"), // /dev/net/tun
	}
}

// deviceFromPath describes the device node at host path src as it will
// appear at dst in the container.
func deviceFromPath(src, dst string, fi os.FileInfo) (specs.LinuxDevice, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t) // what os.Stat and DirEntry.Info return
	if !ok {
		return specs.LinuxDevice{}, false
	}
	var typ string
	switch st.Mode & syscall.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, false
	}
	mode := fi.Mode().Perm()
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     dst,
		Type:     typ,
		Major:    int64(unix.Major(st.Rdev)),
		Minor:    int64(unix.Minor(st.Rdev)),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, true
}

// parseDevice parses --device SRC[:DST][:PERMS] (PERMS a combination of
// r, w, m; default rwm) and describes the host device. A directory adds
// every device below it, as Docker does for --device /dev/snd.
func parseDevice(arg string) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	what := "--device " + arg
	parts := strings.Split(arg, ":")
	src, dst, perms := parts[0], "", "rwm"
	switch len(parts) {
	case 1:
	case 2:
		if validPerms(parts[1]) {
			perms = parts[1]
		} else {
			dst = parts[1]
		}
	case 3:
		dst, perms = parts[1], parts[2]
	default:
		return nil, nil, fmt.Errorf("%s: want SRC[:DST][:PERMISSIONS]", what)
	}
	if !validPerms(perms) {
		return nil, nil, fmt.Errorf("%s: invalid permissions %q (a combination of r, w, m)", what, perms)
	}
	if !filepath.IsAbs(src) {
		return nil, nil, fmt.Errorf("%s: %q is not an absolute host path", what, src)
	}
	if dst == "" {
		dst = src
	}
	dst, err := containerPath(what, dst)
	if err != nil {
		return nil, nil, err
	}
	src = filepath.Clean(src)
	fi, err := os.Stat(src) // a host path the user chose: symlinks such as /dev/disk/by-id/... are meant to be followed
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	rule := func(d specs.LinuxDevice) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: i64(d.Major), Minor: i64(d.Minor), Access: perms}
	}
	if !fi.IsDir() {
		d, ok := deviceFromPath(src, dst, fi)
		if !ok {
			return nil, nil, fmt.Errorf("%s: %s is not a device node", what, src)
		}
		return []specs.LinuxDevice{d}, []specs.LinuxDeviceCgroup{rule(d)}, nil
	}
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	err = filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.Type()&fs.ModeSymlink != 0 || de.IsDir() {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d, ok := deviceFromPath(p, filepath.Join(dst, rel), fi); ok {
			devs = append(devs, d)
			rules = append(rules, rule(d))
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(devs) == 0 {
		return nil, nil, fmt.Errorf("%s: no device nodes under %s", what, src)
	}
	return devs, rules, nil
}

func validPerms(p string) bool {
	return p != "" && len(p) <= 3 && strings.Trim(p, "rwm") == ""
}

// skipHostDevDirs are the /dev entries a privileged container does not get
// from the host: its own devpts, shm, mqueue replace them, and the rest are
// host runtime state.
var skipHostDevDirs = []string{"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}

// hostDevices lists every device node under dir (the host's /dev) for a
// privileged container, except the console (the runtime sets up the
// container's own).
func hostDevices(dir string) ([]specs.LinuxDevice, error) {
	var devs []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil // a node that went away or that we may not read
			}
			return err
		}
		if de.IsDir() {
			if p != dir {
				for _, s := range skipHostDevDirs {
					if de.Name() == s {
						return filepath.SkipDir
					}
				}
			}
			return nil
		}
		if de.Type()&fs.ModeSymlink != 0 || de.Name() == "console" {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d, ok := deviceFromPath(p, filepath.Join("/dev", rel), fi); ok {
			devs = append(devs, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--privileged: listing the host's devices in %s: %w", dir, err)
	}
	return devs, nil
}
