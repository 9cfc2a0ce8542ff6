// One attention sublayer of Qwen2.5-0.5B in the attn dialect: hidden 896,
// 14 query heads, 2 KV heads (GQA ratio 7), head dim 64, theta 1e6, Q/K/V
// biases, half-split RoPE (Hugging Face's row order), f32 throughout.
//
// Both entry points take the hidden states after the input RMS norm and
// return what Hugging Face's `self_attn` returns (before the residual add),
// together with the updated KV caches of 4096 positions.

module attributes {attn.model = "Qwen/Qwen2.5-0.5B", attn.layer = 0 : i64} {

  // Prefill: T tokens at positions 0..T-1 into an empty cache.
  func.func @prefill(%hidden: tensor<?x896xf32>, %positions: tensor<?xi32>,
                     %k_cache: tensor<4096x2x64xf32>,
                     %v_cache: tensor<4096x2x64xf32>)
      -> (tensor<?x896xf32>, tensor<4096x2x64xf32>, tensor<4096x2x64xf32>) {
    %c0 = arith.constant 0 : index
    %t = tensor.dim %hidden, %c0 : tensor<?x896xf32>

    %wq = attn.param "model.layers.0.self_attn.q_proj.weight" rows(<half_split>) : tensor<896x896xf32>
    %bq = attn.param "model.layers.0.self_attn.q_proj.bias" rows(<half_split>) : tensor<896xf32>
    %wk = attn.param "model.layers.0.self_attn.k_proj.weight" rows(<half_split>) : tensor<128x896xf32>
    %bk = attn.param "model.layers.0.self_attn.k_proj.bias" rows(<half_split>) : tensor<128xf32>
    %wv = attn.param "model.layers.0.self_attn.v_proj.weight" : tensor<128x896xf32>
    %bv = attn.param "model.layers.0.self_attn.v_proj.bias" : tensor<128xf32>
    %wo = attn.param "model.layers.0.self_attn.o_proj.weight" : tensor<896x896xf32>

    %q = attn.linear %hidden, %wq, %bq precision <compute = f32, accumulate = f32>
        : tensor<?x896xf32>, tensor<896x896xf32>, tensor<896xf32> -> tensor<?x896xf32>
    %k = attn.linear %hidden, %wk, %bk precision <compute = f32, accumulate = f32>
        : tensor<?x896xf32>, tensor<128x896xf32>, tensor<128xf32> -> tensor<?x128xf32>
    %v = attn.linear %hidden, %wv, %bv precision <compute = f32, accumulate = f32>
        : tensor<?x896xf32>, tensor<128x896xf32>, tensor<128xf32> -> tensor<?x128xf32>

    %q3 = tensor.expand_shape %q [[0], [1, 2]] output_shape [%t, 14, 64]
        : tensor<?x896xf32> into tensor<?x14x64xf32>
    %k3 = tensor.expand_shape %k [[0], [1, 2]] output_shape [%t, 2, 64]
        : tensor<?x128xf32> into tensor<?x2x64xf32>
    %v3 = tensor.expand_shape %v [[0], [1, 2]] output_shape [%t, 2, 64]
        : tensor<?x128xf32> into tensor<?x2x64xf32>

    %qr = attn.rope half_split %q3, %positions rotary_dim(64) theta(1.0e+06)
        precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?xi32>
    %kr = attn.rope half_split %k3, %positions rotary_dim(64) theta(1.0e+06)
        precision <compute = f32, accumulate = f32> : tensor<?x2x64xf32>, tensor<?xi32>

    %k_cache1 = attn.kv_cache_append %kr into %k_cache at %c0
        : tensor<?x2x64xf32> into tensor<4096x2x64xf32>
    %v_cache1 = attn.kv_cache_append %v3 into %v_cache at %c0
        : tensor<?x2x64xf32> into tensor<4096x2x64xf32>

    %o = attn.sdpa %qr, %kr, %v3 causal precision <compute = f32, accumulate = f32>
        : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x14x64xf32>
    %o2 = tensor.collapse_shape %o [[0], [1, 2]] : tensor<?x14x64xf32> into tensor<?x896xf32>
    %out = attn.linear %o2, %wo precision <compute = f32, accumulate = f32>
        : tensor<?x896xf32>, tensor<896x896xf32> -> tensor<?x896xf32>
    return %out, %k_cache1, %v_cache1
        : tensor<?x896xf32>, tensor<4096x2x64xf32>, tensor<4096x2x64xf32>
  }

  // Decode: one token at position `len`, appended to a cache that holds
  // positions 0..len-1; it attends over positions 0..len.
  func.func @decode(%hidden: tensor<1x896xf32>, %positions: tensor<1xi32>,
                    %k_cache: tensor<4096x2x64xf32>,
                    %v_cache: tensor<4096x2x64xf32>, %len: index)
      -> (tensor<1x896xf32>, tensor<4096x2x64xf32>, tensor<4096x2x64xf32>) {
    %c1 = arith.constant 1 : index

    %wq = attn.param "model.layers.0.self_attn.q_proj.weight" rows(<half_split>) : tensor<896x896xf32>
    %bq = attn.param "model.layers.0.self_attn.q_proj.bias" rows(<half_split>) : tensor<896xf32>
    %wk = attn.param "model.layers.0.self_attn.k_proj.weight" rows(<half_split>) : tensor<128x896xf32>
    %bk = attn.param "model.layers.0.self_attn.k_proj.bias" rows(<half_split>) : tensor<128xf32>
    %wv = attn.param "model.layers.0.self_attn.v_proj.weight" : tensor<128x896xf32>
    %bv = attn.param "model.layers.0.self_attn.v_proj.bias" : tensor<128xf32>
    %wo = attn.param "model.layers.0.self_attn.o_proj.weight" : tensor<896x896xf32>

    %q = attn.linear %hidden, %wq, %bq precision <compute = f32, accumulate = f32>
        : tensor<1x896xf32>, tensor<896x896xf32>, tensor<896xf32> -> tensor<1x896xf32>
    %k = attn.linear %hidden, %wk, %bk precision <compute = f32, accumulate = f32>
        : tensor<1x896xf32>, tensor<128x896xf32>, tensor<128xf32> -> tensor<1x128xf32>
    %v = attn.linear %hidden, %wv, %bv precision <compute = f32, accumulate = f32>
        : tensor<1x896xf32>, tensor<128x896xf32>, tensor<128xf32> -> tensor<1x128xf32>

    %q3 = tensor.expand_shape %q [[0], [1, 2]] output_shape [1, 14, 64]
        : tensor<1x896xf32> into tensor<1x14x64xf32>
    %k3 = tensor.expand_shape %k [[0], [1, 2]] output_shape [1, 2, 64]
        : tensor<1x128xf32> into tensor<1x2x64xf32>
    %v3 = tensor.expand_shape %v [[0], [1, 2]] output_shape [1, 2, 64]
        : tensor<1x128xf32> into tensor<1x2x64xf32>

    %qr = attn.rope half_split %q3, %positions rotary_dim(64) theta(1.0e+06)
        precision <compute = f32, accumulate = f32> : tensor<1x14x64xf32>, tensor<1xi32>
    %kr = attn.rope half_split %k3, %positions rotary_dim(64) theta(1.0e+06)
        precision <compute = f32, accumulate = f32> : tensor<1x2x64xf32>, tensor<1xi32>

    %k_cache1 = attn.kv_cache_append %kr into %k_cache at %len
        : tensor<1x2x64xf32> into tensor<4096x2x64xf32>
    %v_cache1 = attn.kv_cache_append %v3 into %v_cache at %len
        : tensor<1x2x64xf32> into tensor<4096x2x64xf32>
    %n = arith.addi %len, %c1 : index
    %keys = attn.kv_cache_read %k_cache1 length %n : tensor<4096x2x64xf32>
    %values = attn.kv_cache_read %v_cache1 length %n : tensor<4096x2x64xf32>

    %o = attn.sdpa %qr, %keys, %values causal precision <compute = f32, accumulate = f32>
        : tensor<1x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<1x14x64xf32>
    %o2 = tensor.collapse_shape %o [[0], [1, 2]] : tensor<1x14x64xf32> into tensor<1x896xf32>
    %out = attn.linear %o2, %wo precision <compute = f32, accumulate = f32>
        : tensor<1x896xf32>, tensor<896x896xf32> -> tensor<1x896xf32>
    return %out, %k_cache1, %v_cache1
        : tensor<1x896xf32>, tensor<4096x2x64xf32>, tensor<4096x2x64xf32>
  }
}
