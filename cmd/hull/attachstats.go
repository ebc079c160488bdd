package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hull-runtime/hull/engine"
	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/monitor"
)

func newAttachCommand(g *globals) *cobra.Command {
	var noStdin bool
	cmd := &cobra.Command{
		Use:   "attach [flags] CONTAINER",
		Short: "attach to a running container's stdio",
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
			if st := e.State(cmd.Context(), c); !st.Running {
				return fmt.Errorf("container %s is not running", c.Name)
			}
			o, err := optionsOf(c)
			if err != nil {
				return err
			}
			// A nil interface, not a nil *os.File, when stdin stays out.
			var in io.Reader
			if !noStdin && o.Spec.Interactive {
				in = os.Stdin
			}
			sock := filepath.Join(g.Runroot, "containers", c.ID, monitor.AttachSocket)
			if err := monitor.Attach(cmd.Context(), sock, in, os.Stdout, os.Stderr, o.Spec.TTY); err != nil {
				return err
			}
			code, err := e.Wait(context.WithoutCancel(cmd.Context()), c)
			if err == nil && code > 0 {
				return exitError(code)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach stdin")
	return cmd
}

func newStatsCommand(g *globals) *cobra.Command {
	var noStream bool
	cmd := &cobra.Command{
		Use:   "stats [flags] [CONTAINER...]",
		Short: "show containers' resource usage",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			var cs []*container.Container
			if len(args) == 0 {
				list, _, err := e.Containers.List()
				if err != nil {
					return err
				}
				for _, c := range list {
					if e.State(cmd.Context(), c).Running {
						cs = append(cs, c)
					}
				}
			} else {
				for _, a := range args {
					c, err := e.Containers.Get(a)
					if err != nil {
						return err
					}
					cs = append(cs, c)
				}
			}
			for {
				if err := printStats(cmd.Context(), g, e, cs); err != nil {
					return err
				}
				if noStream || cmd.Context().Err() != nil {
					return nil
				}
			}
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print once and exit")
	return cmd
}

// printStats reads each container twice, half a second apart, for its CPU %.
func printStats(ctx context.Context, g *globals, e *engine.Engine, cs []*container.Container) error {
	first := map[string]engine.Stats{}
	for _, c := range cs {
		if s, err := e.Stats(ctx, c); err == nil {
			first[c.ID] = s
		}
	}
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(500 * time.Millisecond):
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tPIDS")
	for _, c := range cs {
		s, err := e.Stats(ctx, c)
		if err != nil {
			fmt.Fprintf(tw, "%s\t%s\t--\t-- / --\t--\t--\n", c.ID[:12], c.Name)
			continue
		}
		cpu := 0.0
		if f, ok := first[c.ID]; ok && s.At.After(f.At) && s.CPU >= f.CPU {
			cpu = float64(s.CPU-f.CPU) / float64(s.At.Sub(f.At).Nanoseconds()) * 100
		}
		memPct := 0.0
		if s.MemoryLimit > 0 && s.MemoryLimit < 1<<62 {
			memPct = float64(s.Memory) / float64(s.MemoryLimit) * 100
		}
		lim := "unlimited"
		if s.MemoryLimit > 0 && s.MemoryLimit < 1<<62 {
			lim = humanSize(int64(s.MemoryLimit))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%d\n", c.ID[:12], c.Name, cpu, humanSize(int64(s.Memory)), lim, memPct, s.Pids)
	}
	return tw.Flush()
}
