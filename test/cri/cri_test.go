// Package cri tests `hull serve` as a kubelet uses it: the built binary
// serves CRI v1 on a unix socket, and the tests call it with the CRI's own
// gRPC client against in-process registries on 127.0.0.1.
package cri

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/sys/mountinfo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var hullBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("cri tests need root (image snapshots); skipping")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "hull-cri-bin-")
	if err != nil {
		log.Fatal(err)
	}
	hullBin = filepath.Join(dir, "hull")
	if out, err := exec.Command("go", "build", "-o", hullBin, "github.com/hull-runtime/hull/cmd/hull").CombinedOutput(); err != nil {
		log.Fatalf("build hull: %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testRegistry is an in-process registry; with user set, every request
// needs HTTP basic auth with user and pass.
type testRegistry struct {
	addr       string
	user, pass string
}

func newRegistry(t *testing.T, user, pass string) *testRegistry {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Logger(log.New(&bytes.Buffer{}, "", 0)))
	h := reg
	if user != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			reg.ServeHTTP(w, r)
		})
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &testRegistry{addr: l.Addr().String(), user: user, pass: pass}
}

// push uploads a small random image with config user as repo:tag and
// returns it.
func (r *testRegistry) push(t *testing.T, repoTag, user string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config.User = "linux", "amd64", user
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.addr+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{}
	if r.user != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass}))
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
	return img
}

// server is one running `hull serve` with a private root.
type server struct {
	root, runroot, sock string
	cmd                 *exec.Cmd
	stderr              *bytes.Buffer
	rt                  runtimeapi.RuntimeServiceClient
	img                 runtimeapi.ImageServiceClient
}

func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	d := t.TempDir()
	s := &server{root: filepath.Join(d, "root"), runroot: filepath.Join(d, "run"), stderr: &bytes.Buffer{}}
	s.sock = filepath.Join(s.runroot, "cri.sock")
	args := append([]string{"--root", s.root, "--runroot", s.runroot, "--registries-conf", "/nonexistent", "--authfile", filepath.Join(d, "auth.json"), "serve"}, extra...)
	s.cmd = exec.Command(hullBin, args...)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	t.Cleanup(func() { s.stop(t, exited, d) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", s.sock); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("hull serve exited before listening: %v\n%s", err, s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("hull serve did not listen on %s\n%s", s.sock, s.stderr)
		}
	}
	conn, err := grpc.NewClient("unix://"+s.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s.rt, s.img = runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	return s
}

// stop ends the server with SIGTERM, as systemd does, and checks it went
// cleanly: exit 0, socket removed, nothing left mounted under its dirs.
func (s *server) stop(t *testing.T, exited chan error, d string) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("hull serve after SIGTERM: %v\n%s", err, s.stderr)
		}
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-exited
		t.Errorf("hull serve did not stop within 15 s of SIGTERM\n%s", s.stderr)
	}
	if _, err := os.Lstat(s.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket %s left behind (%v)", s.sock, err)
	}
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(d))
	for _, m := range mounts {
		t.Errorf("left mounted: %s", m.Mountpoint)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestVersionAndStatusReportAReadyRuntime(t *testing.T) {
	s := startServer(t)
	v, err := s.rt.Version(ctx(t), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "hull" || v.RuntimeApiVersion != "v1" || v.RuntimeVersion == "" {
		t.Errorf("Version: %v", v)
	}
	st, err := s.rt.Status(ctx(t), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	conds := map[string]*runtimeapi.RuntimeCondition{}
	for _, c := range st.GetStatus().GetConditions() {
		conds[c.Type] = c
	}
	if c := conds[runtimeapi.RuntimeReady]; c == nil || !c.Status {
		t.Errorf("RuntimeReady: %v", c)
	}
	_, bridgeErr := os.Stat("/usr/lib/cni/bridge")
	if c := conds[runtimeapi.NetworkReady]; c == nil || c.Status != (bridgeErr == nil) {
		t.Errorf("NetworkReady: %v, with /usr/lib/cni/bridge: %v", c, bridgeErr)
	}
	if !strings.Contains(st.Info["config"], s.root) {
		t.Errorf("verbose Status info does not name the image root: %v", st.Info)
	}
}

func TestPulledImagesAreListedByIdTagAndDigestAndRemovedWithAllTheirNames(t *testing.T) {
	reg := newRegistry(t, "", "")
	img := reg.push(t, "cri/app:1", "1234")
	reg.push(t, "cri/other:1", "nobody")
	cfgDigest, _ := img.ConfigName()
	manifestDigest, _ := img.Digest()
	s := startServer(t)

	tag := reg.addr + "/cri/app:1"
	pulled, err := s.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: tag}})
	if err != nil {
		t.Fatal(err)
	}
	if pulled.ImageRef != cfgDigest.String() {
		t.Errorf("PullImage ref %q, want the image id %s", pulled.ImageRef, cfgDigest)
	}
	// A second name for the same image: still one image.
	if err := remote.Tag(mustTag(t, reg.addr+"/cri/app:2"), img); err != nil {
		t.Fatal(err)
	}
	if _, err := s.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.addr + "/cri/app:2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.addr + "/cri/other:1"}}); err != nil {
		t.Fatal(err)
	}

	list, err := s.img.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Images) != 2 {
		t.Fatalf("ListImages: %d images, want 2: %v", len(list.Images), list.Images)
	}
	var app *runtimeapi.Image
	for _, i := range list.Images {
		if i.Id == cfgDigest.String() {
			app = i
		}
	}
	if app == nil {
		t.Fatalf("ListImages has no image %s: %v", cfgDigest, list.Images)
	}
	wantTags := []string{reg.addr + "/cri/app:1", reg.addr + "/cri/app:2"}
	if strings.Join(slices.Sorted(slices.Values(app.RepoTags)), " ") != strings.Join(wantTags, " ") {
		t.Errorf("RepoTags %v, want %v", app.RepoTags, wantTags)
	}
	repoDigest := reg.addr + "/cri/app@" + manifestDigest.String()
	if len(app.RepoDigests) != 1 || app.RepoDigests[0] != repoDigest {
		t.Errorf("RepoDigests %v, want [%s]", app.RepoDigests, repoDigest)
	}
	if app.Uid.GetValue() != 1234 || app.Username != "" || app.Size == 0 {
		t.Errorf("uid %v username %q size %d, want uid 1234 and a size", app.Uid, app.Username, app.Size)
	}

	for _, spec := range []string{tag, cfgDigest.String(), repoDigest} {
		st, err := s.img.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: spec}, Verbose: true})
		if err != nil {
			t.Fatalf("ImageStatus %s: %v", spec, err)
		}
		if st.Image.GetId() != cfgDigest.String() || !strings.Contains(st.Info["info"], `"imageSpec"`) {
			t.Errorf("ImageStatus %s: %v %v", spec, st.Image, st.Info)
		}
	}
	other, err := s.img.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: reg.addr + "/cri/other:1"}})
	if err != nil || other.Image.GetUsername() != "nobody" || other.Image.Uid != nil {
		t.Errorf("ImageStatus of an image with a user name: %v, %v", other.GetImage(), err)
	}
	filtered, err := s.img.ListImages(ctx(t), &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: tag}}})
	if err != nil || len(filtered.Images) != 1 || filtered.Images[0].Id != cfgDigest.String() {
		t.Errorf("ListImages filtered by %s: %v, %v", tag, filtered.GetImages(), err)
	}

	fs, err := s.img.ImageFsInfo(ctx(t), &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].UsedBytes.GetValue() == 0 || fs.ImageFilesystems[0].InodesUsed.GetValue() == 0 ||
		!strings.HasPrefix(fs.ImageFilesystems[0].FsId.GetMountpoint(), s.root) || fs.ImageFilesystems[0].Timestamp == 0 {
		t.Errorf("ImageFsInfo: %v", fs.ImageFilesystems)
	}

	// Removing by id removes every name; a second removal still succeeds.
	for range 2 {
		if _, err := s.img.RemoveImage(ctx(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: cfgDigest.String()}}); err != nil {
			t.Fatalf("RemoveImage: %v", err)
		}
	}
	for _, spec := range []string{tag, reg.addr + "/cri/app:2", repoDigest} {
		st, err := s.img.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: spec}})
		if err != nil || st.Image != nil {
			t.Errorf("ImageStatus %s after RemoveImage: %v, %v", spec, st.GetImage(), err)
		}
	}
	list, err = s.img.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.Images) != 1 {
		t.Errorf("after RemoveImage: %v, %v", list.GetImages(), err)
	}
}

func TestPullUsesTheCredentialsTheKubeletSends(t *testing.T) {
	reg := newRegistry(t, "kube", "s3cret")
	reg.push(t, "private/app:1", "")
	s := startServer(t)
	req := &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.addr + "/private/app:1"}}
	if _, err := s.img.PullImage(ctx(t), req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("pull without credentials: %v, want code Unauthenticated", err)
	}
	req.Auth = &runtimeapi.AuthConfig{Username: "kube", Password: "wrong"}
	if _, err := s.img.PullImage(ctx(t), req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("pull with a wrong password: %v, want code Unauthenticated", err)
	}
	req.Auth = &runtimeapi.AuthConfig{Username: "kube", Password: "s3cret"}
	if _, err := s.img.PullImage(ctx(t), req); err != nil {
		t.Errorf("pull with credentials: %v", err)
	}
}

func TestPullingAnImageThatIsNotThereIsNotFound(t *testing.T) {
	reg := newRegistry(t, "", "")
	s := startServer(t)
	_, err := s.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.addr + "/no/such:image"}})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "no/such:image") {
		t.Errorf("pull of a missing image: %v, want code NotFound naming the image", err)
	}
	if _, err := s.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("pull without an image: %v, want InvalidArgument", err)
	}
	st, err := s.img.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "docker.io/library/never-pulled:1"}})
	if err != nil || st.Image != nil {
		t.Errorf("ImageStatus of an unknown image: %v, %v; want no image and no error", st.GetImage(), err)
	}
}

func TestASecondServerOnTheSameSocketIsRefused(t *testing.T) {
	s := startServer(t)
	out, err := exec.Command(hullBin, "--root", t.TempDir(), "--runroot", t.TempDir(), "serve", "--listen", s.sock).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another server is listening") {
		t.Errorf("second serve on %s: %v\n%s", s.sock, err, out)
	}
	if _, err := s.rt.Version(ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Errorf("the first server stopped answering: %v", err)
	}
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}
