package specgen

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
)

// DefaultCapabilities returns the capabilities Docker gives a container that
// is neither privileged nor given --cap-add/--cap-drop, in Docker's order.
// Each call returns a new slice.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// normalizeCap turns "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" into
// "CAP_NET_ADMIN"; "all" becomes "ALL".
func normalizeCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" || strings.HasPrefix(c, "CAP_") {
		return c
	}
	return "CAP_" + c
}

// knownCap reports whether c (normalized) names a capability the capability
// library knows, whatever the running kernel supports.
func knownCap(c string) bool {
	for _, k := range capability.ListKnown() {
		if "CAP_"+strings.ToUpper(k.String()) == c {
			return true
		}
	}
	return false
}

// normalizeCapList normalizes and checks the values of --cap-add or
// --cap-drop (flag names the option for errors).
func normalizeCapList(flag string, in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, raw := range in {
		c := normalizeCap(raw)
		if c != "ALL" && !knownCap(c) {
			return nil, fmt.Errorf("%s %s: unknown capability", flag, raw)
		}
		out = append(out, c)
	}
	return out, nil
}

// capabilities computes the container's capability set with Docker's rules
// (moby's TweakCapabilities): privileged gets every capability it can; "ALL" in --cap-add starts from every capability minus the
// drops; "ALL" in --cap-drop starts from nothing plus the adds; otherwise
// the defaults minus the drops plus the adds (so an add wins over a drop of
// the same capability). supported lists the capabilities a container can
// have (supportedCaps).
func capabilities(o *Options, supported []string) ([]string, error) {
	adds, err := normalizeCapList("--cap-add", o.CapAdd)
	if err != nil {
		return nil, err
	}
	drops, err := normalizeCapList("--cap-drop", o.CapDrop)
	if err != nil {
		return nil, err
	}
	if o.Privileged {
		return slices.Clone(supported), nil
	}
	var caps []string
	switch {
	case slices.Contains(adds, "ALL"):
		for _, c := range supported {
			if !slices.Contains(drops, c) {
				caps = append(caps, c)
			}
		}
		// An add of a capability the kernel lacks is dropped silently, as
		// the runtime would drop it; adds beyond ALL add nothing.
	case slices.Contains(drops, "ALL"):
		caps = slices.DeleteFunc(slices.Clone(adds), func(c string) bool { return c == "ALL" })
	default:
		for _, c := range DefaultCapabilities() {
			if !slices.Contains(drops, c) {
				caps = append(caps, c)
			}
		}
		caps = append(caps, adds...)
	}
	return dedupe(caps), nil
}

// dedupe removes repeated strings, keeping the first of each.
func dedupe(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// supportedCaps returns the capabilities a container can have here, in the
// "CAP_X" spelling: those the kernel supports and this process's bounding
// set holds. A capability outside the bounding set can be given to no
// process, so --privileged asking for it would only fail at start (as on a
// host whose bounding set lacks CAP_SYS_RESOURCE); Podman does the same.
func supportedCaps() ([]string, error) {
	list, err := capability.ListSupported()
	if err != nil {
		return nil, fmt.Errorf("listing the kernel's capabilities: %w", err)
	}
	self, err := capability.NewPid2(0)
	if err == nil {
		err = self.Load()
	}
	if err != nil {
		return nil, fmt.Errorf("reading this process's capabilities: %w", err)
	}
	out := make([]string, 0, len(list))
	for _, c := range list {
		if self.Get(capability.BOUNDING, c) {
			out = append(out, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return out, nil
}
