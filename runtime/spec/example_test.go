package spec

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

func namespaceTypes(s *specs.Spec) []specs.LinuxNamespaceType {
	var out []specs.LinuxNamespaceType
	for _, ns := range s.Linux.Namespaces {
		out = append(out, ns.Type)
	}
	return out
}

func TestExampleMatchesRuncSpec(t *testing.T) {
	s := Example()
	if s.Version != specs.Version {
		t.Errorf("ociVersion = %q, want %q", s.Version, specs.Version)
	}
	if s.Root.Path != "rootfs" || !s.Root.Readonly {
		t.Errorf("root = %+v", s.Root)
	}
	p := s.Process
	if !p.Terminal || !slices.Equal(p.Args, []string{"sh"}) || p.Cwd != "/" || !p.NoNewPrivileges {
		t.Errorf("process = %+v", p)
	}
	wantCaps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	for name, set := range map[string][]string{
		"bounding": p.Capabilities.Bounding, "effective": p.Capabilities.Effective, "permitted": p.Capabilities.Permitted,
	} {
		if !slices.Equal(set, wantCaps) {
			t.Errorf("capabilities.%s = %q", name, set)
		}
	}
	if p.Capabilities.Ambient != nil || p.Capabilities.Inheritable != nil {
		t.Errorf("ambient/inheritable set: %+v", p.Capabilities)
	}
	wantNS := []specs.LinuxNamespaceType{"pid", "network", "ipc", "uts", "mount", "cgroup"}
	if got := namespaceTypes(s); !slices.Equal(got, wantNS) {
		t.Errorf("namespaces = %q, want %q", got, wantNS)
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	wantDests := []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}
	if !slices.Equal(dests, wantDests) {
		t.Errorf("mounts = %q, want %q", dests, wantDests)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || d[0].Allow || d[0].Access != "rwm" {
		t.Errorf("device cgroup rules = %+v, want deny all", d)
	}
}

func TestExampleRoundTripsThroughJSON(t *testing.T) {
	b, err := json.Marshal(Example())
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, Example()) {
		t.Error("Example() changed through a JSON round trip")
	}
}

func TestExampleReturnsIndependentValues(t *testing.T) {
	a := Example()
	a.Process.Capabilities.Bounding[0] = "CAP_SYS_ADMIN"
	a.Mounts[0].Destination = "/x"
	a.Linux.MaskedPaths[0] = "/x"
	b := Example()
	if b.Process.Capabilities.Bounding[0] != "CAP_AUDIT_WRITE" || b.Mounts[0].Destination != "/proc" || b.Linux.MaskedPaths[0] != "/proc/acpi" {
		t.Error("a change to one Example() shows in the next")
	}
	if b.Process.Capabilities.Effective[0] != "CAP_AUDIT_WRITE" {
		t.Error("capability sets share storage")
	}
}

func TestToRootlessMatchesRuncSpecRootless(t *testing.T) {
	s := Example()
	ToRootless(s)
	wantNS := []specs.LinuxNamespaceType{"pid", "ipc", "uts", "mount", "cgroup", "user"}
	if got := namespaceTypes(s); !slices.Equal(got, wantNS) {
		t.Errorf("namespaces = %q, want %q", got, wantNS)
	}
	wantUID := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}}
	wantGID := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getegid()), Size: 1}}
	if !reflect.DeepEqual(s.Linux.UIDMappings, wantUID) || !reflect.DeepEqual(s.Linux.GIDMappings, wantGID) {
		t.Errorf("mappings = %+v %+v", s.Linux.UIDMappings, s.Linux.GIDMappings)
	}
	if s.Linux.Resources != nil {
		t.Errorf("resources = %+v, want none", s.Linux.Resources)
	}
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/sys":
			want := specs.Mount{Destination: "/sys", Source: "/sys", Type: "none", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			if !reflect.DeepEqual(m, want) {
				t.Errorf("/sys mount = %+v, want %+v", m, want)
			}
		case "/dev/pts":
			want := []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
			if !slices.Equal(m.Options, want) {
				t.Errorf("/dev/pts options = %q, want %q (gid= removed)", m.Options, want)
			}
		}
	}
}

func TestToRootlessExamplePassesValidate(t *testing.T) {
	s := Example()
	ToRootless(s)
	if err := Validate(s, newBundle(t)); err != nil {
		t.Fatalf("Validate = %v", err)
	}
}

func TestToRootlessReplacesAnExistingUserNamespace(t *testing.T) {
	s := Example()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"})
	ToRootless(s)
	n := 0
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			n++
			if ns.Path != "" {
				t.Errorf("user namespace path %q kept", ns.Path)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d user namespaces, want 1", n)
	}
}

func TestToRootlessWithoutLinuxSection(t *testing.T) {
	s := &specs.Spec{}
	ToRootless(s)
	if s.Linux == nil || len(s.Linux.Namespaces) != 1 || s.Linux.Namespaces[0].Type != specs.UserNamespace {
		t.Errorf("linux = %+v", s.Linux)
	}
}

func TestFeaturesWithoutSeccomp(t *testing.T) {
	f := Features(FeatureOptions{Version: "0.1.0", Commit: "abc123"})
	if f.OCIVersionMin != "1.0.0" || f.OCIVersionMax != specs.Version {
		t.Errorf("versions %q..%q", f.OCIVersionMin, f.OCIVersionMax)
	}
	wantHooks := []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
	if !slices.Equal(f.Hooks, wantHooks) {
		t.Errorf("hooks = %q", f.Hooks)
	}
	if !slices.Equal(f.MountOptions, knownMountOptions()) || !slices.IsSorted(f.MountOptions) {
		t.Errorf("mountOptions = %q", f.MountOptions)
	}
	wantNS := []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}
	if !slices.Equal(f.Linux.Namespaces, wantNS) {
		t.Errorf("namespaces = %q", f.Linux.Namespaces)
	}
	if *f.Linux.Seccomp.Enabled {
		t.Error("seccomp reported enabled without SeccompFeatures")
	}
	for name, b := range map[string]*bool{
		"cgroup.v1": f.Linux.Cgroup.V1, "cgroup.v2": f.Linux.Cgroup.V2, "cgroup.systemd": f.Linux.Cgroup.Systemd,
		"idmap": f.Linux.MountExtensions.IDMap.Enabled,
	} {
		if b == nil || !*b {
			t.Errorf("%s not reported true", name)
		}
	}
	for name, b := range map[string]*bool{
		"apparmor": f.Linux.Apparmor.Enabled, "selinux": f.Linux.Selinux.Enabled, "intelRdt": f.Linux.IntelRdt.Enabled,
		"cgroup.systemdUser": f.Linux.Cgroup.SystemdUser, "cgroup.rdma": f.Linux.Cgroup.Rdma,
	} {
		if b == nil || *b {
			t.Errorf("%s not reported false", name)
		}
	}
	wantAnn := map[string]string{
		AnnotationVersion: "0.1.0", AnnotationCommit: "abc123", AnnotationCheckpointEnabled: "false",
	}
	if !reflect.DeepEqual(f.Annotations, wantAnn) {
		t.Errorf("annotations = %v", f.Annotations)
	}
	if len(f.PotentiallyUnsafeConfigAnnotations) != 0 {
		t.Errorf("potentiallyUnsafeConfigAnnotations = %q", f.PotentiallyUnsafeConfigAnnotations)
	}
}

func TestFeaturesListsEveryCapabilityInNumberOrder(t *testing.T) {
	caps := Features(FeatureOptions{}).Linux.Capabilities
	if len(caps) != len(capabilities) {
		t.Fatalf("%d capabilities, want %d", len(caps), len(capabilities))
	}
	for i, name := range caps {
		if name == "" || capabilities[name] != i {
			t.Errorf("capabilities[%d] = %q", i, name)
		}
	}
	if caps[0] != "CAP_CHOWN" || caps[len(caps)-1] != "CAP_CHECKPOINT_RESTORE" {
		t.Errorf("first %q last %q", caps[0], caps[len(caps)-1])
	}
}

func TestFeaturesReportsTheSeccompSupportGiven(t *testing.T) {
	f := Features(FeatureOptions{Seccomp: &SeccompFeatures{
		LibseccompVersion: "2.5.5",
		Actions:           []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"},
		SupportedFlags:    []string{"SECCOMP_FILTER_FLAG_LOG"},
	}})
	sc := f.Linux.Seccomp
	if sc.Enabled == nil || !*sc.Enabled {
		t.Fatal("seccomp not enabled")
	}
	if !slices.Equal(sc.Actions, []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"}) {
		t.Errorf("actions = %q", sc.Actions)
	}
	if !slices.Equal(sc.Operators, stringsOf(seccompOperators)) || !slices.Contains(sc.Archs, "SCMP_ARCH_X86_64") {
		t.Errorf("operators %q archs %q: want the runtime-spec lists by default", sc.Operators, sc.Archs)
	}
	if !slices.Equal(sc.KnownFlags, []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}) {
		t.Errorf("knownFlags = %q", sc.KnownFlags)
	}
	if !slices.Equal(sc.SupportedFlags, []string{"SECCOMP_FILTER_FLAG_LOG"}) {
		t.Errorf("supportedFlags = %q", sc.SupportedFlags)
	}
	if f.Annotations[AnnotationLibseccompVersion] != "2.5.5" {
		t.Errorf("annotations = %v", f.Annotations)
	}
}

func TestFeaturesUnknownSupportedFlagsStayUnknown(t *testing.T) {
	sc := Features(FeatureOptions{Seccomp: &SeccompFeatures{}}).Linux.Seccomp
	if sc.SupportedFlags != nil {
		t.Errorf("supportedFlags = %q, want nil (unknown)", sc.SupportedFlags)
	}
	sc = Features(FeatureOptions{Seccomp: &SeccompFeatures{SupportedFlags: []string{}}}).Linux.Seccomp
	if sc.SupportedFlags == nil {
		t.Error("an empty supportedFlags list became nil (unknown)")
	}
}

func TestFeaturesDoesNotShareTables(t *testing.T) {
	f := Features(FeatureOptions{Seccomp: &SeccompFeatures{}})
	f.Hooks[0] = "x"
	f.MountOptions[0] = "x"
	f.Linux.Seccomp.Actions[0] = "x"
	g := Features(FeatureOptions{Seccomp: &SeccompFeatures{}})
	if g.Hooks[0] == "x" || g.MountOptions[0] == "x" || g.Linux.Seccomp.Actions[0] == "x" {
		t.Error("a change to one Features() result shows in the next")
	}
}

func TestFeaturesMarshalsToTheFeaturesSchema(t *testing.T) {
	b, err := json.Marshal(Features(FeatureOptions{Seccomp: &SeccompFeatures{}}))
	if err != nil {
		t.Fatal(err)
	}
	var back features.Features
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("features JSON lacks %q", k)
		}
	}
}
