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
	"strings"
	"time"
)

// Launch starts the container under a new hull-monitor (binary) and returns
// the container's pid once it runs. hull-monitor detaches (a new session,
// stdio on /dev/null, its first process exits), so the monitor outlives the
// caller and holds none of its terminal. On error the runtime's message is
// in the error and nothing is left: no monitor, no runtime state.
//
// The caller must have made cfg.StateDir (0700). cfg is validated in place
// (paths made absolute, defaults filled in).
func Launch(ctx context.Context, binary string, cfg *Config) (pid int, err error) {
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
	// The first process reports flag errors on stderr before it detaches.
	er, ew, err := os.Pipe()
	if err != nil {
		w.Close()
		return 0, err
	}
	defer er.Close()
	argv := append([]string{binary}, cfg.Args()...)
	argv = append(argv, "--sync-fd", "3")
	p, err := os.StartProcess(binary, argv, &os.ProcAttr{Files: []*os.File{null, null, ew, w}})
	w.Close()
	ew.Close()
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", binary, err)
	}
	// The first process only validates and detaches: it exits at once.
	st, werr := p.Wait()
	stderr, _ := io.ReadAll(io.LimitReader(er, 16<<10))
	if werr != nil {
		return 0, fmt.Errorf("%s: %w", binary, werr)
	}
	if !st.Success() {
		return 0, fmt.Errorf("%s: %s: %s", binary, st, strings.TrimSpace(string(stderr)))
	}
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
