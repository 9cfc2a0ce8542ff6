// RUN: rotor-opt %s -convert-attn-to-linalg="rope-cos-sin-table=true" -split-input-file -mlir-print-local-scope | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -convert-attn-to-linalg -split-input-file | FileCheck %s --check-prefix=PER-ELEMENT

// The host's RoPE: cos and sin once per token and pair [T, R/2] (the angle
// reduced in f64, as every RoPE lowering), then one pass over the heads'
// pairs, a half-split head viewed as [2, R/2] so that both elements of a
// pair are read through affine maps, contiguous along the pairs.
// CHECK-LABEL: func.func @half_split
// CHECK-SAME: (%[[X:.+]]: tensor<?x4x8xf32>, %[[POS:.+]]: tensor<?xi32>)
// CHECK: %[[TABLE:.+]]:2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%[[POS]] : tensor<?xi32>) outs(%{{.+}}, %{{.+}} : tensor<?x4xf32>, tensor<?x4xf32>)
// CHECK:   linalg.index 1
// CHECK:   arith.sitofp %{{.+}} : i32 to f64
// CHECK:   math.roundeven %{{.+}} : f64
// CHECK: %[[PAIRS:.+]] = tensor.expand_shape %[[X]] {{\[}}[0], [1], [2, 3]] output_shape [%{{.+}}, 4, 2, 4] : tensor<?x4x8xf32> into tensor<?x4x2x4xf32>
// CHECK: %[[ROT:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>]
// CHECK-SAME: ins(%[[PAIRS]], %[[PAIRS]], %[[TABLE]]#0, %[[TABLE]]#1 :
// CHECK:   linalg.index 2
// CHECK-NOT: math.roundeven
// CHECK: tensor.collapse_shape %[[ROT]] {{\[}}[0], [1], [2, 3]] : tensor<?x4x2x4xf32> into tensor<?x4x8xf32>
// PER-ELEMENT-LABEL: func.func @half_split
// PER-ELEMENT: linalg.generic
// PER-ELEMENT-SAME: iterator_types = ["parallel", "parallel", "parallel"]
// PER-ELEMENT: tensor.extract
// PER-ELEMENT: math.roundeven
func.func @half_split(%x: tensor<?x4x8xf32>, %pos: tensor<?xi32>) -> tensor<?x4x8xf32> {
  %0 = attn.rope half_split %x, %pos rotary_dim(8) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x4x8xf32>, tensor<?xi32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// Interleaved pairs (2i, 2i + 1): the head viewed as [R/2, 2].
// CHECK-LABEL: func.func @interleaved
// CHECK: tensor.expand_shape %{{.+}} {{\[}}[0], [1], [2, 3]] output_shape [%{{.+}}, 4, 4, 2] : tensor<?x4x8xf32> into tensor<?x4x4x2xf32>
// CHECK: linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, 1)>, affine_map<(d0, d1, d2, d3) -> (d0, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>]
// CHECK:   linalg.index 3
func.func @interleaved(%x: tensor<?x4x8xf32>, %pos: tensor<?xi32>) -> tensor<?x4x8xf32> {
  %0 = attn.rope interleaved %x, %pos rotary_dim(8) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x4x8xf32>, tensor<?xi32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// A partial rotary dim (R = 4 of D = 8): the first R dims rotated as pairs,
// the others copied, both into a fresh tensor (never into the input, which
// would write the caller's buffer).
// CHECK-LABEL: func.func @partial
// CHECK-SAME: (%[[X:.+]]: tensor<?x4x8xf32>,
// CHECK: %[[ROTARY:.+]] = tensor.extract_slice %[[X]][0, 0, 0] [%{{.+}}, 4, 4] [1, 1, 1] : tensor<?x4x8xf32> to tensor<?x4x4xf32>
// CHECK: tensor.expand_shape %[[ROTARY]] {{\[}}[0], [1], [2, 3]] output_shape [%{{.+}}, 4, 2, 2]
// CHECK: %[[ROT:.+]] = tensor.collapse_shape
// CHECK: %[[REST:.+]] = tensor.extract_slice %[[X]][0, 0, 4] [%{{.+}}, 4, 4] [1, 1, 1]
// CHECK: %[[EMPTY:.+]] = tensor.empty(%{{.+}}) : tensor<?x4x8xf32>
// CHECK: %[[WHOLE:.+]] = tensor.insert_slice %[[REST]] into %[[EMPTY]][0, 0, 4] [%{{.+}}, 4, 4] [1, 1, 1]
// CHECK: tensor.insert_slice %[[ROT]] into %[[WHOLE]][0, 0, 0] [%{{.+}}, 4, 4] [1, 1, 1] : tensor<?x4x4xf32> into tensor<?x4x8xf32>
func.func @partial(%x: tensor<?x4x8xf32>, %pos: tensor<?xi32>) -> tensor<?x4x8xf32> {
  %0 = attn.rope half_split %x, %pos rotary_dim(4) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x4x8xf32>, tensor<?xi32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// bf16 values rotated in f32: the table in the compute type, the pass
// widening both elements and rounding the result back.
// CHECK-LABEL: func.func @bf16_storage
// CHECK: linalg.generic {{.+}} outs(%{{.+}}, %{{.+}} : tensor<?x4xf32>, tensor<?x4xf32>)
// CHECK: linalg.generic
// CHECK:   arith.extf %{{.+}} : bf16 to f32
// CHECK:   arith.truncf %{{.+}} : f32 to bf16
func.func @bf16_storage(%x: tensor<?x4x8xbf16>, %pos: tensor<?xi32>) -> tensor<?x4x8xbf16> {
  %0 = attn.rope half_split %x, %pos rotary_dim(8) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x4x8xbf16>, tensor<?xi32>
  return %0 : tensor<?x4x8xbf16>
}
