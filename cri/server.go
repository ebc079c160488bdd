// Package cri serves the Kubernetes Container Runtime Interface (CRI v1)
// over gRPC on a unix socket, so a kubelet can use hull as its container
// runtime. The services sit on the same stores as the hull CLI (image/,
// engine/), which opens them per operation: `hull serve` and the CLI can
// work on one --root at the same time.
package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/hull-runtime/hull/engine"
	"github.com/hull-runtime/hull/image"
)

// Options configure a Server.
type Options struct {
	// Images is the image store the ImageService works on.
	Images *image.Service
	// Engine runs the pods' sandboxes and containers (over Images).
	Engine *engine.Engine
	// SandboxImage is the image of every pod's sandbox process (pause).
	SandboxImage string
	// DefaultRuntime runs pods without a runtime handler; RuntimeHandlers
	// maps the handlers of RuntimeClasses to runtimes (hull-runtime, runc,
	// crun or a path).
	DefaultRuntime  string
	RuntimeHandlers map[string]string
	// Network is the hull network pods join ("" for the default one).
	Network string
	// CgroupParent is the cgroup of pods whose config names none.
	CgroupParent string
	// StreamAddress is where the exec/attach/port-forward server listens
	// (host:port; port 0 picks a free one). Default 127.0.0.1:0: only the
	// node's kubelet, which proxies the streams, needs to reach it.
	StreamAddress string
	// Version is hull's version, reported by Version.
	Version string
	// PinnedImages are never garbage-collected by the kubelet (the
	// sandbox image); reported as Image.Pinned.
	PinnedImages []string
	// CNIPluginDirs are where the network plugins are; Status reports the
	// network not ready when the bridge plugin is in none of them.
	CNIPluginDirs []string
	Log           *slog.Logger
}

// Server implements the CRI RuntimeService and ImageService.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	opts   Options
	log    *slog.Logger
	fs     *fsUsageCache
	cpu    cpuSamples
	stream streaming.Server
	// streamListener is the streaming server's; Serve serves and closes it.
	streamListener net.Listener
}

// New returns a Server over o's stores.
func New(o Options) (*Server, error) {
	if o.Images == nil || o.Engine == nil {
		return nil, errors.New("cri: no image service or engine")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: o, log: log, fs: &fsUsageCache{root: filepath.Join(o.Images.Root, "snapshots")}}
	addr := o.StreamAddress
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// Listened on here, not by the streaming server's Start: the URLs it
	// hands out must carry the port in use from the first request on.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cri: streaming server on %s: %w", addr, err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String()
	stream, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("cri: streaming server: %w", err)
	}
	s.stream, s.streamListener = stream, l
	return s, nil
}

// Register adds the CRI services to g.
func (s *Server) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
}

// Listen opens the unix socket at path: 0600 in a directory only its owner
// may enter (made 0700 if it does not exist). A socket file left by a server
// that is gone is replaced; one that still answers is an error.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("socket directory %s: %w", dir, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket %s: a %s is in the way; remove it or choose another --listen", path, fi.Mode().Type())
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: another server is listening on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
		}
	}
	// The umask makes the socket 0600 from its creation: no window in
	// which another user could connect.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

// Serve runs the CRI services on l until ctx ends, then stops gracefully
// (in-flight calls get a few seconds) and removes the socket.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	g := grpc.NewServer()
	s.Register(g)
	streamSrv := &http.Server{Handler: s.stream, ReadHeaderTimeout: 30 * time.Second}
	streamErr := make(chan error, 1)
	go func() { streamErr <- streamSrv.Serve(s.streamListener) }()
	defer streamSrv.Close()
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(l) }()
	s.log.Info("cri: serving", "socket", l.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("cri: serve: %w", err)
	case err := <-streamErr:
		g.Stop()
		return fmt.Errorf("cri: streaming server on %s: %w", s.streamListener.Addr(), err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	<-errc
	return nil
}
