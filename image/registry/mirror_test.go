package registry

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestMirrorIsTriedBeforeRegistry(t *testing.T) {
	reg := newTestRegistry(t, nil)
	mirror := newTestRegistry(t, nil)
	onReg := randomImage(t, types.DockerManifestSchema2)
	onMirror := randomImage(t, types.DockerManifestSchema2)
	reg.seed(t, "x/y:1", onReg)
	mirror.seed(t, "x/y:1", onMirror)

	c := New(Config{Mirrors: map[string][]string{reg.host: {mirror.host}}})
	r := reg.ref(t, "x/y:1")
	res, err := c.Resolve(testCtx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.ManifestDesc.Digest != digestOfT(t, onMirror) || res.Endpoint != "mirror "+mirror.host {
		t.Errorf("resolved %s from %q, want the mirror's %s", res.ManifestDesc.Digest, res.Endpoint, digestOfT(t, onMirror))
	}
	d, want := layerBytes(t, onMirror, 0)
	rc, _, err := c.FetchBlob(testCtx(t), r, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAllT(t, rc), want) {
		t.Error("blob differs from the mirror's")
	}
	if n := reg.hits.Load(); n != 0 {
		t.Errorf("the registry got %d requests though the mirror had everything", n)
	}
}

func TestMirrorWithPathPrefixAndSchemeServesDockerHub(t *testing.T) {
	// "busybox" is docker.io/library/busybox; a mirror configured as
	// http://host/hub serves it as hub/library/busybox. The mirror has it,
	// so nothing leaves 127.0.0.1.
	mirror := newTestRegistry(t, nil)
	img := randomImage(t, types.OCIManifestSchema1)
	mirror.seed(t, "hub/library/busybox:latest", img)
	c := New(Config{Mirrors: map[string][]string{"docker.io": {"http://" + mirror.host + "/hub"}}})
	r := mustParse(t, "busybox")
	res, err := c.Resolve(testCtx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.ManifestDesc.Digest != digestOfT(t, img) {
		t.Errorf("resolved %s, want %s", res.ManifestDesc.Digest, digestOfT(t, img))
	}
	d, want := layerBytes(t, img, 1)
	rc, _, err := c.FetchBlob(testCtx(t), r, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAllT(t, rc), want) {
		t.Error("blob differs")
	}
}

func TestMirrorFailuresFallBackToRegistry(t *testing.T) {
	reg := newTestRegistry(t, nil)
	img := randomImage(t, types.DockerManifestSchema2)
	reg.seed(t, "x/y:1", img)
	notFound := newTestRegistry(t, nil) // empty: 404 for everything
	broken := newTestRegistry(t, failing(http.StatusBadGateway))
	badManifest := newTestRegistry(t, overrideManifest("x/y", "1", string(types.OCIManifestSchema1), "", []byte(`{"schemaVersion":2,"manifests":[],"layers":[]}`)))
	mirrors := []string{refusedAddr(t), notFound.host, broken.host, badManifest.host, "http://in valid"}

	c := New(Config{Mirrors: map[string][]string{reg.host: mirrors}})
	r := reg.ref(t, "x/y:1")
	res, err := c.Resolve(testCtx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.ManifestDesc.Digest != digestOfT(t, img) || res.Endpoint != "registry "+reg.host {
		t.Errorf("resolved %s from %q", res.ManifestDesc.Digest, res.Endpoint)
	}
	d, want := layerBytes(t, img, 0)
	rc, _, err := c.FetchBlob(testCtx(t), r, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAllT(t, rc), want) {
		t.Error("blob differs")
	}
}

func TestAllEndpointsFailingListsEveryEndpoint(t *testing.T) {
	reg := newTestRegistry(t, failing(http.StatusServiceUnavailable))
	refused := refusedAddr(t)
	notFound := newTestRegistry(t, nil)
	broken := newTestRegistry(t, failing(http.StatusInternalServerError))
	c := New(Config{Mirrors: map[string][]string{reg.host: {refused, notFound.host, broken.host}}})
	r := reg.ref(t, "x/y:1")

	_, err := c.Resolve(testCtx(t), r)
	var ee *EndpointsError
	if !errors.As(err, &ee) || len(ee.Attempts) != 4 {
		t.Fatalf("err = %v, want an EndpointsError with 4 attempts", err)
	}
	assertContains(t, err, "mirror "+refused, "mirror "+notFound.host, "mirror "+broken.host, "registry "+reg.host,
		"connection refused", "x/y:1")
	if !errors.Is(err, ErrNotFound) {
		t.Error("the mirror's 404 is not reachable with errors.Is")
	}

	digest := "sha256:" + strings.Repeat("2", 64)
	_, _, err = c.FetchBlob(testCtx(t), r, mustDesc(t, digest), 0)
	if !errors.As(err, &ee) || len(ee.Attempts) != 4 {
		t.Fatalf("blob: err = %v, want an EndpointsError with 4 attempts", err)
	}
	assertContains(t, err, digest, refused, notFound.host, broken.host, reg.host)
}

func TestPlainHTTPMirrorMustBeRelaxed(t *testing.T) {
	c := New(Config{})
	ep := c.parseMirror("http://mirror.example.com:5000")
	if !errors.Is(ep.err, ErrPlainHTTP) {
		t.Errorf("plain HTTP mirror on a public name: %v", ep.err)
	}
	c = New(Config{Insecure: []string{"mirror.example.com:5000"}})
	if ep := c.parseMirror("http://mirror.example.com:5000"); ep.err != nil {
		t.Errorf("insecure-listed plain HTTP mirror: %v", ep.err)
	}
	for _, bad := range []string{"ftp://m", "https://", "m:5000/UPPER", "m:5000/a/../b"} {
		if ep := c.parseMirror(bad); ep.err == nil {
			t.Errorf("mirror %q accepted", bad)
		}
	}
}
