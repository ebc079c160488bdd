// Package engine is hull's daemonless container engine: each command opens
// the engine, does its work and exits; a hull-monitor process per container
// keeps its stdio, logs and exit status. It ties the image service, the
// container records, volumes, CNI networking, the runtime-spec generator and
// the monitor together.
//
// Layout:
//
//	--root/containers/<id>/      record, bundle/config.json, hosts, resolv.conf, hostname, ctr.log
//	--runroot/containers/<id>/   per boot: rootfs mount, monitor state (exit.json, attach.sock, ...)
//	--runroot/runtime/           the OCI runtime's --root
package engine

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hull-runtime/hull/engine/container"
	"github.com/hull-runtime/hull/engine/network"
	"github.com/hull-runtime/hull/engine/volume"
	"github.com/hull-runtime/hull/image"
)

// Engine is one engine root.
type Engine struct {
	Root, Runroot string
	Images        *image.Service
	Containers    *container.Store
	Volumes       *volume.Store
	Network       *network.Manager
	// MonitorBin is the hull-monitor binary.
	MonitorBin string
	Log        *slog.Logger
}

// New opens the engine under root and runroot around an image service.
func New(root, runroot string, images *image.Service, monitorBin string, log *slog.Logger) (*Engine, error) {
	cs, err := container.Open(root)
	if err != nil {
		return nil, err
	}
	vs, err := volume.Open(root)
	if err != nil {
		return nil, err
	}
	nm, err := network.New(network.Config{
		ConfDir:  filepath.Join(root, "networks"),
		CacheDir: filepath.Join(runroot, "cni-cache"),
		NetnsDir: filepath.Join(runroot, "netns"),
		StateDir: filepath.Join(runroot, "network"),
	})
	if err != nil {
		return nil, err
	}
	if monitorBin == "" {
		monitorBin, err = findMonitor()
		if err != nil {
			return nil, err
		}
	}
	return &Engine{Root: root, Runroot: runroot, Images: images, Containers: cs, Volumes: vs, Network: nm, MonitorBin: monitorBin, Log: log}, nil
}

// findMonitor looks for hull-monitor beside the running binary, then in PATH.
func findMonitor() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "hull-monitor")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(d, "hull-monitor")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("hull-monitor not found beside hull or in PATH (make install puts it there)")
}

// stateDir is a container's per-boot directory (the monitor's state).
func (e *Engine) stateDir(id string) string { return filepath.Join(e.Runroot, "containers", id) }

// rootfsDir is where a container's root filesystem is mounted.
func (e *Engine) rootfsDir(id string) string { return filepath.Join(e.stateDir(id), "rootfs") }

// runtimeRoot is the OCI runtime's --root.
func (e *Engine) runtimeRoot() string { return filepath.Join(e.Runroot, "runtime") }
