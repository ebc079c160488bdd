# shellcheck shell=bash
# containerd.sh — a private containerd (Debian's 1.6) driving $RUNTIME through its
# runc shims (sourced by scripts/dropin.sh).
#
# containerd runs in the background with its own config.toml: root, state, the
# gRPC/ttrpc/debug sockets and the opt dir under $CD, the CRI plugin disabled,
# the overlayfs snapshotter. ctr uses namespace $CGP and puts each container in
# cgroup /$CGP/<id> (--cgroup); the runc shim's --root is under $CD (--runc-root),
# IO fifos under $CD/fifo (--fifo-dir).
#
# Two ways to name the runtime binary:
#  - io.containerd.runc.v2 (shim v2), runc options BinaryName + Root, which ctr sets
#    from --runc-binary/--runc-root. In containerd 1.6 a BinaryName in the daemon's
#    config.toml exists only in the CRI plugin's runtime table; ctr's
#    --runtime-config-path sends runtimeoptions.v1.Options, which the 1.6 runc shim
#    rejects ("type with url runtimeoptions.v1.Options: not found").
#  - io.containerd.runtime.v1.linux (the legacy shim v1), whose binary and root
#    come from config.toml: [plugins."io.containerd.runtime.v1.linux"] runtime,
#    runtime_root.
# Shim v2 sockets are at /run/containerd/s/<sha256(address/namespace/id)> in 1.6
# (not configurable); the leak check looks for ours there.

containerd_setup() {
	CD=$WORK/containerd
	mkdir -p "$CD"/{root,state,fifo,runtime-root,v1-root,opt}
	cat >"$CD/config.toml" <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CD/containerd.sock"
[ttrpc]
  address = "$CD/containerd.sock.ttrpc"
[debug]
  address = "$CD/debug.sock"
  level = "info"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CD/opt"
[plugins."io.containerd.runtime.v1.linux"]
  shim = "containerd-shim"
  runtime = "$RUNTIME"
  runtime_root = "$CD/v1-root"
  no_shim = false
EOF
	CTR=(ctr --address "$CD/containerd.sock" --namespace "$CGP")
	CTR_S="ctr --address $CD/containerd.sock --namespace $CGP"
	RUNC=(--runc-binary "$RUNTIME" --runc-root "$CD/runtime-root" --fifo-dir "$CD/fifo")
	RUNC_S="--runc-binary $RUNTIME --runc-root $CD/runtime-root --fifo-dir $CD/fifo"
	CIMG=hull.test/busybox:latest
	CTR_IDS=()
	containerd --config "$CD/config.toml" >"$CD/containerd.log" 2>&1 &
	CD_PID=$!
	poll 20 "${CTR[@]}" version
}

ctr_task_status() { "${CTR[@]}" task ls 2>&1 | awk -v id="$1" '$1 == id {print $3}'; }

# ctr_rm ID : delete the task and the container
ctr_rm() {
	"${CTR[@]}" task delete "$1" >/dev/null 2>&1
	"${CTR[@]}" container rm "$1" >/dev/null 2>&1
}

containerd_tests() {
	section "containerd $(containerd --version | awk '{print $3}') with $RUNTIME"
	containerd_setup
	t_run "${CTR[@]}" version
	expect ctr.private-containerd-up rc=0 'out=Revision'
	if [[ $RC != 0 ]]; then
		OUT=$(tail -20 "$CD/containerd.log")
		fail ctr.containerd-log "containerd did not start"
		return
	fi

	t_run "${CTR[@]}" images import --base-name hull.test/busybox "$WORK/image/busybox-oci.tar"
	expect ctr.image-import rc=0
	t_run "${CTR[@]}" images ls -q
	expect ctr.image-listed rc=0 "out=^$CIMG$"

	# --- run --rm via --runc-binary: output, exit code, cgroup, stdin
	CTR_IDS+=(c1 c1b)
	t_run "${CTR[@]}" run --rm "${RUNC[@]}" --cgroup "/$CGP/c1" "$CIMG" c1 sh -c 'echo hello-$((6*7)); exit 3'
	expect ctr.run-rm-output-and-exit-code rc=3 'out=^hello-42$'
	t_run "${CTR[@]}" run --rm "${RUNC[@]}" --cgroup "/$CGP/c1b" "$CIMG" c1b cat /proc/self/cgroup
	expect ctr.run-cgroup-path rc=0 "out=^[0-9]+:[a-z,_=]*:/$CGP/c1b$"
	# (no stdin check: ctr 1.6 run/exec without -t never closes the process's stdin
	# at EOF, with runc as with hull-runtime, so `cat` would never exit)
	t_run "${CTR[@]}" containers ls -q
	expect ctr.run-rm-removed rc=0 eq=

	# --- run -d, exec, ps, metrics, pause/resume, kill
	CTR_IDS+=(c2)
	t_run "${CTR[@]}" run -d "${RUNC[@]}" --cgroup "/$CGP/c2" "$CIMG" c2 \
		sh -c 'trap "exit 9" TERM; while :; do sleep 0.2; done'
	expect ctr.run-detached rc=0
	t_run "${CTR[@]}" task ls
	expect ctr.detached-running rc=0 'out=^c2 +[0-9]+ +RUNNING$'
	t_run "$RUNTIME" --root "$CD/runtime-root/$CGP" state c2
	expect ctr.detached-runtime-state rc=0 'out="status": "running"'

	t_run "${CTR[@]}" task exec --fifo-dir "$CD/fifo" --exec-id e1 c2 \
		sh -c 'echo in-exec; tr "\0" " " </proc/1/cmdline; echo; exit 6'
	expect ctr.exec-exit-code-and-pidns rc=6 'out=^in-exec$' 'out=^sh -c trap'
	t_run "${CTR[@]}" task exec --fifo-dir "$CD/fifo" --exec-id e2 --user 65534 --cwd /tmp c2 \
		sh -c 'echo "$(id -u) $(pwd)"'
	expect ctr.exec-user-cwd rc=0 'eq=65534 /tmp'
	# ctr sets the pty size with a ResizePty call after the process started: give it
	# time before reading the size (runc's slower exec hides that race).
	t_tty '' "$CTR_S task exec -t --fifo-dir $CD/fifo --exec-id e3 c2 sh -c 'tty; sleep 0.5; stty size; exit 4'"
	expect ctr.exec-tty rc=4 'out=^/dev/pts/[0-9]+$' 'out=^33 101$'

	t_run "${CTR[@]}" task ps c2
	expect ctr.task-ps rc=0 'out=^[0-9]+ '
	t_run "${CTR[@]}" task metrics c2
	expect ctr.task-metrics rc=0 'out=^pids\.current +[1-9]' 'out=^memory\.'

	t_run "${CTR[@]}" task pause c2
	expect ctr.task-pause rc=0
	assert ctr.task-pause-state "task $(ctr_task_status c2), freezer $(frozen "$CGP/c2")" \
		test "$(ctr_task_status c2) $(frozen "$CGP/c2")" = "PAUSED FROZEN"
	t_run "${CTR[@]}" task resume c2
	expect ctr.task-resume rc=0
	assert ctr.task-resume-state "task $(ctr_task_status c2), freezer $(frozen "$CGP/c2")" \
		test "$(ctr_task_status c2) $(frozen "$CGP/c2")" = "RUNNING THAWED"

	t_run "${CTR[@]}" task kill -s TERM c2
	expect ctr.task-kill rc=0
	poll 10 test "$(ctr_task_status c2)" = STOPPED
	assert ctr.task-kill-stopped "task is $(ctr_task_status c2)" test "$(ctr_task_status c2)" = STOPPED
	t_run "${CTR[@]}" task delete c2
	expect ctr.task-delete-exit-code rc=0 'out=exit code 9'
	t_run "${CTR[@]}" container rm c2
	expect ctr.container-rm rc=0
	t_run "$RUNTIME" --root "$CD/runtime-root/$CGP" state c2
	expect ctr.runtime-state-gone 'out=(not exist|does not exist|not found)' '!out="status"'
	assert ctr.cgroup-gone "cgroup $(cg_dir pids "$CGP/c2") still exists" test ! -d "$(cg_dir pids "$CGP/c2")"

	# --- kill --all reaches exec'd processes too
	CTR_IDS+=(c3)
	t_run "${CTR[@]}" run -d "${RUNC[@]}" --cgroup "/$CGP/c3" "$CIMG" c3 sleep 1000
	expect ctr.run-detached-2 rc=0
	t_run "${CTR[@]}" task exec -d --fifo-dir "$CD/fifo" --exec-id e4 c3 sleep 1001
	expect ctr.exec-detached rc=0
	t_run "${CTR[@]}" task kill -a -s KILL c3
	expect ctr.task-kill-all rc=0
	poll 10 test "$(ctr_task_status c3)" = STOPPED
	assert ctr.task-kill-all-stopped "task is $(ctr_task_status c3)" test "$(ctr_task_status c3)" = STOPPED
	ctr_rm c3
	assert ctr.task-kill-all-no-process "processes still in /$CGP/c3: $(cat "$(cg_dir pids "$CGP/c3")/cgroup.procs" 2>/dev/null | tr '\n' ' ')" \
		test ! -d "$(cg_dir pids "$CGP/c3")"

	# --- run -t with a terminal
	CTR_IDS+=(c4)
	t_tty 'tty; sleep 0.5; stty size; echo sum-$((40+2))\nexit 3\n' "$CTR_S run -t --rm $RUNC_S --cgroup /$CGP/c4 $CIMG c4 sh"
	expect ctr.run-tty rc=3 'out=^/dev/pts/0$' 'out=^33 101$' 'out=^sum-42$'

	# --- the runtime named in config.toml (io.containerd.runtime.v1.linux)
	CTR_IDS+=(v1a v1b)
	t_run "${CTR[@]}" run --rm --runtime io.containerd.runtime.v1.linux --fifo-dir "$CD/fifo" \
		--cgroup "/$CGP/v1a" "$CIMG" v1a sh -c 'echo hello-v1; exit 2'
	expect ctr.config-runtime-run-rm rc=2 'out=^hello-v1$'
	t_run "${CTR[@]}" run -d --runtime io.containerd.runtime.v1.linux --fifo-dir "$CD/fifo" \
		--cgroup "/$CGP/v1b" "$CIMG" v1b sleep 1000
	expect ctr.config-runtime-run-detached rc=0
	t_run "$RUNTIME" --root "$CD/v1-root/$CGP" state v1b
	expect ctr.config-runtime-state rc=0 'out="status": "running"'
	t_run "${CTR[@]}" task kill -s KILL v1b
	expect ctr.config-runtime-kill rc=0
	poll 10 test "$(ctr_task_status v1b)" = STOPPED
	t_run "${CTR[@]}" task delete v1b
	expect ctr.config-runtime-delete rc=0
	"${CTR[@]}" container rm v1b >/dev/null 2>&1
	assert ctr.config-runtime-cgroup-gone "cgroup $(cg_dir pids "$CGP/v1b") still exists" \
		test ! -d "$(cg_dir pids "$CGP/v1b")"
}

# containerd_teardown : kill and delete every task and container, stop containerd.
containerd_teardown() {
	[[ -n ${CD_PID:-} ]] || return 0
	local id
	if kill -0 "$CD_PID" 2>/dev/null; then
		for id in $(timeout 20 "${CTR[@]}" task ls -q 2>/dev/null); do
			timeout 20 "${CTR[@]}" task kill -a -s KILL "$id" >/dev/null 2>&1
			poll 5 test "$(ctr_task_status "$id")" = STOPPED
			timeout 20 "${CTR[@]}" task delete -f "$id" >/dev/null 2>&1
		done
		for id in $(timeout 20 "${CTR[@]}" containers ls -q 2>/dev/null); do
			timeout 20 "${CTR[@]}" containers rm "$id" >/dev/null 2>&1
		done
		timeout 20 "${CTR[@]}" images rm "$CIMG" >/dev/null 2>&1
		kill -TERM "$CD_PID" 2>/dev/null
		poll 10 sh -c "! kill -0 $CD_PID"
		kill -KILL "$CD_PID" 2>/dev/null
	fi
	wait "$CD_PID" 2>/dev/null
	CD_PID=
}

# shim_sockets : the shim v2 sockets our containers used (1.6's SocketAddress)
shim_sockets() {
	local id
	for id in "${CTR_IDS[@]}"; do
		printf '/run/containerd/s/%s\n' "$(printf '%s' "$CD/containerd.sock/$CGP/$id" | sha256sum | cut -d' ' -f1)"
	done
}
