#!/usr/bin/env bash
# Copies the dialect reference generated from ODS into docs/dialect/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${ROTOR_BUILD_DIR:-$root/build}"
cmake --build "$build_dir" --target rotor-docs
mkdir -p "$root/docs/dialect"
cp "$build_dir/docs/dialect/Attn.md" "$root/docs/dialect/Attn.md"
