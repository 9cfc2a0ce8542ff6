// A per-head chain that no GEMM finishes (here: the chain's input is an
// argument, as after a decode GEMV) is one workgroup kernel when it has a
// rotation or a quantization: a block per (row tile, head) stages its rows
// in an f32 workgroup buffer and runs the chain's phases on it. Without the
// workgroup kernels each op, and each butterfly stage, is a loop nest.
// RUN: rotor-opt %s --rotor-select-kernel-config=workgroup-tiled-linear=true --rotor-lower-workgroup-kernels --convert-attn-to-linalg -split-input-file | FileCheck %s
// RUN: rotor-opt %s --convert-attn-to-linalg -split-input-file | FileCheck %s --check-prefix=OFF

// The decode K path: one token, four heads: a 1 x 4 grid of blocks, each
// staging 128 elements, then RoPE pairs, two butterfly stages, and one
// thread per 32-element block for scales and codes.
// CHECK-LABEL: func.func @decode_k(
// CHECK-DAG: %[[IN:.+]] = bufferization.to_buffer %arg0 read_only
// CHECK-DAG: %[[CODES:.+]] = memref.alloc() : memref<1x4x128xi8>
// CHECK-DAG: %[[SCALES:.+]] = memref.alloc() : memref<1x4x4xf16>
// CHECK: scf.forall (%{{.+}}, %[[HEAD:.+]]) in (1, 4) {
// CHECK: %[[BUF:.+]] = memref.alloca() : memref<1x128xf32, #gpu.address_space<workgroup>>
// CHECK: scf.forall (%{{.+}}) in (128) {
// CHECK: memref.load %[[IN]][%{{.+}}, %[[HEAD]], %{{.+}}]
// CHECK: memref.store %{{.+}}, %[[BUF]]
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.forall (%{{.+}}) in (64) {
// CHECK: math.roundeven %{{.+}} : f32
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.forall (%{{.+}}) in (64) {
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.forall (%{{.+}}) in (64) {
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.forall (%{{.+}}) in (4) {
// CHECK: memref.store %{{.+}}, %[[SCALES]]
// CHECK: memref.store %{{.+}}, %[[CODES]]
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>]}
// CHECK-NOT: linalg.generic
// CHECK: return
// OFF-LABEL: func.func @decode_k(
// OFF-NOT: scf.forall
// OFF-COUNT-5: linalg.generic
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

// Dynamic tokens: row tiles of 8 tokens; the rotation's result is the
// chain's, written as bf16.
// CHECK-LABEL: func.func @rotation(
// CHECK: %[[OUT:.+]] = memref.alloc(%{{.+}}) : memref<?x2x64xbf16>
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) {
// CHECK: memref.alloca() : memref<8x64xf32, #gpu.address_space<workgroup>>
// CHECK: memref.store %{{.+}}, %[[OUT]]
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>]}
// CHECK-NOT: linalg.generic
func.func @rotation(%x: tensor<?x2x64xbf16>) -> tensor<?x2x64xbf16> {
  %h = attn.hadamard %x rotation(<group = 2, s1 = [1, -1], s2 = [1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x64xbf16>
  return %h : tensor<?x2x64xbf16>
}

// -----

// A RoPE alone is already one elementwise loop nest: left to it.
// CHECK-LABEL: func.func @rope_alone(
// CHECK-NOT: scf.forall
// CHECK: linalg.generic
func.func @rope_alone(%x: tensor<1x2x64xf32>, %p: tensor<1xi32>) -> tensor<1x2x64xf32> {
  %r = attn.rope half_split %x, %p rotary_dim(64) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<1x2x64xf32>, tensor<1xi32>
  return %r : tensor<1x2x64xf32>
}

// -----

// f64 values do not fit the f32 workgroup buffer: the ops stay apart.
// CHECK-LABEL: func.func @f64_rotation(
// CHECK-NOT: scf.forall
// CHECK: linalg.generic
func.func @f64_rotation(%x: tensor<1x2x64xf64>) -> tensor<1x2x64xf64> {
  %h = attn.hadamard %x rotation(<group = 2, s1 = [1, -1], s2 = [1, 1]>)
      precision <compute = f64, accumulate = f64> : tensor<1x2x64xf64>
  return %h : tensor<1x2x64xf64>
}

// -----

// The RoPE phase owns pairs: an odd head dim stays apart.
// CHECK-LABEL: func.func @odd_head_dim(
// CHECK-NOT: scf.forall
// CHECK: linalg.generic
func.func @odd_head_dim(%x: tensor<1x2x5xf32>, %p: tensor<1xi32>) -> tensor<1x2x5xf32> {
  %r = attn.rope half_split %x, %p rotary_dim(4) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<1x2x5xf32>, tensor<1xi32>
  %h = attn.hadamard %r rotation(<group = 1, s1 = [-1], s2 = [1]>)
      precision <compute = f32, accumulate = f32> : tensor<1x2x5xf32>
  return %h : tensor<1x2x5xf32>
}
