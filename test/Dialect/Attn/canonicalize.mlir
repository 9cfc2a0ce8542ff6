// Folds and canonicalizations of the attn dialect: each one exact, and each
// with a case it must not touch.
// RUN: rotor-opt %s -canonicalize -split-input-file | FileCheck %s

// CHECK-LABEL: func.func @rope_rotary_dim_zero
// CHECK-SAME: (%[[X:.+]]: tensor<?x2x64xbf16>, %{{.+}}: tensor<?xi32>)
// CHECK-NOT: attn.rope
// CHECK: return %[[X]]
func.func @rope_rotary_dim_zero(%x: tensor<?x2x64xbf16>, %pos: tensor<?xi32>) -> tensor<?x2x64xbf16> {
  %0 = attn.rope interleaved %x, %pos rotary_dim(0) theta(1.0e+04)
      scaling(#attn.yarn_scaling<factor = 4.0, original_max_position_embeddings = 4096,
                                 beta_fast = 32.0, beta_slow = 1.0, attention_factor = 1.5,
                                 truncate = true>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x64xbf16>, tensor<?xi32>
  return %0 : tensor<?x2x64xbf16>
}

// -----

// CHECK-LABEL: func.func @rope_kept
// CHECK: attn.rope half_split
func.func @rope_kept(%x: tensor<?x2x64xf32>, %pos: tensor<?xi32>) -> tensor<?x2x64xf32> {
  %0 = attn.rope half_split %x, %pos rotary_dim(2) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x2x64xf32>, tensor<?xi32>
  return %0 : tensor<?x2x64xf32>
}

// -----

// A rotation followed by its inverse, and the other way round.
// CHECK-LABEL: func.func @hadamard_then_inverse
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xf32>)
// CHECK-NOT: attn.hadamard
// CHECK: return %[[X]], %[[X]]
func.func @hadamard_then_inverse(%x: tensor<?x8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %0 = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, -1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<?x8xf32>
  %1 = attn.hadamard %0 rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, -1, 1, 1]>) inverse
      precision <compute = f32, accumulate = f32> : tensor<?x8xf32>
  %2 = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, -1, 1, 1]>) inverse
      precision <compute = f32, accumulate = f32> : tensor<?x8xf32>
  %3 = attn.hadamard %2 rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, -1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<?x8xf32>
  return %1, %3 : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// R(s1, s2)^-1 = R(s2, s1), written as a forward rotation.
// CHECK-LABEL: func.func @hadamard_swapped_signs
// CHECK-SAME: (%[[X:.+]]: tensor<3x4xf32>)
// CHECK-NOT: attn.hadamard
// CHECK: return %[[X]]
func.func @hadamard_swapped_signs(%x: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %0 = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, -1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  %1 = attn.hadamard %0 rotation(<group = 4, s1 = [-1, -1, 1, 1], s2 = [1, -1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  return %1 : tensor<3x4xf32>
}

// -----

// Negating both sign vectors of the inverse negates it twice.
// CHECK-LABEL: func.func @hadamard_negated_inverse
// CHECK-SAME: (%[[X:.+]]: tensor<3x4xf32>)
// CHECK-NOT: attn.hadamard
// CHECK: return %[[X]]
func.func @hadamard_negated_inverse(%x: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %0 = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [-1, -1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  %1 = attn.hadamard %0 rotation(<group = 4, s1 = [-1, 1, -1, -1], s2 = [1, 1, -1, -1]>) inverse
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  return %1 : tensor<3x4xf32>
}

// -----

// With s1 = s2 the rotation is its own inverse.
// CHECK-LABEL: func.func @hadamard_involution
// CHECK-SAME: (%[[X:.+]]: tensor<3x4xf32>)
// CHECK-NOT: attn.hadamard
// CHECK: return %[[X]]
func.func @hadamard_involution(%x: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %0 = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, -1, 1], s2 = [1, -1, -1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  %1 = attn.hadamard %0 rotation(<group = 4, s1 = [1, -1, -1, 1], s2 = [1, -1, -1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  return %1 : tensor<3x4xf32>
}

// -----

// Not inverses of each other: applied twice with s1 != s2, the same
// direction twice with different signs, a different group size, and an
// inverse with other signs.
// CHECK-LABEL: func.func @hadamard_kept
// CHECK-COUNT-8: attn.hadamard
// CHECK: return
func.func @hadamard_kept(%x: tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>) {
  %0 = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  %1 = attn.hadamard %0 rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  %2 = attn.hadamard %x rotation(<group = 4, s1 = [1, 1, 1, 1], s2 = [1, 1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  %3 = attn.hadamard %2 rotation(<group = 4, s1 = [1, 1, 1, 1], s2 = [1, 1, 1, -1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  %4 = attn.hadamard %x rotation(<group = 2, s1 = [1, 1], s2 = [1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  %5 = attn.hadamard %4 rotation(<group = 4, s1 = [1, 1, 1, 1], s2 = [1, 1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  %6 = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  %7 = attn.hadamard %6 rotation(<group = 4, s1 = [1, 1, 1, 1], s2 = [1, 1, 1, 1]>) inverse
      precision <compute = f32, accumulate = f32> : tensor<3x4xf32>
  return %1, %3, %5, %7 : tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>
}

// -----

// CHECK-LABEL: func.func @permute_identity
// CHECK-SAME: (%[[W:.+]]: tensor<4x8xf32>)
// CHECK-NOT: attn.permute
// CHECK: return %[[W]]
func.func @permute_identity(%w: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = attn.permute %w dim(0) permutation([0, 1, 2, 3]) : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// y[i] = w[p[i]], z[i] = y[q[i]] = w[p[q[i]]]:
// p = [1, 2, 3, 0], q = [3, 0, 2, 1] give [0, 1, 3, 2].
// CHECK-LABEL: func.func @permute_compose
// CHECK-SAME: (%[[W:.+]]: tensor<4x8xf32>)
// CHECK: %[[P:.+]] = attn.permute %[[W]] dim(0) permutation([0, 1, 3, 2])
// CHECK-NOT: attn.permute
// CHECK: return %[[P]]
func.func @permute_compose(%w: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = attn.permute %w dim(0) permutation([1, 2, 3, 0]) : tensor<4x8xf32>
  %1 = attn.permute %0 dim(0) permutation([3, 0, 2, 1]) : tensor<4x8xf32>
  return %1 : tensor<4x8xf32>
}

// -----

// A permutation followed by its inverse.
// CHECK-LABEL: func.func @permute_inverse
// CHECK-SAME: (%[[W:.+]]: tensor<4x8xf32>)
// CHECK-NOT: attn.permute
// CHECK: return %[[W]]
func.func @permute_inverse(%w: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = attn.permute %w dim(1) permutation([0, 4, 1, 5, 2, 6, 3, 7]) : tensor<4x8xf32>
  %1 = attn.permute %0 dim(1) permutation([0, 2, 4, 6, 1, 3, 5, 7]) : tensor<4x8xf32>
  return %1 : tensor<4x8xf32>
}

// -----

// Permutations of different dims do not compose.
// CHECK-LABEL: func.func @permute_other_dim
// CHECK: attn.permute %{{.+}} dim(0) permutation([1, 0, 3, 2])
// CHECK: attn.permute %{{.+}} dim(1) permutation([1, 0, 3, 2])
func.func @permute_other_dim(%w: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %0 = attn.permute %w dim(0) permutation([1, 0, 3, 2]) : tensor<4x4xf32>
  %1 = attn.permute %0 dim(1) permutation([1, 0, 3, 2]) : tensor<4x4xf32>
  return %1 : tensor<4x4xf32>
}

// -----

// CHECK-LABEL: func.func @kv_cache_append_nothing
// CHECK-SAME: (%[[C:.+]]: tensor<16x2x8xf32>, %{{.+}}: tensor<0x2x8xf32>, %{{.+}}: index, %{{.+}}: tensor<1x2x8xf32>)
// CHECK: %[[A:.+]] = attn.kv_cache_append %{{.+}} into %[[C]]
// CHECK-NOT: attn.kv_cache_append
// CHECK: return %[[C]], %[[A]]
func.func @kv_cache_append_nothing(%c: tensor<16x2x8xf32>, %k: tensor<0x2x8xf32>, %n: index,
                                   %k1: tensor<1x2x8xf32>) -> (tensor<16x2x8xf32>, tensor<16x2x8xf32>) {
  %0 = attn.kv_cache_append %k into %c at %n : tensor<0x2x8xf32> into tensor<16x2x8xf32>
  %1 = attn.kv_cache_append %k1 into %c at %n : tensor<1x2x8xf32> into tensor<16x2x8xf32>
  return %0, %1 : tensor<16x2x8xf32>, tensor<16x2x8xf32>
}

// -----

// Quantization is lossy: quantize then dequantize is not the identity.
// CHECK-LABEL: func.func @quantize_roundtrip_kept
// CHECK: attn.quantize
// CHECK: attn.dequantize
func.func @quantize_roundtrip_kept(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %c, %s = attn.quantize %x format(<bits = 8, block_size = 32, scheme = absmax, scale_type = f32>)
      precision <compute = f32, accumulate = f32> : tensor<?x64xf32>
  %0 = attn.dequantize %c, %s format(<bits = 8, block_size = 32, scheme = absmax, scale_type = f32>)
      precision <compute = f32, accumulate = f32> : tensor<?x64xi8>, tensor<?x2xf32> -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// -----

// A capture has a side effect: it stays even when its result is unused,
// while unused pure ops go.
// CHECK-LABEL: func.func @capture_kept
// CHECK-NOT: attn.param
// CHECK: attn.capture %{{.+}}, %{{.+}} tag("q")
func.func @capture_kept(%q: tensor<?x2x8xf32>, %pos: tensor<?xi32>) {
  %w = attn.param "unused" : tensor<4xf32>
  %0 = attn.capture %q, %pos tag("q") : tensor<?x2x8xf32>, tensor<?xi32>
  return
}

// -----

// SDPA reads a narrow cache as stored: K and V widened by arith.extf are
// read directly (SDPA rounds them to its compute type as it reads them).
// CHECK-LABEL: func.func @sdpa_reads_narrow_kv
// CHECK-SAME: (%[[Q:.+]]: tensor<?x4x8xf32>, %[[K:.+]]: tensor<?x2x8xbf16>, %[[V:.+]]: tensor<?x2x8xbf16>)
// CHECK-NOT: arith.extf
// CHECK: attn.sdpa %[[Q]], %[[K]], %[[V]] causal precision <compute = f32, accumulate = f32> : tensor<?x4x8xf32>, tensor<?x2x8xbf16>, tensor<?x2x8xbf16>
func.func @sdpa_reads_narrow_kv(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xbf16>, %v: tensor<?x2x8xbf16>) -> tensor<?x4x8xf32> {
  %k32 = arith.extf %k : tensor<?x2x8xbf16> to tensor<?x2x8xf32>
  %v32 = arith.extf %v : tensor<?x2x8xbf16> to tensor<?x2x8xf32>
  %0 = attn.sdpa %q, %k32, %v32 causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// Only K and V together, from one type: the workgroup kernel stages them
// alike. Here V is widened from f16 and K from bf16, so neither moves.
// CHECK-LABEL: func.func @sdpa_mixed_narrow_kv
// CHECK: %[[K32:.+]] = arith.extf
// CHECK: %[[V32:.+]] = arith.extf
// CHECK: attn.sdpa %{{.+}}, %[[K32]], %[[V32]]
func.func @sdpa_mixed_narrow_kv(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xbf16>, %v: tensor<?x2x8xf16>) -> tensor<?x4x8xf32> {
  %k32 = arith.extf %k : tensor<?x2x8xbf16> to tensor<?x2x8xf32>
  %v32 = arith.extf %v : tensor<?x2x8xf16> to tensor<?x2x8xf32>
  %0 = attn.sdpa %q, %k32, %v32 causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// Only V widened: K is read as given, and nothing moves.
// CHECK-LABEL: func.func @sdpa_one_widened
// CHECK: %[[V32:.+]] = arith.extf
// CHECK: attn.sdpa %{{.+}}, %{{.+}}, %[[V32]]
func.func @sdpa_one_widened(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xbf16>) -> tensor<?x4x8xf32> {
  %v32 = arith.extf %v : tensor<?x2x8xbf16> to tensor<?x2x8xf32>
  %0 = attn.sdpa %q, %k, %v32 causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}
