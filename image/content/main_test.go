package content

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// The test binary doubles as the child writer process of the multi-process
// tests (as runc's does for its init): TestMain runs the child when this
// variable names a mode, instead of the tests.
const childEnv = "HULL_CONTENT_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		if err := runChild(mode); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childArgs is what a child writer is told through its environment.
type childArgs struct {
	root     string
	ref      string
	src      string        // file holding the whole blob
	expected digest.Digest // "" for none
	size     int64
	stop     int64         // write up to this offset, then Close without commit (0: write all, commit)
	delay    time.Duration // pause between 16 KiB chunks, to keep the lock held while the parent acts
}

func (a childArgs) env(mode string) []string {
	return append(os.Environ(),
		childEnv+"="+mode,
		"CHILD_ROOT="+a.root,
		"CHILD_REF="+a.ref,
		"CHILD_SRC="+a.src,
		"CHILD_EXPECTED="+string(a.expected),
		"CHILD_SIZE="+strconv.FormatInt(a.size, 10),
		"CHILD_STOP="+strconv.FormatInt(a.stop, 10),
		"CHILD_DELAY="+a.delay.String(),
	)
}

// runChild is the child process. Modes:
//
//	partial   write the first CHILD_STOP bytes, print "ready", then hang
//	          until killed (a download interrupted by SIGKILL)
//	download  print "locked" once it owns the ingest, write from Offset to
//	          CHILD_STOP (or the end, then commit), print
//	          "result start=N wrote=N committed=B exists=B"
func runChild(mode string) error {
	var a childArgs
	var err error
	a.root, a.ref, a.src = os.Getenv("CHILD_ROOT"), os.Getenv("CHILD_REF"), os.Getenv("CHILD_SRC")
	a.expected = digest.Digest(os.Getenv("CHILD_EXPECTED"))
	if a.size, err = strconv.ParseInt(os.Getenv("CHILD_SIZE"), 10, 64); err != nil {
		return err
	}
	if a.stop, err = strconv.ParseInt(os.Getenv("CHILD_STOP"), 10, 64); err != nil {
		return err
	}
	if a.delay, err = time.ParseDuration(os.Getenv("CHILD_DELAY")); err != nil {
		return err
	}
	src, err := os.ReadFile(a.src)
	if err != nil {
		return err
	}
	s, err := Open(a.root)
	if err != nil {
		return err
	}
	w, err := s.Writer(context.Background(), a.ref, a.expected, a.size)
	if errors.Is(err, ErrExists) {
		fmt.Println("result start=0 wrote=0 committed=false exists=true")
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	switch mode {
	case "partial":
		if _, err := w.Write(src[w.Offset():a.stop]); err != nil {
			return err
		}
		fmt.Println("ready")
		time.Sleep(time.Hour) // until the parent kills us
		return errors.New("not killed")
	case "download":
		fmt.Println("locked")
		start := w.Offset()
		end := int64(len(src))
		if a.stop > 0 {
			end = a.stop
		}
		for off := start; off < end; {
			n := min(end-off, 16<<10)
			if _, err := w.Write(src[off : off+n]); err != nil {
				return err
			}
			off += n
			time.Sleep(a.delay)
		}
		committed := false
		if a.stop == 0 {
			if err := w.Commit(); err != nil {
				return err
			}
			committed = true
		}
		fmt.Printf("result start=%d wrote=%d committed=%t exists=false\n", start, end-start, committed)
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// child is a running child writer.
type child struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

// startChild runs the test binary as a child writer. It is killed and reaped
// when the test ends, whatever happens.
func startChild(t *testing.T, mode string, a childArgs) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = a.env(mode)
	cmd.Stderr = os.Stderr
	// If the test binary dies, its children must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return &child{cmd: cmd, out: bufio.NewReader(out)}
}

// line reads the child's next output line, failing the test after a timeout
// (a hung child must not hang the test).
func (c *child) line(t *testing.T) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := c.out.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("child output: %v (got %q)", r.err, r.s)
		}
		return r.s
	case <-time.After(30 * time.Second):
		t.Fatal("child: no output within 30s")
		return ""
	}
}

// wait reaps the child and fails the test if it did not exit 0.
func (c *child) wait(t *testing.T) {
	t.Helper()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// childResult is a parsed "result ..." line.
type childResult struct {
	start, wrote      int64
	committed, exists bool
}

func parseResult(t *testing.T, line string) childResult {
	t.Helper()
	var r childResult
	if _, err := fmt.Sscanf(line, "result start=%d wrote=%d committed=%t exists=%t",
		&r.start, &r.wrote, &r.committed, &r.exists); err != nil {
		t.Fatalf("child result %q: %v", line, err)
	}
	return r
}

// testBlob returns n random bytes and their digest.
func testBlob(t *testing.T, n int) ([]byte, digest.Digest) {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		t.Fatal(err)
	}
	return b, digest.FromBytes(b)
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeBlob writes and commits b under ref, failing the test on error.
func writeBlob(t *testing.T, s *Store, ref string, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	w, err := s.Writer(context.Background(), ref, d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return d
}

// readBlob returns the committed content of d.
func readBlob(t *testing.T, s *Store, d digest.Digest) []byte {
	t.Helper()
	f, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ingestCount is how many ingest directories exist.
func ingestCount(t *testing.T, s *Store) int {
	t.Helper()
	entries, err := os.ReadDir(s.ingest)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// blobNames lists what is under blobs/sha256.
func blobNames(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.blobs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
