// Round trip of every attn op and attribute, through the custom and the
// generic form.
// RUN: rotor-opt %s | rotor-opt | FileCheck %s
// RUN: rotor-opt %s -mlir-print-op-generic | rotor-opt | FileCheck %s

// Each rotation is printed once, as an alias every use refers to.
// CHECK-DAG: #[[$R4:.+]] = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, -1]>
// CHECK-DAG: #[[$R8:.+]] = #attn.hadamard<group = 8, s1 = [1, 1, 1, 1, 1, 1, 1, 1], s2 = [1, 1, 1, 1, -1, -1, -1, -1]>
// CHECK-DAG: #[[$R1:.+]] = #attn.hadamard<group = 1, s1 = [-1], s2 = [1]>

// CHECK-LABEL: func.func @param
func.func @param() -> tensor<896x896xbf16> {
  // CHECK: %[[W:.+]] = attn.param "model.layers.0.self_attn.q_proj.weight" : tensor<896x896xbf16>
  %w = attn.param "model.layers.0.self_attn.q_proj.weight" : tensor<896x896xbf16>
  // CHECK: return %[[W]]
  return %w : tensor<896x896xbf16>
}

// CHECK-LABEL: func.func @param_rows
// CHECK: attn.param "model.layers.0.self_attn.k_proj.weight" rows(<interleaved>) : tensor<128x896xf32>
func.func @param_rows() -> tensor<128x896xf32> {
  %w = attn.param "model.layers.0.self_attn.k_proj.weight" rows(<interleaved>) : tensor<128x896xf32>
  return %w : tensor<128x896xf32>
}

// CHECK-LABEL: func.func @param_names
func.func @param_names() -> (tensor<4xf32>, tensor<4xf32>) {
  // CHECK: %q_proj_bias = attn.param "model.layers.0.self_attn.q_proj.bias"
  %b = attn.param "model.layers.0.self_attn.q_proj.bias" : tensor<4xf32>
  // CHECK: %scale = attn.param "scale"
  %s = attn.param "scale" : tensor<4xf32>
  return %b, %s : tensor<4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.+]]: tensor<?x896xf32>, %[[W:.+]]: tensor<128x896xbf16>, %[[B:.+]]: tensor<128xf32>)
func.func @linear(%x: tensor<?x896xf32>, %w: tensor<128x896xbf16>, %b: tensor<128xf32>)
    -> (tensor<?x128xf32>, tensor<?x128xbf16>) {
  // CHECK: attn.linear %[[X]], %[[W]], %[[B]] precision <compute = f32, accumulate = f32>
  // CHECK-SAME: : tensor<?x896xf32>, tensor<128x896xbf16>, tensor<128xf32> -> tensor<?x128xf32>
  %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
      : tensor<?x896xf32>, tensor<128x896xbf16>, tensor<128xf32> -> tensor<?x128xf32>
  // CHECK: attn.linear %[[X]], %[[W]] precision <compute = bf16, accumulate = f32>
  // CHECK-SAME: : tensor<?x896xf32>, tensor<128x896xbf16> -> tensor<?x128xbf16>
  %z = attn.linear %x, %w precision <compute = bf16, accumulate = f32>
      : tensor<?x896xf32>, tensor<128x896xbf16> -> tensor<?x128xbf16>
  return %y, %z : tensor<?x128xf32>, tensor<?x128xbf16>
}

// CHECK-LABEL: func.func @rms_norm
func.func @rms_norm(%x: tensor<?x16x128xbf16>, %w: tensor<128xbf16>) -> tensor<?x16x128xbf16> {
  // CHECK: attn.rms_norm %{{.+}}, %{{.+}} epsilon(9.9999999999999995E-7) precision <compute = f32, accumulate = f32>
  // CHECK-SAME: : tensor<?x16x128xbf16>, tensor<128xbf16>
  %y = attn.rms_norm %x, %w epsilon(1.0e-06) precision <compute = f32, accumulate = f32>
      : tensor<?x16x128xbf16>, tensor<128xbf16>
  return %y : tensor<?x16x128xbf16>
}

// CHECK-LABEL: func.func @rope
func.func @rope(%q: tensor<?x14x64xf32>, %pos: tensor<?xi32>, %k: tensor<7x2x128xf16>,
                %pos64: tensor<7xi64>) {
  // CHECK: attn.rope half_split %{{.+}}, %{{.+}} rotary_dim(64) theta(1.000000e+06)
  // CHECK-SAME: precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?xi32>
  %0 = attn.rope half_split %q, %pos rotary_dim(64) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?xi32>
  // CHECK: attn.rope interleaved %{{.+}}, %{{.+}} rotary_dim(32) theta(1.000000e+04)
  // CHECK-SAME: scaling(#attn.linear_scaling<factor = 4.000000e+00>)
  // CHECK-SAME: precision <compute = f32, accumulate = f64> : tensor<7x2x128xf16>, tensor<7xi64>
  %1 = attn.rope interleaved %k, %pos64 rotary_dim(32) theta(10000.0)
      scaling(#attn.linear_scaling<factor = 4.0>)
      precision <compute = f32, accumulate = f64> : tensor<7x2x128xf16>, tensor<7xi64>
  // CHECK: scaling(#attn.dynamic_scaling<factor = 2.000000e+00, original_max_position_embeddings = 4096>)
  %2 = attn.rope half_split %q, %pos rotary_dim(64) theta(1.0e+06)
      scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 4096>)
      precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?xi32>
  // CHECK: scaling(#attn.yarn_scaling<factor = 4.000000e+00, original_max_position_embeddings = 32768,
  // CHECK-SAME: beta_fast = 3.200000e+01, beta_slow = 1.000000e+00, attention_factor = 1.1386294361119891, truncate = false>)
  %3 = attn.rope half_split %q, %pos rotary_dim(64) theta(1.0e+06)
      scaling(#attn.yarn_scaling<factor = 4.0, original_max_position_embeddings = 32768,
                                 beta_fast = 32.0, beta_slow = 1.0,
                                 attention_factor = 1.1386294361119891, truncate = false>)
      precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?xi32>
  // CHECK: scaling(#attn.llama3_scaling<factor = 8.000000e+00, low_freq_factor = 1.000000e+00,
  // CHECK-SAME: high_freq_factor = 4.000000e+00, original_max_position_embeddings = 8192>)
  %4 = attn.rope interleaved %q, %pos rotary_dim(64) theta(5.0e+05)
      scaling(#attn.llama3_scaling<factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0,
                                   original_max_position_embeddings = 8192>)
      precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?xi32>
  // Partial rotary and a bf16 compute type.
  // CHECK: attn.rope half_split %{{.+}}, %{{.+}} rotary_dim(32) theta(1.000000e+04)
  // CHECK-SAME: precision <compute = bf16, accumulate = bf16>
  %5 = attn.rope half_split %q, %pos rotary_dim(32) theta(1.0e+04)
      precision <compute = bf16, accumulate = bf16> : tensor<?x14x64xf32>, tensor<?xi32>
  return
}

// CHECK-LABEL: func.func @hadamard
func.func @hadamard(%x: tensor<?x2x8xf32>) -> (tensor<?x2x8xf32>, tensor<?x2x8xf32>) {
  // CHECK: attn.hadamard %{{.+}} rotation(#[[$R4]])
  // CHECK-SAME: precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>
  %0 = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, -1]>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>
  // CHECK: attn.hadamard %{{.+}} rotation(#[[$R8]]) inverse
  %1 = attn.hadamard %x rotation(<group = 8, s1 = [1, 1, 1, 1, 1, 1, 1, 1],
                                  s2 = [1, 1, 1, 1, -1, -1, -1, -1]>) inverse
      precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>
  return %0, %1 : tensor<?x2x8xf32>, tensor<?x2x8xf32>
}

// CHECK-LABEL: func.func @quantize
func.func @quantize(%k: tensor<?x2x64xf32>) -> tensor<?x2x64xbf16> {
  // CHECK: %[[C:.+]], %[[S:.+]] = attn.quantize %{{.+}} format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
  // CHECK-SAME: precision <compute = f32, accumulate = f32> : tensor<?x2x64xf32>
  %c, %s = attn.quantize %k format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x64xf32>
  // CHECK: attn.dequantize %[[C]], %[[S]] format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
  // CHECK-SAME: : tensor<?x2x64xi8>, tensor<?x2x2xf16> -> tensor<?x2x64xbf16>
  %d = attn.dequantize %c, %s format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32>
      : tensor<?x2x64xi8>, tensor<?x2x2xf16> -> tensor<?x2x64xbf16>
  // CHECK: attn.quantize %{{.+}} format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f32>)
  %c2, %s2 = attn.quantize %k format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f32>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x64xf32>
  // CHECK: attn.dequantize
  // CHECK-SAME: tensor<?x2x64xi8>, tensor<?x2x1xf32> -> tensor<?x2x64xf32>
  %d2 = attn.dequantize %c2, %s2 format(<bits = 3, block_size = 64, scheme = codebook, scale_type = f32>)
      precision <compute = f32, accumulate = f32>
      : tensor<?x2x64xi8>, tensor<?x2x1xf32> -> tensor<?x2x64xf32>
  return %d : tensor<?x2x64xbf16>
}

// CHECK-LABEL: func.func @sdpa_key_bias
func.func @sdpa_key_bias(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xbf16>, %v: tensor<?x2x8xbf16>, %b: tensor<2x8xf32>) -> tensor<?x4x8xf32> {
  // CHECK: attn.sdpa %{{.+}}, %{{.+}}, %{{.+}} key_bias(%{{.+}} : tensor<2x8xf32> rope(<layout = interleaved, rotary_dim = 4, theta = 1.000000e+04, scaling = #attn.linear_scaling<factor = 2.000000e+00>>)) causal
  %o = attn.sdpa %q, %k, %v key_bias(%b : tensor<2x8xf32> rope(<layout = interleaved, rotary_dim = 4, theta = 1.0e+04, scaling = #attn.linear_scaling<factor = 2.0>>))
      causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x8xf32>, tensor<?x2x8xbf16>, tensor<?x2x8xbf16> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// CHECK-LABEL: func.func @pack_blocks
func.func @pack_blocks(%c: tensor<?x2x128xi8>, %s: tensor<?x2x1xf16>) -> (tensor<?x2x128xi8>, tensor<?x2x1xf16>) {
  // CHECK: attn.pack_blocks %{{.+}}, %{{.+}} format(<bits = 3, block_size = 128, scheme = codebook, scale_type = f16>)
  // CHECK-SAME: : tensor<?x2x128xi8>, tensor<?x2x1xf16> -> tensor<?x2x50xi8>
  %b = attn.pack_blocks %c, %s format(<bits = 3, block_size = 128, scheme = codebook, scale_type = f16>)
      : tensor<?x2x128xi8>, tensor<?x2x1xf16> -> tensor<?x2x50xi8>
  // CHECK: attn.unpack_blocks %{{.+}} format(<bits = 3, block_size = 128, scheme = codebook, scale_type = f16>)
  // CHECK-SAME: : tensor<?x2x50xi8> -> tensor<?x2x128xi8>, tensor<?x2x1xf16>
  %c2, %s2 = attn.unpack_blocks %b format(<bits = 3, block_size = 128, scheme = codebook, scale_type = f16>)
      : tensor<?x2x50xi8> -> tensor<?x2x128xi8>, tensor<?x2x1xf16>
  return %c2, %s2 : tensor<?x2x128xi8>, tensor<?x2x1xf16>
}

// CHECK-LABEL: func.func @kv_cache
func.func @kv_cache(%cache: tensor<4096x2x64xf32>, %k: tensor<1x2x64xf32>, %codes: tensor<4096x2x64xi8>,
                    %c: tensor<1x2x64xi8>, %n: index) -> (tensor<?x2x64xf32>, tensor<4096x2x64xi8>) {
  // CHECK: %[[C:.+]] = attn.kv_cache_append %{{.+}} into %{{.+}} at %{{.+}} : tensor<1x2x64xf32> into tensor<4096x2x64xf32>
  %0 = attn.kv_cache_append %k into %cache at %n : tensor<1x2x64xf32> into tensor<4096x2x64xf32>
  // CHECK: attn.kv_cache_read %[[C]] length %{{.+}} : tensor<4096x2x64xf32>
  %1 = attn.kv_cache_read %0 length %n : tensor<4096x2x64xf32>
  // CHECK: attn.kv_cache_append %{{.+}} into %{{.+}} at %{{.+}} : tensor<1x2x64xi8> into tensor<4096x2x64xi8>
  %2 = attn.kv_cache_append %c into %codes at %n : tensor<1x2x64xi8> into tensor<4096x2x64xi8>
  return %1, %2 : tensor<?x2x64xf32>, tensor<4096x2x64xi8>
}

// Constant offsets and lengths at the cache's bounds are valid.
// CHECK-LABEL: func.func @kv_cache_constant_bounds
func.func @kv_cache_constant_bounds(%cache: tensor<16x2x64xf32>, %k: tensor<1x2x64xf32>)
    -> (tensor<16x2x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32>) {
  %last = arith.constant 15 : index
  %full = arith.constant 16 : index
  %none = arith.constant 0 : index
  // CHECK: attn.kv_cache_append
  %0 = attn.kv_cache_append %k into %cache at %last : tensor<1x2x64xf32> into tensor<16x2x64xf32>
  // CHECK: attn.kv_cache_read
  %1 = attn.kv_cache_read %0 length %full : tensor<16x2x64xf32>
  // CHECK: attn.kv_cache_read
  %2 = attn.kv_cache_read %0 length %none : tensor<16x2x64xf32>
  return %0, %1, %2 : tensor<16x2x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32>
}

// CHECK-LABEL: func.func @sdpa
func.func @sdpa(%q: tensor<?x14x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x32xf32>,
                %pos: tensor<?xi32>) {
  // CHECK: attn.sdpa %{{.+}}, %{{.+}}, %{{.+}} precision <compute = f32, accumulate = f32>
  // CHECK-SAME: : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x32xf32> -> tensor<?x14x32xf32>
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32>
      : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x32xf32> -> tensor<?x14x32xf32>
  // CHECK: attn.sdpa %{{.+}}, %{{.+}}, %{{.+}} causal scale(1.250000e-01) precision <compute = bf16, accumulate = f32>
  %1 = attn.sdpa %q, %k, %v causal scale(0.125) precision <compute = bf16, accumulate = f32>
      : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x32xf32> -> tensor<?x14x32xf32>
  // CHECK: attn.sdpa %{{.+}}, %{{.+}}, %{{.+}} positions(%{{.+}}) causal precision <compute = f32, accumulate = f64>
  // CHECK-SAME: : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x32xf32>, tensor<?xi32> -> tensor<?x14x32xbf16>
  %2 = attn.sdpa %q, %k, %v positions(%pos) causal precision <compute = f32, accumulate = f64>
      : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x32xf32>, tensor<?xi32> -> tensor<?x14x32xbf16>
  // CHECK: attn.sdpa %{{.+}}, %{{.+}}, %{{.+}} causal precision <compute = bf16, accumulate = f32> round_probabilities :
  %3 = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32> round_probabilities
      : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x32xf32> -> tensor<?x14x32xf32>
  return
}

// CHECK-LABEL: func.func @output_gate
func.func @output_gate(%o: tensor<?x16x256xf32>, %g: tensor<?x16x256xbf16>) -> tensor<?x16x256xf32> {
  // CHECK: attn.output_gate %{{.+}}, %{{.+}} precision <compute = f32, accumulate = f32> : tensor<?x16x256xf32>, tensor<?x16x256xbf16>
  %0 = attn.output_gate %o, %g precision <compute = f32, accumulate = f32>
      : tensor<?x16x256xf32>, tensor<?x16x256xbf16>
  return %0 : tensor<?x16x256xf32>
}

// CHECK-LABEL: func.func @capture
func.func @capture(%q: tensor<?x14x64xf32>, %pos: tensor<?xi32>) -> tensor<?x14x64xf32> {
  // CHECK: attn.capture %{{.+}}, %{{.+}} tag("layer0.q") : tensor<?x14x64xf32>, tensor<?xi32>
  %0 = attn.capture %q, %pos tag("layer0.q") : tensor<?x14x64xf32>, tensor<?xi32>
  return %0 : tensor<?x14x64xf32>
}

// CHECK-LABEL: func.func @permute
func.func @permute(%w: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // CHECK: attn.permute %{{.+}} dim(1) permutation([0, 4, 1, 5, 2, 6, 3, 7]) : tensor<4x8xf32>
  %0 = attn.permute %w dim(1) permutation([0, 4, 1, 5, 2, 6, 3, 7]) : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// Attributes on their own, in the generic syntax.
// CHECK-LABEL: func.func private @attributes
// CHECK-SAME: a = #attn.rope_layout<half_split>
// CHECK-SAME: b = #attn.rope_layout<interleaved>
// CHECK-SAME: c = #attn.precision<compute = f16, accumulate = f32>
// CHECK-SAME: d = #[[$R1]]
// CHECK-SAME: e = #attn.kv_block<bits = 8, block_size = 128, scheme = absmax, scale_type = bf16>
func.func private @attributes() attributes {
  a = #attn.rope_layout<half_split>, b = #attn.rope_layout<interleaved>,
  c = #attn.precision<compute = f16, accumulate = f32>,
  d = #attn.hadamard<group = 1, s1 = [-1], s2 = [1]>,
  e = #attn.kv_block<bits = 8, block_size = 128, scheme = absmax, scale_type = bf16>}
