// rotor-select-kernel-config records each op's kernel as its attn.kernel
// attribute. The example layer (Qwen2.5-0.5B: 14 query heads, 2 KV heads,
// D = 64, f32) with every kernel family allowed, as the GPU pipeline does:
// prefill projections are 64x64-tile GEMMs and its SDPA a workgroup kernel
// of 32 rows x 32 keys; decode projections are GEMVs and its SDPA has 8
// rows (7 query heads per KV head, rounded up to a power of two) of 64
// keys, split across up to 256 workgroups (two waves of sm_90's 132 SMs).
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-select-kernel-config="workgroup-tiled-sdpa=true workgroup-tiled-linear=true split-kv-decode=true" | FileCheck %s --check-prefix=GPU
// GPU-LABEL: func.func @prefill(
// GPU-COUNT-3: attn.linear {{.+}} {attn.kernel = #attn.kernel<gemm, rows = 64, cols = 64, threads = 128>}
// GPU: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<workgroup_tiled, rows = 32, keys = 32, threads = 128, workgroups = 256>}
// GPU: attn.linear {{.+}} {attn.kernel = #attn.kernel<gemm, rows = 64, cols = 64, threads = 128>}
// GPU-LABEL: func.func @decode(
// GPU-COUNT-3: attn.linear {{.+}} {attn.kernel = #attn.kernel<gemv, cols = 4, threads = 128>}
// GPU: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<workgroup_tiled, rows = 8, keys = 64, threads = 128, workgroups = 256>}
// GPU: attn.linear {{.+}} {attn.kernel = #attn.kernel<gemv, cols = 4, threads = 128>}

// The target sets the split's aim: an A100 (sm_80, 108 SMs) aims at 128
// workgroups; the block size sets the SDPA kernel's threads.
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-select-kernel-config="workgroup-tiled-sdpa=true chip=sm_80 threads=256" | FileCheck %s --check-prefix=A100
// A100-LABEL: func.func @decode(
// A100: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<workgroup_tiled, rows = 8, keys = 64, threads = 256, workgroups = 128>}

// The pass's defaults: loop-level projections, SDPA over KV tiles of 64
// keys (the decode step too, unless split-KV is allowed).
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-select-kernel-config | FileCheck %s --check-prefix=HOST
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-select-kernel-config="split-kv-decode=true kv-tile-size=128" | FileCheck %s --check-prefix=SPLIT
// HOST-LABEL: func.func @prefill(
// HOST-COUNT-3: attn.linear {{.+}} {attn.kernel = #attn.kernel<loops>}
// HOST: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<loops, keys = 64>}
// HOST-LABEL: func.func @decode(
// HOST: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<loops, keys = 64>}
// SPLIT-LABEL: func.func @prefill(
// SPLIT: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<loops, keys = 128>}
// SPLIT-LABEL: func.func @decode(
// SPLIT: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<split_kv, keys = 128>}

// RUN: rotor-opt %s -split-input-file --rotor-select-kernel-config="workgroup-tiled-sdpa=true workgroup-tiled-linear=true" | FileCheck %s
// Options that would make invalid attributes are refused.
// RUN: not rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-select-kernel-config="chip=gfx90a" 2>&1 | FileCheck %s --check-prefix=CHIP
// CHIP: rotor-select-kernel-config: chip 'gfx90a' is not an NVVM chip name of the form sm_NN or sm_NNa
// RUN: not rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-select-kernel-config="threads=100" 2>&1 | FileCheck %s --check-prefix=THREADS
// THREADS: rotor-select-kernel-config: threads must be a multiple of 32 between 32 and 1024, got 100
// RUN: rotor-opt %s -split-input-file --rotor-select-kernel-config="workgroup-tiled-sdpa=true workgroup-tiled-linear=true" 2>&1 >/dev/null | FileCheck %s --check-prefix=WARN
// WARN-NOT: warning
// WARN: :[[@LINE+20]]:{{[0-9]+}}: warning: lowered to the loop-level form, not a workgroup-tiled kernel: head dims 2048/2048 leave no tile within 48 KiB of shared memory
// WARN-NOT: warning

// Head dims whose tiles cannot fit 48 KiB of shared memory: smaller tiles
// first (D = 512 f32 fits 8 keys), then the loop-level form with a warning.
// CHECK-LABEL: func.func @wide_heads(
// CHECK: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<workgroup_tiled, rows = 8, keys = 8, threads = 128, workgroups = 256>}
func.func @wide_heads(%q: tensor<?x2x512xf32>, %k: tensor<?x2x512xf32>,
                      %v: tensor<?x2x512xf32>) -> tensor<?x2x512xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x2x512xf32>, tensor<?x2x512xf32>, tensor<?x2x512xf32> -> tensor<?x2x512xf32>
  return %o : tensor<?x2x512xf32>
}

// -----

// CHECK-LABEL: func.func @too_wide_heads(
// CHECK: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<loops, keys = 64>}
func.func @too_wide_heads(%q: tensor<?x2x2048xf32>, %k: tensor<?x2x2048xf32>,
                          %v: tensor<?x2x2048xf32>) -> tensor<?x2x2048xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x2x2048xf32>, tensor<?x2x2048xf32>, tensor<?x2x2048xf32> -> tensor<?x2x2048xf32>
  return %o : tensor<?x2x2048xf32>
}

// -----

// A projection with a dynamic weight shape has no workgroup kernel.
// CHECK-LABEL: func.func @dynamic_weight(
// CHECK: attn.linear {{.+}} {attn.kernel = #attn.kernel<loops>}
func.func @dynamic_weight(%x: tensor<?x64xf32>, %w: tensor<?x64xf32>) -> tensor<?x?xf32> {
  %y = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      : tensor<?x64xf32>, tensor<?x64xf32> -> tensor<?x?xf32>
  return %y : tensor<?x?xf32>
}

// -----

// A decode K path after its GEMV: every op that can start a per-head chain
// with a rotation or quantization may be a head-chain kernel; a RoPE alone
// may not.
// CHECK-LABEL: func.func @chain(
// CHECK: attn.rope {{.+}} {attn.kernel = #attn.kernel<head_chain, rows = 8, threads = 128>}
// CHECK: attn.hadamard {{.+}} {attn.kernel = #attn.kernel<head_chain, rows = 8, threads = 128>}
// CHECK: attn.quantize {{.+}} {attn.kernel = #attn.kernel<head_chain, rows = 8, threads = 128>}
// CHECK-LABEL: func.func @rope_alone(
// CHECK-NOT: attn.kernel
// CHECK: return
func.func @chain(%k: tensor<1x4x128xf32>, %p: tensor<1xi32>)
    -> (tensor<1x4x128xi8>, tensor<1x4x4xf16>) {
  %r = attn.rope half_split %k, %p rotary_dim(128) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<1x4x128xf32>, tensor<1xi32>
  %h = attn.hadamard %r rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, -1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<1x4x128xf32>
  %c, %s = attn.quantize %h format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<1x4x128xf32>
  return %c, %s : tensor<1x4x128xi8>, tensor<1x4x4xf16>
}
func.func @rope_alone(%k: tensor<1x4x128xf32>, %p: tensor<1xi32>) -> tensor<1x4x128xf32> {
  %r = attn.rope half_split %k, %p rotary_dim(128) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<1x4x128xf32>, tensor<1xi32>
  return %r : tensor<1x4x128xf32>
}

// -----

// A kernel the IR's author set is kept: here, smaller SDPA tiles.
// CHECK-LABEL: func.func @forced(
// CHECK: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<workgroup_tiled, rows = 16, keys = 16, threads = 64, workgroups = 32>}
func.func @forced(%q: tensor<?x2x64xf32>, %k: tensor<?x2x64xf32>,
                  %v: tensor<?x2x64xf32>) -> tensor<?x2x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<workgroup_tiled, rows = 16, keys = 16, threads = 64, workgroups = 32>}
      : tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x2x64xf32>
  return %o : tensor<?x2x64xf32>
}

// The pipelines' tile defaults: 128 keys for the host, 64 for GPU targets
// (their loop-level form), and kv-tile-size overrides either.
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-host-pipeline -mlir-print-ir-after=rotor-select-kernel-config -o /dev/null 2>&1 | FileCheck %s --check-prefix=HOSTPIPE
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-gpu-emulation-pipeline="workgroup-tiled-sdpa=false" -mlir-print-ir-after=rotor-select-kernel-config -o /dev/null 2>&1 | FileCheck %s --check-prefix=GPUPIPE
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-host-pipeline="kv-tile-size=32" -mlir-print-ir-after=rotor-select-kernel-config -o /dev/null 2>&1 | FileCheck %s --check-prefix=GIVEN
// HOSTPIPE-LABEL: func.func @prefill(
// HOSTPIPE: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<loops, keys = 128>}
// GPUPIPE-LABEL: func.func @prefill(
// GPUPIPE: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<loops, keys = 64>}
// GIVEN-LABEL: func.func @prefill(
// GIVEN: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<loops, keys = 32>}
