package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hull-runtime/hull/image/ref"
)

// DefaultAuthFiles returns the credential files podman and docker use, in
// podman's order: $REGISTRY_AUTH_FILE, else
// $XDG_RUNTIME_DIR/containers/auth.json (/run/containers/$UID/auth.json
// without it), then $DOCKER_CONFIG/config.json or ~/.docker/config.json.
func DefaultAuthFiles() []string {
	var files []string
	switch {
	case os.Getenv("REGISTRY_AUTH_FILE") != "":
		files = append(files, os.Getenv("REGISTRY_AUTH_FILE"))
	case os.Getenv("XDG_RUNTIME_DIR") != "":
		files = append(files, filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "containers", "auth.json"))
	default:
		files = append(files, filepath.Join("/run/containers", strconv.Itoa(os.Getuid()), "auth.json"))
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		files = append(files, filepath.Join(d, "config.json"))
	} else if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".docker", "config.json"))
	}
	return files
}

// authEntry is one "auths" value in auth.json / config.json.
type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

func (e authEntry) empty() bool {
	return e.Auth == "" && e.Username == "" && e.Password == "" && e.IdentityToken == ""
}

// normalizeAuthKey maps the spellings of an "auths" key to one form, as
// podman does: "https://index.docker.io/v1/" and "registry-1.docker.io" are
// "docker.io"; a key with a scheme is a legacy docker key and names a whole
// registry (its path is dropped); other keys may name a namespace or
// repository ("quay.io/org/repo"). The bool reports a legacy key.
func normalizeAuthKey(key string) (string, bool) {
	key = strings.TrimSpace(key)
	legacy := false
	if _, after, ok := strings.Cut(key, "://"); ok {
		key, legacy = after, true
		key, _, _ = strings.Cut(key, "/")
	}
	key = strings.TrimSuffix(key, "/")
	host, rest, _ := strings.Cut(key, "/")
	host = strings.ToLower(host)
	switch host {
	case "index.docker.io", "registry-1.docker.io":
		host = ref.DefaultDomain
	}
	if rest == "v1" || rest == "v2" {
		rest = ""
	}
	if rest == "" {
		return host, legacy
	}
	return host + "/" + rest, legacy
}

// credentials finds the credentials for repo on host: in each auth file in
// order, the most specific key ("host/a/b", then "host/a", then "host")
// with a non-empty entry. The bool reports that one was found.
func (c *Client) credentials(host, repo string) (authn.AuthConfig, bool, error) {
	hostKey, _ := normalizeAuthKey(host)
	candidates := []string{}
	for p := hostKey + "/" + repo; ; {
		candidates = append(candidates, p)
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	for _, file := range c.cfg.AuthFiles {
		entries, err := readAuthEntries(file)
		if err != nil {
			return authn.AuthConfig{}, false, err
		}
		for _, k := range candidates {
			e, ok := entries[k]
			if !ok || e.empty() {
				continue
			}
			cfg, err := e.config()
			if err != nil {
				return authn.AuthConfig{}, false, fmt.Errorf("auth file %s, entry %q: %w", file, k, err)
			}
			return cfg, true, nil
		}
	}
	return authn.AuthConfig{}, false, nil
}

// readAuthEntries reads file's "auths" by normalised key; a missing file
// has none. Where two keys normalise alike, a current-style key wins over a
// legacy one, then the first in sorted order, so the choice is stable.
func readAuthEntries(file string) (map[string]authEntry, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	var f struct {
		Auths map[string]authEntry `json:"auths"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("auth file %s: %w", file, err)
	}
	keys := make([]string, 0, len(f.Auths))
	for k := range f.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]authEntry{}
	legacyKey := map[string]bool{}
	for _, k := range keys {
		nk, legacy := normalizeAuthKey(k)
		if _, seen := out[nk]; seen && (legacy || !legacyKey[nk]) {
			continue
		}
		out[nk], legacyKey[nk] = f.Auths[k], legacy
	}
	return out, nil
}

func (e authEntry) config() (authn.AuthConfig, error) {
	cfg := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Auth))
		if err != nil {
			return cfg, fmt.Errorf("\"auth\" is not base64: %w", err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return cfg, errors.New("\"auth\" does not decode to user:password")
		}
		cfg.Username, cfg.Password = user, pass
	}
	if cfg.IdentityToken == "" && (cfg.Username == "" || cfg.Password == "") {
		return cfg, errors.New("entry has neither user:password nor an identity token")
	}
	return cfg, nil
}

// loginTarget parses Login's registry argument ("docker.io",
// "127.0.0.1:5000", "https://quay.io/v2/", "quay.io/org") into the auth
// file key and the host to check the credentials against.
func loginTarget(registry string) (key, host string, err error) {
	key, _ = normalizeAuthKey(registry)
	h, _, _ := strings.Cut(key, "/")
	if h == "" {
		return "", "", fmt.Errorf("login: no registry in %q", registry)
	}
	if _, err := name.NewRegistry(h, name.StrictValidation); err != nil {
		return "", "", fmt.Errorf("login: registry %q: %w", registry, err)
	}
	return key, registryHost(h), nil
}

// Login checks user and pass against registry with a real round trip (a
// token exchange for token-auth registries, an authenticated GET /v2/ in
// every case) and, when they work, stores them in authFile (podman's
// auth.json format, readable by docker too) replacing any entry for the
// same registry. cfg supplies transport settings (Insecure, UserAgent).
func Login(ctx context.Context, cfg Config, registry, user, pass, authFile string) error {
	key, host, err := loginTarget(registry)
	if err != nil {
		return err
	}
	if user == "" || pass == "" {
		return fmt.Errorf("login to %s: user name and password are required", key)
	}
	if authFile == "" {
		return fmt.Errorf("login to %s: no auth file given", key)
	}
	c := New(cfg)
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
	// A token with no scope proves the credentials to the token service;
	// registries that have none check them on /v2/ below.
	s, err := c.newSession(ctx, host, "", auth, nil)
	if err != nil {
		return fmt.Errorf("login to %s: %w", key, err)
	}
	u := url.URL{Scheme: s.scheme, Host: host, Path: "/v2/"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("login to %s: %w", key, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("login to %s: %w", key, err)
	}
	err = transport.CheckError(resp, http.StatusOK)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("login to %s: %w", key, classify(err))
	}
	encoded := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return updateAuthFile(authFile, func(auths map[string]json.RawMessage) error {
		removeAuthKeys(auths, key)
		entry, err := json.Marshal(authEntry{Auth: encoded})
		if err != nil {
			return err
		}
		auths[key] = entry
		return nil
	})
}

// Logout removes registry's credentials (every spelling of its key) from
// authFile. It returns an error wrapping ErrNotLoggedIn when there were
// none.
func Logout(authFile, registry string) error {
	key, _, err := loginTarget(registry)
	if err != nil {
		return err
	}
	return updateAuthFile(authFile, func(auths map[string]json.RawMessage) error {
		if removeAuthKeys(auths, key) == 0 {
			return fmt.Errorf("logout from %s: %w (in %s)", key, ErrNotLoggedIn, authFile)
		}
		return nil
	})
}

// removeAuthKeys deletes the keys that normalise to key.
func removeAuthKeys(auths map[string]json.RawMessage, key string) int {
	n := 0
	for k := range auths {
		if nk, _ := normalizeAuthKey(k); nk == key {
			delete(auths, k)
			n++
		}
	}
	return n
}

// updateAuthFile applies edit to the "auths" of file, keeping every other
// key of the file, and replaces the file atomically. A file that does not
// parse is left alone rather than overwritten.
func updateAuthFile(file string, edit func(map[string]json.RawMessage) error) error {
	top := map[string]json.RawMessage{}
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("auth file: %w", err)
	case len(strings.TrimSpace(string(data))) > 0:
		if err := json.Unmarshal(data, &top); err != nil {
			return fmt.Errorf("auth file %s is not valid JSON, not touching it: %w", file, err)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := top["auths"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return fmt.Errorf("auth file %s: \"auths\": %w", file, err)
		}
	}
	if err := edit(auths); err != nil {
		return err
	}
	raw, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	top["auths"] = raw
	out, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return err
	}
	return writeFileAtomic(file, append(out, '\n'))
}

// writeFileAtomic replaces file with data, mode 0600, creating its
// directory 0700 if needed: temp file in the same directory, fsync,
// rename, fsync the directory. Readers see the old or the new file, never
// a partial one, and a crash leaves at most a stray temp file.
func writeFileAtomic(file string, data []byte) (err error) {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("auth file: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("auth file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600 less the umask; be exact.
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("auth file: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("auth file: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("auth file: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("auth file: %w", err)
	}
	if err = os.Rename(tmp, file); err != nil {
		return fmt.Errorf("auth file: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("auth file: %w", err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("auth file: sync %s: %w", dir, err)
	}
	return nil
}
