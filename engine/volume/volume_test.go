package volume

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestVolumesAreCreatedListedAndRemoved(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Create("data", map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("data", nil); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v", err)
	}
	anon, err := s.Create("", nil)
	if err != nil || !anon.Anonymous || len(anon.Name) != 64 {
		t.Fatalf("anonymous: %+v %v", anon, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("list %d %v", len(list), err)
	}
	inUse := func(n string) bool { return n == "data" }
	if err := s.Remove("data", false, inUse); !errors.Is(err, ErrInUse) {
		t.Errorf("remove in use: %v", err)
	}
	removed, err := s.Prune(false, inUse)
	if err != nil || len(removed) != 1 || removed[0] != anon.Name {
		t.Errorf("prune: %v %v", removed, err)
	}
	if err := s.Remove("data", true, inUse); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Mountpoint); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data left: %v", err)
	}
	if _, err := s.Get("data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after remove: %v", err)
	}
}

func TestBadNamesAndHalfCreatedVolumes(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, n := range []string{"../x", "a/b", "-x", ".."} {
		if _, err := s.Create(n, nil); err == nil {
			t.Errorf("volume name %q accepted", n)
		}
		if _, err := s.Get(n); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v", n, err)
		}
	}
	// A create killed before its record: List drops the directory.
	if err := os.MkdirAll(filepath.Join(s.dir, "half", "_data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if list, err := s.List(); err != nil || len(list) != 0 {
		t.Fatalf("list: %v %v", list, err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "half")); !errors.Is(err, os.ErrNotExist) {
		t.Error("half-created volume dir left")
	}
}
