package specgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// security is what --security-opt asked for.
type security struct {
	seccompUnconfined bool
	seccompProfile    string // host path of a profile file
	noNewPrivileges   bool
	unmaskSystemPaths bool // systempaths=unconfined
}

// parseSecurityOpts parses --security-opt values the way Docker does:
// KEY=VALUE, or the deprecated KEY:VALUE. SELinux labels and AppArmor
// profiles are accepted and ignored: hull applies neither.
func parseSecurityOpts(opts []string) (security, error) {
	var s security
	for _, opt := range opts {
		what := "--security-opt " + opt
		key, val, ok := strings.Cut(opt, "=")
		if !ok {
			key, val, ok = strings.Cut(opt, ":")
		}
		switch key {
		case "no-new-privileges":
			if !ok {
				s.noNewPrivileges = true
				continue
			}
			b, err := strconv.ParseBool(val)
			if err != nil {
				return s, fmt.Errorf("%s: want true or false", what)
			}
			s.noNewPrivileges = b
		case "seccomp":
			switch {
			case !ok || val == "":
				return s, fmt.Errorf("%s: want seccomp=unconfined, seccomp=builtin or seccomp=PROFILE.json", what)
			case val == "unconfined":
				s.seccompUnconfined, s.seccompProfile = true, ""
			case val == "builtin" || val == "default":
				s.seccompUnconfined, s.seccompProfile = false, ""
			default:
				s.seccompUnconfined, s.seccompProfile = false, val
			}
		case "systempaths":
			if val != "unconfined" {
				return s, fmt.Errorf("%s: the only value is unconfined", what)
			}
			s.unmaskSystemPaths = true
		case "label", "apparmor":
			if !ok || val == "" {
				return s, fmt.Errorf("%s: missing value", what)
			}
			// Accepted for compatibility; neither SELinux nor AppArmor is
			// applied by hull.
		default:
			return s, fmt.Errorf("%s: unknown security option", what)
		}
	}
	return s, nil
}

// dockerProfile is a seccomp profile file in Docker's format: the
// runtime-spec fields plus archMap and per-rule includes/excludes, which are
// resolved here for the container's capabilities, the native architecture
// and the running kernel. A runtime-spec linux.seccomp object is a valid
// file too.
type dockerProfile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []dockerArchMap          `json:"archMap,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	Syscalls         []dockerSyscall          `json:"syscalls,omitempty"`
}

type dockerArchMap struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

type dockerSyscall struct {
	Name     string                   `json:"name,omitempty"` // the old single-name form
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	Includes dockerFilter             `json:"includes"`
	Excludes dockerFilter             `json:"excludes"`
}

type dockerFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// dockerArch is Docker's name for a GOARCH in includes/excludes.arches.
func dockerArch(goarch string) string {
	if goarch == "386" {
		return "x86"
	}
	return goarch
}

// nativeSeccompArch is the libseccomp name of the native architecture.
func nativeSeccompArch(goarch string) specs.Arch {
	if a := seccompArchitectures(goarch); len(a) > 0 {
		return a[0]
	}
	return ""
}

// loadSeccompProfile reads a Docker-format profile from the host file path
// (given by the user with --security-opt seccomp=PATH) and resolves it for
// a container with bounding set caps.
func loadSeccompProfile(path string, caps []string, h *Host) (*specs.LinuxSeccomp, error) {
	what := "--security-opt seccomp=" + path
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	sc, err := resolveDockerProfile(data, caps, runtime.GOARCH, h.Kernel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return sc, nil
}

// resolveDockerProfile applies moby's rules: a rule is dropped when the
// native arch, a held capability or the kernel version matches its
// excludes, or when its includes name arches (none native), capabilities
// (not all held) or a minimum kernel (newer than the host's).
func resolveDockerProfile(data []byte, caps []string, goarch string, kernel [2]int) (*specs.LinuxSeccomp, error) {
	var p dockerProfile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("decoding the profile: %w", err)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("the profile has no defaultAction")
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, fmt.Errorf("the profile has both architectures and archMap")
	}
	sc := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  p.DefaultErrnoRet,
		Architectures:    p.Architectures,
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
		Flags:            p.Flags,
	}
	native := nativeSeccompArch(goarch)
	for _, m := range p.ArchMap {
		if m.Arch == native {
			sc.Architectures = append([]specs.Arch{m.Arch}, m.SubArches...)
		}
	}
	held := make([]string, len(caps))
	for i, c := range caps {
		held[i] = normalizeCap(c)
	}
	arch := dockerArch(goarch)
	for i, r := range p.Syscalls {
		if r.Name != "" && len(r.Names) > 0 {
			return nil, fmt.Errorf("syscalls[%d]: both name and names", i)
		}
		names := r.Names
		if r.Name != "" {
			names = []string{r.Name}
		}
		keep, err := ruleApplies(r, held, arch, kernel)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		if !keep {
			continue
		}
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: names, Action: r.Action, ErrnoRet: r.ErrnoRet, Args: r.Args})
	}
	return sc, nil
}

func ruleApplies(r dockerSyscall, held []string, arch string, kernel [2]int) (bool, error) {
	if slices.Contains(r.Excludes.Arches, arch) {
		return false, nil
	}
	for _, c := range r.Excludes.Caps {
		if slices.Contains(held, normalizeCap(c)) {
			return false, nil
		}
	}
	if r.Excludes.MinKernel != "" {
		v, err := parseKernel(r.Excludes.MinKernel)
		if err != nil {
			return false, fmt.Errorf("excludes.minKernel: %w", err)
		}
		if !kernelBefore(kernel, v) {
			return false, nil
		}
	}
	if len(r.Includes.Arches) > 0 && !slices.Contains(r.Includes.Arches, arch) {
		return false, nil
	}
	for _, c := range r.Includes.Caps {
		if !slices.Contains(held, normalizeCap(c)) {
			return false, nil
		}
	}
	if r.Includes.MinKernel != "" {
		v, err := parseKernel(r.Includes.MinKernel)
		if err != nil {
			return false, fmt.Errorf("includes.minKernel: %w", err)
		}
		if kernelBefore(kernel, v) {
			return false, nil
		}
	}
	return true, nil
}

// parseKernel parses "MAJOR.MINOR[.anything]".
func parseKernel(s string) ([2]int, error) {
	var v [2]int
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return v, fmt.Errorf("%q is not MAJOR.MINOR", s)
	}
	for i := range 2 {
		p := parts[i]
		end := strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' })
		if end >= 0 {
			p = p[:end]
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, fmt.Errorf("%q is not MAJOR.MINOR", s)
		}
		v[i] = n
	}
	return v, nil
}

// kernelBefore reports whether a is older than b; an unknown (zero) a is
// taken as new enough for everything.
func kernelBefore(a, b [2]int) bool {
	if a == [2]int{} {
		return false
	}
	return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1])
}
