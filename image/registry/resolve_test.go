package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestResolveImageManifestByTag(t *testing.T) {
	for _, mt := range []types.MediaType{types.DockerManifestSchema2, types.OCIManifestSchema1} {
		t.Run(string(mt), func(t *testing.T) {
			tr := newTestRegistry(t, nil)
			img := randomImage(t, mt)
			tr.seed(t, "x/y:1", img)

			res, err := New(Config{}).Resolve(testCtx(t), tr.ref(t, "x/y:1"))
			if err != nil {
				t.Fatal(err)
			}
			raw := must[[]byte](t)(img.RawManifest())
			m := must[*v1.Manifest](t)(img.Manifest())
			dig := digestOfT(t, img)
			if !bytes.Equal(res.Manifest, raw) || res.ManifestDesc.Digest != dig || res.ManifestDesc.MediaType != mt ||
				res.ManifestDesc.Size != int64(len(raw)) {
				t.Errorf("manifest desc %+v, want %s %s %d", res.ManifestDesc, dig, mt, len(raw))
			}
			if res.Config.Digest != m.Config.Digest || len(res.Layers) != 2 || res.Layers[1].Digest != m.Layers[1].Digest {
				t.Errorf("config/layers %+v %+v, want %+v", res.Config, res.Layers, m)
			}
			if res.Index != nil || res.IndexDesc != nil {
				t.Error("an image manifest resolved with an index")
			}
			if res.Ref.Tag() != "1" || res.Ref.Digest() != dig.String() {
				t.Errorf("resolved ref %s, want tag 1 and digest %s", res.Ref, dig)
			}
			if !strings.HasPrefix(res.Endpoint, "registry ") {
				t.Errorf("endpoint %q", res.Endpoint)
			}
		})
	}
}

func TestResolvePicksPlatformFromIndex(t *testing.T) {
	plats := []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
		{OS: "linux", Architecture: "arm", Variant: "v7"},
	}
	for _, mt := range []types.MediaType{types.DockerManifestList, types.OCIImageIndex} {
		t.Run(string(mt), func(t *testing.T) {
			tr := newTestRegistry(t, nil)
			idx, imgs := platformIndex(t, mt, plats...)
			tr.seed(t, "x/y:multi", idx)

			// arm64 without a variant matches the index's arm64/v8.
			c := New(Config{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}})
			res, err := c.Resolve(testCtx(t), tr.ref(t, "x/y:multi"))
			if err != nil {
				t.Fatal(err)
			}
			if want := digestOfT(t, imgs[1]); res.ManifestDesc.Digest != want {
				t.Errorf("picked %s, want the arm64 manifest %s", res.ManifestDesc.Digest, want)
			}
			if res.ManifestDesc.Platform == nil || res.ManifestDesc.Platform.Architecture != "arm64" {
				t.Errorf("manifest descriptor platform %+v", res.ManifestDesc.Platform)
			}
			idxDig := digestOfT(t, idx)
			if res.IndexDesc == nil || res.IndexDesc.Digest != idxDig || res.IndexDesc.MediaType != mt ||
				!bytes.Equal(res.Index, must[[]byte](t)(idx.RawManifest())) {
				t.Errorf("index desc %+v, want %s %s", res.IndexDesc, idxDig, mt)
			}
			if res.Ref.Digest() != idxDig.String() {
				t.Errorf("resolved ref %s should carry the index digest %s", res.Ref, idxDig)
			}
			if res.Config.Digest != must[*v1.Manifest](t)(imgs[1].Manifest()).Config.Digest {
				t.Error("config descriptor is not the arm64 image's")
			}
		})
	}
}

func TestResolveIndexWithoutPlatformListsAvailable(t *testing.T) {
	tr := newTestRegistry(t, nil)
	idx, _ := platformIndex(t, types.OCIImageIndex,
		v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"})
	tr.seed(t, "x/y:multi", idx)

	c := New(Config{Platform: v1.Platform{OS: "linux", Architecture: "s390x"}})
	_, err := c.Resolve(testCtx(t), tr.ref(t, "x/y:multi"))
	if !errors.Is(err, ErrNoMatchingPlatform) {
		t.Fatalf("err = %v, want ErrNoMatchingPlatform", err)
	}
	assertContains(t, err, "linux/s390x", "linux/amd64", "linux/arm/v7", tr.host, "x/y", digestOfT(t, idx).String())
}

func TestPickPlatformPrefersExactThenOlderVariant(t *testing.T) {
	idx := func(plats ...v1.Platform) *v1.IndexManifest {
		m := &v1.IndexManifest{}
		for i, p := range plats {
			p := p
			m.Manifests = append(m.Manifests, v1.Descriptor{
				MediaType: types.OCIManifestSchema1,
				Digest:    v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064d", i)},
				Platform:  &p,
			})
		}
		return m
	}
	p := func(os, arch, variant string) v1.Platform {
		return v1.Platform{OS: os, Architecture: arch, Variant: variant}
	}
	for _, tc := range []struct {
		name  string
		index *v1.IndexManifest
		want  v1.Platform
		pick  int // -1: none
	}{
		{"exact amd64 over amd64/v3", idx(p("linux", "amd64", "v3"), p("linux", "amd64", "")), p("linux", "amd64", ""), 1},
		{"amd64/v3 machine takes v2", idx(p("linux", "amd64", ""), p("linux", "amd64", "v2")), p("linux", "amd64", "v3"), 1},
		{"plain amd64 does not take v3", idx(p("linux", "amd64", "v3")), p("linux", "amd64", ""), -1},
		{"arm/v7 exact over v6", idx(p("linux", "arm", "v6"), p("linux", "arm", "v7")), p("linux", "arm", "v7"), 1},
		{"arm/v7 falls back to v6", idx(p("linux", "arm", "v5"), p("linux", "arm", "v6")), p("linux", "arm", "v7"), 1},
		{"arm/v6 does not take v7", idx(p("linux", "arm", "v7")), p("linux", "arm", "v6"), -1},
		{"arm without variant is v7", idx(p("linux", "arm", "")), p("linux", "arm", "v7"), 0},
		{"aarch64 alias", idx(p("linux", "aarch64", "")), p("linux", "arm64", ""), 0},
		{"os must match", idx(p("windows", "amd64", "")), p("linux", "amd64", ""), -1},
		{"attestation entries skipped", idx(p("unknown", "unknown", ""), p("linux", "amd64", "")), p("linux", "amd64", ""), 1},
	} {
		d, err := pickPlatform(tc.index, normalizePlatform(tc.want))
		if tc.pick < 0 {
			if !errors.Is(err, ErrNoMatchingPlatform) {
				t.Errorf("%s: got %v, %v; want no match", tc.name, d.Platform, err)
			}
			continue
		}
		if err != nil || d.Digest != tc.index.Manifests[tc.pick].Digest {
			t.Errorf("%s: got %v, %v; want entry %d", tc.name, d.Platform, err, tc.pick)
		}
	}
}

func TestResolveByDigestRejectsOtherContent(t *testing.T) {
	want := randomImage(t, types.DockerManifestSchema2)
	other := randomImage(t, types.DockerManifestSchema2)
	wantDig, otherDig := digestOfT(t, want), digestOfT(t, other)
	otherRaw := must[[]byte](t)(other.RawManifest())

	// Without a Docker-Content-Digest header only the ref's digest can catch
	// it; with an honest header for the other content, still the ref's.
	for _, hdr := range []string{"", otherDig.String()} {
		tr := newTestRegistry(t, overrideManifest("x/y", wantDig.String(), string(types.DockerManifestSchema2), hdr, otherRaw))
		tr.seed(t, "x/y:1", want)
		_, err := New(Config{}).Resolve(testCtx(t), tr.ref(t, "x/y@"+wantDig.String()))
		if !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("header %q: err = %v, want ErrDigestMismatch", hdr, err)
		}
		assertContains(t, err, wantDig.String(), otherDig.String(), tr.host, "x/y")
	}
}

func TestResolveRejectsDockerContentDigestMismatch(t *testing.T) {
	img := randomImage(t, types.DockerManifestSchema2)
	raw := must[[]byte](t)(img.RawManifest())
	lie := "sha256:" + strings.Repeat("ab", 32)
	tr := newTestRegistry(t, overrideManifest("x/y", "1", string(types.DockerManifestSchema2), lie, raw))
	tr.seed(t, "x/y:1", img)

	_, err := New(Config{}).Resolve(testCtx(t), tr.ref(t, "x/y:1"))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
	assertContains(t, err, lie, digestOfT(t, img).String(), "Docker-Content-Digest", tr.host+"/x/y:1")
}

func TestResolveRejectsIndexEntryWithWrongContent(t *testing.T) {
	idx, imgs := platformIndex(t, types.OCIImageIndex,
		v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"})
	amd64Dig, arm64Dig := digestOfT(t, imgs[0]), digestOfT(t, imgs[1])
	// The registry answers the amd64 entry's digest with the arm64
	// manifest, honest header included.
	tr := newTestRegistry(t, overrideManifest("x/y", amd64Dig.String(), string(types.OCIManifestSchema1),
		arm64Dig.String(), must[[]byte](t)(imgs[1].RawManifest())))
	tr.seed(t, "x/y:multi", idx)

	_, err := New(Config{Platform: linuxAmd64}).Resolve(testCtx(t), tr.ref(t, "x/y:multi"))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
	assertContains(t, err, amd64Dig.String(), arm64Dig.String(), tr.host, "x/y")
}

func TestResolveRejectsIndexEntryWithOtherMediaType(t *testing.T) {
	idx, imgs := platformIndex(t, types.OCIImageIndex, linuxAmd64)
	// Rewrite the index so its entry claims a Docker manifest while the
	// child is OCI: the entry's declared type must match what is fetched.
	raw := jsonEdit(t, must[[]byte](t)(idx.RawManifest()), func(m map[string]any) {
		m["manifests"].([]any)[0].(map[string]any)["mediaType"] = string(types.DockerManifestSchema2)
	})
	tr := newTestRegistry(t, overrideManifest("x/y", "multi", string(types.OCIImageIndex), "", raw))
	tr.seed(t, "x/y:multi", idx)
	_, err := New(Config{Platform: linuxAmd64}).Resolve(testCtx(t), tr.ref(t, "x/y:multi"))
	if !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("err = %v, want ErrInvalidManifest", err)
	}
	assertContains(t, err, digestOfT(t, imgs[0]).String(), string(types.DockerManifestSchema2))
}

func TestResolveRejectsAmbiguousManifestAndIndex(t *testing.T) {
	// CVE-2021-41190: one document that is both an image manifest and an
	// index, under either Content-Type, with or without a mediaType.
	img := randomImage(t, types.OCIManifestSchema1)
	hybrid := jsonEdit(t, must[[]byte](t)(img.RawManifest()), func(m map[string]any) {
		m["manifests"] = []any{map[string]any{
			"mediaType": string(types.OCIManifestSchema1), "size": 7,
			"digest": "sha256:" + strings.Repeat("0", 64),
		}}
	})
	noMT := jsonEdit(t, hybrid, func(m map[string]any) { delete(m, "mediaType") })
	for _, tc := range []struct {
		ct   types.MediaType
		body []byte
	}{
		{types.OCIManifestSchema1, hybrid},
		{types.OCIImageIndex, noMT},
		{types.OCIManifestSchema1, noMT},
	} {
		tr := newTestRegistry(t, overrideManifest("x/y", "1", string(tc.ct), "", tc.body))
		_, err := New(Config{}).Resolve(testCtx(t), tr.ref(t, "x/y:1"))
		if !errors.Is(err, ErrInvalidManifest) {
			t.Fatalf("Content-Type %s: err = %v, want ErrInvalidManifest", tc.ct, err)
		}
		assertContains(t, err, "CVE-2021-41190", tr.host+"/x/y:1")
	}
}

func TestResolveRejectsContentThatDisagreesWithMediaType(t *testing.T) {
	img := randomImage(t, types.DockerManifestSchema2)
	raw := must[[]byte](t)(img.RawManifest())
	noMT := jsonEdit(t, raw, func(m map[string]any) { delete(m, "mediaType") })
	idx, _ := platformIndex(t, types.OCIImageIndex, linuxAmd64)
	idxNoMT := jsonEdit(t, must[[]byte](t)(idx.RawManifest()), func(m map[string]any) { delete(m, "mediaType") })
	for _, tc := range []struct {
		name, ct string
		body     []byte
		why      string
	}{
		{"header and body disagree", string(types.OCIManifestSchema1), raw, "Content-Type"},
		{"header index, body a manifest", string(types.OCIImageIndex), noMT, "not an index"},
		{"header manifest, body an index", string(types.OCIManifestSchema1), idxNoMT, "not an image manifest"},
		{"unknown media type", "application/vnd.example.thing+json", noMT, "unsupported manifest media type"},
		{"generic JSON header", "application/json", raw, "Content-Type"},
		{"not JSON", string(types.OCIManifestSchema1), []byte("<html>"), "not a JSON object"},
		{"schemaVersion 3", string(types.OCIManifestSchema1), jsonEdit(t, noMT, func(m map[string]any) { m["schemaVersion"] = 3 }), "schemaVersion 3"},
	} {
		tr := newTestRegistry(t, overrideManifest("x/y", "1", tc.ct, "", tc.body))
		_, err := New(Config{}).Resolve(testCtx(t), tr.ref(t, "x/y:1"))
		if !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: err = %v, want ErrInvalidManifest", tc.name, err)
			continue
		}
		assertContains(t, err, tc.why)
	}
	// A body without mediaType takes the header's when the structure fits.
	tr := newTestRegistry(t, overrideManifest("x/y", "1", string(types.DockerManifestSchema2), "", noMT))
	tr.seed(t, "x/y:1", img)
	if _, err := New(Config{}).Resolve(testCtx(t), tr.ref(t, "x/y:1")); err != nil {
		t.Errorf("manifest without mediaType under a matching header: %v", err)
	}
}

func TestResolveRefusesSchema1(t *testing.T) {
	body := []byte(`{"schemaVersion":1,"name":"x/y","tag":"1","architecture":"amd64",` +
		`"fsLayers":[{"blobSum":"sha256:` + strings.Repeat("a", 64) + `"}],"history":[{"v1Compatibility":"{}"}]}`)
	for _, ct := range []types.MediaType{types.DockerManifestSchema1Signed, types.DockerManifestSchema1, "application/json"} {
		tr := newTestRegistry(t, overrideManifest("x/y", "1", string(ct), "", body))
		_, err := New(Config{}).Resolve(testCtx(t), tr.ref(t, "x/y:1"))
		if !errors.Is(err, ErrSchema1) {
			t.Fatalf("%s: err = %v, want ErrSchema1", ct, err)
		}
		assertContains(t, err, "schema 1", tr.host+"/x/y:1")
	}
}

func TestResolveRefusesOversizedManifestWithoutReadingIt(t *testing.T) {
	var written atomic.Int64
	// Declared too large: the server then stalls; reading it would hang.
	declared := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/manifests/") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
			w.Header().Set("Content-Length", fmt.Sprint(MaxManifestSize+1))
			_, _ = w.Write([]byte(`{"schemaVersion":2,`))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
	}
	// No length, endless body: a reader without a bound never returns.
	endless := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/manifests/") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
			chunk := bytes.Repeat([]byte(" "), 64<<10)
			for r.Context().Err() == nil {
				n, err := w.Write(chunk)
				written.Add(int64(n))
				if err != nil {
					return
				}
			}
		})
	}
	for _, wrap := range []func(http.Handler) http.Handler{declared, endless} {
		tr := newTestRegistry(t, wrap)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		_, err := New(Config{}).Resolve(ctx, tr.ref(t, "x/y:big"))
		cancel()
		if !errors.Is(err, ErrManifestTooLarge) {
			t.Fatalf("err = %v, want ErrManifestTooLarge", err)
		}
		assertContains(t, err, tr.host+"/x/y:big")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v", d)
		}
	}
	// The client read about the limit, not the stream; allow for socket
	// buffers between the two.
	if w := written.Load(); w > 64<<20 {
		t.Errorf("server wrote %d bytes before the client gave up", w)
	}
	// An index entry declaring a huge child is refused before any fetch.
	if _, err := New(Config{}).fetchManifest(testCtx(t), nil, "127.0.0.1:1", "x/y", "sha256:"+strings.Repeat("0", 64),
		expect{size: MaxManifestSize + 1}); !errors.Is(err, ErrManifestTooLarge) {
		t.Errorf("declared size: err = %v", err)
	}
}

func TestResolveHonoursContext(t *testing.T) {
	stall := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") {
				<-r.Context().Done()
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	mirror := newTestRegistry(t, stall)
	reg := newTestRegistry(t, nil)
	reg.seed(t, "x/y:1", randomImage(t, types.DockerManifestSchema2))
	c := New(Config{Mirrors: map[string][]string{reg.host: {mirror.host}}})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Resolve(ctx, reg.ref(t, "x/y:1"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
	// Cancellation is not a mirror failure: the registry was not tried.
	if n := reg.hits.Load(); n != 0 {
		t.Errorf("registry got %d requests after the context ended", n)
	}

	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := New(Config{}).Resolve(cancelled, reg.ref(t, "x/y:1")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}
}

func TestErrorsNameRegistryRepositoryAndDigest(t *testing.T) {
	tr := newTestRegistry(t, nil)
	tr.seed(t, "x/y:1", randomImage(t, types.DockerManifestSchema2))
	missing := "sha256:" + strings.Repeat("1", 64)
	c := New(Config{})

	_, err := c.Resolve(testCtx(t), tr.ref(t, "x/y@"+missing))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing manifest: err = %v, want ErrNotFound", err)
	}
	assertContains(t, err, tr.host+"/x/y@"+missing)

	_, _, err = c.FetchBlob(testCtx(t), tr.ref(t, "x/y:1"), v1.Descriptor{Digest: must[v1.Hash](t)(v1.NewHash(missing)), Size: 10}, 0)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing blob: err = %v, want ErrNotFound", err)
	}
	assertContains(t, err, "blob "+tr.host+"/x/y@"+missing)

	_, err = c.Resolve(testCtx(t), tr.ref(t, "x/nope:1"))
	assertContains(t, err, tr.host+"/x/nope:1")
}

func TestResolveRejectsUnusableDescriptors(t *testing.T) {
	zero := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct{ name, body, why string }{
		{"config without digest", `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2},"layers":[]}`, "without a digest"},
		{"negative layer size", `{"schemaVersion":2,"config":{"mediaType":"a","size":2,"digest":"` + zero + `"},"layers":[{"mediaType":"b","size":-1,"digest":"` + zero + `"}]}`, "negative size"},
		{"path in a layer digest", `{"schemaVersion":2,"config":{"mediaType":"a","size":2,"digest":"` + zero + `"},"layers":[{"mediaType":"b","size":1,"digest":"sha256:../../x"}]}`, "non-hex"},
	} {
		tr := newTestRegistry(t, overrideManifest("x/y", "1", string(types.OCIManifestSchema1), "", []byte(tc.body)))
		_, err := New(Config{}).Resolve(testCtx(t), tr.ref(t, "x/y:1"))
		if !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: err = %v, want ErrInvalidManifest", tc.name, err)
			continue
		}
		assertContains(t, err, tc.why)
	}
}
