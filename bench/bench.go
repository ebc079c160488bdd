package main

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/test/bundle"
)

// runtimeInfo is one OCI runtime under test.
type runtimeInfo struct {
	Name    string `json:"name"` // hull, runc, crun
	Binary  string `json:"binary"`
	Path    string `json:"path"`
	Version string `json:"version"`
	Size    int64  `json:"size_bytes"`
	Linking string `json:"linking"`

	root string   // --root, under the bench work dir
	log  *os.File // stderr of every invocation
}

// bench holds the state of one inner run.
type bench struct {
	cfg    *config
	name   string // parent cgroup, e.g. hull-bench-1a2b3c4d
	work   string
	rootfs string
	rts    []*runtimeInfo
	reaper *reaper
	ctx    context.Context
	start  time.Time
	tty    bool // stderr is a terminal: progress on one line

	mu        sync.Mutex
	live      map[*runtimeInfo]map[string]bool
	data      map[string]map[string]*series // scenario key -> runtime name -> samples
	mem       map[string][]memSample
	memSource string
	notes     []string
	noted     map[string]bool
}

// series holds one scenario's samples for one runtime, in milliseconds.
type series struct {
	wall []float64
	cpu  []float64
}

type memSample struct {
	peak, current uint64 // bytes
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (b *bench) record(key string, r *runtimeInfo, wall, cpu time.Duration, cpuKnown bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.data[key]
	if m == nil {
		m = map[string]*series{}
		b.data[key] = m
	}
	s := m[r.Name]
	if s == nil {
		s = &series{}
		m[r.Name] = s
	}
	s.wall = append(s.wall, ms(wall))
	if cpuKnown {
		s.cpu = append(s.cpu, ms(cpu))
	}
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.noted[msg] {
		b.noted[msg] = true
		b.notes = append(b.notes, msg)
		fmt.Fprintln(os.Stderr, "bench: note:", msg)
	}
}

// probe fills in version, size and linking of a runtime binary. It runs
// before the reaper starts, so os/exec is safe here.
func probe(name, path string) (*runtimeInfo, error) {
	abs, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	r := &runtimeInfo{Name: name, Binary: filepath.Base(path), Path: abs, Size: st.Size()}
	if out, err := exec.Command(abs, "--version").Output(); err == nil {
		r.Version, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	r.Linking = "static"
	if f, err := elf.Open(abs); err == nil {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				libs, _ := f.ImportedLibraries()
				r.Linking = fmt.Sprintf("dynamic, %d libs", len(libs))
			}
		}
		f.Close()
	}
	return r, nil
}

// invoke runs `RUNTIME --root ROOT args...` with stdio on /dev/null (stderr
// to the runtime's log) and returns its exit and wall time.
func (b *bench) invoke(r *runtimeInfo, args ...string) (exit, time.Duration, error) {
	return b.invokeOut(r, nil, args...)
}

func (b *bench) invokeOut(r *runtimeInfo, stdout *os.File, args ...string) (exit, time.Duration, error) {
	argv := append([]string{r.Path, "--root", r.root}, args...)
	e, wall, err := b.reaper.run(argv, spawnOpts{stdout: stdout, stderr: r.log, timeout: b.cfg.timeout})
	if err == nil && !(e.status.Exited() && e.status.ExitStatus() == 0) {
		err = errors.New(describe(e.status))
	}
	if err != nil {
		return e, wall, fmt.Errorf("%s %s: %w%s", r.Binary, strings.Join(args, " "), err, tail(r.log))
	}
	return e, wall, nil
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return "exit status " + strconv.Itoa(ws.ExitStatus())
}

// tail returns the end of a runtime's stderr log, for error messages.
func tail(f *os.File) string {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return ""
	}
	off := st.Size() - 1500
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(buf, off)
	return "\n  stderr: " + strings.ReplaceAll(strings.TrimSpace(string(buf[:n])), "\n", "\n  stderr: ")
}

// bundle writes a config.json for one container: the shared busybox rootfs
// (read-only), args, ociVersion 1.0.2 (crun 1.8.1 rejects 1.3.0) and a
// cgroupsPath under the bench's parent cgroup.
func (b *bench) bundle(r *runtimeInfo, id string, args ...string) (dir, cgroupsPath string, err error) {
	dir = filepath.Join(b.work, "bundles", r.Name, id)
	cgroupsPath = "/" + b.name + "/" + r.Name + "-" + id
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	s := bundle.Spec(args...)
	s.Version = "1.0.2"
	s.Root.Path = b.rootfs
	s.Linux.CgroupsPath = cgroupsPath
	return dir, cgroupsPath, bundle.WriteConfig(dir, s)
}

func (b *bench) track(r *runtimeInfo, id string, live bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.live[r] == nil {
		b.live[r] = map[string]bool{}
	}
	if live {
		b.live[r][id] = true
	} else {
		delete(b.live[r], id)
	}
}

// create runs `create --pid-file` and returns the container's pid.
func (b *bench) create(r *runtimeInfo, id, dir string) (int, exit, time.Duration, error) {
	pidFile := filepath.Join(dir, "pid")
	b.track(r, id, true)
	e, wall, err := b.invoke(r, "create", "--bundle", dir, "--pid-file", pidFile, id)
	if err != nil {
		return 0, e, wall, err
	}
	pid, err := readPid(pidFile)
	return pid, e, wall, err
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", path, data)
	}
	return pid, nil
}

// remove deletes a container (forced) and its bundle dir.
func (b *bench) remove(r *runtimeInfo, id string, force bool) (exit, time.Duration, error) {
	args := []string{"delete", id}
	if force {
		args = []string{"delete", "--force", id}
	}
	e, wall, err := b.invoke(r, args...)
	if err == nil {
		b.track(r, id, false)
		_ = os.RemoveAll(filepath.Join(b.work, "bundles", r.Name, id))
	}
	return e, wall, err
}

// procWaiter waits for a container process that is not our child yet (it
// becomes one when its runtime exits; we are a child subreaper).
type procWaiter struct {
	pid int
	ch  chan exit
	fd  int // pidfd, -1 if the process was already gone
}

func (b *bench) watch(pid int) *procWaiter {
	w := &procWaiter{pid: pid, ch: b.reaper.expect(pid), fd: -1}
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		w.fd = fd
	}
	return w
}

// wait blocks until the process has exited; it returns the exit time and,
// if we reaped it, its rusage.
func (b *bench) wait(w *procWaiter, timeout time.Duration) (time.Time, *exit, error) {
	defer func() {
		if w.fd >= 0 {
			unix.Close(w.fd)
			w.fd = -1
		}
	}()
	deadline := time.Now().Add(timeout)
	select {
	case e := <-w.ch:
		return e.at, &e, nil
	default:
	}
	if w.fd >= 0 {
		// Readable once the process has exited, whoever its parent is.
		for {
			left := time.Until(deadline)
			if left <= 0 {
				b.reaper.forget(w.pid)
				return time.Time{}, nil, fmt.Errorf("pid %d still running after %v", w.pid, timeout)
			}
			fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
			if err == nil && n > 0 {
				break
			}
			if err != nil && !errors.Is(err, unix.EINTR) {
				return time.Time{}, nil, fmt.Errorf("poll pidfd: %w", err)
			}
		}
	}
	polled := time.Now()
	// The reaper gets it right away if the process is our child.
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case e := <-w.ch:
		return e.at, &e, nil
	case <-t.C:
		b.reaper.forget(w.pid)
		if w.fd < 0 {
			return time.Time{}, nil, fmt.Errorf("pid %d: cannot watch it", w.pid)
		}
		return polled, nil, nil
	}
}

// list returns the ids in a runtime's root.
func (b *bench) list(r *runtimeInfo) ([]string, error) {
	f, err := os.CreateTemp(b.work, "list-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, _, err := b.invokeOut(r, f, "list", "--quiet"); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(data)), nil
}

// cleanup force-deletes every container the bench may have left in any
// runtime's root, then removes the parent cgroup from every hierarchy. It
// returns what is still left behind.
func (b *bench) cleanup() []string {
	var left []string
	for _, r := range b.rts {
		ids := map[string]bool{}
		b.mu.Lock()
		for id := range b.live[r] {
			ids[id] = true
		}
		b.mu.Unlock()
		listed, err := b.list(r)
		if err != nil {
			left = append(left, fmt.Sprintf("%s: list: %v", r.Name, err))
		}
		for _, id := range listed {
			ids[id] = true
		}
		for id := range ids {
			if _, _, err := b.remove(r, id, true); err != nil {
				fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
			}
		}
		if listed, err := b.list(r); err == nil && len(listed) > 0 {
			left = append(left, fmt.Sprintf("%s: containers left in %s: %v", r.Name, r.root, listed))
		}
	}
	left = append(left, removeCgroups(b.name)...)
	return left
}

// rotate returns the runtimes in round-robin order starting at round i, so
// no runtime always runs right after the same other one.
func rotate(rts []*runtimeInfo, i int) []*runtimeInfo {
	n := len(rts)
	out := make([]*runtimeInfo, 0, n)
	k := ((i % n) + n) % n
	for j := 0; j < n; j++ {
		out = append(out, rts[(k+j)%n])
	}
	return out
}
