#!/usr/bin/env bash
# The cost of attn-split-rope-bias's score term on the host (issue 14): the
# example layer's shape (Qwen2.5-0.5B: hidden 896, 14/2 heads, D 64, K bias
# as Qwen2.5's) with a bf16 KV cache, the bias in the cache vs split into
# SDPA's term: decode at KV 4k and 16k (mean of 20 runs) and prefill of 512
# tokens, ROTOR_BENCH_THREADS threads (default 1), same run; accuracy from
# the fp64 reference on 64 tokens (16 decoded). Prints a markdown table; the ratio is split over unsplit time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$root/scripts/setup.sh" >&2
build_dir="${ROTOR_BUILD_DIR:-$root/build}"
work="$build_dir/bench-split"
mkdir -p "$work"
threads=${ROTOR_BENCH_THREADS:-1}
py=/usr/bin/python3
bin="$build_dir/bin"

$py "$root/scripts/make_hf_checkpoint.py" "$work/ckpt" --preset qwen2.5-0.5b \
  --num-layers 1 --seed 7 >&2
for t in 4 64 512; do
  $py "$root/scripts/make_layer_inputs.py" --inputs "$work/in-$t.safetensors" \
    --hidden 896 --tokens $t --seed 1 >&2
done
"$bin/rotor-import" "$work/ckpt" -o "$work/layer.mlir" --kv-cache bf16 \
  --kv-capacity 16400 --quiet
ms() { sed -n "s/.*$1 \([0-9.]*\) ms.*/\1/p"; }
declare -A d4 d16 pre err
for split in false true; do
  "$bin/rotor-aot" --quiet "$work/layer.mlir" -o "$work/$split.rotor" \
    --split-rope-bias=$split 2> /dev/null
  d4[$split]=$("$bin/rotor-run" "$work/$split.rotor" --inputs "$work/in-4.safetensors" \
    --outputs "$work/out.safetensors" --kv-length 4096 --threads $threads --bench 20 | ms "decode steps")
  d16[$split]=$("$bin/rotor-run" "$work/$split.rotor" --inputs "$work/in-4.safetensors" \
    --outputs "$work/out.safetensors" --kv-length 16384 --threads $threads --bench 20 | ms "decode steps")
  pre[$split]=$("$bin/rotor-run" "$work/$split.rotor" --inputs "$work/in-512.safetensors" \
    --outputs "$work/out.safetensors" --threads $threads --bench 3 | sed -n 's/.*prefill [0-9]* tokens \([0-9.]*\) ms.*/\1/p')
  err[$split]=$("$bin/rotor-run" "$work/$split.rotor" --inputs "$work/in-64.safetensors" \
    --outputs "$work/out.safetensors" --decode 16 --reference --tolerance 10 |
    sed -n 's/.*max relative error \([0-9.e+-]*\),.*/\1/p')
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "| bf16 K cache, $threads thread(s) | max rel. err | decode 4k (ms) | decode 16k (ms) | prefill 512 (ms) |"
echo "| --- | --- | --- | --- | --- |"
echo "| bias in the cache | ${err[false]} | ${d4[false]} | ${d16[false]} | ${pre[false]} |"
echo "| split (SDPA term) | ${err[true]} | ${d4[true]} | ${d16[true]} | ${pre[true]} |"
echo "| split / in the cache | | $(ratio "${d4[true]}" "${d4[false]}") | $(ratio "${d16[true]}" "${d16[false]}") | $(ratio "${pre[true]}" "${pre[false]}") |"
