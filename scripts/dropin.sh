#!/usr/bin/env bash
# dropin.sh — hull-runtime as a drop-in for runc under Podman 4.3 and containerd 1.6
# (Debian 12's packages), with everything private and cleaned up, even on failure.
#
# Usage: scripts/dropin.sh [podman] [containerd]        (default: both)
#   DROPIN_RUNTIME=/usr/sbin/runc scripts/dropin.sh     the same checks with another runtime
#   DROPIN_TMPDIR   where the work dir goes (default /tmp)
#   DROPIN_TIMEOUT  seconds each command may take (default 30)
#   DROPIN_KEEP=1   keep the work dir (configs, logs) after the run
#
# Each check prints "ok   NAME" or "FAIL NAME: why" with the command, its exit
# status and output; the last line is "N passed, N failed"; the exit status is
# non-zero when any check failed. After the tests, the leak checks look for
# mounts, processes, cgroups, runtime state and shim sockets left behind; then
# whatever is left is removed anyway.
#
# Needs (Debian): podman conmon containerd umoci busybox-static (installed here
# when missing), and root.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
REPO=$PWD
HERE=$REPO/test/dropin
[[ $(id -u) == 0 ]] || {
	echo "dropin.sh: run as root (it starts containers through Podman and containerd)"
	exit 1
}
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
# shellcheck source=test/dropin/lib.sh
source "$HERE/lib.sh"
# shellcheck source=test/dropin/image.sh
source "$HERE/image.sh"
# shellcheck source=test/dropin/podman.sh
source "$HERE/podman.sh"
# shellcheck source=test/dropin/containerd.sh
source "$HERE/containerd.sh"

sections=("$@")
((${#sections[@]})) || sections=(podman containerd)
for s in "${sections[@]}"; do
	[[ $s == podman || $s == containerd ]] || {
		echo "usage: $0 [podman] [containerd]" >&2
		exit 2
	}
done

# --- packages
pkgs=(podman conmon containerd umoci busybox-static)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
	echo "dropin.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq &&
		apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		{
			echo "dropin.sh: could not install ${missing[*]}"
			exit 1
		}
fi

# --- the runtime under test
if [[ -n ${DROPIN_RUNTIME:-} ]]; then
	RUNTIME=$(readlink -f "$DROPIN_RUNTIME")
else
	make -s bin/hull-runtime || {
		echo "FAIL build: make bin/hull-runtime failed"
		echo "0 passed, 1 failed"
		exit 1
	}
	RUNTIME=$REPO/bin/hull-runtime
fi
[[ -x $RUNTIME ]] || {
	echo "dropin.sh: $RUNTIME is not executable"
	exit 1
}

# --- private work dir and cgroup parent; the same recognisable name for both
ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
CGP=hull-dropin-$ID
WORK=${DROPIN_TMPDIR:-/tmp}/$CGP
mkdir -m 0700 "$WORK" || exit 1
T_START=$SECONDS
PODMAN_IDS=()
CTR_IDS=()

# Pids of processes of ours still alive: in our cgroups, or naming the work dir.
our_pids() {
	local f p
	for f in /sys/fs/cgroup/*/"$CGP" /sys/fs/cgroup/"$CGP"; do
		[[ -d $f ]] && find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null
	done
	for p in /proc/[0-9]*; do
		[[ ${p#/proc/} == "$$" || ${p#/proc/} == "$BASHPID" ]] && continue
		{ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$WORK" && echo "${p#/proc/}"
	done
}

# Container cgroups left under /$CGP (Podman's own $CGP/conmon is not one).
our_cgroups() {
	find /sys/fs/cgroup -maxdepth 3 -mindepth 2 -type d -path "*/$CGP/*" ! -name conmon 2>/dev/null
}

leak_checks() {
	section "leaks"
	local m p c s st
	m=$(grep -F -- "$WORK" /proc/self/mountinfo)
	OUT=$m CMD="grep -F $WORK /proc/self/mountinfo" RC=
	[[ -z $m ]] && pass leak.mounts || fail leak.mounts "mounts left under $WORK"
	poll 10 test -z "$(our_pids)" # podman's `container cleanup` may still be exiting
	p=$(our_pids | sort -u)
	OUT=$(for x in $p; do echo "$x $({ tr '\0' ' ' <"/proc/$x/cmdline"; } 2>/dev/null)"; done) CMD="processes in /$CGP or naming $WORK"
	[[ -z $p ]] && pass leak.processes || fail leak.processes "processes left"
	c=$(our_cgroups)
	OUT=$c CMD="find /sys/fs/cgroup -maxdepth 3 -path '*/$CGP/*' ! -name conmon"
	[[ -z $c ]] && pass leak.cgroups || fail leak.cgroups "container cgroups left"
	st=""
	for x in "${PODMAN_IDS[@]}"; do
		"$RUNTIME" state "$x" >/dev/null 2>&1 && st+="$RUNTIME state $x: still exists"$'\n'
	done
	[[ -n ${CD:-} ]] && st+=$(find "$CD/runtime-root" "$CD/v1-root" -mindepth 2 -maxdepth 2 2>/dev/null)
	OUT=$st CMD="runtime state of podman's containers; ${CD:-containerd}/{runtime-root,v1-root}/$CGP/*"
	[[ -z $st ]] && pass leak.runtime-state || fail leak.runtime-state "runtime state left"
	s=""
	if [[ -n ${CD:-} ]]; then
		for x in $(shim_sockets); do [[ -e $x ]] && s+="$x"$'\n'; done
	fi
	OUT=$s CMD="shim v2 sockets of our containers in /run/containerd/s"
	[[ -z $s ]] && pass leak.shim-sockets || fail leak.shim-sockets "shim sockets left"
}

# Remove whatever is left, without judging: processes (by pid), mounts, cgroups.
force_cleanup() {
	local x d
	for _ in 1 2 3; do
		x=$(our_pids | sort -u)
		[[ -z $x ]] && break
		# shellcheck disable=SC2086
		kill -KILL $x 2>/dev/null
		sleep 0.3
	done
	for x in "${PODMAN_IDS[@]}"; do "$RUNTIME" delete --force "$x" >/dev/null 2>&1; done
	for _ in 1 2 3; do
		x=$(awk -v w="$WORK" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r)
		[[ -z $x ]] && break
		for d in $x; do umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null; done
	done
	for d in /sys/fs/cgroup/*/"$CGP" /sys/fs/cgroup/"$CGP"; do
		[[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	if [[ -n ${CD:-} ]]; then
		for x in $(shim_sockets); do rm -f "$x"; done
	fi
	if [[ ${DROPIN_KEEP:-0} == 1 ]]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}

FINISHED=0
finish() {
	local rc=$?
	trap - EXIT INT TERM
	((FINISHED)) || echo "dropin.sh: interrupted (status $rc); cleaning up"
	podman_teardown
	containerd_teardown
	leak_checks
	force_cleanup
	echo "== runtime $RUNTIME; wall time $((SECONDS - T_START)) s; work dir $WORK, cgroup parent /$CGP"
	((FAIL)) && echo "failed: ${FAILED[*]}"
	((FINISHED)) || FAIL=$((FAIL + 1))
	echo "$PASS passed, $FAIL failed"
	((FAIL == 0))
	exit $?
}
trap finish EXIT
trap 'exit 130' INT TERM

echo "== runtime: $RUNTIME ($("$RUNTIME" --version 2>&1 | head -1)); work dir $WORK; cgroup parent /$CGP"
mkdir -p "$WORK/image"
if build_image "$WORK/image" >"$WORK/image.log" 2>&1; then
	pass image.busybox-oci-layout
	for s in "${sections[@]}"; do "${s}_tests"; done
else
	OUT=$(tail -20 "$WORK/image.log") CMD="build_image $WORK/image" RC=1
	fail image.busybox-oci-layout "could not build the busybox image"
fi
FINISHED=1
