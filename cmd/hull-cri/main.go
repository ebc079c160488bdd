// Command hull-cri is `hull serve`: hull's Kubernetes CRI server. It is a
// binary of its own so that the CRI's dependencies (gRPC, the CRI types,
// Kubernetes' streaming server) add nothing to the start-up of every other
// hull command; `hull serve ARGS` executes `hull-cri ARGS` with the same
// global flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hull-runtime/hull/cmd/internal/globals"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals.Globals{Version: version}
	root := &cobra.Command{
		Use:           "hull",
		Short:         "hull's Kubernetes CRI server (run as `hull serve`)",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if os.Geteuid() != 0 {
				return fmt.Errorf("hull serve runs pods as root: run it as root")
			}
			return g.Setup()
		},
	}
	g.Register(root)
	root.AddCommand(newServeCommand(g))
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(125)
	}
}
