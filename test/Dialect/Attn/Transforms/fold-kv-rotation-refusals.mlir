// RUN: rotor-opt %s -split-input-file -attn-fold-kv-rotation -verify-diagnostics | FileCheck %s

// Each split is a rotated cache that must not fold: the pass names the
// reason in a remark and leaves the IR unchanged.

#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#r2 = #attn.hadamard<group = 4, s1 = [1, 1, -1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// CHECK-LABEL: func.func @different_rotations
// CHECK: %[[KK:.+]] = attn.hadamard %{{.+}} inverse
// CHECK: attn.sdpa %arg0, %[[KK]], %arg2
func.func @different_rotations(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %kw = attn.hadamard %k rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %kk = attn.hadamard %kw rotation(#r2) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+1 {{key: not folded [different-rotations]: the key cache is written with R(group 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]) but read with Rᵀ(group 4, s1 = [1, 1, -1, 1], s2 = [-1, 1, 1, 1])}}
  %o = attn.sdpa %q, %kk, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// CHECK-LABEL: func.func @rotation_before_rope
// CHECK: %[[KK:.+]] = attn.hadamard %{{.+}} inverse
// CHECK: attn.sdpa %arg0, %[[KK]], %arg2
func.func @rotation_before_rope(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>,
                                %pos: tensor<?xi32>) -> tensor<?x4x8xf32> {
  %kw = attn.hadamard %k rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %kp = attn.rope half_split %kw, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %kk = attn.hadamard %kp rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+1 {{key: not folded [rotation-before-rope]: the key cache's rotation is applied before RoPE}}
  %o = attn.sdpa %q, %kk, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// CHECK-LABEL: func.func @rotation_before_norm
// CHECK: %[[KK:.+]] = attn.hadamard %{{.+}} inverse
// CHECK: attn.sdpa %arg0, %[[KK]], %arg2
func.func @rotation_before_norm(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>,
                                %w: tensor<8xf32>) -> tensor<?x4x8xf32> {
  %kw = attn.hadamard %k rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %kn = attn.rms_norm %kw, %w epsilon(1.0e-06) precision #f32 : tensor<?x2x8xf32>, tensor<8xf32>
  %kk = attn.hadamard %kn rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+1 {{key: not folded [rotation-before-norm]}}
  %o = attn.sdpa %q, %kk, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

// One group of 16 over two heads of 8, rotated on the merged [T, H·D] form.
#r16 = #attn.hadamard<group = 16, s1 = [1, -1, 1, 1, 1, 1, -1, 1, 1, 1, 1, -1, 1, 1, 1, 1],
                      s2 = [-1, 1, 1, 1, 1, 1, 1, 1, -1, 1, 1, 1, 1, 1, 1, -1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// CHECK-LABEL: func.func @group_spans_heads
// CHECK: %[[KK:.+]] = attn.hadamard %{{.+}} inverse
// CHECK: %[[KS:.+]] = tensor.expand_shape %[[KK]]
// CHECK: attn.sdpa %arg0, %[[KS]], %arg2
func.func @group_spans_heads(%q: tensor<?x4x8xf32>, %k: tensor<?x16xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %k, %c0 : tensor<?x16xf32>
  %kw = attn.hadamard %k rotation(#r16) precision #f32 : tensor<?x16xf32>
  %kk = attn.hadamard %kw rotation(#r16) inverse precision #f32 : tensor<?x16xf32>
  %ks = tensor.expand_shape %kk [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  // expected-remark @+1 {{key: not folded [group-spans-heads]: the key's rotation groups of 16 span heads of 8 dims}}
  %o = attn.sdpa %q, %ks, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

// Groups of 8 on the merged form do tile heads of 8: that folds.
#r8 = #attn.hadamard<group = 8, s1 = [1, -1, 1, 1, -1, 1, 1, 1], s2 = [1, 1, -1, 1, 1, 1, -1, -1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// CHECK-LABEL: func.func @merged_groups_tile_heads
// CHECK: %[[KW:.+]] = attn.hadamard %arg1
// CHECK-NOT: inverse
// CHECK: %[[QR:.+]] = attn.hadamard %arg0
// CHECK: %[[KS:.+]] = tensor.expand_shape %[[KW]] {{\[}}[0], [1, 2]]
// CHECK: attn.sdpa %[[QR]], %[[KS]], %arg2
func.func @merged_groups_tile_heads(%q: tensor<?x4x8xf32>, %k: tensor<?x16xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %k, %c0 : tensor<?x16xf32>
  %kw = attn.hadamard %k rotation(#r8) precision #f32 : tensor<?x16xf32>
  %kk = attn.hadamard %kw rotation(#r8) inverse precision #f32 : tensor<?x16xf32>
  %ks = tensor.expand_shape %kk [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  // expected-remark @+1 {{key: folded}}
  %o = attn.sdpa %q, %ks, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// CHECK-LABEL: func.func @non_linear_between
// CHECK: %[[KK:.+]] = attn.hadamard %{{.+}} inverse
// CHECK: %[[KN:.+]] = attn.rms_norm %[[KK]]
// CHECK: attn.sdpa %arg0, %[[KN]], %arg2
func.func @non_linear_between(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>,
                              %w: tensor<8xf32>) -> tensor<?x4x8xf32> {
  %kw = attn.hadamard %k rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %kk = attn.hadamard %kw rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  %kn = attn.rms_norm %kk, %w epsilon(1.0e-06) precision #f32 : tensor<?x2x8xf32>, tensor<8xf32>
  // expected-remark @+1 {{key: not folded [non-linear-between]: 'attn.rms_norm' lies between the key's rotation and SDPA}}
  %o = attn.sdpa %q, %kn, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

// A rotation along the token dim (a group of 4 tokens).
#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// CHECK-LABEL: func.func @sequence_in_group
// CHECK: %[[KK:.+]] = attn.hadamard %{{.+}} inverse dim(0)
// CHECK: attn.sdpa %arg0, %[[KK]], %arg2
func.func @sequence_in_group(%q: tensor<8x4x8xf32>, %k: tensor<8x2x8xf32>, %v: tensor<8x2x8xf32>) -> tensor<8x4x8xf32> {
  %kw = attn.hadamard %k rotation(#r) dim(0) precision #f32 : tensor<8x2x8xf32>
  %kk = attn.hadamard %kw rotation(#r) inverse dim(0) precision #f32 : tensor<8x2x8xf32>
  // expected-remark @+1 {{key: not folded [sequence-in-group]: the key's rotation runs along dim 0 of rank 3}}
  %o = attn.sdpa %q, %kk, %v causal precision #f32
      : tensor<8x4x8xf32>, tensor<8x2x8xf32>, tensor<8x2x8xf32> -> tensor<8x4x8xf32>
  return %o : tensor<8x4x8xf32>
}

// -----

#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>
#bf16 = #attn.precision<compute = bf16, accumulate = f32>

// CHECK-LABEL: func.func @low_precision_rotation
// CHECK: %[[VV:.+]] = attn.hadamard %{{.+}} inverse precision <compute = bf16
// CHECK: attn.sdpa %arg0, %arg1, %[[VV]]
func.func @low_precision_rotation(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %vw = attn.hadamard %v rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %vv = attn.hadamard %vw rotation(#r) inverse precision #bf16 : tensor<?x2x8xf32>
  // expected-remark @+1 {{value: not folded [low-precision-rotation]: the value's rotation is computed in 16-bit floats}}
  %o = attn.sdpa %q, %k, %vv causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>
#q4 = #attn.kv_block<bits = 4, block_size = 8, scheme = absmax, scale_type = f16>

// CHECK-LABEL: func.func @not_rotated_on_write
// CHECK: %[[KK:.+]] = attn.hadamard %{{.+}} inverse
// CHECK: attn.sdpa %arg0, %[[KK]], %arg2
func.func @not_rotated_on_write(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>,
                                %pos: tensor<?xi32>) -> tensor<?x4x8xf32> {
  %kp = attn.rope half_split %k, %pos rotary_dim(8) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %kc, %ks = attn.quantize %kp format(#q4) precision #f32 : tensor<?x2x8xf32>
  %kd = attn.dequantize %kc, %ks format(#q4) precision #f32 : tensor<?x2x8xi8>, tensor<?x2x1xf16> -> tensor<?x2x8xf32>
  %kk = attn.hadamard %kd rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+1 {{key: not folded [not-rotated-on-write]: the key cache is read through Rᵀ(group 4}}
  %o = attn.sdpa %q, %kk, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// The cache arrives as an argument: its writer is elsewhere.
// CHECK-LABEL: func.func @unknown_writer
// CHECK: %[[KK:.+]] = attn.hadamard %arg1 rotation(#{{.+}}) inverse
// CHECK: attn.sdpa %arg0, %[[KK]], %arg2
func.func @unknown_writer(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %kk = attn.hadamard %k rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+1 {{key: not folded [unknown-writer]}}
  %o = attn.sdpa %q, %kk, %v causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

// Nothing rotated: no remark, no change.
// CHECK-LABEL: func.func @plain
// CHECK: attn.sdpa %arg0, %arg1, %arg2
func.func @plain(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}

// -----

// A bad test option is an error, not a silent no-op.
// RUN: not rotor-opt %s -split-input-file -attn-fold-kv-rotation="test-apply-mistake=sideways" 2>&1 | FileCheck %s --check-prefix=BADOPT
// BADOPT: unknown test-apply-mistake 'sideways'

// -----

// The merged heads also feed a projection as its weight (decode, Tq = 1):
// W_o cannot take the output's inverse; it stays online.
#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// CHECK-LABEL: func.func @merge_read_as_weight
// CHECK: %[[O:.+]] = attn.sdpa
// CHECK: %[[U:.+]] = attn.hadamard %[[O]] rotation(#{{.+}}) inverse
// CHECK: %[[M:.+]] = tensor.collapse_shape %[[U]]
// CHECK: attn.linear %[[M]], %arg3
// CHECK: attn.linear %arg4, %[[M]]
func.func @merge_read_as_weight(%q: tensor<1x4x8xf32>, %kr: tensor<?x2x8xf32>, %vr: tensor<?x2x8xf32>,
                                %wo: tensor<16x32xf32>, %x: tensor<3x32xf32>) -> (tensor<1x16xf32>, tensor<3x1xf32>) {
  %kw = attn.hadamard %kr rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %kk = attn.hadamard %kw rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  %vw = attn.hadamard %vr rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %vv = attn.hadamard %vw rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+3 {{key: folded}}
  // expected-remark @+2 {{kept online (no output projection reads the merged heads directly)}}
  // expected-remark @+1 {{value write: rotation kept online}}
  %o = attn.sdpa %q, %kk, %vv causal precision #f32
      : tensor<1x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<1x4x8xf32>
  %m = tensor.collapse_shape %o [[0], [1, 2]] : tensor<1x4x8xf32> into tensor<1x32xf32>
  %out = attn.linear %m, %wo precision #f32 : tensor<1x32xf32>, tensor<16x32xf32> -> tensor<1x16xf32>
  %odd = attn.linear %x, %m precision #f32 : tensor<3x32xf32>, tensor<1x32xf32> -> tensor<3x1xf32>
  return %out, %odd : tensor<1x16xf32>, tensor<3x1xf32>
}

// -----

// SDPA adds a key-bias term (attn-split-rope-bias) computed from the query
// as it is: a rotated Q would need a rotated bias.
#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// CHECK-LABEL: func.func @key_bias_term
// CHECK: %[[KK:.+]] = attn.hadamard %{{.+}} inverse
// CHECK: attn.sdpa %arg0, %[[KK]], %arg2 key_bias
func.func @key_bias_term(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>, %b: tensor<2x8xf32>) -> tensor<?x4x8xf32> {
  %kw = attn.hadamard %k rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %kk = attn.hadamard %kw rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+1 {{key: not folded [key-bias-term]}}
  %o = attn.sdpa %q, %kk, %v key_bias(%b : tensor<2x8xf32> rope(<layout = half_split, rotary_dim = 8, theta = 1.0e+04>))
      causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %o : tensor<?x4x8xf32>
}
