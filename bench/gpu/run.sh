#!/usr/bin/env bash
# On the GPU machine: builds the runtime, runs the Qwen2.5-7B-shaped bundle
# from prepare.sh (DIR, default .gpu/bench) for prefill at T = 512, 2048, 8192
# and decode at KV lengths 1k, 4k, 16k, 32k, and in the same run PyTorch's
# scaled_dot_product_attention at the same shapes and a device-to-device
# copy (the bandwidth ceiling). Prints a markdown table.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${1:-$root/.gpu/bench}"
py=python3
shape=(--hidden 3584 --q-heads 28 --kv-heads 4 --head-dim 128)
cmake -S "$root/runtime" -B /tmp/rotor-rt -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build /tmp/rotor-rt >/dev/null
run=/tmp/rotor-rt/bin/rotor-run
# The weights, byte for byte what rotor-aot wrote: the same script and seed
# give the tensors, prepare.sh's header their order and offsets.
$py "$root/scripts/make_layer_inputs.py" --weights /tmp/rotor-w.safetensors \
  --inputs "$dir/in-check.safetensors" "${shape[@]}" --tokens 64 --seed 7 >/dev/null
$py "$root/bench/gpu/rebuild_weights.py" "$dir/weights.header" /tmp/rotor-w.safetensors \
  "$dir/layer.rotor/weights.safetensors"
$run "$dir/layer.rotor" --inputs "$dir/in-check.safetensors" \
  --outputs /tmp/out-check.safetensors --device cuda --decode 8 --tolerance 5e-5 >&2

echo "| shape | Rotor (ms) | Rotor | PyTorch SDPA (ms) | PyTorch / Rotor |"
echo "| --- | --- | --- | --- | --- |"
for t in 512 2048 8192; do
  $py "$root/scripts/make_layer_inputs.py" --inputs "$dir/in-$t.safetensors" \
    "${shape[@]}" --tokens "$t" --seed 7 >/dev/null
  ms=$($run "$dir/layer.rotor" --inputs "$dir/in-$t.safetensors" \
    --outputs /tmp/out.safetensors --device cuda --bench 3 |
    sed -n 's/.*prefill [0-9]* tokens \([0-9.]*\) ms.*/\1/p')
  torch=$($py "$root/bench/gpu/torch_sdpa.py" prefill "$t")
  $py - "$t" "$ms" "$torch" <<'PY'
import sys
t, ms, torch_ms = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
hq, d, e, kv = 28, 128, 3584, 512
flops = 2 * t * e * (2 * hq * d + 2 * kv) + 2 * 2 * t * t * hq * d / 2
print(f"| prefill T={t} (layer) | {ms:.3f} | {flops / ms / 1e9:.2f} TFLOP/s | "
      f"{torch_ms:.3f} (SDPA only) | {torch_ms / ms:.3f} |")
PY
done
for kv in 1024 4096 16384 32768; do
  ms=$($run "$dir/layer.rotor" --inputs "$dir/in-4.safetensors" \
    --outputs /tmp/out.safetensors --device cuda --kv-length "$kv" --bench 3 |
    sed -n 's/.*decode steps \([0-9.]*\) ms\/step.*/\1/p')
  torch=$($py "$root/bench/gpu/torch_sdpa.py" decode "$kv")
  $py - "$kv" "$ms" "$torch" <<'PY'
import sys
kv, ms, torch_ms = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
# Bytes a decode step must read: the K and V cache (f32) and the weights.
cache = 2 * kv * 4 * 128 * 4
weights = 4 * (3584 * 3584 * 2 + 512 * 3584 * 2 + 3584 + 1024)
print(f"| decode KV={kv} (layer) | {ms:.3f} | {(cache + weights) / ms / 1e6:.1f} GB/s | "
      f"{torch_ms:.3f} (SDPA only) | {torch_ms / ms:.3f} |")
PY
done
echo
echo "Device-to-device copy: $($py "$root/bench/gpu/torch_sdpa.py" copy 0) GB/s (read + write)"
