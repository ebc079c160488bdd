package monitor

import (
	"encoding/binary"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// attachServer serves attach.sock (protocol in protocol.go). It lives as long
// as the monitor; each run of the container plugs in its stdin and pty.
type attachServer struct {
	tty   bool
	stdin bool // --stdin: clients may write to the container
	ln    *os.File
	done  chan struct{} // closed by close: accept errors are then the end

	mu      sync.Mutex
	clients map[*attachConn]struct{}
	in      *os.File      // the current run's stdin pipe or pty master; nil between runs
	ready   chan struct{} // closed while in is set: input waits on it
	pty     *os.File      // the current run's pty master (resize); nil without --tty
	wg      sync.WaitGroup
}

// attachConn is one client. Its writer goroutine owns the connection and
// closes it once out is closed and drained.
type attachConn struct {
	f    *os.File
	out  chan []byte
	once sync.Once
}

// attachQueue bounds the chunks waiting for a slow client.
const attachQueue = 64

// slowClientWait is how long output waits for a client whose queue is full
// before that client is disconnected.
const slowClientWait = 2 * time.Second

func newAttachServer(path string, tty, stdin bool) (*attachServer, error) {
	ln, err := listenUnix(path)
	if err != nil {
		return nil, err
	}
	s := &attachServer{tty: tty, stdin: stdin, ln: ln, done: make(chan struct{}), ready: make(chan struct{}), clients: map[*attachConn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *attachServer) serve() {
	defer s.wg.Done()
	for {
		f, err := acceptUnix(s.ln)
		if err != nil {
			select {
			case <-s.done:
				return
			case <-time.After(100 * time.Millisecond):
				// EMFILE and the like: back off rather than spin.
				continue
			}
		}
		s.add(f)
	}
}

// add serves a connected client: accepted, or handed over at start
// (--attach-fd).
func (s *attachServer) add(f *os.File) {
	c := &attachConn{f: f, out: make(chan []byte, attachQueue)}
	s.mu.Lock()
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	go s.writer(c)
	go s.reader(c)
}

func (s *attachServer) writer(c *attachConn) {
	defer c.f.Close()
	for b := range c.out {
		if _, err := c.f.Write(b); err != nil {
			// Drain first: a broadcast waiting on this queue (holding the
			// lock drop needs) is released at once.
			go func() {
				for range c.out {
				}
			}()
			s.drop(c)
			return
		}
	}
}

func (s *attachServer) reader(c *attachConn) {
	defer s.drop(c)
	var hdr [frameHeaderLen]byte
	var buf []byte
	for {
		kind, size, err := readFrameHeader(c.f, hdr[:])
		if err != nil {
			return
		}
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		p := buf[:size]
		if _, err := io.ReadFull(c.f, p); err != nil {
			return
		}
		switch kind {
		case FrameStdin:
			if in := s.input(); in != nil && len(p) > 0 {
				// Outside the lock: a container that does not read its
				// stdin blocks only this client, never the output.
				_, _ = in.Write(p)
			}
		case FrameCloseStdin:
			s.closeStdin()
		case FrameResize:
			if len(p) == 4 {
				s.resize(binary.BigEndian.Uint16(p[0:2]), binary.BigEndian.Uint16(p[2:4]))
			}
		default:
			return // protocol error
		}
		if cap(buf) > 64<<10 {
			buf = nil
		}
	}
}

// input is the current run's stdin. A client may connect (and send) before
// the container is created, or between restarts: its input waits for the
// run rather than being lost. nil once the monitor closes.
func (s *attachServer) input() *os.File {
	if !s.stdin {
		return nil
	}
	for {
		s.mu.Lock()
		in, ready := s.in, s.ready
		s.mu.Unlock()
		if in != nil {
			return in
		}
		select {
		case <-ready:
		case <-s.done:
			return nil
		}
	}
}

// closeStdin closes the run's stdin (the client's EOF), once there is one.
func (s *attachServer) closeStdin() {
	if s.tty || s.input() == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.in != nil {
		s.in.Close()
		s.setInLocked(nil)
	}
}

func (s *attachServer) resize(rows, cols uint16) {
	s.mu.Lock()
	pty := s.pty
	s.mu.Unlock()
	if pty == nil {
		return
	}
	if rc, err := pty.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
		})
	}
}

// drop disconnects a client; its writer sends what is queued, then closes.
func (s *attachServer) drop(c *attachConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(c)
}

func (s *attachServer) dropLocked(c *attachConn) {
	delete(s.clients, c)
	c.once.Do(func() { close(c.out) })
}

// broadcast sends a chunk of the container's output to every client.
func (s *attachServer) broadcast(stream byte, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.clients) == 0 {
		return
	}
	var msg []byte
	if s.tty {
		msg = append([]byte(nil), p...)
	} else {
		msg = appendFrame(make([]byte, 0, frameHeaderLen+len(p)), stream, p)
	}
	for c := range s.clients {
		select {
		case c.out <- msg:
			continue
		default:
		}
		// A burst larger than the queue: wait a little (the container's
		// output blocks meanwhile, as with Docker's attach), then give up
		// on a client that does not read rather than stall the container.
		t := time.NewTimer(slowClientWait)
		select {
		case c.out <- msg:
		case <-t.C:
			s.dropLocked(c)
		}
		t.Stop()
	}
}

// setRun plugs in a run's stdin (a pipe or the pty master) and pty.
func (s *attachServer) setRun(in, pty *os.File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setInLocked(in)
	s.pty = pty
}

// setInLocked sets in and whether input waits.
func (s *attachServer) setInLocked(in *os.File) {
	wasSet := s.in != nil
	s.in = in
	switch {
	case in != nil && !wasSet:
		close(s.ready)
	case in == nil && wasSet:
		s.ready = make(chan struct{})
	}
}

// endRun unplugs the run and disconnects every client once its queued
// output is sent: they read EOF after the container's last byte.
func (s *attachServer) endRun() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setInLocked(nil)
	s.pty = nil
	for c := range s.clients {
		s.dropLocked(c)
	}
}

func (s *attachServer) close() {
	close(s.done)
	s.ln.Close()
	s.wg.Wait()
	s.endRun()
}
