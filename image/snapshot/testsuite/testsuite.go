// Package testsuite is the suite every snapshot.Snapshotter implementation
// must pass (after containerd's core/snapshots/testsuite): chains of layers
// that add, change and delete files, read-only views, the errors of each
// operation, concurrency within a process and between two snapshotters on
// one root, a chain deeper than mount(2)'s one page of options, file metadata
// that must survive commits, a restart, and, for a snapshot.Importer, layers
// imported with overlay whiteouts.
//
// The suite mounts what the snapshotter describes with snapshot.MountAll, as
// its users do, so it needs root; it skips without it.
package testsuite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/image/snapshot"
)

// DeepChain is the number of layers of the deep-chain test: more than Docker's
// limit of 127, and enough that absolute overlay lowerdir paths would not fit
// in one page.
const DeepChain = 130

// Run runs the suite as subtests of t. Each subtest opens a snapshotter with
// newSnapshotter on a fresh root (a t.TempDir) and closes it at its end
// (closing it once: the restart test closes and reopens on the same root);
// it mounts on t.TempDir targets and unmounts them in t.Cleanup, and fails if
// any mount is left under its temporary directories.
func Run(t *testing.T, newSnapshotter func(t *testing.T, root string) snapshot.Snapshotter) {
	if os.Geteuid() != 0 {
		t.Skip("the snapshotter suite mounts, makes device nodes and chowns: it needs root")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"AddModifyDelete", testAddModifyDelete},
		{"ViewsAreReadOnly", testViewsAreReadOnly},
		{"MountsMatchPrepare", testMountsMatchPrepare},
		{"StatWalk", testStatWalk},
		{"Usage", testUsage},
		{"RemoveParentWithChildren", testRemoveParentWithChildren},
		{"RemoveAndRecreate", testRemoveAndRecreate},
		{"CommitTwice", testCommitTwice},
		{"Errors", testErrors},
		{"CanceledContext", testCanceledContext},
		{"ConcurrentPrepare", testConcurrentPrepare},
		{"TwoSnapshottersOneRoot", testTwoSnapshotters},
		{"DeepChain", testDeepChain},
		{"Metadata", testMetadata},
		{"Restart", testRestart},
		{"Import", testImport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			// Registered first, so it runs after every unmount cleanup and
			// before the temporary directories go.
			t.Cleanup(func() { checkNoMounts(t, filepath.Dir(root)) })
			e := &env{root: root, newSnapshotter: newSnapshotter, closers: map[snapshot.Snapshotter]func(){}}
			e.sn = e.open(t)
			tc.fn(t, e)
		})
	}
}

type env struct {
	root           string
	newSnapshotter func(t *testing.T, root string) snapshot.Snapshotter
	sn             snapshot.Snapshotter
	closers        map[snapshot.Snapshotter]func()
}

// open opens another snapshotter on the env's root, closed (once) at the end
// of the test or by closeEarly.
func (e *env) open(t *testing.T) snapshot.Snapshotter {
	t.Helper()
	s := e.newSnapshotter(t, e.root)
	var once sync.Once
	closeIt := func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	t.Cleanup(closeIt)
	e.closers[s] = closeIt
	return s
}

// closeEarly closes s before the end of the test (the restart test).
func (e *env) closeEarly(s snapshot.Snapshotter) {
	if f, ok := e.closers[s]; ok {
		f()
	}
}

func checkNoMounts(t *testing.T, dir string) {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Errorf("mountinfo: %v", err)
		return
	}
	for _, m := range ms {
		t.Errorf("mount left behind: %s (%s)", m.Mountpoint, m.FSType)
	}
	// Leave the host clean even when the test failed: deepest first.
	slices.SortFunc(ms, func(a, b *mountinfo.Info) int { return len(b.Mountpoint) - len(a.Mountpoint) })
	for _, m := range ms {
		_ = snapshot.UnmountAll(m.Mountpoint)
	}
}

// mount mounts ms on a new temporary directory, unmounted at the end of the
// test (or earlier by unmount).
func mount(t *testing.T, ms []snapshot.Mount) string {
	t.Helper()
	target := t.TempDir()
	t.Cleanup(func() {
		if err := snapshot.UnmountAll(target); err != nil {
			t.Errorf("UnmountAll: %v", err)
		}
	})
	if err := snapshot.MountAll(ms, target); err != nil {
		t.Fatalf("MountAll(%+v): %v", ms, err)
	}
	return target
}

func unmount(t *testing.T, target string) {
	t.Helper()
	if err := snapshot.UnmountAll(target); err != nil {
		t.Fatalf("UnmountAll: %v", err)
	}
}

// layer prepares key on parent, mounts it, lets fill change the tree,
// unmounts and commits it as name.
func layer(t *testing.T, sn snapshot.Snapshotter, name, parent string, fill func(dir string)) {
	t.Helper()
	ctx := t.Context()
	key := name + "-active"
	ms, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		t.Fatalf("Prepare(%q, %q): %v", key, parent, err)
	}
	dir := mount(t, ms)
	fill(dir)
	unmount(t, dir)
	if err := sn.Commit(ctx, name, key); err != nil {
		t.Fatalf("Commit(%q, %q): %v", name, key, err)
	}
}

// view mounts a new view of parent and returns its directory.
func view(t *testing.T, sn snapshot.Snapshotter, key, parent string) string {
	t.Helper()
	ms, err := sn.View(t.Context(), key, parent)
	if err != nil {
		t.Fatalf("View(%q, %q): %v", key, parent, err)
	}
	return mount(t, ms)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// expect checks the files under dir: a value is the content a file must
// have, "" a path that must not exist, "/" a directory.
func expect(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, want := range files {
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		switch {
		case want == "":
			if err == nil {
				t.Errorf("%s exists (%v), want it gone", name, fi.Mode())
			} else if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %v", name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case want == "/":
			if !fi.IsDir() {
				t.Errorf("%s is %v, want a directory", name, fi.Mode())
			}
		default:
			got, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if string(got) != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", what, err, want)
	}
}

func testAddModifyDelete(t *testing.T, e *env) {
	ctx := t.Context()
	layer(t, e.sn, "l1", "", func(d string) {
		write(t, filepath.Join(d, "a"), "a1")
		write(t, filepath.Join(d, "del"), "del")
		write(t, filepath.Join(d, "dir/b"), "b")
		write(t, filepath.Join(d, "dir/sub/c"), "c")
		write(t, filepath.Join(d, "deldir/x"), "x")
		must(t, os.Symlink("a", filepath.Join(d, "link")))
	})
	ms, err := e.sn.Prepare(ctx, "l2-active", "l1")
	if err != nil {
		t.Fatal(err)
	}
	d := mount(t, ms)
	expect(t, d, map[string]string{"a": "a1", "dir/b": "b", "dir/sub/c": "c", "link": "a1"})
	write(t, filepath.Join(d, "a"), "a2")
	write(t, filepath.Join(d, "new"), "new")
	must(t, os.Remove(filepath.Join(d, "del")))
	must(t, os.RemoveAll(filepath.Join(d, "deldir")))
	// A directory removed and made again must not show the lower one's files
	// (overlayfs marks it opaque).
	must(t, os.RemoveAll(filepath.Join(d, "dir")))
	write(t, filepath.Join(d, "dir/fresh"), "fresh")
	after := map[string]string{
		"a": "a2", "new": "new", "del": "", "deldir": "", "deldir/x": "",
		"dir/fresh": "fresh", "dir/b": "", "dir/sub": "", "link": "a2",
	}
	expect(t, d, after)
	unmount(t, d)
	if err := e.sn.Commit(ctx, "l2", "l2-active"); err != nil {
		t.Fatal(err)
	}
	expect(t, view(t, e.sn, "v2", "l2"), after)
	// The lower layer is untouched.
	expect(t, view(t, e.sn, "v1", "l1"), map[string]string{
		"a": "a1", "del": "del", "dir/b": "b", "dir/sub/c": "c", "deldir/x": "x", "new": "", "dir/fresh": "",
	})
	// And a third layer on top still sees the second's deletions.
	layer(t, e.sn, "l3", "l2", func(d string) {
		expect(t, d, after)
		write(t, filepath.Join(d, "del"), "back")
	})
	expect(t, view(t, e.sn, "v3", "l3"), map[string]string{"del": "back", "dir/b": "", "a": "a2"})
}

func testViewsAreReadOnly(t *testing.T, e *env) {
	layer(t, e.sn, "l1", "", func(d string) { write(t, filepath.Join(d, "f"), "1") })
	layer(t, e.sn, "l2", "l1", func(d string) { write(t, filepath.Join(d, "g"), "2") })
	for _, parent := range []string{"", "l1", "l2"} {
		d := view(t, e.sn, "view-of-"+parent, parent)
		if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("write in a view of %q: %v, want EROFS", parent, err)
		}
		if err := os.Mkdir(filepath.Join(d, "newdir"), 0o755); !errors.Is(err, syscall.EROFS) {
			t.Errorf("mkdir in a view of %q: %v, want EROFS", parent, err)
		}
		if parent != "" {
			if err := os.Remove(filepath.Join(d, "f")); !errors.Is(err, syscall.EROFS) {
				t.Errorf("remove in a view of %q: %v, want EROFS", parent, err)
			}
		}
	}
	expect(t, view(t, e.sn, "check", "l2"), map[string]string{"f": "1", "g": "2", "newdir": ""})
}

func testMountsMatchPrepare(t *testing.T, e *env) {
	ctx := t.Context()
	layer(t, e.sn, "l1", "", func(d string) { write(t, filepath.Join(d, "f"), "1") })
	layer(t, e.sn, "l2", "l1", func(string) {})
	for _, c := range []struct {
		key, parent string
		view        bool
	}{{"a0", "", false}, {"a1", "l1", false}, {"a2", "l2", false}, {"v0", "", true}, {"v1", "l1", true}, {"v2", "l2", true}} {
		var ms []snapshot.Mount
		var err error
		if c.view {
			ms, err = e.sn.View(ctx, c.key, c.parent)
		} else {
			ms, err = e.sn.Prepare(ctx, c.key, c.parent)
		}
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.sn.Mounts(ctx, c.key)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ms, again) {
			t.Errorf("Mounts(%q) = %+v, want what it was made with: %+v", c.key, again, ms)
		}
	}
}

func testStatWalk(t *testing.T, e *env) {
	ctx := t.Context()
	start := time.Now().Add(-time.Minute)
	layer(t, e.sn, "c1", "", func(string) {})
	if _, err := e.sn.Prepare(ctx, "a1", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.View(ctx, "v1", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.Prepare(ctx, "a0", ""); err != nil {
		t.Fatal(err)
	}
	want := map[string]snapshot.Info{
		"c1": {Key: "c1", Kind: snapshot.KindCommitted},
		"a1": {Key: "a1", Parent: "c1", Kind: snapshot.KindActive},
		"v1": {Key: "v1", Parent: "c1", Kind: snapshot.KindView},
		"a0": {Key: "a0", Kind: snapshot.KindActive},
	}
	check := func(in snapshot.Info) {
		t.Helper()
		w, ok := want[in.Key]
		if !ok {
			t.Errorf("unexpected snapshot %+v", in)
			return
		}
		if in.Created.Before(start) || in.Created.After(time.Now().Add(time.Minute)) {
			t.Errorf("%q created %v, want about now", in.Key, in.Created)
		}
		in.Created = time.Time{}
		if in != w {
			t.Errorf("info %+v, want %+v", in, w)
		}
	}
	for key := range want {
		in, err := e.sn.Stat(ctx, key)
		if err != nil {
			t.Fatalf("Stat(%q): %v", key, err)
		}
		check(in)
	}
	seen := map[string]bool{}
	err := e.sn.Walk(ctx, func(in snapshot.Info) error {
		if seen[in.Key] {
			t.Errorf("Walk gave %q twice", in.Key)
		}
		seen[in.Key] = true
		check(in)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(want) {
		t.Errorf("Walk saw %v, want %d snapshots", seen, len(want))
	}
	stop := errors.New("stop")
	calls := 0
	err = e.sn.Walk(ctx, func(snapshot.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Walk with an fn that fails: %v after %d calls, want the fn's error after 1", err, calls)
	}
}

func testUsage(t *testing.T, e *env) {
	ctx := t.Context()
	const size = 1 << 20
	layer(t, e.sn, "big", "", func(d string) {
		must(t, os.WriteFile(filepath.Join(d, "big"), bytes.Repeat([]byte{1}, size), 0o644))
		write(t, filepath.Join(d, "sub/small"), "s")
	})
	u, err := e.sn.Usage(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if u.Size < size || u.Inodes < 3 {
		t.Errorf("Usage(big) = %+v, want at least %d bytes and 3 inodes", u, size)
	}
	ms, err := e.sn.Prepare(ctx, "top", "big")
	if err != nil {
		t.Fatal(err)
	}
	d := mount(t, ms)
	must(t, os.WriteFile(filepath.Join(d, "more"), bytes.Repeat([]byte{2}, size), 0o644))
	ua, err := e.sn.Usage(ctx, "top")
	if err != nil {
		t.Fatal(err)
	}
	if ua.Size < size {
		t.Errorf("Usage(top) = %+v after writing %d bytes", ua, size)
	}
	if _, err := e.sn.View(ctx, "v", "big"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.Usage(ctx, "v"); err != nil {
		t.Errorf("Usage(view): %v", err)
	}
}

func testRemoveParentWithChildren(t *testing.T, e *env) {
	ctx := t.Context()
	layer(t, e.sn, "p", "", func(d string) { write(t, filepath.Join(d, "f"), "p") })
	layer(t, e.sn, "c", "p", func(string) {})
	if _, err := e.sn.View(ctx, "v", "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.Prepare(ctx, "a", "c"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Remove(p) with a committed child", e.sn.Remove(ctx, "p"), snapshot.ErrFailedPrecond)
	wantErr(t, "Remove(c) with a view and an active child", e.sn.Remove(ctx, "c"), snapshot.ErrFailedPrecond)
	must(t, e.sn.Remove(ctx, "v"))
	wantErr(t, "Remove(c) with an active child", e.sn.Remove(ctx, "c"), snapshot.ErrFailedPrecond)
	must(t, e.sn.Remove(ctx, "a"))
	must(t, e.sn.Remove(ctx, "c"))
	must(t, e.sn.Remove(ctx, "p"))
	for _, k := range []string{"p", "c", "v", "a"} {
		_, err := e.sn.Stat(ctx, k)
		wantErr(t, fmt.Sprintf("Stat(%q) after Remove", k), err, snapshot.ErrNotExist)
		wantErr(t, fmt.Sprintf("Remove(%q) again", k), e.sn.Remove(ctx, k), snapshot.ErrNotExist)
	}
	n := 0
	must(t, e.sn.Walk(ctx, func(snapshot.Info) error { n++; return nil }))
	if n != 0 {
		t.Errorf("%d snapshots left after removing all", n)
	}
}

func testRemoveAndRecreate(t *testing.T, e *env) {
	ctx := t.Context()
	ms, err := e.sn.Prepare(ctx, "k", "")
	if err != nil {
		t.Fatal(err)
	}
	d := mount(t, ms)
	write(t, filepath.Join(d, "old"), "old")
	unmount(t, d)
	must(t, e.sn.Remove(ctx, "k"))
	ms, err = e.sn.Prepare(ctx, "k", "")
	if err != nil {
		t.Fatalf("Prepare of a removed key: %v", err)
	}
	d = mount(t, ms)
	expect(t, d, map[string]string{"old": ""})
	write(t, filepath.Join(d, "new"), "new")
	unmount(t, d)
	must(t, e.sn.Commit(ctx, "c", "k"))
	must(t, e.sn.Remove(ctx, "c"))
	layer(t, e.sn, "c", "", func(d string) {
		expect(t, d, map[string]string{"old": "", "new": ""})
		write(t, filepath.Join(d, "newer"), "newer")
	})
	expect(t, view(t, e.sn, "v", "c"), map[string]string{"newer": "newer", "new": "", "old": ""})
	// The key of a committed snapshot's active snapshot is free again.
	if _, err := e.sn.Prepare(ctx, "k", "c"); err != nil {
		t.Errorf("Prepare of a committed key: %v", err)
	}
}

func testCommitTwice(t *testing.T, e *env) {
	ctx := t.Context()
	if _, err := e.sn.Prepare(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	must(t, e.sn.Commit(ctx, "c", "k"))
	wantErr(t, "second Commit of k", e.sn.Commit(ctx, "c2", "k"), snapshot.ErrNotExist)
	wantErr(t, "Commit of a committed snapshot", e.sn.Commit(ctx, "c3", "c"), snapshot.ErrFailedPrecond)
	if _, err := e.sn.Prepare(ctx, "k2", ""); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Commit to an existing name", e.sn.Commit(ctx, "c", "k2"), snapshot.ErrExist)
	if in, err := e.sn.Stat(ctx, "k2"); err != nil || in.Kind != snapshot.KindActive {
		t.Errorf("after a failed Commit, Stat(k2) = %+v, %v; want it still active", in, err)
	}
	if _, err := e.sn.View(ctx, "v", "c"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Commit of a view", e.sn.Commit(ctx, "c4", "v"), snapshot.ErrFailedPrecond)
	for _, k := range []string{"c2", "c3", "c4"} {
		_, err := e.sn.Stat(ctx, k)
		wantErr(t, "Stat("+k+") after a failed Commit", err, snapshot.ErrNotExist)
	}
}

func testErrors(t *testing.T, e *env) {
	ctx := t.Context()
	layer(t, e.sn, "c", "", func(string) {})
	if _, err := e.sn.Prepare(ctx, "a", "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.View(ctx, "v", "c"); err != nil {
		t.Fatal(err)
	}
	_, err := e.sn.Stat(ctx, "nope")
	wantErr(t, "Stat(unknown)", err, snapshot.ErrNotExist)
	if err != nil && !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Stat(unknown) = %q: the error does not name the key", err)
	}
	_, err = e.sn.Mounts(ctx, "nope")
	wantErr(t, "Mounts(unknown)", err, snapshot.ErrNotExist)
	_, err = e.sn.Usage(ctx, "nope")
	wantErr(t, "Usage(unknown)", err, snapshot.ErrNotExist)
	wantErr(t, "Commit(unknown)", e.sn.Commit(ctx, "x", "nope"), snapshot.ErrNotExist)
	wantErr(t, "Remove(unknown)", e.sn.Remove(ctx, "nope"), snapshot.ErrNotExist)
	_, err = e.sn.Prepare(ctx, "x", "nope")
	wantErr(t, "Prepare on an unknown parent", err, snapshot.ErrNotExist)
	_, err = e.sn.View(ctx, "x", "nope")
	wantErr(t, "View of an unknown parent", err, snapshot.ErrNotExist)

	_, err = e.sn.Prepare(ctx, "a", "c")
	wantErr(t, "Prepare of an existing key", err, snapshot.ErrExist)
	_, err = e.sn.Prepare(ctx, "c", "")
	wantErr(t, "Prepare of a committed key", err, snapshot.ErrExist)
	_, err = e.sn.View(ctx, "v", "c")
	wantErr(t, "View of an existing key", err, snapshot.ErrExist)

	_, err = e.sn.Prepare(ctx, "x", "a")
	wantErr(t, "Prepare on an active parent", err, snapshot.ErrFailedPrecond)
	_, err = e.sn.Prepare(ctx, "x", "v")
	wantErr(t, "Prepare on a view", err, snapshot.ErrFailedPrecond)
	_, err = e.sn.View(ctx, "x", "a")
	wantErr(t, "View of an active parent", err, snapshot.ErrFailedPrecond)
	_, err = e.sn.Mounts(ctx, "c")
	wantErr(t, "Mounts of a committed snapshot", err, snapshot.ErrFailedPrecond)

	_, err = e.sn.Stat(ctx, "x")
	wantErr(t, "Stat(x) after the failed calls", err, snapshot.ErrNotExist)
	if _, err := e.sn.Prepare(ctx, "", ""); err == nil {
		t.Error("Prepare with an empty key succeeded")
	}
}

func testCanceledContext(t *testing.T, e *env) {
	layer(t, e.sn, "c", "", func(d string) { write(t, filepath.Join(d, "f"), "f") })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := e.sn.Prepare(ctx, "x", "c")
	wantErr(t, "Prepare with a canceled context", err, context.Canceled)
	_, err = e.sn.Stat(t.Context(), "x")
	wantErr(t, "Stat after a canceled Prepare", err, snapshot.ErrNotExist)
}

func testConcurrentPrepare(t *testing.T, e *env) {
	ctx := t.Context()
	const n = 20
	layer(t, e.sn, "base", "", func(d string) { write(t, filepath.Join(d, "base"), "base") })
	mounts := make([][]snapshot.Mount, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { mounts[i], errs[i] = e.sn.Prepare(ctx, fmt.Sprintf("c%d", i), "base") })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	dirs := make([]string, n)
	for i := range n {
		dirs[i] = mount(t, mounts[i])
		write(t, filepath.Join(dirs[i], "own"), strconv.Itoa(i))
	}
	for i := range n {
		expect(t, dirs[i], map[string]string{"base": "base", "own": strconv.Itoa(i)})
		unmount(t, dirs[i])
	}
	for i := range n {
		wg.Go(func() { errs[i] = e.sn.Commit(ctx, fmt.Sprintf("done%d", i), fmt.Sprintf("c%d", i)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		wg.Go(func() {
			ms, err := e.sn.View(ctx, fmt.Sprintf("v%d", i), fmt.Sprintf("done%d", i))
			mounts[i], errs[i] = ms, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		expect(t, mount(t, mounts[i]), map[string]string{"base": "base", "own": strconv.Itoa(i)})
	}
}

func testTwoSnapshotters(t *testing.T, e *env) {
	ctx := t.Context()
	other := e.open(t)
	layer(t, e.sn, "base", "", func(d string) { write(t, filepath.Join(d, "base"), "base") })
	const n = 10
	errs := make([]error, 2*n)
	var wg sync.WaitGroup
	for i := range 2 * n {
		sn := []snapshot.Snapshotter{e.sn, other}[i%2]
		wg.Go(func() {
			key := fmt.Sprintf("k%d", i)
			if _, err := sn.Prepare(ctx, key, "base"); err != nil {
				errs[i] = err
				return
			}
			errs[i] = sn.Commit(ctx, "c"+key, key)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	keys := func(sn snapshot.Snapshotter) []string {
		var ks []string
		must(t, sn.Walk(ctx, func(in snapshot.Info) error { ks = append(ks, in.Key); return nil }))
		slices.Sort(ks)
		return ks
	}
	a, b := keys(e.sn), keys(other)
	if len(a) != 2*n+1 || !slices.Equal(a, b) {
		t.Errorf("the two snapshotters see %v and %v, want the same %d snapshots", a, b, 2*n+1)
	}
	expect(t, view(t, other, "v", "ck0"), map[string]string{"base": "base"})
}

func testDeepChain(t *testing.T, e *env) {
	parent := ""
	for i := range DeepChain {
		name := fmt.Sprintf("layer%03d", i)
		layer(t, e.sn, name, parent, func(d string) {
			write(t, filepath.Join(d, fmt.Sprintf("f%03d", i)), strconv.Itoa(i))
			write(t, filepath.Join(d, "top"), strconv.Itoa(i))
			// Deletions deep in the chain too.
			if i >= 2 && i%10 == 0 {
				must(t, os.Remove(filepath.Join(d, fmt.Sprintf("f%03d", i-2))))
			}
		})
		parent = name
	}
	want := map[string]string{"top": strconv.Itoa(DeepChain - 1)}
	for i := range DeepChain {
		name := fmt.Sprintf("f%03d", i)
		want[name] = strconv.Itoa(i)
		if i+2 < DeepChain && (i+2)%10 == 0 {
			want[name] = ""
		}
	}
	expect(t, view(t, e.sn, "view", parent), want)
	// An active snapshot on the deepest layer mounts and writes too.
	ms, err := e.sn.Prepare(t.Context(), "rw", parent)
	if err != nil {
		t.Fatal(err)
	}
	d := mount(t, ms)
	expect(t, d, want)
	write(t, filepath.Join(d, "top"), "rw")
	expect(t, d, map[string]string{"top": "rw"})
}

// capV2 is a security.capability value (VFS_CAP_REVISION_2, effective) that
// grants cap_net_bind_service.
var capV2 = []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

var oldTime = time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)

func testMetadata(t *testing.T, e *env) {
	layer(t, e.sn, "meta1", "", func(d string) {
		p := func(n string) string { return filepath.Join(d, n) }
		write(t, p("file"), "file")
		must(t, os.Chown(p("file"), 1000, 1001))
		must(t, os.Chmod(p("file"), 0o640))
		must(t, unix.Lsetxattr(p("file"), "user.hull", []byte("u"), 0))
		must(t, unix.Lsetxattr(p("file"), "trusted.hull", []byte("t"), 0))
		must(t, os.Link(p("file"), p("hard")))

		write(t, p("caps"), "#!/bin/true\n")
		must(t, os.Chmod(p("caps"), 0o755))
		must(t, unix.Lsetxattr(p("caps"), "security.capability", capV2, 0))

		write(t, p("suid"), "suid")
		must(t, os.Chown(p("suid"), 1000, 1000))
		must(t, unix.Chmod(p("suid"), 0o4755))

		must(t, os.Mkdir(p("sgid"), 0o755))
		must(t, unix.Chmod(p("sgid"), 0o2775))
		must(t, os.Mkdir(p("sticky"), 0o755))
		must(t, unix.Chmod(p("sticky"), 0o1777))

		must(t, unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, os.Chmod(p("null"), 0o666))
		must(t, unix.Mknod(p("blk"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
		must(t, os.Chmod(p("blk"), 0o660))
		must(t, unix.Mkfifo(p("fifo"), 0o644))
		must(t, os.Chmod(p("fifo"), 0o644))

		must(t, os.Symlink("file", p("sym")))
		must(t, os.Lchown(p("sym"), 1002, 1002))

		// Sparse: 64 MiB with one byte of data at its end.
		f, err := os.Create(p("sparse"))
		must(t, err)
		_, err = f.WriteAt([]byte{1}, 64<<20-1)
		must(t, err)
		must(t, f.Close())

		write(t, p("copyup"), "before")
		must(t, os.Chown(p("copyup"), 1003, 1003))
		must(t, os.Chmod(p("copyup"), 0o600))
		must(t, unix.Lsetxattr(p("copyup"), "user.kept", []byte("k"), 0))

		must(t, os.Mkdir(p("olddir"), 0o750))
		write(t, p("old"), "old")
		must(t, os.Chtimes(p("old"), oldTime, oldTime))
		must(t, os.Chtimes(p("olddir"), oldTime, oldTime))
		must(t, unix.Lsetxattr(p("olddir"), "trusted.dir", []byte("d"), 0))
	})
	// A second layer: a copy for a copying snapshotter, and a copy-up in
	// overlayfs for the file it appends to.
	layer(t, e.sn, "meta2", "meta1", func(d string) {
		f, err := os.OpenFile(filepath.Join(d, "copyup"), os.O_WRONLY|os.O_APPEND, 0)
		must(t, err)
		_, err = f.WriteString("+after")
		must(t, err)
		must(t, f.Close())
		write(t, filepath.Join(d, "other"), "other")
	})
	for _, parent := range []string{"meta1", "meta2"} {
		t.Run(parent, func(t *testing.T) {
			checkMetadata(t, view(t, e.sn, "view-"+parent, parent), parent == "meta2")
		})
	}
}

func checkMetadata(t *testing.T, d string, second bool) {
	p := func(n string) string { return filepath.Join(d, n) }
	st := func(n string) unix.Stat_t {
		t.Helper()
		var s unix.Stat_t
		if err := unix.Lstat(p(n), &s); err != nil {
			t.Fatalf("lstat %s: %v", n, err)
		}
		return s
	}
	type fileAttrs struct {
		name     string
		typ      uint32
		perm     uint32
		uid, gid uint32
	}
	for _, w := range []fileAttrs{
		{"file", unix.S_IFREG, 0o640, 1000, 1001},
		{"hard", unix.S_IFREG, 0o640, 1000, 1001},
		{"caps", unix.S_IFREG, 0o755, 0, 0},
		{"suid", unix.S_IFREG, 0o4755, 1000, 1000},
		{"sgid", unix.S_IFDIR, 0o2775, 0, 0},
		{"sticky", unix.S_IFDIR, 0o1777, 0, 0},
		{"null", unix.S_IFCHR, 0o666, 0, 0},
		{"blk", unix.S_IFBLK, 0o660, 0, 0},
		{"fifo", unix.S_IFIFO, 0o644, 0, 0},
		{"sym", unix.S_IFLNK, 0o777, 1002, 1002},
		{"copyup", unix.S_IFREG, 0o600, 1003, 1003},
		{"olddir", unix.S_IFDIR, 0o750, 0, 0},
	} {
		s := st(w.name)
		if s.Mode&unix.S_IFMT != w.typ || s.Mode&0o7777 != w.perm || s.Uid != w.uid || s.Gid != w.gid {
			t.Errorf("%s: mode %#o owner %d:%d, want %#o %d:%d", w.name, s.Mode, s.Uid, s.Gid, w.typ|w.perm, w.uid, w.gid)
		}
	}
	if a, b := st("file"), st("hard"); a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("file and hard: inodes %d and %d, nlink %d: want one inode with 2 links", a.Ino, b.Ino, a.Nlink)
	}
	if s := st("null"); s.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("null: device %d:%d, want 1:3", unix.Major(s.Rdev), unix.Minor(s.Rdev))
	}
	if s := st("blk"); s.Rdev != unix.Mkdev(7, 0) {
		t.Errorf("blk: device %d:%d, want 7:0", unix.Major(s.Rdev), unix.Minor(s.Rdev))
	}
	if target, err := os.Readlink(p("sym")); err != nil || target != "file" {
		t.Errorf("sym -> %q, %v; want file", target, err)
	}
	xattr := func(n, name, want string) {
		t.Helper()
		buf := make([]byte, 256)
		sz, err := unix.Lgetxattr(p(n), name, buf)
		if err != nil || string(buf[:sz]) != want {
			t.Errorf("%s: xattr %s = %q, %v; want %q", n, name, buf[:max(sz, 0)], err, want)
		}
	}
	xattr("file", "user.hull", "u")
	xattr("file", "trusted.hull", "t")
	xattr("caps", "security.capability", string(capV2))
	xattr("copyup", "user.kept", "k")
	xattr("olddir", "trusted.dir", "d")
	for _, n := range []string{"old", "olddir"} {
		if s := st(n); time.Unix(s.Mtim.Unix()).UTC() != oldTime {
			t.Errorf("%s: mtime %v, want %v", n, time.Unix(s.Mtim.Unix()).UTC(), oldTime)
		}
	}
	if s := st("sparse"); s.Size != 64<<20 || s.Blocks*512 > 1<<20 {
		t.Errorf("sparse: size %d with %d bytes allocated, want %d with at most 1 MiB", s.Size, s.Blocks*512, 64<<20)
	}
	want := map[string]string{"file": "file", "hard": "file", "suid": "suid", "old": "old", "copyup": "before", "other": ""}
	if second {
		want["copyup"], want["other"] = "before+after", "other"
	}
	expect(t, d, want)
}

func testRestart(t *testing.T, e *env) {
	ctx := t.Context()
	layer(t, e.sn, "l1", "", func(d string) { write(t, filepath.Join(d, "f1"), "1") })
	layer(t, e.sn, "l2", "l1", func(d string) { write(t, filepath.Join(d, "f2"), "2") })
	ms, err := e.sn.Prepare(ctx, "active", "l2")
	if err != nil {
		t.Fatal(err)
	}
	d := mount(t, ms)
	write(t, filepath.Join(d, "f3"), "3")
	unmount(t, d)
	if _, err := e.sn.View(ctx, "view", "l2"); err != nil {
		t.Fatal(err)
	}
	infos := func(sn snapshot.Snapshotter) map[string]snapshot.Info {
		m := map[string]snapshot.Info{}
		must(t, sn.Walk(ctx, func(in snapshot.Info) error { m[in.Key] = in; return nil }))
		return m
	}
	before := infos(e.sn)
	e.closeEarly(e.sn)

	sn := e.open(t)
	after := infos(sn)
	if len(after) != 4 || len(before) != 4 {
		t.Fatalf("before the restart %d snapshots, after %d; want 4 and 4", len(before), len(after))
	}
	for k, b := range before {
		a := after[k]
		if a.Key != b.Key || a.Parent != b.Parent || a.Kind != b.Kind || !a.Created.Equal(b.Created) {
			t.Errorf("%q: %+v after the restart, %+v before", k, a, b)
		}
	}
	vms, err := sn.Mounts(ctx, "view")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, mount(t, vms), map[string]string{"f1": "1", "f2": "2"})
	ams, err := sn.Mounts(ctx, "active")
	if err != nil {
		t.Fatal(err)
	}
	d = mount(t, ams)
	expect(t, d, map[string]string{"f1": "1", "f2": "2", "f3": "3"})
	unmount(t, d)
	must(t, sn.Commit(ctx, "l3", "active"))
	layer(t, sn, "l4", "l3", func(d string) { expect(t, d, map[string]string{"f3": "3"}) })
}

func testImport(t *testing.T, e *env) {
	im, ok := e.sn.(snapshot.Importer)
	if !ok {
		t.Skip("not a snapshot.Importer")
	}
	ctx := t.Context()
	layer(t, e.sn, "base", "", func(d string) {
		for _, f := range []string{"keep", "gone", "dir/old", "dir/sub/x", "d2/keep2"} {
			write(t, filepath.Join(d, f), f)
		}
	})
	staged := func() string {
		t.Helper()
		dir, err := im.StagingDir(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
			t.Fatalf("StagingDir %s: %d entries, %v; want an empty directory", dir, len(ents), err)
		}
		return dir
	}
	// A layer as an unpacker leaves it: overlay whiteouts made directly.
	dir := staged()
	write(t, filepath.Join(dir, "new"), "new")
	must(t, unix.Mknod(filepath.Join(dir, "gone"), unix.S_IFCHR, 0))
	must(t, os.Mkdir(filepath.Join(dir, "dir"), 0o755))
	must(t, unix.Setxattr(filepath.Join(dir, "dir"), "trusted.overlay.opaque", []byte("y"), 0))
	write(t, filepath.Join(dir, "dir/fresh"), "fresh")

	wantErr(t, "Import on an unknown parent", im.Import(ctx, "imp", "nope", dir), snapshot.ErrNotExist)
	wantErr(t, "Import to an existing name", im.Import(ctx, "base", "", dir), snapshot.ErrExist)
	if _, err := os.Stat(filepath.Join(dir, "new")); err != nil {
		t.Fatalf("a failed Import did not leave the staging dir as it was: %v", err)
	}
	if err := im.Import(ctx, "imp", "base", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging dir after Import: %v, want it gone", err)
	}
	in, err := e.sn.Stat(ctx, "imp")
	if err != nil || in.Kind != snapshot.KindCommitted || in.Parent != "base" {
		t.Errorf("Stat(imp) = %+v, %v; want committed on base", in, err)
	}
	want := map[string]string{
		"keep": "keep", "new": "new", "d2/keep2": "d2/keep2", "dir/fresh": "fresh",
		"gone": "", "dir/old": "", "dir/sub": "",
	}
	expect(t, view(t, e.sn, "iv", "imp"), want)
	layer(t, e.sn, "on-imp", "imp", func(d string) {
		expect(t, d, want)
		write(t, filepath.Join(d, "gone"), "again")
	})
	expect(t, view(t, e.sn, "ov", "on-imp"), map[string]string{"gone": "again", "dir/old": ""})

	// Layers staged in parallel, imported in order: a base layer of its own
	// and two on top.
	dirs := []string{staged(), staged(), staged()}
	write(t, filepath.Join(dirs[0], "a"), "a")
	write(t, filepath.Join(dirs[0], "b"), "b")
	write(t, filepath.Join(dirs[1], "c"), "c")
	must(t, unix.Mknod(filepath.Join(dirs[2], "a"), unix.S_IFCHR, 0))
	parent := ""
	for i, d := range dirs {
		name := fmt.Sprintf("i%d", i)
		if err := im.Import(ctx, name, parent, d); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	expect(t, view(t, e.sn, "iv0", "i0"), map[string]string{"a": "a", "b": "b"})
	expect(t, view(t, e.sn, "iv2", "i2"), map[string]string{"a": "", "b": "b", "c": "c"})

	dir = staged()
	write(t, filepath.Join(dir, "x"), "x")
	must(t, im.RemoveStaging(dir))
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging dir after RemoveStaging: %v, want it gone", err)
	}
	outside := t.TempDir()
	if err := im.Import(ctx, "outside", "", outside); err == nil {
		t.Error("Import of a directory that StagingDir did not make succeeded")
	}
	if _, err := os.Lstat(outside); err != nil {
		t.Errorf("a refused Import moved its directory: %v", err)
	}
}
