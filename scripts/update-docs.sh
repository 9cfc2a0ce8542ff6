#!/usr/bin/env bash
# Copies the references generated from ODS into the tree: the dialect
# reference into docs/dialect/ and the pass references into docs/passes/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${ROTOR_BUILD_DIR:-$root/build}"
cmake --build "$build_dir" --target rotor-docs
mkdir -p "$root/docs/dialect" "$root/docs/passes"
cp "$build_dir/docs/dialect/Attn.md" "$root/docs/dialect/Attn.md"
for doc in AttnTransforms Conversion Codegen; do
  cp "$build_dir/docs/passes/$doc.md" "$root/docs/passes/$doc.md"
done
