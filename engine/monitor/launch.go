package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Launch starts the container under a new hull-monitor (binary) and returns
// the container's pid once it runs. The monitor runs in a session of its
// own with stdio on /dev/null, so it outlives the caller and holds none of
// its terminal; the caller reaps it (a goroutine waits for it) while it
// lives, init afterwards. One exec, not hull-monitor's own detach (a second
// exec of a Go binary on every start). On error the runtime's message is in
// the error and nothing is left: no monitor, no runtime state.
//
// attach, if not nil, is one end of a connected unix stream socket the
// monitor serves as an attach client from before the container exists:
// the caller reads every byte of output on the other end.
//
// The caller must have made cfg.StateDir (0700). cfg is validated in place
// (paths made absolute, defaults filled in).
func Launch(ctx context.Context, binary string, cfg *Config, attach *os.File) (pid int, err error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return 0, err
	}
	defer null.Close()
	files := []*os.File{null, null, null, w}
	argv := append([]string{binary}, cfg.Args()...)
	argv = append(argv, "--foreground", "--sync-fd", "3")
	if attach != nil {
		argv = append(argv, "--attach-fd", strconv.Itoa(len(files)))
		files = append(files, attach)
	}
	// GOMAXPROCS in the environment sizes the Go runtime from its first
	// instruction (one P from the start saves a quarter of a MiB); the
	// monitor keeps it out of the runtime's environment.
	p, err := os.StartProcess(binary, argv, &os.ProcAttr{
		Dir:   "/",
		Env:   append(os.Environ(), "GOMAXPROCS=1"),
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", binary, err)
	}
	exited := make(chan struct{})
	go func() {
		_, _ = p.Wait()
		close(exited)
	}()
	line, err := readLine(ctx, r)
	if err != nil {
		return 0, fmt.Errorf("%s: no start report: %w", binary, err)
	}
	var msg struct {
		Pid   int    `json:"pid"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		return 0, fmt.Errorf("%s: bad start report %q: %w", binary, line, err)
	}
	if msg.Error != "" {
		// It exits right after reporting: gone, not a zombie, on return.
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		return 0, errors.New(msg.Error)
	}
	return msg.Pid, nil
}

// readLine reads one line from the sync pipe, or gives up when ctx ends.
func readLine(ctx context.Context, r *os.File) ([]byte, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = r.SetReadDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = r.SetReadDeadline(time.Now()) })
	defer stop()
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == io.EOF {
			return nil, errors.New("the monitor exited without reporting")
		}
		return nil, err
	}
	return bytes.TrimSpace(line), nil
}
