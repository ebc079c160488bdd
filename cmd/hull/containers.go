package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hull-runtime/hull/engine"
	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/monitor"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runFlags are `hull create`/`hull run`'s options.
type runFlags struct {
	o                                          engine.RunOptions
	entrypoint                                 string
	envFiles, env                              []string
	memory, memorySwap, shmSize                string
	healthCmd                                  string
	healthInterval, healthTimeout, healthStart time.Duration
	healthRetries                              int
	logOpts                                    []string
	labels, annotations                        []string
	stopTimeout                                int
	mounts                                     []string
}

func (f *runFlags) register(fs *pflag.FlagSet) {
	o := &f.o
	fs.StringVar(&o.Name, "name", "", "container name")
	fs.StringVar(&o.Pull, "pull", "missing", "pull the image: always, missing or never")
	fs.StringVar(&o.Runtime, "runtime", "hull-runtime", "OCI runtime: hull-runtime, runc, crun or a path")
	fs.BoolVarP(&o.Spec.Interactive, "interactive", "i", false, "keep stdin open")
	fs.BoolVarP(&o.Spec.TTY, "tty", "t", false, "allocate a terminal")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "environment variable K=V (K alone: from this environment)")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "file of K=V lines")
	fs.StringVarP(&o.Spec.User, "user", "u", "", "user[:group]")
	fs.StringVarP(&o.Spec.Workdir, "workdir", "w", "", "working directory")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "replace the image's entrypoint")
	fs.StringVar(&o.Spec.Hostname, "hostname", "", "container host name")
	fs.StringArrayVarP(&o.Volumes, "volume", "v", nil, "volume: [NAME|HOSTPATH:]DEST[:ro]")
	fs.StringArrayVar(&f.mounts, "mount", nil, "mount: type=bind|volume|tmpfs,source=,target=[,readonly][,bind-propagation=][,tmpfs-size=][,tmpfs-mode=]")
	fs.StringArrayVarP(&o.Publish, "publish", "p", nil, "publish a port: [IP:][HOSTPORT:]PORT[/PROTO]")
	fs.BoolVarP(&o.PublishAll, "publish-all", "P", false, "publish every exposed port on a free host port")
	fs.StringArrayVar(&o.Expose, "expose", nil, "expose a port or range: PORT[-PORT][/PROTO]")
	fs.StringVar(&o.Network, "network", "", "network: bridge (default), host, none, container:NAME or a network's name")
	fs.StringArrayVar(&o.NetworkAliases, "network-alias", nil, "another name on the network")
	fs.StringArrayVar(&o.DNS, "dns", nil, "DNS server")
	fs.StringArrayVar(&o.DNSSearch, "dns-search", nil, "DNS search domain")
	fs.StringArrayVar(&o.DNSOptions, "dns-option", nil, "resolv.conf option (ndots:2, ...)")
	fs.StringVar(&o.IPC, "ipc", "", "IPC namespace: private (default), host or container:NAME")
	fs.StringVar(&o.PID, "pid", "", "PID namespace: private (default), host or container:NAME")
	fs.StringVar(&o.UTS, "uts", "", "UTS namespace: private (default), host or container:NAME")
	fs.StringArrayVar(&o.AddHost, "add-host", nil, "NAME:IP in /etc/hosts")
	fs.BoolVar(&o.Spec.ReadOnly, "read-only", false, "read-only root filesystem")
	fs.StringArrayVar(&o.Spec.Tmpfs, "tmpfs", nil, "tmpfs mount: DEST[:OPTIONS]")
	fs.StringArrayVar(&o.Spec.CapAdd, "cap-add", nil, "add a capability")
	fs.StringArrayVar(&o.Spec.CapDrop, "cap-drop", nil, "drop a capability")
	fs.BoolVar(&o.Spec.Privileged, "privileged", false, "every capability and device, no seccomp")
	fs.StringArrayVar(&o.Spec.SecurityOpt, "security-opt", nil, "seccomp=unconfined|PROFILE, no-new-privileges")
	fs.StringArrayVar(&o.Spec.Devices, "device", nil, "host device: HOST[:CONTAINER[:PERMS]]")
	fs.StringArrayVar(&o.Spec.Ulimits, "ulimit", nil, "resource limit: NAME=SOFT[:HARD]")
	fs.StringVarP(&f.memory, "memory", "m", "", "memory limit (e.g. 512m)")
	fs.StringVar(&f.memorySwap, "memory-swap", "", "memory+swap limit (-1 unlimited)")
	fs.Float64Var(&o.Spec.CPUs, "cpus", 0, "CPUs (e.g. 1.5)")
	fs.Int64Var(&o.Spec.PidsLimit, "pids-limit", 0, "process limit (-1 unlimited)")
	fs.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm")
	fs.StringArrayVarP(&f.labels, "label", "l", nil, "label K=V")
	fs.StringArrayVar(&f.annotations, "annotation", nil, "annotation K=V for the runtime")
	fs.StringVar(&o.Spec.StopSignal, "stop-signal", "", "signal that stops the container")
	fs.IntVar(&f.stopTimeout, "stop-timeout", 10, "seconds to wait before SIGKILL on stop")
	fs.StringVar(&o.Restart, "restart", "no", "no, on-failure[:N], always or unless-stopped")
	fs.BoolVar(&o.AutoRemove, "rm", false, "remove the container when it exits")
	fs.StringVar(&o.CgroupParent, "cgroup-parent", "/hull", "cgroup the container's cgroup goes below")
	fs.BoolVar(&o.Spec.Init, "init", false, "run an init as PID 1 (catatonit or tini)")
	fs.StringArrayVar(&f.logOpts, "log-opt", nil, "max-size=SIZE, max-file=N")
	fs.StringVar(&f.healthCmd, "health-cmd", "", "health check command (run with /bin/sh -c)")
	fs.DurationVar(&f.healthInterval, "health-interval", 0, "between checks (default 30s)")
	fs.DurationVar(&f.healthTimeout, "health-timeout", 0, "check timeout (default 30s)")
	fs.DurationVar(&f.healthStart, "health-start-period", 0, "grace period after start")
	fs.IntVar(&f.healthRetries, "health-retries", 0, "failures before unhealthy (default 3)")
	fs.BoolVar(&o.NoHealthcheck, "no-healthcheck", false, "disable the image's health check")
	fs.SetInterspersed(false)
}

// options turns the flags and IMAGE [COMMAND...] into RunOptions.
func (f *runFlags) options(cmd *cobra.Command, args []string) (engine.RunOptions, error) {
	o := f.o
	o.Image = args[0]
	if len(args) > 1 {
		o.Spec.Cmd = args[1:]
	}
	// Copies: the flag's slices are shared between calls of options.
	o.Volumes = append([]string(nil), o.Volumes...)
	o.Spec.Tmpfs = append([]string(nil), o.Spec.Tmpfs...)
	for _, m := range f.mounts {
		v, tmpfs, err := engine.ParseMountFlag(m)
		if err != nil {
			return o, err
		}
		if v != "" {
			o.Volumes = append(o.Volumes, v)
		} else {
			o.Spec.Tmpfs = append(o.Spec.Tmpfs, tmpfs)
		}
	}
	if cmd.Flags().Changed("entrypoint") {
		o.Spec.EntrypointSet = true
		if f.entrypoint != "" {
			o.Spec.Entrypoint = []string{f.entrypoint}
		}
	}
	for _, file := range f.envFiles {
		lines, err := readEnvFile(file)
		if err != nil {
			return o, err
		}
		o.Spec.Env = append(o.Spec.Env, lines...)
	}
	for _, kv := range f.env {
		if !strings.Contains(kv, "=") {
			v, ok := os.LookupEnv(kv)
			if !ok {
				continue
			}
			kv += "=" + v
		}
		o.Spec.Env = append(o.Spec.Env, kv)
	}
	var err error
	if o.Spec.Memory, err = parseBytes("--memory", f.memory); err != nil {
		return o, err
	}
	if f.memorySwap == "-1" {
		o.Spec.MemorySwap = -1
	} else if o.Spec.MemorySwap, err = parseBytes("--memory-swap", f.memorySwap); err != nil {
		return o, err
	}
	if o.Spec.ShmSize, err = parseBytes("--shm-size", f.shmSize); err != nil {
		return o, err
	}
	o.Spec.Labels = kvMap(f.labels)
	o.Spec.Annotations = kvMap(f.annotations)
	o.StopTimeout = f.stopTimeout
	for _, lo := range f.logOpts {
		k, v, _ := strings.Cut(lo, "=")
		switch k {
		case "max-size":
			if o.LogMaxSize, err = parseBytes("--log-opt max-size", v); err != nil {
				return o, err
			}
		case "max-file":
			if _, err := fmt.Sscan(v, &o.LogMaxFiles); err != nil || o.LogMaxFiles < 1 {
				return o, fmt.Errorf("--log-opt max-file=%q: want a positive number", v)
			}
		default:
			return o, fmt.Errorf("--log-opt %q: only max-size and max-file (json-file)", lo)
		}
	}
	if f.healthCmd != "" {
		o.Health = &monitor.HealthConfig{Cmd: f.healthCmd, Interval: f.healthInterval, Timeout: f.healthTimeout, Retries: f.healthRetries, StartPeriod: f.healthStart}
	}
	if o.Spec.Init {
		for _, p := range []string{"/usr/bin/catatonit", "/usr/libexec/podman/catatonit", "/usr/bin/tini", "/usr/bin/tini-static", "/sbin/tini"} {
			if _, err := os.Stat(p); err == nil {
				o.Spec.InitPath = p
				break
			}
		}
		if o.Spec.InitPath == "" {
			return o, errors.New("--init: no init binary found (install catatonit or tini)")
		}
	}
	return o, nil
}

func kvMap(kvs []string) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if !strings.Contains(l, "=") {
			v, ok := os.LookupEnv(l)
			if !ok {
				continue
			}
			l += "=" + v
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// parseBytes parses "512m", "1g", "1024" (bytes); "" is 0.
func parseBytes(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	num := strings.ToLower(s)
	for suf, m := range map[string]int64{"kb": 1 << 10, "k": 1 << 10, "mb": 1 << 20, "m": 1 << 20, "gb": 1 << 30, "g": 1 << 30, "b": 1} {
		if strings.HasSuffix(num, suf) && len(suf) > 0 {
			if t := strings.TrimSuffix(num, suf); t != "" && t[len(t)-1] >= '0' && t[len(t)-1] <= '9' {
				num, mult = t, m
				break
			}
		}
	}
	var v float64
	if _, err := fmt.Sscan(num, &v); err != nil || v < 0 {
		return 0, fmt.Errorf("%s %q: want a size such as 512m or 1g", flag, s)
	}
	return int64(v * float64(mult)), nil
}

func newCreateCommand(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "create [flags] IMAGE [COMMAND] [ARG...]",
		Short: "create a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.options(cmd, args)
			if err != nil {
				return err
			}
			e, done, err := g.Engine(os.Stderr)
			if err != nil {
				return err
			}
			defer done()
			c, err := e.Create(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Println(c.ID)
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newRunCommand(g *globals) *cobra.Command {
	var f runFlags
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND] [ARG...]",
		Short: "create and start a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.options(cmd, args)
			if err != nil {
				return err
			}
			if detach && o.AutoRemove && o.Restart != "" && o.Restart != "no" {
				return errors.New("--rm and --restart cannot be used together")
			}
			e, done, err := g.Engine(os.Stderr)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			if o.Spec.TTY && !detach {
				if rows, cols, ok := terminalSize(); ok {
					o.Spec.ConsoleSize = &specs.Box{Height: uint(rows), Width: uint(cols)}
				}
			}
			c, err := e.Create(ctx, o)
			if err != nil {
				return err
			}
			remove := func() {
				if o.AutoRemove {
					_ = e.Remove(context.WithoutCancel(ctx), c, true, true)
				}
			}
			// A container that cannot start is not left behind (docker
			// keeps it as "Created"; a failed run here leaves nothing).
			startFailed := func() { _ = e.Remove(context.WithoutCancel(ctx), c, true, true) }
			if detach {
				if _, err := e.Start(ctx, c); err != nil {
					startFailed()
					return err
				}
				fmt.Println(c.ID)
				return nil
			}
			detached, err := attachedRun(ctx, e, c, o.Spec.TTY, o.Spec.Interactive)
			if err != nil {
				if st := e.State(context.WithoutCancel(ctx), c); st.Status == engine.StatusCreated {
					startFailed()
					return err
				}
				// Started, then the stream broke: the exit code still counts.
				g.Log.Debug("attach", "err", err)
			}
			if detached {
				return nil
			}
			code, err := e.Wait(context.WithoutCancel(ctx), c)
			remove()
			if err != nil {
				return err
			}
			if code != 0 {
				if code < 0 {
					code = 125
				}
				return exitError(code)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run in the background and print the id")
	f.register(cmd.Flags())
	return cmd
}

// eachContainer runs fn for every named container, reporting each error
// and failing at the end if any failed.
func eachContainer(e *engine.Engine, refs []string, fn func(c *container.Container) error) error {
	failed := 0
	for _, r := range refs {
		c, err := e.Containers.Get(r)
		if err == nil {
			err = fn(c)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			failed++
			continue
		}
		fmt.Println(r)
	}
	if failed > 0 {
		return exitError(1)
	}
	return nil
}

func newStartCommand(g *globals) *cobra.Command {
	var attach bool
	cmd := &cobra.Command{
		Use:   "start [flags] CONTAINER...",
		Short: "start containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			if attach && len(args) == 1 {
				c, err := e.Containers.Get(args[0])
				if err != nil {
					return err
				}
				if _, err := e.Start(cmd.Context(), c); err != nil {
					return err
				}
				_ = monitor.Attach(cmd.Context(), filepath.Join(g.Runroot, "containers", c.ID, monitor.AttachSocket), nil, os.Stdout, os.Stderr, false)
				code, err := e.Wait(cmd.Context(), c)
				if err != nil {
					return err
				}
				if code != 0 {
					return exitError(max(code, 1))
				}
				return nil
			}
			return eachContainer(e, args, func(c *container.Container) error {
				_, err := e.Start(cmd.Context(), c)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach to the output and wait")
	return cmd
}

func newStopCommand(g *globals) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "stop [flags] CONTAINER...",
		Short: "stop containers (stop signal, then SIGKILL)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			return eachContainer(e, args, func(c *container.Container) error {
				t := timeout
				if !cmd.Flags().Changed("time") {
					if o, err := optionsOf(c); err == nil && o.StopTimeout > 0 {
						t = o.StopTimeout
					}
				}
				return e.Stop(cmd.Context(), c, time.Duration(t)*time.Second)
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before SIGKILL")
	return cmd
}

func optionsOf(c *container.Container) (*engine.RunOptions, error) {
	var o engine.RunOptions
	err := json.Unmarshal(c.Options, &o)
	return &o, err
}

func newRmCommand(g *globals) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:   "rm [flags] CONTAINER...",
		Short: "remove containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			return eachContainer(e, args, func(c *container.Container) error {
				return e.Remove(cmd.Context(), c, force, volumes)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill and remove running containers")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "also remove the container's anonymous volumes")
	return cmd
}

func newWaitCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER...",
		Short: "wait for containers to exit and print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			for _, a := range args {
				c, err := e.Containers.Get(a)
				if err != nil {
					return err
				}
				code, err := e.Wait(cmd.Context(), c)
				if err != nil {
					return err
				}
				fmt.Println(code)
			}
			return nil
		},
	}
}

// psRow is what `hull ps --format` templates see (Docker's names).
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Status, Names, Ports, State string
	Labels                                                                 map[string]string
}

func newPsCommand(g *globals) *cobra.Command {
	var all, quiet, noTrunc bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ps [flags]",
		Aliases: []string{"container ls"},
		Short:   "list containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			list, _, err := e.Containers.List()
			if err != nil {
				return err
			}
			var rows []psRow
			for _, c := range list {
				st := e.State(cmd.Context(), c)
				if !all && !st.Running {
					continue
				}
				row := psRow{ID: c.ID, Image: c.Image, Command: strings.Join(c.Command, " "), CreatedAt: c.Created.Format("2006-01-02 15:04:05 -0700 MST"),
					RunningFor: humanSince(c.Created), Names: c.Name, State: st.Status, Labels: c.Labels, Status: statusText(st)}
				if o, err := optionsOf(c); err == nil {
					var ps []string
					for _, p := range o.Ports {
						ip := p.HostIP
						if ip == "" {
							ip = "0.0.0.0"
						}
						ps = append(ps, fmt.Sprintf("%s:%d->%d/%s", ip, p.HostPort, p.ContainerPort, orTCP(p.Protocol)))
					}
					row.Ports = strings.Join(ps, ", ")
				}
				if !noTrunc {
					row.ID = row.ID[:12]
					if len(row.Command) > 20 {
						row.Command = row.Command[:19] + "…"
					}
				}
				if !matchFilters(row, filters) {
					continue
				}
				rows = append(rows, row)
			}
			if quiet {
				for _, r := range rows {
					fmt.Println(r.ID)
				}
				return nil
			}
			if format != "" && format != "table" {
				if format == "json" {
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(rows)
				}
				t, err := parseTemplate(format)
				if err != nil {
					return err
				}
				for _, r := range rows {
					if err := t.Execute(os.Stdout, r); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t%s\t%s\n", r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "all containers, not only running ones")
	f.BoolVarP(&quiet, "quiet", "q", false, "only ids")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate")
	f.StringVar(&format, "format", "", "Go template ({{.ID}} {{.Names}} {{.Status}} {{.State}} ...) or json")
	f.StringArrayVarP(&filters, "filter", "f", nil, "name=, id=, status=, label=K[=V], ancestor=")
	return cmd
}

func orTCP(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

func matchFilters(r psRow, filters []string) bool {
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "name":
			if !strings.Contains(r.Names, v) {
				return false
			}
		case "id":
			if !strings.HasPrefix(r.ID, v) {
				return false
			}
		case "status":
			if r.State != v {
				return false
			}
		case "ancestor":
			if r.Image != v {
				return false
			}
		case "label":
			lk, lv, hasV := strings.Cut(v, "=")
			got, ok := r.Labels[lk]
			if !ok || (hasV && got != lv) {
				return false
			}
		}
	}
	return true
}

func statusText(st engine.State) string {
	switch st.Status {
	case engine.StatusRunning, engine.StatusPaused:
		up := "Up"
		if !st.StartedAt.IsZero() {
			up += " " + humanDuration(time.Since(st.StartedAt))
		}
		if st.Status == engine.StatusPaused {
			up += " (Paused)"
		}
		return up
	case engine.StatusExited:
		if st.Exit != nil {
			code := st.Exit.ExitCode
			return fmt.Sprintf("Exited (%d) %s", code, humanSince(st.Exit.FinishedAt))
		}
		return "Exited"
	}
	return "Created"
}

func newLogsCommand(g *globals) *cobra.Command {
	var follow, timestamps bool
	var tail string
	var since string
	cmd := &cobra.Command{
		Use:   "logs [flags] CONTAINER",
		Short: "print a container's output",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			c, err := e.Containers.Get(args[0])
			if err != nil {
				return err
			}
			var sinceT time.Time
			if since != "" {
				if d, err := time.ParseDuration(since); err == nil {
					sinceT = time.Now().Add(-d)
				} else if t, err := time.Parse(time.RFC3339, since); err == nil {
					sinceT = t
				} else {
					return fmt.Errorf("--since %q: a duration (10m) or an RFC 3339 time", since)
				}
			}
			return e.Logs(cmd.Context(), c, engine.LogOptions{Follow: follow, Timestamps: timestamps, Tail: tail, Since: sinceT}, os.Stdout, os.Stderr)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow new output")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	f.StringVarP(&tail, "tail", "n", "all", "lines from the end")
	f.StringVar(&since, "since", "", "only since a time or duration")
	return cmd
}

// parseTemplate parses a --format Go template (Docker's "table " prefix
// accepted), one line per item.
func parseTemplate(format string) (*template.Template, error) {
	t, err := template.New("format").Funcs(template.FuncMap{"json": func(v any) string { b, _ := json.Marshal(v); return string(b) }}).Parse(strings.TrimPrefix(format, "table ") + "\n")
	if err != nil {
		return nil, fmt.Errorf("--format: %w", err)
	}
	return t, nil
}
