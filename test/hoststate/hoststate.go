// Package hoststate puts the host back as black-box tests found it after
// they ran hull's networking for real.
package hoststate

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Record records what tests change on the host as a side effect of real
// use (the default network's bridge, the host-wide CNI iptables chains,
// ip_forward, the tests' cgroupParent) and returns a func that undoes what
// was not there before, and fails if any of it stays.
func Record(cgroupParent string) func() error {
	hadBridge := exec.Command("ip", "link", "show", "hull0").Run() == nil
	before, _ := exec.Command("iptables-save").Output()
	hadCNI := bytes.Contains(before, []byte("CNI-"))
	fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return func() error {
		if !hadBridge {
			_ = exec.Command("ip", "link", "del", "hull0").Run()
		}
		if !hadCNI {
			for _, c := range [][]string{
				{"-t", "nat", "-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
				{"-t", "nat", "-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
				{"-t", "nat", "-D", "POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"},
				{"-D", "FORWARD", "-m", "comment", "--comment", "CNI firewall plugin rules", "-j", "CNI-FORWARD"},
			} {
				_ = exec.Command("iptables", c...).Run()
			}
			for _, t := range []struct{ table, chain string }{{"nat", "CNI-HOSTPORT-DNAT"}, {"nat", "CNI-HOSTPORT-MASQ"}, {"nat", "CNI-HOSTPORT-SETMARK"}, {"filter", "CNI-FORWARD"}, {"filter", "CNI-ADMIN"}} {
				_ = exec.Command("iptables", "-t", t.table, "-F", t.chain).Run()
				_ = exec.Command("iptables", "-t", t.table, "-X", t.chain).Run()
			}
		}
		if len(fwd) > 0 {
			_ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", fwd, 0o644)
		}
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroupParent)
		dirs = append(dirs, "/sys/fs/cgroup"+cgroupParent)
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("cgroup %s: %w", d, err)
			}
		}
		// The networks' own rules (engine/network/hostrules.go) stay while
		// a network exists, as Docker's do: the default network's go here.
		now, _ := exec.Command("iptables-save").Output()
		for _, r := range newHullRules(before, now) {
			_ = exec.Command("iptables", r...).Run()
		}
		after, _ := exec.Command("iptables-save").Output()
		if len(newHullRules(before, after)) > 0 {
			return fmt.Errorf("hull network rules left: %q", newHullRules(before, after))
		}
		if !hadCNI && bytes.Contains(after, []byte("CNI-")) {
			return fmt.Errorf("CNI iptables rules left: %s", after)
		}
		return nil
	}
}

// newHullRules returns, as iptables -D arguments, the rules of hull's
// networks in the iptables-save output now that were not in before.
func newHullRules(before, now []byte) [][]string {
	had := map[string]bool{}
	for _, l := range strings.Split(string(before), "\n") {
		had[l] = true
	}
	var out [][]string
	table := ""
	for _, l := range strings.Split(string(now), "\n") {
		if strings.HasPrefix(l, "*") {
			table = l[1:]
		}
		if !strings.HasPrefix(l, "-A ") || had[l] || !strings.Contains(l, `--comment "hull network `) {
			continue
		}
		// Rules hull writes have no quoted words but the comment.
		pre, rest, _ := strings.Cut(l[3:], `"`)
		comment, post, _ := strings.Cut(rest, `"`)
		args := append([]string{"-t", table, "-D"}, strings.Fields(pre)...)
		args = append(args, comment)
		out = append(out, append(args, strings.Fields(post)...))
	}
	return out
}
