package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/monitor"
)

// LogOptions are `hull logs`'s options.
type LogOptions struct {
	Follow, Timestamps bool
	Tail               string // "all" or a number of lines
	Since              time.Time
}

// logLine is one line of the json-file log the monitor writes.
type logLine struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Logs prints a container's log (rotated files oldest first), then with
// Follow goes on until the container stops.
func (e *Engine) Logs(ctx context.Context, c *container.Container, o LogOptions, stdout, stderr io.Writer) error {
	if ro, err := options(c); err == nil && ro.LogFormat == monitor.LogFormatCRI {
		return fmt.Errorf("container %s logs in the CRI format to %s, for the kubelet: read it there (crictl logs, kubectl logs)", c.Name, ro.LogPath)
	}
	base := filepath.Join(e.Containers.Dir(c.ID), "ctr.log")
	var files []string
	for i := 9; i >= 1; i-- {
		if _, err := os.Stat(base + "." + strconv.Itoa(i)); err == nil {
			files = append(files, base+"."+strconv.Itoa(i))
		}
	}
	files = append(files, base)
	var lines []logLine
	for _, f := range files {
		l, err := readLog(f)
		if err != nil {
			return err
		}
		lines = append(lines, l...)
	}
	if o.Tail != "" && o.Tail != "all" {
		n, err := strconv.Atoi(o.Tail)
		if err != nil || n < 0 {
			return fmt.Errorf("--tail %q: a number or all", o.Tail)
		}
		if n < len(lines) {
			lines = lines[len(lines)-n:]
		}
	}
	emit := func(l logLine) {
		if !o.Since.IsZero() && l.Time.Before(o.Since) {
			return
		}
		w := stdout
		if l.Stream == "stderr" {
			w = stderr
		}
		if o.Timestamps {
			fmt.Fprintf(w, "%s %s", l.Time.Format(time.RFC3339Nano), l.Log)
			return
		}
		io.WriteString(w, l.Log)
	}
	for _, l := range lines {
		emit(l)
	}
	if !o.Follow {
		return nil
	}
	f, err := os.Open(base)
	if err != nil {
		return nil
	}
	defer func() { f.Close() }()
	fi, _ := f.Stat()
	off := fi.Size()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReader(f)
	var partial strings.Builder
	for {
		line, err := r.ReadString('\n')
		partial.WriteString(line)
		if err == nil {
			var l logLine
			if json.Unmarshal([]byte(partial.String()), &l) == nil {
				emit(l)
			}
			partial.Reset()
			continue
		}
		// At the end: rotated? stopped?
		if nfi, serr := os.Stat(base); serr == nil && !os.SameFile(fi, nfi) {
			f.Close()
			if f, err = os.Open(base); err != nil {
				return nil
			}
			fi, _ = f.Stat()
			r.Reset(f)
			continue
		}
		if _, done := e.settled(c); done {
			// One last read: the monitor flushes the log before it records the exit.
			if rest, _ := io.ReadAll(r); len(rest) > 0 {
				for _, line := range strings.SplitAfter(partial.String()+string(rest), "\n") {
					var l logLine
					if json.Unmarshal([]byte(line), &l) == nil {
						emit(l)
					}
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func readLog(path string) ([]logLine, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}
