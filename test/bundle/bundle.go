// Package bundle builds OCI bundles for tests and demos from Debian's static
// busybox (/bin/busybox from busybox-static), with no network.
package bundle

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	rspec "github.com/hull-runtime/hull/runtime/spec"
)

// Busybox is where Debian's busybox-static installs its binary.
const Busybox = "/bin/busybox"

var applets = []string{
	"sh", "true", "false", "echo", "cat", "ls", "sleep", "id", "mount", "hostname", "ps", "kill",
	"touch", "mkdir", "rm", "stat", "readlink", "grep", "head", "wc", "env", "test", "[", "printf",
	"umask", "nproc", "ulimit", "domainname", "sysctl", "cut", "tr", "uname", "ln", "chmod", "dd", "mknod", "tail",
}

// Rootfs makes a busybox root filesystem in dir.
func Rootfs(dir string) error {
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(Busybox, filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		return fmt.Errorf("copy busybox (apt-get install busybox-static): %w", err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Spec is the default config (runc's `spec`) with a non-terminal process running args.
func Spec(args ...string) *specs.Spec {
	s := rspec.Example()
	s.Process.Terminal = false
	s.Process.Args = args
	s.Root.Path = "rootfs"
	return s
}

// Write creates bundle dir with a busybox rootfs and config.json from s.
func Write(dir string, s *specs.Spec) error {
	if err := Rootfs(filepath.Join(dir, "rootfs")); err != nil {
		return err
	}
	return WriteConfig(dir, s)
}

// WriteConfig writes s as dir/config.json.
func WriteConfig(dir string, s *specs.Spec) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
