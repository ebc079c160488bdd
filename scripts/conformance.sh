#!/usr/bin/env bash
# Runs the OCI runtime-tools validation suite against bin/hull-runtime with the
# project's skip and xfail lists (test/conformance/), strict: any failure fails.
set -uo pipefail
cd "$(dirname "$0")/.."
suite=${OCI_VALIDATION_SCRIPT:-../shared/conformance/oci-validation.sh}
[ -x "$suite" ] || [ -f "$suite" ] || { echo "conformance: $suite not found"; exit 1; }
export OCI_VALIDATION_SKIP_FILE=$PWD/test/conformance/oci-validation-skips.txt
export OCI_VALIDATION_XFAIL_FILE=$PWD/test/conformance/oci-validation-xfail.txt
res=$(mktemp -d /tmp/hull-oci-validation.XXXXXX)
chmod 755 "$res"
OCI_VALIDATION_RESULTS=$res bash "$suite" --strict "$PWD/bin/hull-runtime" "$@"
rc=$?
awk -F'\t' 'NR > 1 && ($2 == "FAIL" || $2 == "ERROR") {print "  " $1 ": " $2 " " $8}' "$res/summary.tsv" 2>/dev/null
exit $rc
