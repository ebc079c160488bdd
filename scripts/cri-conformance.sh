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

. scripts/cri-harness.sh
harness_init critest

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
harness_seed
echo "== hull serve"
harness_serve critest 10.213.0.0/16 --runtime "${CRITEST_RUNTIME:-hull-runtime}"

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

harness_stop_server
# critest removes every pod it makes: whatever is left, hull did not remove.
left=$("${H[@]}" ps -a --format '{{.Names}} {{.Status}}' 2>/dev/null)
if [ -n "$left" ]; then
	echo "cri-conformance: containers left after critest:"
	echo "$left"
	rc=1
fi
harness_leakcheck
exit $rc
