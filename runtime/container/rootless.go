package container

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/nsenter"
)

// ctorStart creates the namespaces in the nsenter constructor of the init
// instead of with clone flags, for what clone cannot do: without privilege the
// user namespace must be unshared (an execve as an unmapped uid would drop the
// capabilities before newuidmap could map us), and a time namespace takes its
// offsets before any process enters it, which only unshare + fork allows. The
// constructor unshares the user namespace, we write its id maps, it unshares
// the others (time last, with its offsets) and forks the real init.
type ctorStart struct {
	spec       *specs.Spec
	userns     bool
	sync, pipe *os.File // our ends: handshake socket, pid pipe
	close      func()
}

// newCtorStart rewrites cmd to create its namespaces in the constructor.
// timeOffsets is nil unless a new time namespace is wanted.
func newCtorStart(cmd *exec.Cmd, spec *specs.Spec, timeOffsets *string) (*ctorStart, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("userns socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "userns-sync"), os.NewFile(uintptr(fds[1]), "userns-sync-child")
	pidR, pidW, err := os.Pipe()
	if err != nil {
		ours.Close()
		theirs.Close()
		return nil, err
	}
	attr := cmd.SysProcAttr
	r := &ctorStart{spec: spec, userns: attr.Cloneflags&unix.CLONE_NEWUSER != 0, sync: ours, pipe: pidR}
	r.close = func() { ours.Close(); theirs.Close(); pidR.Close(); pidW.Close() }
	flags := attr.Cloneflags &^ unix.CLONE_NEWUSER
	attr.Cloneflags, attr.UidMappings, attr.GidMappings, attr.Credential = 0, nil, nil, nil
	cmd.ExtraFiles = append(cmd.ExtraFiles, theirs, pidW)
	n := 2 + len(cmd.ExtraFiles)
	cmd.Env = append(cmd.Env,
		nsenter.EnvForkPidFd+"="+strconv.Itoa(n),
		nsenter.EnvUnshare+"="+strconv.Itoa(int(flags)))
	if r.userns {
		cmd.Env = append(cmd.Env, nsenter.EnvUsernsSync+"="+strconv.Itoa(n-1))
	}
	if timeOffsets != nil {
		cmd.Env = append(cmd.Env, nsenter.EnvTimeOffsets+"="+*timeOffsets)
	}
	return r, nil
}

// finish maps the ids of the started intermediate and returns the real init.
func (r *ctorStart) finish(cmd *exec.Cmd) (*os.Process, error) {
	fail := func(err error) (*os.Process, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	if r.userns {
		buf := make([]byte, 1)
		if _, err := r.sync.Read(buf); err != nil || buf[0] != 'U' {
			return fail(fmt.Errorf("the init did not create its user namespace: %v", err))
		}
		if err := writeIDMaps(cmd.Process.Pid, r.spec.Linux.UIDMappings, r.spec.Linux.GIDMappings); err != nil {
			return fail(err)
		}
		if _, err := r.sync.Write([]byte{'M'}); err != nil {
			return fail(fmt.Errorf("resume the init: %w", err))
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("create the container's namespaces: %w", err)
	}
	line, err := bufio.NewReader(r.pipe).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil || pid <= 0 {
		return nil, fmt.Errorf("no pid from the init (%v)", err)
	}
	return os.FindProcess(pid)
}

// writeIDMaps maps a user namespace: root writes the maps itself; without
// privilege a single map of our own uid/gid is written directly (with setgroups
// denied, as the kernel requires), anything else needs the setuid helpers
// newuidmap/newgidmap and /etc/subuid, /etc/subgid.
func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	proc := "/proc/" + strconv.Itoa(pid) + "/"
	if os.Geteuid() == 0 {
		for _, m := range []struct {
			file string
			maps []specs.LinuxIDMapping
		}{{"uid_map", uids}, {"gid_map", gids}} {
			var b strings.Builder
			for _, e := range m.maps {
				fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
			}
			if err := os.WriteFile(proc+m.file, []byte(b.String()), 0); err != nil {
				return fmt.Errorf("write %s: %w", m.file, err)
			}
		}
		return nil
	}
	own := len(uids) == 1 && len(gids) == 1 && uids[0].Size == 1 && gids[0].Size == 1 &&
		int(uids[0].HostID) == os.Geteuid() && int(gids[0].HostID) == os.Getegid()
	if own {
		if err := os.WriteFile(proc+"setgroups", []byte("deny"), 0); err != nil {
			return fmt.Errorf("rootless: deny setgroups: %w", err)
		}
		if err := os.WriteFile(proc+"uid_map", []byte(fmt.Sprintf("%d %d 1", uids[0].ContainerID, uids[0].HostID)), 0); err != nil {
			return fmt.Errorf("rootless: write uid_map: %w", err)
		}
		if err := os.WriteFile(proc+"gid_map", []byte(fmt.Sprintf("%d %d 1", gids[0].ContainerID, gids[0].HostID)), 0); err != nil {
			return fmt.Errorf("rootless: write gid_map: %w", err)
		}
		return nil
	}
	for _, m := range []struct {
		tool  string
		field string
		maps  []specs.LinuxIDMapping
	}{{"newuidmap", "linux.uidMappings", uids}, {"newgidmap", "linux.gidMappings", gids}} {
		path, err := exec.LookPath(m.tool)
		if err != nil {
			return fmt.Errorf("rootless: %s maps more than your own id, which needs %s (apt-get install uidmap): %w", m.field, m.tool, err)
		}
		args := []string{strconv.Itoa(pid)}
		for _, e := range m.maps {
			args = append(args, strconv.Itoa(int(e.ContainerID)), strconv.Itoa(int(e.HostID)), strconv.Itoa(int(e.Size)))
		}
		out, err := exec.Command(path, args...).CombinedOutput()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return fmt.Errorf("rootless: %s %s (check /etc/subuid and /etc/subgid): %s", m.tool, strings.Join(args, " "), strings.TrimSpace(string(out)))
			}
			return fmt.Errorf("rootless: %s: %w", m.tool, err)
		}
	}
	return nil
}
