#!/usr/bin/env bash
# The sanitizer job: builds runtime/ and rotor-run with AddressSanitizer,
# UndefinedBehaviorSanitizer (no recovery) and LeakSanitizer into
# build/asan-rt, then runs the end-to-end bundle tests with that rotor-run:
# good and damaged bundles and inputs, prefill and decode, against the fp64
# reference. The bundles' host.so is not instrumented, but its allocations
# go through ASan's allocator, so LSan reports what generated code leaks.
#
# Reports go to files, not stderr: a test that expects rotor-run to fail
# (`not rotor-run ...`) cannot tell a sanitizer's exit from an error's. Any
# report fails the job. Needs build/ built (scripts/setup.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$(cd "${ROTOR_BUILD_DIR:-$root/build}" && pwd)"
asan_dir="$build_dir/asan-rt"
llvm_bin=/usr/lib/llvm-22/bin
tests=(
  e2e/bad-bundles.test
  e2e/bad-inputs.test
  e2e/example-layer.test
  e2e/output-paths.test
  e2e/reference-tolerance.test
)
start=$SECONDS

if [[ ! -f "$asan_dir/build.ninja" ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # No build type: -O1 with assertions on, frame pointers for the reports.
  cmake -G Ninja -S "$root/runtime" -B "$asan_dir" \
    -DCMAKE_CXX_COMPILER="$llvm_bin/clang++" \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -g" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    "${launcher[@]}" > /dev/null
fi
cmake --build "$asan_dir" --target rotor-run

# lit runs the suite's tests with a tools directory of its own, in which
# rotor-run is the sanitized one and every other tool is build/'s.
lit_dir="$asan_dir/lit"
reports="$lit_dir/reports"
rm -rf "$lit_dir"
mkdir -p "$lit_dir/bin" "$lit_dir/test" "$reports"
for tool in "$build_dir"/bin/*; do
  ln -s "$tool" "$lit_dir/bin/"
done
ln -sfn "$asan_dir/bin/rotor-run" "$lit_dir/bin/rotor-run"
sed -e "s|^config.rotor_tools_dir = .*|config.rotor_tools_dir = \"$lit_dir/bin\"|" \
    -e "s|^config.rotor_obj_root = .*|config.rotor_obj_root = \"$lit_dir\"|" \
    "$build_dir/test/lit.site.cfg.py" > "$lit_dir/test/lit.site.cfg.py"

status=0
ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan" \
UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan" \
ASAN_SYMBOLIZER_PATH="$llvm_bin/llvm-symbolizer" \
  "$llvm_bin/lit" -sv "${tests[@]/#/$lit_dir/test/}" || status=$?

count=$(find "$reports" -type f | wc -l)
if ((count)); then
  for report in "$reports"/*; do
    echo "=== $report"
    cat "$report"
  done
  status=1
fi
echo "sanitizers: ${#tests[@]} test files, $count reports, $((SECONDS - start)) s"
exit "$status"
