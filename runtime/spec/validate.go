package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// FieldError is one problem in a config, named by the JSON path of the field
// that has it, e.g. `linux.namespaces[2].type: unknown namespace type "foo"`.
type FieldError struct {
	// Field is the JSON path: object members joined by ".", array
	// elements as [i], map keys as ["key"].
	Field string
	// Err describes the problem; it wraps the cause when there is one.
	Err error
}

// Error returns "field: problem".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

// Unwrap returns the problem.
func (e *FieldError) Unwrap() error { return e.Err }

// ValidationError lists every problem Validate found, in the order the
// fields were checked. Its message is the first problem's, plus a count of
// the others; errors.As with *FieldError finds the first.
type ValidationError struct {
	Problems []*FieldError
}

// Error returns the first problem and how many more there are.
func (e *ValidationError) Error() string {
	switch len(e.Problems) {
	case 0:
		return "invalid config"
	case 1:
		return e.Problems[0].Error()
	case 2:
		return e.Problems[0].Error() + " (and 1 more problem)"
	default:
		return fmt.Sprintf("%s (and %d more problems)", e.Problems[0].Error(), len(e.Problems)-1)
	}
}

// Unwrap returns every problem.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// Validate checks that s describes a Linux container this runtime can
// create. bundle is the bundle directory; a relative root.path is taken
// relative to it. Validate reads the filesystem (root.path, namespace paths)
// but changes nothing, neither on disk nor in s. It returns nil or a
// *ValidationError whose problems each name the JSON field at fault.
func Validate(s *specs.Spec, bundle string) error {
	if s == nil {
		return errors.New("no config")
	}
	v := &validator{s: s, bundle: bundle, ns: map[specs.LinuxNamespaceType]nsEntry{}}
	v.version()
	v.root()
	v.namespaces() // first: later checks ask which namespaces exist
	v.process()
	v.hostname()
	v.mounts()
	v.hooks()
	v.annotations()
	v.linux()
	if len(v.errs) > 0 {
		return &ValidationError{Problems: v.errs}
	}
	return nil
}

type nsEntry struct {
	index int
	path  string
}

type validator struct {
	s      *specs.Spec
	bundle string
	errs   []*FieldError
	// ns holds the namespaces the config lists, first entry per type.
	ns map[specs.LinuxNamespaceType]nsEntry
}

func (v *validator) fail(field string, err error) {
	v.errs = append(v.errs, &FieldError{Field: field, Err: err})
}

func (v *validator) failf(field, format string, args ...any) {
	v.fail(field, fmt.Errorf(format, args...))
}

func (v *validator) has(t specs.LinuxNamespaceType) bool {
	_, ok := v.ns[t]
	return ok
}

// joins reports whether namespace t is joined by path rather than created.
func (v *validator) joins(t specs.LinuxNamespaceType) bool {
	e, ok := v.ns[t]
	return ok && e.path != ""
}

func idx(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

func key(field, k string) string { return field + "[" + strconv.Quote(k) + "]" }

func (v *validator) version() {
	ver := v.s.Version
	if ver == "" {
		v.failf("ociVersion", "required")
		return
	}
	major, err := semverMajor(ver)
	if err != nil {
		v.fail("ociVersion", fmt.Errorf("%q: %w", ver, err))
		return
	}
	if major != 1 {
		v.failf("ociVersion", "%q: major version %d is not supported (want 1)", ver, major)
	}
}

// semverMajor checks that s is MAJOR.MINOR.PATCH[-PRE][+BUILD] and returns
// MAJOR.
func semverMajor(s string) (int, error) {
	core := s
	if i := strings.IndexAny(core, "-+"); i >= 0 {
		if i == len(core)-1 {
			return 0, errors.New("not a semantic version")
		}
		core = core[:i]
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return 0, errors.New("not a semantic version (want MAJOR.MINOR.PATCH)")
	}
	var nums [3]int
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') || strings.Trim(p, "0123456789") != "" {
			return 0, errors.New("not a semantic version (want MAJOR.MINOR.PATCH)")
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("not a semantic version: %w", err)
		}
		nums[i] = n
	}
	return nums[0], nil
}

// rootPath returns root.path made absolute against the bundle.
func (v *validator) rootPath() string {
	p := v.s.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(v.bundle, p)
	}
	return p
}

func (v *validator) root() {
	if v.s.Root == nil {
		v.failf("root", "required")
		return
	}
	if v.s.Root.Path == "" {
		v.failf("root.path", "required")
		return
	}
	if strings.IndexByte(v.s.Root.Path, 0) >= 0 {
		v.failf("root.path", "contains a NUL byte")
		return
	}
	p := v.rootPath()
	fi, err := os.Stat(p)
	if err != nil {
		v.fail("root.path", fmt.Errorf("root filesystem %w", err))
		return
	}
	if !fi.IsDir() {
		v.failf("root.path", "root filesystem %s is not a directory", p)
	}
}

func (v *validator) namespaces() {
	if v.s.Linux == nil {
		return
	}
	for i, ns := range v.s.Linux.Namespaces {
		field := idx("linux.namespaces", i)
		flag, known := namespaceCloneFlags[ns.Type]
		if !known {
			v.failf(field+".type", "unknown namespace type %q", ns.Type)
			continue
		}
		if prev, dup := v.ns[ns.Type]; dup {
			v.failf(field+".type", "duplicate namespace type %q (also linux.namespaces[%d])", ns.Type, prev.index)
			continue
		}
		v.ns[ns.Type] = nsEntry{index: i, path: ns.Path}
		if ns.Path == "" {
			continue
		}
		// Every namespace type can be joined by path (runtime-spec
		// config-linux.md); the path must name a namespace of that type.
		if !filepath.IsAbs(ns.Path) {
			v.failf(field+".path", "%q is not an absolute path", ns.Path)
			continue
		}
		if err := checkNamespaceFile(ns.Path, flag); err != nil {
			v.fail(field+".path", err)
		}
	}
}

// checkNamespaceFile checks that path exists and, where the kernel lets us
// tell, is a namespace file of the type whose CLONE_NEW* flag is want.
func checkNamespaceFile(path string, want int) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a namespace file", path)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			// It exists; whoever joins it needs the access we lack.
			return nil
		}
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	if int64(sfs.Type) != unix.NSFS_MAGIC {
		return fmt.Errorf("%s is not a namespace file", path)
	}
	got, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return nil // NS_GET_NSTYPE needs Linux 4.11; the join will tell.
	}
	if got != want {
		return fmt.Errorf("%s is a %s namespace, not a %s namespace", path, namespaceName(got), namespaceName(want))
	}
	return nil
}

func namespaceName(flag int) string {
	for t, f := range namespaceCloneFlags {
		if f == flag {
			return string(t)
		}
	}
	return fmt.Sprintf("unknown (%#x)", flag)
}

func (v *validator) process() {
	p := v.s.Process
	if p == nil {
		// process is OPTIONAL (runtime-spec): such a container can be created but
		// `start` reports that there is nothing to run.
		return
	}
	if len(p.Args) == 0 {
		v.failf("process.args", "required (at least the program to run)")
	} else if p.Args[0] == "" {
		v.failf("process.args[0]", "empty program name")
	}
	if p.Cwd == "" {
		v.failf("process.cwd", "required")
	} else if !filepath.IsAbs(p.Cwd) {
		v.failf("process.cwd", "%q is not an absolute path", p.Cwd)
	}
	for i, kv := range p.Env {
		name, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			v.failf(idx("process.env", i), "%q has no \"=\"", kv)
		case name == "":
			v.failf(idx("process.env", i), "%q has an empty name", kv)
		case strings.IndexByte(kv, 0) >= 0:
			v.failf(idx("process.env", i), "contains a NUL byte")
		}
	}
	v.user(&p.User)
	if c := p.Capabilities; c != nil {
		v.capSet("process.capabilities.bounding", c.Bounding)
		v.capSet("process.capabilities.effective", c.Effective)
		v.capSet("process.capabilities.inheritable", c.Inheritable)
		v.capSet("process.capabilities.permitted", c.Permitted)
		v.capSet("process.capabilities.ambient", c.Ambient)
	}
	seen := map[string]int{}
	for i, rl := range p.Rlimits {
		field := idx("process.rlimits", i)
		if _, ok := rlimits[rl.Type]; !ok {
			v.failf(field+".type", "unknown rlimit %q", rl.Type)
			continue
		}
		if prev, dup := seen[rl.Type]; dup {
			v.failf(field+".type", "duplicate rlimit %q (also process.rlimits[%d])", rl.Type, prev)
			continue
		}
		seen[rl.Type] = i
		if rl.Soft > rl.Hard {
			v.failf(field, "soft limit %d is above hard limit %d", rl.Soft, rl.Hard)
		}
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		v.failf("process.oomScoreAdj", "%d is outside [-1000, 1000]", *p.OOMScoreAdj)
	}
	v.scheduler(p.Scheduler)
	if io := p.IOPriority; io != nil {
		if !slices.Contains(ioPriorityClasses, io.Class) {
			v.failf("process.ioPriority.class", "unknown class %q", io.Class)
		}
		if io.Priority < 0 || io.Priority > 7 {
			v.failf("process.ioPriority.priority", "%d is outside [0, 7]", io.Priority)
		}
	}
	// apparmorProfile and selinuxLabel are accepted here; the stage that
	// applies them reports when the host cannot.
}

func (v *validator) user(u *specs.User) {
	if u.Umask != nil && *u.Umask > 0o777 {
		v.failf("process.user.umask", "%#o has bits outside 0777", *u.Umask)
	}
	if !v.has(specs.UserNamespace) || v.s.Linux == nil {
		return
	}
	uidMap, gidMap := v.s.Linux.UIDMappings, v.s.Linux.GIDMappings
	if len(uidMap) > 0 && !mapped(uidMap, u.UID) {
		v.failf("process.user.uid", "%d is not mapped by linux.uidMappings", u.UID)
	}
	if len(gidMap) > 0 {
		if !mapped(gidMap, u.GID) {
			v.failf("process.user.gid", "%d is not mapped by linux.gidMappings", u.GID)
		}
		for i, g := range u.AdditionalGids {
			if !mapped(gidMap, g) {
				v.failf(idx("process.user.additionalGids", i), "%d is not mapped by linux.gidMappings", g)
			}
		}
	}
}

func mapped(m []specs.LinuxIDMapping, id uint32) bool {
	for _, e := range m {
		if uint64(id) >= uint64(e.ContainerID) && uint64(id) < uint64(e.ContainerID)+uint64(e.Size) {
			return true
		}
	}
	return false
}

func (v *validator) capSet(field string, caps []string) {
	for _, c := range caps {
		if _, ok := capabilities[c]; !ok {
			v.failf(field, "unknown capability %q", c)
		}
	}
}

// scheduler follows sched_setattr(2), as runc's validator does.
func (v *validator) scheduler(s *specs.Scheduler) {
	if s == nil {
		return
	}
	const f = "process.scheduler"
	if s.Policy == "" {
		v.failf(f+".policy", "required")
		return
	}
	if !slices.Contains(schedulerPolicies, s.Policy) {
		v.failf(f+".policy", "unknown policy %q", s.Policy)
		return
	}
	if (s.Policy == specs.SchedOther || s.Policy == specs.SchedBatch) && (s.Nice < -20 || s.Nice > 19) {
		v.failf(f+".nice", "%d is outside [-20, 19]", s.Nice)
	}
	if s.Priority != 0 && s.Policy != specs.SchedFIFO && s.Policy != specs.SchedRR {
		v.failf(f+".priority", "only valid with SCHED_FIFO or SCHED_RR, not %s", s.Policy)
	}
	if s.Policy != specs.SchedDeadline && (s.Runtime != 0 || s.Deadline != 0 || s.Period != 0) {
		v.failf(f, "runtime, deadline and period are only valid with SCHED_DEADLINE, not %s", s.Policy)
	}
	for i, fl := range s.Flags {
		if !slices.Contains(schedulerFlags, fl) {
			v.failf(idx(f+".flags", i), "unknown flag %q", fl)
		}
	}
}

func (v *validator) hostname() {
	if v.s.Hostname != "" && !v.has(specs.UTSNamespace) {
		v.failf("hostname", "requires a uts namespace")
	}
	if v.s.Domainname != "" && !v.has(specs.UTSNamespace) {
		v.failf("domainname", "requires a uts namespace")
	}
}

func (v *validator) mounts() {
	for i, m := range v.s.Mounts {
		field := idx("mounts", i)
		if m.Destination == "" {
			v.failf(field+".destination", "required")
		} else if strings.IndexByte(m.Destination, 0) >= 0 {
			v.failf(field+".destination", "contains a NUL byte")
		}
		// A relative destination is taken as relative to "/", as runc
		// does (with a deprecation warning) for old configs.
		if strings.IndexByte(m.Source, 0) >= 0 {
			v.failf(field+".source", "contains a NUL byte")
		}
		if strings.IndexByte(m.Type, 0) >= 0 {
			v.failf(field+".type", "contains a NUL byte")
		}
		for j, o := range m.Options {
			switch {
			case o == "":
				v.failf(idx(field+".options", j), "empty option")
			case strings.IndexByte(o, 0) >= 0:
				v.failf(idx(field+".options", j), "contains a NUL byte")
			}
		}
		p := ParseMountOptions(m.Options)
		if !p.Bind && m.Type == "" {
			v.failf(field+".type", "required unless the options hold \"bind\" or \"rbind\"")
		}
		// Filesystem options on a bind mount are ignored, as by the kernel and runc
		// (the validation suite's mounts test sends them).
		hasMaps := len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
		if p.Idmap || hasMaps {
			if !p.Bind {
				v.failf(field, "id-mapped mounts must be bind mounts")
			}
			switch {
			case hasMaps && (len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0):
				v.failf(field, "id-mapped mounts need both uidMappings and gidMappings")
			case !hasMaps && !v.has(specs.UserNamespace):
				v.failf(field+".options", "idmap without uidMappings/gidMappings uses the container's user namespace, and there is none")
			}
			v.idMappings(field+".uidMappings", m.UIDMappings)
			v.idMappings(field+".gidMappings", m.GIDMappings)
		}
	}
}

func (v *validator) hooks() {
	h := v.s.Hooks
	if h == nil {
		return
	}
	//lint:ignore SA1019 prestart is deprecated but still run, as runc does.
	prestart := h.Prestart
	lists := [][]specs.Hook{
		prestart, h.CreateRuntime, h.CreateContainer, h.StartContainer, h.Poststart, h.Poststop,
	}
	for n, list := range lists {
		for i, hk := range list {
			field := idx("hooks."+hookNames[n], i)
			if hk.Path == "" {
				v.failf(field+".path", "required")
			} else if !filepath.IsAbs(hk.Path) {
				v.failf(field+".path", "%q is not an absolute path", hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				v.failf(field+".timeout", "%d is not a positive number of seconds", *hk.Timeout)
			}
		}
	}
}

func (v *validator) annotations() {
	if _, empty := v.s.Annotations[""]; empty {
		v.failf("annotations", "empty key")
	}
}

func (v *validator) linux() {
	l := v.s.Linux
	if l == nil {
		return
	}
	v.userNamespace(l)
	v.timeNamespace(l)
	v.sysctls(l)
	v.devices(l)
	if l.Resources != nil {
		for i, d := range l.Resources.Devices {
			field := idx("linux.resources.devices", i)
			switch d.Type {
			case "", "a", "b", "c":
			default:
				v.failf(field+".type", "%q is not one of a, b, c", d.Type)
			}
			if d.Access == "" {
				v.failf(field+".access", "required")
			} else if strings.Trim(d.Access, "rwm") != "" {
				v.failf(field+".access", "%q has letters other than r, w, m", d.Access)
			}
		}
	}
	if l.RootfsPropagation != "" && !propagationModes[l.RootfsPropagation] {
		v.failf("linux.rootfsPropagation", "unknown propagation %q", l.RootfsPropagation)
	}
	v.pathList("linux.maskedPaths", l.MaskedPaths)
	v.pathList("linux.readonlyPaths", l.ReadonlyPaths)
	v.seccomp(l.Seccomp)
	if pers := l.Personality; pers != nil && pers.Domain != specs.PerLinux && pers.Domain != specs.PerLinux32 {
		v.failf("linux.personality.domain", "unknown domain %q", pers.Domain)
	}
	if mp := l.MemoryPolicy; mp != nil {
		if !slices.Contains(memoryPolicyModes, mp.Mode) {
			v.failf("linux.memoryPolicy.mode", "unknown mode %q", mp.Mode)
		}
		for i, f := range mp.Flags {
			if !slices.Contains(memoryPolicyFlags, f) {
				v.failf(idx("linux.memoryPolicy.flags", i), "unknown flag %q", f)
			}
		}
	}
}

func (v *validator) userNamespace(l *specs.Linux) {
	hasMaps := len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0
	if !v.has(specs.UserNamespace) {
		if len(l.UIDMappings) > 0 {
			v.failf("linux.uidMappings", "requires a user namespace")
		}
		if len(l.GIDMappings) > 0 {
			v.failf("linux.gidMappings", "requires a user namespace")
		}
		return
	}
	// Joining a user namespace by path may come with mappings (containerd
	// and CRI-O send both); the join compares them with the namespace's.
	if !hasMaps && !v.joins(specs.UserNamespace) {
		v.failf(idx("linux.namespaces", v.ns[specs.UserNamespace].index),
			"a new user namespace needs linux.uidMappings and linux.gidMappings")
		return
	}
	if !v.joins(specs.UserNamespace) {
		if len(l.UIDMappings) == 0 {
			v.failf("linux.uidMappings", "required with linux.gidMappings for a new user namespace")
		}
		if len(l.GIDMappings) == 0 {
			v.failf("linux.gidMappings", "required with linux.uidMappings for a new user namespace")
		}
	}
	v.idMappings("linux.uidMappings", l.UIDMappings)
	v.idMappings("linux.gidMappings", l.GIDMappings)
}

// maxIDMapLines is the kernel's limit on lines in uid_map/gid_map (4.15+).
const maxIDMapLines = 340

// idMappings checks what the kernel checks when a map is written: non-empty
// ranges that neither wrap around nor overlap, on either side.
func (v *validator) idMappings(field string, m []specs.LinuxIDMapping) {
	if len(m) > maxIDMapLines {
		v.failf(field, "%d entries, the kernel takes at most %d", len(m), maxIDMapLines)
	}
	const idSpace = 1 << 32
	for i, e := range m {
		f := idx(field, i)
		if e.Size == 0 {
			v.failf(f+".size", "must be positive")
			continue
		}
		if uint64(e.ContainerID)+uint64(e.Size) > idSpace {
			v.failf(f, "container range %d+%d passes 2^32-1", e.ContainerID, e.Size)
			continue
		}
		if uint64(e.HostID)+uint64(e.Size) > idSpace {
			v.failf(f, "host range %d+%d passes 2^32-1", e.HostID, e.Size)
			continue
		}
		for j := range i {
			o := m[j]
			if o.Size == 0 {
				continue
			}
			if overlap(e.ContainerID, e.Size, o.ContainerID, o.Size) {
				v.failf(f, "container range overlaps %s", idx(field, j))
			} else if overlap(e.HostID, e.Size, o.HostID, o.Size) {
				v.failf(f, "host range overlaps %s", idx(field, j))
			}
		}
	}
}

func overlap(a, an, b, bn uint32) bool {
	return uint64(a) < uint64(b)+uint64(bn) && uint64(b) < uint64(a)+uint64(an)
}

func (v *validator) timeNamespace(l *specs.Linux) {
	if len(l.TimeOffsets) == 0 {
		return
	}
	if !v.has(specs.TimeNamespace) {
		v.failf("linux.timeOffsets", "requires a time namespace")
		return
	}
	if v.joins(specs.TimeNamespace) {
		v.failf("linux.timeOffsets", "cannot be set on a time namespace joined by path (%s)",
			idx("linux.namespaces", v.ns[specs.TimeNamespace].index)+".path")
		return
	}
	for _, clock := range sortedKeys(l.TimeOffsets) {
		field := key("linux.timeOffsets", clock)
		if clock != "boottime" && clock != "monotonic" {
			v.failf(field, "unknown clock %q (want boottime or monotonic)", clock)
			continue
		}
		if l.TimeOffsets[clock].Nanosecs >= 1e9 {
			v.failf(field+".nanosecs", "%d is not below 1e9", l.TimeOffsets[clock].Nanosecs)
		}
	}
}

// sysctls applies runc's rules: /proc/sys is only partly namespaced, so a
// sysctl is allowed only when the namespace that owns it is the container's
// own.
func (v *validator) sysctls(l *specs.Linux) {
	hostNet, hostNetChecked := false, false
	for _, k := range sortedKeys(l.Sysctl) {
		field := key("linux.sysctl", k)
		s := sysctlDots(k)
		switch {
		case s == "":
			v.failf(field, "empty name")
		case ipcSysctls[s] || strings.HasPrefix(s, "fs.mqueue."):
			if !v.has(specs.IPCNamespace) {
				v.failf(field, "requires an ipc namespace")
			}
		case strings.HasPrefix(s, "net."):
			if !v.has(specs.NetworkNamespace) {
				v.failf(field, "requires a network namespace")
				continue
			}
			if !v.joins(specs.NetworkNamespace) {
				continue
			}
			if !hostNetChecked {
				hostNetChecked = true
				var err error
				hostNet, err = isHostNetNS(v.ns[specs.NetworkNamespace].path)
				if err != nil {
					v.fail(field, fmt.Errorf("cannot tell whether the network namespace is the host's: %w", err))
					continue
				}
			}
			if hostNet {
				v.failf(field, "not allowed in the host's network namespace")
			}
		case s == "kernel.domainname" && v.has(specs.UTSNamespace):
		case s == "kernel.hostname" && v.has(specs.UTSNamespace):
			v.failf(field, "conflicts with the hostname field; set that instead")
		default:
			v.failf(field, "not in a namespace the container can own")
		}
	}
}

// sysctlDots converts a sysctl name written with "/" separators (sysctl.d(5))
// to the "." form, swapping the two so that "net/ipv4/conf/eth0.100/rp_filter"
// becomes "net.ipv4.conf.eth0/100.rp_filter".
func sysctlDots(name string) string {
	i := strings.IndexAny(name, "./")
	if i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}

// isHostNetNS reports whether path is the network namespace this process is
// in.
func isHostNetNS(path string) (bool, error) {
	const self = "/proc/self/ns/net"
	var a, b unix.Stat_t
	if err := unix.Stat(self, &a); err != nil {
		return false, &os.PathError{Op: "stat", Path: self, Err: err}
	}
	if err := unix.Stat(path, &b); err != nil {
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

func (v *validator) devices(l *specs.Linux) {
	seen := map[string]int{}
	for i, d := range l.Devices {
		field := idx("linux.devices", i)
		switch d.Type {
		case "c", "b", "u":
			if d.Major < 0 {
				v.failf(field+".major", "%d is negative", d.Major)
			}
			if d.Minor < 0 {
				v.failf(field+".minor", "%d is negative", d.Minor)
			}
		case "p":
		default:
			v.failf(field+".type", "%q is not one of c, b, u, p", d.Type)
		}
		if d.Path == "" {
			v.failf(field+".path", "required")
			continue
		}
		if !filepath.IsAbs(d.Path) {
			v.failf(field+".path", "%q is not an absolute path", d.Path)
			continue
		}
		clean := filepath.Clean(d.Path)
		if prev, dup := seen[clean]; dup {
			v.failf(field+".path", "duplicate device %q (also linux.devices[%d])", d.Path, prev)
			continue
		}
		seen[clean] = i
	}
}

func (v *validator) pathList(field string, paths []string) {
	if len(paths) > 0 && !v.has(specs.MountNamespace) {
		v.failf(field, "requires a mount namespace")
	}
	for i, p := range paths {
		if !filepath.IsAbs(p) {
			v.failf(idx(field, i), "%q is not an absolute path", p)
		}
	}
}

func (v *validator) seccomp(sc *specs.LinuxSeccomp) {
	if sc == nil {
		return
	}
	const f = "linux.seccomp"
	switch {
	case sc.DefaultAction == "" && len(sc.Syscalls) > 0:
		v.failf(f+".defaultAction", "required when syscalls are listed")
	case sc.DefaultAction == specs.ActNotify:
		v.failf(f+".defaultAction", "%s cannot be the default action", specs.ActNotify)
	case sc.DefaultAction != "" && !slices.Contains(seccompActions, sc.DefaultAction):
		v.failf(f+".defaultAction", "unknown action %q", sc.DefaultAction)
	}
	for i, a := range sc.Architectures {
		if !slices.Contains(seccompArchs, a) {
			v.failf(idx(f+".architectures", i), "unknown architecture %q", a)
		}
	}
	for i, fl := range sc.Flags {
		if !slices.Contains(seccompFlags, fl) {
			v.failf(idx(f+".flags", i), "unknown flag %q", fl)
		}
	}
	for i, call := range sc.Syscalls {
		field := idx(f+".syscalls", i)
		if len(call.Names) == 0 {
			v.failf(field+".names", "required")
		}
		for j, n := range call.Names {
			if n == "" {
				v.failf(idx(field+".names", j), "empty syscall name")
			}
		}
		if !slices.Contains(seccompActions, call.Action) {
			v.failf(field+".action", "unknown action %q", call.Action)
		}
		for j, a := range call.Args {
			af := idx(field+".args", j)
			if a.Index > 5 {
				v.failf(af+".index", "%d is not a syscall argument index (0-5)", a.Index)
			}
			if !slices.Contains(seccompOperators, a.Op) {
				v.failf(af+".op", "unknown operator %q", a.Op)
			}
		}
	}
}
