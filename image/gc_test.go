package image

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/store"
)

func newTestService(t *testing.T) *Service {
	t.Helper()
	s, err := New(Options{Root: t.TempDir()}, "none", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func putBlob(t *testing.T, s *Service, data []byte) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(data)
	if err := s.putSmall(context.Background(), ocispec.Descriptor{Digest: d, Size: int64(len(data))}, data); err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{Digest: d, Size: int64(len(data))}
}

// putImage stores a one-layer image and names it.
func putImage(t *testing.T, s *Service, name string) []digest.Digest {
	t.Helper()
	layer := putBlob(t, s, []byte("layer of "+name))
	layer.MediaType = ocispec.MediaTypeImageLayer
	cfgData, _ := json.Marshal(ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}}})
	cfg := putBlob(t, s, cfgData)
	cfg.MediaType = ocispec.MediaTypeImageConfig
	mData, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
	m := putBlob(t, s, mData)
	m.MediaType = ocispec.MediaTypeImageManifest
	if err := s.DB.PutImage(store.Image{Name: name, Target: m}); err != nil {
		t.Fatal(err)
	}
	return []digest.Digest{m.Digest, cfg.Digest, layer.Digest}
}

// fsImmutableFL is FS_IMMUTABLE_FL from linux/fs.h (not in x/sys/unix).
const fsImmutableFL = 0x10

func setImmutable(t *testing.T, path string, on bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags)
}

func TestGCKeepsNamedImagesAndLeasedBlobsAndRemovesTheRest(t *testing.T) {
	s := newTestService(t)
	kept := putImage(t, s, "example.com/kept:1")
	gone := putImage(t, s, "example.com/gone:1")
	if err := s.DB.DeleteImage("example.com/gone:1"); err != nil {
		t.Fatal(err)
	}
	leased := putBlob(t, s, []byte("in flight"))
	expired := putBlob(t, s, []byte("abandoned"))
	start, _ := pidStartTime(os.Getpid())
	now := time.Now().UTC()
	if err := s.DB.PutLease(store.Lease{ID: "live", Pid: os.Getpid(), PidStart: start, Created: now, Expires: now.Add(time.Hour), Blobs: []digest.Digest{leased.Digest}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DB.PutLease(store.Lease{ID: "old", Created: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour), Blobs: []digest.Digest{expired.Digest}}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.GC(context.Background(), GCOptions{})
	if err != nil || len(rep.Errors) != 0 {
		t.Fatalf("GC: %v %v", err, rep.Errors)
	}
	for _, d := range append(kept, leased.Digest) {
		if _, err := s.Content.Info(d); err != nil {
			t.Errorf("blob %s was collected: %v", d, err)
		}
	}
	for _, d := range append(gone, expired.Digest) {
		if _, err := s.Content.Info(d); !isNotFound(err) {
			t.Errorf("blob %s survived: %v", d, err)
		}
	}
	if rep.BlobsRemoved != 4 || rep.LeasesRemoved != 1 {
		t.Errorf("report %+v, want 4 blobs and 1 lease removed", rep)
	}
}

// A blob that cannot be removed (here: immutable) is reported, and the
// collection removes the others.
func TestGCGoesOnPastABlobItCannotRemove(t *testing.T) {
	s := newTestService(t)
	stuck := putBlob(t, s, []byte("stuck"))
	free1 := putBlob(t, s, []byte("free 1"))
	free2 := putBlob(t, s, []byte("free 2"))
	path := s.Content.Path(stuck.Digest)
	// The store's blob directory: the immutable file cannot be unlinked from it.
	if err := setImmutable(t, path, true); err != nil {
		t.Skipf("cannot make a file immutable here: %v", err)
	}
	t.Cleanup(func() { _ = setImmutable(t, path, false) })
	rep, err := s.GC(context.Background(), GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Error(), stuck.Digest.String()) {
		t.Errorf("errors %v, want one naming %s", rep.Errors, stuck.Digest)
	}
	for _, d := range []digest.Digest{free1.Digest, free2.Digest} {
		if _, err := s.Content.Info(d); !isNotFound(err) {
			t.Errorf("blob %s survived a collection that failed on another: %v", d, err)
		}
	}
	if rep.BlobsRemoved != 2 {
		t.Errorf("removed %d blobs, want 2", rep.BlobsRemoved)
	}
}

func TestGCDryRunRemovesNothing(t *testing.T) {
	s := newTestService(t)
	b := putBlob(t, s, []byte("loose"))
	rep, err := s.GC(context.Background(), GCOptions{DryRun: true})
	if err != nil || rep.BlobsRemoved != 1 || rep.BlobBytes != b.Size {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	if _, err := s.Content.Info(b.Digest); err != nil {
		t.Errorf("dry run removed %s: %v", b.Digest, err)
	}
}
