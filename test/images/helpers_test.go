// Package images tests the `hull` binary's image commands as a user runs
// them: against an in-process registry on 127.0.0.1 that can lie, throttle
// and count, against skopeo for interoperability, and with hostile layers.
// The tests run as root (mounts) and clean up after themselves.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/sys/mountinfo"
)

var hullBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("image tests need root (mounts); skipping")
		os.Exit(0)
	}
	if hullBin = os.Getenv("HULL_BIN"); hullBin == "" {
		dir, err := os.MkdirTemp("", "hull-images-bin-")
		if err != nil {
			log.Fatal(err)
		}
		hullBin = filepath.Join(dir, "hull")
		out, err := exec.Command("go", "build", "-o", hullBin, "github.com/hull-runtime/hull/cmd/hull").CombinedOutput()
		if err != nil {
			log.Fatalf("build hull: %v\n%s", err, out)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// fault changes what the registry answers for one blob or manifest digest.
type fault struct {
	body          func(b []byte) []byte // replaces the body
	contentLength int64                 // > 0: the Content-Length header sent
	throttle      time.Duration         // pause per 64 KiB written
	mediaType     string                // Content-Type to send
}

// testRegistry is go-containerregistry's registry behind a handler that
// counts blob downloads and injects faults.
type testRegistry struct {
	addr   string
	srv    *http.Server
	mu     sync.Mutex
	faults map[string]fault // by digest
	gets   map[string]int   // blob GETs by digest
	served map[string]int64 // bytes served by digest
}

func newRegistry(t *testing.T) *testRegistry {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &testRegistry{addr: l.Addr().String(), faults: map[string]fault{}, gets: map[string]int{}, served: map[string]int64{}}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serve(inner, w, req)
	})}
	go r.srv.Serve(l)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *testRegistry) setFault(d string, f fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults[d] = f
}

func (r *testRegistry) clearFaults() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = map[string]fault{}
}

func (r *testRegistry) blobGets(d string) (int, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[d], r.served[d]
}

func (r *testRegistry) serve(inner http.Handler, w http.ResponseWriter, req *http.Request) {
	i := strings.LastIndex(req.URL.Path, "/")
	d := req.URL.Path[i+1:]
	r.mu.Lock()
	f, faulty := r.faults[d]
	isBlob := strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet
	if isBlob {
		r.gets[d]++
	}
	r.mu.Unlock()
	if !faulty && !isBlob {
		inner.ServeHTTP(w, req)
		return
	}
	rec := &recorder{header: http.Header{}, code: 200}
	inner.ServeHTTP(rec, req)
	body := rec.buf.Bytes()
	if faulty && f.body != nil {
		body = f.body(body)
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	// Serve ranges of blobs as registries do (go-containerregistry's does not).
	if rg := req.Header.Get("Range"); isBlob && rec.code == http.StatusOK && strings.HasPrefix(rg, "bytes=") {
		var from int
		if _, err := fmt.Sscanf(strings.TrimPrefix(rg, "bytes="), "%d-", &from); err == nil && from < len(body) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(body)-1, len(body)))
			rec.code = http.StatusPartialContent
			body = body[from:]
		}
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if faulty && f.contentLength > 0 {
		w.Header().Set("Content-Length", fmt.Sprint(f.contentLength))
	}
	if faulty && f.mediaType != "" {
		w.Header().Set("Content-Type", f.mediaType)
	}
	w.WriteHeader(rec.code)
	if req.Method == http.MethodHead {
		return
	}
	for len(body) > 0 {
		n := min(len(body), 64<<10)
		if faulty && f.contentLength > 0 && int64(n) > f.contentLength {
			n = int(f.contentLength)
		}
		k, err := w.Write(body[:n])
		r.mu.Lock()
		r.served[d] += int64(k)
		r.mu.Unlock()
		if err != nil {
			return
		}
		body = body[n:]
		if faulty && f.throttle > 0 {
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			time.Sleep(f.throttle)
		}
	}
}

type recorder struct {
	header http.Header
	code   int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(p []byte) (int, error) { return r.buf.Write(p) }

// entry is one file of a test layer.
type entry struct {
	name     string
	typ      byte
	mode     int64
	body     string
	linkname string
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, linkname: target}
}
func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, linkname: target}
}
func exe(name string, body []byte) entry {
	return entry{name: name, typ: tar.TypeReg, mode: 0o755, body: string(body)}
}
func whiteout(dirname, name string) entry { return file(filepath.Join(dirname, ".wh."+name), "") }
func opaque(dirname string) entry         { return file(filepath.Join(dirname, ".wh..wh..opq"), "") }

func tarOf(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.linkname, Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layerOf(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	data := tarOf(t, entries)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// busyboxLayer is a base layer with Debian's static busybox as /bin/sh.
func busyboxLayer(t *testing.T) v1.Layer {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("no /bin/busybox (busybox-static)")
	}
	return layerOf(t, dir("bin"), exe("bin/busybox", bb), symlink("bin/sh", "busybox"), dir("etc"), file("etc/hostname", "test\n"))
}

// push builds an image of layers and pushes it as repo:tag; returns the
// image and its manifest digest.
func (r *testRegistry) push(t *testing.T, repoTag string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"/bin/sh"}
	cf.Created = v1.Time{Time: time.Unix(1700000000, 0).UTC()}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.addr+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return img
}

// env is one private hull store.
type env struct {
	t             *testing.T
	dir, root     string
	runroot, auth string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := t.TempDir()
	e := &env{t: t, dir: d, root: filepath.Join(d, "root"), runroot: filepath.Join(d, "run"), auth: filepath.Join(d, "auth.json")}
	t.Cleanup(func() { unmountUnder(t, d) })
	return e
}

// unmountUnder unmounts anything a failed test left mounted below dir.
func unmountUnder(t *testing.T, dir string) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = exec.Command("umount", "-l", mounts[i].Mountpoint).Run()
	}
}

func (e *env) args(args ...string) []string {
	return append([]string{"--root", e.root, "--runroot", e.runroot, "--authfile", e.auth, "--registries-conf", filepath.Join(e.dir, "none.json")}, args...)
}

// hull runs the binary and returns its stdout and stderr.
func (e *env) hull(args ...string) (string, string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hullBin, e.args(args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.hull(args...)
	if err != nil {
		e.t.Fatalf("hull %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// blobs lists the committed blobs of the store.
func (e *env) blobs() []string {
	entries, _ := os.ReadDir(filepath.Join(e.root, "content", "blobs", "sha256"))
	var out []string
	for _, de := range entries {
		out = append(out, de.Name())
	}
	return out
}
