# shellcheck shell=bash
# lib.sh — assertions for the drop-in tests (sourced by scripts/dropin.sh).
#
# A check is: t_run CMD... (runs CMD with a time limit; its output goes to $OUT,
# its status to $RC, its quoted form to $CMD), then expect NAME CONDITION...
# Every condition can fail; a failed check prints the command, status, output.

PASS=0
FAIL=0
FAILED=()

# t_run CMD... : run CMD (stdin from /dev/null) with a time limit.
t_run() {
	CMD=$(printf '%q ' "$@")
	OUT=$(timeout -k 5 "${DROPIN_TIMEOUT:-30}" "$@" </dev/null 2>&1)
	RC=$?
}

# t_in INPUT CMD... : as t_run, with INPUT (printf %b) on stdin.
t_in() {
	local input=$1
	shift
	CMD="printf '$input' | $(printf '%q ' "$@")"
	OUT=$(printf '%b' "$input" | timeout -k 5 "${DROPIN_TIMEOUT:-30}" "$@" 2>&1)
	RC=$?
}

# t_tty INPUT SHELLCMD : run SHELLCMD under script(1), so its stdin/stdout are a
# pty of 33 rows x 101 columns; INPUT is typed into it. $RC is SHELLCMD's status.
t_tty() {
	local input=$1 cmd=$2
	CMD="printf '$input' | script -qec 'stty rows 33 cols 101; $cmd' /dev/null"
	OUT=$(printf '%b' "$input" | timeout -k 5 "${DROPIN_TIMEOUT:-30}" \
		script -qec "stty rows 33 cols 101; $cmd" /dev/null 2>&1
	echo "@rc=$?")
	RC=${OUT##*@rc=}
	OUT=${OUT%@rc=*}
	OUT=${OUT//$'\r'/}
	# script(1) types VEOF when its stdin ends; with the pty's ECHOCTL a NUL shows as ^@
	OUT=${OUT//^@/}
	OUT=${OUT%$'\n'}
}

pass() {
	PASS=$((PASS + 1))
	echo "ok   $1"
}

# fail NAME WHY : record a failure with the last command's details.
fail() {
	FAIL=$((FAIL + 1))
	FAILED+=("$1")
	echo "FAIL $1: $2"
	echo "     command: ${CMD:-}"
	echo "     exit status: ${RC:-}"
	printf '%s\n' "${OUT:-}" | tail -n "${DROPIN_OUTPUT_LINES:-25}" | sed 's/^/     | /'
}

# expect NAME COND... : check the last t_run. Conditions:
#   rc=N          exit status is N
#   out=REGEX     output has a line matching REGEX (grep -E)
#   !out=REGEX    output has no line matching REGEX
#   eq=STRING     output (trailing newlines trimmed) is exactly STRING
expect() {
	local name=$1 why="" a
	shift
	for a in "$@"; do
		case $a in
		rc=*) [[ $RC == "${a#rc=}" ]] || why+="exit status $RC, want ${a#rc=}; " ;;
		out=*) grep -Eq -- "${a#out=}" <<<"$OUT" || why+="output lacks /${a#out=}/; " ;;
		'!out='*) grep -Eq -- "${a#!out=}" <<<"$OUT" && why+="output has /${a#!out=}/; " ;;
		eq=*) [[ $OUT == "${a#eq=}" ]] || why+="output is not '${a#eq=}'; " ;;
		*) why+="bad condition '$a'; " ;;
		esac
	done
	if [[ -z $why ]]; then pass "$name"; else fail "$name" "${why%; }"; fi
}

# check NAME CMD... : CMD must succeed.
check() {
	local name=$1
	shift
	t_run "$@"
	expect "$name" rc=0
}

# assert NAME WHY TEST... : a shell test on values already computed; WHY is
# printed when it fails.
assert() {
	local name=$1 why=$2
	shift 2
	if "$@"; then pass "$name"; else
		CMD=$(printf '%q ' "$@")
		RC="" OUT=""
		fail "$name" "$why"
	fi
}

# poll SECONDS CMD... : retry CMD every 0.1 s until it succeeds or time runs out.
poll() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# section TITLE
section() { echo "== $*"; }
