package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/hull-runtime/hull/engine"
	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/monitor"
	"github.com/hull-runtime/hull/engine/oci"
)

// detachKeys is Docker's default detach sequence, ctrl-p ctrl-q: typed into
// an attached terminal it leaves the container running and returns.
var detachKeys = []byte{0x10, 0x11}

// errDetached ends a stream because the user typed the detach keys.
var errDetached = errors.New("detached")

// rawTerminal puts the user's terminal in raw mode while a container's pty
// is attached: the container's pty does the line editing and the output
// processing (a second ONLCR would turn "\r\n" into "\r\r\n"). stdin is
// made raw when input goes to the container, stdout when it is a terminal
// too (often the same one). The returned func restores them.
func rawTerminal(input bool) (restore func()) {
	var undo []func()
	seen := map[uint64]bool{}
	files := []*os.File{os.Stdout}
	if input {
		files = append(files, os.Stdin)
	}
	for _, f := range files {
		fd := int(f.Fd())
		var st unix.Stat_t
		if !term.IsTerminal(fd) || unix.Fstat(fd, &st) != nil || seen[st.Rdev] {
			continue
		}
		seen[st.Rdev] = true
		if old, err := term.MakeRaw(fd); err == nil {
			undo = append(undo, func() { _ = term.Restore(fd, old) })
		}
	}
	return func() {
		for _, u := range undo {
			u()
		}
	}
}

// terminalSize is the size of whichever of stdin and stdout is a terminal.
func terminalSize() (rows, cols uint16, ok bool) {
	for _, f := range []*os.File{os.Stdin, os.Stdout} {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Row > 0 && ws.Col > 0 {
			return ws.Row, ws.Col, true
		}
	}
	return 0, 0, false
}

// followResize calls resize with the terminal's size now and on every
// SIGWINCH until the returned stop is called.
func followResize(resize func(rows, cols uint16)) (stop func()) {
	if r, c, ok := terminalSize(); ok {
		resize(r, c)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				if r, c, ok := terminalSize(); ok {
					resize(r, c)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// detachReader passes input through until the detach sequence, then
// returns errDetached and calls onDetach. A partial sequence followed by
// other input is passed on unchanged.
type detachReader struct {
	r        io.Reader
	keys     []byte
	matched  int
	pending  []byte
	onDetach func()
}

func (d *detachReader) Read(p []byte) (int, error) {
	if len(d.pending) > 0 {
		n := copy(p, d.pending)
		d.pending = d.pending[n:]
		return n, nil
	}
	buf := make([]byte, len(p))
	n, err := d.r.Read(buf)
	out := p[:0]
	for _, b := range buf[:n] {
		if b == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				d.onDetach()
				return 0, errDetached
			}
			continue
		}
		if d.matched > 0 {
			// Not the sequence after all: what was held back goes on.
			out = append(out, d.keys[:d.matched]...)
			d.matched = 0
			if b == d.keys[0] {
				d.matched = 1
				continue
			}
		}
		out = append(out, b)
	}
	if len(out) > len(p) {
		d.pending = append(d.pending, out[len(p):]...)
		out = out[:len(p)]
	}
	copy(p, out)
	if len(out) == 0 && err == nil {
		return d.Read(p)
	}
	return len(out), err
}

// execWithTerminal runs p in the foreground on a terminal (engine.ExecTTY)
// and relays the user's terminal to it: raw mode, input with -i, the size
// and its changes. It returns the process's exit code.
func execWithTerminal(ctx context.Context, rt *oci.CLI, id string, p *specs.Process, interactive bool) (int, error) {
	sizes := make(chan engine.TerminalSize, 1)
	stopResize := followResize(func(rows, cols uint16) {
		select {
		case sizes <- engine.TerminalSize{Rows: rows, Cols: cols}:
		default: // a newer size follows with the next SIGWINCH
		}
	})
	defer close(sizes)
	defer stopResize()
	defer rawTerminal(interactive)()
	var in io.Reader
	if interactive {
		// No detach keys: without a daemon nobody would hold the pty of
		// a detached exec.
		in = os.Stdin
	}
	return engine.ExecTTY(ctx, rt, id, p, in, os.Stdout, sizes)
}

// attachedRun starts c with this client attached from before the container
// exists (as `docker run` attaches before it starts), then relays the
// user's stdio: raw output as the container writes it (prompts without a
// newline included), stdin with -i, the terminal's mode and size with -t,
// ctrl-p ctrl-q to detach from -it. It returns once the container's output
// ends: detached reports the user detached (the container runs on).
func attachedRun(ctx context.Context, e *engine.Engine, c *container.Container, tty, interactive bool) (detached bool, err error) {
	monitorEnd, clientEnd, err := engine.AttachPair()
	if err != nil {
		return false, err
	}
	client := monitor.NewAttachClient(clientEnd, tty)
	defer client.Close()
	_, err = e.StartWith(ctx, c, engine.StartOptions{Attach: monitorEnd})
	monitorEnd.Close()
	if err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var in io.Reader
	if tty {
		stop := followResize(func(rows, cols uint16) { _ = client.Resize(rows, cols) })
		defer stop()
		defer rawTerminal(interactive)()
	}
	if interactive {
		in = os.Stdin
		if tty {
			in = &detachReader{r: os.Stdin, keys: detachKeys, onDetach: func() { detached = true; cancel() }}
		}
	}
	serr := client.Stream(sctx, in, os.Stdout, os.Stderr)
	if detached {
		return true, nil
	}
	return false, serr
}
