package images

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// debianRegistry starts Debian's docker-registry (the distribution
// registry real deployments run) on a free loopback port, as
// ../shared/conformance/seed-images.sh does, with storage in a temp dir.
func debianRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry not installed (scripts/deps.sh installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\nhttp: {addr: %s}\n", filepath.Join(dir, "data"), addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	logf, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "log"))
	t.Fatalf("docker-registry did not start: %s", data)
	return ""
}

func TestPushAndPullThroughDebiansDockerRegistry(t *testing.T) {
	addr := debianRegistry(t)
	reg := newRegistry(t) // the source: hull pulls from it, then pushes to the real one
	img := reg.push(t, "src/app:1", busyboxLayer(t), layerOf(t, file("etc/app.conf", "x=1")), randomLayer(t, 1<<20))
	cfg, _ := img.ConfigName()
	e := newEnv(t)
	e.must("pull", "-q", reg.addr+"/src/app:1")
	e.must("push", "-q", reg.addr+"/src/app:1", addr+"/real/app:1")
	e2 := newEnv(t)
	if id := strings.TrimSpace(e2.must("pull", "-q", addr+"/real/app:1")); id != cfg.Hex {
		t.Fatalf("image id through docker-registry %s, want %s", id, cfg.Hex)
	}
	mnt := strings.TrimSpace(e2.must("image", "mount", addr+"/real/app:1"))
	defer e2.must("image", "unmount", addr+"/real/app:1")
	if data, _ := os.ReadFile(filepath.Join(mnt, "etc/app.conf")); string(data) != "x=1" {
		t.Errorf("file through docker-registry: %q", data)
	}
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		if out, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "docker://"+addr+"/real/app:1").CombinedOutput(); err != nil {
			t.Errorf("skopeo cannot read what hull pushed: %v\n%s", err, out)
		}
	}
}

func TestAMultiPlatformIndexPullsTheHostsImage(t *testing.T) {
	addr := debianRegistry(t)
	mk := func(arch string, marker string) v1.Image {
		img, err := mutate.AppendLayers(empty.Image, busyboxLayer(t), layerOf(t, file("arch", marker)))
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: mk("arm64", "arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: mk("amd64", "amd64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	ref, err := name.ParseReference(addr+"/multi/arch:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	e := newEnv(t)
	e.must("pull", "-q", addr+"/multi/arch:1")
	mnt := strings.TrimSpace(e.must("image", "mount", addr+"/multi/arch:1"))
	defer e.must("image", "unmount", addr+"/multi/arch:1")
	if data, _ := os.ReadFile(filepath.Join(mnt, "arch")); string(data) != "amd64" {
		t.Errorf("pulled the %q image of the index, want amd64", data)
	}
	if out := e.must("images", "--digests", "--format", "{{.Digest}}"); strings.TrimSpace(out) != idxDigest.String() {
		t.Errorf("the image's digest is %q, want the index's %s", out, idxDigest)
	}
}
