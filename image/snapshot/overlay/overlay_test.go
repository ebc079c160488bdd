package overlay_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hull-runtime/hull/image/snapshot"
	"github.com/hull-runtime/hull/image/snapshot/overlay"
	"github.com/hull-runtime/hull/image/snapshot/testsuite"
)

// skipUnlessOverlay skips tests that need root and overlayfs on the
// temporary directory's filesystem.
func skipUnlessOverlay(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := overlay.Supported(t.TempDir()); err != nil {
		t.Skipf("overlayfs: %v", err)
	}
}

func newOverlay(t *testing.T, root string) snapshot.Snapshotter {
	t.Helper()
	s, err := overlay.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSuite(t *testing.T) {
	skipUnlessOverlay(t)
	testsuite.Run(t, newOverlay)
}

// The mount descriptions: a bind of the layer without parents, else one
// overlay whose lowerdir lists the parents nearest first.
func TestMountDescriptions(t *testing.T) {
	skipUnlessOverlay(t)
	ctx := t.Context()
	root := t.TempDir()
	s, err := overlay.New(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fs := func(id int) string { return filepath.Join(root, "snapshots", strconv.Itoa(id), "fs") }

	ms, err := s.Prepare(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Type != "bind" || ms[0].Source != fs(1) || strings.Join(ms[0].Options, ",") != "rbind,rw" {
		t.Errorf("Prepare on no parent: %+v", ms)
	}
	if err := s.Commit(ctx, "c1", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "b", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "c2", "b"); err != nil {
		t.Fatal(err)
	}
	ms, err = s.Prepare(ctx, "top", "c2")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"index=off",
		"workdir=" + filepath.Join(root, "snapshots/3/work"),
		"upperdir=" + fs(3),
		"lowerdir=" + fs(2) + ":" + fs(1),
	}
	if len(ms) != 1 || ms[0].Type != "overlay" || strings.Join(ms[0].Options, " ") != strings.Join(want, " ") {
		t.Errorf("Prepare on c2: %+v, want overlay with %v", ms, want)
	}
	ms, err = s.View(ctx, "v1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Type != "bind" || ms[0].Source != fs(1) || strings.Join(ms[0].Options, ",") != "rbind,ro" {
		t.Errorf("View of one layer: %+v", ms)
	}
	ms, err = s.View(ctx, "v2", "c2")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Type != "overlay" || strings.Join(ms[0].Options, " ") != "ro lowerdir="+fs(2)+":"+fs(1) {
		t.Errorf("View of two layers: %+v", ms)
	}
}

// A crash leaves directories the metadata does not name (a snapshot dir made
// before its transaction committed, a removal half done, a staging dir of a
// dead process); the next New deletes them and keeps everything else.
func TestCrashLeftoversCleanedOnOpen(t *testing.T) {
	skipUnlessOverlay(t)
	ctx := t.Context()
	root := t.TempDir()
	s, err := overlay.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "keep", ""); err != nil {
		t.Fatal(err)
	}
	held, err := s.StagingDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leftovers := []string{
		filepath.Join(root, "snapshots", "99", "fs", "f"),
		filepath.Join(root, "removing", "7", "fs", "f"),
		filepath.Join(root, "staging", "dead", "f"),
	}
	for _, f := range leftovers {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	foreign := filepath.Join(root, "snapshots", "not-an-id")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}

	// A second snapshotter opening the root while the first still holds its
	// staging dir must leave that dir alone.
	s2, err := overlay.New(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range leftovers {
		if _, err := os.Lstat(filepath.Dir(f)); !os.IsNotExist(err) {
			t.Errorf("leftover %s still there (%v)", filepath.Dir(f), err)
		}
	}
	for _, d := range []string{held, foreign} {
		if _, err := os.Lstat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
	if _, err := s2.Stat(ctx, "keep"); err != nil {
		t.Errorf("Stat(keep): %v", err)
	}
	if err := s2.Cleanup(ctx); err != nil {
		t.Errorf("Cleanup with nothing left to clean: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: its staging dir is no longer held, and goes.
	if err := s2.Cleanup(ctx); err != nil {
		t.Errorf("Cleanup: %v", err)
	}
	if _, err := os.Lstat(held); !os.IsNotExist(err) {
		t.Errorf("staging dir of a closed snapshotter still there (%v)", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Stat(ctx, "keep"); err == nil {
		t.Error("Stat on a closed snapshotter succeeded")
	}
}

func TestSupported(t *testing.T) {
	skipUnlessOverlay(t)
	root := t.TempDir()
	if err := overlay.Supported(root); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(root)
	if err != nil || len(ents) != 0 {
		t.Errorf("Supported left %v (%v) in its root", ents, err)
	}
}
