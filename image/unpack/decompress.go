package unpack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Decompress detects gzip, zstd or uncompressed by magic bytes and returns the
// uncompressed stream. Anything that is neither gzip nor zstd is returned as
// is, so that tar parsing fails clearly on it if it is not a tar either.
// Closing the result stops the decompressor's goroutines; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("unpack: reading the compression magic: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		// pgzip decompresses ahead in its own goroutine, so inflating and
		// writing files overlap on a multi-core host; it checks the CRC and
		// size of every member and reads concatenated members.
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("unpack: gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, zstdMagic) || isZstdSkippable(magic):
		// The decoder's defaults (at most 4 goroutines, windows up to
		// 512 MiB) are containerd's; a smaller window limit would reject
		// layers made with zstd --long.
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("unpack: zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(br), nil
	}
}

// isZstdSkippable reports whether magic starts a zstd skippable frame
// (0x184D2A50..0x184D2A5F little-endian), which a zstd stream may begin with.
func isZstdSkippable(magic []byte) bool {
	return len(magic) >= 4 && magic[0]&0xf0 == 0x50 && magic[1] == 0x2a && magic[2] == 0x4d && magic[3] == 0x18
}
