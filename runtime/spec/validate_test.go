package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// newBundle returns a bundle directory holding an empty rootfs directory.
func newBundle(t *testing.T) string {
	t.Helper()
	bundle := t.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return bundle
}

func ptr[T any](v T) *T { return &v }

// nsIndex returns the index of namespace t in s, or -1.
func nsIndex(s *specs.Spec, t specs.LinuxNamespaceType) int {
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return i
		}
	}
	return -1
}

func dropNS(s *specs.Spec, t specs.LinuxNamespaceType) {
	if i := nsIndex(s, t); i >= 0 {
		s.Linux.Namespaces = append(s.Linux.Namespaces[:i], s.Linux.Namespaces[i+1:]...)
	}
}

func setNSPath(s *specs.Spec, t specs.LinuxNamespaceType, path string) {
	if i := nsIndex(s, t); i >= 0 {
		s.Linux.Namespaces[i].Path = path
		return
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
}

func addUserNS(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
}

func requireNSFile(t *testing.T, name string) string {
	t.Helper()
	p := "/proc/self/ns/" + name
	if _, err := os.Stat(p); err != nil {
		t.Skipf("kernel has no %s namespace: %v", name, err)
	}
	return p
}

func TestExamplePassesValidate(t *testing.T) {
	if err := Validate(Example(), newBundle(t)); err != nil {
		t.Fatalf("Validate(Example()) = %v", err)
	}
}

func TestValidateRejectsNilSpec(t *testing.T) {
	if err := Validate(nil, t.TempDir()); err == nil {
		t.Fatal("Validate(nil) succeeded")
	}
}

// TestValidateRejects breaks one rule per case, starting from Example(), and
// checks that the error names the field.
func TestValidateRejects(t *testing.T) {
	regularFile := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(regularFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(t *testing.T, s *specs.Spec)
		field   string // the FieldError.Field expected among the problems
		message string // a substring of that problem's message
	}{
		{"missing ociVersion", func(_ *testing.T, s *specs.Spec) { s.Version = "" }, "ociVersion", "required"},
		{"ociVersion with major 2", func(_ *testing.T, s *specs.Spec) { s.Version = "2.0.0" }, "ociVersion", "major version 2"},
		{"ociVersion not semver", func(_ *testing.T, s *specs.Spec) { s.Version = "1.0" }, "ociVersion", "not a semantic version"},
		{"ociVersion with leading zero", func(_ *testing.T, s *specs.Spec) { s.Version = "01.0.0" }, "ociVersion", "not a semantic version"},
		{"missing root", func(_ *testing.T, s *specs.Spec) { s.Root = nil }, "root", "required"},
		{"empty root path", func(_ *testing.T, s *specs.Spec) { s.Root.Path = "" }, "root.path", "required"},
		{"root path that does not exist", func(_ *testing.T, s *specs.Spec) { s.Root.Path = "nope" }, "root.path", "no such file"},
		{"root path that is a file", func(_ *testing.T, s *specs.Spec) { s.Root.Path = regularFile }, "root.path", "not a directory"},
		{"empty args", func(_ *testing.T, s *specs.Spec) { s.Process.Args = nil }, "process.args", "required"},
		{"empty program name", func(_ *testing.T, s *specs.Spec) { s.Process.Args = []string{""} }, "process.args[0]", "empty"},
		{"missing cwd", func(_ *testing.T, s *specs.Spec) { s.Process.Cwd = "" }, "process.cwd", "required"},
		{"relative cwd", func(_ *testing.T, s *specs.Spec) { s.Process.Cwd = "home" }, "process.cwd", "not an absolute path"},
		{"env entry without equals", func(_ *testing.T, s *specs.Spec) { s.Process.Env = append(s.Process.Env, "FOO") }, "process.env[2]", `no "="`},
		{"env entry with empty name", func(_ *testing.T, s *specs.Spec) { s.Process.Env = append(s.Process.Env, "=x") }, "process.env[2]", "empty name"},
		{"umask above 0777", func(_ *testing.T, s *specs.Spec) { s.Process.User.Umask = ptr(uint32(0o1777)) }, "process.user.umask", "outside 0777"},
		{"unknown capability in bounding", func(_ *testing.T, s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_FOO")
		}, "process.capabilities.bounding", `unknown capability "CAP_FOO"`},
		{"unknown capability in ambient", func(_ *testing.T, s *specs.Spec) {
			s.Process.Capabilities.Ambient = []string{"NET_ADMIN"}
		}, "process.capabilities.ambient", `unknown capability "NET_ADMIN"`},
		{"unknown rlimit", func(_ *testing.T, s *specs.Spec) { s.Process.Rlimits[0].Type = "RLIMIT_FOO" }, "process.rlimits[0].type", `unknown rlimit "RLIMIT_FOO"`},
		{"rlimit soft above hard", func(_ *testing.T, s *specs.Spec) { s.Process.Rlimits[0].Soft = 2048 }, "process.rlimits[0]", "above hard limit"},
		{"duplicate rlimit", func(_ *testing.T, s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1})
		}, "process.rlimits[1].type", "duplicate rlimit"},
		{"oomScoreAdj above 1000", func(_ *testing.T, s *specs.Spec) { s.Process.OOMScoreAdj = ptr(1001) }, "process.oomScoreAdj", "outside [-1000, 1000]"},
		{"oomScoreAdj below -1000", func(_ *testing.T, s *specs.Spec) { s.Process.OOMScoreAdj = ptr(-1001) }, "process.oomScoreAdj", "outside"},
		{"scheduler without policy", func(_ *testing.T, s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{} }, "process.scheduler.policy", "required"},
		{"scheduler with unknown policy", func(_ *testing.T, s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: "SCHED_FAST"}
		}, "process.scheduler.policy", "unknown policy"},
		{"scheduler nice out of range", func(_ *testing.T, s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: 20}
		}, "process.scheduler.nice", "outside [-20, 19]"},
		{"scheduler priority with SCHED_OTHER", func(_ *testing.T, s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Priority: 5}
		}, "process.scheduler.priority", "SCHED_FIFO or SCHED_RR"},
		{"scheduler runtime without SCHED_DEADLINE", func(_ *testing.T, s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Runtime: 1}
		}, "process.scheduler", "SCHED_DEADLINE"},
		{"scheduler unknown flag", func(_ *testing.T, s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_X"}}
		}, "process.scheduler.flags[0]", "unknown flag"},
		{"ioPriority unknown class", func(_ *testing.T, s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: "IOPRIO_CLASS_X"}
		}, "process.ioPriority.class", "unknown class"},
		{"ioPriority above 7", func(_ *testing.T, s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 8}
		}, "process.ioPriority.priority", "outside [0, 7]"},

		{"unknown namespace type", func(_ *testing.T, s *specs.Spec) { s.Linux.Namespaces[2].Type = "foo" }, "linux.namespaces[2].type", `unknown namespace type "foo"`},
		{"duplicate namespace", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, "linux.namespaces[6].type", `duplicate namespace type "pid"`},
		{"relative namespace path", func(_ *testing.T, s *specs.Spec) { s.Linux.Namespaces[1].Path = "ns/net" }, "linux.namespaces[1].path", "not an absolute path"},
		{"namespace path that does not exist", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Namespaces[1].Path = "/proc/self/ns/does-not-exist"
		}, "linux.namespaces[1].path", "no such file"},
		{"namespace path that is a regular file", func(_ *testing.T, s *specs.Spec) { s.Linux.Namespaces[1].Path = regularFile }, "linux.namespaces[1].path", "not a namespace file"},
		{"namespace path of another type", func(t *testing.T, s *specs.Spec) {
			s.Linux.Namespaces[1].Path = requireNSFile(t, "pid")
		}, "linux.namespaces[1].path", "is a pid namespace, not a network namespace"},
		{"uidMappings without user namespace", func(_ *testing.T, s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{Size: 1}}
		}, "linux.uidMappings", "requires a user namespace"},
		{"gidMappings without user namespace", func(_ *testing.T, s *specs.Spec) {
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{Size: 1}}
		}, "linux.gidMappings", "requires a user namespace"},
		{"new user namespace without mappings", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, "linux.namespaces[6]", "needs linux.uidMappings"},
		{"new user namespace with only uidMappings", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Linux.GIDMappings = nil
		}, "linux.gidMappings", "required"},
		{"id mapping of size zero", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Linux.UIDMappings = append(s.Linux.UIDMappings, specs.LinuxIDMapping{ContainerID: 70000, HostID: 1})
		}, "linux.uidMappings[1].size", "must be positive"},
		{"overlapping container ranges", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Linux.UIDMappings = append(s.Linux.UIDMappings, specs.LinuxIDMapping{ContainerID: 100, HostID: 1, Size: 10})
		}, "linux.uidMappings[1]", "container range overlaps linux.uidMappings[0]"},
		{"overlapping host ranges", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Linux.GIDMappings = append(s.Linux.GIDMappings, specs.LinuxIDMapping{ContainerID: 70000, HostID: 100001, Size: 1})
		}, "linux.gidMappings[1]", "host range overlaps"},
		{"id range past 2^32", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 4294967295, Size: 2}}
		}, "linux.uidMappings[0]", "passes 2^32-1"},
		{"process uid not mapped", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Process.User.UID = 70000
		}, "process.user.uid", "not mapped"},
		{"process gid not mapped", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Process.User.GID = 70000
		}, "process.user.gid", "not mapped"},
		{"additional gid not mapped", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Process.User.AdditionalGids = []uint32{1, 70000}
		}, "process.user.additionalGids[1]", "not mapped"},
		{"time offsets without time namespace", func(_ *testing.T, s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}}
		}, "linux.timeOffsets", "requires a time namespace"},
		{"time offsets on a joined time namespace", func(t *testing.T, s *specs.Spec) {
			setNSPath(s, specs.TimeNamespace, requireNSFile(t, "time"))
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}}
		}, "linux.timeOffsets", "joined by path"},
		{"time offset for an unknown clock", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"realtime": {Secs: 1}}
		}, `linux.timeOffsets["realtime"]`, "unknown clock"},
		{"time offset nanoseconds of a second or more", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Nanosecs: 1e9}}
		}, `linux.timeOffsets["boottime"].nanosecs`, "not below 1e9"},

		{"net sysctl without network namespace", func(_ *testing.T, s *specs.Spec) {
			dropNS(s, specs.NetworkNamespace)
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, `linux.sysctl["net.ipv4.ip_forward"]`, "requires a network namespace"},
		{"net sysctl in the host network namespace joined by path", func(t *testing.T, s *specs.Spec) {
			setNSPath(s, specs.NetworkNamespace, requireNSFile(t, "net"))
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, `linux.sysctl["net.ipv4.ip_forward"]`, "host's network namespace"},
		{"ipc sysctl without ipc namespace", func(_ *testing.T, s *specs.Spec) {
			dropNS(s, specs.IPCNamespace)
			s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"}
		}, `linux.sysctl["kernel.shmmax"]`, "requires an ipc namespace"},
		{"mqueue sysctl without ipc namespace in slash form", func(_ *testing.T, s *specs.Spec) {
			dropNS(s, specs.IPCNamespace)
			s.Linux.Sysctl = map[string]string{"fs/mqueue/msg_max": "1"}
		}, `linux.sysctl["fs/mqueue/msg_max"]`, "requires an ipc namespace"},
		{"sysctl that no namespace owns", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"}
		}, `linux.sysctl["vm.swappiness"]`, "not in a namespace"},
		{"kernel sysctl outside the ipc set", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"kernel.pid_max": "1"}
		}, `linux.sysctl["kernel.pid_max"]`, "not in a namespace"},
		{"kernel.hostname sysctl", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"kernel.hostname": "x"}
		}, `linux.sysctl["kernel.hostname"]`, "conflicts with the hostname field"},
		{"kernel.domainname sysctl without uts namespace", func(_ *testing.T, s *specs.Spec) {
			dropNS(s, specs.UTSNamespace)
			s.Hostname = ""
			s.Linux.Sysctl = map[string]string{"kernel.domainname": "x"}
		}, `linux.sysctl["kernel.domainname"]`, "not in a namespace"},
		{"hostname without uts namespace", func(_ *testing.T, s *specs.Spec) { dropNS(s, specs.UTSNamespace) }, "hostname", "requires a uts namespace"},
		{"domainname without uts namespace", func(_ *testing.T, s *specs.Spec) {
			dropNS(s, specs.UTSNamespace)
			s.Hostname = ""
			s.Domainname = "example.com"
		}, "domainname", "requires a uts namespace"},

		{"mount without destination", func(_ *testing.T, s *specs.Spec) { s.Mounts[0].Destination = "" }, "mounts[0].destination", "required"},
		{"mount destination with NUL", func(_ *testing.T, s *specs.Spec) { s.Mounts[0].Destination = "/a\x00b" }, "mounts[0].destination", "NUL"},
		{"mount without type that is not a bind", func(_ *testing.T, s *specs.Spec) { s.Mounts[1].Type = "" }, "mounts[1].type", "required"},
		{"mount with an empty option", func(_ *testing.T, s *specs.Spec) { s.Mounts[1].Options = append(s.Mounts[1].Options, "") }, "mounts[1].options[4]", "empty option"},
		{"idmap option on a mount that is not a bind", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Mounts[1].Options = append(s.Mounts[1].Options, "idmap")
		}, "mounts[1]", "must be bind mounts"},
		{"idmap option without a user namespace", func(_ *testing.T, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: "/tmp", Options: []string{"bind", "idmap"}})
		}, "mounts[7].options", "there is none"},
		{"mount with uidMappings only", func(_ *testing.T, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{
				Destination: "/data", Source: "/tmp", Options: []string{"bind"},
				UIDMappings: []specs.LinuxIDMapping{{Size: 1}},
			})
		}, "mounts[7]", "both uidMappings and gidMappings"},
		{"mount mapping of size zero", func(_ *testing.T, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{
				Destination: "/data", Source: "/tmp", Options: []string{"bind"},
				UIDMappings: []specs.LinuxIDMapping{{Size: 1}},
				GIDMappings: []specs.LinuxIDMapping{{Size: 0}},
			})
		}, "mounts[7].gidMappings[0].size", "must be positive"},

		{"device of unknown type", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "x"}}
		}, "linux.devices[0].type", "not one of c, b, u, p"},
		{"device with relative path", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "dev/x", Type: "c", Major: 1, Minor: 3}}
		}, "linux.devices[0].path", "not an absolute path"},
		{"device with negative major", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "b", Major: -1}}
		}, "linux.devices[0].major", "negative"},
		{"duplicate device path", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "p"}, {Path: "/dev//x", Type: "p"}}
		}, "linux.devices[1].path", "duplicate device"},
		{"device cgroup rule without access", func(_ *testing.T, s *specs.Spec) { s.Linux.Resources.Devices[0].Access = "" }, "linux.resources.devices[0].access", "required"},
		{"device cgroup rule with bad access", func(_ *testing.T, s *specs.Spec) { s.Linux.Resources.Devices[0].Access = "rwx" }, "linux.resources.devices[0].access", "other than r, w, m"},
		{"device cgroup rule with bad type", func(_ *testing.T, s *specs.Spec) { s.Linux.Resources.Devices[0].Type = "p" }, "linux.resources.devices[0].type", "not one of a, b, c"},

		{"prestart hook with relative path", func(_ *testing.T, s *specs.Spec) {
			s.Hooks = &specs.Hooks{}
			//lint:ignore SA1019 prestart is deprecated but still validated.
			s.Hooks.Prestart = []specs.Hook{{Path: "true"}}
		}, "hooks.prestart[0].path", "not an absolute path"},
		{"hook with relative path", func(_ *testing.T, s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "bin/hook"}}}
		}, "hooks.createRuntime[0].path", "not an absolute path"},
		{"hook without path", func(_ *testing.T, s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}, {}}}
		}, "hooks.poststop[1].path", "required"},
		{"hook with zero timeout", func(_ *testing.T, s *specs.Spec) {
			s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true", Timeout: ptr(0)}}}
		}, "hooks.startContainer[0].timeout", "not a positive"},
		{"unknown rootfsPropagation", func(_ *testing.T, s *specs.Spec) { s.Linux.RootfsPropagation = "rprivate,ro" }, "linux.rootfsPropagation", "unknown propagation"},
		{"relative masked path", func(_ *testing.T, s *specs.Spec) { s.Linux.MaskedPaths[0] = "proc/acpi" }, "linux.maskedPaths[0]", "not an absolute path"},
		{"relative readonly path", func(_ *testing.T, s *specs.Spec) { s.Linux.ReadonlyPaths[4] = "x" }, "linux.readonlyPaths[4]", "not an absolute path"},
		{"masked paths without mount namespace", func(_ *testing.T, s *specs.Spec) { dropNS(s, specs.MountNamespace) }, "linux.maskedPaths", "requires a mount namespace"},
		{"annotation with empty key", func(_ *testing.T, s *specs.Spec) { s.Annotations = map[string]string{"": "x"} }, "annotations", "empty key"},
		{"unknown personality domain", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: "LINUX64"}
		}, "linux.personality.domain", "unknown domain"},
		{"unknown memory policy mode", func(_ *testing.T, s *specs.Spec) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: "MPOL_X"}
		}, "linux.memoryPolicy.mode", "unknown mode"},

		{"seccomp syscalls without default action", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
		}, "linux.seccomp.defaultAction", "required"},
		{"seccomp notify as default action", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}
		}, "linux.seccomp.defaultAction", "cannot be the default"},
		{"seccomp unknown default action", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}
		}, "linux.seccomp.defaultAction", "unknown action"},
		{"seccomp unknown architecture", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, "SCMP_ARCH_Z80"}}
		}, "linux.seccomp.architectures[1]", "unknown architecture"},
		{"seccomp unknown flag", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_X"}}
		}, "linux.seccomp.flags[0]", "unknown flag"},
		{"seccomp rule without names", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Action: specs.ActAllow}}}
		}, "linux.seccomp.syscalls[0].names", "required"},
		{"seccomp rule with unknown action", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "ALLOW"}}}
		}, "linux.seccomp.syscalls[0].action", "unknown action"},
		{"seccomp argument index past 5", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{
				Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}},
			}}}
		}, "linux.seccomp.syscalls[0].args[0].index", "0-5"},
		{"seccomp argument with unknown operator", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{
				Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Op: "=="}},
			}}}
		}, "linux.seccomp.syscalls[0].args[0].op", "unknown operator"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bundle := newBundle(t)
			s := Example()
			tc.mutate(t, s)
			err := Validate(s, bundle)
			if err == nil {
				t.Fatalf("Validate succeeded, want an error at %s", tc.field)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
			}
			for _, p := range ve.Problems {
				if p.Field == tc.field && strings.Contains(p.Error(), tc.message) {
					if !strings.HasPrefix(p.Error(), tc.field+": ") {
						t.Errorf("problem %q does not start with the field path", p)
					}
					return
				}
			}
			t.Fatalf("no problem at %s containing %q; got %v", tc.field, tc.message, ve.Problems)
		})
	}
}

// TestValidateAccepts covers configs that look odd but are valid, some only
// for compatibility with runc.
func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, s *specs.Spec)
	}{
		{"relative mount destination, taken as relative to /", func(_ *testing.T, s *specs.Spec) { s.Mounts[0].Destination = "proc" }},
		{"bind mount with no type", func(_ *testing.T, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: "data", Options: []string{"rbind", "ro", "rprivate"}})
		}},
		{"user namespace joined by path without mappings", func(t *testing.T, s *specs.Spec) {
			setNSPath(s, specs.UserNamespace, requireNSFile(t, "user"))
		}},
		{"user namespace joined by path with mappings", func(t *testing.T, s *specs.Spec) {
			addUserNS(s)
			setNSPath(s, specs.UserNamespace, requireNSFile(t, "user"))
		}},
		{"new user namespace with mappings and mapped user", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5}}
		}},
		{"id-mapped bind mount with the container's mappings", func(_ *testing.T, s *specs.Spec) {
			addUserNS(s)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: "/tmp", Options: []string{"rbind", "ridmap"}})
		}},
		{"id-mapped bind mount with its own mappings", func(_ *testing.T, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{
				Destination: "/data", Source: "/tmp", Options: []string{"bind", "idmap"},
				UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
				GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
			})
		}},
		{"network namespace joined by a path of the right type", func(t *testing.T, s *specs.Spec) {
			setNSPath(s, specs.NetworkNamespace, requireNSFile(t, "net"))
		}},
		{"namespaced sysctls", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{
				"net.ipv4.ip_forward":    "1",
				"net/ipv4/conf/all/arp":  "1",
				"kernel.shm_rmid_forced": "1",
				"kernel.sem":             "250 32000 100 128",
				"fs.mqueue.msg_max":      "10",
				"kernel.domainname":      "example.com",
			}
		}},
		{"time offsets with a new time namespace", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: -5}, "boottime": {Secs: 1, Nanosecs: 999999999}}
		}},
		{"prerelease ociVersion", func(_ *testing.T, s *specs.Spec) { s.Version = "1.0.2-dev" }},
		{"newer minor ociVersion", func(_ *testing.T, s *specs.Spec) { s.Version = "1.9.0+build.5" }},
		{"apparmor and selinux fields", func(_ *testing.T, s *specs.Spec) {
			s.Process.ApparmorProfile = "hull-default"
			s.Process.SelinuxLabel = "system_u:system_r:container_t:s0"
		}},
		{"every capability", func(_ *testing.T, s *specs.Spec) { s.Process.Capabilities.Bounding = knownCapabilities() }},
		{"every rlimit once", func(_ *testing.T, s *specs.Spec) {
			s.Process.Rlimits = nil
			for _, name := range sortedKeys(rlimits) {
				s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: name, Soft: 1, Hard: 2})
			}
		}},
		{"devices of every type", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229},
				{Path: "/dev/loop0", Type: "b", Major: 7},
				{Path: "/dev/kmsg", Type: "u", Major: 1, Minor: 11},
				{Path: "/dev/fifo", Type: "p"},
			}
		}},
		{"hooks with absolute paths", func(_ *testing.T, s *specs.Spec) {
			s.Hooks = &specs.Hooks{
				CreateRuntime: []specs.Hook{{Path: "/bin/true", Timeout: ptr(5)}},
				Poststop:      []specs.Hook{{Path: "/bin/true", Args: []string{"true"}}},
			}
			//lint:ignore SA1019 prestart is deprecated but still accepted.
			s.Hooks.Prestart = []specs.Hook{{Path: "/bin/true"}}
		}},
		{"every rootfs propagation", func(_ *testing.T, s *specs.Spec) { s.Linux.RootfsPropagation = "rslave" }},
		{"no linux section", func(_ *testing.T, s *specs.Spec) {
			s.Linux = nil
			s.Hostname = ""
		}},
		{"seccomp profile", func(_ *testing.T, s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno,
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow},
				Syscalls: []specs.LinuxSyscall{{
					Names: []string{"read", "write"}, Action: specs.ActAllow,
					Args: []specs.LinuxSeccompArg{{Index: 5, Value: 1, Op: specs.OpMaskedEqual}},
				}},
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bundle := newBundle(t)
			if err := os.Mkdir(filepath.Join(bundle, "data"), 0o755); err != nil {
				t.Fatal(err)
			}
			s := Example()
			tc.mutate(t, s)
			if err := Validate(s, bundle); err != nil {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblemAndCountsThem(t *testing.T) {
	s := Example()
	s.Version = ""
	s.Process.Cwd = "rel"
	s.Linux.Namespaces[0].Type = "bogus"
	err := Validate(s, newBundle(t))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want *ValidationError", err)
	}
	if len(ve.Problems) != 3 {
		t.Fatalf("got %d problems, want 3: %v", len(ve.Problems), ve.Problems)
	}
	if want := "ociVersion: required (and 2 more problems)"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "ociVersion" {
		t.Errorf("errors.As(*FieldError) = %v, want the first problem", fe)
	}
}

func TestValidateWrapsTheCauseOfAMissingRoot(t *testing.T) {
	s := Example()
	s.Root.Path = "missing"
	err := Validate(s, t.TempDir())
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Validate = %v, want it to wrap os.ErrNotExist", err)
	}
}

func TestValidateDoesNotModifyTheSpec(t *testing.T) {
	s := Example()
	_ = Validate(s, newBundle(t))
	if s.Root.Path != "rootfs" {
		t.Errorf("root.path changed to %q", s.Root.Path)
	}
}
