// RUN: rotor-opt %s -split-input-file -attn-check-rope-layout -verify-diagnostics
// RUN: rotor-opt %s -split-input-file -attn-convert-rope-layout=to=interleaved -attn-check-rope-layout=allow-mismatch 2>&1 | FileCheck %s --check-prefix=CONVERTED
// RUN: rotor-opt %s -split-input-file -attn-check-rope-layout=allow-mismatch 2>&1 | FileCheck %s --check-prefix=ALLOWED

// Half-split rows under a half-split RoPE: fine, and still fine once
// converted to interleaved (the permuted rows are interleaved).
// CONVERTED-NOT: 'qa.weight'
// CONVERTED-LABEL: func.func @agree
// CONVERTED: attn.permute
// CONVERTED: attn.rope interleaved
func.func @agree(%x: tensor<?x16xf32>, %pos: tensor<?xi32>) -> tensor<?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %w = attn.param "qa.weight" rows(<half_split>) : tensor<16x16xf32>
  %k = attn.param "ka.weight" rows(<half_split>) : tensor<8x16xf32>
  %q = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
  %q3 = tensor.expand_shape %q [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %qr = attn.rope half_split %q3, %pos rotary_dim(6) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>, tensor<?xi32>
  %kk = attn.linear %x, %k precision <compute = f32, accumulate = f32>
      : tensor<?x16xf32>, tensor<8x16xf32> -> tensor<?x8xf32>
  %k3 = tensor.expand_shape %kk [[0], [1, 2]] output_shape [%t, 1, 8] : tensor<?x8xf32> into tensor<?x1x8xf32>
  %kr = attn.rope half_split %k3, %pos rotary_dim(6) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x1x8xf32>, tensor<?xi32>
  %o = attn.sdpa %qr, %kr, %k3 causal precision <compute = f32, accumulate = f32>
      : tensor<?x2x8xf32>, tensor<?x1x8xf32>, tensor<?x1x8xf32> -> tensor<?x2x8xf32>
  return %o : tensor<?x2x8xf32>
}

// -----

// Half-split rows under an interleaved RoPE: the classic porting bug.
// ALLOWED: warning: pairs dims as interleaved, but the rows of its projection weight 'q.weight' are stored half_split
func.func @mismatch(%x: tensor<?x16xf32>, %pos: tensor<?xi32>) -> tensor<?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  // expected-note @below {{the weight is read here}}
  %w = attn.param "q.weight" rows(<half_split>) : tensor<16x16xf32>
  %q = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
  %q3 = tensor.expand_shape %q [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  // expected-error @below {{'attn.rope' op pairs dims as interleaved, but the rows of its projection weight 'q.weight' are stored half_split (convert with attn-convert-rope-layout)}}
  %qr = attn.rope interleaved %q3, %pos rotary_dim(8) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>, tensor<?xi32>
  return %qr : tensor<?x2x8xf32>
}

// -----

// A permutation that is not the layout conversion hides the order: no
// claim is made either way.
func.func @unknown(%x: tensor<?x16xf32>, %pos: tensor<?xi32>) -> tensor<?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %w = attn.param "q.weight" rows(<half_split>) : tensor<16x16xf32>
  %p = attn.permute %w dim(0) permutation([1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]) : tensor<16x16xf32>
  %q = attn.linear %x, %p precision <compute = f32, accumulate = f32>
      : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
  %q3 = tensor.expand_shape %q [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %qr = attn.rope interleaved %q3, %pos rotary_dim(8) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>, tensor<?xi32>
  return %qr : tensor<?x2x8xf32>
}
