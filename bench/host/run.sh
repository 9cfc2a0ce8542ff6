#!/usr/bin/env bash
# Host benchmark of the example layer (Qwen2.5-0.5B shapes: hidden 896, 14
# query heads, 2 KV heads, head dim 64): prefill at T = 512 and 2048, decode
# at KV lengths 1k, 4k and 16k, each against PyTorch on the CPU (one thread,
# float32) in the same run. Prints a markdown table; the ratio is PyTorch's
# time over Rotor's (above 1: Rotor is faster).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$root/scripts/setup.sh" >&2
build_dir="${ROTOR_BUILD_DIR:-$root/build}"
work="$build_dir/bench-host"
mkdir -p "$work"
py=/usr/bin/python3

# The example layer with a KV cache long enough for 16k-token decode.
sed 's/4096x2x64/16400x2x64/g' "$root/examples/qwen2.5-0.5b-attention.mlir" \
  > "$work/layer.mlir"
$py "$root/scripts/make_layer_inputs.py" --weights "$work/w.safetensors" \
  --inputs "$work/in-4.safetensors" --tokens 4 --seed 1 >&2
"$build_dir/bin/rotor-aot" --quiet "$work/layer.mlir" -o "$work/layer.rotor" \
  --params "$work/w.safetensors"

echo "| shape | Rotor host (ms) | PyTorch CPU (ms) | PyTorch / Rotor |"
echo "| --- | --- | --- | --- |"
for t in 512 2048; do
  $py "$root/scripts/make_layer_inputs.py" --inputs "$work/in-$t.safetensors" \
    --tokens "$t" --seed 1 >&2
  rotor=$("$build_dir/bin/rotor-run" "$work/layer.rotor" \
    --inputs "$work/in-$t.safetensors" --outputs "$work/out.safetensors" \
    --bench 2 | sed -n 's/.*prefill [0-9]* tokens \([0-9.]*\) ms.*/\1/p')
  torch=$($py "$root/bench/host/torch_baseline.py" "$work/w.safetensors" prefill "$t")
  echo "| prefill T=$t | $rotor | $torch | $(awk -v a="$torch" -v b="$rotor" 'BEGIN { printf "%.2f", a / b }') |"
done
for kv in 1024 4096 16384; do
  rotor=$("$build_dir/bin/rotor-run" "$work/layer.rotor" \
    --inputs "$work/in-4.safetensors" --outputs "$work/out.safetensors" \
    --kv-length "$kv" --bench 3 | sed -n 's/.*decode steps \([0-9.]*\) ms\/step.*/\1/p')
  torch=$($py "$root/bench/host/torch_baseline.py" "$work/w.safetensors" decode "$kv")
  echo "| decode KV=$kv | $rotor | $torch | $(awk -v a="$torch" -v b="$rotor" 'BEGIN { printf "%.2f", a / b }') |"
done
