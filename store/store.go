// Package store keeps the engine's image metadata in a bbolt database: image
// names and their targets, which snapshots an image's layers were unpacked
// into, and leases that protect work in progress from garbage collection.
//
// The database has a schema version and ordered migrations. Every operation
// opens the database, runs one transaction and closes it again: bbolt holds
// an exclusive file lock while open, and hull is daemonless, so two hull
// processes must be able to take turns.
//
// Everything here can be rebuilt from the files it describes (blobs in the
// content store, snapshots in the snapshotter) except image names, which is
// why names live here and nowhere else.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"
)

// SchemaVersion is the version of the layout this package writes.
const SchemaVersion = 1

// Errors; wrapped with context, test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

var (
	bucketMeta     = []byte("meta")
	bucketImages   = []byte("images")
	bucketUnpacked = []byte("unpacked")
	bucketLeases   = []byte("leases")
	keySchema      = []byte("schema")
)

// Image is a named image: a reference and the manifest or index it points to.
type Image struct {
	Name    string             `json:"name"` // fully qualified reference, e.g. docker.io/library/busybox:latest
	Target  ocispec.Descriptor `json:"target"`
	Created time.Time          `json:"created"`
	Updated time.Time          `json:"updated"`
}

// Unpacked records that the image manifest Manifest was unpacked by
// Snapshotter into the committed snapshots ChainIDs (one per layer, bottom
// first; the last is the image's rootfs parent).
type Unpacked struct {
	Manifest    digest.Digest `json:"manifest"`
	Snapshotter string        `json:"snapshotter"`
	ChainIDs    []string      `json:"chainIDs"`
}

// Lease protects the blobs, ingests and snapshots it lists from garbage
// collection while its owner works on them. A lease is live until it
// expires or its owner process is gone.
type Lease struct {
	ID        string          `json:"id"`
	Pid       int             `json:"pid"`
	PidStart  uint64          `json:"pidStart"` // start time of Pid, so a reused pid does not keep the lease
	Created   time.Time       `json:"created"`
	Expires   time.Time       `json:"expires"`
	Blobs     []digest.Digest `json:"blobs,omitempty"`
	Ingests   []string        `json:"ingests,omitempty"`
	Snapshots []string        `json:"snapshots,omitempty"`
}

// DB is the metadata database at one path.
type DB struct {
	path string
	// Timeout bounds the wait for another hull process's transaction.
	Timeout time.Duration
}

// migrations[i] upgrades a database from schema i+1 to i+2.
var migrations = []func(tx *bolt.Tx) error{}

// Open opens (creating if needed) the database at path and brings its schema
// up to date. A database written by a newer hull is refused.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("metadata db %s: %w", path, err)
	}
	d := &DB{path: path, Timeout: time.Minute}
	err := d.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		v := uint64(0)
		if b := meta.Get(keySchema); b != nil {
			v = binary.BigEndian.Uint64(b)
		}
		switch {
		case v == 0:
			// A new database.
		case v > SchemaVersion:
			return fmt.Errorf("schema version %d is newer than this hull's (%d): upgrade hull", v, SchemaVersion)
		default:
			for i := v - 1; i < uint64(len(migrations)) && i+1 < SchemaVersion; i++ {
				if err := migrations[i](tx); err != nil {
					return fmt.Errorf("migrate schema %d to %d: %w", i+1, i+2, err)
				}
			}
		}
		for _, b := range [][]byte{bucketImages, bucketUnpacked, bucketLeases} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint64(nil, SchemaVersion))
	})
	if err != nil {
		return nil, fmt.Errorf("metadata db %s: %w", path, err)
	}
	return d, nil
}

// Path is the database file.
func (d *DB) Path() string { return d.path }

// open takes a lock of our own first: bbolt polls its lock every 50 ms,
// a blocking flock hands over as soon as the holder closes.
func (d *DB) open(readOnly bool) (*bolt.DB, func(), error) {
	lf, err := os.OpenFile(d.path+".lock", os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata db lock: %w", err)
	}
	how := unix.LOCK_EX
	if readOnly {
		how = unix.LOCK_SH
	}
	if err := flockTimeout(lf, how, d.Timeout); err != nil {
		lf.Close()
		return nil, nil, fmt.Errorf("metadata db %s is busy (another hull process holds it for more than %s): %w", d.path, d.Timeout, err)
	}
	db, err := bolt.Open(d.path, 0o600, &bolt.Options{Timeout: d.Timeout, ReadOnly: readOnly})
	if err != nil {
		lf.Close()
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, nil, fmt.Errorf("metadata db %s is busy (another hull process holds it for more than %s): %w", d.path, d.Timeout, err)
		}
		return nil, nil, fmt.Errorf("open metadata db %s: %w", d.path, err)
	}
	return db, func() { lf.Close() }, nil
}

// flockTimeout takes a flock, waiting at most timeout.
func flockTimeout(f *os.File, how int, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- unix.Flock(int(f.Fd()), how) }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		// The caller closes f: the waiting flock then gets the lock on a
		// file nobody holds, which drops it at once.
		return errors.New("timed out waiting for the lock")
	}
}

func (d *DB) update(fn func(tx *bolt.Tx) error) error {
	db, unlock, err := d.open(false)
	if err != nil {
		return err
	}
	defer unlock()
	err = db.Update(fn)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close metadata db %s: %w", d.path, cerr)
	}
	return err
}

func (d *DB) view(fn func(tx *bolt.Tx) error) error {
	// A read-only open takes a shared lock: readers do not wait for each other.
	if _, err := os.Stat(d.path); err != nil {
		return fmt.Errorf("metadata db: %w", err)
	}
	db, unlock, err := d.open(true)
	if err != nil {
		return err
	}
	defer unlock()
	err = db.View(fn)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close metadata db %s: %w", d.path, cerr)
	}
	return err
}

func put(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func get(b *bolt.Bucket, key string, v any) error {
	data := b.Get([]byte(key))
	if data == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("record %q is corrupt: %w", key, err)
	}
	return nil
}

// PutImage creates or replaces the image called img.Name.
func (d *DB) PutImage(img Image) error {
	now := time.Now().UTC()
	return d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImages)
		var old Image
		if err := get(b, img.Name, &old); err == nil {
			img.Created = old.Created
		} else if img.Created.IsZero() {
			img.Created = now
		}
		img.Updated = now
		return put(b, img.Name, img)
	})
}

// GetImage returns the image called name.
func (d *DB) GetImage(name string) (Image, error) {
	var img Image
	err := d.view(func(tx *bolt.Tx) error { return get(tx.Bucket(bucketImages), name, &img) })
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", name, err)
	}
	return img, nil
}

// Images returns every image, sorted by name.
func (d *DB) Images() ([]Image, error) {
	var out []Image
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var img Image
			if err := json.Unmarshal(v, &img); err != nil {
				return fmt.Errorf("image record %q is corrupt: %w", k, err)
			}
			out = append(out, img)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Image) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, err
}

// DeleteImage removes the name; the blobs and snapshots it held go at the
// next garbage collection.
func (d *DB) DeleteImage(name string) error {
	return d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImages)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("image %s: %w", name, ErrNotFound)
		}
		return b.Delete([]byte(name))
	})
}

// PutUnpacked records an unpacked manifest.
func (d *DB) PutUnpacked(u Unpacked) error {
	return d.update(func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketUnpacked), unpackedKey(u.Snapshotter, u.Manifest), u)
	})
}

// GetUnpacked returns how manifest was unpacked by snapshotter.
func (d *DB) GetUnpacked(snapshotter string, manifest digest.Digest) (Unpacked, error) {
	var u Unpacked
	err := d.view(func(tx *bolt.Tx) error {
		return get(tx.Bucket(bucketUnpacked), unpackedKey(snapshotter, manifest), &u)
	})
	if err != nil {
		return Unpacked{}, fmt.Errorf("unpacked %s (%s): %w", manifest, snapshotter, err)
	}
	return u, nil
}

// AllUnpacked returns every unpacked record.
func (d *DB) AllUnpacked() ([]Unpacked, error) {
	var out []Unpacked
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUnpacked).ForEach(func(k, v []byte) error {
			var u Unpacked
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("unpacked record %q is corrupt: %w", k, err)
			}
			out = append(out, u)
			return nil
		})
	})
	return out, err
}

// DeleteUnpacked removes an unpacked record.
func (d *DB) DeleteUnpacked(snapshotter string, manifest digest.Digest) error {
	return d.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUnpacked).Delete([]byte(unpackedKey(snapshotter, manifest)))
	})
}

func unpackedKey(snapshotter string, manifest digest.Digest) string {
	return snapshotter + "/" + manifest.String()
}

// PutLease creates a lease, failing if its ID is taken.
func (d *DB) PutLease(l Lease) error {
	return d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLeases)
		if b.Get([]byte(l.ID)) != nil {
			return fmt.Errorf("lease %s: %w", l.ID, ErrExists)
		}
		return put(b, l.ID, l)
	})
}

// AddToLease adds resources to an existing lease. Call it before creating
// them, so that a collection running meanwhile leaves them alone.
func (d *DB) AddToLease(id string, blobs []digest.Digest, ingests, snapshots []string) error {
	return d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLeases)
		var l Lease
		if err := get(b, id, &l); err != nil {
			return fmt.Errorf("lease %s: %w", id, err)
		}
		l.Blobs = append(l.Blobs, blobs...)
		l.Ingests = append(l.Ingests, ingests...)
		l.Snapshots = append(l.Snapshots, snapshots...)
		return put(b, id, l)
	})
}

// DeleteLease ends a lease; what only it protected goes at the next collection.
func (d *DB) DeleteLease(id string) error {
	return d.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketLeases).Delete([]byte(id)) })
}

// Leases returns every lease, live or not.
func (d *DB) Leases() ([]Lease, error) {
	var out []Lease
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLeases).ForEach(func(k, v []byte) error {
			var l Lease
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("lease record %q is corrupt: %w", k, err)
			}
			out = append(out, l)
			return nil
		})
	})
	return out, err
}
