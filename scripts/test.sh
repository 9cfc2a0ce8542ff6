#!/usr/bin/env bash
# Every test: builds Rotor, runs the whole lit suite and prints its summary.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
build_dir="${ROTOR_BUILD_DIR:-$root/build}"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
/usr/lib/llvm-22/bin/lit -sv "$build_dir/test" 2>&1 | tee "$log" || status=$?

count() { sed -n "s/^ *$1 *: *\([0-9][0-9]*\).*$/\1/p" "$log" | tail -n 1; }
passed=$(count Passed); failed=$(count Failed); skipped=$(count Unsupported)
xfail=$(count "Expectedly Failed"); xpass=$(count "Unexpectedly Passed")

# The sanitizer job (ASan + UBSan + LSan rotor-run on the bundle tests,
# about 30 s cold on 2 cores, 10-20 s with ccache): any report fails the run.
sanitizer_status=0
"$root/scripts/sanitize-runtime.sh" 2>&1 | tee "$log" || sanitizer_status=$?
sanitizers=$(grep '^sanitizers:' "$log" | tail -n 1 || true)
((sanitizer_status == 0)) || status=$sanitizer_status

echo "${sanitizers:-sanitizers: did not run}"
echo "lit: $(( ${passed:-0} + ${xfail:-0} )) passed, $(( ${failed:-0} + ${xpass:-0} )) failed, ${skipped:-0} skipped"
exit "$status"
