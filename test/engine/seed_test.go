package engine

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The project's shared image seeder: Debian's docker-registry on
// 127.0.0.1 with look-alikes of the images critest pulls (busybox, an
// nginx that serves HTTP, a setuid nonewprivs probe, images with USER set).
var (
	seedOnce sync.Once
	seedReg  string
	seedErr  error
	seedStop func()
)

// seedRegistry starts ../shared/conformance/seed-images.sh once per test
// binary on a free port with a private work dir, and returns its address.
// TestMain stops it.
func seedRegistry(t *testing.T) string {
	t.Helper()
	seedOnce.Do(func() {
		script, err := filepath.Abs("../../../shared/conformance/seed-images.sh")
		if err != nil {
			seedErr = err
			return
		}
		if _, err := os.Stat(script); err != nil {
			seedErr = fmt.Errorf("the shared image seeder is not beside the checkout: %w", err)
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			seedErr = err
			return
		}
		addr := l.Addr().String()
		l.Close()
		dir, err := os.MkdirTemp("", "hull-seed-")
		if err != nil {
			seedErr = err
			return
		}
		env := append(os.Environ(), "SEED_DIR="+dir, "REGISTRY_ADDR="+addr)
		stop := func() {
			cmd := exec.Command("bash", script, "stop")
			cmd.Env = env
			_ = cmd.Run()
			os.RemoveAll(dir)
		}
		cmd := exec.Command("bash", script, "start")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			stop()
			seedErr = fmt.Errorf("seed-images.sh start: %v\n%s", err, out)
			return
		}
		seedReg, seedStop = addr, stop
	})
	if seedErr != nil {
		t.Fatal(seedErr)
	}
	return seedReg
}

func TestSeededImagesRunWithTheirConfig(t *testing.T) {
	reg := seedRegistry(t)
	e := newEnv(t)
	busybox := reg + "/e2e-test-images/busybox:1.29-2"

	t.Run("exit code and output", func(t *testing.T) {
		out, errOut, err := e.hull("run", "--rm", busybox, "sh", "-c", "echo hi; ls /bin/ls; exit 42")
		if exitCode(err) != 42 || out != "hi\n/bin/ls\n" {
			t.Errorf("exit %d (%v), stdout %q, stderr %q", exitCode(err), err, out, errOut)
		}
	})
	t.Run("USER from the image config", func(t *testing.T) {
		for image, want := range map[string]string{
			"k8s-staging-cri-tools/test-image-user-uid:latest":            "1002 0",
			"k8s-staging-cri-tools/test-image-user-uid-group:latest":      "1003 1004",
			"k8s-staging-cri-tools/test-image-user-username:latest":       "33 33",
			"k8s-staging-cri-tools/test-image-user-username-group:latest": "33 1004",
		} {
			out, errOut, err := e.hull("run", "--rm", reg+"/"+image, "sh", "-c", "echo $(id -u) $(id -g)")
			if err != nil || strings.TrimSpace(out) != want {
				t.Errorf("%s: id printed %q, want %q (%v: %s)", image, out, want, err, errOut)
			}
		}
		// -u overrides the image's USER.
		if out := e.must("run", "--rm", "-u", "7:8", reg+"/k8s-staging-cri-tools/test-image-user-uid:latest", "sh", "-c", "echo $(id -u) $(id -g)"); strings.TrimSpace(out) != "7 8" {
			t.Errorf("-u 7:8: %q", out)
		}
	})
	t.Run("supplementary group defined in the image", func(t *testing.T) {
		out := e.must("run", "--rm", reg+"/k8s-staging-cri-tools/test-image-predefined-group:latest", "id", "-G")
		if f := strings.Fields(out); len(f) != 2 || f[0] != "1000" || f[1] != "50000" {
			t.Errorf("id -G printed %q, want 1000 50000", out)
		}
	})
	t.Run("no-new-privileges stops a setuid binary", func(t *testing.T) {
		nnp := reg + "/e2e-test-images/nonewprivs:1.3"
		if out := e.must("run", "--rm", "-u", "1000", nnp); strings.TrimSpace(out) != "Effective uid: 0" {
			t.Errorf("without no-new-privileges: %q", out)
		}
		if out := e.must("run", "--rm", "-u", "1000", "--security-opt", "no-new-privileges", nnp); strings.TrimSpace(out) != "Effective uid: 1000" {
			t.Errorf("with no-new-privileges: %q", out)
		}
	})
	t.Run("nginx published on loopback", func(t *testing.T) {
		port := freePort(t)
		// The image's ENTRYPOINT and EXPOSE 80/tcp; -P would pick a port,
		// -p pins one so the test knows where to look.
		e.must("run", "-d", "--name", "nginx", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), reg+"/e2e-test-images/nginx:1.14-2")
		defer e.hull("rm", "-f", "nginx")
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		var body string
		client := &http.Client{Timeout: 2 * time.Second}
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			resp, err := client.Get(url)
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); resp.StatusCode == 200 {
				break
			}
		}
		if !strings.Contains(body, "Welcome to nginx!") {
			t.Fatalf("GET %s: %q", url, body)
		}
		// The server logs to stderr; logs replays it there, as Docker does.
		if out, errOut, err := e.hull("logs", "nginx"); err != nil || !strings.Contains(errOut, "listening on :80") {
			t.Errorf("nginx logs: %v, stdout %q, stderr %q", err, out, errOut)
		}
		if ports := e.must("port", "nginx"); !strings.Contains(ports, fmt.Sprintf("80/tcp -> 127.0.0.1:%d", port)) {
			t.Errorf("port: %q", ports)
		}
	})
}
