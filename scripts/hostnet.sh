# hostnet.sh — sourced by scripts that run hull's (or Podman's) networking
# for real: hostnet_record notes what the host has, hostnet_restore removes
# what was not there before: the hull0 bridge, hull networks' iptables rules,
# the host-wide chains CNI's portmap and firewall plugins create and never
# remove, and the kubelet's KUBE-* chains (its canary and localnet firewall,
# in iptables and ip6tables).

hostnet_record() {
	_had_hull0=$(ip link show hull0 >/dev/null 2>&1 && echo 1 || true)
	_had_cni=$(iptables-save | grep -q CNI- && echo 1 || true)
	_had_hull_rules=$(iptables-save | grep -q 'hull network' && echo 1 || true)
	_had_kube=$( (iptables-save; ip6tables-save) 2>/dev/null | grep -q 'KUBE-' && echo 1 || true)
}

hostnet_restore() {
	[ -n "$_had_hull0" ] || ip link del hull0 2>/dev/null || true
	if [ -z "$_had_hull_rules" ]; then
		# A network's masquerade and FORWARD rules (one set per network).
		for t in nat filter; do
			iptables -t "$t" -S | grep -- '--comment "hull network ' | while read -r rule; do
				eval "iptables -t $t ${rule/#-A/-D}" || true
			done
		done
	fi
	if [ -z "$_had_cni" ]; then
		iptables -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null || true
		iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null || true
		iptables -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null || true
		iptables -t nat -D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ 2>/dev/null || true
		for tc in nat:CNI-HOSTPORT-DNAT nat:CNI-HOSTPORT-MASQ nat:CNI-HOSTPORT-SETMARK filter:CNI-FORWARD filter:CNI-ADMIN; do
			iptables -t "${tc%%:*}" -F "${tc#*:}" 2>/dev/null || true
			iptables -t "${tc%%:*}" -X "${tc#*:}" 2>/dev/null || true
		done
	fi
	if [ -z "$_had_kube" ]; then
		for ipt in iptables ip6tables; do
			for t in filter nat mangle; do
				$ipt -t "$t" -S 2>/dev/null | grep -E '^-A .*KUBE-' | while read -r rule; do
					eval "$ipt -t $t ${rule/#-A/-D}" 2>/dev/null || true
				done
				$ipt -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}' | while read -r ch; do
					$ipt -t "$t" -F "$ch" 2>/dev/null || true
					$ipt -t "$t" -X "$ch" 2>/dev/null || true
				done
			done
		done
	fi
}
