// RUN: rotor-opt %s -split-input-file -attn-narrow-rounded-weights | FileCheck %s

// Weights that every use rounds to bf16 (linears with compute = bf16) are
// stored bf16: every attn.param of the name, in prefill and decode, and
// the permutation between a param and its linear. The biases (added in the
// accumulate type) and the input stay f32.
// CHECK-LABEL: func.func @prefill
// CHECK: %[[WQ:.*]] = attn.param "q_proj.weight" rows(<half_split>) : tensor<8x16xbf16>
// CHECK: %[[BQ:.*]] = attn.param "q_proj.bias" : tensor<8xf32>
// CHECK: %[[WK:.*]] = attn.param "k_proj.weight" : tensor<4x16xbf16>
// CHECK: %[[WKP:.*]] = attn.permute %[[WK]] dim(0) permutation([0, 2, 1, 3]) : tensor<4x16xbf16>
// CHECK: attn.linear %{{.*}}, %[[WQ]], %[[BQ]] precision <compute = bf16, accumulate = f32> : tensor<?x16xf32>, tensor<8x16xbf16>, tensor<8xf32> -> tensor<?x8xf32>
// CHECK: attn.linear %{{.*}}, %[[WKP]] precision <compute = bf16, accumulate = f32> : tensor<?x16xf32>, tensor<4x16xbf16> -> tensor<?x4xf32>
// CHECK-LABEL: func.func @decode
// CHECK: attn.param "q_proj.weight" rows(<half_split>) : tensor<8x16xbf16>
func.func @prefill(%x: tensor<?x16xf32>) -> (tensor<?x8xf32>, tensor<?x4xf32>) {
  %wq = attn.param "q_proj.weight" rows(<half_split>) : tensor<8x16xf32>
  %bq = attn.param "q_proj.bias" : tensor<8xf32>
  %wk = attn.param "k_proj.weight" : tensor<4x16xf32>
  %wkp = attn.permute %wk dim(0) permutation([0, 2, 1, 3]) : tensor<4x16xf32>
  %q = attn.linear %x, %wq, %bq precision <compute = bf16, accumulate = f32>
      : tensor<?x16xf32>, tensor<8x16xf32>, tensor<8xf32> -> tensor<?x8xf32>
  %k = attn.linear %x, %wkp precision <compute = bf16, accumulate = f32>
      : tensor<?x16xf32>, tensor<4x16xf32> -> tensor<?x4xf32>
  return %q, %k : tensor<?x8xf32>, tensor<?x4xf32>
}
func.func @decode(%x: tensor<1x16xf32>) -> tensor<1x8xf32> {
  %wq = attn.param "q_proj.weight" rows(<half_split>) : tensor<8x16xf32>
  %q = attn.linear %x, %wq precision <compute = bf16, accumulate = f32>
      : tensor<1x16xf32>, tensor<8x16xf32> -> tensor<1x8xf32>
  return %q : tensor<1x8xf32>
}

// -----

// f16 compute: stored f16.
// CHECK-LABEL: func.func @f16_compute
// CHECK: attn.param "w" : tensor<8x16xf16>
func.func @f16_compute(%x: tensor<?x16xf32>) -> tensor<?x8xf32> {
  %w = attn.param "w" : tensor<8x16xf32>
  %y = attn.linear %x, %w precision <compute = f16, accumulate = f32>
      : tensor<?x16xf32>, tensor<8x16xf32> -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Left as they are: a name that another function reads in an f32 linear;
// a weight two linears round to different types; a weight that is also an
// input; a weight already bf16 (nothing narrower); an f32-compute linear.
// CHECK-LABEL: func.func @mixed_prefill
// CHECK: attn.param "shared" : tensor<8x16xf32>
// CHECK: attn.param "two_types" : tensor<8x16xf32>
// CHECK: attn.param "as_input" : tensor<16x16xf32>
// CHECK: attn.param "narrow" : tensor<8x16xbf16>
// CHECK-LABEL: func.func @mixed_decode
// CHECK: attn.param "shared" : tensor<8x16xf32>
// CHECK: attn.param "f32_compute" : tensor<8x16xf32>
func.func @mixed_prefill(%x: tensor<?x16xf32>)
    -> (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<16x16xf32>, tensor<?x8xf32>) {
  %shared = attn.param "shared" : tensor<8x16xf32>
  %a = attn.linear %x, %shared precision <compute = bf16, accumulate = f32>
      : tensor<?x16xf32>, tensor<8x16xf32> -> tensor<?x8xf32>
  %two = attn.param "two_types" : tensor<8x16xf32>
  %b = attn.linear %x, %two precision <compute = bf16, accumulate = f32>
      : tensor<?x16xf32>, tensor<8x16xf32> -> tensor<?x8xf32>
  %c = attn.linear %x, %two precision <compute = f16, accumulate = f32>
      : tensor<?x16xf32>, tensor<8x16xf32> -> tensor<?x8xf32>
  %in = attn.param "as_input" : tensor<16x16xf32>
  %d = attn.linear %in, %in precision <compute = bf16, accumulate = f32>
      : tensor<16x16xf32>, tensor<16x16xf32> -> tensor<16x16xf32>
  %narrow = attn.param "narrow" : tensor<8x16xbf16>
  %e = attn.linear %x, %narrow precision <compute = bf16, accumulate = f32>
      : tensor<?x16xf32>, tensor<8x16xbf16> -> tensor<?x8xf32>
  return %a, %b, %c, %d, %e : tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<16x16xf32>, tensor<?x8xf32>
}
func.func @mixed_decode(%x: tensor<1x16xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>) {
  %shared = attn.param "shared" : tensor<8x16xf32>
  %a = attn.linear %x, %shared precision <compute = f32, accumulate = f32>
      : tensor<1x16xf32>, tensor<8x16xf32> -> tensor<1x8xf32>
  %w = attn.param "f32_compute" : tensor<8x16xf32>
  %b = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      : tensor<1x16xf32>, tensor<8x16xf32> -> tensor<1x8xf32>
  return %a, %b : tensor<1x8xf32>, tensor<1x8xf32>
}

// -----

// A weight read by something else besides its linear (here returned):
// left f32.
// CHECK-LABEL: func.func @other_use
// CHECK: attn.param "w" : tensor<8x16xf32>
func.func @other_use(%x: tensor<?x16xf32>) -> (tensor<?x8xf32>, tensor<8x16xf32>) {
  %w = attn.param "w" : tensor<8x16xf32>
  %y = attn.linear %x, %w precision <compute = bf16, accumulate = f32>
      : tensor<?x16xf32>, tensor<8x16xf32> -> tensor<?x8xf32>
  return %y, %w : tensor<?x8xf32>, tensor<8x16xf32>
}
