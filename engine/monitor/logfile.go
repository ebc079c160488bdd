package monitor

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"
)

// logFile writes the container's output in one of two formats: Docker's
// json-file, one object per line, {"log":"...","stream":"stdout","time":
// "RFC3339Nano"}, or k8s-file, the CRI's "RFC3339Nano stdout F text" lines
// the kubelet reads (P for a piece of a longer line). It is rotated by size into
// path, path.1 ... path.(maxFiles-1) as Docker does: the size is checked
// before each record, so a file ends at most one record past maxSize.
//
// A write error (a full disk) never stops the monitor or the container: the
// record is dropped and counted, a partly written record is cut off again so
// the file stays one valid object per line, and the next record tries again.
type logFile struct {
	mu       sync.Mutex
	path     string
	format   string // LogFormatJSON or LogFormatCRI
	maxSize  int64
	maxFiles int
	f        *os.File
	size     int64
	dropped  uint64
	buf      []byte
	lastOpen time.Time // of a failed open, to retry at most once a second
}

func openLogFile(path, format string, maxSize int64, maxFiles int) (*logFile, error) {
	l := &logFile{path: path, format: format, maxSize: maxSize, maxFiles: max(maxFiles, 1)}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

// open appends to an existing log: a restarted container continues its file.
func (l *logFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		l.lastOpen = time.Now()
		return wrap(err, "open log")
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return wrap(err, "stat log")
	}
	l.f, l.size = f, st.Size()
	return nil
}

// write logs one line (with its "\n", or without it for a partial line).
func (l *logFile) write(stream string, line []byte, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		if time.Since(l.lastOpen) < time.Second || l.open() != nil {
			l.dropped++
			return
		}
	}
	if l.maxSize > 0 && l.size >= l.maxSize {
		if err := l.rotate(); err != nil && l.f == nil {
			l.dropped++
			return
		}
	}
	if l.format == LogFormatCRI {
		l.buf = appendCRILogEntry(l.buf[:0], line, stream, t)
	} else {
		l.buf = appendLogEntry(l.buf[:0], line, stream, t)
	}
	n, err := l.f.Write(l.buf)
	if err != nil {
		l.dropped++
		if n > 0 {
			// Cut the partial record off: a reader must never see half a line.
			if l.f.Truncate(l.size) != nil {
				// The file now ends mid-record; a newline at least keeps
				// the next record parseable.
				if m, _ := l.f.Write([]byte{'\n'}); m == 1 {
					l.size += int64(n) + 1
				}
			}
		}
		return
	}
	l.size += int64(n)
	// Keep the buffer from growing for good after one huge record.
	if cap(l.buf) > 64<<10 {
		l.buf = nil
	}
}

// rotate shifts path.(i-1) to path.i and path to path.1, then starts an
// empty path. With maxFiles 1 the file is truncated instead.
func (l *logFile) rotate() error {
	if l.maxFiles > 1 {
		for i := l.maxFiles - 1; i > 1; i-- {
			err := os.Rename(l.path+"."+strconv.Itoa(i-1), l.path+"."+strconv.Itoa(i))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return wrap(err, "rotate log")
			}
		}
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return wrap(err, "rotate log")
		}
		l.f.Close()
		l.f = nil
		return l.open()
	}
	if err := l.f.Truncate(0); err != nil {
		return wrap(err, "truncate log")
	}
	l.size = 0
	return nil
}

// reopen closes the file and opens path anew: whoever rotates the log
// (the kubelet, for k8s-file logs) has renamed it and wants a new one.
func (l *logFile) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	return l.open()
}

func (l *logFile) droppedLines() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// maxLogLine is Docker's: a line without a newline is logged in pieces of
// this size (partial messages, without a trailing "\n").
const maxLogLine = 16 << 10

// lineSplitter turns a stream's chunks into log lines.
type lineSplitter struct {
	stream string
	log    *logFile
	buf    []byte
}

func (s *lineSplitter) write(p []byte, t time.Time) {
	for len(p) > 0 {
		n := min(len(p), maxLogLine-len(s.buf))
		// What is already buffered holds no newline.
		scanned := len(s.buf)
		s.buf = append(s.buf, p[:n]...)
		p = p[n:]
		start := 0
		for i := scanned; i < len(s.buf); i++ {
			if s.buf[i] == '\n' {
				s.emit(s.buf[start:i+1], t)
				start = i + 1
			}
		}
		if start == 0 && len(s.buf) >= maxLogLine {
			s.emit(s.buf, t)
			start = len(s.buf)
		}
		s.buf = s.buf[:copy(s.buf, s.buf[start:])]
	}
}

// flush logs what is left of a partial line (at EOF).
func (s *lineSplitter) flush(t time.Time) {
	if len(s.buf) > 0 {
		s.emit(s.buf, t)
		s.buf = s.buf[:0]
	}
}

func (s *lineSplitter) emit(line []byte, t time.Time) {
	if s.log != nil {
		s.log.write(s.stream, line, t)
	}
}
