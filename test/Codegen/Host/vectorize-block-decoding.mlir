// The block-decoding generics of convert-attn-to-linalg, on buffers, become
// per-block SIMD code.
// RUN: rotor-opt %s -split-input-file -convert-attn-to-linalg -canonicalize \
// RUN:   -one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
// RUN:   -rotor-vectorize-block-decoding="vector-registers=32" -canonicalize \
// RUN:   | FileCheck %s --check-prefixes=CHECK,AVX512
// RUN: rotor-opt %s -split-input-file -convert-attn-to-linalg -canonicalize \
// RUN:   -one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
// RUN:   -rotor-vectorize-block-decoding="vector-registers=16" -canonicalize \
// RUN:   | FileCheck %s --check-prefixes=CHECK,AVX2

// q4_0: two codes per byte, low nibble first; 16 codes are 8 bytes after
// the block's f16 scale (18 bytes per block); signed.
// CHECK-LABEL: func.func @q4_0
// CHECK-NOT: linalg.generic
// AVX512-DAG: %[[SHIFTS:.*]] = arith.constant dense<[0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4]> : vector<16xi32>
// AVX512-DAG: %[[SIGN:.*]] = arith.constant dense<28> : vector<16xi32>
// CHECK: scf.for %[[ROW:.*]] =
// CHECK: scf.for %[[HEAD:.*]] =
// CHECK: scf.for %[[BLK:.*]] =
// CHECK: %[[START:.*]] = arith.muli %[[BLK]], %c18
// The scale: bytes 0 and 1 of the block.
// CHECK: memref.load %arg0[%[[ROW]], %[[HEAD]], %{{.*}}]
// CHECK: arith.bitcast %{{.*}} : i16 to f16
// AVX512: %[[SCALE:.*]] = vector.broadcast %{{.*}} : f32 to vector<16xf32>
// AVX512: %[[AT:.*]] = arith.addi %[[START]], %c2
// AVX512: %[[RAW:.*]] = vector.load %arg0[%[[ROW]], %[[HEAD]], %[[AT]]] : memref<?x2x36xi8>, vector<8xi8>
// AVX512: %[[LANES:.*]] = vector.shuffle %[[RAW]], %{{.*}} [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
// AVX512: %[[WORD:.*]] = arith.extui %[[LANES]] : vector<16xi8> to vector<16xi32>
// AVX512: %[[SHIFTED:.*]] = arith.shrui %[[WORD]], %[[SHIFTS]]
// AVX512: %[[CODE:.*]] = arith.andi %[[SHIFTED]], %{{.*}}
// AVX512: %[[UP:.*]] = arith.shli %[[CODE]], %[[SIGN]]
// AVX512: %[[SIGNED:.*]] = arith.shrsi %[[UP]], %[[SIGN]]
// AVX512: %[[LEVEL:.*]] = arith.sitofp %[[SIGNED]] : vector<16xi32> to vector<16xf32>
// AVX512: %[[VALUE:.*]] = arith.mulf %[[SCALE]], %[[LEVEL]]
// AVX512: vector.store %[[VALUE]], %{{.*}}[%[[ROW]], %[[HEAD]], %[[BLK]], %c0] : memref<?x2x2x32xf32>, vector<16xf32>
// AVX512: vector.load %arg0{{.*}} vector<8xi8>
// AVX512: vector.store %{{.*}}[%[[ROW]], %[[HEAD]], %[[BLK]], %c16]
// AVX512-NOT: vector.store
// AVX2: vector.load %arg0{{.*}} vector<4xi8>
// AVX2: vector.shuffle %{{.*}}, %{{.*}} [0, 0, 1, 1, 2, 2, 3, 3]
// AVX2: vector.store {{.*}} vector<8xf32>
// AVX2: vector.store {{.*}} vector<8xf32>
// AVX2: vector.store {{.*}} vector<8xf32>
// AVX2: vector.store {{.*}} vector<8xf32>
// AVX2-NOT: vector.store
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @q4_0(%b: tensor<?x2x36xi8>) -> tensor<?x2x64xf32> {
  %c, %s = attn.unpack_blocks %b format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      : tensor<?x2x36xi8> -> tensor<?x2x64xi8>, tensor<?x2x2xf16>
  %x = attn.dequantize %c, %s format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x64xi8>, tensor<?x2x2xf16> -> tensor<?x2x64xf32>
  return %x : tensor<?x2x64xf32>
}

// -----

// q8_0: a code is a byte, so the lanes load as they are (no shuffle).
// CHECK-LABEL: func.func @q8_0
// CHECK-NOT: vector.shuffle
// AVX512: %[[RAW:.*]] = vector.load %arg0{{.*}} : memref<?x68xi8>, vector<16xi8>
// AVX512: %[[WORD:.*]] = arith.extui %[[RAW]] : vector<16xi8> to vector<16xi32>
// AVX512: arith.shli %{{.*}}, %{{.*}} : vector<16xi32>
// AVX512: arith.shrsi
// AVX512: arith.sitofp
// AVX2: vector.load %arg0{{.*}} : memref<?x68xi8>, vector<8xi8>
// CHECK-NOT: linalg.generic
func.func @q8_0(%b: tensor<?x68xi8>) -> tensor<?x64xf32> {
  %c, %s = attn.unpack_blocks %b format(<bits = 8, block_size = 32, scheme = absmax, scale_type = f16>)
      : tensor<?x68xi8> -> tensor<?x64xi8>, tensor<?x2xf16>
  %x = attn.dequantize %c, %s format(<bits = 8, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x64xi8>, tensor<?x2xf16> -> tensor<?x64xf32>
  return %x : tensor<?x64xf32>
}

// -----

// turbo3 with 8 lanes: 8 codes in 3 bytes. Codes 2 (bits 6-8) and 5 (bits
// 15-17) span two bytes; the others take the zero lane (index 3) as their
// second byte. The codebook is a select on each of the code's 3 bits.
// CHECK-LABEL: func.func @turbo3
// AVX2-DAG: %[[SHIFTS:.*]] = arith.constant dense<[0, 3, 6, 1, 4, 7, 2, 5]> : vector<8xi32>
// AVX2: %[[RAW:.*]] = vector.load %arg0{{.*}} : memref<?x26xi8>, vector<3xi8>
// AVX2: %[[LOW:.*]] = vector.shuffle %[[RAW]], %{{.*}} [0, 0, 0, 1, 1, 1, 2, 2]
// AVX2: arith.extui %[[LOW]]
// AVX2: %[[HIGH:.*]] = vector.shuffle %[[RAW]], %{{.*}} [3, 3, 1, 3, 3, 2, 3, 3]
// AVX2: arith.extui %[[HIGH]]
// AVX2: arith.shrui %{{.*}}, %[[SHIFTS]]
// AVX2-NOT: arith.shrsi
// AVX2: arith.cmpi ne
// AVX2-COUNT-4: arith.select
// AVX2: arith.cmpi ne
// AVX2-COUNT-2: arith.select
// AVX2: arith.cmpi ne
// AVX2-NEXT: arith.select
// AVX2-NEXT: arith.mulf
// AVX2-COUNT-7: vector.store
// AVX2-NOT: memref.get_global
// AVX512: vector.load %arg0{{.*}} vector<6xi8>
// AVX512-COUNT-4: vector.store {{.*}} vector<16xf32>
// CHECK-NOT: linalg.generic
func.func @turbo3(%b: tensor<?x26xi8>) -> tensor<?x64xf32> {
  %c, %s = attn.unpack_blocks %b format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f16>)
      : tensor<?x26xi8> -> tensor<?x64xi8>, tensor<?x1xf16>
  %x = attn.dequantize %c, %s format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x64xi8>, tensor<?x1xf16> -> tensor<?x64xf32>
  return %x : tensor<?x64xf32>
}

// -----

// A block of 8 codes is less than 16 lanes: the generic stays as it is
// with AVX-512's lanes, and is decoded 8 at a time with AVX2's.
// CHECK-LABEL: func.func @short_block
// AVX512: linalg.generic
// AVX512-SAME: attn.block_decoding
// AVX2-NOT: linalg.generic
// AVX2: vector.load {{.*}} vector<8xi8>
func.func @short_block(%b: tensor<?x20xi8>) -> tensor<?x16xf32> {
  %c, %s = attn.unpack_blocks %b format(<bits = 8, block_size = 8, scheme = absmax, scale_type = f16>)
      : tensor<?x20xi8> -> tensor<?x16xi8>, tensor<?x2xf16>
  %x = attn.dequantize %c, %s format(<bits = 8, block_size = 8, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x16xi8>, tensor<?x2xf16> -> tensor<?x16xf32>
  return %x : tensor<?x16xf32>
}

// -----

// A marked generic tiled along the blocks (here block 1 of a row of 4):
// its block 0 is not the row's, so the scalar body, whose indices the
// tiling offset, stays.
// CHECK-LABEL: func.func @tiled_along_blocks
// CHECK: linalg.generic
// CHECK-SAME: attn.block_decoding
// CHECK-NOT: vector.load
func.func @tiled_along_blocks(%bytes: memref<4x136xi8>, %out: memref<4x1x32x1xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      outs(%out : memref<4x1x32x1xf32>)
      attrs = {attn.block_decoding = #attn.kv_block<bits = 8, block_size = 32, scheme = absmax, scale_type = f16>,
               attn.block_decoding_compute = f32} {
  ^bb0(%o: f32):
    %c36 = arith.constant 36 : index
    %row = linalg.index 0 : index
    %g = linalg.index 2 : index
    %column = arith.addi %g, %c36 : index
    %byte = memref.load %bytes[%row, %column] : memref<4x136xi8>
    %x = arith.sitofp %byte : i8 to f32
    linalg.yield %x : f32
  }
  return
}

// -----

// Output blocks that are not contiguous (a stride of 2 between codes) stay.
// CHECK-LABEL: func.func @strided_output
// CHECK: linalg.generic
// CHECK-SAME: attn.block_decoding
// CHECK-NOT: vector.store
func.func @strided_output(%bytes: memref<4x34xi8>, %out: memref<4x1x32x1xf32, strided<[64, 64, 2, 1]>>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      outs(%out : memref<4x1x32x1xf32, strided<[64, 64, 2, 1]>>)
      attrs = {attn.block_decoding = #attn.kv_block<bits = 8, block_size = 32, scheme = absmax, scale_type = f16>,
               attn.block_decoding_compute = f32} {
  ^bb0(%o: f32):
    %c2 = arith.constant 2 : index
    %row = linalg.index 0 : index
    %g = linalg.index 2 : index
    %column = arith.addi %g, %c2 : index
    %byte = memref.load %bytes[%row, %column] : memref<4x34xi8>
    %x = arith.sitofp %byte : i8 to f32
    linalg.yield %x : f32
  }
  return
}
