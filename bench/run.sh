#!/usr/bin/env bash
# bench/run.sh — times `hull run --rm IMAGE true` against `podman run --rm
# IMAGE true` (Podman 4.3 with runc, as Debian ships it) on the same busybox
# image, in one hyperfine run, and prints the idle RSS of hull's monitor next
# to conmon's. Needs root, hyperfine, podman, conmon, runc and busybox-static.
#   bench/run.sh [RUNS]        (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
make -s build
work=$(mktemp -d /var/tmp/hull-bench-run.XXXXXX)
H=(bin/hull --root "$work/hull" --runroot "$work/hullrun")
# Podman's default ulimits (nofile and nproc 1048576 as root) need
# CAP_SYS_RESOURCE, which this machine's bounding set lacks.
cat >"$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
CONF
export CONTAINERS_CONF=$work/containers.conf
P=(podman --root "$work/podman" --runroot "$work/podrun" --runtime runc --cgroup-manager cgroupfs --events-backend none)
# What the two engines' networking leaves on the host, removed afterwards
# unless it was there before.
. scripts/hostnet.sh
hostnet_record
had_podman0=$(ip link show cni-podman0 >/dev/null 2>&1 && echo 1 || true)
cleanup() {
	"${H[@]}" container prune -f >/dev/null 2>&1 || true
	for id in $("${H[@]}" ps -aq --no-trunc 2>/dev/null); do "${H[@]}" rm -f "$id" >/dev/null 2>&1 || true; done
	"${P[@]}" rm -af >/dev/null 2>&1 || true
	"${P[@]}" system reset -f >/dev/null 2>&1 || true
	grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$work"
	[ -n "$had_podman0" ] || ip link del cni-podman0 2>/dev/null || true
	hostnet_restore
}
trap cleanup EXIT
# The same image for both: a busybox rootfs, imported by hull, saved, loaded by podman.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in sh true echo sleep; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
echo 'root:x:0:' >"$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"${H[@]}" import --change 'CMD ["/bin/sh"]' "$work/rootfs.tar" localhost/bench:1 >/dev/null
"${H[@]}" save -o "$work/img.tar" localhost/bench:1
"${P[@]}" load -q -i "$work/img.tar" >/dev/null
echo "== run --rm IMAGE true ($runs runs each, same image, default bridge network for both)"
hyperfine -N --warmup 3 --runs "$runs" \
	-n hull "${H[*]} run --rm localhost/bench:1 true" \
	-n podman "${P[*]} run --rm localhost/bench:1 true" 2>&1 | grep -vE "^ *$|Benchmark [0-9]|⠀" || true
echo "== idle monitor RSS (a sleep 1000 container each)"
"${H[@]}" run -d --name idle localhost/bench:1 sleep 1000 >/dev/null
"${P[@]}" run -d --name idle localhost/bench:1 sleep 1000 >/dev/null
sleep 2
mpid=$(cat "$work/hullrun/containers/$("${H[@]}" inspect --format '{{.ID}}' idle)/monitor.pid")
cpid=$(pgrep -f "conmon.*$work/podman" | head -1)
echo "hull-monitor: $(grep VmRSS /proc/$mpid/status | awk '{print $2, $3}')"
echo "conmon:       $(grep VmRSS /proc/$cpid/status | awk '{print $2, $3}')"
