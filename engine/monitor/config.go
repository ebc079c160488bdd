package monitor

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Restart policy names, as Docker spells them.
const (
	RestartNo            = "no"
	RestartOnFailure     = "on-failure"
	RestartAlways        = "always"
	RestartUnlessStopped = "unless-stopped"
)

// RestartPolicy says whether the monitor starts the container again after it
// exits. "always" and "unless-stopped" behave the same inside one monitor:
// they differ only when the engine decides what to start after a reboot,
// which is not the monitor's business.
type RestartPolicy struct {
	Name       string // RestartNo, RestartOnFailure, RestartAlways or RestartUnlessStopped
	MaxRetries int    // on-failure only; 0 means no limit
}

// ParseRestartPolicy parses no | on-failure[:N] | always | unless-stopped.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "", RestartNo:
		p.Name = RestartNo
	case RestartOnFailure:
	case RestartAlways, RestartUnlessStopped:
	default:
		return p, errorOf("restart policy ", strconv.Quote(s), ": want no, on-failure[:N], always or unless-stopped")
	}
	if hasCount {
		if name != RestartOnFailure {
			return p, errorOf("restart policy ", strconv.Quote(s), ": only on-failure takes a retry count")
		}
		n, err := strconv.Atoi(count)
		if err != nil || n < 0 {
			return p, errorOf("restart policy ", strconv.Quote(s), ": retry count must be a number >= 0")
		}
		p.MaxRetries = n
	}
	return p, nil
}

// String is the flag spelling of p.
func (p RestartPolicy) String() string {
	if p.Name == "" {
		return RestartNo
	}
	if p.Name == RestartOnFailure && p.MaxRetries > 0 {
		return p.Name + ":" + strconv.Itoa(p.MaxRetries)
	}
	return p.Name
}

// shouldRestart decides on a restart after an exit with code, given the
// number of restarts already done. A stop by the user is checked by the caller.
func (p RestartPolicy) shouldRestart(code, restarts int) bool {
	switch p.Name {
	case RestartAlways, RestartUnlessStopped:
		return true
	case RestartOnFailure:
		return code != 0 && (p.MaxRetries == 0 || restarts < p.MaxRetries)
	}
	return false
}

// HealthConfig is a container health check, run with the OCI runtime's exec.
type HealthConfig struct {
	// Cmd is the check: run as `/bin/sh -c Cmd` (Docker's CMD-SHELL) unless
	// Exec is set.
	Cmd string
	// Exec is the exec form (Docker's CMD): argv run as is.
	Exec        []string
	Interval    time.Duration // between the end of one check and the start of the next (default 30s)
	Timeout     time.Duration // a check running longer fails (default 30s)
	Retries     int           // consecutive failures that make the container unhealthy (default 3)
	StartPeriod time.Duration // failures this soon after start do not count
}

// argv is the command the check runs inside the container.
func (h *HealthConfig) argv() []string {
	if len(h.Exec) > 0 {
		return h.Exec
	}
	return []string{"/bin/sh", "-c", h.Cmd}
}

// Log formats.
const (
	// LogFormatJSON is Docker's json-file format.
	LogFormatJSON = "json-file"
	// LogFormatCRI is the CRI's container log format, which the kubelet
	// reads and rotates (Podman's name for it).
	LogFormatCRI = "k8s-file"
)

// Defaults of the flags, as Docker's.
const (
	DefaultHealthInterval = 30 * time.Second
	DefaultHealthTimeout  = 30 * time.Second
	DefaultHealthRetries  = 3
)

// Config is everything one monitor needs. The engine fills it and turns it
// into hull-monitor's command line with Args; hull-monitor parses it back
// with Flags, so both sides share one definition.
type Config struct {
	ID          string // container id, as given to the runtime
	Bundle      string // OCI bundle directory
	Runtime     string // path of hull-runtime, runc or crun (same CLI)
	RuntimeRoot string // the runtime's --root; empty keeps the runtime's default
	StateDir    string // the container's engine state dir (made 0700 by the caller)

	LogPath     string // the log file; empty discards the output (attach still sees it)
	LogFormat   string // LogFormatJSON (default) or LogFormatCRI
	LogMaxSize  int64  // rotate when the file reaches this many bytes; 0 never rotates
	LogMaxFiles int    // files kept including the current one (file, file.1 ... file.N-1)

	TTY   bool // the container has a terminal: receive its pty master over --console-socket
	Stdin bool // keep the container's stdin open for attach (-i)
	// AttachFd, if > 2, is an inherited connected stream socket that is
	// (not in Args: the fd number is the launcher's to choose)
	// served as an attach client from the monitor's start, before the
	// container exists: `hull run` attaches this way (as `docker run`
	// attaches before it starts) and sees every byte, raw, from the first.
	AttachFd int

	Restart RestartPolicy
	Health  *HealthConfig // nil: no health check

	// StopSignal is the signal the monitor sends when it has to stop a
	// container it cannot follow (SIGKILL after a grace period); `hull stop`
	// uses the same signal but talks to the runtime itself.
	StopSignal syscall.Signal
}

// Validate checks c and makes its paths absolute (the monitor changes its
// working directory to / so that it does not pin the caller's).
func (c *Config) Validate() error {
	var errs []error
	need := func(v, name string) {
		if v == "" {
			errs = append(errs, errorOf("--", name, " is required"))
		}
	}
	need(c.ID, "id")
	need(c.Bundle, "bundle")
	need(c.Runtime, "runtime")
	need(c.StateDir, "state-dir")
	if c.LogMaxSize < 0 {
		errs = append(errs, errors.New("--log-max-size must be >= 0"))
	}
	if c.LogMaxFiles < 1 {
		c.LogMaxFiles = 1
	}
	switch c.LogFormat {
	case "":
		c.LogFormat = LogFormatJSON
	case LogFormatJSON, LogFormatCRI:
	default:
		errs = append(errs, errorOf("--log-format ", c.LogFormat, ": use ", LogFormatJSON, " or ", LogFormatCRI))
	}
	if c.Health != nil {
		h := c.Health
		if h.Cmd == "" && len(h.Exec) == 0 {
			errs = append(errs, errors.New("a health check needs --health-cmd or --health-exec"))
		}
		if h.Interval <= 0 {
			h.Interval = DefaultHealthInterval
		}
		if h.Timeout <= 0 {
			h.Timeout = DefaultHealthTimeout
		}
		if h.Retries <= 0 {
			h.Retries = DefaultHealthRetries
		}
	}
	if c.StopSignal == 0 {
		c.StopSignal = unix.SIGTERM
	}
	for _, p := range []*string{&c.Bundle, &c.StateDir, &c.LogPath, &c.RuntimeRoot} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			errs = append(errs, wrap(err, "path ", *p))
			continue
		}
		*p = abs
	}
	// The runtime may be a bare name found in $PATH by the spawn; only a
	// relative path with a slash depends on the working directory.
	if strings.Contains(c.Runtime, "/") && !filepath.IsAbs(c.Runtime) {
		if abs, err := filepath.Abs(c.Runtime); err == nil {
			c.Runtime = abs
		}
	}
	return errors.Join(errs...)
}

// ParseSignal accepts SIGTERM, TERM or 15.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errorOf("signal ", strconv.Quote(s), " out of range")
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errorOf("unknown signal ", strconv.Quote(s))
}

// Flag is one option of hull-monitor's command line. The monitor parses its
// options itself: the flag package would bring fmt and reflection into
// every monitor's resident text.
type Flag struct {
	Name  string
	Arg   string // the value's name in the usage; "" for a boolean option
	Usage string
	Set   func(string) error // boolean options get "true" unless --name=false
}

// ErrHelp is returned by ParseFlags for -h and --help.
var ErrHelp = errors.New("help requested")

// ParseFlags parses args: --name value, --name=value, one or two dashes,
// boolean options without a value. It stops at the first non-option, which
// is returned with the rest. It reports every bad option, not only the
// first, and still applies the good ones (a --sync-fd after a typo is known,
// so the error can be reported there).
func ParseFlags(args []string, flags []Flag) (rest []string, err error) {
	var errs []error
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args[i+1:], errors.Join(errs...)
		}
		if len(a) < 2 || a[0] != '-' {
			return args[i:], errors.Join(errs...)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, value, hasValue := strings.Cut(name, "=")
		if name == "h" || name == "help" {
			return nil, ErrHelp
		}
		var f *Flag
		for j := range flags {
			if flags[j].Name == name {
				f = &flags[j]
				break
			}
		}
		if f == nil {
			errs = append(errs, errorOf("unknown option ", strconv.Quote(a)))
			continue
		}
		if !hasValue {
			if f.Arg == "" {
				value = "true"
			} else {
				if i+1 >= len(args) {
					errs = append(errs, errorOf("option --", name, " needs a value"))
					break
				}
				i++
				value = args[i]
			}
		}
		if err := f.Set(value); err != nil {
			errs = append(errs, wrap(err, "--", name))
		}
	}
	return nil, errors.Join(errs...)
}

// FlagUsage lists flags for a usage message, one option a paragraph.
func FlagUsage(flags []Flag) string {
	var b strings.Builder
	for _, f := range flags {
		b.WriteString("  --" + f.Name)
		if f.Arg != "" {
			b.WriteString(" " + f.Arg)
		}
		b.WriteString("\n        " + f.Usage + "\n")
	}
	return b.String()
}

func stringFlag(p *string) func(string) error {
	return func(s string) error { *p = s; return nil }
}

func boolFlag(p *bool) func(string) error {
	return func(s string) (err error) { *p, err = strconv.ParseBool(s); return err }
}

func durationFlag(p func() *time.Duration) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*p() = d
		return nil
	}
}

// Flags are hull-monitor's options that fill c; their usage text is the
// documentation of the command line.
func (c *Config) Flags() []Flag {
	health := func() *HealthConfig {
		if c.Health == nil {
			c.Health = &HealthConfig{}
		}
		return c.Health
	}
	return []Flag{
		{Name: "id", Arg: "ID", Usage: "container id (required)", Set: stringFlag(&c.ID)},
		{Name: "bundle", Arg: "DIR", Usage: "OCI bundle directory (required)", Set: stringFlag(&c.Bundle)},
		{Name: "runtime", Arg: "PATH", Usage: "OCI runtime binary, hull-runtime, runc or crun: the same CLI (required)", Set: stringFlag(&c.Runtime)},
		{Name: "runtime-root", Arg: "DIR", Usage: "the runtime's --root (default: the runtime's own)", Set: stringFlag(&c.RuntimeRoot)},
		{Name: "state-dir", Arg: "DIR", Usage: "the container's state dir, made 0700 by the caller (required): monitor.pid, container.pid, exit.json, attach.sock, health.json; `hull stop` writes the stopped marker there", Set: stringFlag(&c.StateDir)},
		{Name: "log-path", Arg: "FILE", Usage: "json-file log of the container's output (default: none; attach still works)", Set: stringFlag(&c.LogPath)},
		{Name: "log-format", Arg: "FORMAT", Usage: "json-file (Docker's, the default) or k8s-file (the CRI's, which the kubelet reads; SIGHUP reopens the file after the kubelet rotates it)", Set: stringFlag(&c.LogFormat)},
		{Name: "log-max-size", Arg: "BYTES", Usage: "rotate the log when it reaches this size (default 0: never)", Set: func(s string) (err error) {
			c.LogMaxSize, err = strconv.ParseInt(s, 10, 64)
			return err
		}},
		{Name: "log-max-files", Arg: "N", Usage: "log files to keep, the current one included: FILE, FILE.1 ... FILE.N-1 (default 1)", Set: func(s string) (err error) {
			c.LogMaxFiles, err = strconv.Atoi(s)
			return err
		}},
		{Name: "tty", Usage: "the container has a terminal (config.json process.terminal): receive its pty with --console-socket, log it as stdout, attach raw", Set: boolFlag(&c.TTY)},
		{Name: "stdin", Usage: "keep the container's stdin open for attach clients (-i)", Set: boolFlag(&c.Stdin)},
		{Name: "attach-fd", Arg: "FD", Usage: "a connected unix stream socket, inherited as FD, to serve as an attach client from the start (foreground runs see all output)", Set: func(v string) (err error) {
			c.AttachFd, err = strconv.Atoi(v)
			return err
		}},
		{Name: "restart", Arg: "POLICY", Usage: "no, on-failure[:N], always or unless-stopped (default no); backoff 100ms doubling to 1m, reset after 10s of uptime", Set: func(s string) (err error) {
			c.Restart, err = ParseRestartPolicy(s)
			return err
		}},
		{Name: "health-cmd", Arg: "CMD", Usage: "health check, run as /bin/sh -c CMD in the container with the runtime's exec; state in health.json", Set: func(s string) error { health().Cmd = s; return nil }},
		{Name: "health-exec", Arg: "ARG", Usage: "health check in exec form instead of --health-cmd: repeat once per argument", Set: func(s string) error { health().Exec = append(health().Exec, s); return nil }},
		{Name: "health-interval", Arg: "DURATION", Usage: "time between health checks (default 30s)", Set: durationFlag(func() *time.Duration { return &health().Interval })},
		{Name: "health-timeout", Arg: "DURATION", Usage: "a health check running longer fails, and is killed (default 30s)", Set: durationFlag(func() *time.Duration { return &health().Timeout })},
		{Name: "health-retries", Arg: "N", Usage: "consecutive failures that make the container unhealthy (default 3)", Set: func(s string) (err error) {
			health().Retries, err = strconv.Atoi(s)
			return err
		}},
		{Name: "health-start-period", Arg: "DURATION", Usage: "failures during this time after start do not count (default 0s)", Set: durationFlag(func() *time.Duration { return &health().StartPeriod })},
		{Name: "stop-signal", Arg: "SIGNAL", Usage: "signal to stop the container with when the monitor cannot follow it, SIGKILL 10s later (default SIGTERM)", Set: func(s string) (err error) {
			c.StopSignal, err = ParseSignal(s)
			return err
		}},
	}
}

// Args is c as hull-monitor's command line (without the binary and
// --sync-fd, which the launcher adds).
func (c *Config) Args() []string {
	a := []string{"--id", c.ID, "--bundle", c.Bundle, "--runtime", c.Runtime, "--state-dir", c.StateDir}
	if c.RuntimeRoot != "" {
		a = append(a, "--runtime-root", c.RuntimeRoot)
	}
	if c.LogPath != "" {
		a = append(a, "--log-path", c.LogPath)
	}
	if c.LogFormat != "" && c.LogFormat != LogFormatJSON {
		a = append(a, "--log-format", c.LogFormat)
	}
	if c.LogMaxSize > 0 {
		a = append(a, "--log-max-size", strconv.FormatInt(c.LogMaxSize, 10))
	}
	if c.LogMaxFiles > 1 {
		a = append(a, "--log-max-files", strconv.Itoa(c.LogMaxFiles))
	}
	if c.TTY {
		a = append(a, "--tty")
	}
	if c.Stdin {
		a = append(a, "--stdin")
	}

	if c.Restart.Name != "" && c.Restart.Name != RestartNo {
		a = append(a, "--restart", c.Restart.String())
	}
	if h := c.Health; h != nil {
		if len(h.Exec) > 0 {
			for _, arg := range h.Exec {
				a = append(a, "--health-exec", arg)
			}
		} else {
			a = append(a, "--health-cmd", h.Cmd)
		}
		if h.Interval > 0 {
			a = append(a, "--health-interval", h.Interval.String())
		}
		if h.Timeout > 0 {
			a = append(a, "--health-timeout", h.Timeout.String())
		}
		if h.Retries > 0 {
			a = append(a, "--health-retries", strconv.Itoa(h.Retries))
		}
		if h.StartPeriod > 0 {
			a = append(a, "--health-start-period", h.StartPeriod.String())
		}
	}
	if c.StopSignal != 0 {
		a = append(a, "--stop-signal", strconv.Itoa(int(c.StopSignal)))
	}
	return a
}
