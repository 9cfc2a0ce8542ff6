#!/usr/bin/env bash
# KV-cache formats on the host (issue 13): bytes per token of every format,
# and for each the decode step at KV 4k and 16k and prefill of 512 tokens,
# with the rotation folded into Q and W_o (rotor-aot's default) and
# unfolded (--fold-kv-rotation=false: every K/V block inverse-rotated on
# read), on the example layer's shape (Qwen2.5-0.5B: hidden 896, 14/2 heads,
# head dim 64; layer 0 of a random checkpoint). Accuracy is the fp64
# reference's (the layer with an exact cache) on 64 tokens, 16 of them
# decoded. Prints a markdown table; the ratios are of the same run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$root/scripts/setup.sh" >&2
build_dir="${ROTOR_BUILD_DIR:-$root/build}"
work="$build_dir/bench-kv"
mkdir -p "$work"
py=/usr/bin/python3
bin="$build_dir/bin"
formats="${ROTOR_KV_FORMATS:-f32 bf16 f16 q8_0 q4_0 turbo4 turbo3}"

$py "$root/scripts/make_hf_checkpoint.py" "$work/ckpt" --preset qwen2.5-0.5b \
  --num-layers 1 --seed 7 >&2
$py "$root/scripts/make_layer_inputs.py" --inputs "$work/in-64.safetensors" \
  --hidden 896 --tokens 64 --seed 1 >&2
$py "$root/scripts/make_layer_inputs.py" --inputs "$work/in-4.safetensors" \
  --hidden 896 --tokens 4 --seed 1 >&2
$py "$root/scripts/make_layer_inputs.py" --inputs "$work/in-512.safetensors" \
  --hidden 896 --tokens 512 --seed 1 >&2

ms() { sed -n "s/.*$1 \([0-9.]*\) ms.*/\1/p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "| format | bytes/token | PCC | max rel. err | decode 4k folded / unfolded (ms) | decode 16k folded / unfolded (ms) | unfolded / folded at 16k | prefill 512 folded / unfolded (ms) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for f in $formats; do
  "$bin/rotor-import" "$work/ckpt" -o "$work/$f.mlir" --kv-cache "$f" \
    --kv-capacity 16400 --quiet
  declare -A d4 d16 pre
  for fold in true false; do
    "$bin/rotor-aot" --quiet "$work/$f.mlir" -o "$work/$f-$fold.rotor" \
      --fold-kv-rotation=$fold 2> /dev/null
    d4[$fold]=$("$bin/rotor-run" "$work/$f-$fold.rotor" --inputs "$work/in-4.safetensors" \
      --outputs "$work/out.safetensors" --kv-length 4096 --bench 2 | ms "decode steps")
    d16[$fold]=$("$bin/rotor-run" "$work/$f-$fold.rotor" --inputs "$work/in-4.safetensors" \
      --outputs "$work/out.safetensors" --kv-length 16384 --bench 2 | ms "decode steps")
    pre[$fold]=$("$bin/rotor-run" "$work/$f-$fold.rotor" --inputs "$work/in-512.safetensors" \
      --outputs "$work/out.safetensors" --bench 1 | sed -n 's/.*prefill [0-9]* tokens \([0-9.]*\) ms.*/\1/p')
  done
  acc=$("$bin/rotor-run" "$work/$f-true.rotor" --inputs "$work/in-64.safetensors" \
    --outputs "$work/out.safetensors" --decode 16 --reference --tolerance 10)
  bytes=$(echo "$acc" | sed -n 's/.*KV cache: \([0-9]*\) bytes per token.*/\1/p')
  pcc=$(echo "$acc" | sed -n 's/.*reference PCC \([0-9.]*\),.*/\1/p')
  err=$(echo "$acc" | sed -n 's/.*max relative error \([0-9.e+-]*\),.*/\1/p')
  echo "| $f | $bytes | $pcc | $err | ${d4[true]} / ${d4[false]} | ${d16[true]} / ${d16[false]} | $(ratio "${d16[false]}" "${d16[true]}") | ${pre[true]} / ${pre[false]} |"
done
