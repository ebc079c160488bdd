// Package storage keeps what hull's snapshotters share: the bbolt metadata of
// snapshots (keys, kinds, parents, ids), their directories, staging
// directories, and the crash recovery of both.
//
// Layout under a snapshotter's root:
//
//	metadata.db          bbolt: bucket v1 → snapshots (key → record, id sequence), children (parent → child keys)
//	snapshots/<id>/fs    the snapshot's tree (overlay: upper dir or layer)
//	snapshots/<id>/work  overlay's work dir, for active snapshots
//	staging/<random>     directories being filled before they become a snapshot's fs
//	removing/<id>        directories of removed snapshots, being deleted
//
// Locking: the db is opened for each operation and closed after it, so that
// several processes (hull is daemonless: every CLI invocation is a process)
// can share a root. bbolt flocks the db file while it is open: exclusively for
// writes, shared for reads, so processes are serialised by the kernel and a
// crashed process releases its lock. Within one process an RWMutex queues the
// goroutines instead of letting them poll the flock (bbolt retries every
// 50 ms). Every directory under snapshots/ is created or removed while the
// exclusive lock is held, together with its metadata, so a directory that the
// metadata does not name can only be a crash's leftover. Directories that live
// outside the lock (staging, removing) carry a flock of their own for as long
// as their owner uses them, so a cleanup (Cleanup, run by Open when it sees
// leftovers) never deletes one that is in use.
package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/image/snapshot"
)

// DefaultLockTimeout bounds the wait for another process's lock on the
// metadata db. Operations hold it for metadata updates, mkdirs and renames
// only, so a longer wait means a stuck process.
const DefaultLockTimeout = time.Minute

// maxDepth bounds parent chains. overlayfs stacks at most 500 layers; the
// bound only stops a corrupt db's parent cycle from looping.
const maxDepth = 10000

const (
	dbName      = "metadata.db"
	snapshotDir = "snapshots"
	stagingDir  = "staging"
	removingDir = "removing"
)

var (
	bucketV1        = []byte("v1")
	bucketSnapshots = []byte("snapshots")
	bucketChildren  = []byte("children")
)

// ErrClosed is returned by the operations of a closed Store.
var ErrClosed = errors.New("snapshotter is closed")

// record is a snapshot's value in the snapshots bucket.
type record struct {
	ID      uint64        `json:"id"`
	Kind    snapshot.Kind `json:"kind"`
	Parent  string        `json:"parent,omitempty"`
	Created time.Time     `json:"created"`
}

// Snapshot is a snapshot's metadata with the ids of its parent chain.
type Snapshot struct {
	ID        uint64
	Info      snapshot.Info
	ParentIDs []uint64 // the parent's id first, then its parent's ...
}

// Store is the metadata and directories of one snapshotter root. It is safe
// for concurrent use by goroutines and by processes sharing the root.
type Store struct {
	root    string
	timeout time.Duration

	// mu serialises this process's db sessions: writers exclusively, readers
	// together (their bbolt opens take a shared flock).
	mu     sync.RWMutex
	closed bool

	// held maps the staging directories this Store created to the open
	// directory whose flock marks them as in use.
	heldMu sync.Mutex
	held   map[string]*os.File
}

// Open opens (creating if needed) the store at root and removes the leftovers
// of crashed operations (see Cleanup); leftovers that cannot be removed now
// (for example with a mount inside them) are left for a later Cleanup, which
// reports why.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshotter root %s: %w", root, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, snapshotDir), filepath.Join(abs, stagingDir), filepath.Join(abs, removingDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("snapshotter root: %w", err)
		}
	}
	s := &Store{root: abs, timeout: DefaultLockTimeout, held: map[string]*os.File{}}
	ctx := context.Background()
	// Every hull command opens the store, and a write session costs fsyncs
	// even when it changes nothing: look first with a shared lock.
	records, err := s.count(ctx)
	if err == nil {
		if s.untidy(records) {
			// Best effort by design: a leftover that cannot be deleted must
			// not make the snapshots that are fine unusable. Cleanup returns
			// the reason.
			_ = s.Cleanup(ctx)
		}
		return s, nil
	}
	err = s.withDB(ctx, true, func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			v1, err := tx.CreateBucketIfNotExists(bucketV1)
			if err != nil {
				return err
			}
			if _, err := v1.CreateBucketIfNotExists(bucketSnapshots); err != nil {
				return err
			}
			_, err = v1.CreateBucketIfNotExists(bucketChildren)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("snapshotter metadata %s: %w", filepath.Join(abs, dbName), err)
	}
	_ = s.Cleanup(ctx) // best effort, as above
	return s, nil
}

// count returns the number of snapshots, or an error if the db is new (or
// not readable) and needs a write session.
func (s *Store) count(ctx context.Context) (int, error) {
	if _, err := os.Stat(filepath.Join(s.root, dbName)); err != nil {
		return 0, err
	}
	n := 0
	err := s.withDB(ctx, false, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			snaps, _, err := buckets(tx)
			if err != nil {
				return err
			}
			n = snaps.Stats().KeyN
			return nil
		})
	})
	return n, err
}

// untidy tells whether Cleanup may have something to do: anything in
// staging/ or removing/ (perhaps in use by another process), or more snapshot
// directories than snapshots. It looks without the lock; a snapshot created
// meanwhile only makes it answer yes.
func (s *Store) untidy(records int) bool {
	for _, sub := range []string{stagingDir, removingDir} {
		if ents, err := os.ReadDir(filepath.Join(s.root, sub)); err != nil || len(ents) > 0 {
			return true
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.root, snapshotDir))
	if err != nil {
		return true
	}
	dirs := 0
	for _, e := range ents {
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			dirs++
		}
	}
	return dirs != records
}

// Root returns the store's absolute root directory.
func (s *Store) Root() string { return s.root }

// Dir returns the directory of snapshot id.
func (s *Store) Dir(id uint64) string {
	return filepath.Join(s.root, snapshotDir, strconv.FormatUint(id, 10))
}

// FS returns the tree of snapshot id (overlay's upper dir or layer).
func (s *Store) FS(id uint64) string { return filepath.Join(s.Dir(id), "fs") }

// Work returns overlay's work dir of snapshot id.
func (s *Store) Work(id uint64) string { return filepath.Join(s.Dir(id), "work") }

// withDB opens the db for one session (exclusive flock if write, shared
// otherwise), runs fn and closes the db. The wait for the flock is bounded by
// the store's timeout and ctx's deadline.
func (s *Store) withDB(ctx context.Context, write bool, fn func(*bolt.DB) error) error {
	if write {
		s.mu.Lock()
		defer s.mu.Unlock()
	} else {
		s.mu.RLock()
		defer s.mu.RUnlock()
	}
	if s.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	timeout := s.timeout
	if dl, ok := ctx.Deadline(); ok {
		// bbolt treats 0 as "wait forever"; a passed deadline was caught above.
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	db, err := bolt.Open(filepath.Join(s.root, dbName), 0o600, &bolt.Options{Timeout: timeout, ReadOnly: !write})
	if err != nil {
		return fmt.Errorf("open snapshot metadata: %w", err)
	}
	err = fn(db)
	if cerr := db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close snapshot metadata: %w", cerr)
	}
	return err
}

func buckets(tx *bolt.Tx) (snaps, children *bolt.Bucket, err error) {
	v1 := tx.Bucket(bucketV1)
	if v1 == nil {
		return nil, nil, errors.New("snapshot metadata has no v1 bucket")
	}
	snaps, children = v1.Bucket(bucketSnapshots), v1.Bucket(bucketChildren)
	if snaps == nil || children == nil {
		return nil, nil, errors.New("snapshot metadata has no snapshots or children bucket")
	}
	return snaps, children, nil
}

// get reads key's record; ok is false if there is none.
func get(snaps *bolt.Bucket, key string) (rec record, ok bool, err error) {
	v := snaps.Get([]byte(key))
	if v == nil {
		return record{}, false, nil
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return record{}, false, fmt.Errorf("snapshot %q: corrupt metadata: %w", key, err)
	}
	return rec, true, nil
}

func put(snaps *bolt.Bucket, key string, rec record) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return snaps.Put([]byte(key), v)
}

// load returns key's snapshot with its parent chain.
func load(snaps *bolt.Bucket, key string) (Snapshot, error) {
	rec, ok, err := get(snaps, key)
	if err != nil {
		return Snapshot{}, err
	}
	if !ok {
		return Snapshot{}, fmt.Errorf("snapshot %q: %w", key, snapshot.ErrNotExist)
	}
	sn := Snapshot{ID: rec.ID, Info: info(key, rec)}
	for p := rec.Parent; p != ""; {
		if len(sn.ParentIDs) >= maxDepth {
			return Snapshot{}, fmt.Errorf("snapshot %q: parent chain longer than %d (a cycle in the metadata?)", key, maxDepth)
		}
		prec, ok, err := get(snaps, p)
		if err != nil {
			return Snapshot{}, err
		}
		if !ok {
			return Snapshot{}, fmt.Errorf("snapshot %q: parent %q missing from the metadata: %w", key, p, snapshot.ErrNotExist)
		}
		sn.ParentIDs = append(sn.ParentIDs, prec.ID)
		p = prec.Parent
	}
	return sn, nil
}

func info(key string, rec record) snapshot.Info {
	return snapshot.Info{Key: key, Parent: rec.Parent, Kind: rec.Kind, Created: rec.Created}
}

// Stat returns key's info.
func (s *Store) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	sn, err := s.Get(ctx, key)
	return sn.Info, err
}

// Get returns key's snapshot with the ids of its parent chain.
func (s *Store) Get(ctx context.Context, key string) (Snapshot, error) {
	var sn Snapshot
	err := s.withDB(ctx, false, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			snaps, _, err := buckets(tx)
			if err != nil {
				return err
			}
			sn, err = load(snaps, key)
			return err
		})
	})
	return sn, err
}

// Walk calls fn for every snapshot in key order. The infos are read first and
// fn runs with no lock held, so it may call the store.
func (s *Store) Walk(ctx context.Context, fn func(snapshot.Info) error) error {
	var infos []snapshot.Info
	err := s.withDB(ctx, false, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			snaps, _, err := buckets(tx)
			if err != nil {
				return err
			}
			return snaps.ForEach(func(k, v []byte) error {
				var rec record
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("snapshot %q: corrupt metadata: %w", k, err)
				}
				infos = append(infos, info(string(k), rec))
				return nil
			})
		})
	})
	if err != nil {
		return fmt.Errorf("walk snapshots: %w", err)
	}
	for _, in := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// CreateOptions says how Create makes the new snapshot's directory.
type CreateOptions struct {
	// Staged is a staging directory (from StagingDir) that becomes the
	// snapshot's fs by a rename; "" makes an empty fs.
	Staged string
	// ParentID, if not 0, is the id the parent had when the caller read it
	// (to copy it): Create fails if the parent was replaced since.
	ParentID uint64
	// Work also makes the snapshot's overlay work dir.
	Work bool
}

// Create makes snapshot key of kind on top of committed parent ("" for none),
// with its directory, in one locked session: the metadata and the directory
// appear together or not at all.
func (s *Store) Create(ctx context.Context, key, parent string, kind snapshot.Kind, opts CreateOptions) (Snapshot, error) {
	if key == "" {
		return Snapshot{}, errors.New("empty snapshot key")
	}
	if opts.Staged != "" {
		if err := s.checkStaging(opts.Staged); err != nil {
			return Snapshot{}, fmt.Errorf("snapshot %q: %w", key, err)
		}
	}
	var sn Snapshot
	err := s.withDB(ctx, true, func(db *bolt.DB) error {
		tx, err := db.Begin(true)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }() // a no-op after Commit
		snaps, children, err := buckets(tx)
		if err != nil {
			return err
		}
		if _, ok, err := get(snaps, key); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("snapshot %q: %w", key, snapshot.ErrExist)
		}
		if parent != "" {
			prec, ok, err := get(snaps, parent)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("snapshot %q: parent %q: %w", key, parent, snapshot.ErrNotExist)
			}
			if prec.Kind != snapshot.KindCommitted {
				return fmt.Errorf("snapshot %q: parent %q is %s, not committed: %w", key, parent, prec.Kind, snapshot.ErrFailedPrecond)
			}
			if opts.ParentID != 0 && prec.ID != opts.ParentID {
				return fmt.Errorf("snapshot %q: parent %q was replaced while it was copied: %w", key, parent, snapshot.ErrFailedPrecond)
			}
			cb, err := children.CreateBucketIfNotExists([]byte(parent))
			if err != nil {
				return err
			}
			if err := cb.Put([]byte(key), nil); err != nil {
				return err
			}
		}
		id, err := snaps.NextSequence()
		if err != nil {
			return err
		}
		rec := record{ID: id, Kind: kind, Parent: parent, Created: time.Now().UTC()}
		if err := put(snaps, key, rec); err != nil {
			return err
		}
		sn, err = load(snaps, key)
		if err != nil {
			return err
		}

		dir := s.Dir(id)
		// A rolled-back transaction does not keep its sequence number, so a
		// crash between mkdir and commit can leave a directory with the id
		// handed out next. Nothing names it: it is garbage.
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("snapshot %q: remove leftover %s: %w", key, dir, err)
		}
		undo, err := s.makeDir(id, opts)
		if err != nil {
			return fmt.Errorf("snapshot %q: %w", key, err)
		}
		if err := tx.Commit(); err != nil {
			undo()
			return err
		}
		return nil
	})
	if err != nil {
		return Snapshot{}, err
	}
	if opts.Staged != "" {
		s.release(opts.Staged)
	}
	return sn, nil
}

// makeDir creates snapshot id's directory as opts says; undo puts things back
// (a staged directory back in staging) if the metadata cannot be committed.
func (s *Store) makeDir(id uint64, opts CreateOptions) (undo func(), err error) {
	dir := s.Dir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	undo = func() {
		if opts.Staged != "" {
			_ = os.Rename(s.FS(id), opts.Staged)
		}
		_ = os.RemoveAll(dir)
	}
	if opts.Staged != "" {
		err = os.Rename(opts.Staged, s.FS(id))
	} else {
		err = os.Mkdir(s.FS(id), 0o755)
		if err == nil {
			// Mkdir's mode is filtered by the umask; the tree's root mode is
			// what a container sees as "/".
			err = os.Chmod(s.FS(id), 0o755)
		}
	}
	if err == nil && opts.Work {
		err = os.Mkdir(s.Work(id), 0o700)
	}
	if err != nil {
		undo()
		return nil, err
	}
	return undo, nil
}

// Commit makes active snapshot key the committed snapshot name.
func (s *Store) Commit(ctx context.Context, name, key string) error {
	if name == "" {
		return fmt.Errorf("commit %q: empty name", key)
	}
	return s.withDB(ctx, true, func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			snaps, children, err := buckets(tx)
			if err != nil {
				return err
			}
			rec, ok, err := get(snaps, key)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("commit %q: %w", key, snapshot.ErrNotExist)
			}
			if rec.Kind != snapshot.KindActive {
				return fmt.Errorf("commit %q: it is %s, not active: %w", key, rec.Kind, snapshot.ErrFailedPrecond)
			}
			if _, ok, err := get(snaps, name); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("commit %q as %q: %w", key, name, snapshot.ErrExist)
			}
			if err := snaps.Delete([]byte(key)); err != nil {
				return err
			}
			rec.Kind, rec.Created = snapshot.KindCommitted, time.Now().UTC()
			if err := put(snaps, name, rec); err != nil {
				return err
			}
			// An active snapshot has no children of its own; only its entry
			// in its parent's list is renamed.
			if rec.Parent != "" {
				if cb := children.Bucket([]byte(rec.Parent)); cb != nil {
					if err := cb.Delete([]byte(key)); err != nil {
						return err
					}
					if err := cb.Put([]byte(name), nil); err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
}

// Remove deletes snapshot key: its metadata first, then its directory, which
// is renamed into removing/ (so no half-deleted tree is ever under
// snapshots/) and deleted there. A crash after the metadata is gone leaves a
// directory that Cleanup deletes. If the deletion fails, the snapshot is
// removed all the same and the error says what was left.
func (s *Store) Remove(ctx context.Context, key string) error {
	var dying *os.File
	var path string
	err := s.withDB(ctx, true, func(db *bolt.DB) error {
		var id uint64
		err := db.Update(func(tx *bolt.Tx) error {
			snaps, children, err := buckets(tx)
			if err != nil {
				return err
			}
			rec, ok, err := get(snaps, key)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("remove %q: %w", key, snapshot.ErrNotExist)
			}
			if cb := children.Bucket([]byte(key)); cb != nil {
				if k, _ := cb.Cursor().First(); k != nil {
					return fmt.Errorf("remove %q: it is the parent of %q: %w", key, k, snapshot.ErrFailedPrecond)
				}
				if err := children.DeleteBucket([]byte(key)); err != nil {
					return err
				}
			}
			if rec.Parent != "" {
				if cb := children.Bucket([]byte(rec.Parent)); cb != nil {
					if err := cb.Delete([]byte(key)); err != nil {
						return err
					}
					if k, _ := cb.Cursor().First(); k == nil {
						if err := children.DeleteBucket([]byte(rec.Parent)); err != nil {
							return err
						}
					}
				}
			}
			id = rec.ID
			return snaps.Delete([]byte(key))
		})
		if err != nil {
			return err
		}
		// Still under the lock: Cleanup in another process must not see the
		// directory between the rename and our flock on it.
		dying, path, err = s.moveToRemoving(s.Dir(id), strconv.FormatUint(id, 10))
		if err != nil {
			return fmt.Errorf("remove %q: metadata deleted, directory left for cleanup: %w", key, err)
		}
		return nil
	})
	if err != nil || dying == nil {
		return err
	}
	defer dying.Close()
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove %q: metadata deleted, directory left for cleanup: %w", key, err)
	}
	return nil
}

// moveToRemoving renames dir to removing/<name> and returns it open and
// flocked, so that Cleanup leaves it to us. A missing dir returns nil.
func (s *Store) moveToRemoving(dir, name string) (*os.File, string, error) {
	dst := filepath.Join(s.root, removingDir, name)
	err := os.Rename(dir, dst)
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		// A stale leftover with the same name: it is garbage too.
		if err := os.RemoveAll(dst); err != nil {
			return nil, "", err
		}
		err = os.Rename(dir, dst)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	f, err := lockDir(dst, true)
	if err != nil {
		return nil, "", err
	}
	return f, dst, nil
}

// lockDir opens dir and takes an exclusive flock on it; with wait false it
// returns (nil, nil) if another open file holds the lock.
func lockDir(dir string, wait bool) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("flock %s: %w", dir, err)
	}
	return f, nil
}

// Usage returns the blocks and inodes of key's own directory.
func (s *Store) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	sn, err := s.Get(ctx, key)
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("usage: %w", err)
	}
	u, err := DiskUsage(ctx, s.Dir(sn.ID))
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("usage of %q: %w", key, err)
	}
	return u, nil
}

// DiskUsage counts the allocated bytes and the inodes under dir, each
// hardlinked inode once.
func DiskUsage(ctx context.Context, dir string) (snapshot.Usage, error) {
	type ino struct{ dev, ino uint64 }
	seen := map[ino]struct{}{}
	var u snapshot.Usage
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		k := ino{uint64(st.Dev), st.Ino}
		if _, ok := seen[k]; ok {
			return nil
		}
		seen[k] = struct{}{}
		u.Inodes++
		u.Size += st.Blocks * 512
		return nil
	})
	return u, err
}

// StagingDir creates an empty directory (mode 0755: it becomes a tree's root)
// under staging/ and holds a flock on it until Create moves it into a
// snapshot, RemoveStaging deletes it, or the store is closed.
func (s *Store) StagingDir(ctx context.Context) (string, error) {
	var dir string
	// The shared db lock keeps Cleanup (exclusive) out between the mkdir and
	// the flock.
	err := s.withDB(ctx, false, func(*bolt.DB) error {
		d, err := os.MkdirTemp(filepath.Join(s.root, stagingDir), "")
		if err != nil {
			return err
		}
		f, err := lockDir(d, true)
		if err == nil {
			err = os.Chmod(d, 0o755)
		}
		if err != nil {
			if f != nil {
				f.Close()
			}
			os.Remove(d)
			return err
		}
		s.heldMu.Lock()
		s.held[d] = f
		s.heldMu.Unlock()
		dir = d
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("staging dir: %w", err)
	}
	return dir, nil
}

// checkStaging makes sure dir is a directory directly under staging/, so that
// a caller cannot have Create rename an arbitrary path into the store.
func (s *Store) checkStaging(dir string) error {
	if filepath.Dir(filepath.Clean(dir)) != filepath.Join(s.root, stagingDir) {
		return fmt.Errorf("%s is not a staging directory of %s", dir, s.root)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("staging dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("staging dir %s is not a directory", dir)
	}
	return nil
}

// release drops the flock of a staging directory that is gone or moved.
func (s *Store) release(dir string) {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	dir = filepath.Clean(dir)
	if f, ok := s.held[dir]; ok {
		f.Close()
		delete(s.held, dir)
	}
}

// RemoveStaging deletes a staging directory. One held by another process (or
// another Store) is in use and not deleted.
func (s *Store) RemoveStaging(dir string) error {
	if err := s.checkStaging(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			s.release(dir)
			return nil
		}
		return err
	}
	dir = filepath.Clean(dir)
	s.heldMu.Lock()
	_, ours := s.held[dir]
	s.heldMu.Unlock()
	if !ours {
		f, err := lockDir(dir, false)
		if err != nil {
			return fmt.Errorf("remove staging dir: %w", err)
		}
		if f == nil {
			return fmt.Errorf("remove staging dir %s: in use by another process", dir)
		}
		defer f.Close()
	}
	err := os.RemoveAll(dir)
	s.release(dir)
	if err != nil {
		return fmt.Errorf("remove staging dir: %w", err)
	}
	return nil
}

// Cleanup deletes what crashed operations left behind: directories under
// snapshots/ that the metadata does not name, and directories under staging/
// and removing/ that nobody holds a flock on. It runs under the exclusive db
// lock, so no other operation is half-way through creating a snapshot.
func (s *Store) Cleanup(ctx context.Context) error {
	var errs []error
	err := s.withDB(ctx, true, func(db *bolt.DB) error {
		ids := map[string]bool{}
		err := db.View(func(tx *bolt.Tx) error {
			snaps, _, err := buckets(tx)
			if err != nil {
				return err
			}
			return snaps.ForEach(func(k, v []byte) error {
				var rec record
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("snapshot %q: corrupt metadata: %w", k, err)
				}
				ids[strconv.FormatUint(rec.ID, 10)] = true
				return nil
			})
		})
		if err != nil {
			return err
		}
		ents, err := os.ReadDir(filepath.Join(s.root, snapshotDir))
		if err != nil {
			return err
		}
		for _, e := range ents {
			if ids[e.Name()] {
				continue
			}
			// Only names that look like ours: anything else was put there by
			// hand and is not ours to delete.
			if _, err := strconv.ParseUint(e.Name(), 10, 64); err != nil {
				continue
			}
			f, path, err := s.moveToRemoving(filepath.Join(s.root, snapshotDir, e.Name()), e.Name())
			if err != nil {
				errs = append(errs, fmt.Errorf("orphaned snapshot dir %s: %w", e.Name(), err))
				continue
			}
			if f != nil {
				if err := os.RemoveAll(path); err != nil {
					errs = append(errs, fmt.Errorf("orphaned snapshot dir %s: %w", e.Name(), err))
				}
				f.Close()
			}
		}
		for _, sub := range []string{stagingDir, removingDir} {
			ents, err := os.ReadDir(filepath.Join(s.root, sub))
			if err != nil {
				return err
			}
			for _, e := range ents {
				p := filepath.Join(s.root, sub, e.Name())
				if !e.IsDir() {
					if err := os.Remove(p); err != nil {
						errs = append(errs, err)
					}
					continue
				}
				f, err := lockDir(p, false)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if f == nil {
					continue // in use
				}
				if err := os.RemoveAll(p); err != nil {
					errs = append(errs, err)
				}
				f.Close()
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("snapshotter cleanup in %s: %w", s.root, err)
	}
	return nil
}

// Close releases the staging directories this store holds (a later Cleanup
// deletes them) and makes every further operation fail with ErrClosed. It
// waits for the operations in progress. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	for d, f := range s.held {
		f.Close()
		delete(s.held, d)
	}
	return nil
}
