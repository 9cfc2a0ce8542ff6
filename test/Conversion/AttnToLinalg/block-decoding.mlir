// dequantize(unpack_blocks(bytes)) lowers to one generic that decodes each
// value from the bytes, over [.., blocks, groups, codes per group].
// RUN: rotor-opt %s -convert-attn-to-linalg -split-input-file -mlir-print-local-scope | FileCheck %s

// 3 bits: a group is 8 codes in 3 bytes; a 64-code block is 8 groups,
// after the 2 bytes of its scale (26 bytes per block).
// CHECK-LABEL: func.func @turbo3
// CHECK-NOT: linalg.generic
// CHECK: %[[OUT:.*]] = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "parallel", "parallel"]
// CHECK-SAME: outs(%{{.*}} : tensor<?x1x8x8xf32>)
// CHECK-SAME: attn.block_decoding = #attn.kv_block<bits = 3, block_size = 64, scheme = codebook, scale_type = f16>
// CHECK-SAME: attn.block_decoding_compute = f32
// CHECK-DAG: %[[BLK:.*]] = linalg.index 1 : index
// CHECK-DAG: %[[GROUP:.*]] = linalg.index 2 : index
// CHECK-DAG: %[[C:.*]] = linalg.index 3 : index
// CHECK: arith.muli %[[C]], %c3
// CHECK: arith.muli %[[BLK]], %c26
// CHECK: arith.muli %[[GROUP]], %c3
// CHECK: tensor.extract %arg0
// The codebook's level, scaled by the block's scale.
// CHECK: tensor.extract %{{.*}} : tensor<8xf64>
// CHECK: arith.mulf
// CHECK-NOT: linalg.generic
// CHECK: tensor.collapse_shape %[[OUT]] {{\[\[}}0], [1, 2, 3]] : tensor<?x1x8x8xf32> into tensor<?x64xf32>
func.func @turbo3(%b: tensor<?x26xi8>) -> tensor<?x64xf32> {
  %c, %s = attn.unpack_blocks %b format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f16>)
      : tensor<?x26xi8> -> tensor<?x64xi8>, tensor<?x1xf16>
  %x = attn.dequantize %c, %s format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x64xi8>, tensor<?x1xf16> -> tensor<?x64xf32>
  return %x : tensor<?x64xf32>
}

// -----

// 8 bits: a group is one code in one byte; absmax codes are signed.
// CHECK-LABEL: func.func @q8_0
// CHECK: linalg.generic
// CHECK-SAME: outs(%{{.*}} : tensor<?x2x2x32x1xf32>)
// CHECK-SAME: attn.block_decoding = #attn.kv_block<bits = 8, block_size = 32, scheme = absmax, scale_type = f16>
// CHECK: arith.sitofp %{{.*}} : i8 to f32
// CHECK-NOT: linalg.generic
// CHECK: tensor.collapse_shape {{.*}} {{\[\[}}0], [1], [2, 3, 4]] : tensor<?x2x2x32x1xf32> into tensor<?x2x64xf32>
func.func @q8_0(%b: tensor<?x2x68xi8>) -> tensor<?x2x64xf32> {
  %c, %s = attn.unpack_blocks %b format(<bits = 8, block_size = 32, scheme = absmax, scale_type = f16>)
      : tensor<?x2x68xi8> -> tensor<?x2x64xi8>, tensor<?x2x2xf16>
  %x = attn.dequantize %c, %s format(<bits = 8, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x64xi8>, tensor<?x2x2xf16> -> tensor<?x2x64xf32>
  return %x : tensor<?x2x64xf32>
}

// -----

// Codes that are also used on their own: unpacking and dequantization stay
// separate generics (codes, scales, values).
// CHECK-LABEL: func.func @codes_used_elsewhere
// CHECK: linalg.generic
// CHECK-NOT: attn.block_decoding
// CHECK: linalg.generic
// CHECK-NOT: attn.block_decoding
// CHECK: linalg.generic
// CHECK-NOT: attn.block_decoding
// CHECK: return
func.func @codes_used_elsewhere(%b: tensor<?x18xi8>) -> (tensor<?x32xf32>, tensor<?x32xi8>) {
  %c, %s = attn.unpack_blocks %b format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      : tensor<?x18xi8> -> tensor<?x32xi8>, tensor<?x1xf16>
  %x = attn.dequantize %c, %s format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x32xi8>, tensor<?x1xf16> -> tensor<?x32xf32>
  return %x, %c : tensor<?x32xf32>, tensor<?x32xi8>
}

// -----

// Codes that nothing reads (only the scales are used): no dequantize to
// decode into, so the plain unpacking lowering takes it (the fuzzer found
// this crashing).
// CHECK-LABEL: func.func @unused_codes
// CHECK-NOT: attn.unpack_blocks
// CHECK: return
func.func @unused_codes(%bytes: tensor<?x2x50xi8>) -> tensor<?x2x1xf16> {
  %codes, %scales = attn.unpack_blocks %bytes format(<bits = 3, block_size = 128, scheme = codebook, scale_type = f16>)
      : tensor<?x2x50xi8> -> tensor<?x2x128xi8>, tensor<?x2x1xf16>
  return %scales : tensor<?x2x1xf16>
}
