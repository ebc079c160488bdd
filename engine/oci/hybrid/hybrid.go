// Package hybrid lets crun run on hybrid cgroup hosts. crun refuses a host
// whose cgroup2 mount at /sys/fs/cgroup/unified holds controllers ("cgroups
// in hybrid mode not supported, drop all controllers from cgroupv2"); with
// that mount hidden it drives the v1 hierarchies like runc. Argv hides it
// in a private mount namespace of the runtime command only: the host's
// mounts are untouched. Kept free of heavy imports: hull-monitor links it.
package hybrid

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// unified is where systemd's hybrid layout mounts cgroup2.
const unified = "/sys/fs/cgroup/unified"

// Argv returns the command line that runs runtime with args: argv itself,
// or, for crun on a host whose unified mount has controllers, the same
// command under util-linux's `unshare -m` (absolute paths: the
// caller may not search PATH) with that mount unmounted first.
func Argv(runtime string, args ...string) []string {
	argv := append([]string{runtime}, args...)
	if !strings.Contains(filepath.Base(runtime), "crun") || !unifiedHasControllers() {
		return argv
	}
	// A slave mount namespace: the umount stays inside it, and mounts the
	// host makes still reach the container (Kubernetes' HostToContainer
	// volumes). Container-to-host propagation (Bidirectional) cannot cross
	// it: crun on a hybrid host does not get that.
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return argv // crun's own error then says what is wrong
	}
	return append([]string{unshare, "-m", "--propagation", "slave", "--", "/bin/sh", "-c", `umount ` + unified + ` && exec "$0" "$@"`}, argv...)
}

func unifiedHasControllers() bool {
	var st unix.Statfs_t
	if unix.Statfs(unified, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return false
	}
	b, err := os.ReadFile(unified + "/cgroup.controllers")
	return err == nil && len(strings.TrimSpace(string(b))) > 0
}
