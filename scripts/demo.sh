#!/usr/bin/env bash
# Builds hull-runtime, makes a busybox bundle and runs a real container in it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/hull-runtime ] && [ -x bin/mkbundle ] || make build
dir=$(mktemp -d /tmp/hull-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT
bin/mkbundle "$dir/bundle" sh -c 'echo "hello from a hull container: $(hostname), pid $$, uid $(id -u)"; ls /'
bin/hull-runtime --root "$dir/state" run --bundle "$dir/bundle" "hull-demo-$$"
