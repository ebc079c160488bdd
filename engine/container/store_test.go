package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestNamesAreUniqueAcrossParallelCreates(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			errs <- s.Create(&Container{Name: fmt.Sprintf("c%d", i)})
		}(i)
		go func() { // the same name twice: exactly one wins
			defer wg.Done()
			errs <- s.Create(&Container{Name: "shared"})
		}()
	}
	wg.Wait()
	close(errs)
	inUse := 0
	for err := range errs {
		if errors.Is(err, ErrNameInUse) {
			inUse++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if inUse != 19 {
		t.Errorf("%d creates of the shared name failed with ErrNameInUse, want 19", inUse)
	}
	list, broken, err := s.List()
	if err != nil || len(list) != 21 || len(broken) != 0 {
		t.Fatalf("list: %d containers, broken %v, %v", len(list), broken, err)
	}
	// A failed create left nothing: only 21 dirs.
	ids, _ := s.ids()
	if len(ids) != 21 {
		t.Errorf("%d container dirs, want 21", len(ids))
	}
}

func TestGetByNameIDAndPrefix(t *testing.T) {
	s, _ := Open(t.TempDir())
	c := &Container{Name: "web"}
	if err := s.Create(c); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"web", c.ID, c.ID[:12], c.ID[:4]} {
		got, err := s.Get(ref)
		if err != nil || got.ID != c.ID {
			t.Errorf("Get(%q) = %v, %v", ref, got, err)
		}
	}
	if _, err := s.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope): %v", err)
	}
	if _, err := s.Get("../../etc"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a path: %v", err)
	}
}

func TestRenameAndRemoveFreeTheOldName(t *testing.T) {
	s, _ := Open(t.TempDir())
	c := &Container{Name: "old"}
	if err := s.Create(c); err != nil {
		t.Fatal(err)
	}
	if err := s.Rename(c, "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("old"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old name still resolves: %v", err)
	}
	if err := s.Create(&Container{Name: "old"}); err != nil {
		t.Errorf("old name not free after rename: %v", err)
	}
	if err := s.Remove(c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("new"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed container resolves: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(s.dir, "names", "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("name link left: %v", err)
	}
}

func TestInvalidNamesAreRefused(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, n := range []string{"-x", "a/b", "..", "a b", "ü"} {
		if err := s.Create(&Container{Name: n}); err == nil {
			t.Errorf("name %q accepted", n)
		}
	}
}

func TestAKilledCreatesLeftoversAreFoundAndCleaned(t *testing.T) {
	s, _ := Open(t.TempDir())
	id := NewID()
	// Name taken and dir made, record never written.
	if err := os.Symlink(id, filepath.Join(s.dir, "names", "half")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.Dir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	_, broken, err := s.List()
	if err != nil || len(broken) != 1 || broken[0] != id {
		t.Fatalf("broken %v %v", broken, err)
	}
	if err := s.RemoveBroken(id); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(&Container{Name: "half"}); err != nil {
		t.Errorf("name not freed: %v", err)
	}
	// A name link without a dir.
	if err := os.Symlink(NewID(), filepath.Join(s.dir, "names", "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneNames(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(s.dir, "names", "dangling")); !errors.Is(err, os.ErrNotExist) {
		t.Error("dangling name link kept")
	}
}
