package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hull-runtime/hull/image/ref"
)

// testRegistry is go-containerregistry's in-memory registry served twice on
// 127.0.0.1: raw (for seeding, bypassing faults) and through wrap (what the
// client under test talks to).
type testRegistry struct {
	host     string // the wrapped server, "127.0.0.1:port"
	seedHost string // the raw server
	hits     atomic.Int64
}

// newTestRegistry starts a registry; wrap (may be nil) injects faults.
func newTestRegistry(t *testing.T, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	seed := httptest.NewServer(h)
	t.Cleanup(seed.Close)
	tr := &testRegistry{seedHost: strings.TrimPrefix(seed.URL, "http://")}
	front := h
	if wrap != nil {
		front = wrap(h)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" {
			tr.hits.Add(1)
		}
		front.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	return tr
}

// seed pushes t (an image or index) as repo:tag through the raw server.
func (tr *testRegistry) seed(t *testing.T, repoTag string, item any) {
	t.Helper()
	n, err := name.ParseReference(tr.seedHost+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	switch v := item.(type) {
	case v1.Image:
		err = remote.Write(n, v)
	case v1.ImageIndex:
		err = remote.WriteIndex(n, v)
	default:
		t.Fatalf("seed: %T", item)
	}
	if err != nil {
		t.Fatalf("seed %s: %v", repoTag, err)
	}
}

// ref returns the reference of repoRef on the wrapped server.
func (tr *testRegistry) ref(t *testing.T, repoRef string) ref.Ref {
	t.Helper()
	return mustParse(t, tr.host+"/"+repoRef)
}

func mustParse(t *testing.T, s string) ref.Ref {
	t.Helper()
	r, err := ref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func randomImage(t *testing.T, mt types.MediaType) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	if mt == types.OCIManifestSchema1 {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	return img
}

func platformIndex(t *testing.T, mt types.MediaType, plats ...v1.Platform) (v1.ImageIndex, []v1.Image) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, mt)
	var imgs []v1.Image
	for _, p := range plats {
		img := randomImage(t, types.DockerManifestSchema2)
		if mt == types.OCIImageIndex {
			img = randomImage(t, types.OCIManifestSchema1)
		}
		imgs = append(imgs, img)
		p := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx, imgs
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func digestOfT(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	return must[v1.Hash](t)(d.Digest())
}

var linuxAmd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// testCtx is a context that ends with the test, bounded so a hang fails
// instead of stalling the suite.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// overrideManifest serves body with contentType (and digestHeader when not
// "") for GETs of /v2/<repo>/manifests/<ident>, delegating everything else.
func overrideManifest(repo, ident, contentType, digestHeader string, body []byte) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/v2/"+repo+"/manifests/"+ident {
				w.Header().Set("Content-Type", contentType)
				if digestHeader != "" {
					w.Header().Set("Docker-Content-Digest", digestHeader)
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				_, _ = w.Write(body)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// failing answers every request but the ping with status.
func failing(status int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				next.ServeHTTP(w, r)
				return
			}
			http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected"}]}`, status)
		})
	}
}

// refusedAddr is a 127.0.0.1 port nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// writeAuthFile writes {"auths": auths} to dir/name and returns its path.
func writeAuthFile(t *testing.T, dir, name string, auths map[string]map[string]string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func basicAuthValue(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// requireBasic demands HTTP Basic user:pass on every request, as a
// registry behind basic auth does (the ping included).
func requireBasic(user, pass string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="hull-test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// tokenAuth is a registry front with Docker's token auth: a /token
// endpoint that exchanges Basic credentials for bearer tokens carrying the
// requested scopes, and a registry that checks each request's token has the
// scope it needs.
type tokenAuth struct {
	user, pass string

	mu        sync.Mutex
	tokens    map[string][]string // token -> granted scopes
	requested []string            // scope parameters seen by /token
	n         int
}

func newTokenAuth(user, pass string) *tokenAuth {
	return &tokenAuth{user: user, pass: pass, tokens: map[string][]string{}}
}

func (ta *tokenAuth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			ta.issue(w, r)
			return
		}
		repo, action := scopeNeeded(r)
		challenge := fmt.Sprintf(`Bearer realm="http://%s/token",service="hull-test"`, r.Host)
		if repo != "" {
			challenge += fmt.Sprintf(`,scope="repository:%s:%s"`, repo, action)
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		ta.mu.Lock()
		scopes, ok := ta.tokens[tok]
		ta.mu.Unlock()
		if ok && (repo == "" || grants(scopes, repo, action)) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}`, http.StatusUnauthorized)
	})
}

func (ta *tokenAuth) issue(w http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	if !ok || u != ta.user || p != ta.pass {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.n++
	tok := fmt.Sprintf("tok-%d", ta.n)
	scopes := r.URL.Query()["scope"]
	ta.requested = append(ta.requested, scopes...)
	ta.tokens[tok] = scopes
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
}

func (ta *tokenAuth) scopesRequested() []string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return append([]string(nil), ta.requested...)
}

// scopeNeeded is the repository and action a registry API request needs.
func scopeNeeded(r *http.Request) (repo, action string) {
	p := strings.TrimPrefix(r.URL.Path, "/v2/")
	for _, kind := range []string{"/manifests/", "/blobs/", "/tags/"} {
		if i := strings.Index(p, kind); i > 0 {
			repo = p[:i]
			break
		}
	}
	action = "pull"
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		action = "push"
	}
	return repo, action
}

func grants(scopes []string, repo, action string) bool {
	for _, s := range scopes {
		for _, one := range strings.Fields(s) {
			parts := strings.Split(one, ":")
			if len(parts) == 3 && parts[0] == "repository" && parts[1] == repo {
				for _, a := range strings.Split(parts[2], ",") {
					if a == action {
						return true
					}
				}
			}
		}
	}
	return false
}

func readAllT(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func layerBytes(t *testing.T, img v1.Image, i int) (v1.Descriptor, []byte) {
	t.Helper()
	m := must[*v1.Manifest](t)(img.Manifest())
	l := must[v1.Layer](t)(img.LayerByDigest(m.Layers[i].Digest))
	rc := must[io.ReadCloser](t)(l.Compressed())
	return m.Layers[i], readAllT(t, rc)
}

func jsonEdit(t *testing.T, raw []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func mustDesc(t *testing.T, digest string) v1.Descriptor {
	t.Helper()
	return v1.Descriptor{Digest: must[v1.Hash](t)(v1.NewHash(digest))}
}
