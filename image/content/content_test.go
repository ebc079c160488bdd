package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func TestCommitMakesReadOnlyBlobAndRemovesIngest(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 100000)
	before := time.Now().Add(-time.Second)
	if got := writeBlob(t, s, "layer-1", b); got != d {
		t.Fatalf("digest %s, want %s", got, d)
	}
	if !bytes.Equal(readBlob(t, s, d), b) {
		t.Fatal("committed content differs")
	}
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("blob mode %v, want 0444", fi.Mode().Perm())
	}
	if s.Path(d) != filepath.Join(s.Root(), "blobs", "sha256", d.Encoded()) {
		t.Errorf("Path = %s", s.Path(d))
	}
	info, err := s.Info(d)
	if err != nil {
		t.Fatal(err)
	}
	if info.Digest != d || info.Size != int64(len(b)) || info.CreatedAt.Before(before) {
		t.Errorf("Info = %+v", info)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Errorf("%d ingest dirs left after commit", n)
	}
}

func TestCommitWithoutExpectationsUsesComputedDigest(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 1000)
	w, err := s.Writer(context.Background(), "unknown", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(b[:10])
	w.Write(b[10:])
	if w.Digest() != d {
		t.Fatalf("Digest %s, want %s", w.Digest(), d)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readBlob(t, s, d), b) {
		t.Fatal("content differs")
	}
}

func TestResumeAfterWriterClosedMidway(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 300000)
	ctx := context.Background()
	w, err := s.Writer(ctx, "ref", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	half := len(b) / 2
	if _, err := w.Write(b[:half]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	ingests, err := s.Ingests()
	if err != nil {
		t.Fatal(err)
	}
	if len(ingests) != 1 || ingests[0].Ref != "ref" || ingests[0].Offset != int64(half) ||
		ingests[0].Expected != d || ingests[0].Total != int64(len(b)) || ingests[0].UpdatedAt.IsZero() {
		t.Fatalf("Ingests = %+v", ingests)
	}

	w, err = s.Writer(ctx, "ref", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != int64(half) {
		t.Fatalf("resumed at %d, want %d", w.Offset(), half)
	}
	if w.Digest() != digest.FromBytes(b[:half]) {
		t.Fatal("resumed digest state does not cover the partial data")
	}
	if _, err := w.Write(b[half:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readBlob(t, s, d), b) {
		t.Fatal("content differs")
	}
}

func TestResumeAfterWriterProcessKilled(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 500000)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, b, 0o600); err != nil {
		t.Fatal(err)
	}
	part := int64(123457)
	c := startChild(t, "partial", childArgs{root: s.Root(), ref: "ref", src: src, expected: d, size: int64(len(b)), stop: part})
	if l := c.line(t); l != "ready" {
		t.Fatalf("child said %q", l)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait() // "signal: killed" is the point

	// The kernel released the dead child's flock; its data is still there.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := s.Writer(ctx, "ref", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != part {
		t.Fatalf("resumed at %d, want %d", w.Offset(), part)
	}
	if _, err := w.Write(b[part:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readBlob(t, s, d), b) {
		t.Fatal("content differs")
	}
}

func TestResumeDiscardsPartialDataOfAnotherBlob(t *testing.T) {
	s := newStore(t)
	a, da := testBlob(t, 1000)
	b, db := testBlob(t, 1000)
	w, err := s.Writer(context.Background(), "reused-ref", da, int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(a[:500])
	w.Close()

	w, err = s.Writer(context.Background(), "reused-ref", db, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 0 {
		t.Fatalf("resumed %d bytes of another blob", w.Offset())
	}
	w.Write(b)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestTruncateRestartsIngest(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 4096)
	w, err := s.Writer(context.Background(), "ref", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(bytes.Repeat([]byte("x"), 1000)) // partial data the registry will not resume from
	if err := w.Truncate(1); err == nil {
		t.Fatal("Truncate(1) accepted")
	}
	if err := w.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 0 || w.Digest() != digest.FromBytes(nil) {
		t.Fatalf("after Truncate(0): offset %d digest %s", w.Offset(), w.Digest())
	}
	w.Write(b)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestCommitDigestMismatchRemovesIngest(t *testing.T) {
	s := newStore(t)
	b, _ := testBlob(t, 2000)
	_, wrong := testBlob(t, 2000)
	w, err := s.Writer(context.Background(), "ref", wrong, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(b)
	err = w.Commit()
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Commit: %v, want ErrDigestMismatch", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, wrong.String()) || !strings.Contains(msg, digest.FromBytes(b).String()) {
		t.Errorf("error does not name both digests: %s", msg)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Errorf("%d ingests left after mismatch", n)
	}
	if names := blobNames(t, s); len(names) != 0 {
		t.Errorf("blobs after mismatch: %v", names)
	}
	if err := w.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
}

func TestCommitSizeMismatchNamesBothSizes(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 456)
	w, err := s.Writer(context.Background(), "ref", d, 456)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(b[:123])
	err = w.Commit()
	if !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("Commit: %v, want ErrSizeMismatch", err)
	}
	want := fmt.Sprintf("blob %s: got 123 bytes, want 456", d)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Errorf("%d ingests left after mismatch", n)
	}
	if names := blobNames(t, s); len(names) != 0 {
		t.Errorf("blobs after mismatch: %v", names)
	}
}

func TestWritePastExpectedSizeFailsImmediately(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 1000)
	w, err := s.Writer(context.Background(), "ref", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(b[:600]); err != nil {
		t.Fatal(err)
	}
	// The registry keeps sending: 600 + 600 > 1000.
	n, err := w.Write(b[:600])
	if !errors.Is(err, ErrSizeMismatch) || n != 0 {
		t.Fatalf("Write past size: n=%d err=%v", n, err)
	}
	if !strings.Contains(err.Error(), "got at least 1200 bytes, want 1000") {
		t.Errorf("error: %v", err)
	}
	if w.Offset() != 0 {
		t.Errorf("partial data of a lying source kept: offset %d", w.Offset())
	}
	if _, err := w.Write(b[:1]); err == nil {
		t.Error("Write after the failure accepted")
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after write past size succeeded")
	}
	if names := blobNames(t, s); len(names) != 0 {
		t.Errorf("blobs: %v", names)
	}
}

func TestWriterReturnsErrExistsForCommittedBlob(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 1000)
	writeBlob(t, s, "first", b)
	_, err := s.Writer(context.Background(), "second", d, int64(len(b)))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Writer for committed blob: %v, want ErrExists", err)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Errorf("ErrExists left %d ingests", n)
	}
}

func TestCommitOfExistingBlobReturnsErrExistsAndRemovesIngest(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 1000)
	// Two refs for the same blob (an image pulled under two names),
	// both writing before either commits.
	w1, err := s.Writer(context.Background(), "a", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Close()
	w2, err := s.Writer(context.Background(), "b", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	w1.Write(b)
	w2.Write(b)
	if err := w1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w2.Commit(); !errors.Is(err, ErrExists) {
		t.Fatalf("second Commit: %v, want ErrExists", err)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Errorf("%d ingests left", n)
	}
	if !bytes.Equal(readBlob(t, s, d), b) {
		t.Fatal("content differs")
	}
}

func TestWriterDropsIngestLeftByCrashAfterRename(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 1000)
	// A writer that was killed between Commit's rename and its cleanup
	// leaves an ingest for a blob that is committed.
	w, err := s.Writer(context.Background(), "ref", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := os.Link(filepath.Join(w.dir, dataName), s.blobPath(d)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := s.Writer(context.Background(), "ref", d, int64(len(b))); !errors.Is(err, ErrExists) {
		t.Fatalf("Writer: %v, want ErrExists", err)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Errorf("stale ingest kept")
	}
}

func TestSecondWriterWaitsThenGetsErrExists(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 10000)
	ctx := context.Background()
	w1, err := s.Writer(ctx, "ref", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Close()
	done := make(chan error, 1)
	go func() {
		w2, err := s.Writer(ctx, "ref", d, int64(len(b)))
		if err == nil {
			w2.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("second Writer did not wait for the first: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	w1.Write(b)
	if err := w1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrExists) {
		t.Fatalf("second Writer after commit: %v, want ErrExists", err)
	}
}

func TestSecondWriterResumesWhenFirstClosesWithoutCommit(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 10000)
	ctx := context.Background()
	w1, err := s.Writer(ctx, "ref", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		w   *Writer
		err error
	}
	done := make(chan res, 1)
	go func() {
		w2, err := s.Writer(ctx, "ref", d, int64(len(b)))
		done <- res{w2, err}
	}()
	w1.Write(b[:4000])
	time.Sleep(50 * time.Millisecond)
	w1.Close() // the download failed; the next writer takes over
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.w.Close()
	if r.w.Offset() != 4000 {
		t.Fatalf("second writer starts at %d, want 4000", r.w.Offset())
	}
	r.w.Write(b[4000:])
	if err := r.w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestWaiterForRemovedIngestDoesNotShareTheNextOne(t *testing.T) {
	s := newStore(t)
	b, _ := testBlob(t, 1000)
	_, wrong := testBlob(t, 1000)
	ctx := context.Background()
	w1, err := s.Writer(ctx, "ref", wrong, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Close()
	got := make(chan *Writer, 1)
	go func() {
		w2, err := s.Writer(ctx, "ref", "", 0)
		if err != nil {
			t.Error(err)
		}
		got <- w2
	}()
	time.Sleep(50 * time.Millisecond) // let w2 open the lock file and wait on it
	w1.Write(b)
	if err := w1.Commit(); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Commit: %v", err)
	}
	// The mismatch removed the ingest, lock file included, while w2 was
	// waiting on that file. w2 must own the ingest now, alone.
	w2 := <-got
	if w2 == nil {
		t.FailNow()
	}
	defer w2.Close()
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	w3, err := s.Writer(tctx, "ref", "", 0)
	if err == nil {
		w3.Close()
		t.Fatal("two writers hold the same ingest")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	w2.Write(b)
	if err := w2.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWritersSameRefCommitOnce(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 64<<10)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		written int64
		commits int
		exists  int
	)
	for range 16 {
		wg.Go(func() {
			w, err := s.Writer(context.Background(), "ref", d, int64(len(b)))
			if errors.Is(err, ErrExists) {
				mu.Lock()
				exists++
				mu.Unlock()
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			defer w.Close()
			n, err := w.Write(b[w.Offset():])
			if err == nil {
				err = w.Commit()
			}
			mu.Lock()
			defer mu.Unlock()
			written += int64(n)
			if err != nil {
				t.Error(err)
				return
			}
			commits++
		})
	}
	wg.Wait()
	if commits != 1 || exists != 15 || written != int64(len(b)) {
		t.Fatalf("commits=%d exists=%d written=%d, want 1, 15, %d", commits, exists, written, len(b))
	}
}

func TestTwoProcessesSameRefDownloadOnce(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 1<<20)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, b, 0o600); err != nil {
		t.Fatal(err)
	}
	args := childArgs{root: s.Root(), ref: "ref", src: src, expected: d, size: int64(len(b))}

	// A downloads slowly (64 chunks, 5ms apart); B starts while A holds
	// the ingest. Without the lock B would see no blob and download too.
	slow := args
	slow.delay = 5 * time.Millisecond
	a := startChild(t, "download", slow)
	if l := a.line(t); l != "locked" {
		t.Fatalf("A said %q", l)
	}
	bc := startChild(t, "download", args)
	ra := parseResult(t, a.line(t))
	rb := parseResult(t, bc.line(t))
	a.wait(t)
	bc.wait(t)
	if !ra.committed || ra.wrote != int64(len(b)) {
		t.Errorf("A: %+v, want all %d bytes committed", ra, len(b))
	}
	if !rb.exists || rb.wrote != 0 {
		t.Errorf("B: %+v, want ErrExists and nothing written", rb)
	}
	if !bytes.Equal(readBlob(t, s, d), b) {
		t.Fatal("content differs")
	}
}

func TestTwoProcessesSecondResumesWhereFirstStopped(t *testing.T) {
	s := newStore(t)
	b, d := testBlob(t, 1<<20)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, b, 0o600); err != nil {
		t.Fatal(err)
	}
	args := childArgs{root: s.Root(), ref: "ref", src: src, expected: d, size: int64(len(b))}
	// A writes the first 400 KiB slowly and gives up without committing.
	first := args
	first.delay, first.stop = 5*time.Millisecond, 400<<10
	a := startChild(t, "download", first)
	if l := a.line(t); l != "locked" {
		t.Fatalf("A said %q", l)
	}
	bc := startChild(t, "download", args)
	ra := parseResult(t, a.line(t))
	if l := bc.line(t); l != "locked" {
		t.Fatalf("B said %q", l)
	}
	rb := parseResult(t, bc.line(t))
	a.wait(t)
	bc.wait(t)
	if ra.committed || ra.wrote != 400<<10 {
		t.Errorf("A: %+v", ra)
	}
	if !rb.committed || rb.start != 400<<10 || rb.wrote != int64(len(b))-400<<10 {
		t.Errorf("B: %+v, want to resume at %d", rb, 400<<10)
	}
	if ra.wrote+rb.wrote != int64(len(b)) {
		t.Errorf("%d bytes written in all, blob is %d", ra.wrote+rb.wrote, len(b))
	}
	if !bytes.Equal(readBlob(t, s, d), b) {
		t.Fatal("content differs")
	}
}

func TestWriterHonoursContextWhileWaitingForLock(t *testing.T) {
	s := newStore(t)
	w1, err := s.Writer(context.Background(), "ref", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	w2, err := s.Writer(ctx, "ref", "", 0)
	if err == nil {
		w2.Close()
		t.Fatal("second Writer got the lock held by the first")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > 5*time.Second {
		t.Errorf("returned after %v", el)
	}
	// A cancelled waiter leaves the holder's ingest alone.
	if _, err := w1.Write([]byte("still mine")); err != nil {
		t.Fatal(err)
	}
	if err := w1.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestAbortRemovesIngestButNotOneInUse(t *testing.T) {
	s := newStore(t)
	w, err := s.Writer(context.Background(), "ref", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("partial"))
	if err := s.Abort("ref"); !errors.Is(err, ErrLocked) {
		t.Fatalf("Abort of an ingest in use: %v, want ErrLocked", err)
	}
	w.Close()
	if err := s.Abort("ref"); err != nil {
		t.Fatal(err)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Errorf("%d ingests after Abort", n)
	}
	if err := s.Abort("ref"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Abort: %v, want ErrNotFound", err)
	}
}

func TestWalkDeleteInfoUsage(t *testing.T) {
	s := newStore(t)
	sizes := []int{0, 1, 5000, 100000}
	want := map[digest.Digest]int64{}
	var total int64
	for i, n := range sizes {
		b, _ := testBlob(t, n)
		want[writeBlob(t, s, fmt.Sprint("ref", i), b)] = int64(n)
		total += int64(n)
	}
	// Something that is not a blob name, put there by hand.
	if err := os.WriteFile(filepath.Join(s.blobs, "junk"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := map[digest.Digest]int64{}
	if err := s.Walk(func(i Info) error { got[i.Digest] = i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Walk saw %v, want %v", got, want)
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(func(Info) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("Walk with failing fn: err %v after %d calls", err, calls)
	}

	partial, _ := testBlob(t, 20000)
	w, err := s.Writer(context.Background(), "partial", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(partial)
	w.Close()
	blobs, ingests, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if blobs < total || blobs > total+int64(len(sizes)+1)*64<<10 {
		t.Errorf("blob usage %d for %d bytes of blobs", blobs, total)
	}
	if ingests < int64(len(partial)) {
		t.Errorf("ingest usage %d for a %d-byte partial", ingests, len(partial))
	}

	for d := range want {
		if err := s.Delete(d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Info(d); !errors.Is(err, ErrNotFound) {
			t.Errorf("Info after Delete: %v", err)
		}
		if _, err := s.Open(d); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open after Delete: %v", err)
		}
		if err := s.Delete(d); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete: %v", err)
		}
	}
	if err := s.Walk(func(i Info) error { return fmt.Errorf("walked deleted %s", i.Digest) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort("partial"); err != nil {
		t.Fatal(err)
	}
	if blobs, ingests, err = s.Usage(); err != nil || ingests != 0 || blobs > 64<<10 {
		t.Errorf("Usage after Delete/Abort: blobs %d ingests %d err %v", blobs, ingests, err)
	}
}

func TestMalformedDigestsRejected(t *testing.T) {
	parent := t.TempDir()
	s, err := Open(filepath.Join(parent, "store"))
	if err != nil {
		t.Fatal(err)
	}
	hex := strings.Repeat("ab", 32)
	bad := []digest.Digest{
		"",
		"sha256",
		"sha256:",
		"sha256:../../../../etc/passwd",
		"sha256:../../" + digest.Digest(hex[:58]),
		"sha256:" + digest.Digest(strings.ToUpper(hex)),
		"sha256:" + digest.Digest(hex[:63]),
		"sha256:" + digest.Digest(hex) + "0",
		"sha256:" + digest.Digest(hex[:63]) + "/",
		"sha256:" + digest.Digest(hex[:63]) + "\x00",
		"sha512:" + digest.Digest(hex+hex),
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"SHA256:" + digest.Digest(hex),
		"/sha256:" + digest.Digest(hex),
		digest.Digest(hex),
		digest.Digest(strings.Repeat("x", 1<<20)),
	}
	for _, d := range bad {
		name := string(d)
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			if p := s.Path(d); p != "" {
				t.Errorf("Path = %q", p)
			}
			if _, err := s.Info(d); !errors.Is(err, ErrInvalidDigest) {
				t.Errorf("Info: %v", err)
			}
			if _, err := s.Open(d); !errors.Is(err, ErrInvalidDigest) {
				t.Errorf("Open: %v", err)
			}
			if err := s.Delete(d); !errors.Is(err, ErrInvalidDigest) {
				t.Errorf("Delete: %v", err)
			}
			w, err := s.Writer(context.Background(), "ref", d, 0)
			if d == "" {
				// No expectation at all is valid: the digest is computed.
				if err != nil {
					t.Fatal(err)
				}
				w.Close()
				s.Abort("ref")
				return
			}
			if !errors.Is(err, ErrInvalidDigest) {
				t.Errorf("Writer: %v", err)
			}
			if err == nil {
				w.Close()
			}
			if e := err.Error(); len(e) > 300 {
				t.Errorf("error message of %d bytes", len(e))
			}
		})
	}
	// Nothing was created beside the store.
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("entries beside the store: %v", entries)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Errorf("%d ingests", n)
	}
}

func TestDiskFullLeavesNoBlob(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0700"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	// Registered after TempDir's cleanup, so it runs before the removal.
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			unix.Unmount(mnt, unix.MNT_DETACH)
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	s, err := Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	b, d := testBlob(t, 2<<20)

	for _, tc := range []struct {
		name     string
		expected digest.Digest
		size     int64
	}{
		{"verified", d, int64(len(b))},
		// Without expectations the digest check cannot catch a short
		// blob: only the failed write can.
		{"unverified", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := s.Writer(context.Background(), tc.name, tc.expected, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			_, err = io.Copy(w, bytes.NewReader(b))
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("write of 2 MiB into 1 MiB: %v, want ENOSPC", err)
			}
			if !strings.Contains(err.Error(), "disk full") {
				t.Errorf("unclear error: %v", err)
			}
			if err := w.Commit(); err == nil {
				t.Fatal("Commit after ENOSPC succeeded")
			}
			if names := blobNames(t, s); len(names) != 0 {
				t.Fatalf("blobs after ENOSPC: %v", names)
			}
			w.Close()
			// The partial data is kept for a resume; Abort frees the space.
			if err := s.Abort(tc.name); err != nil {
				t.Fatal(err)
			}
		})
	}
	// With the space freed, the store works again.
	small, sd := testBlob(t, 100<<10)
	writeBlob(t, s, "small", small)
	if !bytes.Equal(readBlob(t, s, sd), small) {
		t.Fatal("content differs")
	}
}
