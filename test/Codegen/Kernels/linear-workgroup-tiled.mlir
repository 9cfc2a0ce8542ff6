// Projections of several tokens as workgroup-tiled GEMMs (the GPU
// pipeline's default): one scf.forall iteration per 64x64 output tile
// mapped to GPU blocks; per 32-wide reduction slice, x and W rows staged in
// padded workgroup buffers (16-byte loads where aligned), then 4x8
// micro-tiles per thread accumulated in a workgroup buffer that starts at
// the bias. A decode-shaped projection (up to 15 static tokens) is a GEMV.
// RUN: rotor-opt %s --rotor-select-kernel-config=workgroup-tiled-linear=true --rotor-lower-workgroup-kernels --convert-attn-to-linalg -split-input-file | FileCheck %s
// RUN: rotor-opt %s --convert-attn-to-linalg -split-input-file | FileCheck %s --check-prefix=OFF

// CHECK-LABEL: func.func @prefill(
// CHECK-DAG: %[[X:.+]] = bufferization.to_buffer %arg0 read_only : tensor<?x896xf32> to memref<?x896xf32, strided<[?, 1], offset: ?>>
// CHECK-DAG: %[[B:.+]] = bufferization.to_buffer %arg2 read_only
// CHECK-DAG: %[[Y:.+]] = memref.alloc(%{{.+}}) : memref<?x128xf32>
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) {
// CHECK: memref.alloca() : memref<64x33xf32, #gpu.address_space<workgroup>>
// CHECK: memref.alloca() : memref<64x33xf32, #gpu.address_space<workgroup>>
// CHECK: memref.alloca() : memref<64x64xf32, #gpu.address_space<workgroup>>
// CHECK: memref.load %[[B]]
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.for %{{.+}} = %c0{{.*}} to %c896{{.*}} step %c32
// CHECK: vector.load %[[X]][{{.+}}] {alignment = 16 : i64} : memref<?x896xf32, strided<[?, 1], offset: ?>>, vector<4xf32>
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: vector.load
// CHECK: } {mapping = [#gpu.thread<x>]}
// The 4x8 micro-tile: 32 sums carried through the slice.
// CHECK: scf.for {{.+}} -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: memref.store %{{.+}}, %[[Y]][
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>]}
// CHECK: bufferization.to_tensor %[[Y]] restrict writable
// OFF-LABEL: func.func @prefill(
// OFF-NOT: scf.forall
// OFF: linalg.generic
func.func @prefill(%x: tensor<?x896xf32>, %w: tensor<128x896xf32>, %b: tensor<128xf32>) -> tensor<?x128xf32> {
  %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
      : tensor<?x896xf32>, tensor<128x896xf32>, tensor<128xf32> -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

// One static token: a GEMV. 32 blocks of 4 outputs; each output's W row is
// read by 32 lanes, 16 bytes each per step (7 steps for 896), and the
// lanes' partial sums are added in a second phase.
// CHECK-LABEL: func.func @decode(
// CHECK: scf.forall (%{{.+}}) in (32) {
// CHECK: memref.alloca() : memref<1x4x32xf32, #gpu.address_space<workgroup>>
// CHECK: scf.for %{{.+}} = %c0{{.*}} to %c7{{.*}} step %c1{{.*}} iter_args
// CHECK: vector.load {{.+}} vector<4xf32>
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.for %{{.+}} = %c0{{.*}} to %c32{{.*}}
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: } {mapping = [#gpu.block<x>]}
func.func @decode(%x: tensor<1x896xf32>, %w: tensor<128x896xf32>) -> tensor<1x128xf32> {
  %y = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      : tensor<1x896xf32>, tensor<128x896xf32> -> tensor<1x128xf32>
  return %y : tensor<1x128xf32>
}

// -----

// bf16 operands are staged as i16 and rounded results written as bf16.
// CHECK-LABEL: func.func @bf16(
// CHECK: memref.alloca() : memref<64x33xi16, #gpu.address_space<workgroup>>
// CHECK: vector.load {{.+}} vector<8xbf16>
// CHECK: arith.truncf {{.+}} : f32 to bf16
func.func @bf16(%x: tensor<?x64xbf16>, %w: tensor<64x64xbf16>) -> tensor<?x64xbf16> {
  %y = attn.linear %x, %w precision <compute = bf16, accumulate = f32>
      : tensor<?x64xbf16>, tensor<64x64xbf16> -> tensor<?x64xbf16>
  return %y : tensor<?x64xbf16>
}

// -----

// A projection that only feeds a RoPE through its head split is one GEMM
// whose column tile is a head (32 rows x 128 at D = 128): its epilogue
// rounds each output and rotates it with its partner from the same tile.
// CHECK-LABEL: func.func @with_rope(
// CHECK: %[[OUT:.+]] = memref.alloc(%{{.+}}) : memref<?x2x128xbf16>
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) {
// CHECK: memref.alloca() : memref<32x128xf32, #gpu.address_space<workgroup>>
// CHECK-NOT: linalg.generic
// CHECK: math.roundeven %{{.+}} : f32
// CHECK: memref.store %{{.+}}, %[[OUT]][
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>]}
// CHECK-NOT: linalg.generic
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @with_rope(%x: tensor<?x64xf32>, %w: tensor<256x64xbf16>, %b: tensor<256xf32>,
                     %p: tensor<?xi32>) -> tensor<?x2x128xbf16> {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x64xf32>
  %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
      : tensor<?x64xf32>, tensor<256x64xbf16>, tensor<256xf32> -> tensor<?x256xbf16>
  %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, 2, 128]
      : tensor<?x256xbf16> into tensor<?x2x128xbf16>
  %r = attn.rope half_split %y3, %p rotary_dim(128) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>, tensor<?xi32>
  return %r : tensor<?x2x128xbf16>
}

// -----

// The K path of a rotated, quantized cache: RoPE, rotation and quantization
// all run in the GEMM's epilogue, in place in the tile's sums: one pair
// phase for the RoPE (which also applies the rotation's input signs), one
// phase per butterfly stage (G = 4: two), then one thread per 32-element
// block for the scale and codes. Only codes and scales reach memory.
// CHECK-LABEL: func.func @k_path(
// CHECK-DAG: %[[CODES:.+]] = memref.alloc(%{{.+}}) : memref<?x2x128xi8>
// CHECK-DAG: %[[SCALES:.+]] = memref.alloc(%{{.+}}) : memref<?x2x4xf16>
// CHECK: scf.forall (%{{.+}}, %[[COL:.+]]) in (%{{.+}}, 2) {
// CHECK: %[[SUMS:.+]] = memref.alloca() : memref<32x128xf32, #gpu.address_space<workgroup>>
// CHECK: scf.for
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: }
// CHECK: scf.forall (%{{.+}}) in (2048) {
// CHECK: math.roundeven %{{.+}} : f32
// CHECK: memref.store %{{.+}}, %[[SUMS]]
// CHECK: memref.store %{{.+}}, %[[SUMS]]
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.forall (%{{.+}}) in (2048) {
// CHECK: arith.addf
// CHECK: arith.subf
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.forall (%{{.+}}) in (2048) {
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.forall (%{{.+}}) in (128) {
// CHECK: math.absf
// CHECK: memref.store %{{.+}}, %[[SCALES]][
// CHECK: math.roundeven
// CHECK: memref.store %{{.+}}, %[[CODES]][
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>]}
// CHECK-NOT: linalg.generic
// CHECK: return
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

// The V path: no RoPE, so the rotation's input signs are a phase of their
// own; signs are read from bit masks (no table): s1 has a -1 at position 1.
// CHECK-LABEL: func.func @v_path(
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) {
// CHECK: scf.forall (%{{.+}}) in (4096) {
// CHECK: arith.constant 2 : i64
// CHECK: arith.shrui
// CHECK: arith.select
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.forall (%{{.+}}) in (2048) {
// CHECK: arith.subf
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: scf.forall (%{{.+}}) in (64) {
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>]}
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @v_path(%x: tensor<?x64xf32>, %w: tensor<256x64xbf16>)
    -> (tensor<?x2x128xi8>, tensor<?x2x2xf32>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x64xf32>
  %y = attn.linear %x, %w precision <compute = bf16, accumulate = f32>
      : tensor<?x64xf32>, tensor<256x64xbf16> -> tensor<?x256xbf16>
  %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, 2, 128]
      : tensor<?x256xbf16> into tensor<?x2x128xbf16>
  %h = attn.hadamard %y3 rotation(<group = 2, s1 = [1, -1], s2 = [1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>
  %c, %s = attn.quantize %h format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f32>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>
  return %c, %s : tensor<?x2x128xi8>, tensor<?x2x2xf32>
}

// -----

// A rotation computed in f64 cannot live in the f32 sums between phases:
// the chain stays apart (the plain GEMM, then the rotation's own kernels).
// CHECK-LABEL: func.func @rotation_wider_than_sums(
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 4) {
// CHECK: } {mapping = [#gpu.block<x>, #gpu.block<y>]}
// CHECK: linalg.generic
// CHECK-SAME: f64
func.func @rotation_wider_than_sums(%x: tensor<?x64xf32>, %w: tensor<256x64xbf16>)
    -> tensor<?x2x128xf32> {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x64xf32>
  %y = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      : tensor<?x64xf32>, tensor<256x64xbf16> -> tensor<?x256xf32>
  %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, 2, 128]
      : tensor<?x256xf32> into tensor<?x2x128xf32>
  %h = attn.hadamard %y3 rotation(<group = 2, s1 = [1, -1], s2 = [1, 1]>)
      precision <compute = f64, accumulate = f64> : tensor<?x2x128xf32>
  return %h : tensor<?x2x128xf32>
}

// -----

// Decode-shaped, a projection that only feeds a RoPE is the GEMV whose
// workgroups each own two RoPE pairs of one head (2 heads x 128 / 4 = 64
// workgroups); its last phase, a thread per (token, pair), rotates them.
// CHECK-LABEL: func.func @gemv_with_rope(
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<1x2x128xf32>
// CHECK: scf.forall (%{{.+}}) in (64) {
// CHECK: memref.alloca() : memref<1x4x32xf32, #gpu.address_space<workgroup>>
// CHECK: scf.forall (%{{.+}}) in (2) {
// CHECK: math.roundeven %{{.+}} : f32
// CHECK: memref.store %{{.+}}, %[[OUT]][
// CHECK: memref.store %{{.+}}, %[[OUT]][
// CHECK: } {mapping = [#gpu.thread<x>]}
// CHECK: } {mapping = [#gpu.block<x>]}
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @gemv_with_rope(%x: tensor<1x64xf32>, %w: tensor<256x64xf32>, %b: tensor<256xf32>,
                          %p: tensor<1xi32>) -> tensor<1x2x128xf32> {
  %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
      : tensor<1x64xf32>, tensor<256x64xf32>, tensor<256xf32> -> tensor<1x256xf32>
  %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [1, 2, 128]
      : tensor<1x256xf32> into tensor<1x2x128xf32>
  %r = attn.rope half_split %y3, %p rotary_dim(64) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<1x2x128xf32>, tensor<1xi32>
  return %r : tensor<1x2x128xf32>
}
