# shellcheck shell=bash
# podman.sh — Podman (Debian's 4.3) driving $RUNTIME (sourced by scripts/dropin.sh).
#
# Podman runs with a private configuration: storage (overlay), runroot, tmp_dir,
# file locks, file events log and network config dir all live under $PM; the
# containers' cgroups live under /$CGP (--cgroup-parent; cgroupfs manager), where
# Podman also puts conmon ($CGP/conmon). No network: --network none.
#
# The runtime's own state is in its default --root (/run/hull-runtime for
# hull-runtime, /run/runc for runc): Podman 4.3 does not pass --runtime-flag to
# `podman container cleanup` (the exit command conmon runs), so a private
# --runtime-flag root=... would make the cleanup's `delete` miss the container
# and leak its state and cgroup. The leak check verifies that no state of the
# containers made here is left in that root.

podman_setup() {
	PM=$WORK/podman
	mkdir -p "$PM"/{root,runroot,tmp,net}
	# Lowered ulimits: Podman's defaults (nofile 1048576, nproc 1048576 as root)
	# need CAP_SYS_RESOURCE, and Podman itself drops its own nproc to 32768.
	cat >"$PM/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PM/events.log"
tmp_dir = "$PM/tmp"
static_dir = "$PM/root/libpod"
volume_path = "$PM/root/volumes"
lock_type = "file"
runtime = "dropin"

[engine.runtimes]
dropin = ["$RUNTIME"]

[network]
network_config_dir = "$PM/net"
EOF
	cat >"$PM/storage.conf" <<EOF
[storage]
driver = "${DROPIN_PODMAN_DRIVER:-overlay}"
graphroot = "$PM/root"
runroot = "$PM/runroot"
EOF
	echo 'unqualified-search-registries = []' >"$PM/registries.conf"
	echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$PM/policy.json"
	export CONTAINERS_CONF=$PM/containers.conf
	export CONTAINERS_STORAGE_CONF=$PM/storage.conf
	export CONTAINERS_REGISTRIES_CONF=$PM/registries.conf
	PODMAN=(podman --runtime "$RUNTIME")
	PODMAN_S="podman --runtime $RUNTIME" # for script(1) command lines
	RUNARGS=(--network none --cgroup-parent="/$CGP")
	RUNARGS_S="--network none --cgroup-parent=/$CGP"
	IMG=localhost/dropin/busybox:latest
	PODMAN_IDS=()
}

# cg_path CONTROLLER RELPATH : the directory of a cgroup (v1 controller, or v2)
cg_dir() {
	if [[ -d /sys/fs/cgroup/$1 ]]; then echo "/sys/fs/cgroup/$1/$2"; else echo "/sys/fs/cgroup/$2"; fi
}

# frozen RELPATH : prints FROZEN or THAWED for a container cgroup
frozen() {
	local d
	d=$(cg_dir freezer "$1")
	if [[ -f $d/freezer.state ]]; then cat "$d/freezer.state"; elif [[ -f $d/cgroup.freeze ]]; then
		[[ $(cat "$d/cgroup.freeze") == 1 ]] && echo FROZEN || echo THAWED
	else echo "no-cgroup:$d"; fi
}

pm_status() { "${PODMAN[@]}" inspect -f '{{.State.Status}}' "$1" 2>&1; }

podman_tests() {
	section "podman $(podman --version | awk '{print $3}') with $RUNTIME"
	podman_setup

	t_run "${PODMAN[@]}" info --format '{{.Host.OCIRuntime.Path}} {{.Host.CgroupManager}} {{.Host.EventLogger}} {{.Store.GraphRoot}}'
	expect podman.info-private-config rc=0 "eq=$RUNTIME cgroupfs file $PM/root"

	t_run "${PODMAN[@]}" pull --signature-policy "$PM/policy.json" "oci:$WORK/image/oci:latest"
	expect podman.pull-oci-layout rc=0
	local imgid=${OUT##*$'\n'}
	t_run "${PODMAN[@]}" tag "$imgid" "$IMG"
	expect podman.tag rc=0

	# --- run --rm: output and exit code
	t_run "${PODMAN[@]}" run --rm "${RUNARGS[@]}" "$IMG" sh -c 'echo hello-$((6*7)); exit 3'
	expect podman.run-rm-output-and-exit-code rc=3 'out=^hello-42$'
	t_run "${PODMAN[@]}" ps -aq
	expect podman.run-rm-removed rc=0 eq=

	t_run "${PODMAN[@]}" run --rm "${RUNARGS[@]}" "$IMG" cat /proc/self/cgroup
	expect podman.run-cgroup-parent rc=0 "out=^[0-9]+:[a-z,_=]*:/$CGP/libpod-[0-9a-f]{64}$"

	t_in 'line-one\nline-two\n' "${PODMAN[@]}" run -i --rm "${RUNARGS[@]}" "$IMG" cat
	expect podman.run-stdin rc=0 $'eq=line-one\nline-two'

	t_run "${PODMAN[@]}" run --rm "${RUNARGS[@]}" --env FOO=bar --workdir /tmp --hostname hulltest "$IMG" \
		sh -c 'echo "$FOO $(pwd) $(hostname)"; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status'
	expect podman.run-env-workdir-hostname-default-seccomp rc=0 'out=^bar /tmp hulltest$' $'out=^Seccomp:\t2$'

	# --- run -d, exec, top, stats, pause/unpause, stop, rm
	t_run "${PODMAN[@]}" run -d --name d1 "${RUNARGS[@]}" "$IMG" \
		sh -c 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.2; done'
	expect podman.run-detached rc=0 'out=^[0-9a-f]{64}$'
	local id=${OUT##*$'\n'}
	PODMAN_IDS+=("$id")
	poll 10 sh -c "${PODMAN_S} logs d1 2>&1 | grep -q ready"
	t_run "${PODMAN[@]}" inspect -f '{{.State.Status}} {{.OCIRuntime}}' d1
	expect podman.detached-running rc=0 "eq=running $RUNTIME"
	t_run "$RUNTIME" state "$id"
	expect podman.detached-runtime-state rc=0 'out="status": "running"'

	t_run "${PODMAN[@]}" exec d1 sh -c 'echo in-exec; tr "\0" " " </proc/1/cmdline; echo; exit 5'
	expect podman.exec-exit-code-and-pidns rc=5 'out=^in-exec$' 'out=^sh -c trap'

	t_run "${PODMAN[@]}" exec -u 65534:65534 -e FOO=bar -w /tmp d1 sh -c 'echo "$(id -u):$(id -g) $FOO $(pwd)"'
	expect podman.exec-user-env-workdir rc=0 'eq=65534:65534 bar /tmp'

	t_in 'from-stdin\n' "${PODMAN[@]}" exec -i d1 cat
	expect podman.exec-stdin rc=0 'eq=from-stdin'

	t_tty '' "$PODMAN_S exec -it d1 sh -c 'tty; stty size; exit 4'"
	expect podman.exec-tty rc=4 'out=^/dev/pts/[0-9]+$' 'out=^33 101$'

	t_run "${PODMAN[@]}" top d1 pid args
	expect podman.top rc=0 'out=^1 +sh -c trap' 'out=sleep 0.2'

	t_run "${PODMAN[@]}" stats --no-stream --format '{{.Name}} {{.PIDs}} {{.MemUsage}}' d1
	expect podman.stats-no-stream rc=0 'out=^d1 [1-9][0-9]* [0-9.]+[kMG]?B / '

	local cg="$CGP/libpod-$id"
	t_run "${PODMAN[@]}" pause d1
	expect podman.pause rc=0
	assert podman.pause-state "status $(pm_status d1), freezer $(frozen "$cg")" \
		test "$(pm_status d1) $(frozen "$cg")" = "paused FROZEN"
	t_run "${PODMAN[@]}" unpause d1
	expect podman.unpause rc=0
	assert podman.unpause-state "status $(pm_status d1), freezer $(frozen "$cg")" \
		test "$(pm_status d1) $(frozen "$cg")" = "running THAWED"

	local t0=$SECONDS
	t_run "${PODMAN[@]}" stop -t 20 d1
	expect podman.stop rc=0
	assert podman.stop-by-sigterm "stop took $((SECONDS - t0)) s (20 s is the SIGKILL timeout)" test $((SECONDS - t0)) -lt 15
	t_run "${PODMAN[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' d1
	expect podman.stop-exit-code rc=0 'eq=exited 7'
	t_run "${PODMAN[@]}" logs d1
	expect podman.logs rc=0 'out=^ready$' 'out=^got-term$'
	t_run "${PODMAN[@]}" rm d1
	expect podman.rm rc=0
	t_run "$RUNTIME" state "$id"
	expect podman.rm-runtime-state-gone 'out=(not exist|does not exist|not found)' '!out="status"'
	assert podman.rm-cgroup-gone "cgroup $(cg_dir pids "$cg") still exists" test ! -d "$(cg_dir pids "$cg")"

	# kill: SIGKILL to the init, exit code 128+9
	t_run "${PODMAN[@]}" run -d --name d2 "${RUNARGS[@]}" "$IMG" sleep 1000
	expect podman.run-detached-2 rc=0
	PODMAN_IDS+=("${OUT##*$'\n'}")
	t_run "${PODMAN[@]}" kill -s KILL d2
	expect podman.kill rc=0
	t_run "${PODMAN[@]}" wait d2
	expect podman.kill-exit-code-137 rc=0 eq=137
	t_run "${PODMAN[@]}" rm d2
	expect podman.rm-killed rc=0

	# rm -f of a running container
	t_run "${PODMAN[@]}" run -d --name d3 "${RUNARGS[@]}" "$IMG" sleep 1000
	expect podman.run-detached-3 rc=0
	id=${OUT##*$'\n'}
	PODMAN_IDS+=("$id")
	t_run "${PODMAN[@]}" rm -f -t 0 d3
	expect podman.rm-force-running rc=0
	t_run "${PODMAN[@]}" ps -aq
	expect podman.rm-force-removed rc=0 eq=
	assert podman.rm-force-cgroup-gone "cgroup $(cg_dir pids "$CGP/libpod-$id") still exists" \
		test ! -d "$(cg_dir pids "$CGP/libpod-$id")"

	# --- run -it with a terminal
	t_tty 'tty; stty size; echo sum-$((40+2))\nexit 3\n' "$PODMAN_S run -it --rm $RUNARGS_S $IMG sh"
	expect podman.run-it-tty rc=3 'out=^/dev/pts/0$' 'out=^33 101$' 'out=^sum-42$'

	# --- user, capabilities, read-only rootfs, no-new-privileges, seccomp profile
	t_run "${PODMAN[@]}" run --rm "${RUNARGS[@]}" --user 65534:65534 --cap-drop=all --cap-add=NET_BIND_SERVICE \
		--read-only --security-opt no-new-privileges --security-opt "seccomp=$HERE/seccomp.json" "$IMG" \
		sh -c 'echo "ids $(id -u):$(id -g)"; grep -E "^(CapEff|CapBnd|Seccomp|NoNewPrivs):" /proc/self/status
		       touch /rootfile; touch /tmp/f && echo tmp-writable; mkdir /tmp/dir; exit 0'
	local sec_out=$OUT
	expect podman.security-user rc=0 'out=^ids 65534:65534$'
	expect podman.security-cap-drop rc=0 $'out=^CapEff:\t0000000000000400$' $'out=^CapBnd:\t0000000000000400$'
	expect podman.security-read-only rc=0 'out=touch: /rootfile: Read-only file system' 'out=^tmp-writable$'
	expect podman.security-no-new-privs rc=0 $'out=^NoNewPrivs:\t1$'
	OUT=$sec_out
	expect podman.security-seccomp-profile rc=0 $'out=^Seccomp:\t2$' "out=mkdir: can't create directory '/tmp/dir': Operation not supported"
}

# podman_teardown : remove every container and image, whatever state they are in.
podman_teardown() {
	[[ -n ${PM:-} && -f ${PM}/containers.conf ]] || return 0
	timeout -k 5 60 "${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1
	timeout -k 5 60 "${PODMAN[@]}" rmi -af >/dev/null 2>&1
}
