package specgen

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// busyboxRootfs builds a rootfs from the host's static busybox, with the
// test passwd and group files. It skips when there is no static busybox.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox")
	}
	if out, err := exec.Command("file", "-L", bb).Output(); err == nil && !bytes.Contains(out, []byte("statically linked")) {
		t.Skip("busybox is not static")
	}
	rootfs := stdRootfs(t)
	must(t, os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755))
	data, err := os.ReadFile(bb)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(rootfs, "bin/busybox"), data, 0o755))
	for _, app := range []string{"sh", "id", "cat", "grep", "hostname", "pwd", "env", "sleep"} {
		must(t, os.Symlink("busybox", filepath.Join(rootfs, "bin", app)))
	}
	return rootfs
}

// runtimes returns the OCI runtimes found on this host: hull's own build
// (../../bin/hull-runtime, or $HULL_RUNTIME when the test binary runs
// elsewhere, e.g. in a VM), runc and crun.
func runtimes(t *testing.T) map[string]string {
	found := map[string]string{}
	hull := os.Getenv("HULL_RUNTIME")
	if hull == "" {
		hull = "../../bin/hull-runtime"
	}
	if p, err := filepath.Abs(hull); err == nil {
		if _, err := os.Stat(p); err == nil {
			found["hull-runtime"] = p
		}
	}
	for _, name := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(name); err == nil {
			found[name] = p
		}
	}
	if len(found) == 0 {
		t.Skip("no OCI runtime installed")
	}
	return found
}

// A generated spec runs under every installed runtime, and the container
// sees what `docker run` would show: user, groups, working directory,
// hostname, environment, Docker's capabilities, the nofile limit, a
// read-only /proc/sys, and seccomp refusing unshare.
func TestRunsUnderRuntimes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	rootfs := busyboxRootfs(t)
	script := strings.Join([]string{
		"id",
		"pwd",
		"hostname",
		"echo HOME=$HOME TERM=${TERM:-none} FOO=$FOO",
		"grep -E '^(CapEff|CapBnd|CapInh|Seccomp|NoNewPrivs):' /proc/self/status",
		"ulimit -n",
		"echo 1 > /proc/sys/kernel/hostname 2>/dev/null && echo procsys=rw || echo procsys=ro",
		// Masked: /dev/null bound over it (or absent on this kernel).
		"if [ -c /proc/kcore ] || [ ! -e /proc/kcore ]; then echo kcore=masked; else echo kcore=visible; fi",
		"echo done",
	}, "; ")
	img := ocispec.Image{Config: ocispec.ImageConfig{
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{script},
		Env:        []string{"FOO=image"},
		WorkingDir: "/tmp",
		User:       "app",
	}}
	// The runtimes remove each container's cgroup; the parent is the test's.
	t.Cleanup(func() { removeCgroupDirs("hull-specgen-test") })
	for name, bin := range runtimes(t) {
		t.Run(name, func(t *testing.T) {
			id := "specgen-test-" + name
			s, err := Generate(img, rootfs, Options{ID: id + "-0123456789", Hostname: "box", Env: []string{"FOO=user"}, SecurityOpt: []string{"no-new-privileges"}})
			if err != nil {
				t.Fatal(err)
			}
			// Each runtime gets its own cgroup, under a name the test owns.
			s.Linux.CgroupsPath = "/hull-specgen-test/" + id
			bundle := t.TempDir()
			data, err := json.MarshalIndent(s, "", "  ")
			must(t, err)
			must(t, os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600))
			state := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--root", state, "run", "--bundle", bundle, id)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			_ = exec.Command(bin, "--root", state, "delete", "--force", id).Run()
			out := stdout.String()
			if err != nil && name == "crun" && strings.Contains(stderr.String(), "cgroups in hybrid mode not supported") {
				// crun refuses hosts whose unified hierarchy has
				// controllers, after it has parsed the config (a config it
				// rejects fails earlier, e.g. "unknown version specified").
				t.Skipf("crun cannot run containers on this hybrid cgroup host: %s", strings.TrimSpace(stderr.String()))
			}
			if err != nil {
				t.Fatalf("%s run: %v\nstdout:\n%s\nstderr:\n%s", name, err, out, stderr.String())
			}
			for _, want := range []string{
				"uid=1000 gid=1000 groups=10,29", // numeric: busybox id without names needs nss; see below
				"/tmp\n",
				"box\n",
				"HOME=/home/app TERM=none FOO=user",
				"CapInh:\t0000000000000000",
				"CapBnd:\t00000000a80425fb", // Docker's default set
				"NoNewPrivs:\t1",
				"Seccomp:\t2",
				"\n1024\n",
				"procsys=ro",
				"kcore=masked",
				"done",
			} {
				if !strings.Contains(normalizeID(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// normalizeID strips the names busybox's id prints next to numbers, so
// "uid=1000(app) gid=1000(app) groups=10(wheel),29(audio)" compares as
// "uid=1000 gid=1000 groups=10,29".
func normalizeID(s string) string {
	var b strings.Builder
	depth := 0
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(line, "uid=") {
			b.WriteString(line)
			continue
		}
		for _, r := range line {
			switch {
			case r == '(':
				depth++
			case r == ')':
				depth--
			case depth == 0:
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// removeCgroupDirs removes the (empty) cgroup called name below the root of
// every hierarchy: v1 controllers, the hybrid unified mount, pure v2.
func removeCgroupDirs(name string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	dirs = append(dirs, "/sys/fs/cgroup/"+name)
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}
