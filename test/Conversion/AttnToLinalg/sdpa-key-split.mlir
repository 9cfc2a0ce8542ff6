// RUN: rotor-opt %s -convert-attn-to-linalg="sdpa-query-block=16 sdpa-key-split=128 split-kv-decode=false" -split-input-file -mlir-print-local-scope | FileCheck %s --enable-var-scope
// RUN: not rotor-opt %s -convert-attn-to-linalg="sdpa-key-split=128 split-kv-decode=false" -split-input-file 2>&1 | FileCheck %s --check-prefix=NOBLOCK

// A decode step with its keys in ranges (flash-decoding in the host's loop
// form): sdpa-key-split=128 counts one KV head's keys, and a range takes
// both KV heads' keys, so it holds up to 128 / 2 = 64 keys (one whole
// tile). The ranges are balanced: ceil(bound / 64) of them, rounded up to
// an even count when more than one, share the keys equally (the share
// rounded up to 16 keys, the count recomputed from it), the number of keys
// alone fixing them. An scf.forall over the ranges; each iteration slices
// its range of every KV head's keys and values (one contiguous run of the
// cache; clamped as a tile is, min(size, bound - k0)), attends all query
// heads to the range's tiles (GQA through the indexing maps) with the mask
// comparing each key's cache index (k0 + j0 + j) with the query's
// position, marks the tile loop as streaming the cache
// (rotor-prefetch-next-key-tile), and inserts its running max, sum and
// unnormalized output into the range's row of the parts.
// A step with exactly one range (1 to 64 keys; with none there is no
// range to write), whose attention would run on one thread, runs instead
// as an scf.forall over the KV heads, each its group of query heads (2)
// over all the keys, into the one range's row of the parts at its heads.
// CHECK-LABEL: func.func @decode_split
// CHECK: %[[TK:.+]] = tensor.dim %{{.+}}, %c0
// CHECK: %[[BOUND:.+]] = arith.minsi %{{.+}}, %[[TK]] : index
// CHECK: %[[NEEDED:.+]] = affine.apply affine_map<(d0) -> (d0 ceildiv 64)>(%[[BOUND]])
// CHECK: %[[MANY:.+]] = arith.cmpi ugt, %[[NEEDED]], %[[C1:.+]] : index
// CHECK: %[[EVEN:.+]] = affine.apply affine_map<(d0) -> (((d0 + 1) floordiv 2) * 2)>(%[[NEEDED]])
// CHECK: %[[TARGET:.+]] = arith.select %[[MANY]], %[[EVEN]], %[[C1]] : index
// CHECK: %[[SHARE:.+]] = arith.ceildivui %[[BOUND]], %[[TARGET]] : index
// CHECK: %[[ROUNDED:.+]] = affine.apply affine_map<(d0) -> ((d0 ceildiv 16) * 16)>(%[[SHARE]])
// CHECK: %[[SIZE:.+]] = arith.maxsi %[[ROUNDED]], %c16{{.*}} : index
// CHECK: %[[RANGES:.+]] = arith.ceildivui %[[BOUND]], %[[SIZE]] : index
// CHECK: %[[ONE:.+]] = arith.cmpi eq, %[[RANGES]], %c1{{.*}} : index
// CHECK: %[[PARTS:.+]]:3 = scf.if %[[ONE]] -> (tensor<?x1x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4x8xf32>)
// CHECK:   scf.forall (%[[H:.+]]) in (2) shared_outs(%[[HM:.+]] = %{{.+}}, %[[HL:.+]] = %{{.+}}, %[[HACC:.+]] = %{{.+}})
// CHECK:     %[[H0:.+]] = affine.apply affine_map<(d0) -> (d0 * 2)>(%[[H]])
// CHECK:     tensor.extract_slice %{{.+}}[0, %[[H0]], 0] [1, 2, 8] [1, 1, 1] : tensor<1x4x8xf32> to tensor<1x2x8xf32>
// CHECK:     tensor.extract_slice %{{.+}}[0, %[[H]], 0] [%[[BOUND]], 1, 8] [1, 1, 1] : tensor<?x2x8xf32> to tensor<?x1x8xf32>
// CHECK:     tensor.extract_slice %{{.+}}[0, %[[H]], 0] [%[[BOUND]], 1, 8] [1, 1, 1] : tensor<?x2x8xf32> to tensor<?x1x8xf32>
// CHECK:     scf.for %{{.+}} = %{{.+}} to %[[BOUND]] step %c64
// CHECK:     } {attn.streamed_key_tiles}
// CHECK:     scf.forall.in_parallel
// CHECK:       tensor.parallel_insert_slice %{{.+}} into %[[HM]][0, 0, %[[H0]]] [1, 1, 2] [1, 1, 1] : tensor<1x2xf32> into tensor<?x1x4xf32>
// CHECK:       tensor.parallel_insert_slice %{{.+}} into %[[HL]][0, 0, %[[H0]]] [1, 1, 2] [1, 1, 1] : tensor<1x2xf32> into tensor<?x1x4xf32>
// CHECK:       tensor.parallel_insert_slice %{{.+}} into %[[HACC]][0, 0, %[[H0]], 0] [1, 1, 2, 8] [1, 1, 1, 1] : tensor<1x2x8xf32> into tensor<?x1x4x8xf32>
// CHECK: } else {
// CHECK:   scf.forall (%[[R:.+]]) in (%[[RANGES]]) shared_outs(%[[M:.+]] = %{{.+}}, %[[L:.+]] = %{{.+}}, %[[ACC:.+]] = %{{.+}}) -> (tensor<?x1x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4x8xf32>)
// CHECK:   %[[K0:.+]] = affine.apply affine_map<(d0)[s0] -> (d0 * s0)>(%[[R]])[%[[SIZE]]]
// CHECK:   %[[REST:.+]] = arith.subi %[[BOUND]], %[[K0]]
// CHECK:   %[[KEYS:.+]] = arith.minsi %[[SIZE]], %[[REST]]
// CHECK:   tensor.extract_slice %{{.+}}[%[[K0]], 0, 0] [%[[KEYS]], 2, 8] [1, 1, 1] : tensor<?x2x8xf32> to tensor<?x2x8xf32>
// CHECK:   tensor.extract_slice %{{.+}}[%[[K0]], 0, 0] [%[[KEYS]], 2, 8] [1, 1, 1] : tensor<?x2x8xf32> to tensor<?x2x8xf32>
// CHECK:   scf.for %[[J0:.+]] = %{{.+}} to %[[KEYS]] step %c64
// CHECK:     %[[KEY0:.+]] = arith.addi %[[K0]], %[[J0]] : index
// CHECK:     linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d2, d1 floordiv 2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>]
// CHECK:     %[[KEY0I:.+]] = arith.index_cast %[[KEY0]] : index to i64
// CHECK:       arith.addi %[[KEY0I]], %{{.+}} : i64
// CHECK:       arith.cmpi sgt
// CHECK:   } {attn.streamed_key_tiles}
// CHECK:   scf.forall.in_parallel
// CHECK:     tensor.parallel_insert_slice %{{.+}} into %[[M]][%[[R]], 0, 0] [1, 1, 4] [1, 1, 1] : tensor<1x4xf32> into tensor<?x1x4xf32>
// CHECK:     tensor.parallel_insert_slice %{{.+}} into %[[L]][%[[R]], 0, 0] [1, 1, 4] [1, 1, 1] : tensor<1x4xf32> into tensor<?x1x4xf32>
// CHECK:     tensor.parallel_insert_slice %{{.+}} into %[[ACC]][%[[R]], 0, 0, 0] [1, 1, 4, 8] [1, 1, 1, 1] : tensor<1x4x8xf32> into tensor<?x1x4x8xf32>
// CHECK:   scf.yield
// The combine, in range order: the largest max M, each range's weight
// exp2(m - M), the weighted sums of l and of acc, then acc / l.
// CHECK: %[[MAX:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d0, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[PARTS]]#0 : tensor<?x1x4xf32>)
// CHECK:   arith.maximumf
// CHECK: %[[W:.+]] = linalg.generic {{.+}} ins(%[[PARTS]]#0, %[[MAX]] : tensor<?x1x4xf32>, tensor<1x4xf32>)
// CHECK:   arith.subf
// CHECK:   math.exp2
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d0, d1)>, affine_map<(d0, d1, d2) -> (d2, d0, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[W]], %[[PARTS]]#1 : tensor<?x1x4xf32>, tensor<?x1x4xf32>)
// CHECK: %[[OUT:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d3, d0, d1)>, affine_map<(d0, d1, d2, d3) -> (d3, d0, d1, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[W]], %[[PARTS]]#2 : tensor<?x1x4xf32>, tensor<?x1x4x8xf32>)
// CHECK: linalg.generic {{.+}} ins(%[[OUT]], %[[SUM]] : tensor<1x4x8xf32>, tensor<1x4xf32>)
// CHECK:   arith.divf
// NOBLOCK: error: convert-attn-to-linalg: sdpa-key-split must be >= 0, and > 0 only with sdpa-query-block > 0; got 128 with sdpa-query-block 0
func.func @decode_split(%q: tensor<1x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<1x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<1x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<1x4x8xf32>
  return %0 : tensor<1x4x8xf32>
}

// -----

// One KV head (multi-query attention): unsplit, its decode step had no
// parallel loop at all; split, its ranges (of 128 keys) are the threads'
// work.
// One KV head has no per-head form to fall back on: no scf.if.
// CHECK-LABEL: func.func @decode_one_kv_head
// CHECK: affine.apply affine_map<(d0) -> (d0 ceildiv 128)>
// CHECK: %[[SIZE:.+]] = arith.maxsi
// CHECK: %[[RANGES:.+]] = arith.ceildivui %{{.+}}, %[[SIZE]]
// CHECK-NOT: scf.if
// CHECK: scf.forall (%{{.+}}) in (%[[RANGES]])
// CHECK:   scf.for
func.func @decode_one_kv_head(%q: tensor<1x4x8xf32>, %k: tensor<?x1x8xf32>, %v: tensor<?x1x8xf32>) -> tensor<1x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<1x4x8xf32>, tensor<?x1x8xf32>, tensor<?x1x8xf32> -> tensor<1x4x8xf32>
  return %0 : tensor<1x4x8xf32>
}

// -----

// Prefill (more queries than a block, or a count known only at run time)
// keeps the blocks of queries: every block reads every key tile it can see.
// CHECK-LABEL: func.func @prefill_not_split
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) shared_outs(%{{.+}} = %{{.+}}) -> (tensor<?x4x8xf32>)
// CHECK-NOT: ceildiv 128
func.func @prefill_not_split(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// With the key-bias term: each range's tiles anchor RoPE(b, j) at the
// tile's first key's cache index (k0 + j0), not its index in the range.
// CHECK-LABEL: func.func @key_bias_split
// CHECK: scf.forall (%[[R:.+]]) in (%{{.+}})
// CHECK:   %[[K0:.+]] = affine.apply affine_map<(d0)[s0] -> (d0 * s0)>(%[[R]])
// CHECK:   scf.for %[[J0:.+]] = %{{.+}} to %{{.+}} step %c64
// CHECK:     %[[KEY0:.+]] = arith.addi %[[K0]], %[[J0]] : index
// CHECK:     linalg.generic
// CHECK:       %[[ANCHOR:.+]] = arith.index_cast %[[KEY0]] : index to i64
// CHECK-NEXT:  arith.sitofp %[[ANCHOR]] : i64 to f64
func.func @key_bias_split(%q: tensor<1x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>, %b: tensor<2x8xf32>) -> tensor<1x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v key_bias(%b : tensor<2x8xf32> rope(<layout = half_split, rotary_dim = 8, theta = 1.0e+04>)) causal precision <compute = f32, accumulate = f32>
      : tensor<1x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<1x4x8xf32>
  return %0 : tensor<1x4x8xf32>
}
