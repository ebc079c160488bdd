#!/usr/bin/env bash
# vm-test.sh — run the cgroup-sensitive tests on a pure cgroup v2 host: a
# throwaway qemu VM (../shared/vm/run-in-vm.sh), whatever cgroup mode this
# host has.
#
# Builds bin/hull-runtime (cgo, libseccomp: copied into the VM with its
# libraries at the same path), the integration test binary and the
# runtime/cgroups test binary, then runs in the VM:
#   1. runtime/cgroups tests (all)
#   2. the integration tests (all; HULL_RUNTIME = the prebuilt binary)
#   3. the engine tests that need no CNI (cgroup limits, stats, top, pause,
#      OOM) with the prebuilt hull, hull-monitor and hull-runtime
#   4. a leak check: no cgroup named *hull* left in the VM
# Prints one go-test-like summary line per package (failures in full) and
# exits non-zero if anything failed, the VM timed out or died.
#
# Environment:
#   VM_TEST_RUN      -test.run pattern for the integration tests (default: all)
#   VM_TEST_TIMEOUT  seconds before the VM is killed (default 1300: above the
#                    guest-side limits, 300 + 660 + 240 s, so a hung test
#                    binary is reported with its goroutines rather than lost
#                    with the VM); a VM that times out or dies without an exit
#                    code is run once more (a stalled emulator on a busy host
#                    is not a test result; a hang in the tests is caught by
#                    the guest-side timeouts and fails the run)
#   VM_TEST_LOGS     host dir to keep the full -test.v logs in (default: a
#                    temp dir, removed on success)
#   RUN_IN_VM        path of run-in-vm.sh (default ../shared/vm/run-in-vm.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export PATH=$PATH:/usr/local/go/bin
[ "$(id -u)" = 0 ] || { echo "vm-test.sh: run as root (qemu, and the tests start containers)"; exit 1; }
vm=${RUN_IN_VM:-$repo/../shared/vm/run-in-vm.sh}
[ -f "$vm" ] || { echo "vm-test.sh: $vm not found (set RUN_IN_VM)"; exit 1; }
start=$(date +%s)

work=$(mktemp -d /var/tmp/hull-vm-test.XXXXXX)
logs=${VM_TEST_LOGS:-$work/logs}
keep_logs=0
cleanup() { if [ "$keep_logs" = 1 ] && [ -z "${VM_TEST_LOGS:-}" ]; then rm -rf "$work/files" "$work/bin"; else rm -rf "$work"; fi; }
trap cleanup EXIT

echo "== build"
make -s build
# Test binaries may link libseccomp too: like hull-runtime they go to the
# same path in the VM with their libraries (not below /tmp, which the VM
# mounts over).
mkdir -p "$work/bin" "$work/files"
go test -c -o "$work/bin/integration.test" ./test/integration
go test -c -o "$work/bin/cgroups.test" ./runtime/cgroups
go test -c -o "$work/bin/engine.test" ./test/engine

# CRIU (checkpoint/restore) works in the VM's kernel, not on hybrid 6.18 hosts:
# bring criu and what it calls (network lock, tmpfs dumps) when installed.
criu_args=()
if command -v criu >/dev/null 2>&1; then
	criu_args+=(--modules "nf_tables nft_compat xt_mark nf_conntrack nf_conntrack_netlink unix_diag inet_diag tcp_diag udp_diag raw_diag netlink_diag af_packet_diag")
	for b in /usr/sbin/criu /usr/sbin/ip /usr/bin/tar /usr/bin/gzip \
		/usr/sbin/iptables-save /usr/sbin/ip6tables-save /usr/sbin/iptables-restore /usr/sbin/ip6tables-restore \
		/usr/sbin/iptables-legacy-save /usr/sbin/ip6tables-legacy-save /usr/sbin/iptables-legacy-restore /usr/sbin/ip6tables-legacy-restore; do
		[ -e "$b" ] && criu_args+=(--bin "$b")
	done
	if [ -d /usr/lib/x86_64-linux-gnu/xtables ]; then
		cp -r /usr/lib/x86_64-linux-gnu/xtables "$work/files/xtables"
		criu_args+=(--env XTABLES_LIBDIR=/files/xtables)
	fi
fi

# The guest side (busybox ash, cwd /files).
cat >"$work/files/guest.sh" <<'EOF'
set -u
rc=0
# The cgroup mode these results are for.
cgfs=$(awk '$2 == "/sys/fs/cgroup" {print $3}' /proc/mounts)
echo "vm: kernel $(uname -r), /sys/fs/cgroup is $cgfs, up $(cut -d' ' -f1 /proc/uptime)s"
[ "$cgfs" = cgroup2 ] || { echo "vm: not a pure cgroup v2 host"; exit 1; }
[ -x /bin/busybox ] || { echo "vm: no /bin/busybox (the integration tests copy it into bundles)"; exit 1; }
[ -x "$HULL_RUNTIME" ] || { echo "vm: no $HULL_RUNTIME"; exit 1; }
skip=
if ! command -v unshare >/dev/null 2>&1; then
	echo "vm: no unshare command: skipping TestJoiningANetworkNamespaceByPath"
	skip='^TestJoiningANetworkNamespaceByPath$'
fi

# runtest NAME PKG LIMIT BINARY ARGS...: run a test binary with -test.v into
# /out/NAME.log and print go test's summary line (and the failures). LIMIT
# seconds backs up -test.timeout: a binary stuck where its own timer cannot
# fire (a frozen cgroup, say) gets SIGQUIT, and Go dumps its goroutines.
runtest() {
	name=$1 pkg=$2 limit=$3
	shift 3
	t0=$(date +%s)
	echo "vm: up $(cut -d' ' -f1 /proc/uptime)s: running $pkg"
	timeout -s QUIT "$limit" "$@" -test.v >"/out/$name.log" 2>&1
	r=$?
	t1=$(date +%s)
	pass=$(grep -c '^--- PASS' "/out/$name.log")
	fail=$(grep -c '^--- FAIL' "/out/$name.log")
	skips=$(grep -c '^--- SKIP' "/out/$name.log")
	if [ "$r" = 0 ]; then
		printf 'ok  \t%s\t%ss\t(%s passed, %s failed, %s skipped)\n' "$pkg" "$((t1 - t0))" "$pass" "$fail" "$skips"
	else
		# Everything but the noise of passing tests.
		grep -v -E '^(=== (RUN|PAUSE|CONT|NAME)|[[:space:]]*--- PASS)' "/out/$name.log"
		printf 'FAIL\t%s\t%ss\t(%s passed, %s failed, %s skipped; exit %s)\n' "$pkg" "$((t1 - t0))" "$pass" "$fail" "$skips" "$r"
		rc=1
	fi
	grep '^--- SKIP' "/out/$name.log" | sed 's/^/    /'
}

runtest cgroups github.com/hull-runtime/hull/runtime/cgroups 300 \
	"$TESTBIN/cgroups.test" -test.count=1 -test.timeout=5m
# Not from the root cgroup, as on a real host: a relative cgroupsPath is
# resolved against the parent of the runtime's own cgroup (/vmtest here).
mkdir -p /sys/fs/cgroup/vmtest/itest
runtest integration github.com/hull-runtime/hull/test/integration 660 \
	sh -c 'echo $$ >/sys/fs/cgroup/vmtest/itest/cgroup.procs && exec "$@"' sh \
	"$TESTBIN/integration.test" -test.count=1 -test.timeout=10m -test.run "${VM_TEST_RUN:-.}" ${skip:+-test.skip "$skip"}
# The engine without CNI: no plugins or iptables in the VM.
mkdir -p /sys/fs/cgroup/vmtest/etest
runtest engine github.com/hull-runtime/hull/test/engine 240 \
	sh -c 'echo $$ >/sys/fs/cgroup/vmtest/etest/cgroup.procs && exec "$@"' sh \
	"$TESTBIN/engine.test" -test.count=1 -test.timeout=3m \
	-test.run '^(TestLimitsStatsTopAndPauseReachTheContainersCgroup|TestAnOOMKilledContainerIsReportedSo)$'
rmdir /sys/fs/cgroup/vmtest/itest /sys/fs/cgroup/vmtest/etest /sys/fs/cgroup/vmtest || { echo "vm: leak: cgroups left in /sys/fs/cgroup/vmtest:"; find /sys/fs/cgroup/vmtest -type d; rc=1; }

left=$(find /sys/fs/cgroup -maxdepth 3 -iname '*hull*')
if [ -n "$left" ]; then
	echo "vm: leak: cgroups left behind:"
	echo "$left"
	rc=1
fi
exit $rc
EOF

echo "== tests in a pure cgroup v2 VM (run-in-vm, slow: TCG emulation)"
# The VM mounts a tmpfs over /tmp, where the checkout may live: run the copy in $work.
for b in hull-runtime hull hull-monitor; do cp "$repo/bin/$b" "$work/bin/$b"; done
vmargs=(--env HULL_RUNTIME="$work/bin/hull-runtime" --env TESTBIN="$work/bin" --env HULL_ENGINE_BIN_DIR="$work/bin")
[ -z "${VM_TEST_RUN:-}" ] || vmargs+=(--env VM_TEST_RUN="$VM_TEST_RUN")
timeout=${VM_TEST_TIMEOUT:-1300}
for attempt in 1 2; do
	vmrc=0
	bash "$vm" --timeout "$timeout" \
		--bin "$work/bin/hull-runtime" --bin "$work/bin/integration.test" --bin "$work/bin/cgroups.test" \
		--bin "$work/bin/hull" --bin "$work/bin/hull-monitor" --bin "$work/bin/engine.test" \
		--files "$work/files" --out "$logs" "${vmargs[@]}" "${criu_args[@]}" \
		-- sh /files/guest.sh || vmrc=$?
	case $vmrc in
	124 | 125) [ "$attempt" = 1 ] && echo "vm-test: the VM timed out or died (exit $vmrc) after $(($(date +%s) - start))s: running it once more" ;;
	*) break ;;
	esac
done
took=$(($(date +%s) - start))
if [ "$vmrc" != 0 ]; then
	keep_logs=1
	case $vmrc in
	124) echo "vm-test: FAIL: the VM timed out after ${timeout}s, twice" ;;
	125) echo "vm-test: FAIL: the VM died without reporting an exit code, twice" ;;
	*) echo "vm-test: FAIL (exit $vmrc)" ;;
	esac
	echo "vm-test: full -test.v logs in $logs; took ${took}s"
	exit 1
fi
echo "vm-test: ok; took ${took}s"
