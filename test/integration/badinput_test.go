package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// initProcesses lists the pids of every hull-runtime init on the machine.
func initProcesses() []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		data, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err == nil && string(data) == "hull-runtime\x00init\x00" {
			out = append(out, ent.Name())
		}
	}
	return out
}

// Every class of bad input makes create fail with an error naming the field or
// path, and leaves nothing behind (the env's cleanup checks state dirs, mounts
// and cgroups; this test checks processes and the cgroup of the container).
func TestBadInputFailsClearlyAndLeavesNothing(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(e *env)
		want  string
		write bool // write the spec with e.write (false: the case writes config.json itself)
	}{
		{"malformed json", func(e *env) {
			_ = os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte(`{"ociVersion": "1.0.0", "process": {`), 0o644)
		}, "config.json", false},
		{"trailing garbage", func(e *env) {
			e.write("x")
			f, _ := os.OpenFile(filepath.Join(e.bundle, "config.json"), os.O_APPEND|os.O_WRONLY, 0)
			_, _ = f.WriteString(`{}`)
			f.Close()
		}, "config.json", false},
		{"missing rootfs", func(e *env) { e.spec.Root.Path = "does-not-exist" }, "root.path", true},
		{"unknown capability", func(e *env) {
			e.spec.Process.Capabilities.Bounding = append(e.spec.Process.Capabilities.Bounding, "CAP_NOT_A_CAP")
		}, "CAP_NOT_A_CAP", true},
		{"unknown namespace type", func(e *env) {
			e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, "bogus", true},
		{"missing executable", func(e *env) { e.spec.Process.Args = []string{"/no/such/binary"} }, "process.args", true},
		{"executable not in PATH", func(e *env) { e.spec.Process.Args = []string{"nosuchcmd"} }, "nosuchcmd", true},
		{"cgroup value the kernel refuses", func(e *env) {
			e.spec.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1000-1001"}}
		}, "cpuset", true},
		{"failing createRuntime hook", func(e *env) {
			e.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook-said-no >&2; exit 3"}}}}
		}, "hook-said-no", true},
		{"hung hook past its timeout", func(e *env) {
			timeout := 1
			e.spec.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Timeout: &timeout}}}
		}, "timed out", true},
		{"mount source missing", func(e *env) {
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/data", Source: "/nonexistent/source", Options: []string{"bind"}})
		}, "/nonexistent/source", true},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			e := newEnv(t, "true")
			before := len(initProcesses())
			c.edit(e)
			if c.write {
				e.write("bad")
			}
			out, err := e.runtime("create", "--bundle", e.bundle, "bad")
			if err == nil {
				t.Fatalf("create succeeded, want an error mentioning %q", c.want)
			}
			if !strings.Contains(out, c.want) {
				t.Fatalf("error %q does not mention %q", out, c.want)
			}
			if after := len(initProcesses()); after > before {
				t.Fatalf("init processes left behind: %d before, %d after", before, after)
			}
			if dirs := cgroupDirs(e.cgroup + "/bad"); len(dirs) > 0 {
				t.Fatalf("cgroup left behind: %v", dirs)
			}
			if _, err := os.Stat(filepath.Join(e.root, "bad")); err == nil {
				t.Fatal("state dir left behind")
			}
		})
	}
}
