// RUN: rotor-opt %s -split-input-file -attn-fold-kv-rotation -verify-diagnostics | FileCheck %s
// RUN: rotor-opt %s -split-input-file -attn-fold-kv-rotation="fold-output-projection=false fold-value-projection=false" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=ONLINE
// RUN: rotor-opt %s -split-input-file -attn-fold-kv-rotation="report=-" -verify-diagnostics -o /dev/null 2>&1 \
// RUN:   | FileCheck %s --check-prefix=REPORT

// The rotation is non-symmetric (s1 != s2) and smaller than a head (two
// groups of 4 per head of 8), so a transposed or mis-grouped rewrite shows.

#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>
#q3 = #attn.kv_block<bits = 3, block_size = 4, scheme = codebook, scale_type = f16>

// A whole prefill layer: GQA 4:2, q/k norm, partial rotary, quantized K/V.
// CHECK: #rotation = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
// CHECK-LABEL: func.func @layer
// CHECK: %[[WV:.+]] = attn.param "wv"
// CHECK: %[[BV:.+]] = attn.param "bv"
// CHECK: %[[WO:.+]] = attn.param "wo"
// CHECK: %[[Q:.+]] = attn.rope
// CHECK: %[[K:.+]] = attn.rope
// CHECK: %[[KR:.+]] = attn.hadamard %[[K]] rotation(#rotation) precision
// CHECK: %[[KC:.+]], %[[KS:.+]] = attn.quantize %[[KR]]
// CHECK: %[[KD:.+]] = attn.dequantize %[[KC]], %[[KS]]
// CHECK: %[[WVR:.+]] = attn.hadamard %[[WV]] rotation(#rotation) dim(0) precision <compute = f64, accumulate = f64>
// CHECK: %[[BVR:.+]] = attn.hadamard %[[BV]] rotation(#rotation) precision <compute = f64, accumulate = f64>
// CHECK: %[[V:.+]] = attn.linear %{{.+}}, %[[WVR]], %[[BVR]]
// CHECK: %[[VS:.+]] = tensor.expand_shape %[[V]]
// CHECK: %[[VC:.+]], %[[VSC:.+]] = attn.quantize %[[VS]]
// CHECK: %[[VD:.+]] = attn.dequantize %[[VC]], %[[VSC]]
// CHECK: %[[QR:.+]] = attn.hadamard %[[Q]] rotation(#rotation) precision <compute = f32, accumulate = f32>
// CHECK: %[[O:.+]] = attn.sdpa %[[QR]], %[[KD]], %[[VD]] causal
// CHECK: %[[M:.+]] = tensor.collapse_shape %[[O]]
// CHECK: %[[WOR:.+]] = attn.hadamard %[[WO]] rotation(#rotation) precision <compute = f64, accumulate = f64>
// CHECK: attn.linear %[[M]], %[[WOR]] precision
// CHECK-NOT: inverse
// CHECK: return

// ONLINE: value: folded: SDPA reads the rotated values; the output is un-rotated by Rᵀ(group 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]), kept online (fold-output-projection=false)
// ONLINE: value write: rotation kept online (fold-value-projection=false)
// ONLINE-LABEL: func.func @layer
// ONLINE: %[[Q:.+]] = attn.rope
// ONLINE: %[[QR:.+]] = attn.hadamard %[[Q]] rotation(#{{.+}}) precision
// ONLINE: %[[O:.+]] = attn.sdpa %[[QR]],
// ONLINE: %[[U:.+]] = attn.hadamard %[[O]] rotation(#{{.+}}) inverse precision
// ONLINE: tensor.collapse_shape %[[U]]

// REPORT: attn-fold-kv-rotation report
// REPORT: @layer:
// REPORT-NEXT: key: folded: Q rotated by R(group 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]) right before SDPA
// REPORT-NEXT: value: folded: SDPA reads the rotated values; the output's inverse rotation is folded into the columns of W_o 'wo'
// REPORT-NEXT: value write: folded: the rotation is folded into the rows of W_v 'wv' and into b_v
// REPORT: @decode:
// REPORT: @gated:
// REPORT-NEXT: key: folded
// REPORT-NEXT: value: folded: {{.*}} kept online before the output gate [output-gate]
func.func @layer(%x: tensor<?x16xf32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %wq = attn.param "wq" : tensor<32x16xf32>
  %wk = attn.param "wk" : tensor<16x16xf32>
  %wv = attn.param "wv" : tensor<16x16xf32>
  %bv = attn.param "bv" : tensor<16xf32>
  %wo = attn.param "wo" : tensor<16x32xf32>
  %gq = attn.param "q_norm" : tensor<8xf32>
  %gk = attn.param "k_norm" : tensor<8xf32>
  %q0 = attn.linear %x, %wq precision #f32 : tensor<?x16xf32>, tensor<32x16xf32> -> tensor<?x32xf32>
  %q1 = tensor.expand_shape %q0 [[0], [1, 2]] output_shape [%t, 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
  %q2 = attn.rms_norm %q1, %gq epsilon(1.0e-06) precision #f32 : tensor<?x4x8xf32>, tensor<8xf32>
  %q = attn.rope half_split %q2, %pos rotary_dim(4) theta(1.0e+04) precision #f32 : tensor<?x4x8xf32>, tensor<?xi32>
  %k0 = attn.linear %x, %wk precision #f32 : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
  %k1 = tensor.expand_shape %k0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %k2 = attn.rms_norm %k1, %gk epsilon(1.0e-06) precision #f32 : tensor<?x2x8xf32>, tensor<8xf32>
  %k = attn.rope half_split %k2, %pos rotary_dim(4) theta(1.0e+04) precision #f32 : tensor<?x2x8xf32>, tensor<?xi32>
  %kr = attn.hadamard %k rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %kc, %ks = attn.quantize %kr format(#q3) precision #f32 : tensor<?x2x8xf32>
  %kd = attn.dequantize %kc, %ks format(#q3) precision #f32 : tensor<?x2x8xi8>, tensor<?x2x2xf16> -> tensor<?x2x8xf32>
  %kk = attn.hadamard %kd rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  %v0 = attn.linear %x, %wv, %bv precision #f32 : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %v1 = tensor.expand_shape %v0 [[0], [1, 2]] output_shape [%t, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %vr = attn.hadamard %v1 rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %vc, %vs = attn.quantize %vr format(#q3) precision #f32 : tensor<?x2x8xf32>
  %vd = attn.dequantize %vc, %vs format(#q3) precision #f32 : tensor<?x2x8xi8>, tensor<?x2x2xf16> -> tensor<?x2x8xf32>
  %vv = attn.hadamard %vd rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+3 {{attn-fold-kv-rotation: key: folded: Q rotated by R(group 4}}
  // expected-remark @+2 {{attn-fold-kv-rotation: value: folded}}
  // expected-remark @+1 {{attn-fold-kv-rotation: value write: folded}}
  %o = attn.sdpa %q, %kk, %vv causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  %m = tensor.collapse_shape %o [[0], [1, 2]] : tensor<?x4x8xf32> into tensor<?x32xf32>
  %out = attn.linear %m, %wo precision #f32 : tensor<?x32xf32>, tensor<16x32xf32> -> tensor<?x16xf32>
  return %out : tensor<?x16xf32>
}

// -----

// Decode through the caches: K/V codes are appended and the whole cache is
// read back; the rotation on write is found through append and read.
#r = #attn.hadamard<group = 8, s1 = [1, -1, 1, 1, -1, 1, 1, 1], s2 = [1, 1, -1, 1, 1, 1, -1, -1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>
#q4 = #attn.kv_block<bits = 4, block_size = 8, scheme = absmax, scale_type = f16>

// CHECK-LABEL: func.func @decode
// CHECK: %[[KC:.+]] = attn.kv_cache_append %{{.+}} into %arg2
// CHECK: %[[KR:.+]] = attn.kv_cache_read %[[KC]]
// CHECK: %[[KD:.+]] = attn.dequantize %[[KR]]
// CHECK: %[[VR:.+]] = attn.kv_cache_read
// CHECK: %[[VD:.+]] = attn.dequantize %[[VR]]
// CHECK: %[[QR:.+]] = attn.hadamard %arg0 rotation(#{{.+}}) precision
// CHECK: %[[O:.+]] = attn.sdpa %[[QR]], %[[KD]], %[[VD]]
// CHECK: %[[U:.+]] = attn.hadamard %[[O]] rotation(#{{.+}}) inverse
// CHECK: return %[[U]]
func.func @decode(%q: tensor<1x4x8xf32>, %k: tensor<1x2x8xf32>, %kcodes: tensor<64x2x8xi8>, %kscales: tensor<64x2x1xf16>,
                  %v: tensor<1x2x8xf32>, %vcodes: tensor<64x2x8xi8>, %vscales: tensor<64x2x1xf16>, %n: index)
    -> tensor<1x4x8xf32> {
  %c1 = arith.constant 1 : index
  %len = arith.addi %n, %c1 : index
  %kr = attn.hadamard %k rotation(#r) precision #f32 : tensor<1x2x8xf32>
  %kc, %ks = attn.quantize %kr format(#q4) precision #f32 : tensor<1x2x8xf32>
  %kc1 = attn.kv_cache_append %kc into %kcodes at %n : tensor<1x2x8xi8> into tensor<64x2x8xi8>
  %ks1 = attn.kv_cache_append %ks into %kscales at %n : tensor<1x2x1xf16> into tensor<64x2x1xf16>
  %kc2 = attn.kv_cache_read %kc1 length %len : tensor<64x2x8xi8>
  %ks2 = attn.kv_cache_read %ks1 length %len : tensor<64x2x1xf16>
  %kd = attn.dequantize %kc2, %ks2 format(#q4) precision #f32 : tensor<?x2x8xi8>, tensor<?x2x1xf16> -> tensor<?x2x8xf32>
  %kk = attn.hadamard %kd rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  %vr = attn.hadamard %v rotation(#r) precision #f32 : tensor<1x2x8xf32>
  %vc, %vs = attn.quantize %vr format(#q4) precision #f32 : tensor<1x2x8xf32>
  %vc1 = attn.kv_cache_append %vc into %vcodes at %n : tensor<1x2x8xi8> into tensor<64x2x8xi8>
  %vs1 = attn.kv_cache_append %vs into %vscales at %n : tensor<1x2x1xf16> into tensor<64x2x1xf16>
  %vc2 = attn.kv_cache_read %vc1 length %len : tensor<64x2x8xi8>
  %vs2 = attn.kv_cache_read %vs1 length %len : tensor<64x2x1xf16>
  %vd = attn.dequantize %vc2, %vs2 format(#q4) precision #f32 : tensor<?x2x8xi8>, tensor<?x2x1xf16> -> tensor<?x2x8xf32>
  %vv = attn.hadamard %vd rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+3 {{key: folded}}
  // expected-remark @+2 {{value: folded: SDPA reads the rotated values; the output is un-rotated by Rᵀ(group 8, s1 = [1, -1, 1, 1, ...], s2 = [1, 1, -1, 1, ...]), kept online (no output projection reads the merged heads directly)}}
  // expected-remark @+1 {{value write: rotation kept online: v_proj does not feed it through the head split alone}}
  %o = attn.sdpa %q, %kk, %vv causal precision #f32
      : tensor<1x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<1x4x8xf32>
  return %o : tensor<1x4x8xf32>
}

// -----

// An output gate between SDPA and W_o: the output's inverse stays online
// before the gate, which it may not cross.
#r = #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, 1, 1, 1]>
#f32 = #attn.precision<compute = f32, accumulate = f32>

// CHECK-LABEL: func.func @gated
// CHECK: %[[QR:.+]] = attn.hadamard %arg0 rotation(#{{.+}}) precision
// CHECK: %[[O:.+]] = attn.sdpa %[[QR]], %{{.+}}, %{{.+}} causal
// CHECK: %[[U:.+]] = attn.hadamard %[[O]] rotation(#{{.+}}) inverse
// CHECK: %[[G:.+]] = attn.output_gate %[[U]], %arg3
// CHECK: tensor.collapse_shape %[[G]]
func.func @gated(%q: tensor<?x4x8xf32>, %kr: tensor<?x2x8xf32>, %vr: tensor<?x2x8xf32>, %g: tensor<?x4x8xf32>,
                 %wo: tensor<16x32xf32>) -> tensor<?x16xf32> {
  %kw = attn.hadamard %kr rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %kk = attn.hadamard %kw rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  %vw = attn.hadamard %vr rotation(#r) precision #f32 : tensor<?x2x8xf32>
  %vv = attn.hadamard %vw rotation(#r) inverse precision #f32 : tensor<?x2x8xf32>
  // expected-remark @+3 {{key: folded}}
  // expected-remark @+2 {{kept online before the output gate [output-gate]}}
  // expected-remark @+1 {{value write: rotation kept online}}
  %o = attn.sdpa %q, %kk, %vv causal precision #f32
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  %y = attn.output_gate %o, %g precision #f32 : tensor<?x4x8xf32>, tensor<?x4x8xf32>
  %m = tensor.collapse_shape %y [[0], [1, 2]] : tensor<?x4x8xf32> into tensor<?x32xf32>
  %out = attn.linear %m, %wo precision #f32 : tensor<?x32xf32>, tensor<16x32xf32> -> tensor<?x16xf32>
  return %out : tensor<?x16xf32>
}
