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
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hull-runtime/hull/test/hoststate"
	"github.com/hull-runtime/hull/test/testimage"
)

var hullBin string

// cgroupParent holds the pods of this test binary (removed at the end).
var cgroupParent = fmt.Sprintf("/hull-cri-test-%d", os.Getpid())

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
	for _, b := range []string{"hull", "hull-cri", "hull-monitor", "hull-runtime"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b), "github.com/hull-runtime/hull/cmd/"+b).CombinedOutput(); err != nil {
			log.Fatalf("build %s: %v\n%s", b, err, out)
		}
	}
	undo := hoststate.Record(cgroupParent)
	code := m.Run()
	os.RemoveAll(dir)
	if err := undo(); err != nil {
		fmt.Println("cri tests: restoring the host:", err)
		code = 1
	}
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
	s.cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(hullBin)+":"+os.Getenv("PATH"))
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
	// The engine's netns directory is a per-boot mount, as /run/netns is,
	// and stays; anything else is a leak.
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(d))
	for i := len(mounts) - 1; i >= 0; i-- {
		mp := mounts[i].Mountpoint
		if mp != filepath.Join(s.runroot, "netns") {
			t.Errorf("left mounted: %s", mp)
		}
		_ = unix.Unmount(mp, unix.MNT_DETACH)
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

// pod is a registry with a sandbox image and busybox, and a server that
// runs pods from them below this test's cgroup parent.
type pod struct {
	*server
	reg            *testRegistry
	busybox, pause string
	logDir         string
}

func newPodServer(t *testing.T) *pod {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("no /bin/busybox (busybox-static)")
	}
	reg := newRegistry(t, "", "")
	p := &pod{reg: reg, busybox: reg.addr + "/busybox:1", pause: reg.addr + "/pause:1", logDir: t.TempDir()}
	bb, err := testimage.Busybox(nil)
	if err != nil {
		t.Fatal(err)
	}
	// pause: PID 1 ignores signals it has no handler for; this one stops
	// on SIGTERM as the real pause does.
	pause, err := testimage.Busybox(func(c *v1.Config) {
		c.Entrypoint, c.Cmd = []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for ref, img := range map[string]v1.Image{p.busybox: bb, p.pause: pause} {
		if err := testimage.Push(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	p.server = startServer(t, "--sandbox-image", p.pause, "--cgroup-parent", cgroupParent)
	for _, ref := range []string{p.busybox, p.pause} {
		if _, err := p.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (p *pod) sandboxConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: "uid-" + name, Attempt: 0},
		Hostname:     name + "-host",
		LogDirectory: filepath.Join(p.logDir, name),
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}},
		Labels:       map[string]string{"app": name},
		Annotations:  map[string]string{"note": "from the test"},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func (p *pod) containerConfig(name string, cmd ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: p.busybox},
		Command:  cmd,
		Envs:     []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hello from " + name)}},
		LogPath:  name + "/0.log",
		Labels:   map[string]string{"container": name},
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestAPodsContainersShareItsNetworkNamesAndLogWhereTheKubeletReads(t *testing.T) {
	p := newPodServer(t)
	sbCfg := p.sandboxConfig("web")
	hostPort := freeTCPPort(t)
	sbCfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: int32(hostPort)}}
	run, err := p.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	sbID := run.PodSandboxId
	if _, err := p.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: sbCfg}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("a second sandbox with the same metadata: %v, want AlreadyExists", err)
	}
	sbSt, err := p.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sbID})
	if err != nil {
		t.Fatal(err)
	}
	if sbSt.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || net.ParseIP(sbSt.Status.Network.GetIp()) == nil ||
		sbSt.Status.Metadata.GetName() != "web" || sbSt.Status.Labels["app"] != "web" || sbSt.Status.Annotations["note"] == "" {
		t.Fatalf("PodSandboxStatus: %v", sbSt.Status)
	}

	server := p.containerConfig("server", "sh", "-c", "echo started; echo to-stderr >&2; while :; do echo pong | nc -l -p 8080; done")
	cr, err := p.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: sbID, Config: server, SandboxConfig: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.containerState(t, cr.ContainerId); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("after create: %v", st.State)
	}
	if _, err := p.rt.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
		t.Fatal(err)
	}
	if st := p.containerState(t, cr.ContainerId); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.StartedAt == 0 ||
		st.LogPath != filepath.Join(sbCfg.LogDirectory, "server/0.log") || st.Labels["container"] != "server" {
		t.Errorf("after start: %v", st)
	}

	side := p.containerConfig("side", "sh", "-c", "while :; do sleep 1; done")
	sr, err := p.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: sbID, Config: side, SandboxConfig: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.rt.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: sr.ContainerId}); err != nil {
		t.Fatal(err)
	}
	// The sidecar reaches the server on the pod's loopback and sees the
	// pod's hostname and DNS settings.
	out, err := p.rt.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: sr.ContainerId, Timeout: 20, Cmd: []string{"sh", "-c",
		"for i in 1 2 3 4 5 6 7 8 9 10; do r=$(echo ping | nc 127.0.0.1 8080) && [ -n \"$r\" ] && echo $r && break; sleep 0.3; done; hostname; echo $GREETING; cat /etc/resolv.conf; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pong", "web-host", "hello from side", "nameserver 10.96.0.10", "search default.svc.cluster.local", "options ndots:5"} {
		if !strings.Contains(string(out.Stdout), want) {
			t.Errorf("exec in the sidecar: no %q in %q (stderr %q)", want, out.Stdout, out.Stderr)
		}
	}
	if out.ExitCode != 3 {
		t.Errorf("exec exit code %d, want 3", out.ExitCode)
	}
	// The pod's port mapping reaches the server from the node.
	if got := dialRead(t, fmt.Sprintf("127.0.0.1:%d", hostPort)); got != "pong\n" {
		t.Errorf("host port %d: read %q, want pong", hostPort, got)
	}
	// A command past its timeout is killed and reported.
	t0 := time.Now()
	_, err = p.rt.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: sr.ContainerId, Timeout: 1, Cmd: []string{"sleep", "30"}})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(t0) > 10*time.Second {
		t.Errorf("exec past its timeout: %v after %v, want DeadlineExceeded after about 1s", err, time.Since(t0))
	}

	list, err := p.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: sbID}})
	if err != nil || len(list.Containers) != 2 {
		t.Errorf("ListContainers of the pod: %v, %v", list.GetContainers(), err)
	}
	list, err = p.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"container": "side"}}})
	if err != nil || len(list.Containers) != 1 || list.Containers[0].Id != sr.ContainerId {
		t.Errorf("ListContainers by label: %v, %v", list.GetContainers(), err)
	}

	if _, err := p.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: cr.ContainerId, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	st := p.containerState(t, cr.ContainerId)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 || st.Reason != "Error" || st.FinishedAt < st.StartedAt {
		t.Errorf("after stop (the shell ignores SIGTERM as PID 1): %v", st)
	}
	logData, err := os.ReadFile(filepath.Join(sbCfg.LogDirectory, "server/0.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !criLogHas(string(logData), "stdout", "started") || !criLogHas(string(logData), "stderr", "to-stderr") {
		t.Errorf("CRI log:\n%s", logData)
	}

	if _, err := p.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: sbID}); err != nil {
		t.Fatal(err)
	}
	sbSt, err = p.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sbID})
	if err != nil || sbSt.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || sbSt.Status.Network.GetIp() != "" {
		t.Errorf("after StopPodSandbox: %v, %v", sbSt.GetStatus(), err)
	}
	if st := p.containerState(t, sr.ContainerId); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("the sidecar after StopPodSandbox: %v", st.State)
	}
	for range 2 {
		if _, err := p.rt.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sbID}); err != nil {
			t.Fatal(err)
		}
	}
	pods, err := p.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("pods after RemovePodSandbox: %v, %v", pods.GetItems(), err)
	}
	ctrs, err := p.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{})
	if err != nil || len(ctrs.Containers) != 0 {
		t.Errorf("containers after RemovePodSandbox: %v, %v", ctrs.GetContainers(), err)
	}
	if _, err := p.rt.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: cr.ContainerId}); status.Code(err) != codes.NotFound {
		t.Errorf("status of a removed container: %v, want NotFound", err)
	}
}

func TestAContainerThatExitsReportsItsCodeAndReason(t *testing.T) {
	p := newPodServer(t)
	sbCfg := p.sandboxConfig("job")
	run, err := p.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = p.rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: run.PodSandboxId})
	})
	for _, tc := range []struct {
		name, script, reason string
		code                 int32
	}{
		{"ok", "echo done", "Completed", 0},
		{"fails", "echo failing >&2; exit 7", "Error", 7},
	} {
		cfg := p.containerConfig(tc.name, "sh", "-c", tc.script)
		cr, err := p.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: run.PodSandboxId, Config: cfg, SandboxConfig: sbCfg})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.rt.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
			t.Fatal(err)
		}
		var st *runtimeapi.ContainerStatus
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if st = p.containerState(t, cr.ContainerId); st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
				break
			}
		}
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != tc.code || st.Reason != tc.reason || st.FinishedAt == 0 {
			t.Errorf("%s: %v, want exited with %d (%s)", tc.name, st, tc.code, tc.reason)
		}
		if _, err := p.rt.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("%s: a second start: %v, want FailedPrecondition", tc.name, err)
		}
	}
	if _, err := p.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: "no-such-pod", Config: p.containerConfig("x", "true"), SandboxConfig: sbCfg}); status.Code(err) != codes.NotFound {
		t.Errorf("create in a missing pod: %v, want NotFound", err)
	}
	missing := p.containerConfig("noimage", "true")
	missing.Image.Image = p.reg.addr + "/not/pulled:1"
	if _, err := p.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: run.PodSandboxId, Config: missing, SandboxConfig: sbCfg}); err == nil || !strings.Contains(err.Error(), "not/pulled") {
		t.Errorf("create with an image not pulled: %v, want an error naming it", err)
	}
}

func (p *pod) containerState(t *testing.T, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	st, err := p.rt.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	return st.Status
}

// criLogHas reports whether log has a whole line text on stream, in the
// CRI format ("TIME STREAM F TEXT").
func criLogHas(log, stream, text string) bool {
	for line := range strings.Lines(log) {
		f := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 4)
		if len(f) == 4 && f[1] == stream && f[2] == "F" && f[3] == text {
			if _, err := time.Parse(time.RFC3339Nano, f[0]); err == nil {
				return true
			}
		}
	}
	return false
}

func dialRead(t *testing.T, addr string) string {
	t.Helper()
	var last error
	for range 20 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(3 * time.Second))
			var b bytes.Buffer
			_, _ = b.ReadFrom(c)
			c.Close()
			if b.Len() > 0 {
				return b.String()
			}
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("dial %s: %v", addr, last)
	return ""
}
