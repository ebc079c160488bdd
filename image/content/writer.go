package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// File names inside an ingest directory.
const (
	lockName    = "lock"
	metaName    = "meta.json"
	metaTmpName = "meta.json.tmp"
	dataName    = "data"
)

// Lock polling: flock(2) cannot be interrupted by a context, so a waiting
// Writer polls with LOCK_NB, backing off to at most lockPollMax between tries.
const (
	lockPollMin = time.Millisecond
	lockPollMax = 50 * time.Millisecond
)

// IngestInfo describes an ingest: a download in progress, or one that was
// interrupted and can be resumed.
type IngestInfo struct {
	Ref       string
	Offset    int64         // bytes received so far
	Expected  digest.Digest // "" if the writer did not say
	Total     int64         // expected size, 0 if unknown
	UpdatedAt time.Time     // last write
}

// ingestMeta is meta.json: what the Writer was opened with, so a later one
// (maybe in another process) can tell whether the partial data is of the
// blob it wants.
type ingestMeta struct {
	Ref      string        `json:"ref"`
	Expected digest.Digest `json:"expected,omitempty"`
	Total    int64         `json:"total,omitempty"`
}

// Writer writes one blob into an ingest, hashing while it writes, and
// commits it under its digest. It owns the ingest's lock from Store.Writer
// until Commit or Close. A Writer is not safe for concurrent use.
type Writer struct {
	s        *Store
	ref      string
	dir      string
	expected digest.Digest
	total    int64

	lock   *os.File
	data   *os.File
	hash   hash.Hash // state covers exactly data[0:offset]
	offset int64

	// err is sticky after a failed Write: the data on disk may then be
	// shorter than what the caller thinks it sent, so committing it would
	// commit a partial blob. Truncate(0) clears it.
	err  error
	done bool // committed, discarded or closed: the lock is released
}

// ingestPath is the directory of ref's ingest. The ref is any string the
// caller chooses, so it is hashed into a fixed-size name that cannot be a
// path; meta.json keeps the ref itself.
func (s *Store) ingestPath(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(s.ingest, hex.EncodeToString(sum[:]))
}

// Writer opens the ingest ref for writing, waiting (until ctx is done) while
// another Writer, in this process or another, holds it. If the ingest holds
// partial data from an earlier Writer, the new one resumes after it
// (Offset); partial data recorded for another expected digest or size is
// discarded first.
//
// expected ("" if unknown) and size (0 if unknown) are checked by Commit;
// size also bounds Write. If expected is already committed, Writer returns
// an error wrapping ErrExists, at once or after the wait: a blob that another
// writer committed meanwhile is not downloaded again.
func (s *Store) Writer(ctx context.Context, ref string, expected digest.Digest, size int64) (*Writer, error) {
	if ref == "" {
		return nil, errors.New("content writer: empty ref")
	}
	if size < 0 {
		return nil, fmt.Errorf("ingest %q: negative size %d", ref, size)
	}
	if expected != "" {
		if err := ValidateDigest(expected); err != nil {
			return nil, fmt.Errorf("ingest %q: expected %w", ref, err)
		}
		if err := s.checkCommitted(ref, expected, nil); err != nil {
			return nil, err
		}
	}
	dir := s.ingestPath(ref)
	lock, err := s.lockIngest(ctx, dir, ref, true)
	if err != nil {
		return nil, err
	}
	// Re-check under the lock: the writer we waited for may have committed
	// this blob (under this ref or another one).
	if expected != "" {
		if err := s.checkCommitted(ref, expected, lock); err != nil {
			lock.Close()
			return nil, err
		}
	}
	w := &Writer{s: s, ref: ref, dir: dir, expected: expected, total: size, lock: lock, hash: sha256.New()}
	if err := w.open(); err != nil {
		return nil, errors.Join(err, w.release())
	}
	return w, nil
}

// checkCommitted returns an error wrapping ErrExists if expected is
// committed. It then also drops ref's ingest if that was for the same blob:
// it is what a crash between Commit's rename and its cleanup leaves behind,
// and nobody needs it any more.
// held is ref's ingest lock if the caller holds it, else nil.
func (s *Store) checkCommitted(ref string, expected digest.Digest, held *os.File) error {
	ok, err := s.exists(expected)
	if err != nil {
		return fmt.Errorf("ingest %q: %w", ref, err)
	}
	if !ok {
		return nil
	}
	// Best effort, without waiting: a failure here leaves a stale ingest for
	// Ingests/Abort to clean, and must not hide the useful answer.
	_ = s.dropIngest(ref, held, func(m *ingestMeta) bool { return m != nil && m.Expected == expected })
	return fmt.Errorf("blob %s: %w", expected, ErrExists)
}

// dropIngest removes ref's ingest if match accepts its meta (nil if it has
// none). held is the ingest's lock if the caller holds it (it stays held);
// otherwise dropIngest takes the lock without waiting, and the error wraps
// ErrLocked if a Writer holds it. The error wraps ErrNotFound if there is no
// ingest.
func (s *Store) dropIngest(ref string, held *os.File, match func(*ingestMeta) bool) error {
	dir := s.ingestPath(ref)
	lock := held
	if held == nil {
		if _, err := os.Lstat(dir); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("ingest %q: %w", ref, ErrNotFound)
			}
			return fmt.Errorf("ingest %q: %w", ref, err)
		}
		var err error
		if lock, err = s.lockIngest(context.Background(), dir, ref, false); err != nil {
			return err
		}
		defer lock.Close()
	}
	m, err := readMeta(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ingest %q: %w", ref, err)
	}
	if !match(m) {
		return nil
	}
	if err := removeIngest(dir); err != nil {
		return fmt.Errorf("ingest %q: %w", ref, err)
	}
	return nil
}

// lockIngest creates dir if needed and returns its lock file, flocked.
// With wait it polls until ctx is done; without, it fails with ErrLocked.
func (s *Store) lockIngest(ctx context.Context, dir, ref string, wait bool) (*os.File, error) {
	lockPath := filepath.Join(dir, lockName)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ingest %q: %w", ref, err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("ingest %q: create %s: %w", ref, dir, err)
		}
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // the previous owner removed the dir just now
			}
			return nil, fmt.Errorf("ingest %q: open lock: %w", ref, err)
		}
		if err := flock(ctx, f, wait); err != nil {
			f.Close()
			if errors.Is(err, ErrLocked) {
				return nil, fmt.Errorf("ingest %q: %w", ref, err)
			}
			return nil, fmt.Errorf("ingest %q: wait for the writer holding it: %w", ref, err)
		}
		// The owner we waited for removes the lock file (Commit, Abort)
		// before it unlocks: we then hold a lock on an unlinked file that
		// the next comer will not see, which protects nothing. Only a lock
		// on the file still at lockPath counts.
		held, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("ingest %q: stat lock: %w", ref, err)
		}
		cur, err := os.Lstat(lockPath)
		if err == nil && os.SameFile(held, cur) {
			return f, nil
		}
		f.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("ingest %q: stat lock: %w", ref, err)
		}
	}
}

// flock takes an exclusive flock on f, polling while wait and ctx allow.
func flock(ctx context.Context, f *os.File, wait bool) error {
	fd := int(f.Fd())
	delay := lockPollMin
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EWOULDBLOCK):
			return fmt.Errorf("flock: %w", err)
		case !wait:
			return ErrLocked
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, lockPollMax)
	}
}

// open prepares the ingest for writing, under the lock: records meta.json,
// opens the data file and hashes the partial data already there.
func (w *Writer) open() error {
	old, err := readMeta(w.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", w.name(), err)
	}
	// Partial data recorded for another blob cannot be resumed: it would
	// only fail verification after the whole rest has been downloaded.
	stale := old != nil && (old.Ref != w.ref ||
		(old.Expected != "" && w.expected != "" && old.Expected != w.expected) ||
		(old.Total > 0 && w.total > 0 && old.Total != w.total))
	m := ingestMeta{Ref: w.ref, Expected: w.expected, Total: w.total}
	if old == nil || *old != m {
		if err := writeMeta(w.dir, &m); err != nil {
			return fmt.Errorf("%s: %w", w.name(), err)
		}
	}
	w.data, err = os.OpenFile(filepath.Join(w.dir, dataName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("%s: open ingest data: %w", w.name(), err)
	}
	if stale {
		return w.reset()
	}
	// The one re-read of partial data: the hash state of the writer that
	// stopped died with it. The wrapper hides os.File's WriteTo, so the
	// large buffer is used.
	n, err := io.CopyBuffer(w.hash, struct{ io.Reader }{w.data}, make([]byte, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: hash partial data: %w", w.name(), err)
	}
	w.offset = n
	if w.total > 0 && n > w.total {
		// More than the blob's size cannot be a prefix of it.
		return w.reset()
	}
	return nil
}

// name is how errors name what is being written: the blob when its digest
// is known (that is what users recognise), else the ingest's ref.
func (w *Writer) name() string {
	if w.expected != "" {
		return "blob " + w.expected.String()
	}
	return fmt.Sprintf("ingest %q", w.ref)
}

// Write appends p to the ingest. A write that would go past the expected
// size fails without writing anything and discards the partial data: the
// source is not sending the blob it described. Any failed Write makes
// Commit fail until Truncate(0).
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("%s: write: %w", w.name(), os.ErrClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.total > 0 && w.offset+int64(len(p)) > w.total {
		err := fmt.Errorf("%s: got at least %d bytes, want %d: %w",
			w.name(), w.offset+int64(len(p)), w.total, ErrSizeMismatch)
		if rerr := w.reset(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		w.err = err
		return 0, err
	}
	n, err := w.data.WriteAt(p, w.offset)
	// Account for what reached the file even on a short write, so offset
	// and hash keep describing exactly the data on disk.
	w.hash.Write(p[:n])
	w.offset += int64(n)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			err = fmt.Errorf("%s: disk full after %d bytes (partial data kept in the ingest; free space and retry to resume, or abort it): %w",
				w.name(), w.offset, err)
		} else {
			err = fmt.Errorf("%s: write at offset %d: %w", w.name(), w.offset, err)
		}
		w.err = err
		return n, err
	}
	return n, nil
}

// Offset is the number of bytes in the ingest: where a resumed download
// starts (an HTTP Range request from this offset).
func (w *Writer) Offset() int64 { return w.offset }

// Digest is the digest of the bytes written so far (resumed bytes included).
func (w *Writer) Digest() digest.Digest {
	return digest.NewDigest(digest.SHA256, w.hash)
}

// Truncate restarts the ingest from byte n. Only n == 0 is supported: the
// registry refused a Range request and sends the whole blob again.
func (w *Writer) Truncate(n int64) error {
	if w.done {
		return fmt.Errorf("%s: truncate: %w", w.name(), os.ErrClosed)
	}
	if n != 0 {
		return fmt.Errorf("%s: truncate to %d: only 0 is supported", w.name(), n)
	}
	if err := w.reset(); err != nil {
		return err
	}
	w.err = nil
	return nil
}

// reset empties the data file and the hash.
func (w *Writer) reset() error {
	if err := w.data.Truncate(0); err != nil {
		return fmt.Errorf("%s: truncate ingest data: %w", w.name(), err)
	}
	w.hash.Reset()
	w.offset = 0
	return nil
}

// Commit verifies the size and digest and makes the blob visible under its
// digest. On a mismatch the partial data is removed and the error names
// what was expected and what was received. If the blob is already committed
// the ingest is removed and the error wraps ErrExists. After Commit returns
// (either way) the Writer is released, except when the failure is an I/O
// error that left the partial data intact: then Close still has to be
// called (it always may be).
func (w *Writer) Commit() error {
	if w.done {
		return fmt.Errorf("%s: commit: %w", w.name(), os.ErrClosed)
	}
	if w.err != nil {
		return fmt.Errorf("commit refused after a failed write: %w", w.err)
	}
	if w.total > 0 && w.offset != w.total {
		return w.discard(fmt.Errorf("%s: got %d bytes, want %d: %w", w.name(), w.offset, w.total, ErrSizeMismatch))
	}
	actual := w.Digest()
	if w.expected != "" && actual != w.expected {
		return w.discard(fmt.Errorf("%s: got %d bytes with digest %s, want %s: %w",
			w.name(), w.offset, actual, w.expected, ErrDigestMismatch))
	}
	name := "blob " + actual.String()
	if err := w.data.Sync(); err != nil {
		return fmt.Errorf("%s: sync ingest data: %w", name, err)
	}
	dataPath := filepath.Join(w.dir, dataName)
	// Read-only before it becomes visible, so the blob is never writable
	// under its name. CreatedAt is the mtime: make it the commit time, not
	// the last write of a download that may have been resumed days later.
	if err := w.data.Chmod(blobMode); err != nil {
		return fmt.Errorf("%s: chmod ingest data: %w", name, err)
	}
	now := time.Now()
	if err := os.Chtimes(dataPath, now, now); err != nil {
		return w.undoChmod(fmt.Errorf("%s: set commit time: %w", name, err))
	}
	target := w.s.blobPath(actual)
	if err := renameNoReplace(dataPath, target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return w.discard(fmt.Errorf("%s: %w", name, ErrExists))
		}
		return w.undoChmod(fmt.Errorf("%s: rename into blobs: %w", name, err))
	}
	// The rename is durable only once the directory is synced. If that
	// fails the blob is visible but may vanish on a crash: report it, and
	// release the ingest all the same (its data is now the blob).
	syncErr := syncDir(w.s.blobs)
	if syncErr != nil {
		syncErr = fmt.Errorf("%s: sync blobs dir: %w", name, syncErr)
	}
	return errors.Join(syncErr, w.discard(nil))
}

// undoChmod makes the ingest data writable again after a Commit that failed
// before the rename, so a later Writer (maybe not root) can reopen it.
func (w *Writer) undoChmod(err error) error {
	if cerr := w.data.Chmod(0o600); cerr != nil {
		return errors.Join(err, fmt.Errorf("%s: restore ingest data mode: %w", w.name(), cerr))
	}
	return err
}

// discard removes the ingest and releases the Writer, returning cause
// joined with any cleanup error.
func (w *Writer) discard(cause error) error {
	var rmErr error
	if err := removeIngest(w.dir); err != nil {
		rmErr = fmt.Errorf("%s: remove ingest: %w", w.name(), err)
	}
	return errors.Join(cause, rmErr, w.release())
}

// Close releases the Writer. Unless it was committed, the partial data stays
// in the ingest for a later Writer on the same ref to resume. Close after
// Commit is a no-op.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	return w.release()
}

// release closes the data file and the lock (closing unlocks).
func (w *Writer) release() error {
	w.done = true
	var errs []error
	if w.data != nil {
		if err := w.data.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: close ingest data: %w", w.name(), err))
		}
	}
	if err := w.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("%s: close ingest lock: %w", w.name(), err))
	}
	return errors.Join(errs...)
}

// removeIngest deletes an ingest directory whose lock the caller holds. The
// lock file goes last, while still locked: a waiter that then gets the lock
// sees the file is no longer at its path and starts over (see lockIngest).
func removeIngest(dir string) error {
	for _, name := range []string{dataName, metaTmpName, metaName, lockName} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// ENOTEMPTY: a new Writer for the same ref already created its lock
	// file here; the directory is now its.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return err
	}
	return nil
}

// Abort removes the partial data of ingest ref. It does not wait for a
// Writer that holds the ingest: the error then wraps ErrLocked. It wraps
// ErrNotFound if there is no such ingest.
func (s *Store) Abort(ref string) error {
	if ref == "" {
		return errors.New("abort ingest: empty ref")
	}
	if err := s.dropIngest(ref, nil, func(*ingestMeta) bool { return true }); err != nil {
		return fmt.Errorf("abort: %w", err)
	}
	return nil
}

// Ingests lists the ingests: downloads in progress and interrupted ones.
func (s *Store) Ingests() ([]IngestInfo, error) {
	entries, err := os.ReadDir(s.ingest)
	if err != nil {
		return nil, fmt.Errorf("list ingests in %s: %w", s.ingest, err)
	}
	var out []IngestInfo
	for _, e := range entries {
		if !e.IsDir() || len(e.Name()) != 64 {
			continue
		}
		dir := filepath.Join(s.ingest, e.Name())
		m, err := readMeta(dir)
		if err != nil {
			// No meta: being created right now, or removed since ReadDir.
			// Either way there is no ref to report it under.
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("list ingests: %s: %w", dir, err)
		}
		info := IngestInfo{Ref: m.Ref, Expected: m.Expected, Total: m.Total}
		fi, err := os.Stat(filepath.Join(dir, dataName))
		switch {
		case err == nil:
			info.Offset, info.UpdatedAt = fi.Size(), fi.ModTime()
		case errors.Is(err, fs.ErrNotExist):
			if mi, err := os.Stat(filepath.Join(dir, metaName)); err == nil {
				info.UpdatedAt = mi.ModTime()
			}
		default:
			return nil, fmt.Errorf("list ingests: ingest %q: %w", m.Ref, err)
		}
		out = append(out, info)
	}
	return out, nil
}

// readMeta reads dir's meta.json; the error wraps fs.ErrNotExist if there is
// none.
func readMeta(dir string) (*ingestMeta, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaName))
	if err != nil {
		return nil, fmt.Errorf("read ingest meta: %w", err)
	}
	var m ingestMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("ingest meta %s is corrupt: %w", filepath.Join(dir, metaName), err)
	}
	return &m, nil
}

// writeMeta replaces dir's meta.json atomically (the caller holds the lock,
// so the temporary name is fixed).
func writeMeta(dir string, m *ingestMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode ingest meta: %w", err)
	}
	tmp := filepath.Join(dir, metaTmpName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write ingest meta: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, metaName))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write ingest meta: %w", err)
	}
	return nil
}

// renameNoReplace renames old to new unless new exists (the error then
// wraps fs.ErrExist). RENAME_NOREPLACE closes the window between an exists
// check and the rename in which another ref could commit the same blob;
// filesystems without it fall back to that check.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EEXIST) {
		return fs.ErrExist
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	if _, err := os.Lstat(newpath); err == nil {
		return fs.ErrExist
	}
	// Same content under the same name: losing that race overwrites a blob
	// with identical bytes, which readers cannot tell apart.
	return os.Rename(oldpath, newpath)
}

// syncDir fsyncs a directory, making renames in it durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Partial returns a reader of the bytes already in the ingest (the first
// Offset() of them), for a caller that must see a resumed blob from its
// start, such as a layer unpacked while it downloads.
func (w *Writer) Partial() io.Reader {
	return io.NewSectionReader(w.data, 0, w.offset)
}
