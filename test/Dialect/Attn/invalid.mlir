// Every verifier and parser error of the attn dialect, one case per split.
// RUN: rotor-opt %s -split-input-file -verify-diagnostics

// Attributes

// expected-error @below {{precision compute type must be bf16, f16, f32 or f64, got 'f8E4M3FN'}}
func.func private @f() attributes {p = #attn.precision<compute = f8E4M3FN, accumulate = f32>}
// -----
// expected-error @below {{precision accumulate type must be bf16, f16, f32 or f64, got 'f8E5M2'}}
func.func private @f() attributes {p = #attn.precision<compute = f32, accumulate = f8E5M2>}
// -----
// expected-error @below {{precision accumulate type 'bf16' cannot hold every value of the compute type 'f32'}}
func.func private @f() attributes {p = #attn.precision<compute = f32, accumulate = bf16>}
// -----
// expected-error @below {{precision accumulate type 'f16' cannot hold every value of the compute type 'bf16'}}
func.func private @f() attributes {p = #attn.precision<compute = bf16, accumulate = f16>}
// -----
// expected-error @below {{invalid kind of type specified}}
// expected-error @below {{failed to parse Attn_PrecisionAttr parameter 'compute' which is to be a `::mlir::FloatType`}}
func.func private @f() attributes {p = #attn.precision<compute = i32, accumulate = f32>}
// -----
// expected-error @below {{hadamard group size must be a power of two, got 3}}
func.func private @f() attributes {h = #attn.hadamard<group = 3, s1 = [1, 1, 1], s2 = [1, 1, 1]>}
// -----
// expected-error @below {{hadamard group size must be a power of two, got 0}}
func.func private @f() attributes {h = #attn.hadamard<group = 0, s1 = [1], s2 = [1]>}
// -----
// expected-error @below {{hadamard sign vector s1 has 3 entries, expected the group size 4}}
func.func private @f() attributes {h = #attn.hadamard<group = 4, s1 = [1, 1, 1], s2 = [1, 1, 1, 1]>}
// -----
// expected-error @below {{hadamard sign vector s2 has 3 entries, expected the group size 2}}
func.func private @f() attributes {h = #attn.hadamard<group = 2, s1 = [1, 1], s2 = [1, 1, -1]>}
// -----
// expected-error @below {{hadamard sign vector s1 must hold only 1 and -1, but entry 1 is 0}}
func.func private @f() attributes {h = #attn.hadamard<group = 2, s1 = [1, 0], s2 = [1, 1]>}
// -----
// expected-error @below {{hadamard sign vector s2 must hold only 1 and -1, but entry 0 is 2}}
func.func private @f() attributes {h = #attn.hadamard<group = 2, s1 = [1, 1], s2 = [2, 1]>}
// -----
// expected-error @below {{kv_block block_size must be >= 1, got 0}}
func.func private @f() attributes {k = #attn.kv_block<bits = 4, block_size = 0, scheme = absmax, scale_type = f16>}
// -----
// expected-error @below {{kv_block absmax quantization takes 2 to 8 bits, got 1}}
func.func private @f() attributes {k = #attn.kv_block<bits = 1, block_size = 32, scheme = absmax, scale_type = f16>}
// -----
// expected-error @below {{kv_block absmax quantization takes 2 to 8 bits, got 9}}
func.func private @f() attributes {k = #attn.kv_block<bits = 9, block_size = 32, scheme = absmax, scale_type = f16>}
// -----
// expected-error @below {{kv_block codebook quantization takes 1 to 4 bits, got 5}}
func.func private @f() attributes {k = #attn.kv_block<bits = 5, block_size = 32, scheme = codebook, scale_type = f16>}
// -----
// expected-error @below {{kv_block codebook quantization takes 1 to 4 bits, got 0}}
func.func private @f() attributes {k = #attn.kv_block<bits = 0, block_size = 32, scheme = codebook, scale_type = f16>}
// -----
// expected-error @below {{kv_block scale_type must be bf16, f16 or f32, got 'f64'}}
func.func private @f() attributes {k = #attn.kv_block<bits = 4, block_size = 32, scheme = absmax, scale_type = f64>}
// -----
// expected-error @below {{expected ::rotor::attn::QuantScheme to be one of: absmax, codebook}}
// expected-error @below {{failed to parse Attn_KVBlockFormatAttr parameter 'scheme' which is to be a `::rotor::attn::QuantScheme`}}
func.func private @f() attributes {k = #attn.kv_block<bits = 4, block_size = 32, scheme = lloyd, scale_type = f16>}
// -----
// expected-error @below {{linear scaling factor must be a finite number >= 1, got 5.000000e-01}}
func.func private @f() attributes {s = #attn.linear_scaling<factor = 0.5>}
// -----
// expected-error @below {{dynamic scaling original_max_position_embeddings must be >= 1, got 0}}
func.func private @f() attributes {s = #attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 0>}
// -----
// expected-error @below {{dynamic scaling factor must be a finite number >= 1, got 0.000000e+00}}
func.func private @f() attributes {s = #attn.dynamic_scaling<factor = 0.0, original_max_position_embeddings = 4096>}
// -----
// expected-error @below {{yarn scaling beta_fast must be a finite number > 0, got 0.000000e+00}}
func.func private @f() attributes {s = #attn.yarn_scaling<factor = 4.0, original_max_position_embeddings = 32768, beta_fast = 0.0, beta_slow = 1.0, attention_factor = 1.0, truncate = true>}
// -----
// expected-error @below {{yarn scaling beta_slow must be a finite number > 0, got -1.000000e+00}}
func.func private @f() attributes {s = #attn.yarn_scaling<factor = 4.0, original_max_position_embeddings = 32768, beta_fast = 32.0, beta_slow = -1.0, attention_factor = 1.0, truncate = true>}
// -----
// expected-error @below {{yarn scaling attention_factor must be a finite number > 0, got 0.000000e+00}}
func.func private @f() attributes {s = #attn.yarn_scaling<factor = 4.0, original_max_position_embeddings = 32768, beta_fast = 32.0, beta_slow = 1.0, attention_factor = 0.0, truncate = true>}
// -----
// expected-error @below {{expected 'true' or 'false'}}
// expected-error @below {{failed to parse Attn_YarnRopeScalingAttr parameter 'truncate' which is to be a `bool`}}
func.func private @f() attributes {s = #attn.yarn_scaling<factor = 4.0, original_max_position_embeddings = 32768, beta_fast = 32.0, beta_slow = 1.0, attention_factor = 1.0, truncate = 1>}
// -----
// expected-error @below {{llama3 scaling high_freq_factor (4.000000e+00) must be greater than low_freq_factor (4.000000e+00)}}
func.func private @f() attributes {s = #attn.llama3_scaling<factor = 8.0, low_freq_factor = 4.0, high_freq_factor = 4.0, original_max_position_embeddings = 8192>}
// -----
// expected-error @below {{llama3 scaling low_freq_factor must be a finite number > 0, got 0.000000e+00}}
func.func private @f() attributes {s = #attn.llama3_scaling<factor = 8.0, low_freq_factor = 0.0, high_freq_factor = 4.0, original_max_position_embeddings = 8192>}
// -----
// expected-error @below {{llama3 scaling original_max_position_embeddings must be >= 1, got -1}}
func.func private @f() attributes {s = #attn.llama3_scaling<factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original_max_position_embeddings = -1>}
// -----
// Ops: param
func.func @f() {
  // expected-error @below {{'attn.param' op parameter name must not be empty}}
  %0 = attn.param "" : tensor<4xf32>
  return
}
// -----
func.func @f() {
  // expected-error @below {{'attn.param' op result #0 must be statically shaped tensor of any type values, but got 'tensor<?xf32>'}}
  %0 = attn.param "w" : tensor<?xf32>
  return
}
// -----
// linear
func.func @f(%x: tensor<2x3x4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @below {{'attn.linear' op input [T, E] must have rank 2, got shape [2, 3, 4]}}
  %0 = attn.linear %x, %w precision <compute = f32, accumulate = f32> : tensor<2x3x4xf32>, tensor<8x4xf32> -> tensor<2x8xf32>
  return
}
// -----
func.func @f(%x: tensor<2x4xf32>, %w: tensor<4xf32>) {
  // expected-error @below {{'attn.linear' op weight [N, E] must have rank 2, got shape [4]}}
  %0 = attn.linear %x, %w precision <compute = f32, accumulate = f32> : tensor<2x4xf32>, tensor<4xf32> -> tensor<2x8xf32>
  return
}
// -----
func.func @f(%x: tensor<2x4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @below {{'attn.linear' op result [T, N] must have rank 2, got shape [16]}}
  %0 = attn.linear %x, %w precision <compute = f32, accumulate = f32> : tensor<2x4xf32>, tensor<8x4xf32> -> tensor<16xf32>
  return
}
// -----
func.func @f(%x: tensor<?x4xf32>, %w: tensor<8x5xf32>) {
  // expected-error @below {{'attn.linear' op input [?, 4] has E = 4 but weight [8, 5] has E = 5}}
  %0 = attn.linear %x, %w precision <compute = f32, accumulate = f32> : tensor<?x4xf32>, tensor<8x5xf32> -> tensor<?x8xf32>
  return
}
// -----
func.func @f(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %b: tensor<1x8xf32>) {
  // expected-error @below {{'attn.linear' op bias [N] must have rank 1, got shape [1, 8]}}
  %0 = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32> : tensor<?x4xf32>, tensor<8x4xf32>, tensor<1x8xf32> -> tensor<?x8xf32>
  return
}
// -----
func.func @f(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %b: tensor<7xf32>) {
  // expected-error @below {{'attn.linear' op bias [7] does not match the weight [8, 4]}}
  %0 = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32> : tensor<?x4xf32>, tensor<8x4xf32>, tensor<7xf32> -> tensor<?x8xf32>
  return
}
// -----
func.func @f(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @below {{'attn.linear' op result [?, 9] must be [T, N] = [?, 8]}}
  %0 = attn.linear %x, %w precision <compute = f32, accumulate = f32> : tensor<?x4xf32>, tensor<8x4xf32> -> tensor<?x9xf32>
  return
}
// -----
func.func @f(%x: tensor<3x4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @below {{'attn.linear' op result [2, 8] must be [T, N] = [3, 8]}}
  %0 = attn.linear %x, %w precision <compute = f32, accumulate = f32> : tensor<3x4xf32>, tensor<8x4xf32> -> tensor<2x8xf32>
  return
}
// -----
func.func @f(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @below {{'attn.linear' op result [3, 8] must be [T, N] = [?, 8]}}
  %0 = attn.linear %x, %w precision <compute = f32, accumulate = f32> : tensor<?x4xf32>, tensor<8x4xf32> -> tensor<3x8xf32>
  return
}
// -----
func.func @f(%x: tensor<3x4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @below {{'attn.linear' op result [?, ?] must be [T, N] = [3, 8]}}
  %0 = attn.linear %x, %w precision <compute = f32, accumulate = f32> : tensor<3x4xf32>, tensor<8x4xf32> -> tensor<?x?xf32>
  return
}
// -----
func.func @f(%x: tensor<3x4xi32>, %w: tensor<8x4xf32>) {
  // expected-error @below {{'attn.linear' op operand #0 must be ranked tensor of floating-point values, but got 'tensor<3x4xi32>'}}
  %0 = attn.linear %x, %w precision <compute = f32, accumulate = f32> : tensor<3x4xi32>, tensor<8x4xf32> -> tensor<3x8xf32>
  return
}
// -----
// rms_norm
func.func @f(%x: tensor<?x16x128xf32>, %w: tensor<64xf32>) {
  // expected-error @below {{'attn.rms_norm' op weight [64] does not match the last dim of the input [?, 16, 128]}}
  %0 = attn.rms_norm %x, %w epsilon(1.0e-06) precision <compute = f32, accumulate = f32> : tensor<?x16x128xf32>, tensor<64xf32>
  return
}
// -----
func.func @f(%x: tensor<?x16x128xf32>, %w: tensor<128xf32>) {
  // expected-error @below {{'attn.rms_norm' op epsilon must be a finite number > 0, got 0.000000e+00}}
  %0 = attn.rms_norm %x, %w epsilon(0.0) precision <compute = f32, accumulate = f32> : tensor<?x16x128xf32>, tensor<128xf32>
  return
}
// -----
func.func @f(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @below {{'attn.rms_norm' op input must have rank >= 1}}
  %0 = attn.rms_norm %x, %w epsilon(1.0e-06) precision <compute = f32, accumulate = f32> : tensor<f32>, tensor<1xf32>
  return
}
// -----
// rope
func.func @f(%x: tensor<?x896xf32>, %p: tensor<?xi32>) {
  // expected-error @below {{'attn.rope' op input [T, H, D] must have rank 3, got shape [?, 896]}}
  %0 = attn.rope half_split %x, %p rotary_dim(64) theta(1.0e+06) precision <compute = f32, accumulate = f32> : tensor<?x896xf32>, tensor<?xi32>
  return
}
// -----
func.func @f(%x: tensor<7x14x64xf32>, %p: tensor<6xi32>) {
  // expected-error @below {{'attn.rope' op positions has 6 entries but input has 7 tokens}}
  %0 = attn.rope half_split %x, %p rotary_dim(64) theta(1.0e+06) precision <compute = f32, accumulate = f32> : tensor<7x14x64xf32>, tensor<6xi32>
  return
}
// -----
func.func @f(%x: tensor<7x14x?xf32>, %p: tensor<7xi32>) {
  // expected-error @below {{'attn.rope' op head dim D of the input must be static}}
  %0 = attn.rope half_split %x, %p rotary_dim(64) theta(1.0e+06) precision <compute = f32, accumulate = f32> : tensor<7x14x?xf32>, tensor<7xi32>
  return
}
// -----
func.func @f(%x: tensor<7x14x64xf32>, %p: tensor<7xi32>) {
  // expected-error @below {{'attn.rope' op rotary_dim must be even and >= 0, got 63}}
  %0 = attn.rope half_split %x, %p rotary_dim(63) theta(1.0e+06) precision <compute = f32, accumulate = f32> : tensor<7x14x64xf32>, tensor<7xi32>
  return
}
// -----
func.func @f(%x: tensor<7x14x64xf32>, %p: tensor<7xi32>) {
  // expected-error @below {{'attn.rope' op rotary_dim must be even and >= 0, got -2}}
  %0 = attn.rope half_split %x, %p rotary_dim(-2) theta(1.0e+06) precision <compute = f32, accumulate = f32> : tensor<7x14x64xf32>, tensor<7xi32>
  return
}

// -----

func.func @f(%x: tensor<7x14x64xf32>, %p: tensor<7xi32>) {
  // expected-error @below {{'attn.rope' op theta 4.940656e-324 gives a non-finite inverse frequency for rotary pair 31}}
  %0 = attn.rope half_split %x, %p rotary_dim(64) theta(4.9e-324) precision <compute = f32, accumulate = f32> : tensor<7x14x64xf32>, tensor<7xi32>
  return
}
// -----
func.func @f(%x: tensor<7x14x64xf32>, %p: tensor<7xi32>) {
  // expected-error @below {{'attn.rope' op rotary_dim 128 exceeds the head dim D = 64}}
  %0 = attn.rope half_split %x, %p rotary_dim(128) theta(1.0e+06) precision <compute = f32, accumulate = f32> : tensor<7x14x64xf32>, tensor<7xi32>
  return
}
// -----
func.func @f(%x: tensor<7x14x64xf32>, %p: tensor<7xi32>) {
  // expected-error @below {{'attn.rope' op theta must be a finite number > 0, got 0.000000e+00}}
  %0 = attn.rope half_split %x, %p rotary_dim(64) theta(0.0) precision <compute = f32, accumulate = f32> : tensor<7x14x64xf32>, tensor<7xi32>
  return
}
// -----
func.func @f(%x: tensor<7x14x64xf32>, %p: tensor<7xi32>) {
  // expected-error @below {{'attn.rope' op dynamic scaling needs rotary_dim > 2, got 2}}
  %0 = attn.rope half_split %x, %p rotary_dim(2) theta(1.0e+04) scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 4096>) precision <compute = f32, accumulate = f32> : tensor<7x14x64xf32>, tensor<7xi32>
  return
}
// -----
func.func @f(%x: tensor<7x14x64xf32>, %p: tensor<7xi32>) {
  // expected-error @below {{custom op 'attn.rope' expected RoPE layout 'half_split' or 'interleaved', got 'adjacent'}}
  %0 = attn.rope adjacent %x, %p rotary_dim(64) theta(1.0e+06) precision <compute = f32, accumulate = f32> : tensor<7x14x64xf32>, tensor<7xi32>
  return
}
// -----
func.func @f(%x: tensor<7x14x64xf32>, %p: tensor<7xf32>) {
  // expected-error @below {{'attn.rope' op operand #1 must be 1D tensor of 32-bit signless integer or 64-bit signless integer values, but got 'tensor<7xf32>'}}
  %0 = attn.rope half_split %x, %p rotary_dim(64) theta(1.0e+06) precision <compute = f32, accumulate = f32> : tensor<7x14x64xf32>, tensor<7xf32>
  return
}
// -----
func.func @f(%x: tensor<7x14x64xf32>, %p: tensor<7xi32>) {
  // expected-error @below {{'attn.rope' op attribute 'scaling' failed to satisfy constraint: linear (position interpolation) RoPE scaling or dynamic NTK RoPE scaling or YaRN RoPE scaling or Llama 3.1 RoPE scaling}}
  %0 = attn.rope half_split %x, %p rotary_dim(64) theta(1.0e+06) scaling(#attn.precision<compute = f32, accumulate = f32>) precision <compute = f32, accumulate = f32> : tensor<7x14x64xf32>, tensor<7xi32>
  return
}
// -----
// hadamard
func.func @f(%x: tensor<?x2x48xf32>) {
  // expected-error @below {{'attn.hadamard' op hadamard group size 32 does not divide the rotated dim 2 of size 48}}
  %0 = attn.hadamard %x rotation(<group = 32, s1 = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], s2 = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]>) precision <compute = f32, accumulate = f32> : tensor<?x2x48xf32>
  return
}
// -----
func.func @f(%x: tensor<2x?xf32>) {
  // expected-error @below {{'attn.hadamard' op the rotated dim 1 of the input must be static}}
  %0 = attn.hadamard %x rotation(<group = 2, s1 = [1, 1], s2 = [1, 1]>) precision <compute = f32, accumulate = f32> : tensor<2x?xf32>
  return
}
// -----
func.func @f(%x: tensor<4x8xf32>) {
  // expected-error @below {{'attn.hadamard' op rotated dim 2 is out of range for a rank-2 input}}
  %0 = attn.hadamard %x rotation(<group = 2, s1 = [1, 1], s2 = [1, -1]>) dim(2) precision <compute = f32, accumulate = f32> : tensor<4x8xf32>
  return
}
// -----
func.func @f(%x: tensor<3x8xf32>) {
  // expected-error @below {{'attn.hadamard' op hadamard group size 2 does not divide the rotated dim 0 of size 3}}
  %0 = attn.hadamard %x rotation(<group = 2, s1 = [1, 1], s2 = [1, -1]>) dim(0) precision <compute = f32, accumulate = f32> : tensor<3x8xf32>
  return
}
// -----
func.func @f(%x: tensor<f32>) {
  // expected-error @below {{'attn.hadamard' op input must have rank >= 1}}
  %0 = attn.hadamard %x rotation(<group = 1, s1 = [1], s2 = [1]>) precision <compute = f32, accumulate = f32> : tensor<f32>
  return
}
// -----
// quantize
func.func @f(%x: tensor<?x2x64xf32>) {
  // expected-error @below {{'attn.quantize' op kv_block block_size 48 does not divide the last dim 64}}
  %c, %s = attn.quantize %x format(<bits = 4, block_size = 48, scheme = absmax, scale_type = f16>) precision <compute = f32, accumulate = f32> : tensor<?x2x64xf32>
  return
}
// -----
func.func @f(%x: tensor<2x?xf32>) {
  // expected-error @below {{'attn.quantize' op the last dim of a quantized tensor must be static}}
  %c, %s = attn.quantize %x format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>) precision <compute = f32, accumulate = f32> : tensor<2x?xf32>
  return
}
// -----
func.func @f(%x: tensor<f32>) {
  // expected-error @below {{'attn.quantize' op quantized tensor must have rank >= 1}}
  %c, %s = attn.quantize %x format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>) precision <compute = f32, accumulate = f32> : tensor<f32>
  return
}
// -----
// dequantize
func.func @f(%c: tensor<?x2x64xi8>, %s: tensor<?x2x4xf16>) {
  // expected-error @below {{'attn.dequantize' op scales [?, 2, 4] must be [?, 2, 2] for codes [?, 2, 64] in blocks of 32}}
  %0 = attn.dequantize %c, %s format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>) precision <compute = f32, accumulate = f32> : tensor<?x2x64xi8>, tensor<?x2x4xf16> -> tensor<?x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<?x2x64xi8>, %s: tensor<?x2x2xf32>) {
  // expected-error @below {{'attn.dequantize' op scales element type 'f32' differs from the format's scale_type 'f16'}}
  %0 = attn.dequantize %c, %s format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>) precision <compute = f32, accumulate = f32> : tensor<?x2x64xi8>, tensor<?x2x2xf32> -> tensor<?x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<?x2x64xi8>, %s: tensor<?x2x2xf16>) {
  // expected-error @below {{'attn.dequantize' op result [?, 2, 32] must have the shape of the codes [?, 2, 64]}}
  %0 = attn.dequantize %c, %s format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>) precision <compute = f32, accumulate = f32> : tensor<?x2x64xi8>, tensor<?x2x2xf16> -> tensor<?x2x32xf32>
  return
}
// -----
func.func @f(%c: tensor<?x64xi8>, %s: tensor<?x2xf32>) {
  // expected-error @below {{'attn.dequantize' op result [3, 64] must have the shape of the codes [?, 64]}}
  %0 = attn.dequantize %c, %s format(<bits = 8, block_size = 32, scheme = absmax, scale_type = f32>) precision <compute = f32, accumulate = f32> : tensor<?x64xi8>, tensor<?x2xf32> -> tensor<3x64xf32>
  return
}
// -----
func.func @f(%c: tensor<?x2x64xi8>, %s: tensor<?x2x2xf16>) {
  // expected-error @below {{'attn.dequantize' op kv_block block_size 24 does not divide the last dim 64}}
  %0 = attn.dequantize %c, %s format(<bits = 4, block_size = 24, scheme = absmax, scale_type = f16>) precision <compute = f32, accumulate = f32> : tensor<?x2x64xi8>, tensor<?x2x2xf16> -> tensor<?x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<?x2x64xi8>, %s: tensor<2x2xf16>) {
  // expected-error @below {{'attn.dequantize' op scales [2, 2] must be [?, 2, 2] for codes [?, 2, 64] in blocks of 32}}
  %0 = attn.dequantize %c, %s format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>) precision <compute = f32, accumulate = f32> : tensor<?x2x64xi8>, tensor<2x2xf16> -> tensor<?x2x64xf32>
  return
}
// -----
// kv cache
func.func @f(%c: tensor<4096x2x64xf32>, %k: tensor<2x64xf32>, %n: index) {
  // expected-error @below {{'attn.kv_cache_append' op update [2, 64] and cache [4096, 2, 64] must have the same rank}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<2x64xf32> into tensor<4096x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<4096x2x64xf32>, %k: tensor<1x2x64xbf16>, %n: index) {
  // expected-error @below {{'attn.kv_cache_append' op update element type 'bf16' differs from the cache's 'f32'}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<1x2x64xbf16> into tensor<4096x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<4096x2x64xf32>, %k: tensor<1x4x64xf32>, %n: index) {
  // expected-error @below {{'attn.kv_cache_append' op update [1, 4, 64] and cache [4096, 2, 64] differ in dim 1}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<1x4x64xf32> into tensor<4096x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<16x2x64xf32>, %k: tensor<17x2x64xf32>, %n: index) {
  // expected-error @below {{'attn.kv_cache_append' op update of 17 rows does not fit a cache of 16 rows}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<17x2x64xf32> into tensor<16x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<f32>, %k: tensor<f32>, %n: index) {
  // expected-error @below {{'attn.kv_cache_append' op cache must have rank >= 1}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<f32> into tensor<f32>
  return
}
// -----
func.func @f(%c: tensor<f32>, %n: index) {
  // expected-error @below {{'attn.kv_cache_read' op cache must be a ranked tensor of rank >= 1, got 'tensor<f32>'}}
  %0 = attn.kv_cache_read %c length %n : tensor<f32>
  return
}
// -----
func.func @f(%c: tensor<0x2x64xf32>, %k: tensor<0x2x64xf32>, %n: index) {
  // expected-error @below {{'attn.kv_cache_append' op cache [0, 2, 64] has no rows: a KV cache needs a capacity of at least 1 row}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<0x2x64xf32> into tensor<0x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<16x0x64xf32>, %k: tensor<1x0x64xf32>, %n: index) {
  // expected-error @below {{'attn.kv_cache_append' op cache [16, 0, 64] has size 0 in dim 1: the dims of a KV cache after the rows (heads, head dim) must be at least 1}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<1x0x64xf32> into tensor<16x0x64xf32>
  return
}
// -----
func.func @f(%c: tensor<16x2x?xf32>, %k: tensor<1x2x0xf32>, %n: index) {
  // expected-error @below {{'attn.kv_cache_append' op update [1, 2, 0] has size 0 in dim 2: the dims of a KV cache after the rows (heads, head dim) must be at least 1}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<1x2x0xf32> into tensor<16x2x?xf32>
  return
}
// -----
func.func @f(%c: tensor<16x2x64xf32>, %k: tensor<1x2x64xf32>) {
  %n = arith.constant 16 : index
  // expected-error @below {{'attn.kv_cache_append' op offset 16 plus the update's 1 rows exceeds the cache's 16 rows}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<1x2x64xf32> into tensor<16x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<16x2x64xf32>, %k: tensor<?x2x64xf32>) {
  %n = arith.constant 17 : index
  // expected-error @below {{'attn.kv_cache_append' op offset 17 is past the end of the cache's 16 rows}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<?x2x64xf32> into tensor<16x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<16x2x64xf32>, %k: tensor<1x2x64xf32>) {
  %n = arith.constant -1 : index
  // expected-error @below {{'attn.kv_cache_append' op offset -1 must be >= 0}}
  %0 = attn.kv_cache_append %k into %c at %n : tensor<1x2x64xf32> into tensor<16x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<0x2x64xf32>, %n: index) {
  // expected-error @below {{'attn.kv_cache_read' op cache [0, 2, 64] has no rows: a KV cache needs a capacity of at least 1 row}}
  %0 = attn.kv_cache_read %c length %n : tensor<0x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<16x2x0xf32>, %n: index) {
  // expected-error @below {{'attn.kv_cache_read' op cache [16, 2, 0] has size 0 in dim 2: the dims of a KV cache after the rows (heads, head dim) must be at least 1}}
  %0 = attn.kv_cache_read %c length %n : tensor<16x2x0xf32>
  return
}
// -----
func.func @f(%c: tensor<16x2x64xf32>) {
  %n = arith.constant 17 : index
  // expected-error @below {{'attn.kv_cache_read' op length 17 exceeds the cache's 16 rows}}
  %0 = attn.kv_cache_read %c length %n : tensor<16x2x64xf32>
  return
}
// -----
func.func @f(%c: tensor<16x2x64xf32>) {
  %n = arith.constant -3 : index
  // expected-error @below {{'attn.kv_cache_read' op length -3 must be >= 0}}
  %0 = attn.kv_cache_read %c length %n : tensor<16x2x64xf32>
  return
}
// -----
// sdpa
func.func @f(%q: tensor<?x896xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x64xf32>) {
  // expected-error @below {{'attn.sdpa' op query [Tq, Hq, D] must have rank 3, got shape [?, 896]}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<?x896xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<?x14x64xf32>, %k: tensor<?x128xf32>, %v: tensor<?x2x64xf32>) {
  // expected-error @below {{'attn.sdpa' op key [Tk, Hkv, D] must have rank 3, got shape [?, 128]}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?x128xf32>, tensor<?x2x64xf32> -> tensor<?x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<?x14x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x64xf32>) {
  // expected-error @below {{'attn.sdpa' op result [Tq, Hq, Dv] must have rank 3, got shape [?, 896]}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x896xf32>
  return
}
// -----
func.func @f(%q: tensor<?x14x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<128xf32>) {
  // expected-error @below {{'attn.sdpa' op value [Tk, Hkv, Dv] must have rank 3, got shape [128]}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<128xf32> -> tensor<?x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<?x?x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x64xf32>) {
  // expected-error @below {{'attn.sdpa' op head counts and head dims must be static}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<?x?x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<?x14x64xf32>, %k: tensor<?x4x64xf32>, %v: tensor<?x4x64xf32>) {
  // expected-error @below {{'attn.sdpa' op query heads Hq = 14 must be a multiple of the key heads Hkv = 4}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?x4x64xf32>, tensor<?x4x64xf32> -> tensor<?x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<?x14x64xf32>, %k: tensor<?x2x128xf32>, %v: tensor<?x2x64xf32>) {
  // expected-error @below {{'attn.sdpa' op query head dim 64 differs from the key head dim 128}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<?x2x128xf32>, tensor<?x2x64xf32> -> tensor<?x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<?x14x64xf32>, %k: tensor<8x2x64xf32>, %v: tensor<9x2x64xf32>) {
  // expected-error @below {{'attn.sdpa' op key [8, 2, 64] and value [9, 2, 64] must agree in Tk and Hkv}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<8x2x64xf32>, tensor<9x2x64xf32> -> tensor<?x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<?x14x64xf32>, %k: tensor<8x2x64xf32>, %v: tensor<8x1x64xf32>) {
  // expected-error @below {{'attn.sdpa' op key [8, 2, 64] and value [8, 1, 64] must agree in Tk and Hkv}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<8x2x64xf32>, tensor<8x1x64xf32> -> tensor<?x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<3x14x64xf32>, %k: tensor<8x2x64xf32>, %v: tensor<8x2x32xf32>) {
  // expected-error @below {{'attn.sdpa' op result [3, 14, 64] must be [Tq, Hq, Dv] = [3, 14, 32]}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<3x14x64xf32>, tensor<8x2x64xf32>, tensor<8x2x32xf32> -> tensor<3x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<?x14x64xf32>, %k: tensor<8x2x64xf32>, %v: tensor<8x2x64xf32>) {
  // expected-error @below {{'attn.sdpa' op result [2, 14, 64] must be [Tq, Hq, Dv] = [?, 14, 64]}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<?x14x64xf32>, tensor<8x2x64xf32>, tensor<8x2x64xf32> -> tensor<2x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<3x14x64xf32>, %k: tensor<8x2x64xf32>, %v: tensor<8x2x64xf32>, %p: tensor<3xi32>) {
  // expected-error @below {{'attn.sdpa' op positions are only meaningful with causal masking}}
  %0 = attn.sdpa %q, %k, %v positions(%p) precision <compute = f32, accumulate = f32> : tensor<3x14x64xf32>, tensor<8x2x64xf32>, tensor<8x2x64xf32>, tensor<3xi32> -> tensor<3x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<3x14x64xf32>, %k: tensor<8x2x64xf32>, %v: tensor<8x2x64xf32>, %p: tensor<4xi32>) {
  // expected-error @below {{'attn.sdpa' op positions has 4 entries but query has 3 tokens}}
  %0 = attn.sdpa %q, %k, %v positions(%p) causal precision <compute = f32, accumulate = f32> : tensor<3x14x64xf32>, tensor<8x2x64xf32>, tensor<8x2x64xf32>, tensor<4xi32> -> tensor<3x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<3x14x64xf32>, %k: tensor<8x2x64xf32>, %v: tensor<8x2x64xf32>) {
  // expected-error @below {{'attn.sdpa' op scale must be a finite number > 0, got -1.000000e+00}}
  %0 = attn.sdpa %q, %k, %v scale(-1.0) precision <compute = f32, accumulate = f32> : tensor<3x14x64xf32>, tensor<8x2x64xf32>, tensor<8x2x64xf32> -> tensor<3x14x64xf32>
  return
}
// -----
func.func @f(%q: tensor<3x14x64xbf16>, %k: tensor<8x2x64xbf16>, %v: tensor<8x2x64xbf16>) {
  // expected-error @below {{'attn.sdpa' op softmax must accumulate in f32 or f64, got 'bf16'}}
  %0 = attn.sdpa %q, %k, %v precision <compute = bf16, accumulate = bf16> : tensor<3x14x64xbf16>, tensor<8x2x64xbf16>, tensor<8x2x64xbf16> -> tensor<3x14x64xbf16>
  return
}

// -----

func.func @f(%q: tensor<4x2x0xf32>, %k: tensor<4x1x0xf32>, %v: tensor<4x1x0xf32>) {
  // expected-error @below {{'attn.sdpa' op head dims must be at least 1, got D = 0 and Dv = 0}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<4x2x0xf32>, tensor<4x1x0xf32>, tensor<4x1x0xf32> -> tensor<4x2x0xf32>
  return
}

// -----

func.func @f(%q: tensor<4x2x8xf32>, %k: tensor<0x1x8xf32>, %v: tensor<0x1x8xf32>) {
  // expected-error @below {{'attn.sdpa' op attends over no keys: the key/value have 0 rows}}
  %0 = attn.sdpa %q, %k, %v precision <compute = f32, accumulate = f32> : tensor<4x2x8xf32>, tensor<0x1x8xf32>, tensor<0x1x8xf32> -> tensor<4x2x8xf32>
  return
}
// -----
// output_gate
func.func @f(%o: tensor<?x16x256xf32>, %g: tensor<?x16x128xf32>) {
  // expected-error @below {{'attn.output_gate' op gate [?, 16, 128] must have the shape of the input [?, 16, 256]}}
  %0 = attn.output_gate %o, %g precision <compute = f32, accumulate = f32> : tensor<?x16x256xf32>, tensor<?x16x128xf32>
  return
}
// -----
// capture
func.func @f(%q: tensor<?x14x64xf32>, %p: tensor<?xi32>) {
  // expected-error @below {{'attn.capture' op capture tag must not be empty}}
  %0 = attn.capture %q, %p tag("") : tensor<?x14x64xf32>, tensor<?xi32>
  return
}
// -----
func.func @f(%q: tensor<5x14x64xf32>, %p: tensor<4xi32>) {
  // expected-error @below {{'attn.capture' op positions has 4 entries but input has 5 tokens}}
  %0 = attn.capture %q, %p tag("q") : tensor<5x14x64xf32>, tensor<4xi32>
  return
}
// -----
func.func @f(%q: tensor<f32>, %p: tensor<4xi32>) {
  // expected-error @below {{'attn.capture' op input must have rank >= 1}}
  %0 = attn.capture %q, %p tag("q") : tensor<f32>, tensor<4xi32>
  return
}
// -----
// permute
func.func @f(%w: tensor<4x8xf32>) {
  // expected-error @below {{'attn.permute' op dim 2 is out of range for rank 2}}
  %0 = attn.permute %w dim(2) permutation([0, 1, 2, 3]) : tensor<4x8xf32>
  return
}
// -----
func.func @f(%w: tensor<?x8xf32>) {
  // expected-error @below {{'attn.permute' op permuted dim 0 must be static}}
  %0 = attn.permute %w dim(0) permutation([0, 1, 2, 3]) : tensor<?x8xf32>
  return
}
// -----
func.func @f(%w: tensor<4x8xf32>) {
  // expected-error @below {{'attn.permute' op permutation has 3 entries but dim 0 has size 4}}
  %0 = attn.permute %w dim(0) permutation([0, 1, 2]) : tensor<4x8xf32>
  return
}
// -----
func.func @f(%w: tensor<4x8xf32>) {
  // expected-error @below {{'attn.permute' op permutation entry 3 is 4, outside [0, 4)}}
  %0 = attn.permute %w dim(0) permutation([0, 1, 2, 4]) : tensor<4x8xf32>
  return
}
// -----
func.func @f(%w: tensor<4x8xf32>) {
  // expected-error @below {{'attn.permute' op permutation is not a permutation: 1 appears twice}}
  %0 = attn.permute %w dim(0) permutation([0, 1, 1, 3]) : tensor<4x8xf32>
  return
}

// -----
func.func @f(%c: tensor<3x8xi8>, %s: tensor<3x2xf16>) {
  // expected-error @below {{'attn.pack_blocks' op cannot pack 4 codes of 3 bits into whole bytes}}
  %b = attn.pack_blocks %c, %s format(<bits = 3, block_size = 4, scheme = codebook, scale_type = f16>)
      : tensor<3x8xi8>, tensor<3x2xf16> -> tensor<3x6xi8>
  return
}
// -----
func.func @f(%c: tensor<3x64xi8>, %s: tensor<3x2xf16>) {
  // expected-error @below {{'attn.pack_blocks' op bytes [3, 32] must be [3, 36] for codes [3, 64] (18 bytes per block of 32)}}
  %b = attn.pack_blocks %c, %s format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      : tensor<3x64xi8>, tensor<3x2xf16> -> tensor<3x32xi8>
  return
}
// -----
func.func @f(%c: tensor<3x64xi8>, %s: tensor<3x2xf32>) {
  // expected-error @below {{'attn.pack_blocks' op scales element type 'f32' differs from the format's scale_type 'f16'}}
  %b = attn.pack_blocks %c, %s format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      : tensor<3x64xi8>, tensor<3x2xf32> -> tensor<3x36xi8>
  return
}
// -----
func.func @f(%b: tensor<3x36xi8>) {
  // expected-error @below {{'attn.unpack_blocks' op scales [3, 1] must be [3, 2] for codes [3, 64]}}
  %c, %s = attn.unpack_blocks %b format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      : tensor<3x36xi8> -> tensor<3x64xi8>, tensor<3x1xf16>
  return
}

// -----
func.func @f(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %b: tensor<4x8xf32>) {
  // expected-error @below {{'attn.sdpa' op key_bias [4, 8] must be [Hkv, D] = [2, 8]}}
  %o = attn.sdpa %q, %k, %k key_bias(%b : tensor<4x8xf32> rope(<layout = half_split, rotary_dim = 8, theta = 1.0e+04>))
      causal precision <compute = f32, accumulate = f32> : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return
}
// -----
func.func @f(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %b: tensor<2x8xf32>) {
  // expected-error @below {{'attn.sdpa' op key_bias rope rotary_dim 16 exceeds the head dim 8}}
  %o = attn.sdpa %q, %k, %k key_bias(%b : tensor<2x8xf32> rope(<layout = half_split, rotary_dim = 16, theta = 1.0e+04>))
      causal precision <compute = f32, accumulate = f32> : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return
}
// -----
func.func @f(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %b: tensor<2x8xf32>) {
  // expected-error @below {{'attn.sdpa' op key_bias rope rotary_dim must be > 0: with no rotated dims q · b is the same for every key, which softmax cancels}}
  %o = attn.sdpa %q, %k, %k key_bias(%b : tensor<2x8xf32> rope(<layout = half_split, rotary_dim = 0, theta = 1.0e+04>))
      causal precision <compute = f32, accumulate = f32> : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return
}
// -----
func.func @f(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %b: tensor<2x8xf32>) {
  // expected-error @below {{rope scaling must be linear, yarn or llama3 (a dynamic scaling depends on the positions)}}
  %o = attn.sdpa %q, %k, %k key_bias(%b : tensor<2x8xf32> rope(<layout = half_split, rotary_dim = 8, theta = 1.0e+04, scaling = #attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 16>>))
      causal precision <compute = f32, accumulate = f32> : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return
}
// -----
func.func @f(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %b: tensor<2x8xf32>) {
  // expected-error @below {{rope rotary_dim must be even and >= 0, got 3}}
  %o = attn.sdpa %q, %k, %k key_bias(%b : tensor<2x8xf32> rope(<layout = half_split, rotary_dim = 3, theta = 1.0e+04>))
      causal precision <compute = f32, accumulate = f32> : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return
}
// -----
func.func @f(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>) {
  // expected-error @below {{'attn.sdpa' op a key_bias needs its rope, and a rope its key_bias}}
  %o = "attn.sdpa"(%q, %k, %k) <{key_bias_rope = #attn.rope<layout = half_split, rotary_dim = 8, theta = 1.0e+04>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>, precision = #attn.precision<compute = f32, accumulate = f32>, causal}>
      : (tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32>) -> tensor<?x4x8xf32>
  return
}
// -----
func.func @f(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>) {
  // expected-error @below {{'attn.sdpa' op round_probabilities needs a compute type narrower than the accumulate type, got compute 'f32' and accumulate 'f32' (nothing would be rounded)}}
  %o = attn.sdpa %q, %k, %k causal precision <compute = f32, accumulate = f32> round_probabilities
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return
}
