package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
)

// hullIn is e.hull with stdin.
func (e *env) hullIn(stdin io.Reader, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "hull"), append([]string{"--root", e.root, "--runroot", e.runroot, "--registries-conf", "/nonexistent"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// tarNames lists a tar stream as "name" or "name=content".
func tarNames(t *testing.T, data string) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(strings.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the tar stream: %v", err)
		}
		if hdr.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out = append(out, hdr.Name+"="+string(b))
			continue
		}
		out = append(out, hdr.Name)
	}
}

func writeHostFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mountsUnder counts the mounts below dir.
func mountsUnder(t *testing.T, dir string) int {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

func TestCpCopiesFilesAndDirectoriesInAndOutOfARunningContainer(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	e.must("run", "-d", "--name", "web", "-v", "cpvol:/data", img(), "sh", "-c", "while :; do sleep 0.1; done")
	e.must("exec", "web", "sh", "-c", "busybox mkdir -p /srv/d/sub && echo one > /srv/d/f && echo two > /srv/d/sub/g && echo in-volume > /data/v")

	// A file in, owned by root without -a, by its owner with it.
	writeHostFile(t, filepath.Join(host, "hello.txt"), "hello\n")
	if err := os.Chown(filepath.Join(host, "hello.txt"), 1234, 4321); err != nil {
		t.Fatal(err)
	}
	e.must("cp", filepath.Join(host, "hello.txt"), "web:/tmp/")
	e.must("cp", "-a", filepath.Join(host, "hello.txt"), "web:/tmp/kept.txt")
	if out := e.must("exec", "web", "sh", "-c", "cat /tmp/hello.txt; busybox stat -c %u:%g /tmp/hello.txt /tmp/kept.txt"); out != "hello\n0:0\n1234:4321\n" {
		t.Errorf("in the container: %q", out)
	}
	// A directory in, to a new name, and its contents into an existing one.
	writeHostFile(t, filepath.Join(host, "tree", "a"), "A")
	writeHostFile(t, filepath.Join(host, "tree", "sub", "b"), "B")
	e.must("cp", filepath.Join(host, "tree"), "web:/srv/tree")
	e.must("cp", filepath.Join(host, "tree")+"/.", "web:/srv/d")
	if out := e.must("exec", "web", "sh", "-c", "cat /srv/tree/a /srv/tree/sub/b /srv/d/a /srv/d/sub/b /srv/d/f"); out != "ABABone\n" {
		t.Errorf("directories in: %q", out)
	}

	// A file and a directory out.
	e.must("cp", "web:/srv/d/f", filepath.Join(host, "f-out"))
	e.must("cp", "web:srv/d", filepath.Join(host, "d-out"))
	for p, want := range map[string]string{"f-out": "one\n", "d-out/f": "one\n", "d-out/sub/g": "two\n", "d-out/sub/b": "B"} {
		if b, err := os.ReadFile(filepath.Join(host, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", p, b, err, want)
		}
	}

	// Tar streams both ways.
	out := e.must("cp", "web:/srv/d/sub", "-")
	if got := tarNames(t, out); !slices.Equal(got, []string{"sub/", "sub/b=B", "sub/g=two\n"}) {
		t.Errorf("cp web:/srv/d/sub - wrote %q", got)
	}
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "piped/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "piped/x", Typeflag: tar.TypeReg, Mode: 0o600, Size: 6, Uid: 99})
	tw.Write([]byte("piped\n"))
	tw.Close()
	if _, errOut, err := e.hullIn(&in, "cp", "-", "web:/tmp"); err != nil {
		t.Fatalf("cp - web:/tmp: %v\n%s", err, errOut)
	}
	if out := e.must("exec", "web", "sh", "-c", "cat /tmp/piped/x; busybox stat -c %u /tmp/piped/x"); out != "piped\n0\n" {
		t.Errorf("piped in: %q", out)
	}

	// The named volume is there at its path, both ways.
	e.must("cp", "web:/data/v", filepath.Join(host, "v"))
	if b, _ := os.ReadFile(filepath.Join(host, "v")); string(b) != "in-volume\n" {
		t.Errorf("from the volume: %q", b)
	}
	e.must("cp", filepath.Join(host, "hello.txt"), "web:/data/")
	if out := e.must("run", "--rm", "-v", "cpvol:/data", img(), "cat", "/data/hello.txt"); out != "hello\n" {
		t.Errorf("the volume seen by another container: %q", out)
	}

	// Errors name the path and fail with 1, as docker cp does.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"web:/nope", filepath.Join(host, "x")}, "Error: could not find the file /nope in container web\n"},
		{[]string{filepath.Join(host, "hello.txt"), "web:/no/such/"}, "Error: could not find the directory /no (on the way to /no/such/) in container web\n"},
		{[]string{filepath.Join(host, "hello.txt"), "web:/tmp/new/"}, "Error: the destination directory /tmp/new/ does not exist in container web\n"},
		{[]string{filepath.Join(host, "tree"), "web:/tmp/hello.txt"}, "exists and is not a directory"},
		{[]string{"-", "web:/tmp/hello.txt"}, "Error: the destination /tmp/hello.txt in container web must be a directory\n"},
		{[]string{"web:/proc/1/status", "-"}, "it is on a proc filesystem"},
		{[]string{"web:/x", "web:/y"}, "copying between containers is not supported"},
		{[]string{"nosuch:/x", host}, "no such container"},
	} {
		_, errOut, err := e.hullIn(strings.NewReader(""), append([]string{"cp"}, tc.args...)...)
		if exitCode(err) != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("cp %q: exit %d, stderr %q; want 1 and %q", tc.args, exitCode(err), errOut, tc.want)
		}
	}
	e.must("rm", "-f", "web")
	e.must("volume", "rm", "cpvol")
}

// TestCpThroughAnEscapingSymlinkStaysInTheContainer: the container makes
// /escape -> / at run time; copies through it resolve in the container's
// root, never the host's.
func TestCpThroughAnEscapingSymlinkStaysInTheContainer(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	name := fmt.Sprintf("hull-cp-escape-%d", os.Getpid())
	hostTarget := filepath.Join("/tmp", name)
	if _, err := os.Lstat(hostTarget); err == nil {
		t.Fatalf("%s exists before the test", hostTarget)
	}
	t.Cleanup(func() { os.RemoveAll(hostTarget) })
	e.must("run", "-d", "--name", "esc", img(), "sh", "-c", "busybox ln -s / /escape; busybox ln -s /etc /etclink; while :; do sleep 0.1; done")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, err := e.hull("exec", "esc", "sh", "-c", "test -L /escape && test -L /etclink"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container did not make its symlinks")
		}
		time.Sleep(50 * time.Millisecond)
	}
	writeHostFile(t, filepath.Join(host, "x"), "inside\n")
	e.must("cp", filepath.Join(host, "x"), "esc:/escape/tmp/"+name)
	e.must("cp", filepath.Join(host, "x"), "esc:/escape/escape/etclink/")
	if _, err := os.Lstat(hostTarget); err == nil {
		t.Fatalf("the copy landed on the host: %s", hostTarget)
	}
	if out := e.must("exec", "esc", "cat", "/tmp/"+name, "/etc/x"); out != "inside\ninside\n" {
		t.Errorf("in the container: %q", out)
	}
	// Out through the links: the container's passwd, not the host's.
	e.must("cp", "esc:/escape/etc/passwd", filepath.Join(host, "passwd"))
	e.must("cp", "-L", "esc:/etclink", filepath.Join(host, "etc"))
	want := "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
	for _, p := range []string{"passwd", "etc/passwd"} {
		if b, err := os.ReadFile(filepath.Join(host, p)); err != nil || string(b) != want {
			t.Errorf("%s copied out: %q, %v", p, b, err)
		}
	}
	// The symlink itself is copied as a symlink, not followed on the host.
	e.must("cp", "esc:/escape", filepath.Join(host, "link"))
	if target, err := os.Readlink(filepath.Join(host, "link")); err != nil || target != "/" {
		t.Errorf("the symlink copied out: %q, %v", target, err)
	}
	e.must("rm", "-f", "esc")
}

func TestCpWorksOnACreatedAndAStoppedContainer(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	before := mountsUnder(t, e.runroot)
	// The host network: a second start of an exited container on the
	// default network fails in Network.Setup ("network already set up"),
	// which is not what this test is about.
	id := strings.TrimSpace(e.must("create", "--name", "st", "--network", "host", img(), "cat", "/etc/greeting"))
	writeHostFile(t, filepath.Join(host, "greeting"), "hello from the host\n")
	e.must("cp", filepath.Join(host, "greeting"), "st:/etc/")
	e.must("start", "st")
	if code := strings.TrimSpace(e.must("wait", "st")); code != "0" {
		t.Fatalf("the container exited %s", code)
	}
	if out := e.must("logs", "st"); out != "hello from the host\n" {
		t.Errorf("the container read %q", out)
	}
	// Stopped, and with its root filesystem unmounted (as after a reboot):
	// cp mounts it for the copy and leaves it unmounted.
	rootfs := filepath.Join(e.runroot, "containers", id, "rootfs")
	if ok, _ := mountinfo.Mounted(rootfs); !ok {
		t.Fatalf("%s is not mounted after start", rootfs)
	}
	if out, err := exec.Command("umount", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	e.must("cp", "st:/etc/greeting", filepath.Join(host, "out"))
	if b, _ := os.ReadFile(filepath.Join(host, "out")); string(b) != "hello from the host\n" {
		t.Errorf("copied out of the stopped container: %q", b)
	}
	writeHostFile(t, filepath.Join(host, "greeting"), "second\n")
	e.must("cp", filepath.Join(host, "greeting"), "st:/etc/greeting")
	if ok, _ := mountinfo.Mounted(rootfs); ok {
		t.Errorf("cp left %s mounted", rootfs)
	}
	// The copy is in the container's writable layer: a start sees it.
	e.must("start", "st")
	e.must("wait", "st")
	if out := e.must("logs", "st"); !strings.HasSuffix(out, "second\n") {
		t.Errorf("after the second start: %q", out)
	}
	e.must("rm", "st")
	if after := mountsUnder(t, e.runroot); after != before {
		t.Errorf("mounts under the runroot: %d before, %d after", before, after)
	}
}
