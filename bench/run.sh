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
P=(podman --root "$work/podman" --runroot "$work/podrun" --runtime runc --cgroup-manager cgroupfs --events-backend none)
cleanup() {
	"${H[@]}" container prune -f >/dev/null 2>&1 || true
	for id in $("${H[@]}" ps -aq --no-trunc 2>/dev/null); do "${H[@]}" rm -f "$id" >/dev/null 2>&1 || true; done
	"${P[@]}" rm -af >/dev/null 2>&1 || true
	"${P[@]}" system reset -f >/dev/null 2>&1 || true
	grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$work"
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
	-n podman "${P[*]} run --rm localhost/bench:1 true" 2>&1 | grep -E "Time|Range|faster|±" || true
echo "== idle monitor RSS (a sleep 1000 container each)"
"${H[@]}" run -d --name idle localhost/bench:1 sleep 1000 >/dev/null
"${P[@]}" run -d --name idle localhost/bench:1 sleep 1000 >/dev/null
sleep 2
mpid=$(cat "$work/hullrun/containers/$("${H[@]}" inspect --format '{{.ID}}' idle)/monitor.pid")
cpid=$(pgrep -f "conmon.*$work/podman" | head -1)
echo "hull-monitor: $(grep VmRSS /proc/$mpid/status | awk '{print $2, $3}')"
echo "conmon:       $(grep VmRSS /proc/$cpid/status | awk '{print $2, $3}')"
