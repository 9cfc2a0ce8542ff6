// attn-select-precision refuses what its error model does not cover, each
// error on the op or function at fault.
// RUN: rotor-opt %s -split-input-file -verify-diagnostics -attn-select-precision="weights=%t.unused.safetensors input-rms=1"

func.func @layer0_prefill(%x: tensor<4x8xf32>) -> tensor<4x8xbf16> attributes {attn.layer = 0 : i64} {
  // expected-error @+1 {{attn-select-precision starts from an f32 graph (rotor-import --dtype f32 --kv-cache f32), but this op's result is}}
  %0 = arith.truncf %x : tensor<4x8xf32> to tensor<4x8xbf16>
  return %0 : tensor<4x8xbf16>
}

// -----

// expected-error @+1 {{attn-select-precision chooses float caches; argument 1 is a quantized cache}}
func.func @layer0_decode(%x: tensor<1x8xf32>, %c: tensor<4x2x18xi8> {attn.kv_format = "q8_0"}) attributes {attn.layer = 0 : i64} {
  return
}

// -----

// expected-error @+1 {{attn-select-precision: expected one attn.sdpa per entry point, found 0}}
func.func @layer0_prefill(%x: tensor<4x8xf32>) -> tensor<4x8xf32> attributes {attn.layer = 0 : i64} {
  return %x : tensor<4x8xf32>
}

// -----

func.func @layer0_prefill(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<32x2x16xf32> {attn.kv_format = "f32"}, %arg3: tensor<32x2x16xf32> {attn.kv_format = "f32"}) -> (tensor<?x64xf32>, tensor<32x2x16xf32>, tensor<32x2x16xf32>) attributes {attn.layer = 0 : i64} {
  %c0 = arith.constant 0 : index
  %dim = tensor.dim %arg0, %c0 : tensor<?x64xf32>
  %q_proj_weight = attn.param "model.layers.0.self_attn.q_proj.weight" rows(<half_split>) : tensor<64x64xf32>
  %q_proj_bias = attn.param "model.layers.0.self_attn.q_proj.bias" rows(<half_split>) : tensor<64xf32>
  %k_proj_weight = attn.param "model.layers.0.self_attn.k_proj.weight" rows(<half_split>) : tensor<32x64xf32>
  %k_proj_bias = attn.param "model.layers.0.self_attn.k_proj.bias" rows(<half_split>) : tensor<32xf32>
  %v_proj_weight = attn.param "model.layers.0.self_attn.v_proj.weight" : tensor<32x64xf32>
  %v_proj_bias = attn.param "model.layers.0.self_attn.v_proj.bias" : tensor<32xf32>
  %o_proj_weight = attn.param "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xf32>
  %0 = attn.linear %arg0, %q_proj_weight, %q_proj_bias precision <compute = f32, accumulate = f32> : tensor<?x64xf32>, tensor<64x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  %expanded = tensor.expand_shape %0 [[0], [1, 2]] output_shape [%dim, 4, 16] : tensor<?x64xf32> into tensor<?x4x16xf32>
  %1 = attn.rope half_split %expanded, %arg1 rotary_dim(16) theta(1.000000e+06) precision <compute = f32, accumulate = f32> : tensor<?x4x16xf32>, tensor<?xi32>
  %2 = attn.linear %arg0, %k_proj_weight, %k_proj_bias precision <compute = f32, accumulate = f32> : tensor<?x64xf32>, tensor<32x64xf32>, tensor<32xf32> -> tensor<?x32xf32>
  %expanded_0 = tensor.expand_shape %2 [[0], [1, 2]] output_shape [%dim, 2, 16] : tensor<?x32xf32> into tensor<?x2x16xf32>
  %3 = attn.rope half_split %expanded_0, %arg1 rotary_dim(16) theta(1.000000e+06) precision <compute = f32, accumulate = f32> : tensor<?x2x16xf32>, tensor<?xi32>
  %4 = attn.linear %arg0, %v_proj_weight, %v_proj_bias precision <compute = f32, accumulate = f32> : tensor<?x64xf32>, tensor<32x64xf32>, tensor<32xf32> -> tensor<?x32xf32>
  %expanded_1 = tensor.expand_shape %4 [[0], [1, 2]] output_shape [%dim, 2, 16] : tensor<?x32xf32> into tensor<?x2x16xf32>
  %5 = attn.kv_cache_append %3 into %arg2 at %c0 : tensor<?x2x16xf32> into tensor<32x2x16xf32>
  %6 = attn.kv_cache_append %expanded_1 into %arg3 at %c0 : tensor<?x2x16xf32> into tensor<32x2x16xf32>
  %7 = attn.sdpa %1, %3, %expanded_1 causal precision <compute = f32, accumulate = f32> : tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32> -> tensor<?x4x16xf32>
  // expected-error @+1 {{attn-select-precision: the error model does not cover 'arith.negf' between SDPA and the output projection}}
  %neg = arith.negf %7 : tensor<?x4x16xf32>
  %collapsed = tensor.collapse_shape %neg [[0], [1, 2]] : tensor<?x4x16xf32> into tensor<?x64xf32>
  %8 = attn.linear %collapsed, %o_proj_weight precision <compute = f32, accumulate = f32> : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
  return %8, %5, %6 : tensor<?x64xf32>, tensor<32x2x16xf32>, tensor<32x2x16xf32>
}

// -----

// A module whose functions carry no attn.layer (and the module none
// either): nothing would be chosen, and the bundle would silently keep f32.
// expected-error @+1 {{attn-select-precision: no entry point belongs to a layer}}
module {
  func.func @prefill(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    return %x : tensor<4x8xf32>
  }
}
