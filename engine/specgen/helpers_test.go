package specgen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/capability"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// testHost is a fixed machine, so results do not depend on the test host:
// cgroup v1, 4 CPUs, a nofile hard limit of 20000 and no CAP_SYS_RESOURCE
// (as on this VM).
func testHost() *Host {
	var caps []string
	for _, c := range capability.ListKnown() {
		caps = append(caps, "CAP_"+strings.ToUpper(c.String()))
	}
	return &Host{
		Hostname:     "hosty",
		NumCPU:       4,
		SwapLimit:    true,
		OnlineCPUs:   "0-3",
		Capabilities: caps,
		RlimitHard:   map[string]uint64{"RLIMIT_NOFILE": 20000, "RLIMIT_NPROC": 4096},
		Kernel:       [2]int{6, 18},
	}
}

const testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001::/:/bin/sh
`

const testGroup = `root:x:0:root
wheel:x:10:root,app
staff:x:50:
app:x:1000:
audio:x:29:app
`

// mkRootfs creates a rootfs with the given files (path → content).
func mkRootfs(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// stdRootfs has /etc/passwd and /etc/group.
func stdRootfs(t *testing.T) string {
	return mkRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
}

// testImage is an image with a command and nothing else.
func testImage() ocispec.Image {
	return ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}}
}

// gen runs Generate with the test host.
func gen(t *testing.T, img ocispec.Image, rootfs string, o Options) (*specs.Spec, error) {
	t.Helper()
	if o.Host == nil {
		o.Host = testHost()
	}
	return Generate(img, rootfs, o)
}

// mustGen is gen that fails the test on error.
func mustGen(t *testing.T, img ocispec.Image, rootfs string, o Options) *specs.Spec {
	t.Helper()
	s, err := gen(t, img, rootfs, o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

// wantErr checks that err is non-nil and mentions every fragment.
func wantErr(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}

// newNetNS creates a network namespace that lives as long as the test, held
// by a sleeping child process, and returns its path: a joined namespace that
// is not the host's, as the engine's CNI setup provides. (Unsharing on a
// locked thread of the test process could hit the main thread and change
// what /proc/self/ns/net means.)
func newNetNS(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Skipf("starting a process in a new network namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"
}

func findMount(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}
