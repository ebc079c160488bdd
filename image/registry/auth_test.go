package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestBasicAuthCredentialsFromAuthFile(t *testing.T) {
	tr := newTestRegistry(t, requireBasic("alice", "s3cret"))
	img := randomImage(t, types.DockerManifestSchema2)
	tr.seed(t, "x/y:1", img)
	dir := t.TempDir()
	good := writeAuthFile(t, dir, "auth.json", map[string]map[string]string{
		tr.host: {"auth": basicAuthValue("alice", "s3cret")},
	})
	wrong := writeAuthFile(t, dir, "wrong.json", map[string]map[string]string{
		tr.host: {"auth": basicAuthValue("alice", "guess")},
	})
	// docker's config.json spelling: legacy key with a scheme, and
	// username/password fields instead of "auth".
	docker := writeAuthFile(t, dir, "config.json", map[string]map[string]string{
		"http://" + tr.host + "/v2/": {"username": "alice", "password": "s3cret"},
	})
	r := tr.ref(t, "x/y:1")

	for _, files := range [][]string{
		{filepath.Join(dir, "missing.json"), good},
		{docker},
	} {
		c := New(Config{AuthFiles: files})
		res, err := c.Resolve(testCtx(t), r)
		if err != nil {
			t.Fatalf("auth files %v: %v", files, err)
		}
		rc, _, err := c.FetchBlob(testCtx(t), r, res.Layers[0], 0)
		if err != nil {
			t.Fatalf("auth files %v: blob: %v", files, err)
		}
		rc.Close()
	}

	_, err := New(Config{}).Resolve(testCtx(t), r)
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("no credentials: err = %v, want ErrUnauthorized", err)
	}
	assertContains(t, err, "no credentials", tr.host, "x/y")

	// The first file with an entry wins, even when a later one is right.
	_, err = New(Config{AuthFiles: []string{wrong, good}}).Resolve(testCtx(t), r)
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong credentials first: err = %v, want ErrUnauthorized", err)
	}
}

func TestTokenAuthCredentialsFromAuthFile(t *testing.T) {
	ta := newTokenAuth("bob", "hunter2")
	tr := newTestRegistry(t, ta.wrap)
	img := randomImage(t, types.OCIManifestSchema1)
	tr.seed(t, "x/y:1", img)
	file := writeAuthFile(t, t.TempDir(), "auth.json", map[string]map[string]string{
		tr.host: {"username": "bob", "password": "hunter2"},
	})
	c := New(Config{AuthFiles: []string{file}})
	r := tr.ref(t, "x/y:1")

	res, err := c.Resolve(testCtx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range res.Layers {
		rc, _, err := c.FetchBlob(testCtx(t), r, l, 0)
		if err != nil {
			t.Fatal(err)
		}
		readAllT(t, rc)
	}
	// One pull token served the manifest and every blob.
	if got := ta.scopesRequested(); !slices.Equal(got, []string{"repository:x/y:pull"}) {
		t.Errorf("token scopes requested %q, want one pull token for x/y", got)
	}

	if err := c.Push(testCtx(t), tr.ref(t, "x/z:2"), randomImage(t, types.DockerManifestSchema2)); err != nil {
		t.Fatalf("push with a token: %v", err)
	}
	if got := ta.scopesRequested(); !slices.Contains(got, "repository:x/z:push,pull") {
		t.Errorf("token scopes requested %q, want a push token for x/z", got)
	}

	_, err = New(Config{}).Resolve(testCtx(t), r)
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("no credentials: err = %v, want ErrUnauthorized", err)
	}
	assertContains(t, err, tr.host, "x/y")
}

func TestAuthFileKeysAreMatchedLikePodman(t *testing.T) {
	dir := t.TempDir()
	first := writeAuthFile(t, dir, "auth.json", map[string]map[string]string{
		"quay.io/org":      {"auth": basicAuthValue("org-user", "p")},
		"quay.io":          {"auth": basicAuthValue("quay-user", "p")},
		"quay.io/org/repo": {"auth": basicAuthValue("repo-user", "p")},
		"example.com":      {}, // a credential-helper placeholder: no credentials here
	})
	second := writeAuthFile(t, dir, "config.json", map[string]map[string]string{
		"https://index.docker.io/v1/": {"auth": basicAuthValue("hub-user", "p")},
		"docker.io":                   {"auth": basicAuthValue("hub-user-new", "p")},
		"example.com":                 {"username": "ex-user", "password": "p"},
		"http://localhost:5000":       {"auth": basicAuthValue("local-user", "p")},
	})
	c := New(Config{AuthFiles: []string{first, second}})
	for _, tc := range []struct{ host, repo, user string }{
		{"quay.io", "org/repo", "repo-user"},
		{"quay.io", "org/other", "org-user"},
		{"quay.io", "else/x", "quay-user"},
		{"index.docker.io", "library/busybox", "hub-user-new"}, // the current-style key beats the legacy one
		{"example.com", "a/b", "ex-user"},
		{"localhost:5000", "a", "local-user"},
		{"other.io", "a", ""},
	} {
		cfg, found, err := c.credentials(tc.host, tc.repo)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != tc.user || found != (tc.user != "") {
			t.Errorf("%s/%s: user %q (found %v), want %q", tc.host, tc.repo, cfg.Username, found, tc.user)
		}
	}

	bad := writeAuthFile(t, dir, "bad.json", map[string]map[string]string{"r.io": {"auth": "!!!"}})
	if _, _, err := New(Config{AuthFiles: []string{bad}}).credentials("r.io", "a"); err == nil {
		t.Error("invalid base64 accepted")
	} else {
		assertContains(t, err, bad, "r.io")
	}
	if err := os.WriteFile(bad, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := New(Config{AuthFiles: []string{bad}}).credentials("r.io", "a"); err == nil {
		t.Error("invalid JSON accepted")
	}
}

func readAuths(t *testing.T, file string) map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	var auths map[string]json.RawMessage
	if err := json.Unmarshal(top["auths"], &auths); err != nil {
		t.Fatal(err)
	}
	return auths
}

func TestLoginChecksCredentialsAndWritesOwnerOnlyFile(t *testing.T) {
	servers := map[string]*testRegistry{
		"basic": newTestRegistry(t, requireBasic("carol", "pw1")),
		"token": newTestRegistry(t, newTokenAuth("carol", "pw1").wrap),
	}
	for kind, tr := range servers {
		t.Run(kind, func(t *testing.T) {
			img := randomImage(t, types.DockerManifestSchema2)
			tr.seed(t, "x/y:1", img)
			dir := filepath.Join(t.TempDir(), "run", "containers")
			file := filepath.Join(dir, "auth.json")

			err := Login(testCtx(t), Config{}, tr.host, "carol", "wrong", file)
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("wrong password: err = %v, want ErrUnauthorized", err)
			}
			assertContains(t, err, tr.host)
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Fatalf("a failed login wrote the auth file: %v", err)
			}

			if err := Login(testCtx(t), Config{}, "http://"+tr.host+"/", "carol", "pw1", file); err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]os.FileMode{file: 0o600, dir: 0o700, filepath.Dir(dir): 0o700} {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != want {
					t.Errorf("%s mode %v, want %v", p, st.Mode().Perm(), want)
				}
			}
			var e authEntry
			if err := json.Unmarshal(readAuths(t, file)[tr.host], &e); err != nil || e.Auth != basicAuthValue("carol", "pw1") {
				t.Errorf("entry for %s: %+v, %v", tr.host, e, err)
			}
			if _, err := New(Config{AuthFiles: []string{file}}).Resolve(testCtx(t), tr.ref(t, "x/y:1")); err != nil {
				t.Errorf("resolve with the written credentials: %v", err)
			}
		})
	}
}

func TestLoginReplacesFileAtomicallyKeepingOtherEntries(t *testing.T) {
	tr := newTestRegistry(t, requireBasic("dave", "pw2"))
	dir := t.TempDir()
	file := filepath.Join(dir, "config.json")
	orig := []byte(`{"auths":{"other.example":{"auth":"b3RoZXI6cHc="},"http://` + tr.host + `":{"auth":"b2xkOm9sZA=="}},"credHelpers":{"gcr.io":"gcloud"}}`)
	if err := os.WriteFile(file, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}

	if err := Login(testCtx(t), Config{}, tr.host, "dave", "pw2", file); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Error("the file was rewritten in place, not replaced by rename")
	}
	if after.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", after.Mode().Perm())
	}
	auths := readAuths(t, file)
	if _, ok := auths["other.example"]; !ok {
		t.Error("other registry's entry lost")
	}
	if _, ok := auths["http://"+tr.host]; ok {
		t.Error("the old spelling of the same registry's key was kept beside the new one")
	}
	b, _ := os.ReadFile(file)
	if !bytes.Contains(b, []byte(`"gcr.io": "gcloud"`)) {
		t.Errorf("credHelpers lost: %s", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the auth file (no temp files)", len(ents))
	}

	// A file that does not parse is not overwritten.
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Login(testCtx(t), Config{}, tr.host, "dave", "pw2", file); err == nil {
		t.Error("login overwrote an unparsable auth file")
	}
	if b, _ := os.ReadFile(file); string(b) != "{not json" {
		t.Error("unparsable auth file changed")
	}
}

func TestLogoutRemovesCredentials(t *testing.T) {
	dir := t.TempDir()
	file := writeAuthFile(t, dir, "auth.json", map[string]map[string]string{
		"127.0.0.1:5000":              {"auth": basicAuthValue("a", "b")},
		"http://127.0.0.1:5000/v2/":   {"auth": basicAuthValue("a", "b")},
		"https://index.docker.io/v1/": {"auth": basicAuthValue("h", "b")},
		"quay.io":                     {"auth": basicAuthValue("q", "b")},
	})
	if err := Logout(file, "127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	if err := Logout(file, "docker.io"); err != nil {
		t.Fatal(err)
	}
	auths := readAuths(t, file)
	if len(auths) != 1 || auths["quay.io"] == nil {
		t.Errorf("after logout: %v", auths)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if err := Logout(file, "127.0.0.1:5000"); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("second logout: %v, want ErrNotLoggedIn", err)
	}
	if err := Logout(filepath.Join(dir, "none.json"), "quay.io"); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("logout without a file: %v, want ErrNotLoggedIn", err)
	}
}

func TestPushThenResolve(t *testing.T) {
	tr := newTestRegistry(t, nil)
	c := New(Config{})
	img := randomImage(t, types.OCIManifestSchema1)
	r := tr.ref(t, "x/y:1")
	if err := c.Push(testCtx(t), r, img); err != nil {
		t.Fatal(err)
	}
	res, err := c.Resolve(testCtx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.ManifestDesc.Digest != digestOfT(t, img) || !bytes.Equal(res.Manifest, must[[]byte](t)(img.RawManifest())) {
		t.Error("resolved manifest differs from the pushed one")
	}
	d, want := layerBytes(t, img, 1)
	rc, _, err := c.FetchBlob(testCtx(t), r, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAllT(t, rc), want) {
		t.Error("pushed layer differs")
	}

	// By digest, and a digest that is not the image's.
	if err := c.Push(testCtx(t), r.WithDigest(digestOfT(t, img).String()), img); err != nil {
		t.Errorf("push with the image's own digest: %v", err)
	}
	other := digestOfT(t, randomImage(t, types.OCIManifestSchema1))
	if err := c.Push(testCtx(t), tr.ref(t, "x/y@"+other.String()), img); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("push under another digest: %v, want ErrDigestMismatch", err)
	}

	idx, imgs := platformIndex(t, types.DockerManifestList,
		v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "riscv64"})
	ri := tr.ref(t, "x/y:multi")
	if err := c.PushIndex(testCtx(t), ri, idx); err != nil {
		t.Fatal(err)
	}
	res, err = New(Config{Platform: v1.Platform{OS: "linux", Architecture: "riscv64"}}).Resolve(testCtx(t), ri)
	if err != nil {
		t.Fatal(err)
	}
	if res.ManifestDesc.Digest != digestOfT(t, imgs[1]) || res.IndexDesc == nil || res.IndexDesc.Digest != digestOfT(t, idx) {
		t.Error("pushed index does not resolve to its riscv64 image")
	}
}

func TestLoginTakesEffectInARunningClient(t *testing.T) {
	// A long-running process (the CRI server) keeps one Client: a login
	// after a failed pull must not be shadowed by a cached anonymous session.
	for kind, wrap := range map[string]func(http.Handler) http.Handler{
		"basic": requireBasic("erin", "pw3"),
		"token": newTokenAuth("erin", "pw3").wrap,
	} {
		t.Run(kind, func(t *testing.T) {
			tr := newTestRegistry(t, wrap)
			tr.seed(t, "x/y:1", randomImage(t, types.DockerManifestSchema2))
			file := filepath.Join(t.TempDir(), "auth.json")
			c := New(Config{AuthFiles: []string{file}})
			if _, err := c.Resolve(testCtx(t), tr.ref(t, "x/y:1")); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("before login: %v, want ErrUnauthorized", err)
			}
			if err := Login(testCtx(t), Config{}, tr.host, "erin", "pw3", file); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Resolve(testCtx(t), tr.ref(t, "x/y:1")); err != nil {
				t.Errorf("after login: %v", err)
			}
		})
	}
}

func TestDefaultAuthFilesFollowPodmanThenDocker(t *testing.T) {
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	t.Setenv("DOCKER_CONFIG", "/home/u/.dockercfg")
	if got, want := DefaultAuthFiles(), []string{"/run/user/1000/containers/auth.json", "/home/u/.dockercfg/config.json"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	t.Setenv("REGISTRY_AUTH_FILE", "/etc/hull/auth.json")
	if got := DefaultAuthFiles(); got[0] != "/etc/hull/auth.json" || len(got) != 2 {
		t.Errorf("REGISTRY_AUTH_FILE: got %q", got)
	}
}
