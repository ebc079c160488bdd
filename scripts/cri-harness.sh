# cri-harness.sh — sourced by the scripts that drive `hull serve` as a CRI
# client would (cri-conformance.sh, kubelet-e2e.sh). From the repository
# root, after `shared` is set:
#
#   harness_init NAME     work dir, cgroup parent, leak-check snapshot, host
#                         network record; H=(bin/hull with private storage)
#   harness_seed          ../shared/conformance/seed-images.sh on a free
#                         loopback port, reached through registry mirrors
#                         (registry.k8s.io, k8s.gcr.io, gcr.io) so images keep
#                         their real names
#   harness_serve NET SUBNET [serve flags]
#                         a hull network, then `hull serve` on $sock ($srv)
#   harness_stop_server   SIGTERM, and a failure if it does not exit 0 or
#                         leaves its socket
#   harness_cleanup       containers, network, mounts, cgroups, host rules,
#                         registry, work dir; also the EXIT trap
#   harness_leakcheck     the machine-wide leak check against the snapshot
# Failures set rc=1.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

harness_init() {
	rc=0
	work=$(mktemp -d "/var/tmp/hull-$1.XXXXXX")
	chmod 755 "$work"
	cg=/hull-$1-$$
	snapf=$(mktemp)
	scripts/leakcheck.sh snapshot "$snapf"
	. scripts/hostnet.sh
	hostnet_record
	H=(bin/hull --root "$work/root" --runroot "$work/run" --registries-conf "$work/registries.json")
	srv= net= seed_env=()
	trap harness_cleanup EXIT
}

harness_seed() {
	local reg=127.0.0.1:$(free_port)
	seed_env=(REGISTRY_ADDR="$reg" SEED_DIR="$work/seed")
	env "${seed_env[@]}" bash "$shared/conformance/seed-images.sh" start >"$work/seed.log" 2>&1 || {
		tail -20 "$work/seed.log"
		echo "seed-images.sh failed"
		exit 1
	}
	cat >"$work/registries.json" <<EOF
{"mirrors": {"registry.k8s.io": ["http://$reg"], "k8s.gcr.io": ["http://$reg"], "gcr.io": ["http://$reg"]}}
EOF
}

harness_serve() {
	net=$1
	"${H[@]}" network create --subnet "$2" "$net" >/dev/null || exit 1
	shift 2
	sock=$work/run/cri.sock
	PATH=$PWD/bin:$PATH "${H[@]}" serve --listen "$sock" --sandbox-image registry.k8s.io/pause:sandbox \
		--network "$net" --cgroup-parent "$cg" "$@" 2>"$work/serve.log" &
	srv=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
	[ -S "$sock" ] || { cat "$work/serve.log"; echo "hull serve did not listen"; exit 1; }
}

harness_stop_server() {
	kill -TERM "$srv" 2>/dev/null
	wait "$srv"
	local code=$?
	srv=
	if [ $code != 0 ]; then
		echo "hull serve exited $code after SIGTERM:"
		tail -20 "$work/serve.log"
		rc=1
	fi
	[ ! -e "$sock" ] || { echo "hull serve left its socket behind"; rc=1; }
}

harness_cleanup() {
	[ -z "$srv" ] || { kill -TERM "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; srv=; }
	# What failed specs may have left: their pods, then the network.
	for id in $("${H[@]}" ps -aq --no-trunc 2>/dev/null); do "${H[@]}" rm -f -v "$id" >/dev/null 2>&1 || true; done
	[ -z "$net" ] || "${H[@]}" network rm "$net" >/dev/null 2>&1 || true
	grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r -u | xargs -r -n1 umount -l 2>/dev/null || true
	for d in /sys/fs/cgroup/*"$cg" /sys/fs/cgroup"$cg"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
	hostnet_restore
	[ ${#seed_env[@]} -eq 0 ] || env "${seed_env[@]}" bash "$shared/conformance/seed-images.sh" stop >/dev/null 2>&1
	seed_env=()
	rm -rf "$work"
}

harness_leakcheck() {
	harness_cleanup
	trap - EXIT
	scripts/leakcheck.sh check "$snapf" || rc=1
	rm -f "$snapf"
}
