// Package container keeps the engine's containers: one directory per
// container holding its record (container.json), its bundle and its data,
// under the engine's --root; names are symlinks in a names/ directory, so
// that taking a name is one atomic syscall. The directories are the state:
// nothing else has to be rebuilt after a crash or a reboot. A flock per
// container serialises the commands that change one.
//
// Why no database here, unlike images: every record is small and read whole
// by `hull ps`, and a database lock would serialise twenty `hull run -d`
// started at once; a directory per container and an atomic name link do not.
package container

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
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Errors; wrapped with context, test with errors.Is.
var (
	ErrNotFound  = errors.New("no such container")
	ErrNameInUse = errors.New("name already in use")
	ErrAmbiguous = errors.New("ambiguous container id prefix")
)

// Container is the record of one container.
type Container struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Image       string            `json:"image"`    // as the user typed it
	ImageRef    string            `json:"imageRef"` // normalised name
	ImageID     string            `json:"imageID"`  // config digest
	Command     []string          `json:"command"`  // entrypoint + cmd, for ps
	Created     time.Time         `json:"created"`
	Runtime     string            `json:"runtime"`
	Snapshotter string            `json:"snapshotter"`
	Snapshot    string            `json:"snapshot"` // key of the writable snapshot
	Labels      map[string]string `json:"labels,omitempty"`
	// Options holds what `hull run/create` was asked, to start it again.
	Options json.RawMessage `json:"options,omitempty"`
	// Boot is the boot id when the container last started: after a reboot
	// its per-boot state (mounts, netns, monitor) is gone.
	Boot string `json:"boot,omitempty"`
}

// Store is the containers directory of one engine root.
type Store struct {
	dir string
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidateName checks a --name as Docker does.
func ValidateName(n string) error {
	if !validName.MatchString(n) || len(n) > 253 {
		return fmt.Errorf("invalid container name %q: use letters, digits, '_', '.', '-', starting with a letter or digit", n)
	}
	return nil
}

// Open opens (creating) the containers directory under root.
func Open(root string) (*Store, error) {
	dir := filepath.Join(root, "containers")
	for _, d := range []string{dir, filepath.Join(dir, "names")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("containers dir: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

// Dir is the directory of container id.
func (s *Store) Dir(id string) string { return filepath.Join(s.dir, id) }

func (s *Store) nameLink(name string) string { return filepath.Join(s.dir, "names", name) }

// NewID returns a fresh 64-hex-digit id, as Docker's.
func NewID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Create records c (its ID set, its Name set or generated): the name is
// taken atomically, then the directory and record are written. On error
// nothing is left.
func (s *Store) Create(c *Container) (retErr error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	if c.Name == "" {
		for i := 0; ; i++ {
			c.Name = RandomName(i > 5)
			err := os.Symlink(c.ID, s.nameLink(c.Name))
			if err == nil {
				break
			}
			if !errors.Is(err, os.ErrExist) || i > 50 {
				return fmt.Errorf("reserve a container name: %w", err)
			}
		}
	} else {
		if err := ValidateName(c.Name); err != nil {
			return err
		}
		if err := os.Symlink(c.ID, s.nameLink(c.Name)); err != nil {
			if errors.Is(err, os.ErrExist) {
				owner, _ := os.Readlink(s.nameLink(c.Name))
				return fmt.Errorf("the container name %q is already in use by container %.12s: remove or rename it, or choose another name: %w", c.Name, owner, ErrNameInUse)
			}
			return fmt.Errorf("reserve container name %q: %w", c.Name, err)
		}
	}
	defer func() {
		if retErr != nil {
			os.Remove(s.nameLink(c.Name))
			os.RemoveAll(s.Dir(c.ID))
		}
	}()
	if err := os.Mkdir(s.Dir(c.ID), 0o700); err != nil {
		return fmt.Errorf("container %.12s: %w", c.ID, err)
	}
	if c.Created.IsZero() {
		c.Created = time.Now().UTC()
	}
	return s.Update(c)
}

// Update rewrites c's record atomically.
func (s *Store) Update(c *Container) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.Dir(c.ID), "container.json"), data)
}

// writeAtomic writes a file so that readers see the old or the new
// content, also after a crash: temp file, fsync, rename, fsync dir.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// load reads the record of a full id.
func (s *Store) load(id string) (*Container, error) {
	data, err := os.ReadFile(filepath.Join(s.Dir(id), "container.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %.12s: %w", id, ErrNotFound)
		}
		return nil, err
	}
	var c Container
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("container %.12s: record is corrupt: %w", id, err)
	}
	return &c, nil
}

// Get finds a container by name, full id or unique id prefix.
func (s *Store) Get(ref string) (*Container, error) {
	if ref == "" {
		return nil, fmt.Errorf("empty container name: %w", ErrNotFound)
	}
	if !strings.ContainsAny(ref, "/\x00") {
		if id, err := os.Readlink(s.nameLink(ref)); err == nil {
			return s.load(id)
		}
	}
	if isHex(ref) {
		if len(ref) == 64 {
			if c, err := s.load(ref); err == nil {
				return c, nil
			}
		}
		ids, err := s.ids()
		if err != nil {
			return nil, err
		}
		var match []string
		for _, id := range ids {
			if strings.HasPrefix(id, ref) {
				match = append(match, id)
			}
		}
		switch len(match) {
		case 1:
			return s.load(match[0])
		case 0:
		default:
			return nil, fmt.Errorf("container id prefix %q matches %d containers: %w", ref, len(match), ErrAmbiguous)
		}
	}
	return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

func (s *Store) ids() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && len(e.Name()) == 64 && isHex(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// List returns every container, newest first. Records that cannot be read
// (a create killed before writing one) are skipped and returned as the
// second value, for the caller to clean up.
func (s *Store) List() ([]*Container, []string, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, nil, err
	}
	var out []*Container
	var broken []string
	for _, id := range ids {
		c, err := s.load(id)
		if err != nil {
			broken = append(broken, id)
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, broken, nil
}

// Rename gives a container a new name.
func (s *Store) Rename(c *Container, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := os.Symlink(c.ID, s.nameLink(name)); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("the container name %q is already in use: %w", name, ErrNameInUse)
		}
		return err
	}
	old := c.Name
	c.Name = name
	if err := s.Update(c); err != nil {
		c.Name = old
		os.Remove(s.nameLink(name))
		return err
	}
	os.Remove(s.nameLink(old))
	return nil
}

// Remove deletes a container's record, directory and name. The caller has
// stopped it and released its snapshot, network and mounts.
func (s *Store) Remove(c *Container) error {
	if owner, err := os.Readlink(s.nameLink(c.Name)); err == nil && owner == c.ID {
		os.Remove(s.nameLink(c.Name))
	}
	if err := os.RemoveAll(s.Dir(c.ID)); err != nil {
		return fmt.Errorf("remove container %.12s: %w", c.ID, err)
	}
	return nil
}

// RemoveBroken deletes what a killed create left for id (no record).
func (s *Store) RemoveBroken(id string) error {
	names, _ := os.ReadDir(filepath.Join(s.dir, "names"))
	for _, n := range names {
		if owner, err := os.Readlink(filepath.Join(s.dir, "names", n.Name())); err == nil && owner == id {
			os.Remove(filepath.Join(s.dir, "names", n.Name()))
		}
	}
	return os.RemoveAll(s.Dir(id))
}

// PruneNames removes name links whose container is gone (a create killed
// between taking the name and writing the directory).
func (s *Store) PruneNames() error {
	names, err := os.ReadDir(filepath.Join(s.dir, "names"))
	if err != nil {
		return err
	}
	for _, n := range names {
		link := filepath.Join(s.dir, "names", n.Name())
		id, err := os.Readlink(link)
		if err != nil {
			continue
		}
		if _, err := os.Stat(s.Dir(id)); errors.Is(err, os.ErrNotExist) {
			os.Remove(link)
		}
	}
	return nil
}

// Lock takes container id's exclusive lock (blocking); call the returned
// func to release it.
func (s *Store) Lock(id string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.Dir(id), ".lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %.12s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("lock container %.12s: %w", id, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock container %.12s: %w", id, err)
	}
	return func() { f.Close() }, nil
}

// BootID is this boot's id, to tell per-boot state from a previous boot's.
func BootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
