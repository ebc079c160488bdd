// Package rootless runs an unprivileged user's hull inside a user and a
// mount namespace of that user's own, as Podman does: there the user is
// root over a range of subordinate ids (/etc/subuid, /etc/subgid, mapped
// with newuidmap and newgidmap), so images unpack with their owners,
// snapshots mount as overlays, and the OCI runtime and monitors run as
// usual. The namespaces are held by a pause process (`sleep infinity`) made
// on first use, recorded in RUNROOT/pause.pid; every later hull command of
// the user joins them with nsenter(1), so mounts made by one command are
// there for the next.
package rootless

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/engine/internal/proc"
)

// envVar marks a process re-executed into the namespaces (its value is the
// pause process's pid), so that it does not try again.
const envVar = "_HULL_ROOTLESS_PAUSE"

// Inside reports whether this process was re-executed into the user's
// rootless namespaces.
func Inside() bool { return os.Getenv(envVar) != "" }

// Enter re-executes the running program with args (without argv[0]) inside
// the user's rootless namespaces, making them first if there are none (or
// their pause process is gone, e.g. after a reboot). It returns nil without
// doing anything for root or a process already inside; otherwise it returns
// only on error. runroot is the per-boot state dir, where pause.pid lives.
func Enter(runroot string, args []string) error {
	if os.Geteuid() == 0 || Inside() {
		return nil
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("rootless: nsenter (util-linux) not found: %w", err)
	}
	pid, err := pause(runroot)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("rootless: find own binary: %w", err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	// Joining a mount namespace moves the cwd to its root: --wd keeps the
	// user's, so relative paths in args mean what they meant.
	argv := append([]string{"nsenter", "--user", "--mount", "--target", strconv.Itoa(pid), "--wd=" + cwd, "--", self}, args...)
	env := append(os.Environ(), envVar+"="+strconv.Itoa(pid))
	if err := unix.Exec(nsenter, argv, env); err != nil {
		return fmt.Errorf("rootless: exec nsenter: %w", err)
	}
	return nil
}

// pause returns the pid of the user's pause process, starting one if needed.
// A lock file serialises two commands that both find none.
func pause(runroot string) (int, error) {
	if err := os.MkdirAll(runroot, 0o700); err != nil {
		return 0, fmt.Errorf("rootless: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(runroot, "pause.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("rootless: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return 0, fmt.Errorf("rootless: lock %s: %w", lock.Name(), err)
	}
	pidFile := filepath.Join(runroot, "pause.pid")
	if pid, ok := running(pidFile); ok {
		return pid, nil
	}
	pid, start, err := startPause()
	if err != nil {
		return 0, err
	}
	tmp := pidFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", pid, start)), 0o600); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		return 0, fmt.Errorf("rootless: %w", err)
	}
	if err := os.Rename(tmp, pidFile); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		return 0, fmt.Errorf("rootless: %w", err)
	}
	return pid, nil
}

// running reads "PID STARTTIME" from pidFile and reports whether that very
// process (not a later one with its pid) still runs.
func running(pidFile string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(string(b), "%d %d", &pid, &start); err != nil || pid <= 0 {
		return 0, false
	}
	if st, err := proc.StartTime(pid); err != nil || st != start {
		return 0, false
	}
	return pid, true
}

// startPause starts `sleep infinity` in a new user and mount namespace, in
// a session of its own, and maps its ids: 0 to the user, 1.. to the user's
// subordinate range.
func startPause() (pid int, start uint64, err error) {
	uidMap, gidMap, err := idMaps()
	if err != nil {
		return 0, 0, err
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return 0, 0, fmt.Errorf("rootless: %s not found (apt-get install uidmap): %w", tool, err)
		}
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return 0, 0, fmt.Errorf("rootless: %w", err)
	}
	cmd := exec.Command(sleep, "infinity")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS, Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("rootless: start the pause process in a new user namespace: %w", err)
	}
	pid = cmd.Process.Pid
	fail := func(err error) (int, uint64, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, 0, err
	}
	for _, m := range []struct {
		tool string
		args []string
	}{{"newuidmap", uidMap}, {"newgidmap", gidMap}} {
		out, err := exec.Command(m.tool, append([]string{strconv.Itoa(pid)}, m.args...)...).CombinedOutput()
		if err != nil {
			return fail(fmt.Errorf("rootless: %s %d %s: %v: %s", m.tool, pid, strings.Join(m.args, " "), err, strings.TrimSpace(string(out))))
		}
	}
	if start, err = proc.StartTime(pid); err != nil {
		return fail(fmt.Errorf("rootless: the pause process: %w", err))
	}
	// It lives on after this process: init reaps it.
	_ = cmd.Process.Release()
	return pid, start, nil
}

// idMaps are newuidmap's and newgidmap's arguments: 0 is the user, 1 and
// up the user's subordinate ids.
func idMaps() (uidMap, gidMap []string, err error) {
	uid, gid := os.Getuid(), os.Getgid()
	u, err := user.LookupId(strconv.Itoa(uid))
	name := ""
	if err == nil {
		name = u.Username
	}
	subu, err := subRange("/etc/subuid", name, uid)
	if err != nil {
		return nil, nil, err
	}
	subg, err := subRange("/etc/subgid", name, uid)
	if err != nil {
		return nil, nil, err
	}
	uidMap = []string{"0", strconv.Itoa(uid), "1", "1", strconv.FormatUint(subu[0], 10), strconv.FormatUint(subu[1], 10)}
	gidMap = []string{"0", strconv.Itoa(gid), "1", "1", strconv.FormatUint(subg[0], 10), strconv.FormatUint(subg[1], 10)}
	return uidMap, gidMap, nil
}

// subRange returns the first range (start, count) of name (or uid) in
// file, in /etc/subuid's "NAME:START:COUNT" format.
func subRange(file, name string, uid int) ([2]uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return [2]uint64{}, fmt.Errorf("rootless: %w (a range of subordinate ids is needed: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || (parts[0] != name && parts[0] != strconv.Itoa(uid)) {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 == nil && err2 == nil && count > 0 {
			return [2]uint64{start, count}, nil
		}
	}
	return [2]uint64{}, fmt.Errorf("rootless: %s has no range for user %s (uid %d): add one, e.g. usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", file, name, uid, name)
}
