package store

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestImagesKeepTheirCreationTimeWhenRetargeted(t *testing.T) {
	d := openTemp(t)
	a := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("a"), Size: 1}
	b := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("b"), Size: 1}
	if err := d.PutImage(Image{Name: "docker.io/library/x:1", Target: a}); err != nil {
		t.Fatal(err)
	}
	first, err := d.GetImage("docker.io/library/x:1")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := d.PutImage(Image{Name: "docker.io/library/x:1", Target: b}); err != nil {
		t.Fatal(err)
	}
	second, err := d.GetImage("docker.io/library/x:1")
	if err != nil {
		t.Fatal(err)
	}
	if second.Target.Digest != b.Digest || !second.Created.Equal(first.Created) || !second.Updated.After(first.Updated) {
		t.Fatalf("retargeted image: %+v (first %+v)", second, first)
	}
	if err := d.DeleteImage("docker.io/library/x:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetImage("docker.io/library/x:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v, want ErrNotFound", err)
	}
	if err := d.DeleteImage("docker.io/library/x:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
}

func TestImagesAreListedByName(t *testing.T) {
	d := openTemp(t)
	for _, n := range []string{"c", "a", "b"} {
		if err := d.PutImage(Image{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	imgs, err := d.Images()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range imgs {
		names = append(names, i.Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Fatalf("images %v", names)
	}
}

func TestLeasesCollectResourcesAndEnd(t *testing.T) {
	d := openTemp(t)
	if err := d.PutLease(Lease{ID: "l1", Pid: 1}); err != nil {
		t.Fatal(err)
	}
	if err := d.PutLease(Lease{ID: "l1"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate lease: %v, want ErrExists", err)
	}
	if err := d.AddToLease("l1", []digest.Digest{digest.FromString("x")}, []string{"ing"}, []string{"snap"}); err != nil {
		t.Fatal(err)
	}
	if err := d.AddToLease("nope", nil, nil, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("add to missing lease: %v", err)
	}
	ls, err := d.Leases()
	if err != nil || len(ls) != 1 || len(ls[0].Blobs) != 1 || ls[0].Ingests[0] != "ing" || ls[0].Snapshots[0] != "snap" {
		t.Fatalf("leases %+v %v", ls, err)
	}
	if err := d.DeleteLease("l1"); err != nil {
		t.Fatal(err)
	}
	if ls, _ := d.Leases(); len(ls) != 0 {
		t.Fatalf("lease left: %+v", ls)
	}
}

func TestADatabaseFromANewerHullIsRefused(t *testing.T) {
	d := openTemp(t)
	db, err := bolt.Open(d.Path(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, SchemaVersion+1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(d.Path()); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}

// hull is daemonless: every operation opens and closes the database, so
// concurrent writers take turns instead of failing on bbolt's lock.
func TestConcurrentWritersTakeTurns(t *testing.T) {
	d := openTemp(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- d.PutImage(Image{Name: "img" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if imgs, err := d.Images(); err != nil || len(imgs) != 40 {
		t.Fatalf("%d images, %v", len(imgs), err)
	}
}

func TestUnpackedRecordsArePerSnapshotter(t *testing.T) {
	d := openTemp(t)
	m := digest.FromString("m")
	if err := d.PutUnpacked(Unpacked{Manifest: m, Snapshotter: "overlay", ChainIDs: []string{"c1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetUnpacked("native", m); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other snapshotter: %v", err)
	}
	u, err := d.GetUnpacked("overlay", m)
	if err != nil || u.ChainIDs[0] != "c1" {
		t.Fatalf("%+v %v", u, err)
	}
	if err := d.DeleteUnpacked("overlay", m); err != nil {
		t.Fatal(err)
	}
	if all, _ := d.AllUnpacked(); len(all) != 0 {
		t.Fatalf("left: %+v", all)
	}
}
