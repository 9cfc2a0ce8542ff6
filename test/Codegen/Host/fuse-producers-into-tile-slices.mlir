// RUN: rotor-opt %s -split-input-file -rotor-fuse-producers-into-tile-slices | FileCheck %s --enable-var-scope

// Decode's SDPA shape: a dequantization of the whole cache, sliced per KV
// head (forall) and per key tile (for). The dequantization moves into the
// tile loop and runs on each tile's codes and scales.
// CHECK-LABEL: func.func @per_tile
// CHECK-SAME: (%[[CODES:.+]]: tensor<?x2x64xi8>, %[[SCALES:.+]]: tensor<?x2xf32>, %[[N:.+]]: index)
// CHECK-NOT: linalg.generic
// CHECK: scf.forall (%[[H:.+]]) in (2)
// CHECK:   %[[HC:.+]] = tensor.extract_slice %[[CODES]][0, %[[H]], 0]
// CHECK:   %[[HS:.+]] = tensor.extract_slice %[[SCALES]][0, %[[H]]]
// CHECK-NOT: linalg.generic
// CHECK:   scf.for %[[J:[a-z0-9_]+]] =
// CHECK:     %[[C:.+]] = tensor.extract_slice %[[HC]][%[[J]], 0, 0] [64, 1, 64]
// CHECK:     %[[S:.+]] = tensor.extract_slice %[[HS]][%[[J]], 0] [64, 1]
// CHECK:     linalg.generic {{.*}} ins(%[[C]], %[[S]] :
// CHECK:       arith.sitofp
#id = affine_map<(a, b, c) -> (a, b, c)>
#perRow = affine_map<(a, b, c) -> (a, b)>
func.func @per_tile(%codes: tensor<?x2x64xi8>, %scales: tensor<?x2xf32>, %n: index) -> tensor<2x64xf32> {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %t = tensor.dim %codes, %c0 : tensor<?x2x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x64xf32>
  %deq = linalg.generic {indexing_maps = [#id, #perRow, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%codes, %scales : tensor<?x2x64xi8>, tensor<?x2xf32>) outs(%e : tensor<?x2x64xf32>) {
  ^bb0(%q: i8, %s: f32, %o: f32):
    %f = arith.sitofp %q : i8 to f32
    %v = arith.mulf %f, %s : f32
    linalg.yield %v : f32
  } -> tensor<?x2x64xf32>
  %out0 = tensor.empty() : tensor<2x64xf32>
  %r = scf.forall (%h) in (2) shared_outs(%o = %out0) -> (tensor<2x64xf32>) {
    %head = tensor.extract_slice %deq[0, %h, 0] [%t, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<?x1x64xf32>
    %zero = arith.constant 0.0 : f32
    %acc0 = tensor.empty() : tensor<1x64xf32>
    %acc1 = linalg.fill ins(%zero : f32) outs(%acc0 : tensor<1x64xf32>) -> tensor<1x64xf32>
    %sum = scf.for %j = %c0 to %n step %c64 iter_args(%acc = %acc1) -> tensor<1x64xf32> {
      %tile = tensor.extract_slice %head[%j, 0, 0] [64, 1, 64] [1, 1, 1] : tensor<?x1x64xf32> to tensor<64x1x64xf32>
      %red = linalg.generic {indexing_maps = [affine_map<(a, b, c) -> (a, b, c)>, affine_map<(a, b, c) -> (b, c)>], iterator_types = ["reduction", "parallel", "parallel"]}
          ins(%tile : tensor<64x1x64xf32>) outs(%acc : tensor<1x64xf32>) {
      ^bb0(%x: f32, %y: f32):
        %z = arith.addf %x, %y : f32
        linalg.yield %z : f32
      } -> tensor<1x64xf32>
      scf.yield %red : tensor<1x64xf32>
    }
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %sum into %o[%h, 0] [1, 64] [1, 1] : tensor<1x64xf32> into tensor<2x64xf32>
    }
  }
  return %r : tensor<2x64xf32>
}

// -----

// Prefill's shape: the forall also runs over query blocks, which all take
// the same head's keys; fused, each block would dequantize them again, so
// the producer stays whole.
// CHECK-LABEL: func.func @repeated_by_blocks
// CHECK: linalg.generic
// CHECK: scf.forall (%{{.+}}, %[[H:.+]]) in (4, 2)
// CHECK:   tensor.extract_slice %{{.+}}[0, %[[H]], 0]
// CHECK-NOT: linalg.generic
// CHECK: scf.forall.in_parallel
#id2 = affine_map<(a, b, c) -> (a, b, c)>
func.func @repeated_by_blocks(%codes: tensor<?x2x64xi8>) -> tensor<4x2x64xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %codes, %c0 : tensor<?x2x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x64xf32>
  %deq = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%codes : tensor<?x2x64xi8>) outs(%e : tensor<?x2x64xf32>) {
  ^bb0(%q: i8, %o: f32):
    %f = arith.sitofp %q : i8 to f32
    linalg.yield %f : f32
  } -> tensor<?x2x64xf32>
  %out0 = tensor.empty() : tensor<4x2x64xf32>
  %r = scf.forall (%b, %h) in (4, 2) shared_outs(%o = %out0) -> (tensor<4x2x64xf32>) {
    %head = tensor.extract_slice %deq[0, %h, 0] [1, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<1x1x64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %head into %o[%b, %h, 0] [1, 1, 64] [1, 1, 1] : tensor<1x1x64xf32> into tensor<4x2x64xf32>
    }
  }
  return %r : tensor<4x2x64xf32>
}

// -----

// A producer with another use stays whole (the other use needs all of it).
// CHECK-LABEL: func.func @other_use
// CHECK: %[[G:.+]] = linalg.generic
// CHECK: scf.forall
// CHECK:   tensor.extract_slice %[[G]]
func.func @other_use(%x: tensor<2x64xf32>) -> (tensor<2x64xf32>, tensor<2x64xf32>) {
  %e = tensor.empty() : tensor<2x64xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(a, b) -> (a, b)>, affine_map<(a, b) -> (a, b)>], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<2x64xf32>) outs(%e : tensor<2x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %y = arith.negf %a : f32
    linalg.yield %y : f32
  } -> tensor<2x64xf32>
  %r = scf.forall (%h) in (2) shared_outs(%o = %e) -> (tensor<2x64xf32>) {
    %s = tensor.extract_slice %g[%h, 0] [1, 64] [1, 1] : tensor<2x64xf32> to tensor<1x64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %s into %o[%h, 0] [1, 64] [1, 1] : tensor<1x64xf32> into tensor<2x64xf32>
    }
  }
  return %r, %g : tensor<2x64xf32>, tensor<2x64xf32>
}

// -----

// A slice of a reshape of the producer (a dequantization's [.., blocks, B]
// view collapsed back) reaches the producer, and a size read from the
// reshape (tensor.dim) is read from the producer's operands instead, so
// the whole producer goes away.
// CHECK-LABEL: func.func @through_reshape
// CHECK-SAME: (%[[X:.+]]: tensor<?x2x1x64xi8>)
// CHECK-NOT: tensor.collapse_shape %{{.+}} : tensor<?x2x1x64xf32>
// CHECK: scf.forall (%[[H:.+]]) in (2)
// CHECK:   %[[XS:.+]] = tensor.extract_slice %[[X]][0, %[[H]], 0, 0]
// CHECK:   %[[G:.+]] = linalg.generic {{.*}} ins(%[[XS]] :
// CHECK:   tensor.collapse_shape %[[G]]
func.func @through_reshape(%x: tensor<?x2x1x64xi8>) -> tensor<?x2x64xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x2x1x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x1x64xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : tensor<?x2x1x64xi8>) outs(%e : tensor<?x2x1x64xf32>) {
  ^bb0(%a: i8, %o: f32):
    %f = arith.sitofp %a : i8 to f32
    linalg.yield %f : f32
  } -> tensor<?x2x1x64xf32>
  %c = tensor.collapse_shape %g [[0], [1], [2, 3]] : tensor<?x2x1x64xf32> into tensor<?x2x64xf32>
  %n = tensor.dim %c, %c0 : tensor<?x2x64xf32>
  %out0 = tensor.empty(%n) : tensor<?x2x64xf32>
  %r = scf.forall (%h) in (2) shared_outs(%o = %out0) -> (tensor<?x2x64xf32>) {
    %s = tensor.extract_slice %c[0, %h, 0] [%n, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<?x1x64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %s into %o[0, %h, 0] [%n, 1, 64] [1, 1, 1] : tensor<?x1x64xf32> into tensor<?x2x64xf32>
    }
  }
  return %r : tensor<?x2x64xf32>
}

// -----

// Overlapping slices (128 rows per 64-row step) or an offset that is not
// the induction variable itself (j floordiv 2, repeated for two j) would
// compute rows twice: the producer stays whole.
// CHECK-LABEL: func.func @overlapping
// CHECK: %[[G:.+]] = linalg.generic
// CHECK: scf.for
// CHECK:   tensor.extract_slice %[[G]]
// CHECK-LABEL: func.func @not_the_iv
// CHECK: %[[G:.+]] = linalg.generic
// CHECK: scf.for
// CHECK:   tensor.extract_slice %[[G]]
func.func @overlapping(%x: tensor<1024x64xf32>, %n: index) -> tensor<128x64xf32> {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %e = tensor.empty() : tensor<1024x64xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(a, b) -> (a, b)>, affine_map<(a, b) -> (a, b)>], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<1024x64xf32>) outs(%e : tensor<1024x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %y = arith.negf %a : f32
    linalg.yield %y : f32
  } -> tensor<1024x64xf32>
  %z = tensor.empty() : tensor<128x64xf32>
  %r = scf.for %j = %c0 to %n step %c64 iter_args(%acc = %z) -> tensor<128x64xf32> {
    %s = tensor.extract_slice %g[%j, 0] [128, 64] [1, 1] : tensor<1024x64xf32> to tensor<128x64xf32>
    %sum = arith.addf %acc, %s : tensor<128x64xf32>
    scf.yield %sum : tensor<128x64xf32>
  }
  return %r : tensor<128x64xf32>
}
func.func @not_the_iv(%x: tensor<1024x64xf32>, %n: index) -> tensor<64x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %e = tensor.empty() : tensor<1024x64xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(a, b) -> (a, b)>, affine_map<(a, b) -> (a, b)>], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<1024x64xf32>) outs(%e : tensor<1024x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %y = arith.negf %a : f32
    linalg.yield %y : f32
  } -> tensor<1024x64xf32>
  %z = tensor.empty() : tensor<64x64xf32>
  %r = scf.for %j = %c0 to %n step %c1 iter_args(%acc = %z) -> tensor<64x64xf32> {
    %half = affine.apply affine_map<(d0) -> (d0 floordiv 2)>(%j)
    %s = tensor.extract_slice %g[%half, 0] [64, 64] [1, 1] : tensor<1024x64xf32> to tensor<64x64xf32>
    %sum = arith.addf %acc, %s : tensor<64x64xf32>
    scf.yield %sum : tensor<64x64xf32>
  }
  return %r : tensor<64x64xf32>
}

// -----

// A decode step in key ranges (sdpa-key-split): the forall runs over KV
// heads x ranges, each range a slice at r * 128 of at most 128 keys
// (clamped like a tile), then tiles. Ranges are disjoint, so the
// dequantization moves into each range, then into each tile.
// CHECK-LABEL: func.func @per_range_tile
// CHECK-SAME: (%[[CODES:.+]]: tensor<?x2x64xi8>, %[[SCALES:.+]]: tensor<?x2xf32>, %[[N:.+]]: index)
// CHECK-NOT: linalg.generic
// CHECK: scf.forall (%[[H:.+]], %[[R:.+]]) in (2, %{{.+}})
// CHECK:   %[[KEYS:.+]] = arith.minsi
// CHECK:   %[[RC:.+]] = tensor.extract_slice %[[CODES]][%{{.+}}, %[[H]], 0] [%[[KEYS]], 1, 64]
// CHECK:   %[[RS:.+]] = tensor.extract_slice %[[SCALES]][%{{.+}}, %[[H]]] [%[[KEYS]], 1]
// CHECK-NOT: linalg.generic
// CHECK:   scf.for %[[J:[a-z0-9_]+]] =
// CHECK:     %[[C:.+]] = tensor.extract_slice %[[RC]][%[[J]], 0, 0] [64, 1, 64]
// CHECK:     %[[S:.+]] = tensor.extract_slice %[[RS]][%[[J]], 0] [64, 1]
// CHECK:     linalg.generic {{.*}} ins(%[[C]], %[[S]] :
// CHECK:       arith.sitofp
#id = affine_map<(a, b, c) -> (a, b, c)>
#perRow = affine_map<(a, b, c) -> (a, b)>
func.func @per_range_tile(%codes: tensor<?x2x64xi8>, %scales: tensor<?x2xf32>, %n: index) -> tensor<?x2x64xf32> {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %t = tensor.dim %codes, %c0 : tensor<?x2x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x64xf32>
  %deq = linalg.generic {indexing_maps = [#id, #perRow, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%codes, %scales : tensor<?x2x64xi8>, tensor<?x2xf32>) outs(%e : tensor<?x2x64xf32>) {
  ^bb0(%q: i8, %s: f32, %o: f32):
    %f = arith.sitofp %q : i8 to f32
    %v = arith.mulf %f, %s : f32
    linalg.yield %v : f32
  } -> tensor<?x2x64xf32>
  %ranges = affine.apply affine_map<()[s0] -> (s0 ceildiv 128)>()[%n]
  %out0 = tensor.empty(%ranges) : tensor<?x2x64xf32>
  %r = scf.forall (%h, %g) in (2, %ranges) shared_outs(%o = %out0) -> (tensor<?x2x64xf32>) {
    %k0 = affine.apply affine_map<(d0) -> (d0 * 128)>(%g)
    %rest = arith.subi %n, %k0 : index
    %keys = arith.minsi %c128, %rest : index
    %range = tensor.extract_slice %deq[%k0, %h, 0] [%keys, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<?x1x64xf32>
    %zero = arith.constant 0.0 : f32
    %acc0 = tensor.empty() : tensor<1x64xf32>
    %acc1 = linalg.fill ins(%zero : f32) outs(%acc0 : tensor<1x64xf32>) -> tensor<1x64xf32>
    %sum = scf.for %j = %c0 to %keys step %c64 iter_args(%acc = %acc1) -> tensor<1x64xf32> {
      %tile = tensor.extract_slice %range[%j, 0, 0] [64, 1, 64] [1, 1, 1] : tensor<?x1x64xf32> to tensor<64x1x64xf32>
      %red = linalg.generic {indexing_maps = [affine_map<(a, b, c) -> (a, b, c)>, affine_map<(a, b, c) -> (b, c)>], iterator_types = ["reduction", "parallel", "parallel"]}
          ins(%tile : tensor<64x1x64xf32>) outs(%acc : tensor<1x64xf32>) {
      ^bb0(%x: f32, %y: f32):
        %z = arith.addf %x, %y : f32
        linalg.yield %z : f32
      } -> tensor<1x64xf32>
      scf.yield %red : tensor<1x64xf32>
    }
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %sum into %o[%g, %h, 0] [1, 1, 64] [1, 1, 1] : tensor<1x64xf32> into tensor<?x2x64xf32>
    }
  }
  return %r : tensor<?x2x64xf32>
}

// -----

// Ranges of up to 256 keys 128 apart overlap: fused, each range would
// dequantize its neighbour's keys again, so the producer stays whole.
// CHECK-LABEL: func.func @overlapping_ranges
// CHECK: linalg.generic
// CHECK: scf.forall
func.func @overlapping_ranges(%codes: tensor<?x2x64xi8>, %scales: tensor<?x2xf32>, %n: index) -> tensor<?x2x64xf32> {
  %c0 = arith.constant 0 : index
  %c256 = arith.constant 256 : index
  %t = tensor.dim %codes, %c0 : tensor<?x2x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x64xf32>
  %deq = linalg.generic {indexing_maps = [affine_map<(a, b, c) -> (a, b, c)>, affine_map<(a, b, c) -> (a, b)>, affine_map<(a, b, c) -> (a, b, c)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%codes, %scales : tensor<?x2x64xi8>, tensor<?x2xf32>) outs(%e : tensor<?x2x64xf32>) {
  ^bb0(%q: i8, %s: f32, %o: f32):
    %f = arith.sitofp %q : i8 to f32
    %v = arith.mulf %f, %s : f32
    linalg.yield %v : f32
  } -> tensor<?x2x64xf32>
  %ranges = affine.apply affine_map<()[s0] -> (s0 ceildiv 128)>()[%n]
  %out0 = tensor.empty(%ranges) : tensor<?x2x64xf32>
  %r = scf.forall (%h, %g) in (2, %ranges) shared_outs(%o = %out0) -> (tensor<?x2x64xf32>) {
    %k0 = affine.apply affine_map<(d0) -> (d0 * 128)>(%g)
    %rest = arith.subi %n, %k0 : index
    %keys = arith.minsi %c256, %rest : index
    %range = tensor.extract_slice %deq[%k0, %h, 0] [%keys, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<?x1x64xf32>
    %first = tensor.extract_slice %range[0, 0, 0] [1, 1, 64] [1, 1, 1] : tensor<?x1x64xf32> to tensor<1x1x64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %first into %o[%g, %h, 0] [1, 1, 64] [1, 1, 1] : tensor<1x1x64xf32> into tensor<?x2x64xf32>
    }
  }
  return %r : tensor<?x2x64xf32>
}

// -----

// Balanced ranges (a decode step's split, its range size %size computed
// from the key count before the loop): range g at g * size, of at most
// size keys. Consecutive ranges are size apart, so they are disjoint and
// the dequantization moves into each range. The same slice with a size
// clamped by another value (%wide), or a size computed in the loop, could
// overlap: those keep the producer whole.
// CHECK-LABEL: func.func @balanced_ranges
// CHECK-SAME: (%[[CODES:.+]]: tensor<?x2x64xi8>, %{{.+}}: index, %[[SIZE:.+]]: index, %{{.+}}: index)
// CHECK-NOT: linalg.generic
// CHECK: scf.forall (%{{.+}}, %[[G:.+]]) in (2, %{{.+}})
// CHECK:   affine.apply #{{.+}}(%[[G]])[%[[SIZE]]]
// CHECK:   %[[KEYS:.+]] = arith.minsi %[[SIZE]], %{{.+}}
// CHECK:   tensor.extract_slice %[[CODES]][%{{.+}}, %{{.+}}, 0] [%[[KEYS]], 1, 64]
// CHECK:   linalg.generic
// CHECK-LABEL: func.func @ranges_clamped_by_another_size
// CHECK: linalg.generic
// CHECK: scf.forall (
// CHECK-LABEL: func.func @range_size_varies
// CHECK: linalg.generic
// CHECK: scf.forall (
func.func @balanced_ranges(%codes: tensor<?x2x64xi8>, %n: index, %size: index, %ranges: index) -> tensor<?x2x64xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %codes, %c0 : tensor<?x2x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x64xf32>
  %deq = linalg.generic {indexing_maps = [affine_map<(a, b, c) -> (a, b, c)>, affine_map<(a, b, c) -> (a, b, c)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%codes : tensor<?x2x64xi8>) outs(%e : tensor<?x2x64xf32>) {
  ^bb0(%q: i8, %o: f32):
    %f = arith.sitofp %q : i8 to f32
    linalg.yield %f : f32
  } -> tensor<?x2x64xf32>
  %out0 = tensor.empty(%ranges) : tensor<?x2x64xf32>
  %r = scf.forall (%h, %g) in (2, %ranges) shared_outs(%o = %out0) -> (tensor<?x2x64xf32>) {
    %k0 = affine.apply affine_map<(d0)[s0] -> (d0 * s0)>(%g)[%size]
    %rest = arith.subi %n, %k0 : index
    %keys = arith.minsi %size, %rest : index
    %range = tensor.extract_slice %deq[%k0, %h, 0] [%keys, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<?x1x64xf32>
    %first = tensor.extract_slice %range[0, 0, 0] [1, 1, 64] [1, 1, 1] : tensor<?x1x64xf32> to tensor<1x1x64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %first into %o[%g, %h, 0] [1, 1, 64] [1, 1, 1] : tensor<1x1x64xf32> into tensor<?x2x64xf32>
    }
  }
  return %r : tensor<?x2x64xf32>
}

// -----

func.func @ranges_clamped_by_another_size(%codes: tensor<?x2x64xi8>, %n: index, %size: index, %wide: index, %ranges: index) -> tensor<?x2x64xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %codes, %c0 : tensor<?x2x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x64xf32>
  %deq = linalg.generic {indexing_maps = [affine_map<(a, b, c) -> (a, b, c)>, affine_map<(a, b, c) -> (a, b, c)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%codes : tensor<?x2x64xi8>) outs(%e : tensor<?x2x64xf32>) {
  ^bb0(%q: i8, %o: f32):
    %f = arith.sitofp %q : i8 to f32
    linalg.yield %f : f32
  } -> tensor<?x2x64xf32>
  %out0 = tensor.empty(%ranges) : tensor<?x2x64xf32>
  %r = scf.forall (%h, %g) in (2, %ranges) shared_outs(%o = %out0) -> (tensor<?x2x64xf32>) {
    %k0 = affine.apply affine_map<(d0)[s0] -> (d0 * s0)>(%g)[%size]
    %rest = arith.subi %n, %k0 : index
    %keys = arith.minsi %wide, %rest : index
    %range = tensor.extract_slice %deq[%k0, %h, 0] [%keys, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<?x1x64xf32>
    %first = tensor.extract_slice %range[0, 0, 0] [1, 1, 64] [1, 1, 1] : tensor<?x1x64xf32> to tensor<1x1x64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %first into %o[%g, %h, 0] [1, 1, 64] [1, 1, 1] : tensor<1x1x64xf32> into tensor<?x2x64xf32>
    }
  }
  return %r : tensor<?x2x64xf32>
}

// -----

func.func @range_size_varies(%codes: tensor<?x2x64xi8>, %n: index, %ranges: index) -> tensor<?x2x64xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %codes, %c0 : tensor<?x2x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x64xf32>
  %deq = linalg.generic {indexing_maps = [affine_map<(a, b, c) -> (a, b, c)>, affine_map<(a, b, c) -> (a, b, c)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%codes : tensor<?x2x64xi8>) outs(%e : tensor<?x2x64xf32>) {
  ^bb0(%q: i8, %o: f32):
    %f = arith.sitofp %q : i8 to f32
    linalg.yield %f : f32
  } -> tensor<?x2x64xf32>
  %out0 = tensor.empty(%ranges) : tensor<?x2x64xf32>
  %r = scf.forall (%h, %g) in (2, %ranges) shared_outs(%o = %out0) -> (tensor<?x2x64xf32>) {
    // A size that varies with the range: range g + 1 may start inside g.
    %size = affine.apply affine_map<(d0) -> (d0 + 64)>(%g)
    %k0 = affine.apply affine_map<(d0)[s0] -> (d0 * s0)>(%g)[%size]
    %rest = arith.subi %n, %k0 : index
    %keys = arith.minsi %size, %rest : index
    %range = tensor.extract_slice %deq[%k0, %h, 0] [%keys, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<?x1x64xf32>
    %first = tensor.extract_slice %range[0, 0, 0] [1, 1, 64] [1, 1, 1] : tensor<?x1x64xf32> to tensor<1x1x64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %first into %o[%g, %h, 0] [1, 1, 64] [1, 1, 1] : tensor<1x1x64xf32> into tensor<?x2x64xf32>
    }
  }
  return %r : tensor<?x2x64xf32>
}

// -----

// A decode step's two forms of its ranges (the KV heads' forall when there
// is one range, the ranges' forall else), each in its branch of an scf.if:
// at most one runs, so the dequantization is fused into both, per tile,
// and the whole-cache pass is gone.
// CHECK-LABEL: func.func @exclusive_branches
// CHECK-NOT: linalg.generic
// CHECK: scf.if
// CHECK:   scf.forall (%[[H:.+]]) in (2)
// CHECK:     tensor.extract_slice %{{.+}}[0, %[[H]], 0] [%{{.+}}, 1, 64]
// CHECK:     linalg.generic
// CHECK:       arith.sitofp
// CHECK: } else {
// CHECK:   scf.forall (%[[R:.+]]) in (%{{.+}})
// CHECK:     tensor.extract_slice %{{.+}}[%{{.+}}, 0, 0] [64, 2, 64]
// CHECK:     linalg.generic
// CHECK:       arith.sitofp
#id = affine_map<(a, b, c) -> (a, b, c)>
#sum = affine_map<(a, b, c) -> (b, c)>
func.func @exclusive_branches(%codes: tensor<?x2x64xi8>, %one: i1, %ranges: index) -> tensor<2x64xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %codes, %c0 : tensor<?x2x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x64xf32>
  %deq = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%codes : tensor<?x2x64xi8>) outs(%e : tensor<?x2x64xf32>) {
  ^bb0(%q: i8, %o: f32):
    %f = arith.sitofp %q : i8 to f32
    linalg.yield %f : f32
  } -> tensor<?x2x64xf32>
  %out0 = tensor.empty() : tensor<2x64xf32>
  %r = scf.if %one -> (tensor<2x64xf32>) {
    %a = scf.forall (%h) in (2) shared_outs(%o = %out0) -> (tensor<2x64xf32>) {
      %head = tensor.extract_slice %deq[0, %h, 0] [%t, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<?x1x64xf32>
      %acc0 = tensor.empty() : tensor<1x64xf32>
      %red = linalg.generic {indexing_maps = [#id, #sum], iterator_types = ["reduction", "parallel", "parallel"]}
          ins(%head : tensor<?x1x64xf32>) outs(%acc0 : tensor<1x64xf32>) {
      ^bb0(%x: f32, %y: f32):
        %z = arith.addf %x, %y : f32
        linalg.yield %z : f32
      } -> tensor<1x64xf32>
      scf.forall.in_parallel {
        tensor.parallel_insert_slice %red into %o[%h, 0] [1, 64] [1, 1] : tensor<1x64xf32> into tensor<2x64xf32>
      }
    }
    scf.yield %a : tensor<2x64xf32>
  } else {
    %b = scf.forall (%i) in (%ranges) shared_outs(%o = %out0) -> (tensor<2x64xf32>) {
      %k0 = affine.apply affine_map<(d0) -> (d0 * 64)>(%i)
      %range = tensor.extract_slice %deq[%k0, 0, 0] [64, 2, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<64x2x64xf32>
      %acc0 = tensor.empty() : tensor<2x64xf32>
      %red = linalg.generic {indexing_maps = [#id, #sum], iterator_types = ["reduction", "parallel", "parallel"]}
          ins(%range : tensor<64x2x64xf32>) outs(%acc0 : tensor<2x64xf32>) {
      ^bb0(%x: f32, %y: f32):
        %z = arith.addf %x, %y : f32
        linalg.yield %z : f32
      } -> tensor<2x64xf32>
      scf.forall.in_parallel {
        tensor.parallel_insert_slice %red into %o[0, 0] [2, 64] [1, 1] : tensor<2x64xf32> into tensor<2x64xf32>
      }
    }
    scf.yield %b : tensor<2x64xf32>
  }
  return %r : tensor<2x64xf32>
}

// -----

// Two slices that may both run (the same branch): computed per slice, the
// producer would run twice over the same elements, so it stays whole.
// CHECK-LABEL: func.func @both_run
// CHECK: linalg.generic
// CHECK:   arith.sitofp
// CHECK: scf.forall
// CHECK-NOT: arith.sitofp
#id = affine_map<(a, b, c) -> (a, b, c)>
func.func @both_run(%codes: tensor<?x2x64xi8>) -> (tensor<2x?x1x64xf32>, tensor<2x?x1x64xf32>) {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %codes, %c0 : tensor<?x2x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x64xf32>
  %deq = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%codes : tensor<?x2x64xi8>) outs(%e : tensor<?x2x64xf32>) {
  ^bb0(%q: i8, %o: f32):
    %f = arith.sitofp %q : i8 to f32
    linalg.yield %f : f32
  } -> tensor<?x2x64xf32>
  %out0 = tensor.empty(%t) : tensor<2x?x1x64xf32>
  %r:2 = scf.forall (%h) in (2) shared_outs(%o = %out0, %p = %out0) -> (tensor<2x?x1x64xf32>, tensor<2x?x1x64xf32>) {
    %a = tensor.extract_slice %deq[0, %h, 0] [%t, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<?x1x64xf32>
    %b = tensor.extract_slice %deq[0, %h, 0] [%t, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<?x1x64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %a into %o[%h, 0, 0, 0] [1, %t, 1, 64] [1, 1, 1, 1] : tensor<?x1x64xf32> into tensor<2x?x1x64xf32>
      tensor.parallel_insert_slice %b into %p[%h, 0, 0, 0] [1, %t, 1, 64] [1, 1, 1, 1] : tensor<?x1x64xf32> into tensor<2x?x1x64xf32>
    }
  }
  return %r#0, %r#1 : tensor<2x?x1x64xf32>, tensor<2x?x1x64xf32>
}

// -----

// The scf.if inside a loop that does not hold the producer: both branches
// run, in different iterations, and their slices overlap (row 0 of head 1
// in both), so fused into both the producer would compute those elements
// twice. It stays whole.
// CHECK-LABEL: func.func @branches_in_a_loop
// CHECK: linalg.generic
// CHECK:   arith.sitofp
// CHECK: scf.for
// CHECK-NOT: arith.sitofp
#id = affine_map<(a, b, c) -> (a, b, c)>
func.func @branches_in_a_loop(%codes: tensor<4x2x64xi8>, %acc: tensor<4x1x64xf32>) -> tensor<4x1x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %e = tensor.empty() : tensor<4x2x64xf32>
  %deq = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%codes : tensor<4x2x64xi8>) outs(%e : tensor<4x2x64xf32>) {
  ^bb0(%q: i8, %o: f32):
    %f = arith.sitofp %q : i8 to f32
    linalg.yield %f : f32
  } -> tensor<4x2x64xf32>
  %r = scf.for %i = %c0 to %c2 step %c1 iter_args(%a = %acc) -> (tensor<4x1x64xf32>) {
    %first = arith.cmpi eq, %i, %c0 : index
    %x = scf.if %first -> (tensor<4x1x64xf32>) {
      %row = tensor.extract_slice %deq[%i, 0, 0] [1, 2, 64] [1, 1, 1] : tensor<4x2x64xf32> to tensor<1x2x64xf32>
      %c = tensor.collapse_shape %row [[0, 1], [2]] : tensor<1x2x64xf32> into tensor<2x64xf32>
      %d = tensor.expand_shape %c [[0], [1, 2]] output_shape [2, 1, 64] : tensor<2x64xf32> into tensor<2x1x64xf32>
      %w = tensor.insert_slice %d into %a[0, 0, 0] [2, 1, 64] [1, 1, 1] : tensor<2x1x64xf32> into tensor<4x1x64xf32>
      scf.yield %w : tensor<4x1x64xf32>
    } else {
      %head = tensor.extract_slice %deq[0, %i, 0] [4, 1, 64] [1, 1, 1] : tensor<4x2x64xf32> to tensor<4x1x64xf32>
      scf.yield %head : tensor<4x1x64xf32>
    }
    scf.yield %x : tensor<4x1x64xf32>
  }
  return %r : tensor<4x1x64xf32>
}

// -----

// A slice of 0 keys is an empty tensor: nothing to fuse. (Upstream's
// bubble-up through the reshape built a slice with a null size from it;
// found by scripts/fuzz_ir.py.)
// CHECK-LABEL: func.func @empty_slice
// CHECK: scf.forall
// CHECK:   %[[E:.+]] = tensor.empty() : tensor<0x1x64xf32>
// CHECK:   tensor.parallel_insert_slice %[[E]]
func.func @empty_slice(%x: tensor<?x2x1x64xi8>) -> tensor<?x2x64xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x2x1x64xi8>
  %e = tensor.empty(%t) : tensor<?x2x1x64xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : tensor<?x2x1x64xi8>) outs(%e : tensor<?x2x1x64xf32>) {
  ^bb0(%a: i8, %o: f32):
    %f = arith.sitofp %a : i8 to f32
    linalg.yield %f : f32
  } -> tensor<?x2x1x64xf32>
  %c = tensor.collapse_shape %g [[0], [1], [2, 3]] : tensor<?x2x1x64xf32> into tensor<?x2x64xf32>
  %out0 = tensor.empty(%t) : tensor<?x2x64xf32>
  %r = scf.forall (%h) in (2) shared_outs(%o = %out0) -> (tensor<?x2x64xf32>) {
    %s = tensor.extract_slice %c[0, %h, 0] [0, 1, 64] [1, 1, 1] : tensor<?x2x64xf32> to tensor<0x1x64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %s into %o[0, %h, 0] [0, 1, 64] [1, 1, 1] : tensor<0x1x64xf32> into tensor<?x2x64xf32>
    }
  }
  return %r : tensor<?x2x64xf32>
}
