#!/usr/bin/env bash
# The main job: builds Rotor, then verifies and canonicalizes the bundled
# Qwen2.5-0.5B attention layer and prints it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" >&2
build_dir="${ROTOR_BUILD_DIR:-$root/build}"
exec "$build_dir/bin/rotor-opt" --canonicalize \
  "$root/examples/qwen2.5-0.5b-attention.mlir"
