package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// mount is one line of /proc/self/mountinfo.
type mount struct {
	point, fstype, super string
}

func mounts() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent maj:min root point opts [optional...] - fstype source super
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, s := range fields {
			if s == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+3 >= len(fields) {
			continue
		}
		out = append(out, mount{point: unescape(fields[4]), fstype: fields[sep+1], super: fields[sep+3]})
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupMounts are the mount points of every cgroup (v1) and cgroup2 hierarchy.
func cgroupMounts() []mount {
	all, _ := mounts()
	var out []mount
	for _, m := range all {
		if m.fstype == "cgroup" || m.fstype == "cgroup2" {
			out = append(out, m)
		}
	}
	return out
}

func isMounted(point string) bool {
	all, _ := mounts()
	for _, m := range all {
		if m.point == point {
			return true
		}
	}
	return false
}

// memoryFiles says where the container cgroup's peak and current memory are
// read from: memory.max_usage_in_bytes (v1) or memory.peak (v2).
func memoryFiles(cgroupsPath string) (peak, current string, err error) {
	var v2 string
	for _, m := range cgroupMounts() {
		if m.fstype == "cgroup" && hasOpt(m.super, "memory") {
			dir := filepath.Join(m.point, cgroupsPath)
			return filepath.Join(dir, "memory.max_usage_in_bytes"), filepath.Join(dir, "memory.usage_in_bytes"), nil
		}
		if m.fstype == "cgroup2" && m.point == "/sys/fs/cgroup" {
			v2 = m.point
		}
	}
	if v2 == "" {
		return "", "", errors.New("no memory cgroup hierarchy is mounted")
	}
	dir := filepath.Join(v2, cgroupsPath)
	return filepath.Join(dir, "memory.peak"), filepath.Join(dir, "memory.current"), nil
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// cgroupMode describes the cgroup layout this process sees.
func cgroupMode() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return "unknown"
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2 (unified)"
	}
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "hybrid (v1 + /sys/fs/cgroup/unified)"
	}
	return "v1 (legacy)"
}

// findCgroups lists the directories named name directly under each cgroup
// hierarchy's root (deduplicated: cpu and cpuacct may be one hierarchy).
func findCgroups(name string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range cgroupMounts() {
		dir := filepath.Join(m.point, name)
		var st unix.Stat_t
		if unix.Stat(dir, &st) != nil {
			continue
		}
		key := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
		if !seen[key] {
			seen[key] = true
			out = append(out, dir)
		}
	}
	return out
}

// removeCgroups removes the bench's parent cgroup name from every hierarchy,
// children first, killing whatever still runs in them. It returns what it
// could not remove.
func removeCgroups(name string) []string {
	var left []string
	for _, top := range findCgroups(name) {
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// Deepest first.
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := rmdirCgroup(d); err != nil {
				left = append(left, fmt.Sprintf("%s: %v", d, err))
			}
		}
	}
	return left
}

func rmdirCgroup(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		// Still populated: thaw (v1 freezer) and kill what is left.
		_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
		_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		if b, rerr := os.ReadFile(filepath.Join(dir, "cgroup.procs")); rerr == nil {
			for _, f := range strings.Fields(string(b)) {
				if pid, perr := strconv.Atoi(f); perr == nil && pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}
