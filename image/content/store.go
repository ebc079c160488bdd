// Package content is hull's content-addressed blob store: image manifests,
// configs and layers, each kept once under its digest, after the discipline
// of containerd's local content store.
//
// Layout under the store's root:
//
//	blobs/sha256/<hex>        committed blobs, mode 0444, never written in place
//	ingest/<sha256(ref)>/     one directory per in-progress download ("ingest"):
//	    lock                  flock(2)ed by the one Writer that owns the ingest
//	    meta.json             the ref, expected digest and size
//	    data                  the bytes received so far
//
// A blob becomes visible only by rename(2) of a fully written, verified and
// fsynced data file, so nothing half-written ever appears under blobs/.
// Partial data survives a crash of the writing process: a new Writer for the
// same ref resumes where the old one stopped.
//
// The Store is safe for concurrent use by the goroutines of one process and
// by several processes sharing a root: per-ref flocks serialise writers, and
// every other operation is a single atomic filesystem step.
package content

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Errors; the store wraps them with the blob or ref they concern (errors.Is).
var (
	// ErrNotFound: no committed blob (or no ingest) under that digest (ref).
	ErrNotFound = errors.New("not found")
	// ErrExists: the blob is already committed; nothing needs downloading.
	ErrExists = errors.New("already exists")
	// ErrDigestMismatch: the received bytes do not hash to the expected digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: more or fewer bytes than the expected size.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrInvalidDigest: not a well-formed digest of a supported algorithm
	// (sha256 with 64 lowercase hex digits).
	ErrInvalidDigest = errors.New("invalid digest")
	// ErrLocked: another Writer (in this or another process) holds the
	// ingest; returned by Abort, which does not wait.
	ErrLocked = errors.New("ingest in use by another writer")
)

const (
	blobsDir  = "blobs"
	ingestDir = "ingest"
	// blobMode makes committed blobs read-only: content-addressed data must
	// never change under its name.
	blobMode = 0o444
)

// Store is a content store rooted at one directory.
type Store struct {
	root   string
	blobs  string // root/blobs/sha256
	ingest string // root/ingest
}

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time // when it was committed
}

// Open opens the store at root, creating root/blobs/sha256 and root/ingest
// if needed.
func Open(root string) (*Store, error) {
	// An absolute root keeps every path the store hands out meaningful even
	// if the process changes its working directory later.
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("content store %s: %w", root, err)
	}
	s := &Store{
		root:   abs,
		blobs:  filepath.Join(abs, blobsDir, string(digest.SHA256)),
		ingest: filepath.Join(abs, ingestDir),
	}
	if err := os.MkdirAll(s.blobs, 0o755); err != nil {
		return nil, fmt.Errorf("content store %s: create blobs dir: %w", abs, err)
	}
	// Ingests hold unverified data; nobody but the store's owner reads them.
	if err := os.MkdirAll(s.ingest, 0o700); err != nil {
		return nil, fmt.Errorf("content store %s: create ingest dir: %w", abs, err)
	}
	return s, nil
}

// Root is the store's root directory (absolute).
func (s *Store) Root() string { return s.root }

// ValidateDigest reports whether d can name a blob in the store: "sha256:"
// and 64 lowercase hex digits. Digests come from manifests, which are
// hostile input; this check is what keeps one from naming a path outside
// blobs/sha256.
func ValidateDigest(d digest.Digest) error {
	hex, ok := strings.CutPrefix(string(d), string(digest.SHA256)+":")
	if !ok {
		return fmt.Errorf("digest %q: only sha256 is supported: %w", truncate(string(d)), ErrInvalidDigest)
	}
	if len(hex) != 64 {
		return fmt.Errorf("digest %q: want 64 hex digits, got %d characters: %w", truncate(string(d)), len(hex), ErrInvalidDigest)
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("digest %q: not lowercase hex: %w", truncate(string(d)), ErrInvalidDigest)
		}
	}
	return nil
}

// truncate keeps error messages readable when a hostile manifest hands us a
// megabyte-long "digest".
func truncate(s string) string {
	const limit = 100
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// Path is where the committed blob d lives (whether or not it exists), or ""
// if d is not a valid digest (see ValidateDigest).
func (s *Store) Path(d digest.Digest) string {
	if ValidateDigest(d) != nil {
		return ""
	}
	return s.blobPath(d)
}

// blobPath is Path for a digest already validated.
func (s *Store) blobPath(d digest.Digest) string {
	return filepath.Join(s.blobs, d.Encoded())
}

// Info describes the committed blob d; the error wraps ErrNotFound if there
// is none.
func (s *Store) Info(d digest.Digest) (Info, error) {
	if err := ValidateDigest(d); err != nil {
		return Info{}, fmt.Errorf("blob info: %w", err)
	}
	fi, err := os.Lstat(s.blobPath(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		return Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("blob %s: %s is not a regular file (%s)", d, s.blobPath(d), fi.Mode().Type())
	}
	return Info{Digest: d, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// exists reports whether the blob d (valid) is committed.
func (s *Store) exists(d digest.Digest) (bool, error) {
	_, err := os.Lstat(s.blobPath(d))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("blob %s: %w", d, err)
}

// Open opens the committed blob d read-only; the error wraps ErrNotFound if
// there is none.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	if err := ValidateDigest(d); err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	// O_NOFOLLOW: blobs are regular files renamed in by Commit; a symlink
	// there was put by someone else and must not redirect our reads.
	f, err := os.OpenFile(s.blobPath(d), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open blob %s: not a regular file (%s)", d, fi.Mode().Type())
	}
	return f, nil
}

// Delete removes the committed blob d; the error wraps ErrNotFound if there
// is none. Readers that already opened it keep reading the old inode.
func (s *Store) Delete(d digest.Digest) error {
	if err := ValidateDigest(d); err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	// No directory fsync: a delete undone by a crash leaves a complete,
	// verified blob, which is harmless (GC runs again).
	if err := os.Remove(s.blobPath(d)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete blob %s: %w", d, ErrNotFound)
		}
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every committed blob, in lexical digest order. It stops
// at the first error fn returns and returns that error unwrapped. Blobs
// deleted while Walk runs may or may not be seen.
func (s *Store) Walk(fn func(Info) error) error {
	entries, err := os.ReadDir(s.blobs)
	if err != nil {
		return fmt.Errorf("walk blobs in %s: %w", s.blobs, err)
	}
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		// Anything that is not a blob name was not put there by the store;
		// skip it rather than fail every walk (and GC) because of it.
		if ValidateDigest(d) != nil || !e.Type().IsRegular() {
			continue
		}
		info, err := s.Info(d)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // deleted since ReadDir
			}
			return fmt.Errorf("walk blobs: %w", err)
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Usage is the disk space of committed blobs and of ingests (partial data
// and their bookkeeping files), in bytes of allocated blocks.
func (s *Store) Usage() (blobs, ingests int64, err error) {
	if blobs, err = diskUsage(s.blobs); err != nil {
		return 0, 0, fmt.Errorf("usage of blobs: %w", err)
	}
	if ingests, err = diskUsage(s.ingest); err != nil {
		return 0, 0, fmt.Errorf("usage of ingests: %w", err)
	}
	return blobs, ingests, nil
}

// diskUsage sums the allocated blocks of the regular files under dir, so
// sparse files count for what they occupy, not their length.
func diskUsage(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != dir {
				return nil // removed while we walk (a commit, an abort)
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512 // st_blocks is always in 512-byte units
		}
		return nil
	})
	return total, err
}
