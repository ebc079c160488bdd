#!/usr/bin/env bash
# leakcheck.sh snapshot FILE | check FILE
# Records, then compares, what tests could leak: mounts, hull cgroups, hull
# processes, network namespaces, CNI/hull network links, and iptables rules and
# chains (CNI's, hull networks', the kubelet's KUBE-*). check exits 1 on anything new.
set -uo pipefail
snap() {
	echo "## mounts"; awk '{print $5}' /proc/self/mountinfo | sort
	echo "## cgroups"; find /sys/fs/cgroup -maxdepth 4 -type d \( -iname '*hull*' -o -path '*cgrouptest*' \) 2>/dev/null | sort
	echo "## procs"; pgrep -f 'hull-(runtime|monitor)( |$)' | while read -r p; do [ "$p" != "$$" ] && echo "$(cat /proc/$p/cmdline 2>/dev/null | tr '\0' ' ')"; done | sort
	echo "## netns"; ip netns list 2>/dev/null | sort
	# CNI's and hull's networks: bridges, veths, iptables rules.
	echo "## links"; ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^(hull|veth|cni)' | sort
	echo "## iptables"; iptables-save 2>/dev/null | grep -E 'CNI-|hull network|KUBE-' | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' | sort
	echo "## ip6tables"; ip6tables-save 2>/dev/null | grep -E 'KUBE-' | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' | sort
}
case ${1:-} in
snapshot) snap >"$2" ;;
check)
	now=$(mktemp); snap >"$now"
	new=$(diff <(sort "$2") <(sort "$now") | grep '^>' || true)
	rm -f "$now"
	if [ -n "$new" ]; then echo "leak check: left behind after the tests:"; echo "$new"; exit 1; fi
	echo "leak check: nothing left behind" ;;
*) echo "usage: $0 snapshot|check FILE" >&2; exit 2 ;;
esac
