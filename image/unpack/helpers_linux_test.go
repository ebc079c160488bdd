//go:build linux

package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// epoch is the mtime of test entries unless a test sets its own.
var epoch = time.Unix(1_700_000_000, 0)

// layer builds a tar stream in memory, one entry per call.
type layer struct {
	t   testing.TB
	buf bytes.Buffer
	tw  *tar.Writer
}

func newLayer(t testing.TB) *layer {
	l := &layer{t: t}
	l.tw = tar.NewWriter(&l.buf)
	return l
}

// modeZero asks add for mode 0, which it otherwise takes as "default".
const modeZero = 0o10000000

// add writes hdr (defaults: mode 0644/0755, mtime epoch, PAX format so any
// name fits) and body.
func (l *layer) add(hdr tar.Header, body string) *layer {
	l.t.Helper()
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		if err := l.tw.WriteHeader(&hdr); err != nil {
			l.t.Fatalf("tar global header: %v", err)
		}
		return l
	}
	if hdr.Mode == modeZero {
		hdr.Mode = 0
	} else if hdr.Mode == 0 {
		hdr.Mode = 0o644
		if hdr.Typeflag == tar.TypeDir {
			hdr.Mode = 0o755
		}
	}
	if hdr.ModTime.IsZero() {
		hdr.ModTime = epoch
	}
	if hdr.Typeflag == tar.TypeReg {
		hdr.Size = int64(len(body))
	}
	hdr.Format = tar.FormatPAX
	if err := l.tw.WriteHeader(&hdr); err != nil {
		l.t.Fatalf("tar header %q: %v", hdr.Name, err)
	}
	if body != "" {
		if _, err := l.tw.Write([]byte(body)); err != nil {
			l.t.Fatalf("tar body %q: %v", hdr.Name, err)
		}
	}
	return l
}

func (l *layer) file(name, body string) *layer {
	return l.add(tar.Header{Name: name, Typeflag: tar.TypeReg}, body)
}

func (l *layer) dir(name string) *layer {
	return l.add(tar.Header{Name: name, Typeflag: tar.TypeDir}, "")
}

func (l *layer) symlink(name, target string) *layer {
	return l.add(tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}, "")
}

func (l *layer) hardlink(name, target string) *layer {
	return l.add(tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}, "")
}

func (l *layer) bytes() []byte {
	l.t.Helper()
	if err := l.tw.Close(); err != nil {
		l.t.Fatalf("closing tar: %v", err)
	}
	return l.buf.Bytes()
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the applier chowns, mknods and sets trusted.* xattrs")
	}
}

// mode is one way of applying layers; hostile-layer tests run in all of them.
type mode struct {
	name      string
	opts      Options
	noOpenat2 bool
}

var (
	nativeMode  = mode{name: "native"}
	overlayMode = mode{name: "overlay", opts: Options{OverlayWhiteouts: true}}
	// The resolution a kernel without openat2 gets (securejoin itself
	// still uses openat2 when the kernel has it).
	securejoinMode = mode{name: "native-securejoin", noOpenat2: true}
	modes          = []mode{nativeMode, overlayMode, securejoinMode}
)

func forEachMode(t *testing.T, f func(t *testing.T, m mode)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { f(t, m) })
	}
}

func applyIn(t testing.TB, dir string, tarball []byte, m mode) (Stats, error) {
	t.Helper()
	return apply(context.Background(), dir, bytes.NewReader(tarball), m.opts, m.noOpenat2)
}

func mustApply(t testing.TB, dir string, tarball []byte, m mode) Stats {
	t.Helper()
	st, err := applyIn(t, dir, tarball, m)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return st
}

// sandbox is a test's world: root is the directory layers are applied to,
// outside a sibling holding the canary that no layer may touch.
type sandbox struct {
	base, root, outside, canary string
	before                      map[string]string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	base := t.TempDir()
	s := &sandbox{
		base:    base,
		root:    filepath.Join(base, "root"),
		outside: filepath.Join(base, "outside"),
		canary:  filepath.Join(base, "outside", "canary"),
	}
	for _, d := range []string{s.root, s.outside, filepath.Join(s.outside, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(s.canary, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Make the canary's times distinctive so a stray utimensat shows.
	old := time.Unix(1_000_000_000, 0)
	for _, p := range []string{s.canary, filepath.Join(s.outside, "sub"), s.outside} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	s.before = s.snapshot(t)
	t.Cleanup(func() { s.check(t) })
	return s
}

// snapshot describes everything under base except root: type, mode, owner,
// times, link count, size, content and xattrs.
func (s *sandbox) snapshot(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(s.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.root {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d nlink=%d size=%d mtime=%d.%d ino=%d",
			st.Mode, st.Uid, st.Gid, st.Nlink, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ino)
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
		}
		if d.Type()&fs.ModeSymlink == 0 {
			desc += " xattrs=" + listXattrs(p)
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of %s: %v", s.base, err)
	}
	return out
}

// check fails the test if anything outside root changed or appeared.
func (s *sandbox) check(t testing.TB) {
	t.Helper()
	after := s.snapshot(t)
	for p, b := range s.before {
		if a, ok := after[p]; !ok {
			t.Errorf("outside the root: %s disappeared", p)
		} else if a != b {
			t.Errorf("outside the root: %s changed:\n before %s\n after  %s", p, b, a)
		}
	}
	for p := range after {
		if _, ok := s.before[p]; !ok {
			t.Errorf("outside the root: %s was created", p)
		}
	}
}

func (s *sandbox) path(rel string) string { return filepath.Join(s.root, rel) }

func listXattrs(p string) string {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return ""
	}
	buf := make([]byte, sz)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return "?"
	}
	return strings.ReplaceAll(string(buf[:n]), "\x00", ",")
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func wantErr(t testing.TB, err error, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Apply succeeded, want an error mentioning %q", substrs)
	}
	t.Logf("error, as wanted: %v", err)
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %q", err, s)
		}
	}
}

// rel turns an absolute host path into the same path as a tar name.
func rel(abs string) string { return strings.TrimPrefix(abs, "/") }
