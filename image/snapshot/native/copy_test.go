package native

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// On a filesystem that shares extents (XFS with reflink here), files are
// cloned, not copied. Skipped where mkfs.xfs or loop devices are missing.
func TestCopyReflinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		t.Skip("no mkfs.xfs")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 320<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.xfs: %v: %s", err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("mount -o loop: %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		// util-linux frees the loop device (autoclear) on the unmount.
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	src, dst := filepath.Join(mnt, "src"), filepath.Join(mnt, "dst")
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := os.WriteFile(filepath.Join(src, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := &copier{ctx: t.Context(), links: map[fileID]string{}}
	if err := c.copyDir(src, dst); err != nil {
		t.Fatal(err)
	}
	if c.noReflink || c.cloned != 1 {
		t.Errorf("FICLONE on XFS with reflink=1: %d files cloned, noReflink %v; want 1 and false", c.cloned, c.noReflink)
	}
	got, err := os.ReadFile(filepath.Join(dst, "f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the clone's data differs (%v)", err)
	}
	var before, after unix.Statfs_t
	if err := unix.Statfs(mnt, &before); err != nil {
		t.Fatal(err)
	}
	// A clone allocates no data blocks: a second one leaves free space as it
	// was (give or take metadata).
	if err := os.Mkdir(filepath.Join(mnt, "dst2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.copyDir(src, filepath.Join(mnt, "dst2")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(mnt, &after); err != nil {
		t.Fatal(err)
	}
	if used := int64(before.Bfree-after.Bfree) * before.Bsize; used > 256<<10 {
		t.Errorf("a clone of 1 MiB used %d bytes", used)
	}
}
