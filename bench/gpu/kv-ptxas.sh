#!/usr/bin/env bash
# Without a GPU (issue 13): the decode kernels of the example layer's shape
# (Qwen2.5-0.5B: 14/2 heads of 64, a KV cache of 16400 positions) for
# sm_90 with a turbo3 cache, the rotation folded (rotor-aot's default) and
# unfolded, each kernel's registers and shared memory from `ptxas -v`, and
# the bytes of K and V a decode step's kernels touch per cached token.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="${ROTOR_BUILD_DIR:-$root/build}"
work="$build_dir/bench-kv-ptxas"
ptxas="${PTXAS:-/usr/local/cuda/bin/ptxas}"
mkdir -p "$work"
/usr/bin/python3 "$root/scripts/make_hf_checkpoint.py" "$work/ckpt" --preset qwen2.5-0.5b \
  --num-layers 1 --seed 7 >&2
"$build_dir/bin/rotor-import" "$work/ckpt" -o "$work/layer.mlir" --kv-cache turbo3 \
  --kv-capacity 16400 --quiet
for fold in true false; do
  "$build_dir/bin/rotor-aot" --quiet --target=cuda --gpu-chip=sm_90 "$work/layer.mlir" \
    -o "$work/$fold.rotor" --fold-kv-rotation=$fold 2> /dev/null
  kernels=$(ls "$work/$fold.rotor"/kernels/decode*.ptx | wc -l)
  echo "### fold-kv-rotation=$fold: $kernels decode kernels"
  echo "| kernel | registers | shared memory (B) | barriers |"
  echo "| --- | --- | --- | --- |"
  for ptx in "$work/$fold.rotor"/kernels/decode*.ptx; do
    info=$("$ptxas" -v -arch=sm_90 "$ptx" -o /dev/null 2>&1 | awk '/registers/ && !seen { print; seen = 1 }')
    regs=$(echo "$info" | sed -n 's/.*Used \([0-9]*\) registers.*/\1/p')
    smem=$(echo "$info" | sed -n 's/.* \([0-9]*\) bytes smem.*/\1/p')
    bars=$(echo "$info" | sed -n 's/.*used \([0-9]*\) barriers.*/\1/p')
    echo "| $(basename "$ptx" .ptx) | $regs | ${smem:-0} | $bars |"
  done
done
# Per cached token and KV head, turbo3 keeps 52 bytes (two groups of 64:
# 2 x (2 B scale + 24 B codes)). Unfolded, the inverse-rotation kernels read
# and write the dequantized rows (64 f32) once more for K and once for V.
echo "turbo3 cache: 52 B per token, KV head and cache; unfolded, the two inverse"
echo "rotations add 2 x 256 B read + 2 x 256 B written per token and KV head."
