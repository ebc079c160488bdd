package copier

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests use a temp dir as a container's root; no container is needed.
// They run as root (copies chown), as hull cp does.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: copies chown what they write")
	}
}

var mtime = time.Unix(1_600_000_000, 123456789)

// sandbox is a test's world: root is the "container", host a directory on
// the host side, outside holds a canary that nothing may touch.
type sandbox struct {
	base, root, host, outside, canary string
	ctr, hostRoot                     *Root
	before                            map[string]string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	requireRoot(t)
	base := t.TempDir()
	s := &sandbox{base: base, root: filepath.Join(base, "root"), host: filepath.Join(base, "host"),
		outside: filepath.Join(base, "outside"), canary: filepath.Join(base, "outside", "canary")}
	for _, d := range []string{s.root, s.host, s.outside} {
		must(t, os.Mkdir(d, 0o755))
	}
	must(t, os.WriteFile(s.canary, []byte("precious"), 0o644))
	fillTree(t, s.root)
	// Hostile links: to the root's "/" three ways, to /etc, and to the
	// canary's host directory by its absolute host path.
	for link, target := range map[string]string{"evil": "/", "evil2": "../../..", "abs": "/etc", "out": s.outside, "loop": "loop"} {
		must(t, os.Symlink(target, filepath.Join(s.root, link)))
	}
	var err error
	s.ctr, err = OpenRoot(s.root, "in container test")
	must(t, err)
	s.hostRoot, err = OpenRoot("/", "on the host")
	must(t, err)
	s.before = snapshotDir(t, s.outside)
	t.Cleanup(func() {
		s.ctr.Close()
		s.hostRoot.Close()
		after := snapshotDir(t, s.outside)
		if !equalMaps(s.before, after) {
			t.Errorf("outside the root changed:\n before %v\n after  %v", s.before, after)
		}
	})
	return s
}

// fillTree makes the test tree in dir: etc/passwd, file, and dir with a
// subdirectory, a symlink, hardlinks and distinctive modes and times.
func fillTree(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"etc", "dir", "dir/sub"} {
		must(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	files := map[string]string{"etc/passwd": "container passwd", "file": "F", "dir/a": "A", "dir/sub/b": "B", "dir/hard1": "H"}
	for n, body := range files {
		must(t, os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644))
	}
	must(t, os.Chmod(filepath.Join(dir, "dir/a"), 0o751))
	must(t, os.Chmod(filepath.Join(dir, "dir/sub"), 0o701))
	must(t, os.Link(filepath.Join(dir, "dir/hard1"), filepath.Join(dir, "dir/hard2")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(dir, "dir/link")))
	for _, n := range []string{"dir/a", "dir/sub/b", "dir/sub", "dir", "file"} {
		must(t, os.Chtimes(filepath.Join(dir, n), mtime, mtime))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshotDir describes everything under dir: type, mode, owner, times,
// size, content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d mtime=%d.%d", st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not mention %q", err, substr)
	}
}

var ctx = context.Background()

var toRoot = &Owner{UID: 0, GID: 0}

// hostName is a name that no host file has, for files that must not appear
// in the host's "/" or /etc.
func hostName(t *testing.T, s string) string {
	n := fmt.Sprintf("hull-copier-test-%d-%s", os.Getpid(), s)
	for _, p := range []string{"/" + n, "/etc/" + n} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists before the test", p)
		}
		t.Cleanup(func() {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("the copy escaped: %s exists on the host", p)
				os.Remove(p)
			}
		})
	}
	return n
}

func TestCopyInThroughHostileSymlinksLandsInsideTheRoot(t *testing.T) {
	s := newSandbox(t)
	src := filepath.Join(s.host, "payload")
	must(t, os.WriteFile(src, []byte("payload"), 0o644))
	n1, n2, n3 := hostName(t, "1"), hostName(t, "2"), hostName(t, "3")
	for dst, landsAt := range map[string]string{
		"evil/" + n1:       n1,
		"/evil2/" + n2:     n2,
		"abs/" + n3:        "etc/" + n3,
		"evil/evil2/abs/x": "etc/x",
		"evil/etc/../file": "file", // over an existing file: replaced
		"evil/../dir/.":    "dir/payload",
	} {
		if _, err := Copy(ctx, s.hostRoot, src, s.ctr, dst, Options{Owner: toRoot}); err != nil {
			t.Fatalf("copy to %s: %v", dst, err)
		}
		if got := readFile(t, filepath.Join(s.root, landsAt)); got != "payload" {
			t.Errorf("copy to %s: root/%s = %q", dst, landsAt, got)
		}
	}
	// A symlink to the canary's absolute host path is resolved in the root,
	// where that directory does not exist.
	for _, dst := range []string{"out/canary", "out/new", "out/"} {
		_, err := Copy(ctx, s.hostRoot, src, s.ctr, dst, Options{Owner: toRoot})
		wantErr(t, err, "could not find the directory")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%v is not fs.ErrNotExist", err)
		}
	}
	// A directory copied through the links lands inside too.
	if _, err := Copy(ctx, s.hostRoot, src, s.ctr, "evil/evil/abs/", Options{Owner: toRoot}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.root, "etc/payload")); got != "payload" {
		t.Errorf("etc/payload = %q", got)
	}
	// A symlink loop as the destination is an error, not a hang.
	_, err := Copy(ctx, s.hostRoot, src, s.ctr, "loop/x", Options{})
	wantErr(t, err, "too many levels of symbolic links")
}

func TestCopyOutThroughHostileSymlinksReadsOnlyTheRoot(t *testing.T) {
	s := newSandbox(t)
	for i, src := range []string{"evil/etc/passwd", "evil2/etc/passwd", "abs/passwd", "/evil/evil2/../abs/passwd", "evil/dir/link"} {
		dst := filepath.Join(s.host, fmt.Sprint(i))
		res, err := Copy(ctx, s.ctr, src, s.hostRoot, dst, Options{FollowLink: true, Owner: &Owner{UID: 0, GID: 0}, Sanitize: true})
		if err != nil {
			t.Fatalf("copy out %s: %v", src, err)
		}
		if got := readFile(t, dst); got != "container passwd" {
			t.Errorf("copy out %s read %q", src, got)
		}
		if res.Bytes != int64(len("container passwd")) {
			t.Errorf("copy out %s: %+v", src, res)
		}
	}
	for _, src := range []string{"out/canary", "evil" + s.canary} {
		_, err := Copy(ctx, s.ctr, src, s.hostRoot, filepath.Join(s.host, "canary"), Options{})
		wantErr(t, err, "could not find the file /"+strings.TrimPrefix(src, "/")+" in container test")
	}
	var buf bytes.Buffer
	if _, err := WriteArchive(ctx, &buf, s.ctr, "evil2/etc/passwd", false); err != nil {
		t.Fatal(err)
	}
	if got := tarContents(t, buf.Bytes()); !slices.Equal(got, []string{"passwd f container passwd"}) {
		t.Errorf("tar: %q", got)
	}
}

// tarContents lists a tar stream's entries as "name type [content|target]".
func tarContents(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		switch hdr.Typeflag {
		case tar.TypeReg:
			body, err := io.ReadAll(tr)
			must(t, err)
			out = append(out, fmt.Sprintf("%s f %s", hdr.Name, body))
		case tar.TypeDir:
			out = append(out, hdr.Name+" d")
		case tar.TypeSymlink:
			out = append(out, fmt.Sprintf("%s l %s", hdr.Name, hdr.Linkname))
		case tar.TypeLink:
			out = append(out, fmt.Sprintf("%s h %s", hdr.Name, hdr.Linkname))
		default:
			out = append(out, fmt.Sprintf("%s %c", hdr.Name, hdr.Typeflag))
		}
	}
}

// listTree describes the tree under dir as "rel type [content|target]".
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(dir, p)
		switch {
		case d.Type().IsRegular():
			out = append(out, r+" f "+readFile(t, p))
		case d.IsDir():
			out = append(out, r+" d")
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, r+" l "+target)
		}
		return nil
	})
	must(t, err)
	return out
}

var dirTree = []string{"a f A", "hard1 f H", "hard2 f H", "link l /etc/passwd", "sub d", "sub/b f B"}

func under(prefix string, names []string) []string {
	out := []string{prefix + " d"}
	if prefix == "." {
		out = out[:0]
	}
	for _, n := range names {
		if prefix == "." {
			out = append(out, n)
		} else {
			out = append(out, prefix+"/"+n)
		}
	}
	return out
}

// TestDockerRules runs docker cp's documented cases both ways: out of the
// "container" onto the host, and from the host into the "container".
func TestDockerRules(t *testing.T) {
	cases := []struct {
		name, src, dst string
		prepare        func(t *testing.T, dst string) // dst: the destination directory
		want           []string                       // the destination directory afterwards
		wantErr        string
	}{
		{name: "file to a missing path is created as it", src: "file", dst: "new",
			want: []string{". d", "new f F"}},
		{name: "file to an existing directory goes under its name", src: "file", dst: "",
			want: []string{". d", "file f F"}},
		{name: "file over an existing file replaces it", src: "file", dst: "old",
			prepare: func(t *testing.T, d string) {
				must(t, os.WriteFile(filepath.Join(d, "old"), []byte("old content"), 0o600))
			},
			want: []string{". d", "old f F"}},
		{name: "file to a missing path ending in / fails", src: "file", dst: "nodir/",
			wantErr: "/nodir/ does not exist"},
		{name: "file into a missing parent fails", src: "file", dst: "no/such",
			wantErr: "/no (on the way to "},
		{name: "file into a symlink to a directory goes into its target", src: "file", dst: "linkdir",
			prepare: func(t *testing.T, d string) {
				must(t, os.Mkdir(filepath.Join(d, "real"), 0o755))
				must(t, os.Symlink("real", filepath.Join(d, "linkdir")))
			},
			want: []string{". d", "linkdir l real", "real d", "real/file f F"}},
		{name: "directory to a missing path is created with its contents", src: "dir", dst: "copy",
			want: append([]string{". d"}, under("copy", dirTree)...)},
		{name: "directory to a missing path ending in / is created too", src: "dir", dst: "copy/",
			want: append([]string{". d"}, under("copy", dirTree)...)},
		{name: "directory to an existing directory goes under its name", src: "dir", dst: "",
			want: append([]string{". d"}, under("dir", dirTree)...)},
		{name: "directory/. to an existing directory copies its contents", src: "dir/.", dst: "",
			want: append([]string{". d"}, under(".", dirTree)...)},
		{name: "directory/. to a missing path is created with its contents", src: "dir/.", dst: "c",
			want: append([]string{". d"}, under("c", dirTree)...)},
		{name: "directory over a file fails", src: "dir", dst: "old",
			prepare: func(t *testing.T, d string) { must(t, os.WriteFile(filepath.Join(d, "old"), nil, 0o600)) },
			wantErr: "it exists and is not a directory"},
		{name: "file over a directory of its name fails", src: "file", dst: "",
			prepare: func(t *testing.T, d string) { must(t, os.Mkdir(filepath.Join(d, "file"), 0o755)) },
			wantErr: "cannot overwrite a directory with a non-directory"},
		{name: "a symlink is copied as a symlink", src: "dir/link", dst: "l",
			want: []string{". d", "l l /etc/passwd"}},
		{name: "a missing source fails", src: "nope", dst: "x",
			wantErr: "/nope "},
		{name: "a source under a file fails", src: "file/x", dst: "x",
			wantErr: "not a directory"},
	}
	for _, dir := range []string{"out", "in"} {
		for _, tc := range cases {
			t.Run(dir+"/"+tc.name, func(t *testing.T) {
				s := newSandbox(t)
				tree := filepath.Join(s.base, "tree")
				must(t, os.Mkdir(tree, 0o755))
				fillTree(t, tree)
				dest := filepath.Join(s.base, "dest")
				must(t, os.Mkdir(dest, 0o755))
				if tc.prepare != nil {
					tc.prepare(t, dest)
				}
				var err error
				if dir == "out" {
					_, err = Copy(ctx, s.ctr, "/"+tc.src, s.hostRoot, dest+"/"+tc.dst, Options{Owner: toRoot, Sanitize: true})
				} else {
					var dr *Root
					dr, err = OpenRoot(dest, "in container test")
					must(t, err)
					defer dr.Close()
					_, err = Copy(ctx, s.hostRoot, tree+"/"+tc.src, dr, tc.dst, Options{Owner: toRoot})
				}
				if tc.wantErr != "" {
					wantErr(t, err, tc.wantErr)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := listTree(t, dest); !slices.Equal(got, tc.want) {
					t.Errorf("destination:\n got  %q\n want %q", got, tc.want)
				}
			})
		}
	}
}

func TestMetadataIsKept(t *testing.T) {
	s := newSandbox(t)
	must(t, os.Chown(filepath.Join(s.root, "dir/a"), 1234, 5678))
	dst := filepath.Join(s.host, "copy")
	if _, err := Copy(ctx, s.ctr, "dir", s.hostRoot, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	var a, sub, h1, h2, d unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dst, "a"), &a))
	must(t, unix.Lstat(filepath.Join(dst, "sub"), &sub))
	must(t, unix.Lstat(filepath.Join(dst, "hard1"), &h1))
	must(t, unix.Lstat(filepath.Join(dst, "hard2"), &h2))
	must(t, unix.Lstat(dst, &d))
	if a.Mode&0o7777 != 0o751 || sub.Mode&0o7777 != 0o701 {
		t.Errorf("modes %o %o", a.Mode, sub.Mode)
	}
	if a.Uid != 1234 || a.Gid != 5678 {
		t.Errorf("without an owner the ids are kept: %d:%d", a.Uid, a.Gid)
	}
	for n, st := range map[string]unix.Stat_t{"a": a, "sub": sub, ".": d} {
		if st.Mtim.Sec != mtime.Unix() || st.Mtim.Nsec != int64(mtime.Nanosecond()) {
			t.Errorf("%s mtime %d.%d", n, st.Mtim.Sec, st.Mtim.Nsec)
		}
	}
	if h1.Ino != h2.Ino || h1.Nlink != 2 {
		t.Errorf("hardlinks not kept: inodes %d %d, nlink %d", h1.Ino, h2.Ino, h1.Nlink)
	}
	// With an owner, everything is the owner's.
	dst2 := filepath.Join(s.host, "copy2")
	if _, err := Copy(ctx, s.ctr, "dir", s.hostRoot, dst2, Options{Owner: &Owner{UID: 42, GID: 43}}); err != nil {
		t.Fatal(err)
	}
	must(t, unix.Lstat(filepath.Join(dst2, "a"), &a))
	if a.Uid != 42 || a.Gid != 43 {
		t.Errorf("owner %d:%d, want 42:43", a.Uid, a.Gid)
	}
}

func TestSanitizeDropsSetuidAndDevices(t *testing.T) {
	s := newSandbox(t)
	suid := filepath.Join(s.root, "dir/suid")
	must(t, os.WriteFile(suid, []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chmod(suid, 0o755|os.ModeSetuid|os.ModeSetgid))
	must(t, unix.Mknod(filepath.Join(s.root, "dir/disk"), unix.S_IFBLK|0o666, int(unix.Mkdev(8, 0))))
	must(t, unix.Mkfifo(filepath.Join(s.root, "dir/fifo"), 0o644))
	dst := filepath.Join(s.host, "safe")
	res, err := Copy(ctx, s.ctr, "dir", s.hostRoot, dst, Options{Owner: toRoot, Sanitize: true})
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dst, "suid"), &st))
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		t.Errorf("suid copied out with mode %o", st.Mode)
	}
	if _, err := os.Lstat(filepath.Join(dst, "disk")); !os.IsNotExist(err) {
		t.Errorf("the device node was copied out: %v", err)
	}
	if !slices.Equal(res.Skipped, []string{"/dir/disk"}) {
		t.Errorf("skipped %q", res.Skipped)
	}
	must(t, unix.Lstat(filepath.Join(dst, "fifo"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: mode %o", st.Mode)
	}
	// Archive mode keeps them.
	dst = filepath.Join(s.host, "archive")
	if _, err := Copy(ctx, s.ctr, "dir", s.hostRoot, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	must(t, unix.Lstat(filepath.Join(dst, "suid"), &st))
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) != unix.S_ISUID|unix.S_ISGID {
		t.Errorf("-a lost the suid bits: %o", st.Mode)
	}
	must(t, unix.Lstat(filepath.Join(dst, "disk"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != unix.Mkdev(8, 0) {
		t.Errorf("-a device: mode %o rdev %d", st.Mode, st.Rdev)
	}
}

func TestFollowLink(t *testing.T) {
	s := newSandbox(t)
	// Without -L the symlink itself; with it, what it points to, resolved
	// in the root.
	if _, err := Copy(ctx, s.ctr, "abs", s.hostRoot, filepath.Join(s.host, "nofollow"), Options{}); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(s.host, "nofollow")); err != nil || target != "/etc" {
		t.Errorf("nofollow -> %q, %v", target, err)
	}
	if _, err := Copy(ctx, s.ctr, "abs", s.hostRoot, filepath.Join(s.host, "follow"), Options{FollowLink: true}); err != nil {
		t.Fatal(err)
	}
	if got := listTree(t, filepath.Join(s.host, "follow")); !slices.Equal(got, []string{". d", "passwd f container passwd"}) {
		t.Errorf("follow: %q", got)
	}
}

func TestArchiveStreams(t *testing.T) {
	s := newSandbox(t)
	var buf bytes.Buffer
	if _, err := WriteArchive(ctx, &buf, s.ctr, "/dir", false); err != nil {
		t.Fatal(err)
	}
	want := []string{"dir/ d", "dir/a f A", "dir/hard1 f H", "dir/hard2 h dir/hard1", "dir/link l /etc/passwd", "dir/sub/ d", "dir/sub/b f B"}
	if got := tarContents(t, buf.Bytes()); !slices.Equal(got, want) {
		t.Errorf("tar of /dir:\n got  %q\n want %q", got, want)
	}
	buf.Reset()
	if _, err := WriteArchive(ctx, &buf, s.ctr, "/dir/sub/.", false); err != nil {
		t.Fatal(err)
	}
	if got := tarContents(t, buf.Bytes()); !slices.Equal(got, []string{". d", "b f B"}) {
		t.Errorf("tar of /dir/sub/.: %q", got)
	}

	// Into the container: whiteout names are plain files, ownership is
	// the Owner's, entries cannot climb out.
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, e := range []struct {
		name, body string
		uid        int
	}{{".wh.a", "not a whiteout", 1000}, {"new/x", "x", 1000}, {".wh..wh..opq", "", 0}} {
		must(t, tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.body)), Uid: e.uid, ModTime: mtime}))
		_, err := tw.Write([]byte(e.body))
		must(t, err)
	}
	must(t, tw.Close())
	in.WriteString("trailing bytes after the archive")
	r := bytes.NewReader(in.Bytes())
	if _, err := ExtractArchive(ctx, r, s.ctr, "evil/dir", Options{Owner: toRoot}); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes of stdin left unread", r.Len())
	}
	if got := readFile(t, filepath.Join(s.root, "dir/.wh.a")); got != "not a whiteout" {
		t.Errorf(".wh.a = %q", got)
	}
	if got := readFile(t, filepath.Join(s.root, "dir/a")); got != "A" {
		t.Errorf("the whiteout name deleted a: %q", got)
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(s.root, "dir/new/x"), &st))
	if st.Uid != 0 {
		t.Errorf("owner %d, want 0", st.Uid)
	}
	_, err := ExtractArchive(ctx, bytes.NewReader(in.Bytes()), s.ctr, "file", Options{})
	wantErr(t, err, "the destination /file in container test must be a directory")
	_, err = ExtractArchive(ctx, bytes.NewReader(in.Bytes()), s.ctr, "missing", Options{})
	wantErr(t, err, "the destination /missing in container test must be a directory")

	var bad bytes.Buffer
	tw = tar.NewWriter(&bad)
	must(t, tw.WriteHeader(&tar.Header{Name: "../../outside/canary", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}))
	_, _ = tw.Write([]byte("x"))
	must(t, tw.Close())
	_, err = ExtractArchive(ctx, &bad, s.ctr, "/", Options{})
	wantErr(t, err, "escapes the root")
}

func TestPseudoFilesystemsAreNotCopied(t *testing.T) {
	s := newSandbox(t)
	_, err := Copy(ctx, s.hostRoot, "/proc/self/status", s.ctr, "x", Options{})
	wantErr(t, err, "it is on a proc filesystem")
	_, err = Copy(ctx, s.ctr, "file", s.hostRoot, "/proc/self/", Options{})
	wantErr(t, err, "it is on a proc filesystem")
	_, err = ExtractArchive(ctx, strings.NewReader(""), s.hostRoot, "/sys/kernel", Options{})
	wantErr(t, err, "it is on a sysfs filesystem")
	_, err = WriteArchive(ctx, io.Discard, s.hostRoot, "/proc/self/environ", false)
	wantErr(t, err, "it is on a proc filesystem")
	// Magic links are refused outright.
	_, err = WriteArchive(ctx, io.Discard, s.hostRoot, "/proc/self/root/etc/hostname", false)
	wantErr(t, err, "too many levels of symbolic links")
}

// TestSwappingPathsDuringCopiesStaysInTheRoot swaps a directory of the root
// with a symlink to the canary's directory (by its host path) and to "/"
// as fast as it can while copies go in and out through it: whatever each
// copy gets, it never reads or writes outside the root.
func TestSwappingPathsDuringCopiesStaysInTheRoot(t *testing.T) {
	s := newSandbox(t)
	race := filepath.Join(s.root, "race")
	must(t, os.Mkdir(race, 0o755))
	must(t, os.WriteFile(filepath.Join(race, "canary"), []byte("inside"), 0o644))
	must(t, os.Symlink(s.outside, filepath.Join(s.root, "race-link")))
	must(t, os.Symlink("/", filepath.Join(s.root, "race-root")))
	src := filepath.Join(s.host, "payload")
	must(t, os.WriteFile(src, []byte("payload"), 0o644))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			other := filepath.Join(s.root, []string{"race-link", "race-root"}[i%2])
			_ = unix.Renameat2(unix.AT_FDCWD, race, unix.AT_FDCWD, other, unix.RENAME_EXCHANGE)
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	n := 0
	for ; time.Now().Before(deadline); n++ {
		_, _ = Copy(ctx, s.hostRoot, src, s.ctr, "race/canary", Options{Owner: toRoot})
		_, _ = Copy(ctx, s.hostRoot, src, s.ctr, fmt.Sprintf("race/new%d", n), Options{Owner: toRoot})
		dst := filepath.Join(s.host, fmt.Sprint("out", n))
		if _, err := Copy(ctx, s.ctr, "race/canary", s.hostRoot, dst, Options{}); err == nil {
			if got := readFile(t, dst); got != "inside" && got != "payload" {
				t.Fatalf("copy out read %q", got)
			}
		}
		var buf bytes.Buffer
		if _, err := WriteArchive(ctx, &buf, s.ctr, "race", true); err == nil {
			for _, e := range tarContents(t, buf.Bytes()) {
				if strings.Contains(e, "precious") {
					t.Fatalf("the archive holds the canary: %q", e)
				}
			}
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d rounds of copies while swapping", n)
}
