#!/usr/bin/env bash
# On the build machine: compiles for CUDA (sm_90) what the GPU lit tests
# (REQUIRES: cuda-gpu) and the kernels' numeric checks run, into DIR
# (default .gpu/checks), so that bench/gpu/device-checks.sh can run them on
# a GPU machine that has no MLIR toolchain: the example layer, imported
# qwen3 (YaRN) and stablelm (partial rotary) layers, every KV-cache format
# (the turbo3 rotation folded and unfolded), and the precision plans of
# seed 000 (Qwen2.5's K bias of |171| in a bf16 cache, split and not).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="${ROTOR_BUILD_DIR:-$root/build}"
out="${1:-$root/.gpu/checks}"
py=/usr/bin/python3
aot() { "$build_dir/bin/rotor-aot" --quiet --target=cuda --gpu-chip=sm_90 "$@" 2> /dev/null; }
import() { "$build_dir/bin/rotor-import" --quiet "$@"; }
rm -rf "$out" && mkdir -p "$out"
cd "$out"

# test/e2e/cuda-gpu.test: the example layer, 37/45/305 tokens.
$py "$root/scripts/make_layer_inputs.py" --weights w.safetensors --inputs in37.safetensors --tokens 37 > /dev/null
$py "$root/scripts/make_layer_inputs.py" --inputs in45.safetensors --tokens 45 --seed 3 > /dev/null
$py "$root/scripts/make_layer_inputs.py" --inputs in305.safetensors --tokens 305 --seed 5 > /dev/null
aot "$root/examples/qwen2.5-0.5b-attention.mlir" -o example.rotor --params w.safetensors

# test/Import/cuda-gpu.test: imported layers against transformers-style attention.
$py "$root/scripts/make_layer_inputs.py" --inputs in128.safetensors --hidden 128 --tokens 21 --seed 4 > /dev/null
$py "$root/scripts/make_hf_checkpoint.py" qwen3 --family qwen3 --rope-scaling yarn --factor 4 > /dev/null
$py "$root/scripts/make_hf_checkpoint.py" stablelm --family stablelm > /dev/null
for m in qwen3 stablelm; do
  import $m -o $m.mlir --layers 0
  aot $m.mlir -o $m.rotor
done

# KV-cache formats (test/e2e/kv-cache-formats.test's layer), 12 and 190 tokens.
$py "$root/scripts/make_hf_checkpoint.py" kvckpt --family qwen3 --heads 8 --kv-heads 2 \
  --head-dim 128 --hidden 256 --num-layers 1 --seed 5 > /dev/null
$py "$root/scripts/make_layer_inputs.py" --inputs in256.safetensors --hidden 256 --tokens 12 --seed 3 > /dev/null
$py "$root/scripts/make_layer_inputs.py" --inputs in256-190.safetensors --hidden 256 --tokens 190 --seed 4 > /dev/null
for f in f32 bf16 f16 q8_0 q4_0 turbo4 turbo3; do
  import kvckpt -o kv-$f.mlir --kv-cache $f --kv-capacity 200
  aot kv-$f.mlir -o kv-$f.rotor
done
aot kv-turbo3.mlir -o kv-turbo3-unfolded.rotor --fold-kv-rotation=false

# Seed 000: the K bias of |171| with a bf16 cache, the split plan and not.
$py "$root/scripts/make_hf_checkpoint.py" qwenbias --family qwen2 --heads 8 --kv-heads 2 \
  --head-dim 128 --hidden 512 --num-layers 1 --seed 5 --k-bias-std 26.75 --k-bias-absmax 171 \
  --q-bias-std 12 --q-bias-absmax 48.25 > /dev/null
$py "$root/scripts/make_layer_inputs.py" --inputs in512.safetensors --hidden 512 --tokens 520 --seed 3 > /dev/null
import qwenbias -o qwenbias.mlir --kv-capacity 520
for plan in bf16 auto f32,weights=bf16,kv=bf16,split; do
  aot qwenbias.mlir -o "bias-${plan//[,=]/-}.rotor" --precision=$plan --precision-target=1e-2
done
rm -rf kvckpt qwenbias
# What travels to the GPU machine is limited (64 MiB): a bundle whose
# weights equal an earlier bundle's names it in weights.from instead, and
# device-checks.sh copies them back.
declare -A first
for b in *.rotor; do
  sum=$(md5sum "$b/weights.safetensors" | cut -d' ' -f1)
  if [ -n "${first[$sum]:-}" ]; then
    rm "$b/weights.safetensors" && echo "${first[$sum]}" > "$b/weights.from"
  else
    first[$sum]=$b
  fi
done
echo "bench/gpu/prepare-checks.sh: wrote $out ($(du -sh . | cut -f1))"
