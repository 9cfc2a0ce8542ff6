// RUN: rotor-opt %s -convert-attn-to-linalg="sdpa-query-block=16 split-kv-decode=false" -split-input-file -mlir-print-local-scope | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -convert-attn-to-linalg -split-input-file | FileCheck %s --check-prefix=OFF

// Flash-style attention: an scf.forall over ceil(Tq / 16) blocks of
// queries times the 2 KV heads; each iteration slices its block's queries, the 2
// query heads of its KV head's group (GQA folded), that KV head's keys and
// values and its positions, visits the key tiles up to one past its own
// largest position (causal tiles past the diagonal are never visited), and
// inserts its normalized rows.
// CHECK-LABEL: func.func @blocked_causal
// CHECK: %[[TQ:.+]] = tensor.dim %{{.+}}, %c0
// CHECK: %[[TK:.+]] = tensor.dim %{{.+}}, %c0
// CHECK: %[[BLOCKS:.+]] = affine.apply affine_map<()[s0] -> (s0 ceildiv 16)>()[%[[TQ]]]
// CHECK: scf.forall (%[[B:.+]], %[[G:.+]]) in (%[[BLOCKS]], 2) shared_outs(%[[OUT:.+]] = %{{.+}}) -> (tensor<?x4x8xf32>)
// Iteration B takes block B/2 (even B) or BLOCKS-1-B/2 (odd B): small and
// large causal blocks alternate, so each thread's contiguous range of
// iterations gets about the same work.
// CHECK:   %[[HALF:.+]] = arith.divui %[[B]], %c2
// CHECK:   %[[REM:.+]] = arith.remui %[[B]], %c2
// CHECK:   %[[ODD:.+]] = arith.cmpi ne, %[[REM]], %{{.+}}
// CHECK:   %[[MIRROR:.+]] = affine.apply affine_map<(d0, d1) -> (d1 - d0 - 1)>(%[[HALF]], %[[BLOCKS]])
// CHECK:   %[[BLOCK:.+]] = arith.select %[[ODD]], %[[MIRROR]], %[[HALF]]
// CHECK:   %[[T0:.+]] = affine.apply affine_map<(d0) -> (d0 * 16)>(%[[BLOCK]])
// CHECK:   %[[ROWS:.+]] = affine.min affine_map<(d0, d1) -> (16, d1 - d0)>(%[[T0]], %[[TQ]])
// CHECK:   %[[H0:.+]] = affine.apply affine_map<(d0) -> (d0 * 2)>(%[[G]])
// CHECK:   tensor.extract_slice %{{.+}}[%[[T0]], %[[H0]], 0] [%[[ROWS]], 2, 8] [1, 1, 1] : tensor<?x4x8xf32> to tensor<?x2x8xf32>
// CHECK:   tensor.extract_slice %{{.+}}[0, %[[G]], 0] [%[[TK]], 1, 8] [1, 1, 1] : tensor<?x2x8xf32> to tensor<?x1x8xf32>
// CHECK:   tensor.extract_slice %{{.+}}[0, %[[G]], 0] [%[[TK]], 1, 8] [1, 1, 1] : tensor<?x2x8xf32> to tensor<?x1x8xf32>
// CHECK:   tensor.extract_slice %{{.+}}[%[[T0]]] [%[[ROWS]]] [1]
// CHECK:   %[[BOUND:.+]] = arith.minsi %{{.+}}, %{{.+}} : index
// The keys every query of the block sees (up to its smallest position, in
// whole tiles) run first without the causal mask, the rest with it: the
// same tiles in the same order.
// CHECK:     arith.minsi %{{.+}}, %{{.+}} : i64
// CHECK:   %[[SEEN:.+]] = affine.apply affine_map<(d0) -> ((d0 floordiv 64) * 64)>
// CHECK:   %[[OPEN:.+]]:3 = scf.for %{{.+}} = %{{.+}} to %[[SEEN]] step %c64
// CHECK-NOT: arith.cmpi sgt
// CHECK:   scf.for %{{.+}} = %[[SEEN]] to %[[BOUND]] step %c64{{.*}} iter_args(%{{.+}} = %[[OPEN]]#0, %{{.+}} = %[[OPEN]]#1, %{{.+}} = %[[OPEN]]#2)
// CHECK:     arith.cmpi sgt
// CHECK:   scf.forall.in_parallel
// CHECK:     tensor.parallel_insert_slice %{{.+}} into %[[OUT]][%[[T0]], %[[H0]], 0] [%[[ROWS]], 2, 8] [1, 1, 1]
// OFF-LABEL: func.func @blocked_causal
// OFF-NOT: scf.forall
func.func @blocked_causal(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// A decode step (in the loop form, as on the host) with grouped KV heads: one block, one iteration per KV head,
// whose scores are a [1, group, tile] block read from that head's keys only.
// CHECK-LABEL: func.func @decode_kv_heads
// CHECK: scf.forall (%{{.+}}, %[[G:.+]]) in (1, 2)
// CHECK:   tensor.extract_slice %{{.+}}[0, %[[G]], 0] [%{{.+}}, 1, 8] [1, 1, 1] : tensor<?x2x8xf32> to tensor<?x1x8xf32>
// CHECK:   scf.for
// CHECK:     linalg.generic
// CHECK-SAME:  outs(%{{.+}} : tensor<1x2x?xf32>)
func.func @decode_kv_heads(%q: tensor<1x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<1x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<1x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<1x4x8xf32>
  return %0 : tensor<1x4x8xf32>
}

// -----

// One block of queries and one KV head: one loop.
// CHECK-LABEL: func.func @one_block
// CHECK-NOT: scf.forall
// CHECK: scf.for
func.func @one_block(%q: tensor<16x4x8xf32>, %k: tensor<?x1x8xf32>, %v: tensor<?x1x8xf32>) -> tensor<16x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<16x4x8xf32>, tensor<?x1x8xf32>, tensor<?x1x8xf32> -> tensor<16x4x8xf32>
  return %0 : tensor<16x4x8xf32>
}

// -----

// With the key-bias term: the same blocks, each adding its own KV head's
// RoPE(b, j) to the keys of its tiles (the term's [Hkv, D] coefficients
// sliced to that head).
// CHECK-LABEL: func.func @key_bias
// CHECK: scf.forall (%{{.+}}, %[[G:.+]]) in (%{{.+}}, 2)
// CHECK:   %[[SELF:.+]] = tensor.extract_slice %{{.+}}[%[[G]], 0] [1, 8] [1, 1] : tensor<2x8xf32> to tensor<1x8xf32>
// CHECK:   %[[CROSS:.+]] = tensor.extract_slice %{{.+}}[%[[G]], 0] [1, 8] [1, 1] : tensor<2x8xf32> to tensor<1x8xf32>
// CHECK:   scf.for
// The biased keys: per tile, P and Q [1, D] from the anchors (spread per
// dim, d mod R/2) and the coefficients; then one pass of two multiply-adds
// per key element with step tables per dim [tile, D] (R/2 = 4 pairs is
// narrower than a vector, so no per-pair view), every operand read along
// D, so that it vectorizes.
// CHECK:     %[[PQ:.+]]:2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (0, d1 mod 4)>, affine_map<(d0, d1) -> (0, d1 mod 4)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>
// CHECK-SAME: ins(%{{.+}}, %{{.+}}, %[[SELF]], %[[CROSS]] :
// CHECK:     %[[COS:.+]] = tensor.extract_slice %{{.+}}[0, 0] [%{{.+}}, 8] [1, 1] : tensor<64x8xf32> to tensor<?x8xf32>
// CHECK:     %[[SIN:.+]] = tensor.extract_slice %{{.+}}[0, 0] [%{{.+}}, 8] [1, 1] : tensor<64x8xf32> to tensor<?x8xf32>
// CHECK-NOT: tensor.expand_shape
// CHECK:     %[[K2:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>]
// CHECK-SAME: ins(%{{.+}}, %[[COS]], %[[SIN]], %[[PQ]]#0, %[[PQ]]#1 :
// CHECK:       arith.mulf
// CHECK-NEXT:  arith.mulf
// CHECK-NEXT:  arith.addf
// CHECK-NEXT:  arith.addf
// CHECK:     linalg.generic
// CHECK-SAME: ins(%{{.+}}, %[[K2]] :
// CHECK:   scf.forall.in_parallel
func.func @key_bias(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>, %b: tensor<2x8xf32>) -> tensor<?x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v key_bias(%b : tensor<2x8xf32> rope(<layout = half_split, rotary_dim = 8, theta = 1.0e+04>)) causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// Interleaved pairs (d's pair is d floordiv 2): the step tables are per
// dim [tile, D] and the keys keep their shape.
// CHECK-LABEL: func.func @key_bias_interleaved
// CHECK:     %[[PQ:.+]]:2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (0, (d1 floordiv 2) mod 4)>
// CHECK:     %[[COS:.+]] = tensor.extract_slice %{{.+}}[0, 0] [%{{.+}}, 8] [1, 1] : tensor<64x8xf32> to tensor<?x8xf32>
// CHECK:     %[[SIN:.+]] = tensor.extract_slice %{{.+}}[0, 0] [%{{.+}}, 8] [1, 1] : tensor<64x8xf32> to tensor<?x8xf32>
// CHECK-NOT: tensor.expand_shape
// CHECK:     linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>]
// CHECK-SAME: ins(%{{.+}}, %[[COS]], %[[SIN]], %[[PQ]]#0, %[[PQ]]#1 :
func.func @key_bias_interleaved(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>, %b: tensor<2x8xf32>) -> tensor<?x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v key_bias(%b : tensor<2x8xf32> rope(<layout = interleaved, rotary_dim = 8, theta = 1.0e+04>)) causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// Half-split with R/2 = 16 pairs dividing D = 32: the keys are viewed as
// [.., D / (R/2), R/2] and the step tables are per pair [tile, R/2] (both
// dims of a pair share them), so that every operand is read along the last
// dim.
// CHECK-LABEL: func.func @key_bias_per_pair
// CHECK: scf.for
// CHECK:     %[[PQ:.+]]:2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (0, d1 mod 16)>, affine_map<(d0, d1) -> (0, d1 mod 16)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>
// CHECK-SAME: ins(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} :
// CHECK:     %[[COS:.+]] = tensor.extract_slice %{{.+}}[0, 0] [%{{.+}}, 16] [1, 1] : tensor<64x16xf32> to tensor<?x16xf32>
// CHECK:     %[[SIN:.+]] = tensor.extract_slice %{{.+}}[0, 0] [%{{.+}}, 16] [1, 1] : tensor<64x16xf32> to tensor<?x16xf32>
// CHECK:     %[[KEYS:.+]] = tensor.expand_shape %{{.+}} {{\[}}[0], [1], [2, 3]] output_shape [%{{.+}}, 1, 2, 16] : tensor<?x1x32xf32> into tensor<?x1x2x16xf32>
// CHECK:     %[[P:.+]] = tensor.expand_shape %[[PQ]]#0 {{\[}}[0], [1, 2]] output_shape [1, 2, 16]
// CHECK:     %[[Q:.+]] = tensor.expand_shape %[[PQ]]#1
// CHECK:     %[[BIASED:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3)>, affine_map<(d0, d1, d2, d3) -> (d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>]
// CHECK-SAME: ins(%[[KEYS]], %[[COS]], %[[SIN]], %[[P]], %[[Q]] :
// CHECK:       arith.mulf
// CHECK-NEXT:  arith.mulf
// CHECK-NEXT:  arith.addf
// CHECK-NEXT:  arith.addf
// CHECK:     %[[K2:.+]] = tensor.collapse_shape %[[BIASED]] {{\[}}[0], [1], [2, 3]] : tensor<?x1x2x16xf32> into tensor<?x1x32xf32>
// CHECK:     linalg.generic
// CHECK-SAME: ins(%{{.+}}, %[[K2]] :
func.func @key_bias_per_pair(%q: tensor<?x4x32xf32>, %k: tensor<?x2x32xf32>, %v: tensor<?x2x32xf32>, %b: tensor<2x32xf32>) -> tensor<?x4x32xf32> {
  %0 = attn.sdpa %q, %k, %v key_bias(%b : tensor<2x32xf32> rope(<layout = half_split, rotary_dim = 32, theta = 1.0e+04>)) causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x32xf32>, tensor<?x2x32xf32>, tensor<?x2x32xf32> -> tensor<?x4x32xf32>
  return %0 : tensor<?x4x32xf32>
}
