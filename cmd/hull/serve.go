package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hull-runtime/hull/cri"
	"github.com/hull-runtime/hull/engine/network"
)

func newServeCommand(g *globals) *cobra.Command {
	var listen string
	var pinned []string
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "serve the Kubernetes CRI (v1) on a unix socket, for a kubelet",
		Long: "serve runs hull's CRI server (RuntimeService and ImageService) until SIGINT or SIGTERM.\n" +
			"Point the kubelet or crictl at it: --container-runtime-endpoint unix://SOCKET.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listen == "" {
				listen = filepath.Join(g.runroot, "cri.sock")
			}
			imgs, err := g.images(nil)
			if err != nil {
				return err
			}
			defer imgs.Close()
			srv, err := cri.New(cri.Options{
				Images: imgs, Version: version, PinnedImages: pinned,
				CNIPluginDirs: network.DefaultPluginDirs(), Log: g.log,
			})
			if err != nil {
				return err
			}
			l, err := cri.Listen(listen)
			if err != nil {
				return err
			}
			defer os.Remove(listen)
			return srv.Serve(cmd.Context(), l)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "unix socket to serve on (default RUNROOT/cri.sock)")
	cmd.Flags().StringSliceVar(&pinned, "pinned-image", nil, "image the kubelet must never garbage-collect (the sandbox image); repeatable")
	return cmd
}
