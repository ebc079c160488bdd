package spec

import (
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Annotation keys in the features document. hull's own use its reverse-DNS
// prefix "io.github.hull-runtime."; the libseccomp version uses the key runc
// and crun use, so tools that read it find it.
const (
	// AnnotationVersion is hull-runtime's version.
	AnnotationVersion = "io.github.hull-runtime.version"
	// AnnotationCommit is the commit hull-runtime was built from.
	AnnotationCommit = "io.github.hull-runtime.commit"
	// AnnotationCheckpointEnabled says whether checkpoint/restore is
	// supported ("false": hull-runtime has no checkpoint verb).
	AnnotationCheckpointEnabled = "io.github.hull-runtime.checkpoint.enabled"
	// AnnotationLibseccompVersion is the libseccomp version in use.
	AnnotationLibseccompVersion = "io.github.seccomp.libseccomp.version"
)

// FeatureOptions is what only the caller knows about the binary it is
// describing; Features reports these as given.
type FeatureOptions struct {
	// Version and Commit are reported as annotations when not empty.
	Version, Commit string
	// Seccomp describes the seccomp support built in; nil reports seccomp
	// as not enabled.
	Seccomp *SeccompFeatures
	// SystemdUser and Rdma report whether user-scoped systemd cgroups and
	// the rdma controller are supported.
	SystemdUser, Rdma bool
}

// SeccompFeatures describes the seccomp support built into the binary.
type SeccompFeatures struct {
	// LibseccompVersion is reported as an annotation when not empty,
	// e.g. "2.5.5".
	LibseccompVersion string
	// Actions, Operators and Archs are the names the seccomp code accepts;
	// nil means every name the runtime-spec defines.
	Actions, Operators, Archs []string
	// KnownFlags are the filter flags the seccomp code recognises; nil
	// means every flag the runtime-spec defines.
	KnownFlags []string
	// SupportedFlags are the flags this kernel and libseccomp can apply;
	// nil reports "unknown".
	SupportedFlags []string
}

// Features returns the document `hull-runtime features` prints: the config
// versions, hooks, mount options, namespaces and capabilities Validate and
// the runtime accept, the cgroup drivers, seccomp as described by opts,
// id-mapped mounts, and no AppArmor, SELinux or Intel RDT.
func Features(opts FeatureOptions) *features.Features {
	yes, no := true, false
	systemdUser, rdma := opts.SystemdUser, opts.Rdma
	f := &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         append([]string(nil), hookNames...),
		MountOptions:  knownMountOptions(),
		Linux: &features.Linux{
			Namespaces:   knownNamespaces(),
			Capabilities: knownCapabilities(),
			Cgroup: &features.Cgroup{
				V1:          &yes,
				V2:          &yes,
				Systemd:     &yes,
				SystemdUser: &systemdUser,
				Rdma:        &rdma,
			},
			Seccomp:  &features.Seccomp{Enabled: &no},
			Apparmor: &features.Apparmor{Enabled: &no},
			Selinux:  &features.Selinux{Enabled: &no},
			IntelRdt: &features.IntelRdt{Enabled: &no},
			MountExtensions: &features.MountExtensions{
				IDMap: &features.IDMap{Enabled: &yes},
			},
		},
		Annotations: map[string]string{
			AnnotationCheckpointEnabled: "false",
		},
		// hull-runtime reads no annotation from config.json that changes
		// what it does.
		PotentiallyUnsafeConfigAnnotations: []string{},
	}
	if opts.Version != "" {
		f.Annotations[AnnotationVersion] = opts.Version
	}
	if opts.Commit != "" {
		f.Annotations[AnnotationCommit] = opts.Commit
	}
	if sc := opts.Seccomp; sc != nil {
		f.Linux.Seccomp = &features.Seccomp{
			Enabled:        &yes,
			Actions:        orDefault(sc.Actions, stringsOf(seccompActions)),
			Operators:      orDefault(sc.Operators, stringsOf(seccompOperators)),
			Archs:          orDefault(sc.Archs, stringsOf(seccompArchs)),
			KnownFlags:     orDefault(sc.KnownFlags, stringsOf(seccompFlags)),
			SupportedFlags: append([]string(nil), sc.SupportedFlags...),
		}
		if sc.SupportedFlags != nil && f.Linux.Seccomp.SupportedFlags == nil {
			f.Linux.Seccomp.SupportedFlags = []string{}
		}
		if sc.LibseccompVersion != "" {
			f.Annotations[AnnotationLibseccompVersion] = sc.LibseccompVersion
		}
	}
	return f
}

// orDefault returns a copy of list, or def when list is nil.
func orDefault(list, def []string) []string {
	if list == nil {
		return def
	}
	return append([]string{}, list...)
}

// knownNamespaces returns the namespace types the runtime accepts, sorted.
func knownNamespaces() []string {
	out := make([]string, 0, len(namespaceCloneFlags))
	for t := range namespaceCloneFlags {
		out = append(out, string(t))
	}
	slices.Sort(out)
	return out
}

// knownCapabilities returns every capability name the runtime knows, in
// capability number order.
func knownCapabilities() []string {
	out := make([]string, len(capabilities))
	for name, n := range capabilities {
		out[n] = name
	}
	return out
}
