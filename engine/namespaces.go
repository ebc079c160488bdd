package engine

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// joinNamespaces resolves --ipc, --pid and --uts into the spec options:
// "host" shares the host's namespace, "container:NAME" joins the running
// container's (through its init's /proc/PID/ns link, which the runtime
// opens at create), and "" or "private" (or "shareable" for --ipc, which is
// what every private one is here) makes a new one.
func (e *Engine) joinNamespaces(ctx context.Context, o *RunOptions) error {
	for _, ns := range []struct {
		flag, mode, kind string
		host             *bool
		path             *string
	}{
		{"--ipc", o.IPC, "ipc", &o.Spec.IPCHost, &o.Spec.IPCNSPath},
		{"--pid", o.PID, "pid", &o.Spec.PIDHost, &o.Spec.PIDNSPath},
		{"--uts", o.UTS, "uts", &o.Spec.UTSHost, &o.Spec.UTSNSPath},
	} {
		name, join := strings.CutPrefix(ns.mode, "container:")
		switch {
		case ns.mode == "" || ns.mode == "private" || (ns.kind == "ipc" && ns.mode == "shareable"):
		case ns.mode == "host":
			*ns.host = true
		case join:
			other, err := e.Containers.Get(name)
			if err != nil {
				return fmt.Errorf("%s %s: %w", ns.flag, ns.mode, err)
			}
			st := e.State(ctx, other)
			if !st.Running || st.Pid <= 0 {
				return fmt.Errorf("%s %s: container %s is not running", ns.flag, ns.mode, other.Name)
			}
			*ns.path = fmt.Sprintf("/proc/%d/ns/%s", st.Pid, ns.kind)
			if ns.kind == "uts" {
				// The owner's hostname, for $HOSTNAME.
				if oo, err := options(other); err == nil {
					if b, err := os.ReadFile(oo.Spec.HostnameFile); err == nil {
						o.Spec.Hostname = strings.TrimSpace(string(b))
					}
				}
			}
		default:
			return fmt.Errorf("%s %q: use host, private or container:NAME", ns.flag, ns.mode)
		}
	}
	return nil
}
