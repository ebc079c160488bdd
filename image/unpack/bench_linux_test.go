//go:build linux

package unpack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// syntheticLayer is a layer shaped like a distro base image: many small files
// in a few hundred directories, some symlinks and hardlinks, and a few large
// files. Contents are pseudo-random so they compress like binaries, not zeros.
func syntheticLayer(b testing.TB) (tarball []byte, contentBytes int64) {
	rng := rand.New(rand.NewPCG(1, 2))
	chunk := make([]byte, 8<<20)
	for i := range chunk {
		chunk[i] = byte(rng.Uint32() % 64) // compressible about 4:3
	}
	body := func(n int) string {
		off := rng.IntN(len(chunk) - n)
		return string(chunk[off : off+n])
	}
	l := newLayer(b)
	for d := range 200 {
		dir := fmt.Sprintf("usr/lib/pkg%03d", d)
		l.dir(dir)
		for f := range 50 {
			size := 512 + rng.IntN(16<<10)
			l.file(fmt.Sprintf("%s/file%02d.so", dir, f), body(size))
			contentBytes += int64(size)
		}
		l.symlink(dir+"/link", "file00.so")
		l.hardlink(dir+"/hard", dir+"/file01.so")
	}
	for i := range 8 {
		l.file(fmt.Sprintf("opt/big%d.bin", i), body(4<<20))
		contentBytes += 4 << 20
	}
	return l.bytes(), contentBytes
}

// BenchmarkApply unpacks the synthetic layer (10,000 files, ~110 MB of
// content) natively into a fresh directory per iteration, from a plain and
// from a gzip-compressed stream. The removal between iterations is not timed.
// On a VM disk the figure is mostly the disk's; TMPDIR on a tmpfs measures
// the applier itself (GNU tar on the same tar is the yardstick).
func BenchmarkApply(b *testing.B) {
	requireRoot(b)
	tarball, content := syntheticLayer(b)
	gz := gzipped(b, tarball)
	for _, c := range []struct {
		name string
		in   []byte
		open func(io.Reader) (io.ReadCloser, error)
	}{
		{"plain", tarball, func(r io.Reader) (io.ReadCloser, error) { return io.NopCloser(r), nil }},
		{"gzip", gz, Decompress},
	} {
		b.Run(c.name, func(b *testing.B) {
			base := b.TempDir()
			b.SetBytes(content)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				dir := filepath.Join(base, fmt.Sprint(i))
				i++
				b.StopTimer()
				if err := os.Mkdir(dir, 0o755); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				rc, err := c.open(bytes.NewReader(c.in))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Apply(context.Background(), dir, rc, Options{}); err != nil {
					b.Fatal(err)
				}
				rc.Close()
				b.StopTimer()
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
