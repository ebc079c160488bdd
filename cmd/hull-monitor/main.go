// Command hull-monitor is hull's per-container monitor: it runs one container
// with an OCI runtime, holds its stdio, writes its json-file log, serves
// attach, records its exit status and applies its restart policy. See
// package engine/monitor.
//
// It is resident once per running container, so it is kept small: no flag
// or fmt (see monitor.Flags), GOMAXPROCS=1, a low GOGC.
package main

import (
	"errors"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/engine/monitor"
)

const usage = `hull-monitor: the monitor of one hull container

Usage: hull-monitor --id ID --bundle DIR --runtime PATH --state-dir DIR [options]

Runs the container with the OCI runtime (create, start), holds its stdio,
logs its output in Docker's json-file format, serves STATE_DIR/attach.sock,
records STATE_DIR/exit.json {exitCode, signal, oomKilled, startedAt,
finishedAt, restarts} and restarts the container by policy.

hull-monitor detaches at once (a new session, stdio on /dev/null, the first
process exits) unless --foreground, reports to --sync-fd one JSON line,
{"pid": N} once the container runs or {"error": "..."} if it could not start
(then exits non-zero and leaves no runtime state), and exits when the
container is gone and no restart is due. It ignores SIGTERM, SIGINT and
SIGHUP: stop the container, not the monitor (hull stop writes
STATE_DIR/stopped, then kills the container).

Options:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// options are the binary's own flags beside monitor.Config's.
type options struct {
	cfg        monitor.Config
	syncFd     int
	foreground bool
}

func (o *options) flags() []monitor.Flag {
	return append(o.cfg.Flags(),
		monitor.Flag{Name: "sync-fd", Arg: "FD", Usage: `pipe to the caller, inherited as FD: one JSON line, {"pid": N} or {"error": "..."}`,
			Set: func(s string) (err error) { o.syncFd, err = strconv.Atoi(s); return err }},
		monitor.Flag{Name: "foreground", Usage: "do not detach (debugging; the caller then reaps the monitor)",
			Set: func(s string) (err error) { o.foreground, err = strconv.ParseBool(s); return err }},
	)
}

func parse(args []string) (*options, error) {
	o := &options{syncFd: -1}
	rest, err := monitor.ParseFlags(args, o.flags())
	if errors.Is(err, monitor.ErrHelp) {
		return o, err
	}
	if len(rest) > 0 {
		err = errors.Join(err, errors.New("unexpected arguments: "+strconv.Quote(rest[0])+"..."))
	}
	return o, errors.Join(err, o.cfg.Validate())
}

func run(args []string, stderr io.Writer) int {
	o, err := parse(args)
	if errors.Is(err, monitor.ErrHelp) {
		io.WriteString(stderr, usage+monitor.FlagUsage(o.flags()))
		return 0
	}
	var sync *os.File
	if o.syncFd > 2 {
		// Close-on-exec: neither the runtime nor the container may inherit
		// the caller's pipe (the caller would never see it close).
		unix.CloseOnExec(o.syncFd)
		sync = os.NewFile(uintptr(o.syncFd), "sync")
	}
	if err != nil {
		return fail(stderr, sync, err, 2)
	}
	if !o.foreground {
		if err := detach(o, sync); err != nil {
			return fail(stderr, sync, err, 1)
		}
		return 0
	}
	tune()
	if err := monitor.Run(&o.cfg, sync); err != nil {
		// Run has reported it on the sync fd already.
		io.WriteString(stderr, "hull-monitor: "+err.Error()+"\n")
		return 1
	}
	return 0
}

// fail reports err on stderr and, if there is one, the sync fd.
func fail(stderr io.Writer, sync *os.File, err error, code int) int {
	err = errors.New("hull-monitor: " + err.Error())
	io.WriteString(stderr, err.Error()+"\n")
	if sync != nil {
		_ = monitor.ReportError(sync, err)
		sync.Close()
	}
	return code
}

// tune keeps an idle monitor's footprint small: no allocation profiling,
// one P (no per-P caches and GC workers for every CPU), a collection every
// 25% of heap growth (the minimum heap target drops from 4 MiB to 1 MiB),
// and a soft limit that makes the GC work harder before the heap grows past
// a few MiB.
func tune() {
	runtime.MemProfileRate = 0
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(25)
	debug.SetMemoryLimit(8 << 20)
}

// detach re-executes the monitor in a new session with its stdio on
// /dev/null, passing the sync fd on, and returns: the caller (hull) reaps
// this first process at once, the second is reparented to init (or the
// nearest subreaper) and holds no terminal.
func detach(o *options, sync *os.File) error {
	self, err := os.Executable()
	if err != nil {
		return errors.New("find own binary: " + err.Error())
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	argv := append([]string{self}, o.cfg.Args()...)
	argv = append(argv, "--foreground")
	files := []*os.File{null, null, null}
	if sync != nil {
		argv = append(argv, "--sync-fd", strconv.Itoa(len(files)))
		files = append(files, sync)
	}
	if o.cfg.AttachFd > 2 {
		argv = append(argv, "--attach-fd", strconv.Itoa(len(files)))
		files = append(files, os.NewFile(uintptr(o.cfg.AttachFd), "attach"))
	}
	// GOMAXPROCS in the environment sizes the Go runtime from its first
	// instruction (one P from the start saves a quarter of a MiB); tune()
	// repeats it for --foreground runs, and monitor.Run keeps it out of the
	// runtime's environment.
	p, err := os.StartProcess(self, argv, &os.ProcAttr{
		Dir:   "/",
		Env:   append(os.Environ(), "GOMAXPROCS=1"),
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return errors.New("detach: " + err.Error())
	}
	return p.Release()
}
