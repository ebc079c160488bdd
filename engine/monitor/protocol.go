package monitor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
)

// The attach protocol, spoken on StateDir/attach.sock (a filesystem unix
// stream socket, mode 0600, in the 0700 state dir; never abstract).
//
// Any number of clients may connect. Each gets the container's live output
// from the moment it connects (history is in the log file, not here):
//
//   - monitor → client, non-tty container: Docker's stream multiplexing.
//     Each chunk is an 8-byte header [stream, 0, 0, 0, size as big-endian
//     uint32] followed by size bytes; stream is 1 for stdout, 2 for stderr.
//   - monitor → client, tty container: the raw bytes of the terminal.
//
// In the other direction the client always sends frames with the same
// 8-byte header [kind, 0, 0, 0, size BE32] + payload, tty or not:
//
//   - FrameStdin (0): bytes for the container's stdin (ignored unless the
//     monitor runs with --stdin).
//   - FrameCloseStdin (3): the client's input ended; the monitor closes the
//     container's stdin pipe so the process sees EOF (non-tty; with a tty the
//     frame is ignored, as a terminal has no end of file: send ^D).
//   - FrameResize (4): payload is rows, cols as two big-endian uint16; the
//     monitor sets the pty's window size (tty only).
//
// Payloads larger than MaxFrame are a protocol error and end the connection.
//
// When the container exits the monitor first writes out all of its output,
// then writes exit.json, then closes every attach connection: a client that
// reads EOF can read exit.json (unless a restart is due, when exit.json has
// restarting=true and the next run accepts new clients). A client that does
// not keep up with the output (its queue of 64 chunks is full) is
// disconnected rather than allowed to slow the container or the log.
const (
	StreamStdin  byte = 0
	StreamStdout byte = 1
	StreamStderr byte = 2

	FrameStdin      byte = 0
	FrameCloseStdin byte = 3
	FrameResize     byte = 4

	// MaxFrame bounds one frame's payload.
	MaxFrame = 1 << 20

	frameHeaderLen = 8
)

// appendFrame appends a frame header and payload.
func appendFrame(b []byte, kind byte, payload []byte) []byte {
	b = append(b, kind, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// readFrameHeader reads one header; io.EOF only before its first byte.
func readFrameHeader(r io.Reader, hdr []byte) (kind byte, size int, err error) {
	if _, err := io.ReadFull(r, hdr[:frameHeaderLen]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, 0, wrap(err, "attach frame header")
		}
		return 0, 0, err
	}
	n := binary.BigEndian.Uint32(hdr[4:8])
	if n > MaxFrame {
		return 0, 0, errorOf("attach frame of ", strconv.FormatUint(uint64(n), 10), " bytes exceeds ", strconv.Itoa(MaxFrame))
	}
	return hdr[0], int(n), nil
}

// Demux splits Docker-multiplexed output (non-tty attach) into stdout and
// stderr until r ends. A nil writer discards its stream.
func Demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [frameHeaderLen]byte
	buf := make([]byte, 32<<10)
	for {
		kind, size, err := readFrameHeader(r, hdr[:])
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		var w io.Writer
		switch kind {
		case StreamStdout:
			w = stdout
		case StreamStderr:
			w = stderr
		default:
			return fmt.Errorf("attach: unknown stream %d", kind)
		}
		if w == nil {
			w = io.Discard
		}
		for size > 0 {
			n, err := io.ReadFull(r, buf[:min(size, len(buf))])
			if err != nil {
				return fmt.Errorf("attach frame body: %w", err)
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("write attach output: %w", err)
			}
			size -= n
		}
	}
}

// AttachClient is one connection to a monitor's attach socket.
type AttachClient struct {
	conn *os.File
	tty  bool
	wmu  sync.Mutex // frames from the stdin copier and Resize interleave whole
}

// DialAttach connects to the attach socket at socketPath. tty must match the
// container's --tty: it selects raw or multiplexed output.
func DialAttach(ctx context.Context, socketPath string, tty bool) (*AttachClient, error) {
	conn, err := dialUnix(ctx, socketPath)
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	return &AttachClient{conn: conn, tty: tty}, nil
}

// NewAttachClient is an attach client on an already connected socket (the
// client end of engine.AttachPair). tty as for DialAttach.
func NewAttachClient(conn *os.File, tty bool) *AttachClient {
	return &AttachClient{conn: conn, tty: tty}
}

func (c *AttachClient) writeFrame(kind byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.conn.Write(appendFrame(make([]byte, 0, frameHeaderLen+len(payload)), kind, payload)); err != nil {
		return fmt.Errorf("attach: send: %w", err)
	}
	return nil
}

// Resize sets the container's terminal size (tty containers only).
func (c *AttachClient) Resize(rows, cols uint16) error {
	var p [4]byte
	binary.BigEndian.PutUint16(p[0:2], rows)
	binary.BigEndian.PutUint16(p[2:4], cols)
	return c.writeFrame(FrameResize, p[:])
}

// CloseStdin tells the monitor to close the container's stdin.
func (c *AttachClient) CloseStdin() error { return c.writeFrame(FrameCloseStdin, nil) }

// Stream copies stdin to the container (then closes the container's stdin
// when stdin ends; nil sends nothing) and the container's output to stdout
// and stderr (tty: everything to stdout), until the monitor closes the
// connection because the container exited (nil error), or ctx ends. The
// stdin copier may stay blocked in stdin.Read after Stream returns: it is
// never waited for, as a terminal read cannot be cancelled.
func (c *AttachClient) Stream(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	if stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					if c.writeFrame(FrameStdin, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					if err == io.EOF {
						_ = c.CloseStdin()
					}
					return
				}
			}
		}()
	}
	var err error
	if c.tty {
		if stdout == nil {
			stdout = io.Discard
		}
		_, err = io.Copy(stdout, c.conn)
	} else {
		err = Demux(c.conn, stdout, stderr)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	return nil
}

// Close ends the connection (detaches; the container keeps running).
func (c *AttachClient) Close() error { return c.conn.Close() }

// Attach connects to the monitor's attach socket and streams until the
// container exits or ctx ends: see AttachClient.Stream.
func Attach(ctx context.Context, socketPath string, stdin io.Reader, stdout, stderr io.Writer, tty bool) error {
	c, err := DialAttach(ctx, socketPath, tty)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Stream(ctx, stdin, stdout, stderr)
}

// Resize sets the terminal size of the tty container whose attach socket is
// socketPath, over a short-lived connection.
func Resize(ctx context.Context, socketPath string, rows, cols uint16) error {
	c, err := DialAttach(ctx, socketPath, true)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Resize(rows, cols)
}
