// Command hull-runtime is an OCI runtime with runc's command line: engines that
// call runc (containerd, Podman, Docker, CRI-O) can call it instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/hull-runtime/hull/runtime/container"
	"github.com/hull-runtime/hull/runtime/initproc"
	_ "github.com/hull-runtime/hull/runtime/nsenter" // joins namespaces for `init` before Go starts
	"github.com/hull-runtime/hull/runtime/state"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `hull-runtime: an OCI runtime, a drop-in for runc

Usage: hull-runtime [global options] command [command options] [arguments...]

Commands:
  create    create a container
  start     start the user process of a created container
  run       create and start a container
  state     print the state of a container
  kill      send a signal to the container's init process
  delete    delete a container and the resources it holds
  list      list containers
  spec      write a new config.json
  features  print the features the runtime supports
  ps        list the processes of a container (table or json)
  pause     freeze every process of a container
  resume    thaw a paused container
  update    change the resource limits of a container
  events    print a container's statistics and OOM events as JSON
  checkpoint  checkpoint a running container with CRIU
  restore   restore a container from a CRIU checkpoint

Global options:
  --root DIR          state directory (default /run/hull-runtime)
  --log FILE          log file (default stderr)
  --log-format FMT    text or json
  --debug             debug logging
  --systemd-cgroup    cgroupsPath is slice:prefix:name, cgroups through systemd
  --rootless VALUE    true, false or auto
  --version, -v       print the version
`

// globals are the options every verb sees.
type globals struct {
	root          string
	logFile       string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	criu          string // --criu: the criu binary for checkpoint/restore
	log           *slog.Logger
	logOut        io.Writer
}

// init pins the container init to the main thread before main runs: per-thread
// state (unshared namespaces, credentials, capabilities, seccomp) must belong
// to the thread group leader, which is the thread that finally calls execve.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.LockOSThread()
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		initproc.Main()
		return
	}
	// Most verbs live for milliseconds: collecting garbage only costs time.
	// Verbs that go on waiting (run, exec, events) turn it back on.
	debug.SetGCPercent(-1)
	os.Exit(run(os.Args[1:]))
}

type verb func(g *globals, args []string) error

func verbs() map[string]verb {
	return map[string]verb{
		"create":     cmdCreate,
		"start":      cmdStart,
		"run":        cmdRun,
		"exec":       cmdExec,
		"state":      cmdState,
		"kill":       cmdKill,
		"delete":     cmdDelete,
		"list":       cmdList,
		"spec":       cmdSpec,
		"features":   cmdFeatures,
		"ps":         cmdPs,
		"pause":      cmdPause,
		"resume":     cmdResume,
		"update":     cmdUpdate,
		"events":     cmdEvents,
		"checkpoint": cmdCheckpoint,
		"restore":    cmdRestore,
	}
}

func run(args []string) int {
	g := &globals{root: "/run/hull-runtime", logFormat: "text", rootless: "auto"}
	fs := flag.NewFlagSet("hull-runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.root, "root", g.root, "")
	fs.StringVar(&g.logFile, "log", "", "")
	fs.StringVar(&g.logFormat, "log-format", g.logFormat, "")
	fs.BoolVar(&g.debug, "debug", false, "")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "")
	fs.StringVar(&g.rootless, "rootless", g.rootless, "")
	fs.StringVar(&g.criu, "criu", "", "")
	showVersion := false
	fs.BoolVar(&showVersion, "version", false, "")
	fs.BoolVar(&showVersion, "v", false, "")
	help := false
	fs.BoolVar(&help, "help", false, "")
	fs.BoolVar(&help, "h", false, "")

	rest, unknown := parseGlobals(fs, args)
	rootSet := false
	fs.Visit(func(f *flag.Flag) { rootSet = rootSet || f.Name == "root" })
	if !rootSet && os.Geteuid() != 0 {
		// Rootless: the state lives in the user's runtime dir, as with runc.
		if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
			g.root = dir + "/hull-runtime"
		} else {
			g.root = fmt.Sprintf("/tmp/hull-runtime-%d", os.Geteuid())
		}
	}
	g.setupLog()
	for _, u := range unknown {
		g.log.Warn("ignoring unknown global option", "option", u)
	}
	if showVersion {
		fmt.Printf("hull-runtime version %s\nspec: %s\n", version, specVersion())
		return 0
	}
	if help || len(rest) == 0 {
		fmt.Print(usage)
		if len(rest) == 0 && !help {
			return 1
		}
		return 0
	}
	if rest[0] == "help" {
		fmt.Print(usage)
		return 0
	}
	v, ok := verbs()[rest[0]]
	if !ok {
		g.fail(fmt.Errorf("unknown command %q (see hull-runtime --help)", rest[0]))
		return 1
	}
	if err := v(g, rest[1:]); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return int(ee)
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		g.fail(err)
		return 1
	}
	return 0
}

// exitError is returned by verbs that end with a specific status (run).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// parseGlobals parses the options before the verb. Unknown options are returned
// instead of failing: engines pass flags of newer runc versions.
func parseGlobals(fs *flag.FlagSet, args []string) (rest, unknown []string) {
	for {
		idx := findUnknown(fs, args)
		if idx < 0 {
			break
		}
		unknown = append(unknown, args[idx])
		args = append(append([]string{}, args[:idx]...), args[idx+1:]...)
	}
	if err := fs.Parse(args); err != nil {
		return nil, append(unknown, err.Error())
	}
	return fs.Args(), unknown
}

// findUnknown returns the index of the first option that fs does not define.
func findUnknown(fs *flag.FlagSet, args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return -1
		}
		name := strings.TrimLeft(a, "-")
		name, _, hasVal := strings.Cut(name, "=")
		f := fs.Lookup(name)
		if f == nil {
			return i
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if !hasVal {
			i++
		}
	}
	return -1
}

func (g *globals) setupLog() {
	var w io.Writer = os.Stderr
	if g.logFile != "" {
		if f, err := os.OpenFile(g.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644); err == nil {
			w = f
		}
	}
	g.logOut = w
	level := slog.LevelWarn
	if g.debug {
		level = slog.LevelDebug
	}
	// runc's log lines use lower-case levels; containerd's go-runc parses them.
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey {
			a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
		}
		return a
	}}
	if g.logFormat == "json" {
		g.log = slog.New(slog.NewJSONHandler(w, opts))
	} else {
		g.log = slog.New(slog.NewTextHandler(w, opts))
	}
}

// fail reports a verb's error on stderr and, when a log file is set, in the log,
// where containerd looks for it.
func (g *globals) fail(err error) {
	if g.logFile != "" {
		g.log.Log(context.Background(), slog.LevelError, err.Error())
	}
	fmt.Fprintf(os.Stderr, "hull-runtime: %v\n", err)
}

func (g *globals) runtime() *container.Runtime {
	return &container.Runtime{
		Store:         state.Store{Root: g.root},
		SystemdCgroup: g.systemdCgroup,
		Rootless:      g.rootless == "true" || (g.rootless == "auto" && (os.Geteuid() != 0 || container.RunningInUserNS())),
		Log:           g.log,
	}
}

// newFlags makes a verb's flag set; parse accepts options after positional
// arguments too, as runc's CLI does.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%s: %w", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// needID checks a verb got exactly the container id (plus up to extra args).
func needID(verb string, pos []string, extra int) (string, error) {
	if len(pos) < 1 {
		return "", fmt.Errorf("%s: container id is required", verb)
	}
	if len(pos) > 1+extra {
		return "", fmt.Errorf("%s: unexpected arguments %q", verb, pos[1+extra:])
	}
	return pos[0], nil
}
