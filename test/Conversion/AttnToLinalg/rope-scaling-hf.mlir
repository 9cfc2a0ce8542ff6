// The inverse frequencies baked into RoPE kernels equal transformers'
// modeling_rope_utils formulas (re-implemented in PyTorch, float64) for the
// default, linear, llama3 and YaRN rope types.
// RUN: rotor-opt %s -convert-attn-to-linalg | %python %S/Inputs/hf_rope_inv_freq.py \
// RUN:   default:128:1000000 linear:64:10000:factor=4 \
// RUN:   llama3:128:500000:factor=8,low_freq_factor=1,high_freq_factor=4,original=8192 \
// RUN:   yarn:128:1000000:factor=4,original=32768,beta_fast=32,beta_slow=1,truncate=true \
// RUN:   yarn:64:10000:factor=8,original=4096,beta_fast=16,beta_slow=2,truncate=false \
// RUN:   | FileCheck %s
// CHECK-COUNT-5: hf_rope_inv_freq: {{.*}} max relative difference

func.func @default(%x: tensor<?x2x128xf32>, %p: tensor<?xi32>) -> tensor<?x2x128xf32> {
  %0 = attn.rope half_split %x, %p rotary_dim(128) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<?x2x128xf32>, tensor<?xi32>
  return %0 : tensor<?x2x128xf32>
}
func.func @linear(%x: tensor<?x2x128xf32>, %p: tensor<?xi32>) -> tensor<?x2x128xf32> {
  %0 = attn.rope half_split %x, %p rotary_dim(64) theta(1.0e+04)
      scaling(#attn.linear_scaling<factor = 4.0>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x128xf32>, tensor<?xi32>
  return %0 : tensor<?x2x128xf32>
}
func.func @llama3(%x: tensor<?x2x128xf32>, %p: tensor<?xi32>) -> tensor<?x2x128xf32> {
  %0 = attn.rope interleaved %x, %p rotary_dim(128) theta(5.0e+05)
      scaling(#attn.llama3_scaling<factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0,
                                   original_max_position_embeddings = 8192>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x128xf32>, tensor<?xi32>
  return %0 : tensor<?x2x128xf32>
}
func.func @yarn(%x: tensor<?x2x128xf32>, %p: tensor<?xi32>) -> tensor<?x2x128xf32> {
  %0 = attn.rope half_split %x, %p rotary_dim(128) theta(1.0e+06)
      scaling(#attn.yarn_scaling<factor = 4.0, original_max_position_embeddings = 32768,
                                 beta_fast = 32.0, beta_slow = 1.0, attention_factor = 1.1386,
                                 truncate = true>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x128xf32>, tensor<?xi32>
  return %0 : tensor<?x2x128xf32>
}
func.func @yarn_untruncated(%x: tensor<?x2x64xf32>, %p: tensor<?xi32>) -> tensor<?x2x64xf32> {
  %0 = attn.rope half_split %x, %p rotary_dim(64) theta(1.0e+04)
      scaling(#attn.yarn_scaling<factor = 8.0, original_max_position_embeddings = 4096,
                                 beta_fast = 16.0, beta_slow = 2.0, attention_factor = 1.2,
                                 truncate = false>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x64xf32>, tensor<?xi32>
  return %0 : tensor<?x2x64xf32>
}
