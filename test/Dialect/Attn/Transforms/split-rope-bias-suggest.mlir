// RUN: rotor-opt %s -split-input-file -attn-split-rope-bias=suggest-only -verify-diagnostics | FileCheck %s

// suggest-only (what rotor-aot runs without --split-rope-bias or
// --precision): nothing is rewritten; an SDPA whose K bias could split and
// whose keys are stored narrower than f32 gets a warning naming the cache's
// format. Here a bf16 cache: warned, and the bias stays in the projection.
#f32 = #attn.precision<compute = f32, accumulate = f32>
// CHECK-LABEL: func.func @bf16_cache
// CHECK: attn.linear %arg0, %{{.+}}, %{{.+}} precision
// CHECK-NOT: key_bias
func.func @bf16_cache(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q: tensor<?x4x8xf32>,
                      %wk: tensor<16x16xf32>, %bk: tensor<16xf32>, %kc: tensor<32x2x8xbf16>,
                      %v: tensor<?x2x8xf32>) -> (tensor<?x4x8xf32>, tensor<32x2x8xbf16>) {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q2 = attn.rope half_split %q, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %kb = arith.truncf %k : tensor<?x2x8xf32> to tensor<?x2x8xbf16>
  %kc1 = attn.kv_cache_append %kb into %kc at %c0 : tensor<?x2x8xbf16> into tensor<32x2x8xbf16>
  %ke = arith.extf %kb : tensor<?x2x8xbf16> to tensor<?x2x8xf32>
  // expected-warning @+1 {{K's bias goes into a bf16 KV cache, which rounds it with the keys (a Qwen2.5-like bias can cost most of the layer's accuracy); rotor-aot --split-rope-bias keeps it out (docs/PRECISION.md)}}
  %o = attn.sdpa %q2, %ke, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o, %kc1 : tensor<?x4x8xf32>, tensor<32x2x8xbf16>
}

// -----

// A rotated 4-bit cache, named by rotor-import's attn.kv_format: warned by
// that name. An f32 cache (keys read as written): no warning.
#f32 = #attn.precision<compute = f32, accumulate = f32>
#r = #attn.hadamard<group = 8, s1 = [1, -1, 1, 1, -1, 1, 1, 1], s2 = [1, 1, -1, 1, 1, 1, -1, -1]>
#q4 = #attn.kv_block<bits = 4, block_size = 8, scheme = absmax, scale_type = f16>
func.func @rotated_q4(%x: tensor<1x16xf32>, %pos: tensor<1xi32>, %q1: tensor<1x4x8xf32>,
    %wk: tensor<16x16xf32>, %bk: tensor<16xf32>, %v: tensor<?x2x8xf32>,
    %kcodes: tensor<64x2x8xi8> {attn.kv_format = "q4_0"}, %kscales: tensor<64x2x1xf16>, %n: index) -> tensor<1x4x8xf32> {
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
  // expected-warning @+1 {{K's bias goes into a q4_0 KV cache}}
  %o = attn.sdpa %q, %kk, %v causal precision #f32
      : tensor<1x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<1x4x8xf32>
  return %o : tensor<1x4x8xf32>
}
func.func @f32_cache(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q: tensor<?x4x8xf32>,
                     %wk: tensor<16x16xf32>, %bk: tensor<16xf32>, %kc: tensor<32x2x8xf32>,
                     %v: tensor<?x2x8xf32>) -> (tensor<?x4x8xf32>, tensor<32x2x8xf32>) {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q2 = attn.rope half_split %q, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %kc1 = attn.kv_cache_append %k into %kc at %c0 : tensor<?x2x8xf32> into tensor<32x2x8xf32>
  %o = attn.sdpa %q2, %k, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o, %kc1 : tensor<?x4x8xf32>, tensor<32x2x8xf32>
}

// -----

// No warning where --split-rope-bias would not split: another SDPA of the
// module refuses (dynamic NTK scaling), so none splits (all or nothing);
// and keys rounded to bf16 without a cache are not a cache's business.
#f32 = #attn.precision<compute = f32, accumulate = f32>
func.func @refused(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q1: tensor<?x4x8xf32>,
                   %wk: tensor<16x16xf32>, %bk: tensor<16xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q = attn.rope half_split %q1, %pos rotary_dim(8) theta(1.0e+04) scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 16>) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 16>) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %o = attn.sdpa %q, %k, %k causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}
func.func @bf16_cache_in_refused_module(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q: tensor<?x4x8xf32>,
                      %wk: tensor<16x16xf32>, %bk: tensor<16xf32>, %kc: tensor<32x2x8xbf16>,
                      %v: tensor<?x2x8xf32>) -> (tensor<?x4x8xf32>, tensor<32x2x8xbf16>) {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q2 = attn.rope half_split %q, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %kb = arith.truncf %k : tensor<?x2x8xf32> to tensor<?x2x8xbf16>
  %kc1 = attn.kv_cache_append %kb into %kc at %c0 : tensor<?x2x8xbf16> into tensor<32x2x8xbf16>
  %ke = arith.extf %kb : tensor<?x2x8xbf16> to tensor<?x2x8xf32>
  %o = attn.sdpa %q2, %ke, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o, %kc1 : tensor<?x4x8xf32>, tensor<32x2x8xbf16>
}

// -----

#f32 = #attn.precision<compute = f32, accumulate = f32>
func.func @bf16_no_cache(%x: tensor<?x16xf32>, %pos: tensor<?xi32>, %q: tensor<?x4x8xf32>,
                         %wk: tensor<16x16xf32>, %bk: tensor<16xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %q2 = attn.rope half_split %q, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk, %bk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k = attn.rope half_split %k1, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %kb = arith.truncf %k : tensor<?x2x8xf32> to tensor<?x2x8xbf16>
  %ke = arith.extf %kb : tensor<?x2x8xbf16> to tensor<?x2x8xf32>
  %o = attn.sdpa %q2, %ke, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}
