// Package volume keeps named volumes: directories under the engine's
// --root that outlive the containers mounting them, as Docker's local
// volume driver does.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"
)

// Errors; wrapped, test with errors.Is.
var (
	ErrNotFound = errors.New("no such volume")
	ErrExists   = errors.New("volume already exists")
	ErrInUse    = errors.New("volume is in use")
)

// Volume describes one named volume.
type Volume struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	Mountpoint string            `json:"Mountpoint"`
	CreatedAt  time.Time         `json:"CreatedAt"`
	Labels     map[string]string `json:"Labels"`
	Scope      string            `json:"Scope"`
	// Anonymous volumes are made for an image's VOLUME paths; `rm -v`
	// removes them with their container.
	Anonymous bool `json:"Anonymous,omitempty"`
}

// Store is the volumes directory of one engine root.
type Store struct{ dir string }

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Open opens (creating) root/volumes.
func Open(root string) (*Store, error) {
	dir := filepath.Join(root, "volumes")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("volumes dir: %w", err)
	}
	return &Store{dir: dir}, nil
}

func (s *Store) meta(name string) string { return filepath.Join(s.dir, name, "volume.json") }

// Create makes a volume; name "" makes an anonymous one with a random
// 64-hex name.
func (s *Store) Create(name string, labels map[string]string) (*Volume, error) {
	anon := name == ""
	if anon {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		name = hex.EncodeToString(b)
	}
	if !validName.MatchString(name) || len(name) > 255 {
		return nil, fmt.Errorf("invalid volume name %q: use letters, digits, '_', '.', '-'", name)
	}
	dir := filepath.Join(s.dir, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("volume %s: %w", name, ErrExists)
		}
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	v := &Volume{Name: name, Driver: "local", Mountpoint: filepath.Join(dir, "_data"), CreatedAt: time.Now().UTC(), Labels: labels, Scope: "local", Anonymous: anon}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	// The data dir is what containers see: 0755 root, like Docker's.
	if err := os.Mkdir(v.Mountpoint, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	data, _ := json.MarshalIndent(v, "", "  ")
	tmp := s.meta(name) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Rename(tmp, s.meta(name)); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	return v, nil
}

// Get returns the volume called name.
func (s *Store) Get(name string) (*Volume, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("volume %q: %w", name, ErrNotFound)
	}
	data, err := os.ReadFile(s.meta(name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("volume %s: %w", name, ErrNotFound)
		}
		return nil, err
	}
	var v Volume
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("volume %s: record is corrupt: %w", name, err)
	}
	return &v, nil
}

// GetOrCreate returns a named volume, creating it as `docker run -v
// name:/path` does.
func (s *Store) GetOrCreate(name string) (*Volume, error) {
	v, err := s.Get(name)
	if errors.Is(err, ErrNotFound) {
		v, err = s.Create(name, nil)
		if errors.Is(err, ErrExists) {
			return s.Get(name)
		}
	}
	return v, err
}

// List returns every volume, by name. Directories without a record (a
// create that was killed) are removed.
func (s *Store) List() ([]*Volume, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []*Volume
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		v, err := s.Get(e.Name())
		if errors.Is(err, ErrNotFound) {
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes a volume and its data; inUse reports whether a container
// mounts it (refused unless force).
func (s *Store) Remove(name string, force bool, inUse func(string) bool) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	if inUse != nil && inUse(name) && !force {
		return fmt.Errorf("volume %s is used by a container: remove the container first: %w", name, ErrInUse)
	}
	// The record goes first: a half-removed volume is then just a
	// directory List cleans up.
	if err := os.Remove(s.meta(name)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.RemoveAll(filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// Prune removes every volume no container uses (with all=false only
// anonymous ones, as Docker 23+ does) and returns their names.
func (s *Store) Prune(all bool, inUse func(string) bool) ([]string, error) {
	vols, err := s.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, v := range vols {
		if (!all && !v.Anonymous) || (inUse != nil && inUse(v.Name)) {
			continue
		}
		if err := s.Remove(v.Name, false, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, v.Name)
	}
	return removed, errors.Join(errs...)
}
