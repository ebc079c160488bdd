// Package criu checkpoints and restores containers with CRIU
// (https://criu.org), driving the criu command line: `criu check` first, so
// that a host where CRIU is missing or cannot handle the kernel fails fast
// with nothing changed, then `criu dump` and `criu restore`.
//
// A checkpoint image directory holds CRIU's images plus two files of ours:
// descriptors.json (runc's: what the init's fds 0-2 pointed to) and
// hull-criu.json (the external mounts and files the dump declared, so that
// restore can map them to this host).
package criu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Tool is a criu binary that `criu check` accepted.
type Tool struct {
	// Path is the binary, as found in PATH or given with --criu.
	Path string
	// Version is what `criu --version` reports, e.g. "3.17.1".
	Version string
}

// UnusableError says that CRIU is missing or cannot work on this host.
type UnusableError struct {
	// Action is "checkpoint" or "restore".
	Action string
	// Path is the criu binary looked for or found.
	Path string
	// Version is the CRIU version, "" if unknown.
	Version string
	// Kernel is the running kernel release.
	Kernel string
	// Missing is set when there is no criu binary at all.
	Missing bool
	// Output is what `criu check` printed (or why it could not run).
	Output string
}

func (e *UnusableError) Error() string {
	if e.Missing {
		return fmt.Sprintf("%s: CRIU is not installed (no %s in PATH), so hull-runtime cannot %s; install CRIU (Debian: apt-get install criu) or give its path with --criu",
			e.Action, e.Path, e.Action)
	}
	v := "CRIU"
	if e.Version != "" {
		v = "CRIU " + e.Version
	}
	return fmt.Sprintf("%s: %s (%s) cannot %s on kernel %s: `criu check` failed: %s; install a CRIU that supports this kernel (and pass its path with --criu if it is not first in PATH)",
		e.Action, v, e.Path, e.Action, e.Kernel, e.Output)
}

// Find locates criu (path "" means "criu" in PATH) and reads its version. It
// returns an *UnusableError when there is no such binary.
func Find(action, path string) (*Tool, error) {
	name := path
	if name == "" {
		name = "criu"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return nil, &UnusableError{Action: action, Path: name, Missing: true, Kernel: kernelRelease()}
	}
	t := &Tool{Path: p}
	t.Version = readVersion(p)
	return t, nil
}

// readVersion runs `criu --version` ("Version: 3.17.1" on its first line).
func readVersion(path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Check runs `criu check`, which probes the kernel features CRIU needs. A
// failure is an *UnusableError quoting CRIU's own explanation.
func (t *Tool) Check(action string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.Path, "check")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	msg := oneLine(out.String())
	if msg == "" {
		msg = err.Error()
	} else if ctx.Err() != nil {
		msg += " (timed out)"
	}
	return &UnusableError{Action: action, Path: t.Path, Version: t.Version, Kernel: kernelRelease(), Output: msg}
}

// Usable finds criu and checks it works on this kernel: the first thing
// checkpoint and restore do, before they change anything.
func Usable(action, path string) (*Tool, error) {
	t, err := Find(action, path)
	if err != nil {
		return nil, err
	}
	if err := t.Check(action); err != nil {
		return nil, err
	}
	return t, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "(unknown)"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// oneLine joins the non-empty lines of s with "; ".
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSuffix(strings.TrimSpace(l), "."); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// logErrors returns the error lines of a CRIU log (at most max, the last
// ones), for error messages: CRIU writes everything to its log file.
func logErrors(path string, max int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		l := s.Text()
		if strings.Contains(l, "Error") {
			// "(00.012345) Error (criu/foo.c:12): ..." without the timestamp.
			if i := strings.Index(l, ") "); strings.HasPrefix(l, "(") && i > 0 {
				l = l[i+2:]
			}
			lines = append(lines, strings.TrimSuffix(strings.TrimSpace(l), "."))
		}
	}
	if len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	return strings.Join(lines, "; ")
}

// run runs criu with args and returns an error quoting its log on failure.
func (t *Tool) run(cmd *exec.Cmd, what, logFile string) error {
	var stderr bytes.Buffer
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	if err := cmd.Run(); err != nil {
		detail := logErrors(logFile, 8)
		if detail == "" {
			detail = oneLine(stderr.String())
		}
		if detail == "" {
			detail = err.Error()
		}
		return fmt.Errorf("criu %s failed: %s (log: %s)", what, detail, logFile)
	}
	return nil
}

// command makes the exec.Cmd for `criu args...`.
func (t *Tool) command(args ...string) *exec.Cmd {
	return exec.Command(t.Path, args...)
}

// absDir makes dir absolute; "" means def relative to the working directory.
func absDir(dir, def string) (string, error) {
	if dir == "" {
		dir = def
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return abs, nil
}

// errNotRoot is returned for unprivileged callers: CRIU needs root.
var errNotRoot = errors.New("CRIU needs root (CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE): run as root")
