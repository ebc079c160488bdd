package integration

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CVE-2024-21626: a cwd of /proc/self/fd/N must never reach a directory of the
// runtime's, and no fd of the runtime may reach the container.
func TestCVE_2024_21626_CwdThroughLeakedFdFails(t *testing.T) {
	for fd := 3; fd <= 12; fd++ {
		e := newEnv(t, "pwd")
		e.spec.Process.Cwd = "/proc/self/fd/" + strconv.Itoa(fd)
		id := "cwd" + strconv.Itoa(fd)
		out, code := e.run(id)
		if code == 0 {
			t.Fatalf("cwd /proc/self/fd/%d: container ran with cwd %q", fd, strings.TrimSpace(out))
		}
	}
}

func TestCVE_2024_21626_NoRuntimeFdReachesTheContainer(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.write("fds")
	e.must("run", "-d", "--bundle", e.bundle, "fds")
	pid := e.state("fds").Pid
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, ent := range ents {
		fds = append(fds, ent.Name())
	}
	if strings.Join(fds, ",") != "0,1,2" {
		links := []string{}
		for _, f := range fds {
			l, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + f)
			links = append(links, f+"->"+l)
		}
		t.Fatalf("container process has fds %v, want only stdio", links)
	}
}

// CVE-2019-5736: the container must not be able to write the runtime binary
// through /proc/<init>/exe. The attack holds an O_PATH fd of the init's exe
// and reopens it for writing once the init has exec'd (no longer "text busy").
func TestCVE_2019_5736_InitExeCannotBeReopenedForWriting(t *testing.T) {
	before := fileHash(t, runtimeBin)
	e := newEnv(t, "sleep", "100")
	e.write("exe")
	e.must("create", "--bundle", e.bundle, "exe")
	pid := e.state("exe").Pid
	exe := "/proc/" + strconv.Itoa(pid) + "/exe"
	fd, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s O_PATH: %v", exe, err)
	}
	defer unix.Close(fd)
	e.must("start", "exe")
	e.waitStatus("exe", "running")
	w, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_WRONLY, 0)
	if err == nil {
		w.Close()
		t.Fatal("reopened the init's hull-runtime binary for writing")
	}
	if !errors.Is(err, unix.EROFS) {
		t.Fatalf("reopen for writing: %v, want EROFS (sealed read-only mount)", err)
	}
	if after := fileHash(t, runtimeBin); after != before {
		t.Fatal("the hull-runtime binary changed")
	}
}

func fileHash(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return string(h.Sum(nil))
}

// CVE-2025-31133: a /dev/null in the rootfs that is a symlink must not turn a
// masked path into a bind of whatever it points at.
func TestCVE_2025_31133_DevNullSymlinkDoesNotUnmask(t *testing.T) {
	e := newEnv(t, "sh", "-c", "stat -c %t:%T /proc/cpuinfo; cat /proc/sys/kernel/core_pattern >/dev/null && echo core-ok")
	// No tmpfs on /dev: the rootfs's own /dev is used, with a planted symlink.
	var mounts []specs.Mount
	for _, m := range e.spec.Mounts {
		if m.Destination != "/dev" {
			mounts = append(mounts, m)
		}
	}
	e.spec.Mounts = mounts
	rootfs := filepath.Join(e.bundle, "rootfs")
	if err := os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(rootfs, "dev/null")); err != nil {
		t.Fatal(err)
	}
	e.spec.Linux.MaskedPaths = []string{"/proc/cpuinfo"}
	out, code := e.run("devnull")
	if code != 0 || !strings.Contains(out, "1:3") || !strings.Contains(out, "core-ok") {
		t.Fatalf("masked /proc/cpuinfo is not the null device (exit %d): %q", code, out)
	}
}

// CVE-2021-30465: a mount destination that is a symlink out of the rootfs is
// resolved inside it.
func TestCVE_2021_30465_SymlinkMountDestinationStaysInRootfs(t *testing.T) {
	canary := t.TempDir()
	if err := os.WriteFile(filepath.Join(canary, "canary"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "sh", "-c", "stat -f -c %T /escape/; ls /escape/")
	rootfs := filepath.Join(e.bundle, "rootfs")
	if err := os.Symlink("/../../../../../../../.."+canary, filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/escape", Type: "tmpfs", Source: "tmpfs"})
	out, code := e.run("escape")
	if code != 0 || !strings.Contains(out, "tmpfs") || strings.Contains(out, "canary") {
		t.Fatalf("mount through a symlink: exit %d, output %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(rootfs, canary)); err != nil {
		t.Fatalf("the symlink's target was not created inside the rootfs: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(canary, "canary")); err != nil || string(data) != "host" {
		t.Fatalf("host canary changed: %q %v", data, err)
	}
}

// CVE-2019-19921: /proc replaced by a symlink must make create fail.
func TestCVE_2019_19921_ProcSymlinkIsRefused(t *testing.T) {
	e := newEnv(t, "true")
	rootfs := filepath.Join(e.bundle, "rootfs")
	if err := os.Remove(filepath.Join(rootfs, "proc")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "evil"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/evil", filepath.Join(rootfs, "proc")); err != nil {
		t.Fatal(err)
	}
	e.write("procsym")
	out, err := e.runtime("create", "--bundle", e.bundle, "procsym")
	if err == nil || !strings.Contains(out, "symlink") {
		t.Fatalf("create with /proc a symlink: err %v, output %q", err, out)
	}
}

// CVE-2022-29162: no inheritable capabilities unless the config asks for them.
func TestCVE_2022_29162_NoInheritableCapabilities(t *testing.T) {
	for _, uid := range []uint32{0, 1000} {
		e := newEnv(t, "sh", "-c", "grep -E '^Cap(Inh|Amb)' /proc/self/status")
		e.spec.Process.User.UID, e.spec.Process.User.GID = uid, uid
		id := "inh" + strconv.Itoa(int(uid))
		out, code := e.run(id)
		if code != 0 || strings.Count(out, "0000000000000000") != 2 {
			t.Fatalf("uid %d: inheritable/ambient caps not empty (exit %d): %q", uid, code, out)
		}
	}
}

// CVE-2019-16884: an image must not be able to cover /proc with its own files.
func TestCVE_2019_16884_TmpfsOverProcIsRefused(t *testing.T) {
	for _, dest := range []string{"/proc", "/proc/self", "/proc/sys/kernel"} {
		e := newEnv(t, "true")
		e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs"})
		e.write("procmnt")
		out, err := e.runtime("create", "--bundle", e.bundle, "procmnt")
		if err == nil || !strings.Contains(out, "refused") {
			t.Fatalf("tmpfs on %s: err %v, output %q", dest, err, out)
		}
	}
}

// CVE-2025-52565: /dev/console and /dev/pts/N planted as symlinks in the rootfs
// must not redirect the console bind mount.
func TestCVE_2025_52565_ConsoleSymlinksAreNotFollowed(t *testing.T) {
	e := newEnv(t, "sh", "-c", "stat -c %t /dev/console; cat /proc/sys/kernel/core_pattern >/dev/null && echo core-ok")
	e.spec.Process.Terminal = true
	var mounts []specs.Mount
	for _, m := range e.spec.Mounts {
		if m.Destination != "/dev" {
			mounts = append(mounts, m)
		}
	}
	e.spec.Mounts = mounts
	rootfs := filepath.Join(e.bundle, "rootfs")
	if err := os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(rootfs, "dev/console")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "dev/pts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		if err := os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(rootfs, "dev/pts", strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	out, code := e.run("console")
	// 88 is hex for 136, the pty slave major.
	if code != 0 || !strings.Contains(out, "88") || !strings.Contains(out, "core-ok") {
		t.Fatalf("exit %d, output %q: /dev/console should be the pty and core_pattern untouched", code, out)
	}
}

// CVE-2023-25809: in a user namespace without its own network namespace, sysfs
// is the host's bound in; read-only must hold for /sys/fs/cgroup below it too.
func TestCVE_2023_25809_HostCgroupfsReadOnlyInUserNamespace(t *testing.T) {
	e := newEnv(t, "sh", "-c", "grep -E ' /sys/fs/cgroup[/ ]' /proc/self/mountinfo | grep -v ' ro,\\| ro ' | head -3; echo checked")
	var ns []specs.LinuxNamespace
	for _, n := range e.spec.Linux.Namespaces {
		if n.Type != "network" && n.Type != "cgroup" {
			ns = append(ns, n)
		}
	}
	e.spec.Linux.Namespaces = append(ns, specs.LinuxNamespace{Type: "user"})
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
	var mounts []specs.Mount
	for _, m := range e.spec.Mounts {
		if m.Type != "cgroup" && m.Type != "cgroup2" {
			mounts = append(mounts, m)
		}
	}
	e.spec.Mounts = mounts
	out, code := e.run("rlcg")
	if code != 0 || strings.TrimSpace(out) != "checked" {
		t.Fatalf("writable cgroup mounts under /sys in a user namespace (exit %d):\n%s", code, out)
	}
}

// Idmapped bind mounts: files owned by host uid 1000 show up as container
// uid 1000 through the container's user namespace mapping.
func TestIdmappedBindMountShowsHostOwnersThroughTheMapping(t *testing.T) {
	data := t.TempDir()
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(data, "owned")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "sh", "-c", "stat -c %u:%g /idmapped/owned /plain/owned")
	// The rootfs belongs to host root, not to the mapped container root: make the mount points.
	for _, d := range []string{"idmapped", "plain"} {
		if err := os.Mkdir(filepath.Join(e.bundle, "rootfs", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: "user"})
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/idmapped", Source: data, Type: "bind", Options: []string{"rbind", "idmap"}},
		specs.Mount{Destination: "/plain", Source: data, Type: "bind", Options: []string{"rbind"}})
	out, code := e.run("idmap")
	if strings.Contains(out, "does not support idmapped mounts") {
		t.Skipf("the filesystem of the test's temp dir cannot be idmapped on this kernel: %s", out)
	}
	lines := strings.Fields(out)
	if code != 0 || len(lines) != 2 || lines[0] != "1000:1000" || lines[1] != "65534:65534" {
		t.Fatalf("exit %d, output %q: want 1000:1000 through the idmapped mount, 65534:65534 through the plain one", code, out)
	}
}

// Kubernetes' Bidirectional volumes: with rootfsPropagation rshared and an
// rshared bind of a shared host directory, a mount the container makes
// there reaches the host, and one made under the rootfs does not.
func TestRsharedBindPropagatesTheContainersMountsToTheHost(t *testing.T) {
	e := newEnv(t, "sh", "-c", "mkdir -p /shared/sub && mount -t tmpfs -o size=1m fromcontainer /shared/sub && mount -t tmpfs -o size=1m undercontainer /tmp && touch /shared/sub/made-in-container")
	src := t.TempDir()
	if err := unix.Mount(src, src, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	// Everything at or below src and the rootfs goes, stacked mounts too,
	// also when the test fails half-way (a mount that propagated back).
	t.Cleanup(func() { unmountAllUnder(src) })
	if err := unix.Mount("", src, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	// The rootfs is a shared mount point of its own, as an engine's overlay
	// is: pivot_root failed (EINVAL) while its copy stayed shared.
	rootfs := filepath.Join(e.bundle, "rootfs")
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountAllUnder(rootfs) })
	if err := unix.Mount("", rootfs, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: src, Options: []string{"rbind", "rw", "rshared"}})
	e.spec.Linux.RootfsPropagation = "rshared"
	e.spec.Process.Capabilities.Bounding = append(e.spec.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	e.spec.Process.Capabilities.Effective = append(e.spec.Process.Capabilities.Effective, "CAP_SYS_ADMIN")
	e.spec.Process.Capabilities.Permitted = append(e.spec.Process.Capabilities.Permitted, "CAP_SYS_ADMIN")
	if out, code := e.run("rshared"); code != 0 {
		t.Fatalf("container: exit %d: %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(src, "sub", "made-in-container")); err != nil {
		t.Errorf("the container's mount in the rshared volume did not reach the host: %v", err)
	}
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (bool, bool) { return m.Source != "undercontainer", false })
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) > 0 {
		t.Errorf("a mount made under the container's rootfs reached the host: %s", mounts[0].Mountpoint)
	}
}

// unmountAllUnder detaches every mount at or below dir, deepest first.
func unmountAllUnder(dir string) {
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(mounts[i].Mountpoint, unix.MNT_DETACH)
	}
}
