//go:build linux

package unpack

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestEntryTypesAreCreated(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		content := strings.Repeat("0123456789", 300_000) // several copy buffers
		st := mustApply(t, s.root, newLayer(t).
			dir("d").
			file("d/f", content).
			file("d/empty", "").
			symlink("d/sym", "f").
			symlink("d/dangling", "/nowhere/at/all").
			hardlink("d/hard", "d/f").
			add(tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}, "").
			add(tar.Header{Name: "dev/loop0", Typeflag: tar.TypeBlock, Devmajor: 7, Devminor: 0, Mode: 0o660}, "").
			add(tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, "").
			add(tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"}}, "").
			bytes(), m)
		if got := readFile(t, s.path("d/f")); got != content {
			t.Errorf("d/f: %d bytes, want %d", len(got), len(content))
		}
		if got := readFile(t, s.path("d/empty")); got != "" {
			t.Errorf("d/empty = %q", got)
		}
		if got, _ := os.Readlink(s.path("d/sym")); got != "f" {
			t.Errorf("d/sym -> %q", got)
		}
		if got, _ := os.Readlink(s.path("d/dangling")); got != "/nowhere/at/all" {
			t.Errorf("d/dangling -> %q", got)
		}
		if f, h := lstat(t, s.path("d/f")), lstat(t, s.path("d/hard")); f.Ino != h.Ino || f.Nlink != 2 {
			t.Errorf("d/hard is not d/f: ino %d vs %d, nlink %d", h.Ino, f.Ino, f.Nlink)
		}
		for _, c := range []struct {
			path  string
			typ   uint32
			major uint32
			minor uint32
		}{
			{"dev/null", unix.S_IFCHR, 1, 3},
			{"dev/loop0", unix.S_IFBLK, 7, 0},
			{"run/fifo", unix.S_IFIFO, 0, 0},
		} {
			st := lstat(t, s.path(c.path))
			if st.Mode&unix.S_IFMT != c.typ || unix.Major(st.Rdev) != c.major || unix.Minor(st.Rdev) != c.minor {
				t.Errorf("%s: mode %o rdev %d:%d", c.path, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
			}
		}
		if st.Entries != 10 || st.Bytes != int64(len(content)) {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestMissingParentsAreCreated(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		mustApply(t, s.root, newLayer(t).file("x/y/z", "deep").bytes(), m)
		if got := readFile(t, s.path("x/y/z")); got != "deep" {
			t.Errorf("x/y/z = %q", got)
		}
		if st := lstat(t, s.path("x/y")); st.Mode != unix.S_IFDIR|0o755 {
			t.Errorf("x/y mode %o", st.Mode)
		}
	})
}

func TestImplicitDirectoriesAreReportedUnlessListedLater(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		st := mustApply(t, s.root, newLayer(t).file("a/b/c", "x").file("x/y", "y").dir("x").bytes(), m)
		if got := strings.Join(st.ImplicitDirs, ","); got != "a,a/b" {
			t.Errorf("ImplicitDirs = %q, want a,a/b (x is listed after its child)", got)
		}
	})
}

func TestOwnershipAndSpecialModesArePreserved(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		mustApply(t, s.root, newLayer(t).
			add(tar.Header{Name: "sgid-dir", Typeflag: tar.TypeDir, Mode: 0o2775, Uid: 1000, Gid: 50}, "").
			add(tar.Header{Name: "tmp", Typeflag: tar.TypeDir, Mode: 0o1777}, "").
			add(tar.Header{Name: "su", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 0, Gid: 0}, "#!").
			add(tar.Header{Name: "su-owned", Typeflag: tar.TypeReg, Mode: 0o4750, Uid: 1001, Gid: 1002}, "#!").
			add(tar.Header{Name: "sgid-dir/wall", Typeflag: tar.TypeReg, Mode: 0o2711, Uid: 0, Gid: 5}, "#!").
			add(tar.Header{Name: "sgid-dir/plain", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 7, Gid: 8}, "x").
			add(tar.Header{Name: "secret", Typeflag: tar.TypeReg, Mode: modeZero, Uid: 65534, Gid: 65534}, "x").
			add(tar.Header{Name: "target", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 10, Gid: 11}, "x").
			add(tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "target", Uid: 33, Gid: 34}, "").
			add(tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o2640, Uid: 5, Gid: 6}, "").
			add(tar.Header{Name: "tty", Typeflag: tar.TypeChar, Devmajor: 5, Devminor: 0, Mode: 0o620, Uid: 0, Gid: 5}, "").
			add(tar.Header{Name: "big-ids", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 100000, Gid: 165535}, "x").
			bytes(), m)
		for _, c := range []struct {
			path     string
			mode     uint32
			uid, gid uint32
		}{
			{"sgid-dir", unix.S_IFDIR | 0o2775, 1000, 50},
			{"tmp", unix.S_IFDIR | 0o1777, 0, 0},
			{"su", unix.S_IFREG | 0o4755, 0, 0},
			{"su-owned", unix.S_IFREG | 0o4750, 1001, 1002},
			{"sgid-dir/wall", unix.S_IFREG | 0o2711, 0, 5},
			// The header's group wins over the setgid directory's.
			{"sgid-dir/plain", unix.S_IFREG | 0o640, 7, 8},
			{"secret", unix.S_IFREG, 65534, 65534},
			{"target", unix.S_IFREG | 0o644, 10, 11},
			{"link", unix.S_IFLNK | 0o777, 33, 34},
			{"fifo", unix.S_IFIFO | 0o2640, 5, 6},
			{"tty", unix.S_IFCHR | 0o620, 0, 5},
			{"big-ids", unix.S_IFREG | 0o600, 100000, 165535},
		} {
			st := lstat(t, s.path(c.path))
			if st.Mode != c.mode || st.Uid != c.uid || st.Gid != c.gid {
				t.Errorf("%s: mode %o %d:%d, want %o %d:%d", c.path, st.Mode, st.Uid, st.Gid, c.mode, c.uid, c.gid)
			}
		}
	})
}

func TestInvalidOwnerFails(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	_, err := applyIn(t, s.root, newLayer(t).add(tar.Header{Name: "f", Typeflag: tar.TypeReg, Uid: 1 << 32}, "").bytes(), nativeMode)
	wantErr(t, err, `"f"`, "invalid owner")
}

func TestModTimesAreSetWithDirectoriesAfterTheirChildren(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		at := func(sec int64) time.Time { return time.Unix(sec, 123456789) }
		mustApply(t, s.root, newLayer(t).
			add(tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: at(1000)}, "").
			add(tar.Header{Name: "d", Typeflag: tar.TypeDir, ModTime: at(2000)}, "").
			add(tar.Header{Name: "d/f", Typeflag: tar.TypeReg, ModTime: at(3000), AccessTime: at(3500)}, "x").
			add(tar.Header{Name: "d/sub", Typeflag: tar.TypeDir, ModTime: at(4000)}, "").
			add(tar.Header{Name: "d/sub/g", Typeflag: tar.TypeReg, ModTime: at(5000)}, "x").
			add(tar.Header{Name: "d/sym", Typeflag: tar.TypeSymlink, Linkname: "f", ModTime: at(6000)}, "").
			add(tar.Header{Name: "d/fifo", Typeflag: tar.TypeFifo, ModTime: at(7000)}, "").
			// A later entry in d, after d/sub's children, must not leave d
			// with the time of its creation.
			add(tar.Header{Name: "d/late", Typeflag: tar.TypeReg, ModTime: at(8000)}, "x").
			// Before 1970 and far after 2262 (past int64 nanoseconds).
			add(tar.Header{Name: "old", Typeflag: tar.TypeReg, ModTime: time.Unix(-100_000, 0)}, "x").
			add(tar.Header{Name: "future", Typeflag: tar.TypeReg, ModTime: time.Unix(10_000_000_000, 0)}, "x").
			bytes(), m)
		for p, want := range map[string]int64{".": 1000, "d": 2000, "d/f": 3000, "d/sub": 4000, "d/sub/g": 5000, "d/sym": 6000, "d/fifo": 7000, "d/late": 8000, "old": -100_000, "future": 10_000_000_000} {
			st := lstat(t, s.path(p))
			wantNsec := int64(123456789)
			if p == "old" || p == "future" {
				wantNsec = 0
			}
			if st.Mtim.Sec != want || st.Mtim.Nsec != wantNsec {
				t.Errorf("%s: mtime %d.%09d, want %d.%09d", p, st.Mtim.Sec, st.Mtim.Nsec, want, wantNsec)
			}
		}
		if st := lstat(t, s.path("d/f")); st.Atim.Sec != 3500 {
			t.Errorf("d/f: atime %d, want the PAX atime 3500", st.Atim.Sec)
		}
	})
}

func TestRootEntrySetsTheRootsMetadata(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		mustApply(t, s.root, newLayer(t).
			add(tar.Header{Name: "/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 3, Gid: 4}, "").
			file("f", "x").
			bytes(), m)
		if st := lstat(t, s.root); st.Mode != unix.S_IFDIR|0o750 || st.Uid != 3 || st.Gid != 4 {
			t.Errorf("root: mode %o owner %d:%d", st.Mode, st.Uid, st.Gid)
		}
		_, err := applyIn(t, s.root, newLayer(t).file(".", "x").bytes(), m)
		wantErr(t, err, "the root can only be a directory")
	})
}

// capV2 returns a valid VFS_CAP_REVISION_2 security.capability value granting
// the capability bit in the permitted set.
func capV2(bit uint) string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000|1) // revision 2, effective
	binary.LittleEndian.PutUint32(b[4:], 1<<bit)
	return string(b)
}

func getxattr(t testing.TB, p, name string) (string, error) {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func TestXattrsFromPAXRecordsAreSet(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		x := func(kv ...string) map[string]string {
			r := map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				r["SCHILY.xattr."+kv[i]] = kv[i+1]
			}
			return r
		}
		ping := capV2(13) // CAP_NET_RAW
		mustApply(t, s.root, newLayer(t).
			// Owned by a non-root user: chown after the xattr would clear
			// the capability, so the order matters.
			add(tar.Header{Name: "ping", Typeflag: tar.TypeReg, Mode: 0o755, Uid: 1000, Gid: 1000,
				PAXRecords: x("security.capability", ping, "user.mime", "application/x-exe")}, "ELF").
			add(tar.Header{Name: "d", Typeflag: tar.TypeDir, PAXRecords: x("user.dir", "yes", "trusted.t", "\x00binary\xff")}, "").
			add(tar.Header{Name: "sym", Typeflag: tar.TypeSymlink, Linkname: "ping", PAXRecords: x("trusted.sym", "on the link")}, "").
			add(tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, PAXRecords: x("trusted.fifo", "f")}, "").
			add(tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, PAXRecords: x("security.dev", "d")}, "").
			// user.* on a symlink: the kernel never allows it; skipped.
			add(tar.Header{Name: "usersym", Typeflag: tar.TypeSymlink, Linkname: "ping", PAXRecords: x("user.x", "y")}, "").
			// overlayfs's own xattrs are not the layer's to set.
			add(tar.Header{Name: "forged", Typeflag: tar.TypeDir, PAXRecords: x("trusted.overlay.opaque", "y", "trusted.overlay.redirect", "/etc", "user.overlay.opaque", "y")}, "").
			bytes(), m)
		for _, c := range []struct{ path, name, want string }{
			{"ping", "security.capability", ping},
			{"ping", "user.mime", "application/x-exe"},
			{"d", "user.dir", "yes"},
			{"d", "trusted.t", "\x00binary\xff"},
			{"sym", "trusted.sym", "on the link"},
			{"fifo", "trusted.fifo", "f"},
			{"null", "security.dev", "d"},
		} {
			got, err := getxattr(t, s.path(c.path), c.name)
			if err != nil || got != c.want {
				t.Errorf("%s %s = %q, %v; want %q", c.path, c.name, got, err, c.want)
			}
		}
		if _, err := getxattr(t, s.path("ping"), "trusted.sym"); err == nil {
			t.Error("the symlink's xattr landed on its target")
		}
		if got := listXattrs(s.path("forged")); got != "" {
			t.Errorf("forged overlay xattrs were set: %s", got)
		}
	})
}

func TestXattrsTheFilesystemDoesNotSupportAreSkipped(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	// An unknown namespace: every filesystem answers EOPNOTSUPP.
	mustApply(t, s.root, newLayer(t).
		add(tar.Header{Name: "f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.bogus.name": "v"}}, "x").
		bytes(), nativeMode)
	if got := readFile(t, s.path("f")); got != "x" {
		t.Errorf("f = %q", got)
	}
}

func TestXattrOtherErrorsFail(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	// A malformed capability: EINVAL is a real error, not "unsupported".
	_, err := applyIn(t, s.root, newLayer(t).
		add(tar.Header{Name: "bad", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "garbage"}}, "x").
		bytes(), nativeMode)
	wantErr(t, err, `"bad"`, `"security.capability"`, "invalid argument")
}

func TestReplacingAnEntryOfAnotherType(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	// The lower layers, applied natively.
	mustApply(t, s.root, newLayer(t).
		dir("x").
		file("x/child", "lower").
		dir("x/deep/deeper").
		file("y", "lower file").
		symlink("z", "y").
		file("h1", "lower content").
		hardlink("h2", "h1").
		dir("w").
		file("w/inside", "w").
		file("dev", "a file").
		add(tar.Header{Name: "fifo", Typeflag: tar.TypeFifo}, "").
		bytes(), nativeMode)
	mustApply(t, s.root, newLayer(t).
		file("x", "file replaces dir").
		dir("y").
		file("y/c", "dir replaces file").
		file("z", "file replaces symlink").
		file("h1", "new content").
		symlink("w", "x").
		add(tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 5}, "").
		dir("fifo").
		bytes(), nativeMode)
	for p, want := range map[string]string{"x": "file replaces dir", "y/c": "dir replaces file", "z": "file replaces symlink", "h1": "new content"} {
		if got := readFile(t, s.path(p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	// A lower layer's hardlink keeps the lower content: files are replaced,
	// never written through.
	if got := readFile(t, s.path("h2")); got != "lower content" {
		t.Errorf("h2 = %q", got)
	}
	if got, _ := os.Readlink(s.path("w")); got != "x" {
		t.Errorf("w -> %q", got)
	}
	if st := lstat(t, s.path("dev")); st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("dev: mode %o", st.Mode)
	}
	if st := lstat(t, s.path("fifo")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("fifo: mode %o", st.Mode)
	}
}

func TestExistingDirectoryIsKeptWithNewMetadata(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	mustApply(t, s.root, newLayer(t).
		add(tar.Header{Name: "d", Typeflag: tar.TypeDir, Mode: 0o700, PAXRecords: map[string]string{"SCHILY.xattr.user.keep": "1"}}, "").
		file("d/lower", "stays").
		bytes(), nativeMode)
	mustApply(t, s.root, newLayer(t).
		add(tar.Header{Name: "d", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 9}, "").
		file("d/upper", "added").
		bytes(), nativeMode)
	if got := readFile(t, s.path("d/lower")); got != "stays" {
		t.Errorf("d/lower = %q", got)
	}
	if st := lstat(t, s.path("d")); st.Mode != unix.S_IFDIR|0o755 || st.Uid != 9 {
		t.Errorf("d: mode %o uid %d", st.Mode, st.Uid)
	}
	if got, _ := getxattr(t, s.path("d"), "user.keep"); got != "1" {
		t.Errorf("d lost its xattr: %q", got)
	}
}

// tree lists dir: relative path -> type and, for files, content.
func tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(dir, p)
		typ := map[os.FileMode]string{0: "f", os.ModeDir: "d", os.ModeSymlink: "l", os.ModeDevice | os.ModeCharDevice: "c", os.ModeNamedPipe: "p"}[fi.Mode().Type()]
		desc := r + " " + typ
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		}
		out = append(out, desc)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func lowerLayer(t testing.TB) []byte {
	return newLayer(t).
		dir("etc").
		file("etc/keep", "kept").
		file("etc/gone", "lower").
		dir("etc/gonedir").
		file("etc/gonedir/f", "lower").
		dir("d").
		file("d/old", "lower").
		dir("d/sub").
		file("d/sub/old2", "lower").
		symlink("d/oldlink", "old").
		dir("other").
		file("other/f", "untouched").
		bytes()
}

func TestWhiteoutDeletesInNativeMode(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	mustApply(t, s.root, lowerLayer(t), nativeMode)
	st := mustApply(t, s.root, newLayer(t).
		dir("etc").
		file("etc/.wh.gone", "").
		file("etc/.wh.gonedir", "").
		file("etc/.wh.never-existed", "").
		file("missing/.wh.x", "").
		file("etc/.wh..wh.plnk", ""). // AUFS bookkeeping: ignored
		bytes(), nativeMode)
	for _, p := range []string{"etc/gone", "etc/gonedir", "etc/.wh.gone", "missing"} {
		if exists(s.path(p)) {
			t.Errorf("%s exists", p)
		}
	}
	if got := readFile(t, s.path("etc/keep")); got != "kept" {
		t.Errorf("etc/keep = %q", got)
	}
	if st.Entries != 6 {
		t.Errorf("stats %+v", st)
	}
}

func TestWhiteoutBecomesCharDeviceInOverlayMode(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	mustApply(t, s.root, newLayer(t).
		dir("etc").
		file("etc/.wh.gone", "").
		file("etc/replaced", "this layer's, then whited out").
		file("etc/.wh.replaced", "").
		file("implicit/.wh.x", "").
		bytes(), overlayMode)
	for _, p := range []string{"etc/gone", "etc/replaced", "implicit/x"} {
		st := lstat(t, s.path(p))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d, want a 0:0 char device", p, st.Mode, st.Rdev)
		}
	}
	if exists(s.path("etc/.wh.gone")) {
		t.Error("the .wh. entry itself was created")
	}
}

func TestOpaqueDirectoryInNativeMode(t *testing.T) {
	requireRoot(t)
	want := []string{". d", "d d", "d/new f this layer", "d/sub d", "d/sub/new2 f this layer", "d/viaLink f via a symlink",
		"etc d", "etc/gone f lower", "etc/gonedir d", "etc/gonedir/f f lower", "etc/keep f kept", "other d", "other/f f untouched", "s l"}
	// The marker conventionally comes first; any position must give the
	// same result: the lower layers' entries of d go, this layer's stay.
	for _, pos := range []string{"first", "middle", "last"} {
		t.Run("marker "+pos, func(t *testing.T) {
			s := newSandbox(t)
			mustApply(t, s.root, lowerLayer(t), nativeMode)
			l := newLayer(t).dir("d")
			marker := func() { l.file("d/.wh..wh..opq", "") }
			if pos == "first" {
				marker()
			}
			l.file("d/new", "this layer").dir("d/sub")
			if pos == "middle" {
				marker()
			}
			l.file("d/sub/new2", "this layer").symlink("s", "d").file("s/viaLink", "via a symlink")
			if pos == "last" {
				marker()
			}
			mustApply(t, s.root, l.bytes(), nativeMode)
			if got := tree(t, s.root); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestOpaqueDirectoryInOverlayMode(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	mustApply(t, s.root, newLayer(t).
		dir("d").
		file("d/new", "x").
		file("d/.wh..wh..opq", "").
		file("implicit/.wh..wh..opq", "").
		bytes(), overlayMode)
	for _, p := range []string{"d", "implicit"} {
		if got, err := getxattr(t, s.path(p), "trusted.overlay.opaque"); got != "y" {
			t.Errorf("%s: trusted.overlay.opaque = %q, %v", p, got, err)
		}
	}
	if exists(s.path("d/.wh..wh..opq")) {
		t.Error("the marker itself was created")
	}
}

// TestOverlayMountHidesWhiteoutsAndOpaqueDirs mounts a real overlay: the same
// layer applied in overlay mode over a natively applied base must look like
// the layer applied natively onto a copy of the base.
func TestOverlayMountHidesWhiteoutsAndOpaqueDirs(t *testing.T) {
	requireRoot(t)
	upperLayer := newLayer(t).
		dir("etc").
		file("etc/.wh.gone", "").
		file("etc/.wh.gonedir", "").
		file("etc/added", "upper").
		dir("d").
		file("d/.wh..wh..opq", "").
		file("d/new", "upper").
		dir("d/sub").
		file("d/sub/new2", "upper").
		bytes()

	base := t.TempDir()
	lower, upper, work, merged, native := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged"), filepath.Join(base, "native")
	for _, d := range []string{lower, upper, work, merged, native} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, lower, lowerLayer(t), nativeMode)
	mustApply(t, upper, upperLayer, overlayMode)
	mustApply(t, native, lowerLayer(t), nativeMode)
	mustApply(t, native, upperLayer, nativeMode)

	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENODEV) {
			t.Skipf("cannot mount overlayfs: %v", err)
		}
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})

	got, want := tree(t, merged), tree(t, native)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("overlay view:\n%s\nnative apply:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range []string{"etc/gone", "etc/gonedir", "d/old", "d/sub/old2", "d/oldlink"} {
		if exists(filepath.Join(merged, p)) {
			t.Errorf("%s is visible through the overlay", p)
		}
	}
	if got := readFile(t, filepath.Join(merged, "etc/keep")); got != "kept" {
		t.Errorf("etc/keep = %q", got)
	}

	// The containerd way for a native apply: the layer applied with native
	// whiteouts onto a mounted overlay (lower = the base, empty upper) must
	// give the same view too.
	upper2, work2, merged2 := filepath.Join(base, "upper2"), filepath.Join(base, "work2"), filepath.Join(base, "merged2")
	for _, d := range []string{upper2, work2, merged2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("overlay", merged2, "overlay", 0, "lowerdir="+lower+",upperdir="+upper2+",workdir="+work2); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged2, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", merged2, err)
		}
	})
	mustApply(t, merged2, upperLayer, nativeMode)
	if got := tree(t, merged2); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("native apply on a mounted overlay:\n%s\nnative apply:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestApplyReadsToTheEndOfTheStream(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	tarball := append(newLayer(t).file("f", "x").bytes(), bytes.Repeat([]byte{0}, 10_000)...)
	r := bytes.NewReader(tarball)
	if _, err := Apply(t.Context(), s.root, r, Options{}); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes left unread", r.Len())
	}
}

func TestSyncFlushesTheFilesystem(t *testing.T) {
	if err := Sync(t.TempDir()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := Sync(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Sync of a missing dir: %v", err)
	}
}

// The fallbacks for kernels without setxattrat (6.13) and fchmodat2 (6.6),
// called directly since this kernel has both.
func TestFallbacksForOlderKernelsDoNotFollowSymlinks(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	if err := os.Symlink(s.canary, s.path("link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(s.path("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.Open(s.root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fd := int(root.Fd())

	if err := lsetxattrProc(fd, "link", "trusted.x", []byte("on the link")); err != nil {
		t.Fatalf("lsetxattrProc: %v", err)
	}
	if got, err := getxattr(t, s.path("link"), "trusted.x"); got != "on the link" {
		t.Errorf("link's trusted.x = %q, %v", got, err)
	}
	if err := chmodProc(fd, "fifo", 0o4751, unix.S_IFIFO); err != nil {
		t.Fatalf("chmodProc: %v", err)
	}
	if st := lstat(t, s.path("fifo")); st.Mode != unix.S_IFIFO|0o4751 {
		t.Errorf("fifo mode %o", st.Mode)
	}
	// Asked to chmod a fifo, handed a symlink: refused, the canary untouched.
	if err := chmodProc(fd, "link", 0o777, unix.S_IFIFO); err == nil {
		t.Error("chmodProc changed a symlink's target")
	}
}
