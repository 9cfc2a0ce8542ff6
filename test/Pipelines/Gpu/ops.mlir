// Every op family through the GPU pipeline to PTX for sm_90 (no CUDA
// toolkit needed for PTX): one kernel module per parallel loop or
// workgroup-tiled kernel, launched from host code.
// REQUIRES: cuda-toolkit
// RUN: rotor-opt %s --rotor-gpu-pipeline=chip=sm_90 -split-input-file | FileCheck %s

// A projection of several tokens is a workgroup-tiled GEMM: one launch,
// x and W slices staged in shared memory by 16-byte loads.
// CHECK-LABEL: llvm.func @linear(
// CHECK: gpu.launch_func @linear_kernel::@linear_kernel
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.binary @linear_kernel
// CHECK-SAME: #nvvm.target<chip = "sm_90"
// CHECK-SAME: .visible .entry linear_kernel(
// CHECK-SAME: ld.global.v4.b32
// CHECK-SAME: bar.sync
func.func @linear(%x: tensor<?x64xf32>, %w: tensor<32x64xf32>, %b: tensor<32xf32>) -> tensor<?x32xf32> {
  %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
      : tensor<?x64xf32>, tensor<32x64xf32>, tensor<32xf32> -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Decode-shaped, the projection is a GEMV: one launch, 16-byte W loads.
// CHECK-LABEL: llvm.func @gemv(
// CHECK: gpu.launch_func @gemv_kernel::@gemv_kernel
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.binary @gemv_kernel
// CHECK-SAME: ld.global.v4.b32
// CHECK-SAME: bar.sync
func.func @gemv(%x: tensor<1x64xf32>, %w: tensor<32x64xf32>, %b: tensor<32xf32>) -> tensor<1x32xf32> {
  %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
      : tensor<1x64xf32>, tensor<32x64xf32>, tensor<32xf32> -> tensor<1x32xf32>
  return %y : tensor<1x32xf32>
}

// -----

// The K path of a rotated, quantized cache is one kernel: the GEMM whose
// epilogue applies RoPE, the rotation and the 4-bit quantization, storing
// only f16 scales and i8 codes.
// CHECK-LABEL: llvm.func @k_path(
// CHECK: gpu.launch_func @k_path_kernel::@k_path_kernel
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.binary @k_path_kernel
// CHECK-SAME: bar.sync
// CHECK-SAME: st.global.b16
// CHECK-SAME: cvt.rni.f32.f32
// CHECK-SAME: st.global.b8
func.func @k_path(%x: tensor<?x64xf32>, %w: tensor<256x64xbf16>, %b: tensor<256xf32>,
                  %p: tensor<?xi32>) -> (tensor<?x2x128xi8>, tensor<?x2x4xf16>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x64xf32>
  %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
      : tensor<?x64xf32>, tensor<256x64xbf16>, tensor<256xf32> -> tensor<?x256xbf16>
  %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, 2, 128]
      : tensor<?x256xbf16> into tensor<?x2x128xbf16>
  %r = attn.rope half_split %y3, %p rotary_dim(128) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>, tensor<?xi32>
  %h = attn.hadamard %r rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, -1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>
  %c, %s = attn.quantize %h format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>
  return %c, %s : tensor<?x2x128xi8>, tensor<?x2x4xf16>
}

// -----

// After a decode GEMV, the K path's RoPE, rotation and quantization are one
// kernel (not one per op and per butterfly stage), reading the RoPE table
// from its own module.
// CHECK-LABEL: llvm.func @decode_k(
// CHECK: gpu.launch_func @decode_k_kernel::@decode_k_kernel
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.binary @decode_k_kernel
// CHECK-SAME: .global .align 64 .b8 __constant_64xf64[512] = {
// CHECK-SAME: bar.sync
// CHECK-SAME: st.global.b8
func.func @decode_k(%k: tensor<1x4x128xf32>, %p: tensor<1xi32>)
    -> (tensor<1x4x128xi8>, tensor<1x4x4xf16>) {
  %r = attn.rope half_split %k, %p rotary_dim(128) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<1x4x128xf32>, tensor<1xi32>
  %h = attn.hadamard %r rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, -1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<1x4x128xf32>
  %c, %s = attn.quantize %h format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<1x4x128xf32>
  return %c, %s : tensor<1x4x128xi8>, tensor<1x4x4xf16>
}

// -----

// Decode over a quantized cache: the SDPA kernel loads 16 codes at a time
// and dequantizes while staging (no dequantization kernel), then the
// split-KV combine.
// CHECK-LABEL: llvm.func @quantized_kv(
// CHECK: gpu.launch_func @quantized_kv_kernel::@quantized_kv_kernel
// CHECK: gpu.launch_func @quantized_kv_kernel_0::@quantized_kv_kernel
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.binary @quantized_kv_kernel
// CHECK-SAME: ld.global.v4.b32
// CHECK-SAME: bar.sync
func.func @quantized_kv(%q: tensor<1x8x128xf32>, %kc: tensor<?x2x128xi8>, %ks: tensor<?x2x4xf16>,
                        %vc: tensor<?x2x128xi8>, %vs: tensor<?x2x4xf16>) -> tensor<1x8x128xf32> {
  %k = attn.dequantize %kc, %ks format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32>
      : tensor<?x2x128xi8>, tensor<?x2x4xf16> -> tensor<?x2x128xf32>
  %v = attn.dequantize %vc, %vs format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32>
      : tensor<?x2x128xi8>, tensor<?x2x4xf16> -> tensor<?x2x128xf32>
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<1x8x128xf32>, tensor<?x2x128xf32>, tensor<?x2x128xf32> -> tensor<1x8x128xf32>
  return %o : tensor<1x8x128xf32>
}

// -----

// CHECK-LABEL: llvm.func @rope(
// The angle is reduced modulo 2 pi in f64 (cvt.rni.f64), and bf16 results
// round to nearest even in integer arithmetic (+0x7fff + lsb).
// CHECK: gpu.binary @rope_kernel
// CHECK-SAME: .entry rope_kernel(
// CHECK-SAME: cvt.rni.f64.f64
// CHECK-SAME: 32767
func.func @rope(%x: tensor<?x2x64xbf16>, %p: tensor<?xi32>) -> tensor<?x2x64xbf16> {
  %y = attn.rope interleaved %x, %p rotary_dim(32) theta(1.0e+04)
      precision <compute = bf16, accumulate = f32> : tensor<?x2x64xbf16>, tensor<?xi32>
  return %y : tensor<?x2x64xbf16>
}

// -----

// CHECK-LABEL: llvm.func @hadamard(
// CHECK: gpu.launch_func @hadamard_kernel
// CHECK: gpu.binary @hadamard_kernel
func.func @hadamard(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %y = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, -1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x8xf32>
  return %y : tensor<3x8xf32>
}

// -----

// CHECK-LABEL: llvm.func @quantize(
// CHECK: gpu.launch_func @quantize_kernel
// CHECK: cvt.rni.f32.f32
func.func @quantize(%x: tensor<?x64xf32>) -> (tensor<?x64xi8>, tensor<?x2xf16>) {
  %c, %s = attn.quantize %x format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x64xf32>
  return %c, %s : tensor<?x64xi8>, tensor<?x2xf16>
}

// -----

// Prefill SDPA is one workgroup-tiled kernel (workgroup-tiled-sdpa.mlir
// looks at it closely) and a combine of KV splits: no host loop over KV
// tiles.
// CHECK-LABEL: llvm.func @sdpa(
// CHECK: gpu.launch_func @sdpa_kernel::@sdpa_kernel
// CHECK: llvm.cond_br
// CHECK: gpu.launch_func @sdpa_kernel_0::@sdpa_kernel
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.binary @sdpa_kernel
// CHECK-SAME: bar.sync
// CHECK-SAME: ex2.approx.f32
func.func @sdpa(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x64xf32>) -> tensor<?x4x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x4x64xf32>
  return %o : tensor<?x4x64xf32>
}
