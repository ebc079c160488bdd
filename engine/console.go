package engine

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ExitedEarly is AcceptPty's error when the runtime exited before it sent
// the pty (it printed why on stderr).
type ExitedEarly struct{ Err error }

func (e ExitedEarly) Error() string { return fmt.Sprintf("the runtime exited: %v", e.Err) }

// AcceptPty receives the pty master on the console socket, unless the
// runtime exits first.
func AcceptPty(ln *net.UnixListener, exited <-chan error) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 512), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- result{err: fmt.Errorf("receive the pty: %w", err)}
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			ch <- result{err: errors.New("receive the pty: no file descriptor in the message")}
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) == 0 {
			ch <- result{err: errors.New("receive the pty: no file descriptor in the message")}
			return
		}
		for _, fd := range fds[1:] {
			unix.Close(fd)
		}
		ch <- result{f: os.NewFile(uintptr(fds[0]), "pty-master")}
	}()
	select {
	case r := <-ch:
		return r.f, r.err
	case err := <-exited:
		ln.Close()
		if r := <-ch; r.f != nil {
			r.f.Close()
		}
		return nil, ExitedEarly{Err: err}
	}
}

// ConsoleSocket listens on a fresh console socket in a private temp dir.
func ConsoleSocket() (*net.UnixListener, string, func(), error) {
	dir, err := os.MkdirTemp("", "hull-console-")
	if err != nil {
		return nil, "", nil, err
	}
	path := filepath.Join(dir, "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, fmt.Errorf("console socket: %w", err)
	}
	return ln, path, func() { ln.Close(); os.RemoveAll(dir) }, nil
}
