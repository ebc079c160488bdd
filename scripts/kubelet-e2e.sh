#!/usr/bin/env bash
# kubelet-e2e.sh — a real kubelet runs a pod on `hull serve`.
#
# The kubelet is built from the Go module proxy (k8s.io/kubernetes, its
# staging modules pinned to the matching v0.x releases) and cached in
# .cache/. It runs standalone, without an API server, from a static pod
# manifest. The pod has an init container filling an emptyDir, a server
# publishing a host port, and a sidecar with liveness and readiness probes.
# The script checks:
#   1. the init container's file is served on the host port;
#   2. the sidecar logs in the CRI format where the kubelet reads;
#   3. the server killed behind the kubelet's back is restarted;
#   4. the pod removed from the manifest directory leaves nothing.
# Images come from ../shared/conformance/seed-images.sh behind registry
# mirrors. Storage, network and cgroup parent are private; the machine-wide
# leak check runs at the end.
#
# Environment: KUBELET_VERSION (default v1.37.2).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export PATH=$PATH:/usr/local/go/bin
[ "$(id -u)" = 0 ] || { echo "kubelet-e2e.sh: run as root"; exit 1; }
shared=${SHARED_DIR:-$repo/../shared}
version=${KUBELET_VERSION:-v1.37.2}
make -s build || exit 1

fail() { echo "kubelet-e2e: FAIL: $*"; rc=1; }
. scripts/cri-harness.sh
harness_init kubelet
# The kubelet's hard-coded paths, removed afterwards unless they were there.
had_varlib=$([ -e /var/lib/kubelet ] && echo 1 || true)
had_libexec=$([ -e /usr/libexec/kubernetes ] && echo 1 || true)
kubelet_pid=
cleanup() {
	[ -z "$kubelet_pid" ] || { kill -TERM "$kubelet_pid" 2>/dev/null; wait "$kubelet_pid" 2>/dev/null; kubelet_pid=; }
	harness_cleanup
	[ -n "$had_varlib" ] || rm -rf /var/lib/kubelet
	[ -n "$had_libexec" ] || rm -rf /usr/libexec/kubernetes
}
trap cleanup EXIT

# The kubelet, built once per version.
kubelet=$repo/.cache/kubelet-$version
if [ ! -x "$kubelet" ]; then
	echo "== building kubelet $version (Go module proxy; a few minutes)"
	mod=$work/kubelet-mod
	mkdir -p "$mod" "$repo/.cache"
	(
		cd "$mod" || exit 1
		gomod=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
		[ -f "$gomod" ] || exit 1
		# k8s.io/kubernetes replaces its staging modules with ./staging paths,
		# which its module zip lacks: pin each to its release instead.
		staging=v0.${version#v1.}
		{
			printf 'module kubeletbuild\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$version"
			grep -E '^\s+k8s.io/.* => ./staging' "$gomod" | awk -v v="$staging" '{print "\t"$1" => "$1" "v}'
			printf ')\n'
		} >go.mod
		printf 'package tools\n\nimport _ "k8s.io/kubernetes/cmd/kubelet/app"\n' >tools.go
		GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 &&
			GOFLAGS=-mod=mod go build -o "$kubelet.tmp" k8s.io/kubernetes/cmd/kubelet
	) || { echo "kubelet-e2e: building the kubelet failed"; exit 1; }
	mv "$kubelet.tmp" "$kubelet"
fi

echo "== seeding images"
harness_seed
echo "== hull serve"
harness_serve kube 10.214.0.0/16

echo "== kubelet $version, standalone, with a static pod"
port=$(free_port)
mkdir -p "$work/manifests" "$work/logs"
cat >"$work/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
failCgroupV1: false
staticPodPath: $work/manifests
podLogsDir: $work/logs
volumePluginDir: $work/volume-plugins
containerRuntimeEndpoint: unix://$sock
imageServiceEndpoint: unix://$sock
address: 127.0.0.1
port: $(free_port)
healthzPort: $(free_port)
readOnlyPort: 0
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
syncFrequency: 5s
fileCheckFrequency: 2s
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
localStorageCapacityIsolation: false
EOF
"$kubelet" --config "$work/kubelet.yaml" --root-dir "$work/kubelet" --cert-dir "$work/pki" \
	--hostname-override hull-node --v=2 >"$work/kubelet.log" 2>&1 &
kubelet_pid=$!
cat >"$work/manifests/web.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  terminationGracePeriodSeconds: 2
  volumes: [{name: work, emptyDir: {}}]
  initContainers:
  - name: init
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["sh", "-c", "echo made-by-init > /work/msg"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: server
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["sh", "-c", "while true; do nc -l -p 8080 < /work/msg; done"]
    ports: [{containerPort: 8080, hostPort: $port}]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: sidecar
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["sh", "-c", "while true; do echo tick; sleep 1; done"]
    livenessProbe: {exec: {command: ["true"]}, periodSeconds: 2}
    readinessProbe: {exec: {command: ["sh", "-c", "nc 127.0.0.1 8080 </dev/null | grep -q made-by-init"]}, periodSeconds: 2}
EOF
fetch() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; cat <&3" 2>/dev/null; }
# waitfor SECONDS CMD...: true once CMD succeeds.
waitfor() {
	local end=$(($(date +%s) + $1))
	shift
	while [ "$(date +%s)" -lt "$end" ]; do "$@" && return 0; sleep 1; done
	return 1
}
start=$(date +%s)

served() { [ "$(fetch)" = made-by-init ]; }
if waitfor 120 served; then
	echo "ok   the init container's file is served on host port $port ($(($(date +%s) - start)) s after the manifest)"
else
	fail "nothing served on host port $port"
fi
ticks() { grep -qs ' stdout F tick$' "$work"/logs/default_web-hull-node_*/sidecar/0.log; }
if waitfor 30 ticks; then
	echo "ok   the sidecar logs in the CRI format in podLogsDir"
else
	fail "no CRI log of the sidecar in $work/logs"
fi
grep -E 'Probe failed' "$work/kubelet.log" | grep -v 'readiness' && fail "a liveness probe failed"

# Kill the server behind the kubelet's back: it must restart it.
server=$("${H[@]}" ps --format '{{.Names}}' | grep '^k8s_server_web' | head -1)
if [ -z "$server" ]; then
	fail "no server container in hull ps"
else
	"${H[@]}" kill "$server" >/dev/null
	restarted() { [ "$("${H[@]}" ps --format '{{.Names}}' | grep -c '^k8s_server_web.*_1$')" = 1 ] && served; }
	if waitfor 60 restarted; then
		echo "ok   the killed server was restarted by the kubelet (attempt 1) and serves again"
	else
		fail "the killed server was not restarted"
		"${H[@]}" ps -a
	fi
fi

rm "$work/manifests/web.yaml"
gone() { [ -z "$("${H[@]}" ps -aq)" ]; }
if waitfor 60 gone; then
	echo "ok   the pod removed from the manifests leaves no container"
else
	fail "containers left after the pod was removed:"
	"${H[@]}" ps -a
fi

if [ $rc != 0 ]; then
	echo "--- kubelet log (errors)"
	grep -E '^E' "$work/kubelet.log" | tail -30
	echo "--- hull serve log"
	tail -30 "$work/serve.log"
fi
kill -TERM "$kubelet_pid"
wait "$kubelet_pid" 2>/dev/null
kubelet_pid=
harness_stop_server
echo "kubelet-e2e: kubelet $version: $([ $rc = 0 ] && echo passed || echo FAILED) in $(($(date +%s) - start)) s"
cleanup
harness_leakcheck
exit $rc
