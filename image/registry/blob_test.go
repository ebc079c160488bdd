package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestFetchBlobStreamsBlob(t *testing.T) {
	tr := newTestRegistry(t, nil)
	img := randomImage(t, types.DockerManifestSchema2)
	tr.seed(t, "x/y:1", img)
	d, want := layerBytes(t, img, 0)

	rc, resumed, err := New(Config{}).FetchBlob(testCtx(t), tr.ref(t, "x/y:1"), d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllT(t, rc); !bytes.Equal(got, want) || resumed {
		t.Errorf("got %d bytes (resumed=%v), want the %d-byte layer", len(got), resumed, len(want))
	}
}

func TestFetchBlobResumesWithRange(t *testing.T) {
	var rangeSeen atomic.Value
	tr := newTestRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/blobs/") {
				rangeSeen.Store(r.Header.Get("Range"))
			}
			next.ServeHTTP(w, r)
		})
	})
	img := randomImage(t, types.DockerManifestSchema2)
	tr.seed(t, "x/y:1", img)
	d, want := layerBytes(t, img, 1)

	rc, resumed, err := New(Config{}).FetchBlob(testCtx(t), tr.ref(t, "x/y:1"), d, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := readAllT(t, rc)
	if !resumed || !bytes.Equal(got, want[100:]) {
		t.Errorf("resumed=%v, got %d bytes, want the last %d", resumed, len(got), len(want)-100)
	}
	if wantRange := fmt.Sprintf("bytes=100-%d", d.Size-1); rangeSeen.Load() != wantRange {
		t.Errorf("Range %q, want %q", rangeSeen, wantRange)
	}
}

func TestFetchBlobReportsIgnoredRange(t *testing.T) {
	// A registry (or proxy) that drops Range answers 200 with the whole
	// blob: the caller is told to start over, and gets the whole blob.
	tr := newTestRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("Range")
			next.ServeHTTP(w, r)
		})
	})
	img := randomImage(t, types.DockerManifestSchema2)
	tr.seed(t, "x/y:1", img)
	d, want := layerBytes(t, img, 0)

	rc, resumed, err := New(Config{}).FetchBlob(testCtx(t), tr.ref(t, "x/y:1"), d, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllT(t, rc); resumed || !bytes.Equal(got, want) {
		t.Errorf("resumed=%v, got %d bytes; want resumed=false and all %d", resumed, len(got), len(want))
	}
}

func TestFetchBlobRejectsMisalignedRange(t *testing.T) {
	tr := newTestRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/blobs/") && r.Header.Get("Range") != "" {
				w.Header().Set("Content-Range", "bytes 0-9/2048")
				w.WriteHeader(http.StatusPartialContent)
				_, _ = w.Write(make([]byte, 10))
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	img := randomImage(t, types.DockerManifestSchema2)
	tr.seed(t, "x/y:1", img)
	d, _ := layerBytes(t, img, 0)
	_, _, err := New(Config{}).FetchBlob(testCtx(t), tr.ref(t, "x/y:1"), d, 100)
	assertContains(t, err, "bytes 0-9/2048", d.Digest.String(), tr.host+"/x/y")
}

func TestFetchBlobPassesBadContentToTheVerifyingCaller(t *testing.T) {
	// Wrong bytes, a short body and a lying Content-Length are the content
	// store's to catch (it verifies size and digest): FetchBlob returns the
	// stream as served, and a truncated one ends in an error, not silently.
	img := randomImage(t, types.DockerManifestSchema2)
	d, want := layerBytes(t, img, 0)
	wrong := bytes.Repeat([]byte("x"), len(want))
	serve := func(body []byte, length int) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/"+d.Digest.String()) {
					w.Header().Set("Content-Length", fmt.Sprint(length))
					_, _ = w.Write(body)
					return
				}
				next.ServeHTTP(w, r)
			})
		}
	}

	tr := newTestRegistry(t, serve(wrong, len(wrong)))
	tr.seed(t, "x/y:1", img)
	rc, _, err := New(Config{}).FetchBlob(testCtx(t), tr.ref(t, "x/y:1"), d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllT(t, rc); !bytes.Equal(got, wrong) {
		t.Error("wrong bytes were not passed through as served")
	}

	tr = newTestRegistry(t, serve(want[:len(want)/2], len(want)))
	tr.seed(t, "x/y:1", img)
	rc, _, err = New(Config{}).FetchBlob(testCtx(t), tr.ref(t, "x/y:1"), d, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != len(want)/2 {
		t.Errorf("truncated body: %d bytes, err %v; want %d and ErrUnexpectedEOF", len(got), err, len(want)/2)
	}
}

func TestFetchBlobHonoursContextMidStream(t *testing.T) {
	img := randomImage(t, types.DockerManifestSchema2)
	d, want := layerBytes(t, img, 0)
	tr := newTestRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				w.Header().Set("Content-Length", fmt.Sprint(len(want)))
				_, _ = w.Write(want[:100])
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	tr.seed(t, "x/y:1", img)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, _, err := New(Config{}).FetchBlob(ctx, tr.ref(t, "x/y:1"), d, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 100)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = rc.Read(buf)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want context.Canceled", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("read did not return promptly after cancel")
	}
}

func TestFetchBlobRejectsBadDigestAndOffset(t *testing.T) {
	c := New(Config{})
	r := mustParse(t, "127.0.0.1:1/x/y:1")
	good := must[v1.Hash](t)(v1.NewHash("sha256:" + strings.Repeat("0", 64)))
	for _, tc := range []struct {
		d      v1.Descriptor
		offset int64
		why    string
	}{
		{v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: "../../../v2/other/blobs/x"}}, 0, "invalid digest"},
		{v1.Descriptor{Digest: v1.Hash{Algorithm: "md5", Hex: strings.Repeat("0", 32)}}, 0, "unsupported algorithm"},
		{v1.Descriptor{Digest: good, Size: 10}, 10, "offset 10"},
		{v1.Descriptor{Digest: good, Size: 10}, -1, "offset -1"},
	} {
		_, _, err := c.FetchBlob(testCtx(t), r, tc.d, tc.offset)
		assertContains(t, err, tc.why)
	}
}
