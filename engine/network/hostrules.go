package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// hostRule is one iptables rule hull keeps for a network.
type hostRule struct {
	table, chain string
	spec         []string
}

// hostRules are a HostRules network's rules, Docker's per-network layout:
// its containers' traffic leaving by another interface is masqueraded, and
// FORWARD lets out what comes from the bridge and back in what answers it
// (the firewall plugin's per-address rules, for the whole subnet), which
// matters on hosts whose FORWARD policy is DROP. New connections into the
// subnet come only through portmap's DNAT, as before.
func hostRules(n Network) []hostRule {
	comment := []string{"-m", "comment", "--comment", "hull network " + n.Name}
	with := func(spec ...string) []string { return append(spec, comment...) }
	return []hostRule{
		{"nat", "POSTROUTING", with("-s", n.Subnet, "!", "-o", n.Bridge, "-j", "MASQUERADE")},
		{"filter", "FORWARD", with("-i", n.Bridge, "-s", n.Subnet, "-j", "ACCEPT")},
		{"filter", "FORWARD", with("-o", n.Bridge, "-d", n.Subnet, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")},
	}
}

// iptables runs iptables, waiting for the xtables lock as the CNI plugins do.
func iptables(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "iptables", append([]string{"-w", "5"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return &iptablesError{args: args, msg: msg, err: err}
	}
	return nil
}

type iptablesError struct {
	args []string
	msg  string
	err  error
}

func (e *iptablesError) Error() string {
	return "iptables " + strings.Join(e.args, " ") + ": " + e.msg
}

func (e *iptablesError) Unwrap() error { return e.err }

// notFound reports whether iptables -C/-D failed because the rule (or its
// chain) is not there: exit status 1, unlike usage errors (2) or a missing
// binary.
func notFound(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == 1
}

// ensureHostRules adds those of the network's rules that are missing. A
// check costs one iptables exec per rule; the rules go with a reboot or a
// flush, so they are checked at every setup rather than remembered.
func ensureHostRules(ctx context.Context, n Network) error {
	for _, r := range hostRules(n) {
		err := iptables(ctx, append([]string{"-t", r.table, "-C", r.chain}, r.spec...)...)
		if err == nil {
			continue
		}
		if !notFound(err) {
			return fmt.Errorf("network %q: %w", n.Name, err)
		}
		op := "-A"
		if r.chain == "FORWARD" {
			// Ahead of rules that drop (Docker's DOCKER-ISOLATION, a DROP policy's REJECTs).
			op = "-I"
		}
		if err := iptables(ctx, append([]string{"-t", r.table, op, r.chain}, r.spec...)...); err != nil {
			return fmt.Errorf("network %q: %w", n.Name, err)
		}
	}
	return nil
}

// removeHostRules deletes the network's rules (every copy: a rule added
// twice by a race is deleted twice).
func removeHostRules(ctx context.Context, n Network) error {
	var errs []error
	for _, r := range hostRules(n) {
		for range 8 {
			err := iptables(ctx, append([]string{"-t", r.table, "-D", r.chain}, r.spec...)...)
			if err == nil {
				continue
			}
			if !notFound(err) {
				errs = append(errs, err)
			}
			break
		}
	}
	return errors.Join(errs...)
}

// pluginsFor returns list without portmap when the container publishes no
// ports on it: portmap then has nothing to do but still costs an exec (and
// iptables calls on DEL). ADD and DEL decide alike, from the port mappings
// in the runtime config (DEL gets ADD's from libcni's cache).
func pluginsFor(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *libcni.NetworkConfigList {
	if _, ok := rt.CapabilityArgs["portMappings"]; ok {
		return list
	}
	out := *list
	out.Plugins = nil
	for _, p := range list.Plugins {
		if p.Network.Type != "portmap" {
			out.Plugins = append(out.Plugins, p)
		}
	}
	return &out
}
