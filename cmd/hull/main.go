// Command hull is the daemonless container engine: images from registries,
// a content-addressed store and overlay snapshots (this file's commands),
// containers run by an OCI runtime.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hull-runtime/hull/engine/rootless"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// exitError carries a process exit status out of a command.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{Version: version}
	root := newRootCommand(g)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(int(ee))
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	os.Exit(125)
}

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "hull",
		Short:         "a daemonless container engine",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := g.Setup(); err != nil {
				return err
			}
			// An unprivileged user's hull works inside the user's own user
			// and mount namespaces (engine/rootless): this re-executes the
			// command there, with the storage paths resolved out here.
			return rootless.Enter(g.Runroot, append([]string{"--root", g.Root, "--runroot", g.Runroot}, os.Args[1:]...))
		},
	}
	g.Register(root)
	root.AddCommand(
		newPullCommand(g), newPushCommand(g), newImagesCommand(g), newImageCommand(g),
		newTagCommand(g), newRmiCommand(g), newSaveCommand(g), newLoadCommand(g), newImportCommand(g),
		newLoginCommand(g), newLogoutCommand(g), newSystemCommand(g),
		newRunCommand(g), newCreateCommand(g), newStartCommand(g), newStopCommand(g), newRmCommand(g),
		newWaitCommand(g), newPsCommand(g), newLogsCommand(g), newVolumeCommand(g), newNetworkCommand(g),
		newKillCommand(g), newRestartCommand(g), newPauseCommand(g, true), newPauseCommand(g, false), newRenameCommand(g),
		newExecCommand(g), newInspectCommand(g), newPortCommand(g), newTopCommand(g), newContainerCommand(g),
		newAttachCommand(g), newStatsCommand(g), newCpCommand(g), newServeCommand(g),
	)
	return root
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
