package monitor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hull-runtime/hull/engine/oci/hybrid"
	"golang.org/x/sys/unix"
)

// Restart backoff, as Docker's: 100 ms doubling up to a minute, back to
// 100 ms after a run that lasted 10 s.
const (
	backoffMin   = 100 * time.Millisecond
	backoffMax   = time.Minute
	backoffReset = 10 * time.Second
)

// monitor is one Run.
type monitor struct {
	cfg    *Config
	reaper *reaper
	log    *logFile // nil without --log-path
	attach *attachServer
	env    []string
	health Health // carried across restarts: the log of checks survives them

	// Buffers reused by every run, so that a restart loop does not churn.
	outBuf, errBuf []byte
}

// Run runs the container described by cfg until it has exited and no restart
// is due, then returns nil: the container's fate is in exit.json, not in
// Run's error. Run returns an error when the container could not be started;
// then nothing is left behind (the runtime's state is deleted).
//
// sync, if not nil, receives one JSON line once the container has started,
// {"pid": N}, or {"error": "..."} if it could not be, and is then closed.
//
// Run is meant for a process of its own (hull-monitor): it makes the process
// a child subreaper and reaps all of its children.
func Run(cfg *Config, sync *os.File) (err error) {
	report := func(pid int, err error) {
		if sync != nil {
			_, _ = sync.Write(syncMessage(pid, err))
			sync.Close()
			sync = nil
		}
	}
	defer func() {
		if err != nil {
			report(0, err)
		}
	}()
	if err := cfg.Validate(); err != nil {
		return err
	}
	m := &monitor{cfg: cfg, env: childEnv(os.Environ())}
	if !strings.Contains(cfg.Runtime, "/") {
		p, err := lookPath(cfg.Runtime)
		if err != nil {
			return err
		}
		cfg.Runtime = p
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return wrap(err, "state dir")
	}
	// The container's init is left behind by the runtime's create: as a
	// subreaper the monitor becomes its parent and can wait for it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return wrap(err, "become child subreaper")
	}
	// `hull stop` kills the container, never the monitor: terminal signals
	// are caught and dropped. Caught, not ignored, because an ignored
	// disposition would be inherited by the runtime and the container.
	// Nobody reads the channel: a signal that finds it full is dropped.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	defer signal.Stop(sigs)
	// SIGHUP reopens the log file (after the kubelet's rotation).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, unix.SIGHUP)
	defer signal.Stop(hup)
	if err := writeFileAtomic(cfg.StateDir, MonitorPidFile, []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
		return err
	}
	// Gone with the monitor: a monitor.pid names a live monitor (or one
	// that was killed, which MonitorPid tells apart).
	defer func() {
		os.Remove(filepath.Join(cfg.StateDir, ContainerPidFile))
		os.Remove(filepath.Join(cfg.StateDir, MonitorPidFile))
	}()
	// A new monitor is a new start: leftovers of the previous one would lie.
	for _, name := range []string{StopFile, ExitFile, HealthFile, ContainerPidFile} {
		os.Remove(filepath.Join(cfg.StateDir, name))
	}
	m.reaper = newReaper()
	defer m.reaper.stop()
	if cfg.LogPath != "" {
		if m.log, err = openLogFile(cfg.LogPath, cfg.LogFormat, cfg.LogMaxSize, cfg.LogMaxFiles); err != nil {
			return err
		}
		defer m.log.close()
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-hup:
					// A failed open is retried at the next record.
					_ = m.log.reopen()
				case <-done:
					return
				}
			}
		}()
	}
	if m.attach, err = newAttachServer(filepath.Join(cfg.StateDir, AttachSocket), cfg.TTY, cfg.Stdin); err != nil {
		return wrap(err, "attach socket")
	}
	if cfg.AttachFd > 2 {
		// Non-blocking and close-on-exec, as accepted connections are.
		unix.CloseOnExec(cfg.AttachFd)
		if err := unix.SetNonblock(cfg.AttachFd, true); err != nil {
			return wrap(err, "attach fd")
		}
		m.attach.add(os.NewFile(uintptr(cfg.AttachFd), "attach"))
	}
	defer func() {
		m.attach.close()
		os.Remove(filepath.Join(cfg.StateDir, AttachSocket))
	}()
	return m.loop(report)
}

// loop runs the container, again as long as the restart policy says so.
func (m *monitor) loop(report func(int, error)) error {
	restarts := 0
	delay := backoffMin
	var last *ExitStatus
	for {
		ex, err := m.runOnce(func(pid int) {
			if last == nil {
				report(pid, nil)
				// The start burst (spawns, pipes, parsing) is over: give
				// its memory back, the idle monitor needs little.
				debug.FreeOSMemory()
			}
		})
		if err != nil {
			if last == nil {
				return err
			}
			// A restart that cannot start: record why and give up.
			last.Restarting = false
			last.Error = "restart: " + err.Error()
			m.writeExit(last)
			return nil
		}
		ex.Restarts = restarts
		stopped := fileExists(filepath.Join(m.cfg.StateDir, StopFile))
		ex.Restarting = !stopped && m.cfg.Restart.shouldRestart(ex.ExitCode, restarts)
		m.writeExit(ex)
		m.attach.endRun()
		last = ex
		if !ex.Restarting {
			return nil
		}
		if ex.FinishedAt.Sub(ex.StartedAt) >= backoffReset {
			delay = backoffMin
		}
		if m.waitOrStopped(delay) {
			ex.Restarting = false
			m.writeExit(ex)
			return nil
		}
		delay = min(delay*2, backoffMax)
		restarts++
	}
}

// waitOrStopped sleeps d, ending early (true) if the user stops the container.
func (m *monitor) waitOrStopped(d time.Duration) bool {
	stop := filepath.Join(m.cfg.StateDir, StopFile)
	deadline := time.Now().Add(d)
	for {
		if fileExists(stop) {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(left, 100*time.Millisecond))
	}
}

func (m *monitor) writeExit(ex *ExitStatus) {
	if m.log != nil {
		ex.LogLinesDropped = m.log.droppedLines()
	}
	// Nothing to report to if this fails: the engine then sees a dead
	// monitor without exit.json, the same as after a SIGKILL.
	_ = writeFileAtomic(m.cfg.StateDir, ExitFile, ex.marshal())
}

// runtimeArgv builds a runtime command line with the global --root.
func (m *monitor) runtimeArgv(args ...string) []string {
	if m.cfg.RuntimeRoot != "" {
		args = append([]string{"--root", m.cfg.RuntimeRoot}, args...)
	}
	return hybrid.Argv(m.cfg.Runtime, args...)
}

// runtime runs a runtime command to completion with stdin on /dev/null and
// returns its combined output.
func (m *monitor) runtime(args ...string) ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		w.Close()
		return nil, err
	}
	defer null.Close()
	_, ch, err := m.reaper.start(m.runtimeArgv(args...), m.env, []*os.File{null, w, w}, false)
	w.Close()
	if err != nil {
		return nil, wrap(err, "run ", m.cfg.Runtime)
	}
	out := readCapped(r, 64<<10, time.Time{})
	ws := <-ch
	if code, _ := exitCode(ws); code != 0 {
		return out, errorOf(filepath.Base(m.cfg.Runtime), " ", args[0], ": exit status ", strconv.Itoa(code), ": ", trimMsg(out))
	}
	return out, nil
}

// readCapped reads r until EOF (or the deadline, if set), keeping at most n
// bytes and discarding the rest.
func readCapped(r *os.File, n int, deadline time.Time) []byte {
	if !deadline.IsZero() {
		_ = r.SetReadDeadline(deadline)
	}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		k, err := r.Read(buf)
		if k > 0 && out.Len() < n {
			out.Write(buf[:min(k, n-out.Len())])
		}
		if err != nil {
			return out.Bytes()
		}
	}
}

// trimMsg turns runtime output into an error message: runc and crun print
// JSON log lines or plain text; keep the text, one line.
func trimMsg(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(no output)"
	}
	return strings.Join(strings.Fields(s), " ")
}

// stdio is one run's stdio: the monitor's ends and the runtime's ends.
type stdio struct {
	child   []*os.File // stdin, stdout, stderr of the runtime's create
	stdin   *os.File   // write end of the container's stdin, nil without --stdin
	stdout  *os.File   // read end (non-tty)
	stderr  *os.File   // read end; with --tty the runtime's own output
	console *os.File   // console socket listener (--tty)
	pty     *os.File   // pty master (--tty), once received
}

func (s *stdio) closeChild() {
	for _, f := range s.child {
		f.Close()
	}
	s.child = nil
}

func (s *stdio) closeAll() {
	s.closeChild()
	for _, f := range []*os.File{s.stdin, s.stdout, s.stderr, s.console, s.pty} {
		if f != nil {
			f.Close()
		}
	}
}

func (m *monitor) newStdio() (*stdio, error) {
	s := &stdio{}
	fail := func(err error) (*stdio, error) {
		s.closeAll()
		return nil, err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fail(err)
	}
	s.child = append(s.child, null)
	if m.cfg.TTY {
		// The container gets the pty; the runtime's own output is captured
		// only to report its errors.
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		s.stderr = r
		s.child = append(s.child, w, w)
		if s.console, err = listenUnix(filepath.Join(m.cfg.StateDir, consoleSocket)); err != nil {
			return fail(wrap(err, "console socket"))
		}
		return s, nil
	}
	if m.cfg.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		null.Close()
		s.child[0], s.stdin = r, w
	}
	for _, dst := range []**os.File{&s.stdout, &s.stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		*dst = r
		s.child = append(s.child, w)
	}
	return s, nil
}

// runOnce creates, starts and waits for the container, then deletes its
// runtime state. started is called with the init's pid once it runs.
func (m *monitor) runOnce(started func(pid int)) (*ExitStatus, error) {
	cfg := m.cfg
	pidFile := filepath.Join(cfg.StateDir, ContainerPidFile)
	os.Remove(pidFile)
	s, err := m.newStdio()
	if err != nil {
		return nil, wrap(err, "container stdio")
	}
	defer s.closeAll()

	args := []string{"create", "--bundle", cfg.Bundle, "--pid-file", pidFile}
	var ptyc chan ptyResult
	if cfg.TTY {
		sock, done, err := peerSockName(filepath.Join(cfg.StateDir, consoleSocket))
		if err != nil {
			return nil, wrap(err, "console socket")
		}
		defer done()
		args = append(args, "--console-socket", sock)
		ptyc = make(chan ptyResult, 1)
		go receivePty(s.console, ptyc)
	}
	args = append(args, cfg.ID)
	_, createc, err := m.reaper.start(m.runtimeArgv(args...), m.env, s.child, false)
	s.closeChild()
	if err != nil {
		return nil, wrap(err, "run ", cfg.Runtime)
	}
	ws := <-createc
	if code, _ := exitCode(ws); code != 0 {
		// The runtime wrote why on its stderr, which is the container's
		// stderr pipe: nobody else writes there before start.
		msg := readCapped(s.stderr, 16<<10, time.Now().Add(time.Second))
		m.deleteState()
		return nil, errorOf(filepath.Base(cfg.Runtime), " create: exit status ", strconv.Itoa(code), ": ", trimMsg(msg))
	}
	if cfg.TTY {
		s.console.Close() // unblocks receivePty if the runtime never connected
		os.Remove(filepath.Join(cfg.StateDir, consoleSocket))
		var r ptyResult
		select {
		case r = <-ptyc:
		case <-time.After(5 * time.Second):
			r.err = errors.New("timed out")
		}
		if r.err != nil {
			m.deleteState()
			return nil, wrap(r.err, "receive the container's pty")
		}
		s.pty = r.pty
		if cfg.Stdin {
			s.stdin = r.pty
		}
	}
	pid, err := readPid(pidFile)
	if err != nil {
		m.deleteState()
		return nil, err
	}
	exitc := m.reaper.watch(pid)
	if ppid, err := parentOf(pid); err != nil || ppid != os.Getpid() {
		// Only a parent can collect an exit status; a monitor that is not
		// one cannot follow the container, so it must not leave it running.
		m.reaper.forget(pid)
		m.stopContainer(nil)
		m.deleteState()
		return nil, errorOf("container init ", strconv.Itoa(pid), " is not a child of the monitor (its parent: ", strconv.Itoa(ppid), ")")
	}
	oomFile := cgroupOOMFile(pid)
	oomBefore := oomKills(oomFile)

	// Output is pumped from before start, so not a byte is missed.
	var pumps sync.WaitGroup
	var readers []*os.File
	if cfg.TTY {
		readers = append(readers, s.pty)
		pumps.Add(1)
		go m.pump(&pumps, s.pty, StreamStdout, &m.outBuf)
	} else {
		readers = append(readers, s.stdout, s.stderr)
		pumps.Add(2)
		go m.pump(&pumps, s.stdout, StreamStdout, &m.outBuf)
		go m.pump(&pumps, s.stderr, StreamStderr, &m.errBuf)
	}
	m.attach.setRun(s.stdin, s.pty)

	if _, err := m.runtime("start", cfg.ID); err != nil {
		m.deleteState() // --force kills the init, which the reaper collects
		select {
		case <-exitc:
		case <-time.After(10 * time.Second):
			m.reaper.forget(pid)
		}
		m.attach.setRun(nil, nil)
		drain(&pumps, readers)
		return nil, err
	}
	ex := &ExitStatus{StartedAt: time.Now()}
	started(pid)

	ctx, cancelHealth := context.WithCancel(context.Background())
	var healthDone sync.WaitGroup
	if cfg.Health != nil {
		healthDone.Add(1)
		go func() {
			defer healthDone.Done()
			m.runHealth(ctx, ex.StartedAt)
		}()
	}

	ws = <-exitc
	ex.FinishedAt = time.Now()
	ex.ExitCode, ex.Signal = exitCode(ws)
	cancelHealth()
	healthDone.Wait()
	drain(&pumps, readers)
	ex.OOMKilled = oomKills(oomFile) > oomBefore
	m.attach.setRun(nil, nil)
	m.deleteState()
	return ex, nil
}

// drain lets the pumps read what the container wrote before it died, for at
// most a second (a process outside the container's pid namespace may hold
// the pipe open), then stops them.
func drain(pumps *sync.WaitGroup, readers []*os.File) {
	done := make(chan struct{})
	go func() {
		pumps.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(time.Second):
	}
	for _, r := range readers {
		_ = r.SetReadDeadline(time.Now())
	}
	<-done
}

// pump copies one output stream to the attach clients and the log.
func (m *monitor) pump(wg *sync.WaitGroup, r *os.File, stream byte, lineBuf *[]byte) {
	defer wg.Done()
	name := "stdout"
	if stream == StreamStderr {
		name = "stderr"
	}
	split := &lineSplitter{stream: name, log: m.log, buf: (*lineBuf)[:0]}
	if split.buf == nil {
		split.buf = make([]byte, 0, maxLogLine)
	}
	defer func() { *lineBuf = split.buf[:0] }()
	buf := make([]byte, 8<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := time.Now()
			m.attach.broadcast(stream, buf[:n])
			split.write(buf[:n], now)
		}
		if err != nil {
			// EOF for pipes; EIO for a pty whose last slave closed.
			split.flush(time.Now())
			return
		}
	}
}

// deleteState removes the runtime's state for the container (killing what is
// left of it); errors are of no use to anyone at this point.
func (m *monitor) deleteState() {
	_, _ = m.runtime("delete", "--force", m.cfg.ID)
}

// stopContainer sends the stop signal, then SIGKILL after 10 s, for the rare
// case the monitor has to stop a container on its own. exitc, if not nil,
// tells when the init is gone.
func (m *monitor) stopContainer(exitc <-chan unix.WaitStatus) {
	_, _ = m.runtime("kill", m.cfg.ID, strconv.Itoa(int(m.cfg.StopSignal)))
	if exitc != nil {
		select {
		case <-exitc:
			return
		case <-time.After(10 * time.Second):
		}
	}
	_, _ = m.runtime("kill", m.cfg.ID, "KILL")
}

type ptyResult struct {
	pty *os.File
	err error
}

// receivePty accepts the runtime's connection on the console socket and
// receives the pty master.
func receivePty(ln *os.File, out chan<- ptyResult) {
	conn, err := acceptUnix(ln)
	if err != nil {
		out <- ptyResult{err: err}
		return
	}
	defer conn.Close()
	fd, err := recvFd(conn)
	if err != nil {
		out <- ptyResult{err: err}
		return
	}
	// Non-blocking, so the os.File is served by the poller and a read can
	// be stopped with a deadline.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		out <- ptyResult{err: err}
		return
	}
	out <- ptyResult{pty: os.NewFile(uintptr(fd), "pty-master")}
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, wrap(err, "read the container's pid")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, errorOf("bad pid file ", path, ": ", strconv.Quote(string(data)))
	}
	return pid, nil
}

// parentOf reads the parent pid from /proc/PID/stat.
func parentOf(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses: skip to the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errorOf("parse /proc/", strconv.Itoa(pid), "/stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0, errorOf("parse /proc/", strconv.Itoa(pid), "/stat")
	}
	return strconv.Atoi(f[1])
}

// cgroupOOMFile finds the file counting OOM kills in the memory cgroup of
// pid: memory.oom_control (v1, "oom_kill N") or memory.events (v2).
func cgroupOOMFile(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	var v2 string
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.oom_control")
			}
		}
	}
	if v2 == "" {
		return ""
	}
	for _, mnt := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		p := filepath.Join(mnt, v2, "memory.events")
		if fileExists(p) {
			return p
		}
	}
	return ""
}

// oomKills reads the oom_kill counter; 0 if unknown.
func oomKills(path string) int {
	if path == "" {
		return 0
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeFileAtomic writes dir/name through a temp file, fsync and rename, then
// fsyncs dir: a reader sees the old file or the new one, even after a crash.
func writeFileAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-")
	if err != nil {
		return wrap(err, "write ", name)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return wrap(err, "write ", name)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// childEnv is the runtime's environment: the monitor's, without the
// GOMAXPROCS that hull-monitor sets for itself (the runtime is a Go program
// too, and its start is not single-threaded work).
func childEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			out = append(out, kv)
		}
	}
	return out
}

// lookPath finds a runtime given by name in $PATH (os/exec would be the
// only reason to link os/exec).
func lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errorOf("runtime ", strconv.Quote(name), " not found in $PATH")
}
