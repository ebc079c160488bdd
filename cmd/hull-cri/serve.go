package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hull-runtime/hull/cmd/internal/globals"
	"github.com/hull-runtime/hull/cri"
	"github.com/hull-runtime/hull/engine/network"
)

func newServeCommand(g *globals.Globals) *cobra.Command {
	var listen, sandboxImage, runtime, netName, cgroupParent, streamAddr string
	var pinned, handlers []string
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "serve the Kubernetes CRI (v1) on a unix socket, for a kubelet",
		Long: "serve runs hull's CRI server (RuntimeService and ImageService) until SIGINT or SIGTERM.\n" +
			"Point the kubelet or crictl at it: --container-runtime-endpoint unix://SOCKET.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listen == "" {
				listen = filepath.Join(g.Runroot, "cri.sock")
			}
			hmap := map[string]string{}
			for _, h := range handlers {
				name, rt, ok := strings.Cut(h, "=")
				if !ok || name == "" || rt == "" {
					return fmt.Errorf("--runtime-handler %q: use NAME=RUNTIME (hull-runtime, runc, crun or a path)", h)
				}
				hmap[name] = rt
			}
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			srv, err := cri.New(cri.Options{
				Images: e.Images, Engine: e, Version: g.Version, PinnedImages: append(pinned, sandboxImage),
				SandboxImage: sandboxImage, DefaultRuntime: runtime, RuntimeHandlers: hmap,
				Network: netName, CgroupParent: cgroupParent, StreamAddress: streamAddr,
				CNIPluginDirs: network.DefaultPluginDirs(), Log: g.Log,
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
	f := cmd.Flags()
	f.StringSliceVar(&pinned, "pinned-image", nil, "image the kubelet must never garbage-collect (the sandbox image is); repeatable")
	f.StringVar(&sandboxImage, "sandbox-image", "registry.k8s.io/pause:3.10", "image of every pod's sandbox (pause) process")
	f.StringVar(&runtime, "runtime", "hull-runtime", "OCI runtime of pods without a runtime handler: hull-runtime, runc, crun or a path")
	f.StringArrayVar(&handlers, "runtime-handler", nil, "NAME=RUNTIME: the runtime of a RuntimeClass handler; repeatable")
	f.StringVar(&netName, "network", "", "hull network pods join (default: the default network)")
	f.StringVar(&cgroupParent, "cgroup-parent", "/hull-pods", "cgroup of pods whose config names none")
	f.StringVar(&streamAddr, "stream-address", "127.0.0.1:0", "host:port of the exec/attach/port-forward server the kubelet proxies to (port 0: any free one)")
	return cmd
}
