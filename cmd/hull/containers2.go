package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/hull-runtime/hull/engine"
	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/monitor"
	"github.com/hull-runtime/hull/engine/oci"
	"github.com/hull-runtime/hull/engine/specgen"
)

func newKillCommand(g *globals) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [flags] CONTAINER...",
		Short: "send a signal to containers (default SIGKILL)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := specgen.ParseSignal(signal)
			if err != nil {
				return fmt.Errorf("--signal %q: %w", signal, err)
			}
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			return eachContainer(e, args, func(c *container.Container) error {
				st := e.State(cmd.Context(), c)
				if !st.Running {
					return fmt.Errorf("container %s is not running", c.Name)
				}
				// A killed container is stopped by the user: no restart.
				if err := monitor.RequestStop(filepath.Join(g.Runroot, "containers", c.ID)); err != nil {
					return err
				}
				rt, err := oci.New(c.Runtime, filepath.Join(g.Runroot, "runtime"), false)
				if err != nil {
					return err
				}
				return rt.Kill(cmd.Context(), c.ID, sig, false)
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal name or number")
	return cmd
}

func newRestartCommand(g *globals) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [flags] CONTAINER...",
		Short: "stop and start containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			return eachContainer(e, args, func(c *container.Container) error {
				if err := e.Stop(cmd.Context(), c, time.Duration(timeout)*time.Second); err != nil {
					return err
				}
				_, err := e.Start(cmd.Context(), c)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before SIGKILL")
	return cmd
}

func newPauseCommand(g *globals, pause bool) *cobra.Command {
	use, short := "pause CONTAINER...", "freeze every process of containers"
	if !pause {
		use, short = "unpause CONTAINER...", "thaw paused containers"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			return eachContainer(e, args, func(c *container.Container) error {
				rt, err := oci.New(c.Runtime, filepath.Join(g.Runroot, "runtime"), false)
				if err != nil {
					return err
				}
				if pause {
					return rt.Pause(cmd.Context(), c.ID)
				}
				return rt.Resume(cmd.Context(), c.ID)
			})
		},
	}
}

func newRenameCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "rename a container",
		Args:  cobra.ExactArgs(2),
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
			return e.Containers.Rename(c, args[1])
		},
	}
}

func newExecCommand(g *globals) *cobra.Command {
	var interactive, tty, detach bool
	var env []string
	var user, workdir string
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER COMMAND [ARG...]",
		Short: "run a command in a running container",
		Args:  cobra.MinimumNArgs(2),
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
			if st := e.State(cmd.Context(), c); !st.Running {
				return fmt.Errorf("container %s is not running", c.Name)
			}
			base, rt, err := e.ExecBase(c)
			if err != nil {
				return err
			}
			p := *base
			p.Args = args[1:]
			p.Terminal = tty
			p.Env = append(p.Env, env...)
			if workdir != "" {
				p.Cwd = workdir
			}
			if user != "" {
				uid, gid, err := parseNumericUser(user)
				if err != nil {
					return err
				}
				p.User = specs.User{UID: uid, GID: gid}
			}
			if tty && !detach {
				code, err := execWithTerminal(cmd.Context(), rt, c.ID, &p, interactive)
				if err != nil {
					return err
				}
				if code != 0 {
					if code < 0 {
						code = 126
					}
					return exitError(code)
				}
				return nil
			}
			if tty {
				// A detached terminal process would lose its pty with us.
				p.Terminal = false
			}
			x, cleanup, err := rt.ExecCommand(cmd.Context(), c.ID, &p, oci.ExecOptions{Detach: detach})
			if err != nil {
				return err
			}
			defer cleanup()
			if interactive || tty {
				x.Stdin = os.Stdin
			}
			x.Stdout, x.Stderr = os.Stdout, os.Stderr
			if err := x.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return exitError(ee.ExitCode())
				}
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&interactive, "interactive", "i", false, "keep stdin open")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a terminal")
	f.BoolVarP(&detach, "detach", "d", false, "run in the background")
	f.StringArrayVarP(&env, "env", "e", nil, "environment variable K=V")
	f.StringVarP(&user, "user", "u", "", "uid[:gid]")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory")
	f.SetInterspersed(false)
	return cmd
}

func parseNumericUser(s string) (uint32, uint32, error) {
	us, gs, _ := strings.Cut(s, ":")
	u, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("--user %q: exec takes numeric uid[:gid]", s)
	}
	g := u
	if gs != "" {
		if g, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("--user %q: exec takes numeric uid[:gid]", s)
		}
	}
	return uint32(u), uint32(g), nil
}

// inspectData is `hull inspect`'s output, with Docker's field names.
type inspectData struct {
	ID           string            `json:"Id"`
	Name         string            `json:"Name"`
	Created      time.Time         `json:"Created"`
	Path         string            `json:"Path"`
	Args         []string          `json:"Args"`
	State        inspectState      `json:"State"`
	Image        string            `json:"Image"`
	ImageName    string            `json:"ImageName"`
	RestartCount int               `json:"RestartCount"`
	Driver       string            `json:"Driver"`
	Runtime      string            `json:"Runtime"`
	Labels       map[string]string `json:"Labels"`
	Mounts       []inspectMount    `json:"Mounts"`
	Ports        []string          `json:"Ports"`
	// NetworkSettings as Docker shows them (addresses while set up).
	NetworkSettings inspectNetworkSettings `json:"NetworkSettings"`
	Options         json.RawMessage        `json:"HullOptions"`
}

type inspectNetworkSettings struct {
	IPAddress  string                            `json:"IPAddress"`
	Gateway    string                            `json:"Gateway"`
	Ports      map[string][]inspectPortBinding   `json:"Ports"`
	Networks   map[string]inspectNetworkEndpoint `json:"Networks"`
	SandboxKey string                            `json:"SandboxKey"`
}

type inspectPortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type inspectNetworkEndpoint struct {
	NetworkID string   `json:"NetworkID"`
	IPAddress string   `json:"IPAddress"`
	Gateway   string   `json:"Gateway"`
	Aliases   []string `json:"Aliases"`
}

type inspectState struct {
	Status     string          `json:"Status"`
	Running    bool            `json:"Running"`
	Paused     bool            `json:"Paused"`
	Pid        int             `json:"Pid"`
	ExitCode   int             `json:"ExitCode"`
	OOMKilled  bool            `json:"OOMKilled"`
	Error      string          `json:"Error"`
	StartedAt  time.Time       `json:"StartedAt"`
	FinishedAt time.Time       `json:"FinishedAt"`
	Health     *monitor.Health `json:"Health,omitempty"`
}

type inspectMount struct {
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	RW          bool   `json:"RW"`
}

func newInspectCommand(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [flags] CONTAINER|IMAGE...",
		Short: "show containers (or images) as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			var out []any
			for _, a := range args {
				c, err := e.Containers.Get(a)
				if errors.Is(err, container.ErrNotFound) {
					img, ierr := e.Images.InspectImage(a)
					if ierr != nil {
						return fmt.Errorf("no such container or image: %s", a)
					}
					out = append(out, img)
					continue
				}
				if err != nil {
					return err
				}
				out = append(out, inspectContainer(g, e, cmd, c))
			}
			if format != "" {
				t, err := parseTemplate(format)
				if err != nil {
					return err
				}
				for _, o := range out {
					if err := t.Execute(os.Stdout, o); err != nil {
						return err
					}
				}
				return nil
			}
			return printJSON(out)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template, e.g. {{.State.Status}}")
	return cmd
}

func inspectContainer(g *globals, e *engine.Engine, cmd *cobra.Command, c *container.Container) inspectData {
	st := e.State(cmd.Context(), c)
	d := inspectData{ID: c.ID, Name: "/" + c.Name, Created: c.Created, Image: c.ImageID, ImageName: c.ImageRef,
		Driver: c.Snapshotter, Runtime: c.Runtime, Labels: c.Labels, Options: c.Options, RestartCount: st.Restarts}
	if len(c.Command) > 0 {
		d.Path, d.Args = c.Command[0], c.Command[1:]
	}
	d.State = inspectState{Status: st.Status, Running: st.Running, Paused: st.Status == engine.StatusPaused, Pid: st.Pid, StartedAt: st.StartedAt}
	if st.Exit != nil {
		d.State.ExitCode, d.State.OOMKilled, d.State.Error = st.Exit.ExitCode, st.Exit.OOMKilled, st.Exit.Error
		d.State.StartedAt, d.State.FinishedAt = st.Exit.StartedAt, st.Exit.FinishedAt
	}
	if h, err := monitor.ReadHealth(filepath.Join(g.Runroot, "containers", c.ID)); err == nil {
		d.State.Health = h
	}
	if o, err := optionsOf(c); err == nil {
		for _, m := range o.Spec.Mounts {
			d.Mounts = append(d.Mounts, inspectMount{Source: m.Source, Destination: m.Destination, RW: !m.ReadOnly})
		}
		ns := inspectNetworkSettings{Ports: map[string][]inspectPortBinding{}, Networks: map[string]inspectNetworkEndpoint{}}
		for _, p := range o.Ports {
			d.Ports = append(d.Ports, fmt.Sprintf("%d/%s -> %s:%d", p.ContainerPort, orTCP(p.Protocol), orAll(p.HostIP), p.HostPort))
			k := fmt.Sprintf("%d/%s", p.ContainerPort, orTCP(p.Protocol))
			ns.Ports[k] = append(ns.Ports[k], inspectPortBinding{HostIP: orAll(p.HostIP), HostPort: strconv.Itoa(int(p.HostPort))})
		}
		if o.Spec.NetNSPath != "" && o.Spec.NetNSPath != "host" {
			ns.SandboxKey = o.Spec.NetNSPath
		}
		// The address is the network's record of this container: there while
		// its network is set up (running, or exited and not yet restarted).
		for _, a := range o.Attachments {
			ep := inspectNetworkEndpoint{Aliases: a.Aliases}
			if n, err := e.Network.Inspect(a.Network); err == nil {
				ep.NetworkID, ep.Gateway = n.ID, n.Gateway
			}
			if entries, err := e.Network.HostsEntries(a.Network); err == nil {
				for _, he := range entries {
					if he.ContainerID == c.ID {
						ep.IPAddress = he.IP.String()
						break
					}
				}
			}
			if ns.IPAddress == "" && ep.IPAddress != "" {
				ns.IPAddress, ns.Gateway = ep.IPAddress, ep.Gateway
			}
			ns.Networks[a.Network] = ep
		}
		d.NetworkSettings = ns
	}
	return d
}

func orAll(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

func newPortCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PORT[/PROTO]]",
		Short: "list a container's published ports, or where one port is published",
		Args:  cobra.RangeArgs(1, 2),
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
			o, err := optionsOf(c)
			if err != nil {
				return err
			}
			if len(args) == 2 {
				// Docker's form: just the host addresses of that port.
				port, proto, _ := strings.Cut(args[1], "/")
				proto = orTCP(proto)
				found := false
				for _, p := range o.Ports {
					if strconv.Itoa(int(p.ContainerPort)) == port && orTCP(p.Protocol) == proto {
						fmt.Printf("%s:%d\n", orAll(p.HostIP), p.HostPort)
						found = true
					}
				}
				if !found {
					return fmt.Errorf("no public port '%s/%s' published for %s", port, proto, c.Name)
				}
				return nil
			}
			for _, p := range o.Ports {
				fmt.Printf("%d/%s -> %s:%d\n", p.ContainerPort, orTCP(p.Protocol), orAll(p.HostIP), p.HostPort)
			}
			return nil
		},
	}
}

func newTopCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER",
		Short: "list a container's processes",
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
			rt, err := oci.New(c.Runtime, filepath.Join(g.Runroot, "runtime"), false)
			if err != nil {
				return err
			}
			pids, err := rt.Ps(cmd.Context(), c.ID)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "PID\tCOMMAND")
			for _, pid := range pids {
				data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				fmt.Fprintf(tw, "%d\t%s\n", pid, strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " ")))
			}
			return tw.Flush()
		},
	}
}

func newContainerCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "manage containers"}
	var yes bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "remove every stopped container",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			list, broken, err := e.Containers.List()
			if err != nil {
				return err
			}
			for _, id := range broken {
				_ = e.Containers.RemoveBroken(id)
			}
			_ = e.Containers.PruneNames()
			for _, c := range list {
				if st := e.State(cmd.Context(), c); st.Running || st.Monitor != 0 {
					continue
				}
				if err := e.Remove(cmd.Context(), c, false, false); err != nil {
					fmt.Fprintln(os.Stderr, "Error:", err)
					continue
				}
				fmt.Println(c.ID)
			}
			return nil
		},
	}
	prune.Flags().BoolVarP(&yes, "force", "f", false, "do not ask")
	ls := newPsCommand(g)
	ls.Use, ls.Aliases = "ls [flags]", []string{"list", "ps"}
	cmd.AddCommand(prune, ls, newRunCommand(g), newCreateCommand(g), newStartCommand(g), newStopCommand(g),
		newRmCommand(g), newKillCommand(g), newInspectCommand(g), newLogsCommand(g), newExecCommand(g))
	return cmd
}
