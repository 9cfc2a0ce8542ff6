#!/usr/bin/env bash
# Issue 14's table, plan x layer: three qwen2/llama layers with the field's
# bias statistics (Qwen2.5-7B-like: K |171| std 26.75, Q 48.25; R1-Distill-
# 14B-like: K |21.75| std 1.5, Q |12| std 1; Llama-like: none), hidden 1024, 8/2 heads of 128,
# a 2048-token prefill and 8 decode steps against the fp64 reference (1-PCC,
# max relative error, attn-select-precision's prediction), KV bytes per
# token, and the host decode step at KV 4k (one thread, same run). Plans:
# f32 everywhere, bf16 everywhere, bf16 with RoPE in f32 (the field's
# attempt), f32 with bf16 caches ("fp32 Q + bf16 cache"), and the selected
# plan at target 1e-2. Prints a markdown table. ROTOR_PRECISION_TOKENS
# overrides the prefill length.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$root/scripts/setup.sh" >&2
build_dir="${ROTOR_BUILD_DIR:-$root/build}"
work="$build_dir/bench-precision"
mkdir -p "$work"
py=/usr/bin/python3
bin="$build_dir/bin"
tokens=$(( ${ROTOR_PRECISION_TOKENS:-2048} + 8 ))
shape=(--heads 8 --kv-heads 2 --head-dim 128 --hidden 1024 --num-layers 1 --seed 5)

$py "$root/scripts/make_hf_checkpoint.py" "$work/qwen" --family qwen2 "${shape[@]}" \
  --k-bias-std 26.75 --k-bias-absmax 171 --q-bias-std 12 --q-bias-absmax 48.25 >&2
$py "$root/scripts/make_hf_checkpoint.py" "$work/r1" --family qwen2 "${shape[@]}" \
  --k-bias-std 1.5 --k-bias-absmax 21.75 --q-bias-std 1 --q-bias-absmax 12 >&2
$py "$root/scripts/make_hf_checkpoint.py" "$work/llama" --family llama "${shape[@]}" >&2
$py "$root/scripts/make_layer_inputs.py" --inputs "$work/in.safetensors" \
  --hidden 1024 --tokens $tokens --seed 3 >&2
$py "$root/scripts/make_layer_inputs.py" --inputs "$work/in-4.safetensors" \
  --hidden 1024 --tokens 4 --seed 1 >&2

echo "| layer | plan | 1-PCC | max rel. err | predicted | KV bytes/token | decode 4k (ms) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for layer in qwen r1 llama; do
  "$bin/rotor-import" "$work/$layer" -o "$work/$layer.mlir" --kv-capacity 4100 --quiet
  for plan in f32 bf16 rope-f32 q-f32 auto; do
    out="$work/$layer-$plan"
    "$bin/rotor-aot" --quiet "$work/$layer.mlir" -o "$out.rotor" --precision=$plan \
      --precision-target=1e-2 --precision-report="$out.json" 2> "$out.err"
    line=$("$bin/rotor-run" "$out.rotor" --inputs "$work/in.safetensors" \
      --outputs "$work/out.safetensors" --decode 8 --reference --tolerance 10 | grep reference)
    pcc=$(sed -n 's/.*PCC \([0-9.]*\),.*/\1/p' <<< "$line")
    err=$(sed -n 's/.*max relative error \([0-9.e+-]*\),.*/\1/p' <<< "$line")
    step=$("$bin/rotor-run" "$out.rotor" --inputs "$work/in-4.safetensors" \
      --outputs "$work/out.safetensors" --kv-length 4096 --bench 2 |
      sed -n 's/.*decode steps \([0-9.]*\) ms.*/\1/p')
    read -r pred kv <<< "$($py -c "import json,sys; l=json.load(open(sys.argv[1]))['layers'][0]; print('%.2e %d' % (l['predicted']['max_relative_error'], l['kv_bytes_per_token']))" "$out.json")"
    name=$plan
    [ "$plan" = auto ] && name="selected: $($py -c "import json,sys; print(json.load(open(sys.argv[1]))['layers'][0]['plan'])" "$out.json")"
    echo "| $layer | $name | $(awk -v p="$pcc" 'BEGIN { printf "%.1e", 1 - p }') | $err | $pred | $kv | $step |"
  done
done
