// SDPA as workgroup-tiled attention (the GPU pipeline's default): one
// scf.forall iteration per (row tile, KV head, KV split) mapped to GPU
// blocks, whose buffers are allocas in an alloca scope and whose phases are
// scf.foralls mapped to threads, then a combine of the splits. Head dims
// whose tiles would not fit 48 KiB are left to the loop-level form.
// RUN: rotor-opt %s --rotor-select-kernel-config=workgroup-tiled-sdpa=true --rotor-lower-workgroup-kernels --convert-attn-to-linalg -split-input-file | FileCheck %s
// RUN: rotor-opt %s --convert-attn-to-linalg -split-input-file | FileCheck %s --check-prefix=OFF
// Only the op that cannot be a workgroup kernel says so.
// RUN: rotor-opt %s --rotor-select-kernel-config=workgroup-tiled-sdpa=true --rotor-lower-workgroup-kernels --convert-attn-to-linalg -split-input-file 2>&1 >/dev/null | FileCheck %s --check-prefix=WARN
// WARN-NOT: warning
// WARN: warning: lowered to the loop-level form, not a workgroup-tiled kernel: head dims 2048/2048 leave no tile within 48 KiB of shared memory
// WARN-NOT: warning

// CHECK-LABEL: func.func @prefill(
// CHECK-DAG: %[[Q:.+]] = bufferization.to_buffer %arg0 read_only : tensor<?x4x128xf32> to memref<?x4x128xf32, strided<[?, ?, 1], offset: ?>>
// CHECK-DAG: %[[K:.+]] = bufferization.to_buffer %arg1 read_only
// Vector loads only where K and V rows are 16-byte aligned, decided once.
// CHECK: memref.extract_aligned_pointer_as_index %[[K]]
// CHECK: %[[OUT:.+]] = memref.alloc(%{{.+}}) : memref<?x4x128xf32>
// Rows are (query, head) pairs of a KV head: the grid is row tiles x 2 KV
// heads x KV splits.
// CHECK: scf.forall (%[[RT:.+]], %[[KVH:.+]], %[[S:.+]]) in (%{{.+}}, 2, %{{.+}}) {
// CHECK: memref.alloca_scope {
// 32 query rows and 32 keys per tile at D = 128 (f32); rows padded by one.
// CHECK: memref.alloca() : memref<32x129xf32, #gpu.address_space<workgroup>>
// CHECK: memref.alloca() : memref<32x33xf32, #gpu.address_space<workgroup>>
// CHECK: memref.alloca() : memref<32x128xf32, #gpu.address_space<workgroup>>
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.for %[[J0:.+]] = %{{.+}} to %{{.+}} step %c32
// CHECK: vector.load %[[K]][{{.+}}] {alignment = 16 : i64} : memref<?x2x128xf32, strided<[?, ?, 1], offset: ?>>, vector<4xf32>
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: math.exp2
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: memref.store %{{.+}}, %[[OUT]][
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>, #gpu.block<z>]}
// The combine of the KV splits, when there are several.
// CHECK: scf.if
// CHECK: scf.forall
// CHECK: memref.store %{{.+}}, %[[OUT]][
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable
// OFF-LABEL: func.func @prefill(
// OFF-NOT: scf.forall
// OFF: scf.for
func.func @prefill(%q: tensor<?x4x128xf32>, %k: tensor<?x2x128xf32>, %v: tensor<?x2x128xf32>) -> tensor<?x4x128xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x128xf32>, tensor<?x2x128xf32>, tensor<?x2x128xf32> -> tensor<?x4x128xf32>
  return %o : tensor<?x4x128xf32>
}

// -----

// bf16 K/V: 8 elements per 16-byte load, held in workgroup memory as i16
// (moved, never converted, until used), and 64-row tiles fit at D = 64.
// CHECK-LABEL: func.func @prefill_bf16(
// CHECK: memref.alloca() : memref<64x65xi16, #gpu.address_space<workgroup>>
// CHECK: vector.load {{.+}} vector<8xbf16>
// CHECK: vector.bitcast {{.+}} : vector<8xbf16> to vector<8xi16>
func.func @prefill_bf16(%q: tensor<?x2x64xbf16>, %k: tensor<?x1x64xbf16>, %v: tensor<?x1x64xbf16>) -> tensor<?x2x64xbf16> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32>
      : tensor<?x2x64xbf16>, tensor<?x1x64xbf16>, tensor<?x1x64xbf16> -> tensor<?x2x64xbf16>
  return %o : tensor<?x2x64xbf16>
}

// -----

// With round_probabilities, P·V's phase rounds each probability it reads
// from the scores tile to bf16 (and widens it back) before its products;
// V's elements are only widened.
// CHECK-LABEL: func.func @prefill_bf16_rounded_probabilities(
// The row statistics' two exp2 (the correction and each probability).
// CHECK-COUNT-2: math.exp2
// CHECK: scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK-NEXT: %[[P:.+]] = memref.load %[[SCORES:.+]][%{{.+}}, %[[J]]] : memref<64x65xf32, #gpu.address_space<workgroup>>
// CHECK-NEXT: %[[PR:.+]] = arith.truncf %[[P]] : f32 to bf16
// CHECK-NEXT: arith.extf %[[PR]] : bf16 to f32
// CHECK-NEXT: memref.load %[[SCORES]][%{{.+}}, %[[J]]]
// CHECK-NEXT: arith.truncf
// CHECK-NEXT: arith.extf
// CHECK-NEXT: memref.load %{{.+}}[%[[J]], %{{.+}}] : memref<64x65xi16, #gpu.address_space<workgroup>>
// CHECK-NEXT: arith.bitcast
// CHECK-NEXT: arith.extf
func.func @prefill_bf16_rounded_probabilities(%q: tensor<?x2x64xbf16>, %k: tensor<?x1x64xbf16>, %v: tensor<?x1x64xbf16>) -> tensor<?x2x64xbf16> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32> round_probabilities
      : tensor<?x2x64xbf16>, tensor<?x1x64xbf16>, tensor<?x1x64xbf16> -> tensor<?x2x64xbf16>
  return %o : tensor<?x2x64xbf16>
}

// -----

// A head dim that is not whole 16-byte vectors: scalar loads only.
// CHECK-LABEL: func.func @odd_head_dim(
// CHECK-NOT: vector.load
// CHECK-NOT: extract_aligned_pointer
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>, #gpu.block<z>]}
func.func @odd_head_dim(%q: tensor<?x2x10xf32>, %k: tensor<?x2x10xf32>, %v: tensor<?x2x10xf32>) -> tensor<?x2x10xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x2x10xf32>, tensor<?x2x10xf32>, tensor<?x2x10xf32> -> tensor<?x2x10xf32>
  return %o : tensor<?x2x10xf32>
}

// -----

// One static query row is a decode step: a workgroup's rows are the 2 query
// heads of one KV head (tiles of 2 rows), with 64-key tiles.
// CHECK-LABEL: func.func @decode(
// CHECK: memref.alloca() : memref<64x129xf32, #gpu.address_space<workgroup>>
// CHECK: memref.alloca() : memref<2x65xf32, #gpu.address_space<workgroup>>
// CHECK: #gpu.block<z>
func.func @decode(%q: tensor<1x4x128xf32>, %k: tensor<?x2x128xf32>, %v: tensor<?x2x128xf32>) -> tensor<1x4x128xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<1x4x128xf32>, tensor<?x2x128xf32>, tensor<?x2x128xf32> -> tensor<1x4x128xf32>
  return %o : tensor<1x4x128xf32>
}

// -----

// Even 8-row tiles of D = 2048 would not fit 48 KiB: the loop-level form.
// CHECK-LABEL: func.func @huge_head_dim(
// CHECK-NOT: #gpu.block
// CHECK: scf.for
func.func @huge_head_dim(%q: tensor<?x1x2048xf32>, %k: tensor<?x1x2048xf32>, %v: tensor<?x1x2048xf32>) -> tensor<?x1x2048xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x1x2048xf32>, tensor<?x1x2048xf32>, tensor<?x1x2048xf32> -> tensor<?x1x2048xf32>
  return %o : tensor<?x1x2048xf32>
}

// -----

// Over a quantized cache, the kernel reads the codes (16 per vector load)
// and each block's scale, and dequantizes while staging the K/V tile; the
// dequantizations themselves are gone, not lowered.
// CHECK-LABEL: func.func @quantized_kv(
// CHECK-NOT: attn.dequantize
// CHECK-NOT: linalg.generic
// CHECK-DAG: %[[KC:.+]] = bufferization.to_buffer %arg1 read_only
// CHECK-DAG: %[[KS:.+]] = bufferization.to_buffer %arg2 read_only
// CHECK: scf.forall
// CHECK: vector.load %[[KC]][{{.+}}] {alignment = 16 : i64} : memref<?x2x128xi8, strided<[?, ?, 1], offset: ?>>, vector<16xi8>
// CHECK: memref.load %[[KS]][
// CHECK: arith.sitofp %{{.+}} : i8 to f32
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>, #gpu.block<z>]}
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

// A cache read as packed bytes (unpack_blocks read only by the
// dequantizations): the kernel stages K and V from the bytes, unpacking
// each 3-bit code (two bytes, a shift, a mask) and each block's f16 scale
// while staging; no unpacking pass over the whole cache remains.
// CHECK-LABEL: func.func @packed_kv(
// CHECK-NOT: attn.unpack_blocks
// CHECK-NOT: attn.dequantize
// CHECK-NOT: linalg.generic
// CHECK-DAG: %[[KB:.+]] = bufferization.to_buffer %arg1 read_only : tensor<?x2x52xi8>
// CHECK: scf.forall
// CHECK: %[[NEXT:.+]] = arith.minui %{{.+}}, %c51 : index
// CHECK: memref.load %[[KB]][%{{.+}}, %{{.+}}, %[[NEXT]]]
// CHECK: arith.shrui
// CHECK: arith.andi %{{.+}}, %c7_i32
// CHECK: arith.bitcast %{{.+}} : i16 to f16
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>, #gpu.block<z>]}
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @packed_kv(%q: tensor<1x8x128xf32>, %kb: tensor<?x2x52xi8>, %vb: tensor<?x2x52xi8>) -> tensor<1x8x128xf32> {
  %kc, %ks = attn.unpack_blocks %kb format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f16>)
      : tensor<?x2x52xi8> -> tensor<?x2x128xi8>, tensor<?x2x2xf16>
  %vc, %vs = attn.unpack_blocks %vb format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f16>)
      : tensor<?x2x52xi8> -> tensor<?x2x128xi8>, tensor<?x2x2xf16>
  %k = attn.dequantize %kc, %ks format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f16>)
      precision <compute = f32, accumulate = f32>
      : tensor<?x2x128xi8>, tensor<?x2x2xf16> -> tensor<?x2x128xf32>
  %v = attn.dequantize %vc, %vs format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f16>)
      precision <compute = f32, accumulate = f32>
      : tensor<?x2x128xi8>, tensor<?x2x2xf16> -> tensor<?x2x128xf32>
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<1x8x128xf32>, tensor<?x2x128xf32>, tensor<?x2x128xf32> -> tensor<1x8x128xf32>
  return %o : tensor<1x8x128xf32>
}
