package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ttyRelay is `run` of a terminal container without --console-socket: like runc,
// hull-runtime receives the pty master itself and relays its own stdio.
type ttyRelay struct {
	dir     string
	ln      *net.UnixListener
	master  chan *os.File
	saved   *unix.Termios
	outDone chan struct{}
}

func newTTYRelay() (*ttyRelay, error) {
	dir, err := os.MkdirTemp("", "hull-run-tty-")
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "console.sock"), Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	r := &ttyRelay{dir: dir, ln: ln, master: make(chan *os.File, 1), outDone: make(chan struct{})}
	go r.accept()
	return r, nil
}

func (r *ttyRelay) path() string { return filepath.Join(r.dir, "console.sock") }

func (r *ttyRelay) accept() {
	defer close(r.master)
	c, err := r.ln.AcceptUnix()
	if err != nil {
		return
	}
	defer c.Close()
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return
	}
	r.master <- os.NewFile(uintptr(fds[0]), "pty-master")
}

// start copies stdio to and from the pty; stdin goes raw while it is a terminal.
func (r *ttyRelay) start() error {
	m, ok := <-r.master
	if !ok || m == nil {
		return fmt.Errorf("did not receive the container's pty")
	}
	if t, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		r.saved = t
		raw := *t
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		_ = unix.IoctlSetTermios(0, unix.TCSETS, &raw)
		r.resize(m)
	}
	go func() { _, _ = io.Copy(m, os.Stdin) }()
	go func() {
		// Ends with EIO once the last slave fd (the container's) is closed.
		_, _ = io.Copy(os.Stdout, m)
		close(r.outDone)
	}()
	return nil
}

// drain waits briefly for the container's last output after it exited.
func (r *ttyRelay) drain() {
	select {
	case <-r.outDone:
	case <-time.After(time.Second):
	}
}

func (r *ttyRelay) resize(m *os.File) {
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, ws)
	}
}

func (r *ttyRelay) close() {
	if r.saved != nil {
		_ = unix.IoctlSetTermios(0, unix.TCSETS, r.saved)
	}
	r.ln.Close()
	os.RemoveAll(r.dir)
}
