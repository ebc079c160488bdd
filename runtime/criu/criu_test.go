package criu

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The mounts of a default busybox container on a pure cgroup v2 host (from
// the init's mountinfo, read from the host), plus a bind of a host
// directory, an rbind with a submount, and the terminal's /dev/console.
const containerMountinfo = `49 35 0:26 /b/rootfs / ro,relatime - tmpfs tmpfs rw,inode64
50 49 0:30 / /proc rw,relatime - proc proc rw
51 49 0:31 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755,inode64
52 51 0:32 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
53 51 0:33 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k,inode64
54 51 0:29 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw
55 49 0:34 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
56 55 0:27 /c1 /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
57 50 0:35 / /proc/acpi ro,relatime - tmpfs tmpfs ro,inode64
58 50 0:5 /null /proc/kcore rw,relatime - devtmpfs devtmpfs rw,size=474060k,mode=755,inode64
59 50 0:5 /null /proc/keys rw,relatime - devtmpfs devtmpfs rw,size=474060k,mode=755,inode64
62 50 0:30 /bus /proc/bus ro,relatime - proc proc rw
65 50 0:30 /sys /proc/sys ro,relatime - proc proc rw
70 49 0:26 /data\040dir /data rw,relatime - tmpfs tmpfs rw,inode64
71 49 8:1 /srv/host /host rw,relatime - ext4 /dev/sda1 rw
72 71 0:40 / /host/sub rw,relatime - tmpfs tmpfs rw
73 51 0:32 /0 /dev/console rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
`

func testSpec() *specs.Spec {
	return &specs.Spec{
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/data", Type: "bind", Source: "/tmp/data dir", Options: []string{"rbind"}},
			{Destination: "/host", Source: "/srv/host", Options: []string{"rbind", "ro"}},
		},
		Linux: &specs.Linux{MaskedPaths: []string{"/proc/kcore", "/proc/keys", "/proc/acpi"}},
	}
}

func TestExternalMountsNamesWhatComesFromTheHost(t *testing.T) {
	mi, err := parseMountinfo(containerMountinfo)
	if err != nil {
		t.Fatal(err)
	}
	if mi[13].mountPoint != "/data" || mi[13].root != "/data dir" {
		t.Fatalf("octal escapes: got %q %q", mi[13].mountPoint, mi[13].root)
	}
	got, err := externalMounts(mi, testSpec(), true, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []extMount{
		{MountPoint: "/proc/kcore", Key: "/dev/null", Kind: mountNull},
		{MountPoint: "/proc/keys", Key: "/dev/null", Kind: mountNull},
		{MountPoint: "/data", Key: "/data", Kind: mountBind},
		{MountPoint: "/host", Key: "/host", Kind: mountBind},
		{MountPoint: "/host/sub", Key: "/host/sub", Kind: mountBindSub, Dest: "/host"},
		{MountPoint: "/dev/console", Key: "/dev/console", Kind: mountConsole},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("external mounts:\n got %+v\nwant %+v", got, want)
	}
	// Without a terminal /dev/console is a bind of /dev/pts: CRIU's own.
	got, _ = externalMounts(mi, testSpec(), true, false)
	for _, m := range got {
		if m.MountPoint == "/dev/console" {
			t.Errorf("/dev/console of a container without a terminal is external: %+v", m)
		}
	}
}

func TestExternalMountsCgroupBindsWithoutACgroupNamespace(t *testing.T) {
	mi, _ := parseMountinfo(`1 0 0:26 /b/rootfs / rw - tmpfs tmpfs rw
2 1 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw
3 2 0:41 /hull/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
4 2 0:42 /hull/c1 /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
`)
	got, err := externalMounts(mi, &specs.Spec{}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []extMount{
		{MountPoint: "/sys/fs/cgroup/memory", Key: "/sys/fs/cgroup/memory", Kind: mountCgroup, Controllers: []string{"memory"}},
		{MountPoint: "/sys/fs/cgroup/cpu,cpuacct", Key: "/sys/fs/cgroup/cpu,cpuacct", Kind: mountCgroup, Controllers: []string{"cpu", "cpuacct"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	src, err := mountSource(want[1], &specs.Spec{}, "/b", map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct/hull/c2"}, "")
	if err != nil || src != "/sys/fs/cgroup/cpu,cpuacct/hull/c2" {
		t.Errorf("cgroup mount source %q, %v", src, err)
	}
	// In a cgroup namespace the container mounted its own.
	if got, _ := externalMounts(mi, &specs.Spec{}, true, false); len(got) != 0 {
		t.Errorf("cgroup mounts in a cgroup namespace are external: %+v", got)
	}
}

func TestExternalMountsRefusesUnknownHostMounts(t *testing.T) {
	mi, _ := parseMountinfo(`1 0 0:26 /b/rootfs / rw - tmpfs tmpfs rw
2 1 8:1 /etc/secret /secret rw - ext4 /dev/sda1 rw
`)
	_, err := externalMounts(mi, &specs.Spec{}, true, false)
	if err == nil || !strings.Contains(err.Error(), "/secret") {
		t.Fatalf("a host mount not in config.json: err %v", err)
	}
}

func TestMountSourceMapsImageKeysToThisHost(t *testing.T) {
	spec := testSpec()
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/rel", Type: "bind", Source: "relative"})
	for _, c := range []struct {
		m    extMount
		want string
	}{
		{extMount{MountPoint: "/data", Key: "/data", Kind: mountBind}, "/tmp/data dir"},
		{extMount{MountPoint: "/host/sub", Key: "/host/sub", Kind: mountBindSub, Dest: "/host"}, "/srv/host/sub"},
		{extMount{MountPoint: "/rel", Key: "/rel", Kind: mountBind}, "/bundle/relative"},
		{extMount{MountPoint: "/proc/kcore", Key: nullKey, Kind: mountNull}, "/dev/null"},
		{extMount{MountPoint: "/dev/console", Key: "/dev/console", Kind: mountConsole}, "/dev/pts/7"},
		{extMount{MountPoint: "/dev/fuse", Key: "/dev/fuse", Kind: mountDevice}, "/dev/fuse"},
	} {
		got, err := mountSource(c.m, spec, "/bundle", nil, "/dev/pts/7")
		if err != nil || got != c.want {
			t.Errorf("%+v: got %q, %v; want %q", c.m, got, err, c.want)
		}
	}
	if _, err := mountSource(extMount{MountPoint: "/gone", Key: "/gone", Kind: mountBind}, spec, "/bundle", nil, ""); err == nil {
		t.Error("a bind the new config.json lacks was accepted")
	}
}

func TestMetaFromSpecRestoresRuncImagesTheRuncWay(t *testing.T) {
	m := metaFromSpec(testSpec(), []string{"/dev/null", "pipe:[123]", "pipe:[123]"})
	var kinds []string
	for _, x := range m.Mounts {
		kinds = append(kinds, x.Key+"="+x.Kind)
	}
	if want := []string{"/data=bind", "/host=bind", "/dev/null=null"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("mounts %v, want %v", kinds, want)
	}
	if len(m.Files) != 2 || m.Files[0].Fd != 1 || m.Files[0].Key != "pipe:[123]" {
		t.Errorf("files %+v", m.Files)
	}
}

func TestMakeDirUndoRemovesOnlyWhatItCreated(t *testing.T) {
	base := t.TempDir()
	deep := filepath.Join(base, "a", "b", "c")
	undo, err := makeDir(deep)
	if err != nil {
		t.Fatal(err)
	}
	undo()
	if _, err := os.Stat(filepath.Join(base, "a")); !os.IsNotExist(err) {
		t.Errorf("undo left %s/a", base)
	}
	existing := filepath.Join(base, "images")
	if err := os.Mkdir(existing, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(existing, "old"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	undo, err = makeDir(existing)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(existing, "new"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	undo()
	ents, _ := os.ReadDir(existing)
	if len(ents) != 1 || ents[0].Name() != "old" {
		t.Errorf("undo of an existing dir left %v, want just old", ents)
	}
}

func TestUnusableErrorSaysWhatToDo(t *testing.T) {
	e := &UnusableError{Action: "checkpoint", Path: "/usr/sbin/criu", Version: "3.17.1", Kernel: "6.18.44",
		Output: "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds"}
	msg := e.Error()
	for _, want := range []string{"checkpoint: CRIU 3.17.1", "cannot checkpoint on kernel 6.18.44", "vDSO", "install a CRIU that supports this kernel"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	e = &UnusableError{Action: "restore", Path: "criu", Missing: true}
	if msg := e.Error(); !strings.Contains(msg, "not installed") || !strings.Contains(msg, "cannot restore") {
		t.Errorf("missing criu: %q", msg)
	}
	if _, err := Find("restore", filepath.Join(t.TempDir(), "criu")); err == nil {
		t.Error("Find of a missing binary succeeded")
	}
}

func TestLogErrorsQuotesTheLastErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dump.log")
	log := "(00.1) info\n(00.2) Error (criu/a.c:1): first\n(00.3) more\n(00.4) Error (criu/b.c:2): second\n"
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := logErrors(p, 1); got != "Error (criu/b.c:2): second" {
		t.Errorf("got %q", got)
	}
	if got := logErrors(p, 5); got != "Error (criu/a.c:1): first; Error (criu/b.c:2): second" {
		t.Errorf("got %q", got)
	}
}

func TestExtNSKeyIsRuncs(t *testing.T) {
	if extNSKey("net") != "extRootNetNS" || extNSKey("pid") != "extRootPidNS" {
		t.Errorf("got %s %s", extNSKey("net"), extNSKey("pid"))
	}
}
