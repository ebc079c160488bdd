package container

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// moveNetDevices moves linux.netDevices from the host into the container's
// network namespace (the init's), renames them, and keeps their permanent
// IPv4/IPv6 addresses and up state, as runtime-spec asks.
func moveNetDevices(devs map[string]specs.LinuxNetDevice, pid int) error {
	if len(devs) == 0 {
		return nil
	}
	target, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("linux.netDevices: open the container's network namespace: %w", err)
	}
	defer target.Close()
	h, err := netlink.NewHandleAt(target, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("linux.netDevices: netlink in the container's network namespace: %w", err)
	}
	defer h.Close()
	for hostName, d := range devs {
		link, err := netlink.LinkByName(hostName)
		if err != nil {
			return fmt.Errorf("linux.netDevices[%q]: no such device on the host: %w", hostName, err)
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("linux.netDevices[%q]: list addresses: %w", hostName, err)
		}
		up := link.Attrs().Flags&(1<<0) != 0 // net.FlagUp
		if err := netlink.LinkSetNsFd(link, int(target)); err != nil {
			return fmt.Errorf("linux.netDevices[%q]: move into the container: %w", hostName, err)
		}
		moved, err := h.LinkByName(hostName)
		if err != nil {
			return fmt.Errorf("linux.netDevices[%q]: find it in the container: %w", hostName, err)
		}
		if d.Name != "" && d.Name != hostName {
			if err := h.LinkSetName(moved, d.Name); err != nil {
				return fmt.Errorf("linux.netDevices[%q]: rename to %q: %w", hostName, d.Name, err)
			}
		}
		for _, a := range addrs {
			if a.Flags&unix.IFA_F_PERMANENT == 0 || a.IP.IsLinkLocalUnicast() {
				continue
			}
			a.Label = ""
			if err := h.AddrAdd(moved, &a); err != nil {
				return fmt.Errorf("linux.netDevices[%q]: restore address %s: %w", hostName, a.IPNet, err)
			}
		}
		if up {
			if err := h.LinkSetUp(moved); err != nil {
				return fmt.Errorf("linux.netDevices[%q]: set up: %w", hostName, err)
			}
		}
	}
	return nil
}
