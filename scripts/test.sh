#!/usr/bin/env bash
# The whole test suite: go test (unit + integration, real containers as root),
# the leak check, the OCI runtime-tools validation suite, the drop-in suite
# under Podman and containerd, critest and a real kubelet against hull
# serve, and the pure cgroup v2 VM tier.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (integration tests start real containers)"; exit 1; }
export PATH=$PATH:/usr/local/go/bin
export PATH=$PATH:$(go env GOPATH)/bin
# A user with subordinate id ranges, for the rootless newuidmap tests (idempotent).
shared=${SHARED_DIR:-../shared}
if [ -f "$shared/vm/rootless-user.sh" ]; then
	bash "$shared/vm/rootless-user.sh" >/dev/null || echo "warning: rootless-user.sh failed; the newuidmap test will skip"
fi
snapf=$(mktemp)
scripts/leakcheck.sh snapshot "$snapf"
rc=0
echo "== go test ./..."
# One package at a time: several test packages change host-wide state and
# check it afterwards (CNI's iptables chains and bridges, cgroup parents,
# mounts), and would see each other's work if they ran side by side.
go test -p 1 -count=1 -timeout 30m ./... || rc=1
echo "== leak check"
scripts/leakcheck.sh check "$snapf" || rc=1
rm -f "$snapf"
if [ "${SKIP_CONFORMANCE:-0}" != 1 ]; then
	echo "== OCI runtime-tools validation"
	scripts/conformance.sh || rc=1
fi
if [ "${DROPIN_TESTS:-1}" != 0 ]; then
	echo "== drop-in under Podman and containerd (DROPIN_TESTS=0 skips)"
	scripts/dropin.sh || rc=1
fi
if [ "${CRI_TESTS:-1}" != 0 ]; then
	echo "== critest against hull serve (CRI_TESTS=0 skips)"
	scripts/cri-conformance.sh || rc=1
fi
if [ "${KUBELET_TESTS:-1}" != 0 ]; then
	echo "== a real kubelet runs a pod on hull serve (KUBELET_TESTS=0 skips)"
	scripts/kubelet-e2e.sh || rc=1
fi
if [ "${VM_TESTS:-1}" != 0 ]; then
	echo "== tests on pure cgroup v2 (VM; VM_TESTS=0 skips)"
	scripts/vm-test.sh || rc=1
fi
exit $rc
