package unpack

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decompressAll(t testing.TB, in []byte) ([]byte, error) {
	t.Helper()
	rc, err := Decompress(bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestDecompressDetectsTheFormat(t *testing.T) {
	payload := []byte(strings.Repeat("layer content ", 100_000))
	skippable := append([]byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'm', 'e', 't', 'a'}, zstded(t, payload)...)
	for name, in := range map[string][]byte{
		"gzip":               gzipped(t, payload),
		"gzip multi-member":  append(gzipped(t, payload[:1000]), gzipped(t, payload[1000:])...),
		"zstd":               zstded(t, payload),
		"zstd skippable":     skippable,
		"plain":              payload,
		"xz is left as is":   append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, payload...),
		"shorter than magic": {0x1f},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := decompressAll(t, in)
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			want := payload
			switch name {
			case "xz is left as is", "shorter than magic":
				want = in
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func TestDecompressEmptyStream(t *testing.T) {
	got, err := decompressAll(t, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
}

func TestDecompressCorruptStreamsFail(t *testing.T) {
	payload := []byte(strings.Repeat("abc", 100_000))
	gz := gzipped(t, payload)
	gz[len(gz)-6] ^= 0xff // the CRC
	if _, err := decompressAll(t, gz); err == nil {
		t.Error("gzip with a bad CRC decompressed")
	}
	zs := zstded(t, payload)
	if _, err := decompressAll(t, zs[:len(zs)/2]); err == nil {
		t.Error("truncated zstd decompressed")
	}
	if _, err := Decompress(bytes.NewReader([]byte{0x1f, 0x8b, 0xff, 0xff})); err == nil {
		t.Error("gzip with a broken header opened")
	}
}
