// RUN: rotor-opt %s -split-input-file -attn-convert-rope-layout=to=interleaved -verify-diagnostics | FileCheck %s
// RUN: rotor-opt %s -split-input-file -attn-convert-rope-layout=to=interleaved -attn-convert-rope-layout=to=half_split -canonicalize -verify-diagnostics | FileCheck %s --check-prefix=BACK

// Two heads of 8 dims, the first 4 rotary: per head, half-split rows
// (0, 2 | 1, 3) become interleaved pairs (0, 1 | 2, 3); dims 4-7 stay. The
// q_norm weight is permuted within one head.
// CHECK-LABEL: func.func @layer
// CHECK: %[[WQ:.+]] = attn.permute %{{.+}} dim(0) permutation([0, 2, 1, 3, 4, 5, 6, 7, 8, 10, 9, 11, 12, 13, 14, 15]) : tensor<16x16xf32>
// CHECK: %[[BQ:.+]] = attn.permute %{{.+}} dim(0) permutation([0, 2, 1, 3, 4, 5, 6, 7, 8, 10, 9, 11, 12, 13, 14, 15]) : tensor<16xf32>
// CHECK: attn.linear %{{.+}}, %[[WQ]], %[[BQ]]
// CHECK: %[[NQ:.+]] = attn.permute %{{.+}} dim(0) permutation([0, 2, 1, 3, 4, 5, 6, 7]) : tensor<8xf32>
// CHECK: attn.rms_norm %{{.+}}, %[[NQ]]
// CHECK: attn.rope interleaved
// CHECK: attn.permute %{{.+}} dim(0) permutation([0, 2, 1, 3, 4, 5, 6, 7]) : tensor<8x16xf32>
// CHECK: attn.rope interleaved
// CHECK-NOT: attn.permute
// CHECK: attn.sdpa
// Converting back composes each pair of permutations into the identity.
// BACK-LABEL: func.func @layer
// BACK-NOT: attn.permute
// BACK: attn.rope half_split
// BACK: attn.rope half_split
func.func @layer(%x: tensor<?x16xf32>, %pos: tensor<?xi32>) -> tensor<?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %wq = attn.param "q.weight" : tensor<16x16xf32>
  %bq = attn.param "q.bias" : tensor<16xf32>
  %nq = attn.param "q_norm.weight" : tensor<8xf32>
  %wk = attn.param "k.weight" : tensor<8x16xf32>
  %wv = attn.param "v.weight" : tensor<8x16xf32>
  %q = attn.linear %x, %wq, %bq precision <compute = f32, accumulate = f32>
      : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %q3 = tensor.expand_shape %q [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %qn = attn.rms_norm %q3, %nq epsilon(1.0e-06) precision <compute = f32, accumulate = f32>
      : tensor<?x2x8xf32>, tensor<8xf32>
  %qr = attn.rope half_split %qn, %pos rotary_dim(4) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>, tensor<?xi32>
  %k = attn.linear %x, %wk precision <compute = f32, accumulate = f32>
      : tensor<?x16xf32>, tensor<8x16xf32> -> tensor<?x8xf32>
  %k3 = tensor.expand_shape %k [[0], [1, 2]] output_shape [%t, 1, 8] : tensor<?x8xf32> into tensor<?x1x8xf32>
  %kr = attn.rope half_split %k3, %pos rotary_dim(4) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x1x8xf32>, tensor<?xi32>
  %v = attn.linear %x, %wv precision <compute = f32, accumulate = f32>
      : tensor<?x16xf32>, tensor<8x16xf32> -> tensor<?x8xf32>
  %v3 = tensor.expand_shape %v [[0], [1, 2]] output_shape [%t, 1, 8] : tensor<?x8xf32> into tensor<?x1x8xf32>
  %o = attn.sdpa %qr, %kr, %v3 causal precision <compute = f32, accumulate = f32>
      : tensor<?x2x8xf32>, tensor<?x1x8xf32>, tensor<?x1x8xf32> -> tensor<?x2x8xf32>
  return %o : tensor<?x2x8xf32>
}

// -----

// The rotated keys are returned: their row order would change, so the
// function is left alone.
// expected-remark @below {{attn-convert-rope-layout left @leaky alone: a RoPE's result is used by something other than attention scores, which would see the permuted order}}
func.func @leaky(%x: tensor<?x8xf32>, %pos: tensor<?xi32>) -> tensor<?x1x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x8xf32>
  %w = attn.param "k.weight" : tensor<8x8xf32>
  %k = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
  %k3 = tensor.expand_shape %k [[0], [1, 2]] output_shape [%t, 1, 8] : tensor<?x8xf32> into tensor<?x1x8xf32>
  %kr = attn.rope half_split %k3, %pos rotary_dim(8) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x1x8xf32>, tensor<?xi32>
  return %kr : tensor<?x1x8xf32>
}
