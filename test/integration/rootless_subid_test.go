package integration

import (
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// subIDUser is prepared by ../shared/vm/rootless-user.sh (scripts/test.sh runs
// it): a user with /etc/subuid and /etc/subgid ranges.
const subIDUser = "rootlesstest"

// A rootless mapping wider than the user's own id goes through the setuid
// helpers newuidmap/newgidmap and the user's subordinate ranges.
func TestRootlessWithSubordinateIDsUsesNewuidmap(t *testing.T) {
	u, err := user.Lookup(subIDUser)
	if err != nil {
		t.Skipf("no user %s (run ../shared/vm/rootless-user.sh): %v", subIDUser, err)
	}
	if _, err := exec.LookPath("newuidmap"); err != nil {
		t.Skip("newuidmap is not installed (apt-get install uidmap)")
	}
	start, size := subRange(t, "/etc/subuid", subIDUser)
	gstart, gsize := subRange(t, "/etc/subgid", subIDUser)
	uid64, _ := strconv.ParseUint(u.Uid, 10, 32)
	uid := uint32(uid64)
	// The user's primary group need not equal its uid (newgidmap checks it).
	gid64, _ := strconv.ParseUint(u.Gid, 10, 32)
	gid := uint32(gid64)
	e := rootlessEnv(t, "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u")
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uid, Size: 1}, {ContainerID: 1, HostID: start, Size: size}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: gid, Size: 1}, {ContainerID: 1, HostID: gstart, Size: gsize}}
	if err := bundleWrite(e); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(e.root, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	out, err := e.runtimeAsIDs(uid, gid, "run", "--bundle", e.bundle, "subid")
	f := strings.Fields(out)
	// Two uid_map lines and two gid_map lines of three fields each, then id -u.
	if err != nil || len(f) != 13 || f[4] != strconv.Itoa(int(start)) || f[12] != "0" {
		t.Fatalf("rootless run with subordinate ids: %v, output %q", err, out)
	}
}

func subRange(t *testing.T, file, name string) (start, size uint32) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Skipf("%s: %v", file, err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) == 3 && f[0] == name {
			a, _ := strconv.ParseUint(f[1], 10, 32)
			b, _ := strconv.ParseUint(f[2], 10, 32)
			return uint32(a), uint32(b)
		}
	}
	t.Skipf("%s has no range for %s", file, name)
	return 0, 0
}
