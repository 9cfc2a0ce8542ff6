// RUN: rotor-opt %s -split-input-file -attn-split-rope-bias -verify-diagnostics | FileCheck %s

#f32 = #attn.precision<compute = f32, accumulate = f32>

// Prefill and decode of one layer with a bf16 cache: K's bias leaves the
// projection (and so the cache) in both, and each SDPA gets it as its
// key_bias with the K RoPE's parameters.
// CHECK-LABEL: func.func @prefill
// CHECK: %[[BK:.+]] = attn.param "bk" : tensor<16xf32>
// CHECK: attn.linear %arg0, %{{[a-z_0-9]+}} precision <compute = f32, accumulate = f32> : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
// CHECK: %[[PER:.+]] = tensor.expand_shape %[[BK]] {{\[}}[0, 1]] output_shape [2, 8] : tensor<16xf32> into tensor<2x8xf32>
// CHECK: attn.sdpa %{{.+}}, %{{.+}}, %{{.+}} key_bias(%[[PER]] : tensor<2x8xf32> rope(<layout = half_split, rotary_dim = 4, theta = 1.000000e+04>)) causal
func.func @prefill(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %kc: tensor<32x2x8xbf16>, %v: tensor<?x2x8xf32>) -> (tensor<?x4x8xf32>, tensor<32x2x8xbf16>) {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %wq = attn.param "wq" : tensor<32x16xf32>
  %wk = attn.param "wk" : tensor<16x16xf32>
  %bk = attn.param "bk" : tensor<16xf32>
  %q0 = attn.linear %x, %wq precision #f32 : tensor<?x16xf32>, tensor<32x16xf32> -> tensor<?x32xf32>
  %q1 = tensor.expand_shape %q0 [[0], [1, 2]] output_shape [%t, 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
  %q = attn.rope half_split %q1, %pos rotary_dim(4) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(4) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %kb = arith.truncf %k : tensor<?x2x8xf32> to tensor<?x2x8xbf16>
  %kc1 = attn.kv_cache_append %kb into %kc at %c0 : tensor<?x2x8xbf16> into tensor<32x2x8xbf16>
  %ke = arith.extf %kb : tensor<?x2x8xbf16> to tensor<?x2x8xf32>
  // expected-remark @+1 {{attn-split-rope-bias: split: the cache stores RoPE(W_k x) and SDPA adds q·RoPE(b_k, p) to each score}}
  %o = attn.sdpa %q, %ke, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o, %kc1 : tensor<?x4x8xf32>, tensor<32x2x8xbf16>
}

// CHECK-LABEL: func.func @decode
// CHECK: attn.sdpa {{.+}} key_bias(
func.func @decode(%x: tensor<1x16xf32>, %pos: tensor<1xi32>, %kc: tensor<32x2x8xbf16>, %n: index, %v: tensor<?x2x8xf32>) -> (tensor<1x4x8xf32>, tensor<32x2x8xbf16>) {
  %c1 = arith.constant 1 : index
  %len = arith.addi %n, %c1 : index
  %wq = attn.param "wq" : tensor<32x16xf32>
  %wk = attn.param "wk" : tensor<16x16xf32>
  %bk = attn.param "bk" : tensor<16xf32>
  %q0 = attn.linear %x, %wq precision #f32 : tensor<1x16xf32>, tensor<32x16xf32> -> tensor<1x32xf32>
  %q1 = tensor.expand_shape %q0 [[0], [1, 2]] output_shape [1, 4, 8] : tensor<1x32xf32> into tensor<1x4x8xf32>
  %q = attn.rope half_split %q1, %pos rotary_dim(4) theta(1.0e+04) precision #f32 : tensor<1x4x8xf32>, tensor<1xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<1x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<1x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [1, 2, 8] : tensor<1x16xf32> into tensor<1x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(4) theta(1.0e+04) precision #f32 : tensor<1x2x8xf32>, tensor<1xi32>
  %kb = arith.truncf %k : tensor<1x2x8xf32> to tensor<1x2x8xbf16>
  %kc1 = attn.kv_cache_append %kb into %kc at %n : tensor<1x2x8xbf16> into tensor<32x2x8xbf16>
  %kr = attn.kv_cache_read %kc1 length %len : tensor<32x2x8xbf16>
  %ke = arith.extf %kr : tensor<?x2x8xbf16> to tensor<?x2x8xf32>
  // expected-remark @+1 {{split}}
  %o = attn.sdpa %q, %ke, %v causal precision #f32
      : tensor<1x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<1x4x8xf32>
  return %o, %kc1 : tensor<1x4x8xf32>, tensor<32x2x8xbf16>
}

// -----

#f32 = #attn.precision<compute = f32, accumulate = f32>

// A RoPE that rotates no dims (rotary_dim 0) has no position term to
// split off: refused (an SDPA key_bias must rotate some dims).
// CHECK-LABEL: func.func @no_rotary_dims
// CHECK: attn.linear %{{.+}}, %{{.+}}, %{{.+}} precision
// CHECK-NOT: key_bias
func.func @no_rotary_dims(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q: tensor<?x4x8xf32>, %wk: tensor<16x16xf32>,
                          %bk: tensor<16xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(0) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  // expected-remark @+1 {{not split [no-rotary-dims]: K's RoPE rotates no dims (rotary_dim 0), so there is no position term to split off}}
  %o = attn.sdpa %q, %k, %k causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

#f32 = #attn.precision<compute = f32, accumulate = f32>

// A k_norm between the bias and RoPE: refused, and so is every other SDPA
// of the module (they may share the cache).
// CHECK-LABEL: func.func @norm_between
// CHECK: attn.linear %{{.+}}, %{{.+}}, %{{.+}} precision
// CHECK-NOT: key_bias
// CHECK-LABEL: func.func @plain
// CHECK-NOT: key_bias
func.func @norm_between(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q: tensor<?x4x8xf32>, %wk: tensor<16x16xf32>,
                        %bk: tensor<16xf32>, %g: tensor<8xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %kn = attn.rms_norm %k1, %g epsilon(1.0e-06) precision #f32 : tensor<?x2x8xf32>, tensor<8xf32>
  %k = attn.rope half_split %kn, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  // expected-remark @+1 {{not split [norm-between]: an RMS norm (k_norm) lies between K's bias and RoPE, and it is not linear}}
  %o = attn.sdpa %q, %k, %k causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}
func.func @plain(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %wq: tensor<32x16xf32>, %wk: tensor<16x16xf32>,
                 %bk: tensor<16xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q0 = attn.linear %x, %wq precision #f32 : tensor<?x16xf32>, tensor<32x16xf32> -> tensor<?x32xf32>
  %q1 = tensor.expand_shape %q0 [[0], [1, 2]] output_shape [%t, 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
  %q = attn.rope half_split %q1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  // expected-remark @+1 {{not split [all-or-nothing]}}
  %o = attn.sdpa %q, %k, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

#f32 = #attn.precision<compute = f32, accumulate = f32>
#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>

// Q rotated at other positions than K; a rotated K cache; a dynamic NTK
// scaling; a capture of K.
// CHECK-LABEL: func.func @other_positions
// CHECK-NOT: key_bias
func.func @other_positions(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %pos2: tensor<?xi32>, %q1: tensor<?x4x8xf32>,
                           %wk: tensor<16x16xf32>, %bk: tensor<16xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q = attn.rope half_split %q1, %pos2 rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  // expected-remark @+1 {{not split [positions]}}
  %o = attn.sdpa %q, %k, %k causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}
func.func @rotated(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q1: tensor<?x4x8xf32>,
                   %wk: tensor<16x16xf32>, %bk: tensor<16xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q = attn.rope half_split %q1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %kr = attn.hadamard %k rotation(#r) precision #f32 : tensor<?x2x8xf32>
  // SDPA reads the keys rotated (as after attn-fold-kv-rotation).
  // expected-remark @+1 {{not split [rotated-cache]: the K cache is rotated and SDPA reads it rotated}}
  %o = attn.sdpa %q, %kr, %k causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}
func.func @dynamic(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q1: tensor<?x4x8xf32>,
                   %wk: tensor<16x16xf32>, %bk: tensor<16xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q = attn.rope half_split %q1, %pos rotary_dim(8) theta(1.0e+04) scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 16>) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 16>) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  // expected-remark @+1 {{not split [dynamic-scaling]}}
  %o = attn.sdpa %q, %k, %k causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}
func.func @captured(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q1: tensor<?x4x8xf32>,
                    %wk: tensor<16x16xf32>, %bk: tensor<16xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q = attn.rope half_split %q1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %kc = attn.capture %k, %pos tag("layer0.k") : tensor<?x2x8xf32>, tensor<?xi32>
  // expected-remark @+1 {{not split [capture]}}
  %o = attn.sdpa %q, %kc, %kc causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

#f32 = #attn.precision<compute = f32, accumulate = f32>

// V reads the same (biased) keys: moving the bias would change V.
// CHECK-LABEL: func.func @value_is_key
// CHECK-NOT: key_bias
func.func @value_is_key(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q1: tensor<?x4x8xf32>,
                        %wk: tensor<16x16xf32>, %bk: tensor<16xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q = attn.rope half_split %q1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  // expected-remark @+1 {{not split [shared-projection]}}
  %o = attn.sdpa %q, %k, %k causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

#f32 = #attn.precision<compute = f32, accumulate = f32>
#r = #attn.hadamard<group = 8, s1 = [1, -1, 1, 1, -1, 1, 1, 1], s2 = [1, 1, -1, 1, 1, 1, -1, -1]>
#r2 = #attn.hadamard<group = 8, s1 = [1, 1, 1, 1, -1, 1, 1, 1], s2 = [1, 1, -1, 1, 1, 1, -1, -1]>
#q4 = #attn.kv_block<bits = 4, block_size = 8, scheme = absmax, scale_type = f16>

// A rotated, quantized K cache read back through the inverse of its
// rotation (rotor-import's form, before attn-fold-kv-rotation): SDPA's keys
// are in the RoPE's basis, so K's bias splits as with a float cache; the
// cache stores R·RoPE(W_k x), quantized without the bias's range.
// CHECK-LABEL: func.func @rotated_cache_read_unrotated
// CHECK: attn.linear %arg0, %arg3 precision <compute = f32, accumulate = f32> : tensor<1x16xf32>, tensor<16x16xf32> -> tensor<1x16xf32>
// CHECK: %[[KR:.+]] = attn.hadamard %{{.+}} rotation(#{{.+}}) precision
// CHECK: attn.quantize %[[KR]]
// CHECK: %[[KU:.+]] = attn.hadamard %{{.+}} rotation(#{{.+}}) inverse precision
// CHECK: attn.sdpa %{{.+}}, %[[KU]], %arg5 key_bias(%{{.+}} : tensor<2x8xf32> rope(<layout = half_split, rotary_dim = 8, theta = 1.000000e+04>))
func.func @rotated_cache_read_unrotated(%x: tensor<1x16xf32>, %pos: tensor<1xi32>, %q1: tensor<1x4x8xf32>,
    %wk: tensor<16x16xf32>, %bk: tensor<16xf32>, %v: tensor<?x2x8xf32>,
    %kcodes: tensor<64x2x8xi8>, %kscales: tensor<64x2x1xf16>, %n: index) -> tensor<1x4x8xf32> {
  %c1 = arith.constant 1 : index
  %len = arith.addi %n, %c1 : index
  %q = attn.rope half_split %q1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<1x4x8xf32>, tensor<1xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<1x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<1x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [1, 2, 8] : tensor<1x16xf32> into tensor<1x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<1x2x8xf32>, tensor<1xi32>
  %kr = attn.hadamard %k rotation(#r) precision #f32 : tensor<1x2x8xf32>
  %kc, %ks = attn.quantize %kr format(#q4) precision #f32 : tensor<1x2x8xf32>
  %kc1 = attn.kv_cache_append %kc into %kcodes at %n : tensor<1x2x8xi8> into tensor<64x2x8xi8>
  %ks1 = attn.kv_cache_append %ks into %kscales at %n : tensor<1x2x1xf16> into tensor<64x2x1xf16>
  %kc2 = attn.kv_cache_read %kc1 length %len : tensor<64x2x8xi8>
  %ks2 = attn.kv_cache_read %ks1 length %len : tensor<64x2x1xf16>
  %kd = attn.dequantize %kc2, %ks2 format(#q4) precision #f32 : tensor<?x2x8xi8>, tensor<?x2x1xf16> -> tensor<?x2x8xf32>
  %kk = attn.hadamard %kd rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+1 {{split: the cache stores RoPE(W_k x)}}
  %o = attn.sdpa %q, %kk, %v causal precision #f32
      : tensor<1x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<1x4x8xf32>
  return %o : tensor<1x4x8xf32>
}

// -----

#f32 = #attn.precision<compute = f32, accumulate = f32>
#r = #attn.hadamard<group = 8, s1 = [1, -1, 1, 1, -1, 1, 1, 1], s2 = [1, 1, -1, 1, 1, 1, -1, -1]>
#r2 = #attn.hadamard<group = 8, s1 = [1, 1, 1, 1, -1, 1, 1, 1], s2 = [1, 1, -1, 1, 1, 1, -1, -1]>
#q4 = #attn.kv_block<bits = 4, block_size = 8, scheme = absmax, scale_type = f16>

// Read back through another rotation than the one written: SDPA's keys
// are not in the RoPE's basis, so the term would be wrong. Not split.
// CHECK-LABEL: func.func @rotated_cache_other_rotation
// CHECK: attn.linear %arg0, %arg3, %arg4
// CHECK-NOT: key_bias
func.func @rotated_cache_other_rotation(%x: tensor<1x16xf32>, %pos: tensor<1xi32>, %q1: tensor<1x4x8xf32>,
    %wk: tensor<16x16xf32>, %bk: tensor<16xf32>, %v: tensor<?x2x8xf32>,
    %kcodes: tensor<64x2x8xi8>, %kscales: tensor<64x2x1xf16>, %n: index) -> tensor<1x4x8xf32> {
  %c1 = arith.constant 1 : index
  %len = arith.addi %n, %c1 : index
  %q = attn.rope half_split %q1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<1x4x8xf32>, tensor<1xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<1x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<1x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [1, 2, 8] : tensor<1x16xf32> into tensor<1x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<1x2x8xf32>, tensor<1xi32>
  %kr = attn.hadamard %k rotation(#r) precision #f32 : tensor<1x2x8xf32>
  %kc, %ks = attn.quantize %kr format(#q4) precision #f32 : tensor<1x2x8xf32>
  %kc1 = attn.kv_cache_append %kc into %kcodes at %n : tensor<1x2x8xi8> into tensor<64x2x8xi8>
  %ks1 = attn.kv_cache_append %ks into %kscales at %n : tensor<1x2x1xf16> into tensor<64x2x1xf16>
  %kc2 = attn.kv_cache_read %kc1 length %len : tensor<64x2x8xi8>
  %ks2 = attn.kv_cache_read %ks1 length %len : tensor<64x2x1xf16>
  %kd = attn.dequantize %kc2, %ks2 format(#q4) precision #f32 : tensor<?x2x8xi8>, tensor<?x2x1xf16> -> tensor<?x2x8xf32>
  %kk = attn.hadamard %kd rotation(#r2) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+1 {{not split [rotated-cache]}}
  %o = attn.sdpa %q, %kk, %v causal precision #f32
      : tensor<1x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<1x4x8xf32>
  return %o : tensor<1x4x8xf32>
}

// -----

#f32 = #attn.precision<compute = f32, accumulate = f32>
#r = #attn.hadamard<group = 8, s1 = [1, -1, 1, 1, -1, 1, 1, 1], s2 = [1, 1, -1, 1, 1, 1, -1, -1]>

// V reads the same keys, through the cache's rotation and back: V would
// lose the bias. Not split.
// CHECK-LABEL: func.func @value_is_rotated_key
// CHECK-NOT: key_bias
func.func @value_is_rotated_key(%x: tensor<1x16xf32>, %pos: tensor<1xi32>, %q1: tensor<1x4x8xf32>,
    %wk: tensor<16x16xf32>, %bk: tensor<16xf32>, %kc: tensor<64x2x8xf32>, %n: index) -> tensor<1x4x8xf32> {
  %c1 = arith.constant 1 : index
  %len = arith.addi %n, %c1 : index
  %q = attn.rope half_split %q1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<1x4x8xf32>, tensor<1xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<1x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<1x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [1, 2, 8] : tensor<1x16xf32> into tensor<1x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<1x2x8xf32>, tensor<1xi32>
  %kr = attn.hadamard %k rotation(#r) precision #f32 : tensor<1x2x8xf32>
  %kc1 = attn.kv_cache_append %kr into %kc at %n : tensor<1x2x8xf32> into tensor<64x2x8xf32>
  %kd = attn.kv_cache_read %kc1 length %len : tensor<64x2x8xf32>
  %kk = attn.hadamard %kd rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+1 {{not split [shared-projection]}}
  %o = attn.sdpa %q, %kk, %kk causal precision #f32
      : tensor<1x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<1x4x8xf32>
  return %o : tensor<1x4x8xf32>
}
