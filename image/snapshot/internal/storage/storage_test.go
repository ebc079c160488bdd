package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hull-runtime/hull/image/snapshot"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Another process holding the db: operations wait for it, up to the
// context's deadline, and then fail rather than hang.
func TestLockTimeout(t *testing.T) {
	s := open(t)
	db, err := bolt.Open(filepath.Join(s.Root(), dbName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Create(ctx, "k", "", snapshot.KindActive, CreateOptions{})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("Create while another holder has the db: %v after %v, want a timeout", err, time.Since(start))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(t.Context(), "k", "", snapshot.KindActive, CreateOptions{}); err != nil {
		t.Errorf("Create after the holder closed: %v", err)
	}
}

// Ids come from a sequence and are never reused, even after a Remove.
func TestIDs(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	var ids []uint64
	for _, k := range []string{"a", "b", "c"} {
		sn, err := s.Create(ctx, k, "", snapshot.KindActive, CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sn.ID)
		if err := s.Remove(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if ids[0] != 1 || ids[1] != 2 || ids[2] != 3 {
		t.Errorf("ids %v, want 1 2 3", ids)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), removingDir)); len(ents) != 0 {
		t.Errorf("removing/ holds %d entries after the removals", len(ents))
	}
}

// A copy made from a parent that was removed and made again under the same
// key is refused: it is a copy of something else.
func TestCreateParentReplaced(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	if _, err := s.Create(ctx, "p", "", snapshot.KindCommitted, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	old, err := s.Get(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "p", "", snapshot.KindCommitted, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir, err := s.StagingDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Create(ctx, "c", "p", snapshot.KindActive, CreateOptions{Staged: dir, ParentID: old.ID})
	if !errors.Is(err, snapshot.ErrFailedPrecond) {
		t.Errorf("Create on a replaced parent: %v, want ErrFailedPrecond", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the refused staging dir is gone: %v", err)
	}
}

func TestStagingChecks(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	other := open(t)
	dir, err := other.StagingDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The same root through another Store: that dir is in use.
	s2, err := Open(other.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.RemoveStaging(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("RemoveStaging of a dir another store holds: %v", err)
	}
	if _, err := s.Create(ctx, "k", "", snapshot.KindCommitted, CreateOptions{Staged: dir}); err == nil {
		t.Error("Create from another root's staging dir succeeded")
	}
	if err := other.RemoveStaging(dir); err != nil {
		t.Fatal(err)
	}
	if err := other.RemoveStaging(dir); err != nil {
		t.Errorf("RemoveStaging twice: %v", err)
	}
}
