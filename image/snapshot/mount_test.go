package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func TestSplitJoinLowerdir(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []layer
	}{
		{"/a", []layer{{"/a", false}}},
		{"/a:/b", []layer{{"/a", false}, {"/b", false}}},
		{`/a\:b:/c\\d:/e\,f`, []layer{{"/a:b", false}, {`/c\d`, false}, {"/e,f", false}}},
		{"/a:/b::/d1:/d2", []layer{{"/a", false}, {"/b", false}, {"/d1", true}, {"/d2", true}}},
	} {
		got := splitLowerdir(c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitLowerdir(%q) = %v, want %v", c.in, got, c.want)
		}
		if back := joinLowerdir(got); back != c.in {
			t.Errorf("joinLowerdir(%v) = %q, want %q", got, back, c.in)
		}
	}
}

func TestCompactOverlayOptions(t *testing.T) {
	dir, got, err := compactOverlayOptions([]string{
		"index=off",
		"workdir=/r/snapshots/3/work",
		"upperdir=/r/snapshots/3/fs",
		`lowerdir=/r/snapshots/2/fs:/r/snapshots/1\:x/fs`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"index=off", "workdir=3/work", "upperdir=3/fs", `lowerdir=2/fs:1\:x/fs`}
	if dir != "/r/snapshots" || !reflect.DeepEqual(got, want) {
		t.Errorf("got %s %v, want /r/snapshots %v", dir, got, want)
	}
	if d := commonDir([]string{"/a/b/c", "/x/y"}); d != "/" {
		t.Errorf("commonDir of unrelated paths = %s, want /", d)
	}
	if d := commonDir([]string{"/a/bc/d", "/a/b/d"}); d != "/a" {
		t.Errorf("commonDir(/a/bc/d, /a/b/d) = %s, want /a", d)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// target makes a mount point that is unmounted at the end of the test.
func target(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	t.Cleanup(func() {
		if err := UnmountAll(d); err != nil {
			t.Errorf("UnmountAll: %v", err)
		}
	})
	return d
}

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	m, err := mountinfo.Mounted(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// layers makes n layer directories with long paths (their lowerdir list is
// far over a page) under one parent; layer i holds file i and "top" = i.
func layers(t *testing.T, n, nameLen int) (base, lower string) {
	t.Helper()
	base = filepath.Join(t.TempDir(), strings.Repeat("l", 100))
	var parts []string
	for i := range n {
		name := strconv.Itoa(i)
		name += strings.Repeat("x", max(0, nameLen-len(name)))
		d := filepath.Join(base, name, "fs")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, v := range map[string]string{strconv.Itoa(i): "", "top": strconv.Itoa(i)} {
			if err := os.WriteFile(filepath.Join(d, f), []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		parts = append(parts, d)
	}
	// The nearest layer first, as snapshotters list them.
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return base, strings.Join(parts, ":")
}

func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi)
	return ma > major || ma == major && mi >= minor
}

// A chain of 130 layers whose lowerdir is ~19 KB mounts through both paths:
// one fsconfig per layer, and mount(2) with the paths relative to their
// common directory.
func TestMountAllLongLowerdir(t *testing.T) {
	needRoot(t)
	for _, newAPI := range []bool{true, false} {
		t.Run(fmt.Sprintf("newAPI=%v", newAPI), func(t *testing.T) {
			const n = 130
			// The upper and work dirs beside the layers, as in a snapshotter.
			up, lower := layers(t, n, 1)
			if len(lower) < 2*os.Getpagesize() {
				t.Fatalf("lowerdir is %d bytes: the test needs it far over a page", len(lower))
			}
			for _, d := range []string{"upper", "work"} {
				if err := os.Mkdir(filepath.Join(up, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			m := Mount{Type: "overlay", Source: "overlay", Options: []string{
				"index=off", "workdir=" + filepath.Join(up, "work"), "upperdir=" + filepath.Join(up, "upper"), "lowerdir=" + lower,
			}}
			dst := target(t)
			if newAPI && kernelAtLeast(t, 6, 8) {
				// Pin that the new API did the mount rather than falling back.
				done, err := mountOverlayFS(m, dst, parseOptions(m.Options))
				if !done || err != nil {
					t.Fatalf("mountOverlayFS on Linux ≥ 6.8: done %v, %v", done, err)
				}
			} else if err := mountAll([]Mount{m}, dst, newAPI); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if _, err := os.Stat(filepath.Join(dst, strconv.Itoa(i))); err != nil {
					t.Errorf("layer %d: %v", i, err)
				}
			}
			if b, err := os.ReadFile(filepath.Join(dst, "top")); err != nil || string(b) != strconv.Itoa(n-1) {
				t.Errorf("top = %q, %v; want the nearest layer's %d", b, err, n-1)
			}
			if err := os.WriteFile(filepath.Join(dst, "w"), nil, 0o644); err != nil {
				t.Errorf("write: %v", err)
			}
			if _, err := os.Stat(filepath.Join(up, "upper", "w")); err != nil {
				t.Errorf("the write did not land in upperdir: %v", err)
			}
			wd, _ := os.Getwd()
			if wd == "" || strings.Contains(wd, strings.Repeat("l", 100)) {
				t.Errorf("the process's working directory changed to %s", wd)
			}
		})
	}
}

// Even relative, 300 layers with 20-byte names are over a page: mount(2)
// cannot take them, and the error says so instead of the kernel truncating.
func TestMountLegacyTooLong(t *testing.T) {
	needRoot(t)
	_, lower := layers(t, 300, 20)
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=" + lower}}
	err := mountAll([]Mount{m}, target(t), false)
	if !errors.Is(err, unix.E2BIG) {
		t.Errorf("mount(2) of 300 long layers: %v, want E2BIG", err)
	}
}

// A read-only rbind is read-only in its submounts too on the new API.
func TestMountAllBindReadOnly(t *testing.T) {
	needRoot(t)
	src := t.TempDir()
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = UnmountAll(sub) })
	for _, newAPI := range []bool{true, false} {
		t.Run(fmt.Sprintf("newAPI=%v", newAPI), func(t *testing.T) {
			dst := target(t)
			if err := mountAll([]Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, dst, newAPI); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, "f"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
				t.Errorf("write at the top: %v, want EROFS", err)
			}
			err := os.WriteFile(filepath.Join(dst, "sub", "f"), nil, 0o644)
			if newAPI && !errors.Is(err, syscall.EROFS) {
				t.Errorf("write in a submount: %v, want EROFS", err)
			}
			if err := UnmountAll(dst); err != nil {
				t.Fatal(err)
			}
			if ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dst)); err != nil || len(ms) != 0 {
				t.Errorf("still mounted after UnmountAll: %d mounts, %v", len(ms), err)
			}
		})
	}
}

// When a later mount fails, the earlier ones are undone.
func TestMountAllRollsBack(t *testing.T) {
	needRoot(t)
	dst := target(t)
	ms := []Mount{
		{Type: "tmpfs", Source: "tmpfs"},
		{Type: "bind", Source: t.TempDir(), Options: []string{"rbind"}},
		{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/nonexistent/a:/nonexistent/b"}},
	}
	err := MountAll(ms, dst)
	if err == nil {
		t.Fatal("MountAll with a bad overlay succeeded")
	}
	if !strings.Contains(err.Error(), dst) {
		t.Errorf("error %q does not name the target", err)
	}
	if mounted(t, dst) {
		t.Error("the mounts before the failing one were not undone")
	}
}

func TestUnmountAll(t *testing.T) {
	needRoot(t)
	dst := target(t)
	for range 3 {
		if err := MountAll([]Mount{{Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "size=1m"}}}, dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := UnmountAll(dst); err != nil {
		t.Fatal(err)
	}
	if mounted(t, dst) {
		t.Error("stacked mounts left after UnmountAll")
	}
	if err := UnmountAll(dst); err != nil {
		t.Errorf("UnmountAll of a plain directory: %v", err)
	}
	if err := UnmountAll(filepath.Join(dst, "nonexistent")); err != nil {
		t.Errorf("UnmountAll of a missing path: %v", err)
	}
}

// A mount kept busy by an open file is detached after the retries.
func TestUnmountAllDetachesBusy(t *testing.T) {
	needRoot(t)
	dst := target(t)
	if err := MountAll([]Mount{{Type: "tmpfs", Source: "tmpfs"}}, dst); err != nil {
		t.Fatal(err)
	}
	// A working directory inside the mount makes it busy; only a thread of
	// our own may change it, so do it in a child's fs_struct via inDir.
	release := make(chan struct{})
	ready := make(chan error)
	go func() {
		ready <- inDir(dst, func() error {
			ready <- nil
			<-release
			return nil
		})
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	err := unmountAll(dst, 2)
	close(release)
	<-ready
	if err != nil {
		t.Fatal(err)
	}
	if mounted(t, dst) {
		t.Error("busy mount not detached")
	}
}

// A layer path longer than fsconfig takes (255 bytes) still mounts: through
// mount(2).
func TestMountAllLongLayerPath(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	long := filepath.Join(base, strings.Repeat("d", 200), strings.Repeat("e", 100))
	other := filepath.Join(base, "other")
	for i, d := range []string{long, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := target(t)
	if err := MountAll([]Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + other + ":" + long}}}, dst); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"0", "1"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Error(err)
		}
	}
}
