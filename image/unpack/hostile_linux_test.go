//go:build linux

package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestDotDotNamesAreRejected(t *testing.T) {
	requireRoot(t)
	for _, name := range []string{
		"../outside/canary",
		"a/../../outside/canary",
		"./../outside/new",
		"/../outside/new", // absolute, then climbing: Docker refuses it too
		"a/b/../../../outside/sub/new",
	} {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			forEachMode(t, func(t *testing.T, m mode) {
				s := newSandbox(t)
				_, err := applyIn(t, s.root, newLayer(t).file(name, "evil").bytes(), m)
				wantErr(t, err, name, "escapes the root")
			})
		})
	}
}

func TestAbsoluteNamesAreRelativeToRoot(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		// The canary's own absolute host path, as a name: it lands under
		// the root at that path, never on the canary.
		mustApply(t, s.root, newLayer(t).
			file("/etc/passwd", "root:x:0:0::/root:/bin/sh\n").
			file(s.canary, "evil").
			bytes(), m)
		if got := readFile(t, s.path("etc/passwd")); !strings.HasPrefix(got, "root:") {
			t.Errorf("etc/passwd = %q", got)
		}
		if got := readFile(t, s.path(rel(s.canary))); got != "evil" {
			t.Errorf("%s = %q", s.path(rel(s.canary)), got)
		}
	})
}

func TestSymlinkThenWriteStaysInsideRoot(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("absolute target", func(t *testing.T) {
			s := newSandbox(t)
			// s -> /etc then s/passwd: /etc is the root's etc.
			mustApply(t, s.root, newLayer(t).
				dir("etc").
				symlink("s", "/etc").
				file("s/passwd", "in the root").
				bytes(), m)
			if got := readFile(t, s.path("etc/passwd")); got != "in the root" {
				t.Errorf("etc/passwd = %q", got)
			}
			if st := lstat(t, s.path("s")); st.Mode&0o170000 != 0o120000 {
				t.Errorf("s is no longer a symlink: mode %o", st.Mode)
			}
		})
		t.Run("dotdot target", func(t *testing.T) {
			s := newSandbox(t)
			// s -> ../../.. is the root itself; ../outside is DIR/outside.
			mustApply(t, s.root, newLayer(t).
				symlink("s", "../../../../../../..").
				file("s/x", "at the root").
				dir("outside").
				symlink("t", "../outside").
				file("t/canary", "in the root").
				bytes(), m)
			if got := readFile(t, s.path("x")); got != "at the root" {
				t.Errorf("x = %q", got)
			}
			if got := readFile(t, s.path("outside/canary")); got != "in the root" {
				t.Errorf("outside/canary = %q", got)
			}
		})
		t.Run("host path target", func(t *testing.T) {
			s := newSandbox(t)
			// The outside dir's absolute host path does not exist in the
			// root: the write fails rather than going anywhere.
			_, err := applyIn(t, s.root, newLayer(t).
				symlink("s", s.outside).
				file("s/canary", "evil").
				bytes(), m)
			wantErr(t, err, `"s/canary"`, "not a directory")
		})
		t.Run("relative target to a missing dir", func(t *testing.T) {
			s := newSandbox(t)
			_, err := applyIn(t, s.root, newLayer(t).
				symlink("s", "../outside").
				file("s/canary", "evil").
				bytes(), m)
			wantErr(t, err, `"s/canary"`, "not a directory")
		})
		t.Run("symlink planted by a lower layer", func(t *testing.T) {
			s := newSandbox(t)
			if err := os.Symlink(s.outside, s.path("lower")); err != nil {
				t.Fatal(err)
			}
			_, err := applyIn(t, s.root, newLayer(t).file("lower/canary", "evil").bytes(), m)
			wantErr(t, err, `"lower/canary"`)
		})
		t.Run("magic link planted by a lower layer", func(t *testing.T) {
			s := newSandbox(t)
			outside, err := os.Open(s.outside)
			if err != nil {
				t.Fatal(err)
			}
			defer outside.Close()
			// /proc/self/fd/N resolves to the outside dir even from inside a
			// chroot-like lookup: RESOLVE_NO_MAGICLINKS refuses it, and
			// RESOLVE_IN_ROOT makes "/proc" the root's (missing) /proc.
			if err := os.Symlink("/proc/self/fd/"+itoa(int(outside.Fd())), s.path("magic")); err != nil {
				t.Fatal(err)
			}
			_, err = applyIn(t, s.root, newLayer(t).file("magic/canary", "evil").bytes(), m)
			wantErr(t, err, `"magic/canary"`)
		})
	})
}

func TestSymlinkToDirUsedAsParentStaysInsideRoot(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		mustApply(t, s.root, newLayer(t).
			dir("d").
			symlink("l", "d").
			file("l/f", "via l").
			// The outside dir's host path, recreated inside the root: an
			// absolute symlink to it resolves there, not on the host.
			dir(rel(s.outside)).
			symlink("abs", s.outside).
			file("abs/canary", "in the root").
			file("abs/deeper/new", "parents made inside the root").
			bytes(), m)
		if got := readFile(t, s.path("d/f")); got != "via l" {
			t.Errorf("d/f = %q", got)
		}
		if got := readFile(t, s.path(rel(s.canary))); got != "in the root" {
			t.Errorf("%s = %q", rel(s.canary), got)
		}
		if got := readFile(t, s.path(rel(s.outside)+"/deeper/new")); got != "parents made inside the root" {
			t.Errorf("deeper/new = %q", got)
		}
	})
}

func TestEntriesNeverWriteThroughAnExistingSymlink(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		// Each name is first a symlink to something outside, then an entry
		// of another kind: the symlink is replaced, never followed.
		for _, n := range []string{"file", "dir", "fifo", "dev", "link", "sym"} {
			target := s.canary
			if n == "dir" {
				target = s.outside
			}
			if err := os.Symlink(target, s.path(n)); err != nil {
				t.Fatal(err)
			}
		}
		mustApply(t, s.root, newLayer(t).
			add(tar.Header{Name: "file", Typeflag: tar.TypeReg, Mode: 0o4777, Uid: 1234, Gid: 1234,
				PAXRecords: map[string]string{"SCHILY.xattr.user.x": "y"}}, "evil").
			add(tar.Header{Name: "dir", Typeflag: tar.TypeDir, Mode: 0o777, Uid: 1234}, "").
			add(tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o666, Uid: 1234}, "").
			add(tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}, "").
			file("target", "t").
			hardlink("link", "target").
			symlink("sym", "elsewhere").
			bytes(), m)
		for n, want := range map[string]uint32{"file": 0o100000, "dir": 0o040000, "fifo": 0o010000, "dev": 0o020000, "link": 0o100000, "sym": 0o120000} {
			if got := lstat(t, s.path(n)).Mode & 0o170000; got != want {
				t.Errorf("%s: type %o, want %o", n, got, want)
			}
		}
	})
}

func TestHardlinkTargetsStayInsideRoot(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("dotdot target", func(t *testing.T) {
			s := newSandbox(t)
			_, err := applyIn(t, s.root, newLayer(t).hardlink("h", "../outside/canary").bytes(), m)
			wantErr(t, err, `"h"`, "escapes the root")
		})
		t.Run("host path target", func(t *testing.T) {
			s := newSandbox(t)
			// Absolute: the root's copy of that path, which does not exist.
			_, err := applyIn(t, s.root, newLayer(t).hardlink("h", s.canary).bytes(), m)
			wantErr(t, err, `"h"`, "no such file")
		})
		t.Run("through a symlink escape", func(t *testing.T) {
			s := newSandbox(t)
			_, err := applyIn(t, s.root, newLayer(t).
				symlink("s", s.outside).
				symlink("r", "../outside").
				hardlink("h", "s/canary").
				bytes(), m)
			wantErr(t, err, `"h"`)
			_, err = applyIn(t, s.root, newLayer(t).hardlink("h2", "r/canary").bytes(), m)
			wantErr(t, err, `"h2"`)
		})
		t.Run("to a symlink links the symlink", func(t *testing.T) {
			s := newSandbox(t)
			mustApply(t, s.root, newLayer(t).
				symlink("l", s.canary).
				hardlink("h", "l").
				bytes(), m)
			l, h := lstat(t, s.path("l")), lstat(t, s.path("h"))
			if h.Mode&0o170000 != 0o120000 || h.Ino != l.Ino {
				t.Errorf("h is not the symlink l: mode %o ino %d vs %d", h.Mode, h.Ino, l.Ino)
			}
		})
	})
}

func TestAbsoluteHardlinkTargetResolvesInsideRoot(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		mustApply(t, s.root, newLayer(t).
			dir("usr/bin").
			file("usr/bin/perl5.36", "#!perl").
			hardlink("usr/bin/perl", "/usr/bin/perl5.36").
			hardlink("usr/bin/perl-again", "./usr/bin/../bin/perl5.36").
			bytes(), m)
		a, b, c := lstat(t, s.path("usr/bin/perl5.36")), lstat(t, s.path("usr/bin/perl")), lstat(t, s.path("usr/bin/perl-again"))
		if a.Ino != b.Ino || a.Ino != c.Ino || a.Nlink != 3 {
			t.Errorf("not one inode: %d %d %d, nlink %d", a.Ino, b.Ino, c.Ino, a.Nlink)
		}
	})
}

func TestWhiteoutsStayInsideRoot(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("dotdot", func(t *testing.T) {
			s := newSandbox(t)
			_, err := applyIn(t, s.root, newLayer(t).file("../.wh.outside", "").bytes(), m)
			wantErr(t, err, "escapes the root")
			_, err = applyIn(t, s.root, newLayer(t).file("../outside/.wh.canary", "").bytes(), m)
			wantErr(t, err, "escapes the root")
		})
		t.Run("through symlinks", func(t *testing.T) {
			s := newSandbox(t)
			if err := os.Symlink(s.outside, s.path("lower")); err != nil {
				t.Fatal(err)
			}
			// Each may fail (overlay mode has to create the parent) or do
			// nothing; none may reach the canary.
			for _, l := range [][]byte{
				newLayer(t).symlink("s", s.outside).file("s/.wh.canary", "").bytes(),
				newLayer(t).symlink("r", "../outside").file("r/.wh.canary", "").bytes(),
				newLayer(t).file("lower/.wh.canary", "").bytes(),
				newLayer(t).file("lower/.wh..wh..opq", "").bytes(),
				newLayer(t).file(rel(s.outside)+"/.wh..wh..opq", "").bytes(),
				newLayer(t).file(s.outside+"/.wh.canary", "").bytes(),
			} {
				_, _ = applyIn(t, s.root, l, m)
			}
		})
		t.Run("through a symlink inside the root", func(t *testing.T) {
			s := newSandbox(t)
			// r -> ../outside is DIR/outside: the whiteout acts there.
			mustApply(t, s.root, newLayer(t).
				dir("outside").
				file("outside/canary", "root's").
				symlink("r", "../outside").
				file("r/.wh.canary", "").
				bytes(), m)
			if m.opts.OverlayWhiteouts {
				if st := lstat(t, s.path("outside/canary")); st.Mode&0o170000 != 0o020000 || st.Rdev != 0 {
					t.Errorf("outside/canary is not a whiteout: mode %o rdev %d", st.Mode, st.Rdev)
				}
			} else if exists(s.path("outside/canary")) {
				t.Errorf("outside/canary survived its whiteout")
			}
		})
		t.Run("invalid names", func(t *testing.T) {
			s := newSandbox(t)
			// Whiteouts of "", "." and "..".
			for _, n := range []string{".wh.", "a/.wh..", "a/.wh..."} {
				_, err := applyIn(t, s.root, newLayer(t).file(n, "").bytes(), m)
				wantErr(t, err, "invalid whiteout")
			}
		})
	})
}

func TestReplacedDirectoryIsNotReusedFromCache(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		// a is cached as a directory, then becomes a symlink to b: a/f2
		// must go to b/f2, not into the unlinked old a.
		mustApply(t, s.root, newLayer(t).
			dir("a").
			file("a/f1", "1").
			dir("b").
			symlink("a", "b").
			file("a/f2", "2").
			// And a cached path through a symlink whose target is replaced.
			dir("c").
			symlink("l", "c").
			file("l/x", "x").
			file("c", "now a file").
			dir("l2").
			symlink("l2", "/b").
			file("l2/y", "y").
			bytes(), m)
		if got := readFile(t, s.path("b/f2")); got != "2" {
			t.Errorf("b/f2 = %q", got)
		}
		if got := readFile(t, s.path("b/y")); got != "y" {
			t.Errorf("b/y = %q", got)
		}
		if got := readFile(t, s.path("c")); got != "now a file" {
			t.Errorf("c = %q", got)
		}
		if exists(s.path("a/f1")) {
			t.Errorf("a/f1 visible through the new symlink a")
		}
	})
}

func TestGarbageIsNotATar(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	garbage := bytes.Repeat([]byte("this is not a tar archive\n"), 200)
	_, err := applyIn(t, s.root, garbage, nativeMode)
	wantErr(t, err, "reading the first tar header", "invalid tar header")

	// Garbage after a valid entry names the entry it follows.
	good := newLayer(t).file("ok", "fine").bytes()
	good = good[:len(good)-1024] // drop the end-of-archive marker
	_, err = applyIn(t, s.root, append(append([]byte{}, good...), garbage...), nativeMode)
	wantErr(t, err, `after entry "ok"`)
}

func TestTruncatedTarFails(t *testing.T) {
	requireRoot(t)
	full := newLayer(t).file("first", "1").file("second", strings.Repeat("x", 4000)).bytes()
	t.Run("in a header", func(t *testing.T) {
		s := newSandbox(t)
		_, err := applyIn(t, s.root, full[:1024+100], nativeMode)
		wantErr(t, err, `after entry "first"`, "unexpected EOF")
	})
	t.Run("in content", func(t *testing.T) {
		s := newSandbox(t)
		_, err := applyIn(t, s.root, full[:len(full)-1024-1024], nativeMode)
		wantErr(t, err, `"second"`, "unexpected EOF")
	})
}

func TestHugeSizeWithShortStreamFails(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("only ten b")); err != nil {
		t.Fatal(err)
	}
	// No Close: the stream just ends.
	_, err := applyIn(t, s.root, buf.Bytes(), nativeMode)
	wantErr(t, err, `"huge"`, "unexpected EOF")
	if st := lstat(t, s.path("huge")); st.Size != 10 || st.Blocks > 64 {
		t.Errorf("huge: size %d, %d blocks: something was preallocated", st.Size, st.Blocks)
	}
}

func TestDuplicateEntriesLaterWins(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		mustApply(t, s.root, newLayer(t).
			file("a", "one").
			hardlink("a-link", "a").
			file("a", "two").
			file("b", "file").
			dir("b").
			file("b/inside", "x").
			dir("c").
			file("c/x", "x").
			file("c", "file now").
			symlink("d", "a").
			file("d", "not a symlink").
			add(tar.Header{Name: "e", Typeflag: tar.TypeDir, Mode: 0o700}, "").
			add(tar.Header{Name: "e", Typeflag: tar.TypeDir, Mode: 0o751}, "").
			bytes(), m)
		if got := readFile(t, s.path("a")); got != "two" {
			t.Errorf("a = %q", got)
		}
		// The earlier entry's hardlink keeps the earlier content: the
		// second "a" is a new file, not a rewrite of the first.
		if got := readFile(t, s.path("a-link")); got != "one" {
			t.Errorf("a-link = %q", got)
		}
		if got := readFile(t, s.path("b/inside")); got != "x" {
			t.Errorf("b/inside = %q", got)
		}
		if got := readFile(t, s.path("c")); got != "file now" {
			t.Errorf("c = %q", got)
		}
		if got := readFile(t, s.path("d")); got != "not a symlink" {
			t.Errorf("d = %q", got)
		}
		if got := lstat(t, s.path("e")).Mode & 0o7777; got != 0o751 {
			t.Errorf("e mode %o", got)
		}
	})
}

func TestNULInNameFails(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	// A long name goes into a PAX "path" record; swap a marker byte in the
	// record (which has no checksum) for a NUL.
	name := strings.Repeat("n", 120) + "\x01" + "tail"
	b := newLayer(t).file("before", "x").file(name, "x").bytes()
	i := bytes.IndexByte(b[1024:], 0x01)
	if i < 0 {
		t.Fatal("marker not found")
	}
	b[1024+i] = 0
	_, err := applyIn(t, s.root, b, nativeMode)
	wantErr(t, err, `after entry "before"`, "invalid tar header")

	if _, err := cleanPath("a\x00b"); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("cleanPath with a NUL: %v", err)
	}
}

func TestVeryLongNamesFail(t *testing.T) {
	requireRoot(t)
	forEachMode(t, func(t *testing.T, m mode) {
		s := newSandbox(t)
		longComponent := "d/" + strings.Repeat("c", 300)
		_, err := applyIn(t, s.root, newLayer(t).file(longComponent, "x").bytes(), m)
		wantErr(t, err, "file name too long", "ccccc")

		longPath := strings.Repeat(strings.Repeat("p", 100)+"/", 50) + "f"
		_, err = applyIn(t, s.root, newLayer(t).file(longPath, "x").bytes(), m)
		wantErr(t, err, "the limit is 4095", "...")
		if len(err.Error()) > 600 {
			t.Errorf("error message is %d bytes long", len(err.Error()))
		}

		_, err = applyIn(t, s.root, newLayer(t).symlink("s", strings.Repeat("t", 5000)).bytes(), m)
		wantErr(t, err, `"s"`, "symlink")
	})
}

func TestUnsupportedEntryTypeFails(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	_, err := applyIn(t, s.root, newLayer(t).add(tar.Header{Name: "vol", Typeflag: 'V'}, "").bytes(), nativeMode)
	wantErr(t, err, `"vol"`, "unsupported")
}

func TestContextCancellationStopsApply(t *testing.T) {
	requireRoot(t)
	t.Run("before", func(t *testing.T) {
		s := newSandbox(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Apply(ctx, s.root, bytes.NewReader(newLayer(t).file("a", "x").bytes()), Options{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if exists(s.path("a")) {
			t.Error("a was created")
		}
	})
	t.Run("between entries", func(t *testing.T) {
		s := newSandbox(t)
		l := newLayer(t)
		for i := range 100 {
			l.file("f"+itoa(i), strings.Repeat("x", 10000))
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &cancelAfter{r: bytes.NewReader(l.bytes()), n: 200_000, cancel: cancel}
		st, err := Apply(ctx, s.root, r, Options{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if st.Entries >= 100 {
			t.Errorf("applied all %d entries", st.Entries)
		}
	})
	t.Run("in a large file", func(t *testing.T) {
		s := newSandbox(t)
		var hdr bytes.Buffer
		tw := tar.NewWriter(&hdr)
		if err := tw.WriteHeader(&tar.Header{Name: "endless", Typeflag: tar.TypeReg, Size: 1 << 50, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &cancelAfter{r: &endless{prefix: hdr.Bytes()}, n: 8 << 20, cancel: cancel}
		_, err := Apply(ctx, s.root, r, Options{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		wantErr(t, err, `"endless"`)
	})
}

// cancelAfter cancels after n bytes have been read through it.
type cancelAfter struct {
	r      interface{ Read([]byte) (int, error) }
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// endless is prefix followed by zeros forever.
type endless struct{ prefix []byte }

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.prefix)
	e.prefix = e.prefix[n:]
	clear(p[n:])
	return len(p), nil
}

func TestApplyIntoMissingDirFails(t *testing.T) {
	_, err := Apply(context.Background(), filepath.Join(t.TempDir(), "missing"), bytes.NewReader(nil), Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
