package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const rootlessUID = 1000

// runtimeAs runs hull-runtime as an unprivileged user.
func (e *env) runtimeAs(uid uint32, args ...string) (string, error) {
	return e.runtimeAsIDs(uid, uid, args...)
}

// runtimeAsIDs is runtimeAs with a primary group of its own.
func (e *env) runtimeAsIDs(uid, gid uint32, args ...string) (string, error) {
	cmd := exec.Command(runtimeBin, append([]string{"--root", e.root}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/nonexistent"}
	// A file, not a pipe: a detached container keeps its stdio open.
	f, err := os.CreateTemp(e.dir, "out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	data, _ := os.ReadFile(f.Name())
	return string(data), err
}

// rootlessEnv is a bundle from `spec --rootless` for rootlessUID, owned by it.
func rootlessEnv(t *testing.T, args ...string) *env {
	e := newEnv(t, args...)
	var ns []specs.LinuxNamespace
	for _, n := range e.spec.Linux.Namespaces {
		if n.Type != "network" {
			ns = append(ns, n)
		}
	}
	e.spec.Linux.Namespaces = append(ns, specs.LinuxNamespace{Type: "user"})
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: rootlessUID, Size: 1}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: rootlessUID, Size: 1}}
	var mounts []specs.Mount
	for _, m := range e.spec.Mounts {
		switch {
		case m.Destination == "/sys":
			m = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
		case m.Type == "cgroup" || m.Type == "cgroup2":
			continue
		}
		var opts []string
		for _, o := range m.Options {
			if !strings.HasPrefix(o, "gid=") && !strings.HasPrefix(o, "uid=") {
				opts = append(opts, o)
			}
		}
		m.Options = opts
		mounts = append(mounts, m)
	}
	e.spec.Mounts = mounts
	e.spec.Linux.Resources = nil
	// No cgroup of our own: the unprivileged user cannot create one on this host.
	e.spec.Linux.CgroupsPath = ""
	if err := os.MkdirAll(e.root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(e.root, rootlessUID, rootlessUID); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRootlessContainerRunsAsAnUnprivilegedUser(t *testing.T) {
	e := rootlessEnv(t, "sh", "-c", "id -u; cat /proc/self/uid_map; hostname")
	if err := bundleWrite(e); err != nil {
		t.Fatal(err)
	}
	out, err := e.runtimeAs(rootlessUID, "run", "--bundle", e.bundle, "rl")
	f := strings.Fields(out)
	if err != nil || len(f) < 5 || f[0] != "0" || f[2] != "1000" || f[4] != "hull" {
		t.Fatalf("rootless run: %v, output %q", err, out)
	}
	if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
		t.Fatalf("rootless run left state: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(e.root)); err != nil {
		t.Fatal(err)
	}
}

func TestRootlessLifecycleWithExec(t *testing.T) {
	e := rootlessEnv(t, "sleep", "100")
	if err := bundleWrite(e); err != nil {
		t.Fatal(err)
	}
	if out, err := e.runtimeAs(rootlessUID, "run", "-d", "--bundle", e.bundle, "rl2"); err != nil {
		t.Fatalf("rootless run -d: %v %s", err, out)
	}
	out, err := e.runtimeAs(rootlessUID, "exec", "rl2", "sh", "-c", "id -u; readlink /proc/1/exe")
	if err != nil || !strings.Contains(out, "0\n") || !strings.Contains(out, "/bin/busybox") {
		t.Fatalf("rootless exec: %v %q", err, out)
	}
	if out, err := e.runtimeAs(rootlessUID, "delete", "-f", "rl2"); err != nil {
		t.Fatalf("rootless delete: %v %s", err, out)
	}
}

// bundleWrite writes config.json without a cgroup path (rootless: none).
func bundleWrite(e *env) error { return writeConfig(e.bundle, e.spec) }

// On a pure cgroup v2 host a subtree delegated to the user gives a rootless
// container real limits (the VM tier runs this; hybrid hosts have no such thing).
func TestRootlessContainerGetsLimitsInADelegatedCgroupV2Subtree(t *testing.T) {
	if !cgroup2Unified(t) {
		t.Skip("needs a pure cgroup v2 host to delegate a subtree (the VM tier runs this)")
	}
	e := rootlessEnv(t, "cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max")
	// The delegated subtree: owned by the user, controllers enabled for it.
	deleg := filepath.Join("/sys/fs/cgroup", e.cgroup)
	if err := os.Mkdir(deleg, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"} {
		if err := os.Chown(filepath.Join(deleg, f), rootlessUID, rootlessUID); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory +pids"), 0); err != nil {
		t.Skipf("cannot enable memory and pids for children of the root cgroup: %v", err)
	}
	// The runtime must start inside the subtree: moving a process needs write
	// access to the common ancestor's cgroup.procs.
	launcher := filepath.Join(deleg, "launcher")
	if err := os.Mkdir(launcher, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"", "cgroup.procs"} {
		_ = os.Chown(filepath.Join(launcher, f), rootlessUID, rootlessUID)
	}
	if err := os.WriteFile(filepath.Join(deleg, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(launcher) })
	limit, pids := int64(64<<20), int64(33)
	e.spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}, Pids: &specs.LinuxPids{Limit: &pids}}
	e.spec.Linux.CgroupsPath = e.cgroup + "/ctr"
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
	if err := bundleWrite(e); err != nil {
		t.Fatal(err)
	}
	cgfd, err := syscall.Open(launcher, syscall.O_DIRECTORY|syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(cgfd)
	cmd := exec.Command(runtimeBin, "--root", e.root, "run", "--bundle", e.bundle, "deleg")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: rootlessUID, Gid: rootlessUID}, UseCgroupFD: true, CgroupFD: cgfd}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/nonexistent"}
	out, err := cmd.CombinedOutput()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 2 || f[0] != "67108864" || f[1] != "33" {
		t.Fatalf("rootless run in a delegated subtree: %v, output %q (want memory.max 67108864, pids.max 33)", err, out)
	}
	if _, err := os.Stat(filepath.Join(deleg, "ctr")); err == nil {
		t.Fatal("the container's cgroup was left behind")
	}
}
