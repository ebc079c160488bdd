package image

import (
	"fmt"
	"io"
	"os"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"
)

// progress reports a pull: a bar per layer on a terminal (as Docker shows
// them), a line per finished blob otherwise, nothing when out is nil.
type progress struct {
	out  io.Writer
	name string
	p    *mpb.Progress
	mu   sync.Mutex
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func newProgress(out io.Writer, name string) *progress {
	pr := &progress{out: out, name: name}
	if out != nil && isTerminal(out) {
		pr.p = mpb.New(mpb.WithOutput(out), mpb.WithWidth(40))
	}
	return pr
}

func (pr *progress) close() {
	if pr.p != nil {
		pr.p.Wait()
	}
}

// bar counts one blob's bytes; it is an io.Writer of the blob's content.
type bar struct {
	pr   *progress
	desc ocispec.Descriptor
	b    *mpb.Bar
	n    int64
}

func shortDigest(d string) string {
	if i := len("sha256:"); len(d) > i+12 {
		return d[i : i+12]
	}
	return d
}

func (pr *progress) bar(desc ocispec.Descriptor) *bar {
	b := &bar{pr: pr, desc: desc}
	if pr.p != nil {
		b.b = pr.p.AddBar(desc.Size,
			mpb.PrependDecorators(decor.Name(shortDigest(desc.Digest.String())+" ")),
			mpb.AppendDecorators(decor.OnComplete(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), "done")),
		)
	}
	return b
}

func (b *bar) Write(p []byte) (int, error) {
	if b == nil {
		return len(p), nil
	}
	b.n += int64(len(p))
	if b.b != nil {
		b.b.IncrBy(len(p))
	}
	return len(p), nil
}

// done finishes the bar (or prints the plain line) with err's outcome.
func (b *bar) done(err error) {
	if b == nil {
		return
	}
	if b.b != nil {
		if err != nil {
			b.b.Abort(false)
		} else {
			b.b.SetTotal(-1, true)
		}
		return
	}
	if b.pr.out == nil {
		return
	}
	b.pr.mu.Lock()
	defer b.pr.mu.Unlock()
	if err != nil {
		fmt.Fprintf(b.pr.out, "%s: %s failed\n", b.pr.name, shortDigest(b.desc.Digest.String()))
		return
	}
	fmt.Fprintf(b.pr.out, "%s: %s done (%d bytes)\n", b.pr.name, shortDigest(b.desc.Digest.String()), b.desc.Size)
}
