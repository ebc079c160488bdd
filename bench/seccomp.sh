#!/usr/bin/env bash
# seccomp.sh — `run` of /bin/true with Podman's default seccomp profile
# (bench/testdata/podman-default-seccomp.json: Debian's
# /usr/share/containers/seccomp.json in runtime-spec form, rules for amd64
# without capability conditions), hull-runtime beside runc and crun, with
# hyperfine. Engines always send such a profile; compiling it is the largest
# single cost of a start unless it is cached.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "seccomp.sh: run as root"; exit 1; }
command -v hyperfine >/dev/null || { echo "seccomp.sh: apt-get install hyperfine"; exit 1; }
[ -x bin/hull-runtime ] || make build
work=$(mktemp -d /tmp/hull-bench-seccomp.XXXXXX)
trap 'rm -rf "$work"' EXIT
bin/mkbundle "$work/bundle" true >/dev/null
python3 - "$work/bundle/config.json" bench/testdata/podman-default-seccomp.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["ociVersion"] = "1.0.2"  # crun 1.8.1 rejects 1.3.0
c["linux"]["seccomp"] = json.load(open(sys.argv[2]))
json.dump(c, open(sys.argv[1], "w"))
PY
mkdir -p "$work/roots"
exec unshare -m --propagation private bash -c '
umount /sys/fs/cgroup/unified 2>/dev/null || true
mount -t tmpfs tmpfs "$1/roots"
hyperfine -N --warmup 3 --runs "${RUNS:-30}" \
	-n hull-runtime "$2/bin/hull-runtime --root $1/roots/h run -b $1/bundle s" \
	-n runc "/usr/sbin/runc --root $1/roots/r run -b $1/bundle s" \
	-n crun "/usr/bin/crun --root $1/roots/c run -b $1/bundle s"
' bash "$work" "$PWD"
