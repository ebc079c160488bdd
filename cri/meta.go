package cri

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hull-runtime/hull/engine/container"
)

// A pod sandbox is an engine container running the sandbox (pause) image;
// a pod's container is an engine container that joins its namespaces. What
// the CRI knows of them beyond the engine's record is kept in labels of
// that record under labelPrefix, so the engine's directory per container
// stays the one source of truth (and `hull ps` shows the pods).
const (
	labelPrefix      = "io.hull.cri."
	labelKind        = labelPrefix + "kind" // kindSandbox or kindContainer
	labelSandboxID   = labelPrefix + "sandbox-id"
	labelMetadata    = labelPrefix + "metadata"    // JSON of the CRI metadata
	labelLabels      = labelPrefix + "labels"      // JSON of the CRI labels
	labelAnnotations = labelPrefix + "annotations" // JSON of the CRI annotations
	labelImage       = labelPrefix + "image"       // the image as the kubelet named it
	labelLogPath     = labelPrefix + "log-path"
	labelHandler     = labelPrefix + "runtime-handler"
	labelHostNetwork = labelPrefix + "host-network"
	labelConfig      = labelPrefix + "config" // JSON of the sandbox's Linux options the containers need

	kindSandbox   = "sandbox"
	kindContainer = "container"
)

// sandboxLinux is what a pod's containers take from its sandbox config.
type sandboxLinux struct {
	CgroupParent string `json:"cgroupParent,omitempty"`
	Hostname     string `json:"hostname,omitempty"`
	LogDirectory string `json:"logDirectory,omitempty"`
	// Namespace modes of the pod (runtimeapi.NamespaceMode values).
	Network, PID, IPC int32
}

// criLabels returns the engine labels that record the CRI's view.
func criLabels(kind string, metadata any, labels, annotations map[string]string, extra map[string]string) (map[string]string, error) {
	out := map[string]string{labelKind: kind}
	for k, v := range map[string]any{labelMetadata: metadata, labelLabels: labels, labelAnnotations: annotations} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		out[k] = string(b)
	}
	maps.Copy(out, extra)
	return out, nil
}

// decoded reads one JSON label into v; a missing or broken label leaves v.
func decoded(c *container.Container, key string, v any) {
	if s := c.Labels[key]; s != "" {
		_ = json.Unmarshal([]byte(s), v)
	}
}

func stringMap(c *container.Container, key string) map[string]string {
	m := map[string]string{}
	decoded(c, key, &m)
	return m
}

// sandboxName and containerName are the engine names, unique per pod
// attempt as the CRI requires (the kubelet's dockershim used the same).
func sandboxName(m *runtimeapi.PodSandboxMetadata) string {
	return engineName(fmt.Sprintf("k8s_POD_%s_%s_%s_%d", m.Name, m.Namespace, m.Uid, m.Attempt))
}

func containerName(m *runtimeapi.ContainerMetadata, pod *runtimeapi.PodSandboxMetadata) string {
	return engineName(fmt.Sprintf("k8s_%s_%s_%s_%s_%d", m.Name, pod.Name, pod.Namespace, pod.Uid, m.Attempt))
}

// maxNameLen keeps engine names well inside the engine's limit (253).
const maxNameLen = 200

// engineName keeps a name the engine accepts, and unique: one too long, or
// with characters the engine refuses, becomes a readable prefix of it and
// a hash of the whole.
func engineName(n string) string {
	if len(n) <= maxNameLen && container.ValidateName(n) == nil {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	prefix := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, n)
	return prefix[:min(len(prefix), 100)] + "_" + hex.EncodeToString(sum[:8])
}

// lookup finds the engine container of a CRI id of kind: the full id or a
// unique prefix, as crictl passes (the engine store's own lookup). A missing
// one, or one of the other kind, is codes.NotFound.
func (s *Server) lookup(id, kind string) (*container.Container, error) {
	if id == "" {
		return nil, status.Errorf(codes.InvalidArgument, "no %s id given", kind)
	}
	c, err := s.opts.Engine.Containers.Get(id)
	switch {
	case errors.Is(err, container.ErrAmbiguous):
		return nil, status.Errorf(codes.InvalidArgument, "%s id %q: %v", kind, id, err)
	case errors.Is(err, container.ErrNotFound) || err == nil && c.Labels[labelKind] != kind:
		return nil, status.Errorf(codes.NotFound, "%s %q not found", kind, id)
	case err != nil:
		return nil, err
	}
	return c, nil
}

// list returns the engine containers of kind.
func (s *Server) list(kind string) ([]*container.Container, error) {
	all, _, err := s.opts.Engine.Containers.List()
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, c := range all {
		if c.Labels[labelKind] == kind {
			out = append(out, c)
		}
	}
	return out, nil
}

// matchLabels reports whether labels has every pair of selector.
func matchLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
