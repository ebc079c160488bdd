#!/usr/bin/env bash
# cri-conformance.sh — critest, cri-tools' CRI validation suite, against
# `hull serve`: the kubelet's view of hull (pods, containers, images,
# streaming, stats, security contexts, mounts, networking).
#
# critest's images come from ../shared/conformance/seed-images.sh, served by
# Debian's docker-registry on a free loopback port and reached through
# registry mirrors (registry.k8s.io, k8s.gcr.io, gcr.io), so the images keep
# their real names (critest's --registry-prefix drops tags). critest is built
# from the Go module proxy once and cached in .cache/. The server gets a
# private --root/--runroot, network and cgroup parent; afterwards it is
# stopped and the machine is checked for leaks (scripts/leakcheck.sh).
#
# Environment:
#   CRITEST_VERSION  cri-tools version (default v1.37.0)
#   CRITEST_RUNTIME  OCI runtime of the pods (default hull-runtime)
# Skips: test/conformance/critest-skips.txt, "PATTERN | reason" per line.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export PATH=$PATH:/usr/local/go/bin
[ "$(id -u)" = 0 ] || { echo "cri-conformance.sh: run as root"; exit 1; }
shared=${SHARED_DIR:-$repo/../shared}
version=${CRITEST_VERSION:-v1.37.0}
make -s build || exit 1

work=$(mktemp -d /var/tmp/hull-critest.XXXXXX)
chmod 755 "$work"
cg=/hull-critest-$$
snapf=$(mktemp)
scripts/leakcheck.sh snapshot "$snapf"
. scripts/hostnet.sh
hostnet_record
H=(bin/hull --root "$work/root" --runroot "$work/run" --registries-conf "$work/registries.json")
srv=
seed_env=()
cleanup() {
	if [ -n "$srv" ]; then
		kill -TERM "$srv" 2>/dev/null
		wait "$srv" 2>/dev/null
	fi
	# What critest's failing specs may have left: their pods, then the network.
	for id in $("${H[@]}" ps -aq --no-trunc 2>/dev/null); do "${H[@]}" rm -f -v "$id" >/dev/null 2>&1 || true; done
	"${H[@]}" network rm critest >/dev/null 2>&1 || true
	grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	for d in /sys/fs/cgroup/*"$cg" /sys/fs/cgroup"$cg"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
	hostnet_restore
	[ ${#seed_env[@]} -eq 0 ] || env "${seed_env[@]}" bash "$shared/conformance/seed-images.sh" stop >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

# critest, built once per version.
critest=$repo/.cache/critest-$version
if [ ! -x "$critest" ]; then
	echo "== building critest $version (Go module proxy)"
	mkdir -p "$work/critest-mod" "$repo/.cache"
	(
		cd "$work/critest-mod" &&
			printf 'module critestbuild\n\ngo 1.26\n' >go.mod &&
			printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/cri-tools/cmd/critest"\n' >tools.go &&
			GOFLAGS=-mod=mod go get "sigs.k8s.io/cri-tools@$version" >/dev/null &&
			GOFLAGS=-mod=mod go test -c -o "$critest.tmp" sigs.k8s.io/cri-tools/cmd/critest
	) || { echo "cri-conformance: building critest failed"; exit 1; }
	mv "$critest.tmp" "$critest"
fi

echo "== seeding critest's images"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
seed_env=(REGISTRY_ADDR="$reg" SEED_DIR="$work/seed")
env "${seed_env[@]}" bash "$shared/conformance/seed-images.sh" start >"$work/seed.log" 2>&1 || {
	tail -20 "$work/seed.log"
	echo "cri-conformance: seed-images.sh failed"
	exit 1
}
cat >"$work/registries.json" <<EOF
{"mirrors": {"registry.k8s.io": ["http://$reg"], "k8s.gcr.io": ["http://$reg"], "gcr.io": ["http://$reg"]}}
EOF

echo "== hull serve"
"${H[@]}" network create --subnet 10.213.0.0/16 critest >/dev/null || exit 1
sock=$work/run/cri.sock
PATH=$repo/bin:$PATH "${H[@]}" serve --listen "$sock" --sandbox-image registry.k8s.io/pause:sandbox \
	--network critest --cgroup-parent "$cg" --runtime "${CRITEST_RUNTIME:-hull-runtime}" 2>"$work/serve.log" &
srv=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { cat "$work/serve.log"; echo "cri-conformance: hull serve did not listen"; exit 1; }

skip=$(grep -v '^#' test/conformance/critest-skips.txt | sed 's/ *|.*//' | grep -v '^$' | paste -sd'|')
echo "== critest $version (skipped by the list: $skip)"
start=$(date +%s)
(cd "$work" && "$critest" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" \
	--ginkgo.skip="$skip" --ginkgo.no-color --ginkgo.timeout=40m >"$work/critest.log" 2>&1)
rc=$?
grep -E '^\s+\[FAIL\]' "$work/critest.log"
if [ $rc != 0 ]; then
	# The failures in full, for the log.
	awk '/^• \[FAILED\]/,/^------------------------------/' "$work/critest.log" | head -400
fi
summary=$(grep -E '^(SUCCESS|FAIL)! --' "$work/critest.log" | tail -1)
echo "critest $version: ${summary:-no summary (exit $rc)}; wall time $(($(date +%s) - start)) s"

kill -TERM "$srv" 2>/dev/null
wait "$srv" 2>/dev/null
srv_rc=$?
srv=
if [ $srv_rc != 0 ]; then
	echo "cri-conformance: hull serve exited $srv_rc after SIGTERM:"
	tail -20 "$work/serve.log"
	rc=1
fi
[ ! -e "$sock" ] || { echo "cri-conformance: the socket was left behind"; rc=1; }
# critest removes every pod it makes: whatever is left, hull did not remove.
left=$("${H[@]}" ps -a --format '{{.Names}} {{.Status}}' 2>/dev/null)
if [ -n "$left" ]; then
	echo "cri-conformance: containers left after critest:"
	echo "$left"
	rc=1
fi
cleanup
trap - EXIT
scripts/leakcheck.sh check "$snapf" || rc=1
rm -f "$snapf"
exit $rc
