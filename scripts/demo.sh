#!/usr/bin/env bash
# The main job: builds Rotor, makes random Qwen2.5-0.5B-shaped weights and
# inputs (K bias std 20, as large-bias Qwen layers have), compiles the bundled
# attention layer ahead of time, runs prefill plus decode steps on the host
# and prints the accuracy against the fp64 reference.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" >&2
build_dir="${ROTOR_BUILD_DIR:-$root/build}"
work="$build_dir/demo"
mkdir -p "$work"

layer="$root/examples/qwen2.5-0.5b-attention.mlir"
echo "== The layer: $layer (verified and canonicalized), entry points:"
"$build_dir/bin/rotor-opt" --canonicalize "$layer" | grep -E "func.func" | sed 's/^ */   /'

echo "== Weights and inputs"
/usr/bin/python3 "$root/scripts/make_layer_inputs.py" \
  --weights "$work/weights.safetensors" --inputs "$work/inputs.safetensors" \
  --tokens 24

echo "== rotor-aot"
"$build_dir/bin/rotor-aot" "$layer" -o "$work/layer.rotor" \
  --params "$work/weights.safetensors"

echo "== rotor-run: prefill 20 tokens, then 4 decode steps"
"$build_dir/bin/rotor-run" "$work/layer.rotor" \
  --inputs "$work/inputs.safetensors" --outputs "$work/outputs.safetensors" \
  --decode 4 --reference --bench 3
