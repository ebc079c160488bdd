package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runtimeName is what Version reports as the runtime's name.
const runtimeName = "hull"

// apiVersion is the CRI version served.
const apiVersion = "v1"

// Version reports hull's name and version and the CRI version.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       runtimeName,
		RuntimeVersion:    s.opts.Version,
		RuntimeApiVersion: apiVersion,
	}, nil
}

// Status reports whether the runtime and the pod network are ready. The
// network is ready when the CNI bridge plugin hull configures is installed.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	runtimeReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	network := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: s.cniInstalled()}
	if !network.Status {
		network.Reason = "NetworkPluginNotReady"
		network.Message = fmt.Sprintf("no CNI bridge plugin in %s: install containernetworking-plugins", strings.Join(s.opts.CNIPluginDirs, ", "))
	}
	resp := &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeReady, network}}}
	// Every runtime hull drives does recursive read-only mounts (runc and
	// crun with mount_setattr, as hull-runtime).
	features := &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true}
	resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: "", Features: features})
	for name := range s.opts.RuntimeHandlers {
		resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: name, Features: features})
	}
	if req.Verbose {
		cfg, err := json.Marshal(map[string]any{"imageRoot": s.opts.Images.Root, "cniPluginDirs": s.opts.CNIPluginDirs, "pinnedImages": s.opts.PinnedImages})
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"config": string(cfg)}
	}
	return resp, nil
}

func (s *Server) cniInstalled() bool {
	for _, d := range s.opts.CNIPluginDirs {
		if fi, err := os.Stat(filepath.Join(d, "bridge")); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// UpdateRuntimeConfig takes the pod CIDR the kubelet sends. hull's pod
// network allocates from its own configured subnet, so there is nothing to
// change; the call succeeds, as containerd's does without a CNI template.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	if cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr(); cidr != "" {
		s.log.Info("cri: pod CIDR from the kubelet (hull's network keeps its own subnet)", "podCIDR", cidr)
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// RuntimeConfig tells the kubelet which cgroup driver to use: hull writes
// cgroupfs paths.
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS}}, nil
}
