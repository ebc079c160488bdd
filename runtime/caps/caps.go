// Package caps turns process.capabilities of a runtime-spec config into the
// five capability sets of the container process and applies them to the
// calling thread.
//
// Capabilities are per thread: call the Apply methods on a locked OS thread,
// the one that will execve. As in runc the work comes in two steps around the
// uid/gid change:
//
//	set, err := caps.FromSpec(spec.Process.Capabilities)
//	set.ApplyBounding() // needs CAP_SETPCAP; also sets PR_SET_KEEPCAPS
//	// setgroups, setresgid, setresuid on this thread
//	set.ApplyRest()     // effective, permitted, inheritable, then ambient
package caps

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// UnknownError reports a name that is not a capability at all, as opposed
// to a capability the running kernel is too old for (which is ignored).
type UnknownError struct {
	Name string
}

// Error implements error.
func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown capability %q", e.Name)
}

// Known reports whether name (e.g. "CAP_SYS_ADMIN") is a capability the
// running kernel supports.
func Known(name string) bool {
	c, ok := lookup(name)
	if !ok {
		return false
	}
	last, err := capability.LastCap()
	return err == nil && c <= last
}

// Parse converts capability names such as "CAP_SYS_ADMIN" (upper case, with
// the CAP_ prefix, as runtime-spec and runc spell them).
//
// A name that is no capability is an error (an *UnknownError naming it; all
// such names are reported, joined). A capability the running kernel does not
// support, such as CAP_CHECKPOINT_RESTORE on Linux < 5.9, is left out and
// logged at debug level, as newer runc does, so one config serves old and
// new kernels.
func Parse(names []string) ([]capability.Cap, error) {
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("finding the kernel's last capability: %w", err)
	}
	caps, unknown := parse(names, last)
	if err := errors.Join(unknown...); err != nil {
		return nil, err
	}
	return caps, nil
}

// parse is Parse against a given last supported capability; it returns an
// *UnknownError for each name that is no capability.
func parse(names []string, last capability.Cap) (caps []capability.Cap, unknown []error) {
	out := make([]capability.Cap, 0, len(names))
	for _, name := range names {
		c, ok := lookup(name)
		switch {
		case !ok:
			unknown = append(unknown, &UnknownError{Name: name})
		case c > last:
			slog.Debug("ignoring capability the running kernel does not support", "capability", name, "lastCap", capName(last))
		default:
			out = append(out, c)
		}
	}
	return out, unknown
}

// lookup finds the capability called name ("CAP_" + upper-case name).
func lookup(name string) (capability.Cap, bool) {
	rest, ok := strings.CutPrefix(name, "CAP_")
	if !ok || rest == "" || rest != strings.ToUpper(rest) {
		return 0, false
	}
	for _, c := range capability.ListKnown() {
		if strings.EqualFold(rest, c.String()) {
			return c, true
		}
	}
	return 0, false
}

// capName spells c as config.json does.
func capName(c capability.Cap) string {
	return "CAP_" + strings.ToUpper(c.String())
}

// mask is a set of capabilities, bit n for capability n.
type mask uint64

func (m mask) has(c capability.Cap) bool { return m&(1<<uint(c)) != 0 }

func maskOf(caps []capability.Cap) mask {
	var m mask
	for _, c := range caps {
		m |= 1 << uint(c)
	}
	return m
}

// names lists the capabilities in m, for messages.
func (m mask) names() string {
	var b strings.Builder
	for c := capability.Cap(0); c < 64; c++ {
		if m.has(c) {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(capName(c))
		}
	}
	return b.String()
}

// Set is the capability sets of a container process, ready to apply.
// A nil *Set leaves capabilities alone: runc does not touch them when
// process.capabilities is absent.
type Set struct {
	bounding, effective, permitted, inheritable, ambient mask
	// last is the running kernel's last capability.
	last capability.Cap
}

// FromSpec parses process.capabilities. It returns nil (leave capabilities
// unchanged) for a nil c.
//
// Errors name the field: `unknown capability "CAP_FOO" in
// process.capabilities.bounding`. Effective must be a subset of permitted
// (the kernel refuses anything else). Ambient capabilities that are not also
// permitted and inheritable cannot be raised; they are dropped with a
// warning, as runc does. The inheritable set is exactly what the config
// lists, empty by default (CVE-2022-29162).
func FromSpec(c *specs.LinuxCapabilities) (*Set, error) {
	if c == nil {
		return nil, nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("finding the kernel's last capability: %w", err)
	}
	return fromSpec(c, last)
}

func fromSpec(c *specs.LinuxCapabilities, last capability.Cap) (*Set, error) {
	s := &Set{last: last}
	var errs []error
	for _, f := range []struct {
		name  string
		names []string
		dst   *mask
	}{
		{"bounding", c.Bounding, &s.bounding},
		{"effective", c.Effective, &s.effective},
		{"permitted", c.Permitted, &s.permitted},
		{"inheritable", c.Inheritable, &s.inheritable},
		{"ambient", c.Ambient, &s.ambient},
	} {
		caps, unknown := parse(f.names, last)
		for _, err := range unknown {
			errs = append(errs, fmt.Errorf("%w in process.capabilities.%s", err, f.name))
		}
		*f.dst = maskOf(caps)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if extra := s.effective &^ s.permitted; extra != 0 {
		return nil, fmt.Errorf("process.capabilities.effective: %s not in process.capabilities.permitted (effective must be a subset of permitted)", extra.names())
	}
	if extra := s.ambient &^ (s.permitted & s.inheritable); extra != 0 {
		slog.Warn("ignoring ambient capabilities that are not both permitted and inheritable", "capabilities", extra.names())
		s.ambient &^= extra
	}
	return s, nil
}
