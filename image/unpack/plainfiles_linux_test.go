//go:build linux

package unpack

import (
	"testing"

	"golang.org/x/sys/unix"
)

// plainMode is how `hull cp` applies a stream: plain files, not a layer.
var plainMode = mode{name: "plain", opts: Options{NoWhiteouts: true, NoOverwriteDirNonDir: true}}

func TestNoWhiteoutsCreatesWhiteoutNamesAsPlainFiles(t *testing.T) {
	requireRoot(t)
	for _, m := range []mode{plainMode, {name: "plain-overlay", opts: Options{NoWhiteouts: true, OverlayWhiteouts: true}}} {
		t.Run(m.name, func(t *testing.T) {
			s := newSandbox(t)
			mustApply(t, s.root, lowerLayer(t), nativeMode)
			st := mustApply(t, s.root, newLayer(t).
				dir("etc").
				file("etc/.wh.gone", "a user's file").
				file("etc/.wh.gonedir", "").
				file("etc/.wh..wh.plnk", "").
				dir("d/.wh..wh..opq").
				bytes(), m)
			// Nothing was deleted or hidden ...
			for _, p := range []string{"etc/gone", "etc/gonedir/f", "etc/keep", "d/old", "d/sub/old2"} {
				if fst := lstat(t, s.path(p)); fst.Mode&unix.S_IFMT == unix.S_IFCHR {
					t.Errorf("%s became a whiteout device", p)
				}
			}
			// ... and the names are there as what the entries are.
			if got := readFile(t, s.path("etc/.wh.gone")); got != "a user's file" {
				t.Errorf("etc/.wh.gone = %q", got)
			}
			for _, p := range []string{"etc/.wh.gonedir", "etc/.wh..wh.plnk"} {
				if fst := lstat(t, s.path(p)); fst.Mode&unix.S_IFMT != unix.S_IFREG {
					t.Errorf("%s: mode %o, want a regular file", p, fst.Mode)
				}
			}
			if fst := lstat(t, s.path("d/.wh..wh..opq")); fst.Mode&unix.S_IFMT != unix.S_IFDIR {
				t.Errorf("d/.wh..wh..opq: mode %o, want a directory", fst.Mode)
			}
			if listXattrs(s.path("d")) != "" {
				t.Errorf("d has xattrs %q", listXattrs(s.path("d")))
			}
			if st.Entries != 5 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestNoWhiteoutsStillRefusesEscapes(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	// A symlink out of the root used as a parent stays inside the root,
	// whiteout names or not.
	mustApply(t, s.root, newLayer(t).
		symlink("out", "../..").
		file("out/.wh.canary", "inside").
		bytes(), plainMode)
	if got := readFile(t, s.path(".wh.canary")); got != "inside" {
		t.Errorf(".wh.canary in the root = %q", got)
	}
	_, err := applyIn(t, s.root, newLayer(t).file("../outside/.wh.canary", "x").bytes(), plainMode)
	wantErr(t, err, "escapes")
}

func TestNoOverwriteDirNonDirRefusesToReplaceAcrossKinds(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	mustApply(t, s.root, newLayer(t).
		dir("dir").
		file("dir/child", "precious tree").
		file("file", "a file").
		symlink("link", "file").
		bytes(), nativeMode)
	for _, tc := range []struct {
		name  string
		layer []byte
		want  string
	}{
		{"file over dir", newLayer(t).file("dir", "x").bytes(), "cannot overwrite a directory with a non-directory"},
		{"symlink over dir", newLayer(t).symlink("dir", "x").bytes(), "cannot overwrite a directory with a non-directory"},
		{"hardlink over dir", newLayer(t).hardlink("dir", "file").bytes(), "cannot overwrite a directory with a non-directory"},
		{"dir over file", newLayer(t).dir("file").bytes(), "cannot overwrite a non-directory with a directory"},
		{"dir over symlink", newLayer(t).dir("link").bytes(), "cannot overwrite a non-directory with a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := applyIn(t, s.root, tc.layer, plainMode)
			wantErr(t, err, tc.want)
		})
	}
	if got := readFile(t, s.path("dir/child")); got != "precious tree" {
		t.Errorf("dir/child = %q", got)
	}
	// Same kind still replaces: a file over a file or a symlink, a
	// directory into a directory.
	mustApply(t, s.root, newLayer(t).
		file("file", "new").
		file("link", "file over symlink").
		dir("dir").
		file("dir/child2", "added").
		bytes(), plainMode)
	for p, want := range map[string]string{"file": "new", "link": "file over symlink", "dir/child": "precious tree", "dir/child2": "added"} {
		if got := readFile(t, s.path(p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
}
