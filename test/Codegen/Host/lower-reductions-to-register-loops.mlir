// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops=vector-registers=32 | FileCheck %s --check-prefix=WIDE
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops=panel-prefetch=false | FileCheck %s --check-prefix=NOPF

// Row-wise dot products y[t, n] += x[t, n, e] * W[t, n, e]: both inputs
// contiguous along the reduction, so the sum is carried in a register,
// loaded and stored once, and the add may reassociate (SIMD lanes) and
// contract (FMA). No input is shared across n: one output per loop.
// CHECK-LABEL: func.func @dot_product
// CHECK-SAME: (%[[X:.*]]: memref<3x3x5xf32>, %[[W:.*]]: memref<3x3x5xf32>, %[[Y:.*]]: memref<3x3xf32>)
// CHECK: scf.parallel (%[[T:.*]], %[[N:.*]]) =
// CHECK:   %[[INIT:.*]] = memref.load %[[Y]][%[[T]], %[[N]]]
// CHECK:   %[[SUM:.*]] = scf.for %[[E:.*]] = {{.*}} iter_args(%[[ACC:.*]] = %[[INIT]]) -> (f32)
// CHECK:     %[[XV:.*]] = memref.load %[[X]][%[[T]], %[[N]], %[[E]]]
// CHECK:     %[[WV:.*]] = memref.load %[[W]][%[[T]], %[[N]], %[[E]]]
// CHECK:     %[[P:.*]] = arith.mulf %[[XV]], %[[WV]] fastmath<contract>
// CHECK:     %[[S:.*]] = arith.addf %[[ACC]], %[[P]] fastmath<reassoc,contract>
// CHECK:     scf.yield %[[S]]
// CHECK:   memref.store %[[SUM]], %[[Y]][%[[T]], %[[N]]]
// CHECK-NOT: scf.parallel
// CHECK-NOT: linalg.generic
func.func @dot_product(%x: memref<3x3x5xf32>, %w: memref<3x3x5xf32>,
                       %y: memref<3x3xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, n, e)>,
                       affine_map<(t, n, e) -> (t, n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<3x3x5xf32>, memref<3x3x5xf32>) outs(%y : memref<3x3xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Scores of a tile of keys s[h, j] += q[h, e] * k[j, e], the tile's size
// known at run time, e (64) a multiple of the lanes (8 for AVX2, 16 for
// AVX-512): the key-block form. A block of 8 keys, the outermost loop (its
// keys read once for every h), carries one vector of lane partial sums per
// key through the loop over e, q's row loaded once per step for all 8;
// the 8 vectors are then summed together by a tree of shuffles and adds
// (lane r: key r) and added to the output as one vector. Keys past the last
// whole block go one score at a time.
// CHECK-LABEL: func.func @score_tile
// CHECK-SAME: (%[[Q:.*]]: memref<7x64xf32>, %[[K:.*]]: memref<?x64xf32>, %[[S:.*]]: memref<7x?xf32>)
// CHECK: %[[REM:.*]] = arith.remui %{{.*}}, %c8
// CHECK: %[[SPLIT:.*]] = arith.subi %{{.*}}, %[[REM]]
// CHECK: scf.parallel (%[[J:.*]], %[[H:.*]]) = (%{{.*}}, %{{.*}}) to (%[[SPLIT]], %c7{{.*}}) step (%c8{{.*}}, %c1{{.*}})
// CHECK:   %[[J1:.*]] = arith.addi %[[J]], %c1
// CHECK:   %[[SUMS:.*]]:8 = scf.for %[[E:.*]] = %{{.*}} to %c64 step %c8{{.*}} iter_args(%[[A0:[^ ]*]] = %[[ZERO:[^,]*]], %[[A1:[^ ]*]] = %[[ZERO]], {{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK:     %[[QV:.*]] = vector.load %[[Q]][%[[H]], %[[E]]] : memref<7x64xf32>, vector<8xf32>
// CHECK:     %[[K0:.*]] = vector.load %[[K]][%[[J]], %[[E]]] : memref<?x64xf32>, vector<8xf32>
// CHECK:     %[[P0:.*]] = arith.mulf %[[QV]], %[[K0]] fastmath<contract> : vector<8xf32>
// CHECK:     arith.addf %[[A0]], %[[P0]] fastmath<contract> : vector<8xf32>
// CHECK-NOT: vector.load %[[Q]]
// CHECK:     %[[K1:.*]] = vector.load %[[K]][%[[J1]], %[[E]]]
// CHECK:     arith.mulf %[[QV]], %[[K1]]
// CHECK-COUNT-6: vector.load %[[K]]
// CHECK-NOT: vector.load %[[Q]]
// CHECK:     scf.yield
// CHECK:   %[[X:.*]] = vector.shuffle %[[SUMS]]#0, %[[SUMS]]#1 [0, 8, 2, 10, 4, 12, 6, 14]
// CHECK:   %[[Y:.*]] = vector.shuffle %[[SUMS]]#0, %[[SUMS]]#1 [1, 9, 3, 11, 5, 13, 7, 15]
// CHECK:   arith.addf %[[X]], %[[Y]] : vector<8xf32>
// CHECK:   vector.shuffle {{.*}} [0, 1, 8, 9, 4, 5, 12, 13]
// CHECK:   vector.shuffle {{.*}} [2, 3, 10, 11, 6, 7, 14, 15]
// CHECK:   %[[LOW:.*]] = vector.shuffle {{.*}} [0, 1, 2, 3, 8, 9, 10, 11]
// CHECK:   %[[HIGH:.*]] = vector.shuffle {{.*}} [4, 5, 6, 7, 12, 13, 14, 15]
// CHECK:   %[[SCORES:.*]] = arith.addf %[[LOW]], %[[HIGH]] : vector<8xf32>
// CHECK:   %[[INIT:.*]] = vector.load %[[S]][%[[H]], %[[J]]] : memref<7x?xf32>, vector<8xf32>
// CHECK:   %[[NEW:.*]] = arith.addf %[[INIT]], %[[SCORES]] : vector<8xf32>
// CHECK:   vector.store %[[NEW]], %[[S]][%[[H]], %[[J]]]
// CHECK: scf.parallel (%{{.*}}, %{{.*}}) = (%{{.*}}, %[[SPLIT]]) to
// CHECK:   scf.for {{.*}} -> (f32)
// With AVX-512's 16 lanes: blocks of 16 keys, four levels of shuffles.
// WIDE-LABEL: func.func @score_tile
// WIDE: arith.remui %{{.*}}, %c16
// WIDE: scf.for {{.*}} to %c64 step %c16{{.*}} -> (vector<16xf32>, {{.*}}) {
// WIDE: vector.shuffle {{.*}} [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]
// WIDE: vector.shuffle {{.*}} [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31]
func.func @score_tile(%q: memref<7x64xf32>, %k: memref<?x64xf32>,
                      %s: memref<7x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(h, j, e) -> (h, e)>,
                       affine_map<(h, j, e) -> (j, e)>,
                       affine_map<(h, j, e) -> (h, j)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<7x64xf32>, memref<?x64xf32>) outs(%s : memref<7x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Scores over a reduction (36) that the lanes do not divide: q's row does
// not depend on the key, so the keys are jammed 4 wide (four sums per
// reduction loop, q loaded once for four keys) up to the tile's size
// rounded down to 4; the rest one at a time.
// CHECK-LABEL: func.func @score_tile_ragged_depth
// CHECK-SAME: (%[[Q:.*]]: memref<7x36xf32>, %[[K:.*]]: memref<?x36xf32>, %[[S:.*]]: memref<7x?xf32>)
// CHECK: %[[REM:.*]] = arith.remui %{{.*}}, %c4
// CHECK: %[[SPLIT:.*]] = arith.subi %{{.*}}, %[[REM]]
// CHECK: scf.parallel (%[[H:.*]], %[[J:.*]]) = (%{{.*}}, %{{.*}}) to (%{{.*}}, %[[SPLIT]]) step (%{{.*}}, %c4{{.*}})
// CHECK:   arith.addi %[[J]], %c1
// CHECK:   arith.addi %[[J]], %c2
// CHECK:   arith.addi %[[J]], %c3
// CHECK:   scf.for %[[E:.*]] = {{.*}} iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (f32, f32, f32, f32)
// CHECK-COUNT-4: arith.addf {{.*}} fastmath<reassoc,contract>
// CHECK: scf.parallel (%{{.*}}, %{{.*}}) = (%{{.*}}, %[[SPLIT]]) to
// CHECK:   scf.for {{.*}} -> (f32)
// CHECK-NOT: vector.shuffle
func.func @score_tile_ragged_depth(%q: memref<7x36xf32>, %k: memref<?x36xf32>,
                                   %s: memref<7x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(h, j, e) -> (h, e)>,
                       affine_map<(h, j, e) -> (j, e)>,
                       affine_map<(h, j, e) -> (h, j)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<7x36xf32>, memref<?x36xf32>) outs(%s : memref<7x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A projection y[t, n] += x[t, e] * W[n, e] whose column count the block
// width divides: with at least 48 tokens (a run-time test, T being
// dynamic; the weight is in cache) the packed form runs, one (threaded) loop over blocks of 16
// columns (two AVX2 vectors; 64 with AVX-512), each packing its weight rows
// into a panel [E, 16] (element e of every column contiguous: blocks of 8
// weight rows x 8 elements loaded as vectors, transposed by shuffles in
// registers and stored as panel rows, no element-wise copy when the lanes
// divide E) and then running blocks of 6 tokens as outer products: per e
// one vector load of the panel, each token's x[t, e] broadcast, each
// token's sums a vector iter_arg (summed in order, contract only); the last
// T mod 6 tokens in one block of 5, 4, 3, 2 or 1; the panel freed at the
// end of the block.
// With panel-prefetch=false (rotor-aot's choice for Intel CPUs) the same
// packed form runs with no prefetch at all: one loop of blocks of 6.
// NOPF-LABEL: func.func @projection
// NOPF-NOT: memref.prefetch
// NOPF: scf.for %{{.*}} step %c6
// NOPF-NOT: memref.prefetch
// NOPF: step %c5
// NOPF-NOT: memref.prefetch
// NOPF-LABEL: func.func @projection_ragged_depth
// CHECK-LABEL: func.func @projection
// CHECK-SAME: (%[[X:.*]]: memref<?x8xf32>, %[[W:.*]]: memref<64x8xf32>, %[[Y:.*]]: memref<?x64xf32>)
// CHECK: %[[T:.*]] = memref.dim %[[X]]
// CHECK: %[[ENOUGH:.*]] = arith.cmpi uge, %[[T]], %c48
// CHECK: scf.if %[[ENOUGH]] {
// CHECK:   scf.parallel (%[[N0:.*]]) = (%{{.*}}) to (%c64{{.*}}) step (%c16{{.*}})
// CHECK:     %[[PANEL:.*]] = memref.alloc(%c8{{.*}}) : memref<?x16xf32>
// CHECK:     scf.for %[[C0:.*]] = %{{.*}} to %c16{{.*}} step %[[LANES:c8[_0-9]*]]
// CHECK:       %[[N:.*]] = arith.addi %[[N0]], %[[C0]]
// CHECK:       scf.for %[[E0:.*]] = %{{.*}} to %c8{{.*}}
// CHECK:         vector.load %[[W]][%[[N]], %[[E0]]] : memref<64x8xf32>, vector<8xf32>
// CHECK-COUNT-7: vector.load %[[W]]
// The last level of the transposition: column 0 and column 4.
// CHECK-COUNT-16: vector.shuffle
// CHECK:         %[[COL0:.*]] = vector.shuffle %{{.*}}, %{{.*}} [0, 1, 2, 3, 8, 9, 10, 11]
// CHECK-NEXT:    %[[COL4:.*]] = vector.shuffle %{{.*}}, %{{.*}} [4, 5, 6, 7, 12, 13, 14, 15]
// CHECK-COUNT-6: vector.shuffle
// CHECK:         vector.store %[[COL0]], %[[PANEL]][%[[E0]], %[[C0]]] : memref<?x16xf32>, vector<8xf32>
// CHECK:         %[[E4:.*]] = arith.addi %[[E0]], %c4
// CHECK-NEXT:    vector.store %[[COL4]], %[[PANEL]][%[[E4]], %[[C0]]] : memref<?x16xf32>, vector<8xf32>
// CHECK-COUNT-3: vector.store %{{.*}}, %[[PANEL]]
// CHECK-NOT:   memref.store {{.*}}, %[[PANEL]]
// The next panel's weight rows (columns N0 + 16 on), which the blocks of 6
// tokens prefetch, a line per step of e: line (t0 / 6) E + e of its rows
// in order, clamped to the weight's last row.
// CHECK:     %[[NEXT:.*]] = arith.addi %[[N0]], %c16
// CHECK:     %[[LAST:.*]] = arith.subi %c64{{.*}}, %c1
// Every block's bounds first: blocks of 6, then the rest (T mod 6) as one
// block of 5, 4, 3, 2 or 1.
// CHECK:     %[[PREM:.*]] = arith.remui %[[T]], %c6
// CHECK:     %[[PMAIN:.*]] = arith.subi %[[T]], %[[PREM]]
// CHECK:     %[[REST:.*]] = arith.subi %[[T]], %[[PMAIN]]
// CHECK:     %[[REM5:.*]] = arith.remui %[[REST]], %c5
// CHECK:     %[[END5:.*]] = arith.subi %[[T]], %[[REM5]]
// CHECK:     %[[REST4:.*]] = arith.subi %[[T]], %[[END5]]
// CHECK:     %[[REM4:.*]] = arith.remui %[[REST4]], %c4
// CHECK:     %[[END4:.*]] = arith.subi %[[T]], %[[REM4]]
// CHECK:     %[[REST3:.*]] = arith.subi %[[T]], %[[END4]]
// CHECK:     %[[REM3:.*]] = arith.remui %[[REST3]], %c3
// CHECK:     %[[END3:.*]] = arith.subi %[[T]], %[[REM3]]
// CHECK:     %[[REST2:.*]] = arith.subi %[[T]], %[[END3]]
// CHECK:     %[[REM2:.*]] = arith.remui %[[REST2]], %c2
// CHECK:     %[[END2:.*]] = arith.subi %[[T]], %[[REM2]]
// Only the first blocks of 6 prefetch: as many as take all the next
// panel's lines (16 rows of one line, one line per step of e: 2 blocks).
// CHECK:     %[[NEEDED:.*]] = arith.ceildivui %{{.*}}, %c8
// CHECK:     %[[NROWS:.*]] = arith.muli %[[NEEDED]], %c6
// CHECK:     %[[PFEND:.*]] = arith.addi %{{.*}}, %[[NROWS]]
// CHECK:     %[[PFMAIN:.*]] = arith.minui %[[PMAIN]], %[[PFEND]]
// CHECK:     scf.for %[[T0:.*]] = %{{.*}} to %[[PFMAIN]] step %c6
// CHECK:       %[[Y0:.*]] = vector.load %[[Y]][%[[T0]], %[[N0]]]
// CHECK:       %[[T1:.*]] = arith.addi %[[T0]], %c1
// CHECK:       vector.load %[[Y]][%[[T1]], %[[N0]]]
// CHECK-COUNT-4: vector.load %[[Y]]
// CHECK:       %[[BLOCK:.*]] = arith.divui %{{.*}}, %c6
// CHECK:       %[[BASE:.*]] = arith.muli %[[BLOCK]], %c8
// CHECK:       scf.for %[[E2:.*]] = {{.*}} iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:         %[[LINE:.*]] = arith.addi %[[BASE]], %[[E2]]
// Row LINE / lines-per-row of the panel, at line LINE mod lines-per-row;
// past the panel's 16 rows, its last line again.
// CHECK:         %[[R:.*]] = arith.divui %[[LINE]], %[[ROWLINES:.*]] : index
// CHECK:         %[[IN:.*]] = arith.remui %[[LINE]], %[[ROWLINES]] : index
// CHECK:         %[[PAST:.*]] = arith.cmpi uge, %[[R]], %c16
// CHECK:         %[[RC:.*]] = arith.select %[[PAST]], %c15{{.*}}, %[[R]]
// CHECK:         %[[INC:.*]] = arith.select %[[PAST]], %{{.*}}, %[[IN]]
// CHECK:         %[[PROW:.*]] = arith.addi %[[NEXT]], %[[RC]]
// CHECK:         %[[CLAMPED:.*]] = arith.minui %[[PROW]], %[[LAST]]
// CHECK:         %[[COL:.*]] = arith.muli %[[INC]], %c16
// CHECK:         memref.prefetch %[[W]][%[[CLAMPED]], %[[COL]]], read, locality<3>, data
// CHECK:         %[[ROW:.*]] = vector.load %[[PANEL]][%[[E2]], %{{.*}}] : memref<?x16xf32>, vector<16xf32>
// CHECK:         %[[XV:.*]] = memref.load %[[X]][%[[T0]], %[[E2]]]
// CHECK:         %[[XB:.*]] = vector.broadcast %[[XV]] : f32 to vector<16xf32>
// CHECK:         %[[P:.*]] = arith.mulf %[[XB]], %[[ROW]] fastmath<contract> : vector<16xf32>
// CHECK:         arith.addf %{{.*}}, %[[P]] fastmath<contract> : vector<16xf32>
// CHECK:         %[[X1:.*]] = memref.load %[[X]][%[[T1]], %[[E2]]]
// CHECK:         %[[X1B:.*]] = vector.broadcast %[[X1]] : f32 to vector<16xf32>
// CHECK:         arith.mulf %[[X1B]], %[[ROW]] fastmath<contract> : vector<16xf32>
// CHECK:       vector.store %{{.*}}, %[[Y]][%[[T0]], %[[N0]]]
// CHECK:       vector.store %{{.*}}, %[[Y]][%[[T1]], %[[N0]]]
// CHECK-COUNT-4: vector.store {{.*}}, %[[Y]]
// CHECK:     scf.for %{{.*}} = %[[PFMAIN]] to %[[PMAIN]] step %c6
// CHECK-NOT:     memref.prefetch
// CHECK:       scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:     scf.for %{{.*}} = %[[PMAIN]] to %[[END5]] step %c5
// CHECK-NOT:     memref.prefetch
// CHECK:       scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:     scf.for %{{.*}} = %[[END5]] to %[[END4]] step %c4
// CHECK:       scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:     scf.for %{{.*}} = %[[END4]] to %[[END3]] step %c3
// CHECK:       scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:     scf.for %{{.*}} = %[[END3]] to %[[END2]] step %c2
// CHECK:       scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>)
// CHECK:     scf.for %{{.*}} = %[[END2]] to %[[T]] step %c1
// CHECK:       scf.for {{.*}} -> (vector<16xf32>)
// CHECK:     memref.dealloc %[[PANEL]]
// Fewer tokens: the dot-product form, one (threaded) loop over blocks of
// 32 columns, and in each the tokens register-blocked 4 tokens x 2 columns
// (eight sums in one reduction loop); the last T mod 4 tokens as a pair
// and a token against two columns.
// CHECK: } else {
// CHECK: %[[REM:.*]] = arith.remui %[[T]], %{{.*}} : index
// CHECK: %[[MAIN:.*]] = arith.subi %[[T]], %[[REM]] : index
// CHECK: %[[REST:.*]] = arith.subi %[[T]], %[[MAIN]] : index
// CHECK: %[[ODD:.*]] = arith.remui %[[REST]], %c2
// CHECK: %[[PAIRS:.*]] = arith.subi %[[T]], %[[ODD]] : index
// CHECK: scf.parallel (%[[B:.*]]) = (%{{.*}}) to (%c64{{.*}}) step (%c32{{.*}})
// CHECK:   %[[BEND:.*]] = arith.minsi %{{.*}}, %c64
// CHECK:   scf.parallel (%[[T0:.*]], %[[N0:.*]]) = (%{{.*}}, %[[B]]) to (%[[MAIN]], %[[BEND]]) step (%c4{{.*}}, %c2{{.*}})
// CHECK:     scf.for {{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK-COUNT-8: arith.addf {{.*}} fastmath<reassoc,contract>
// CHECK:     scf.yield
// CHECK-COUNT-8: memref.store
// CHECK:   scf.parallel (%{{.*}}, %{{.*}}) = (%[[MAIN]], %[[B]]) to (%[[PAIRS]], %[[BEND]]) step (%c2{{.*}}, %c2{{.*}})
// CHECK:     scf.for {{.*}} -> (f32, f32, f32, f32)
// CHECK:   scf.parallel (%{{.*}}, %{{.*}}) = (%[[PAIRS]], %[[B]]) to (%[[T]], %[[BEND]]) step (%c1{{.*}}, %c2{{.*}})
// CHECK:     scf.for {{.*}} -> (f32, f32)
// With 32 vector registers (AVX-512) the packed block is 64 columns (four
// vectors) and the dot-product block 4 tokens x 4 columns, sixteen sums.
// WIDE-LABEL: func.func @projection
// WIDE: scf.parallel (%{{.*}}) = (%{{.*}}) to (%c64{{.*}}) step (%c64{{.*}})
// WIDE:   memref.alloc(%c8{{.*}}) : memref<?x64xf32>
// WIDE:   scf.for {{.*}} -> (vector<64xf32>, vector<64xf32>, vector<64xf32>, vector<64xf32>, vector<64xf32>, vector<64xf32>)
// WIDE: } else {
// WIDE: scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c4{{.*}}, %c4{{.*}})
// WIDE:   scf.for {{.*}} -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
func.func @projection(%x: memref<?x8xf32>, %w: memref<64x8xf32>,
                      %y: memref<?x64xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<64x8xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A depth the lanes do not divide (E = 12, AVX2's 8 lanes): the packing
// transposes the first 8 elements of each block of 8 weight rows in
// registers and copies elements 8 to 11 of each row one at a time.
// CHECK-LABEL: func.func @projection_ragged_depth
// CHECK-SAME: (%{{.*}}: memref<?x12xf32>, %[[W:.*]]: memref<16x12xf32>, %{{.*}}: memref<?x16xf32>)
// CHECK: scf.if
// CHECK:   %[[PANEL:.*]] = memref.alloc(%c12{{.*}}) : memref<?x16xf32>
// CHECK:   scf.for %{{.*}} = %{{.*}} to %c16{{.*}} step %c8
// CHECK:     scf.for %[[E0:.*]] = %{{.*}} to %[[WHOLE:c8[_0-9]*]] step %c8
// CHECK-COUNT-8: vector.load %[[W]]{{.*}} : memref<16x12xf32>, vector<8xf32>
// CHECK-COUNT-8: vector.store %{{.*}}, %[[PANEL]]
// CHECK:   scf.for %[[C:.*]] = %{{.*}} to %c16
// CHECK:     scf.for %[[E:.*]] = %[[WHOLE]] to %c12
// CHECK:       %[[WV:.*]] = memref.load %[[W]][%{{.*}}, %[[E]]]
// CHECK:       memref.store %[[WV]], %[[PANEL]][%[[E]], %[[C]]]
func.func @projection_ragged_depth(%x: memref<?x12xf32>, %w: memref<16x12xf32>,
                                   %y: memref<?x16xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x12xf32>, memref<16x12xf32>) outs(%y : memref<?x16xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A weight not contiguous along E (a transposed view): no vector loads of
// its rows; every element is copied one at a time; no prefetch of the next
// panel (its rows are not runs of memory).
// CHECK-LABEL: func.func @projection_strided_weight
// CHECK-SAME: %[[W:[^:]*]]: memref<16x8xf32, strided<[1, 16]>>
// CHECK: scf.if
// CHECK:   %[[PANEL:.*]] = memref.alloc(%c8{{.*}}) : memref<?x16xf32>
// CHECK-NOT: vector.load %[[W]]
// CHECK:   scf.for %[[C:.*]] = %{{.*}} to %c16
// CHECK:     scf.for %[[E:.*]] = %c0{{.*}} to %c8
// CHECK:       %[[WV:.*]] = memref.load %[[W]][%{{.*}}, %[[E]]]
// CHECK:       memref.store %[[WV]], %[[PANEL]][%[[E]], %[[C]]]
// CHECK-NOT: memref.prefetch
// CHECK: } else {
func.func @projection_strided_weight(%x: memref<?x8xf32>,
                                     %w: memref<16x8xf32, strided<[1, 16]>>,
                                     %y: memref<?x16xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<16x8xf32, strided<[1, 16]>>)
      outs(%y : memref<?x16xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A dynamic depth: the blocks of 8 elements run up to E - E mod 8, known
// at run time, and the rest one at a time.
// CHECK-LABEL: func.func @projection_dynamic_depth
// CHECK-SAME: %[[W:[^:]*]]: memref<16x?xf32>
// CHECK: scf.if
// CHECK:   %[[PANEL:.*]] = memref.alloc(%[[E:.*]]) : memref<?x16xf32>
// CHECK:   %[[REST:.*]] = arith.remui %[[E]], %c8
// CHECK:   %[[WHOLE:.*]] = arith.subi %[[E]], %[[REST]]
// CHECK:   scf.for %{{.*}} = %{{.*}} to %c16{{.*}} step %c8
// CHECK:     scf.for %{{.*}} = %{{.*}} to %[[WHOLE]] step %c8
// CHECK-COUNT-8: vector.load %[[W]]
// CHECK:   scf.for %{{.*}} = %{{.*}} to %c16
// CHECK:     scf.for %{{.*}} = %[[WHOLE]] to %[[E]] step %c1
// CHECK:       memref.load %[[W]]
func.func @projection_dynamic_depth(%x: memref<?x?xf32>, %w: memref<16x?xf32>,
                                    %y: memref<?x16xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x?xf32>, memref<16x?xf32>) outs(%y : memref<?x16xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A weight larger than the cache (2048 x 4096 f32, 32 MiB) is summed in
// chunks of 1024 along the reduction inside each block of 32 columns, the
// partial sums kept in the output, so the block's weight rows of a chunk
// (128 KiB) stay in L2 across every token: the jams of 4 rows, of the pair
// and of the last row alike, each an explicit vector loop (8 lanes here)
// whose lane partial sums a shuffle tree reduces onto the output's value,
// then the chunk's last elements (none here) one at a time. Each step of a
// jam of 4 rows prefetches, for each of its column slots, a line of the
// next chunk's weight rows: the same rows 1024 further, or after the last
// chunk the next block's rows (32 further) at the same element; token
// block b takes the jam's columns b, b + blocks (so the blocks together
// cover every row once), clamped to the weight's last row and element.
// The pair and the last row prefetch nothing. (With 20 tokens or more the
// packed form runs instead: it prefetches a streamed weight's next panel
// while it computes.)
// CHECK-LABEL: func.func @large_projection
// CHECK: arith.cmpi uge, %{{.*}}, %c20{{(_[0-9]+)?}}
// CHECK: } else {
// CHECK: %[[QUADS_END:.*]] = arith.subi %[[T:.*]], %{{.*}} : index
// CHECK: scf.parallel (%[[N0:.*]]) = (%{{.*}}) to (%c2048{{.*}}) step (%c32{{.*}})
// CHECK:   scf.for %[[E0:.*]] = %{{.*}} to %c4096{{.*}} step %c1024{{(_[0-9]+)?}}
// CHECK:     %[[NEXT:.*]] = arith.addi %[[E0]], %c1024{{(_[0-9]+)?}}
// CHECK:     %[[END:.*]] = arith.minsi %[[NEXT]], %c4096{{(_[0-9]+)?}}
// CHECK:     %[[LAST:.*]] = arith.cmpi uge, %[[NEXT]], %c4096{{(_[0-9]+)?}}
// CHECK:     %[[ROW_SHIFT:.*]] = arith.select %[[LAST]], %c32{{(_[0-9]+)?}}, %c0{{(_[0-9]+)?}}
// CHECK:     %[[BACK:.*]] = arith.subi %c0{{.*}}, %[[E0]]
// CHECK:     %[[ELEMENT_SHIFT:.*]] = arith.select %[[LAST]], %[[BACK]], %c1024{{(_[0-9]+)?}}
// CHECK:     %[[SPAN:.*]] = arith.subi %[[QUADS_END]], %c0{{(_[0-9]+)?}}
// CHECK:     %[[BLOCKS:.*]] = arith.divui %[[SPAN]], %c4{{(_[0-9]+)?}}
// CHECK:     scf.parallel (%[[T0:.*]], %[[N:.*]]) = {{.*}} to (%[[QUADS_END]], %{{.*}}) step (%c4{{.*}}, %c2{{.*}})
// CHECK:       %[[FROM:.*]] = arith.subi %[[T0]], %c0{{(_[0-9]+)?}}
// CHECK:       %[[BLOCK:.*]] = arith.divui %[[FROM]], %c4{{(_[0-9]+)?}}
// CHECK:       %[[K0:.*]] = arith.muli %[[BLOCKS]], %c0{{(_[0-9]+)?}}
// CHECK:       %[[C0:.*]] = arith.addi %[[BLOCK]], %[[K0]]
// CHECK:       %[[R0:.*]] = arith.addi %[[N]], %[[C0]]
// CHECK:       %[[S0:.*]] = arith.addi %[[R0]], %[[ROW_SHIFT]]
// CHECK:       %[[IN0:.*]] = arith.cmpi ult, %[[C0]], %c2{{(_[0-9]+)?}}
// CHECK:       %[[ROW0:.*]] = arith.minui %[[S0]], %c2047{{(_[0-9]+)?}}
// CHECK:       %[[K1:.*]] = arith.muli %[[BLOCKS]], %c1{{(_[0-9]+)?}}
// CHECK:       %[[C1:.*]] = arith.addi %[[BLOCK]], %[[K1]]
// CHECK:       %[[R1:.*]] = arith.addi %[[N]], %[[C1]]
// CHECK:       %[[S1:.*]] = arith.addi %[[R1]], %[[ROW_SHIFT]]
// CHECK:       %[[IN1:.*]] = arith.cmpi ult, %[[C1]], %c2{{(_[0-9]+)?}}
// CHECK:       %[[ROW1:.*]] = arith.minui %[[S1]], %c2047{{(_[0-9]+)?}}
// CHECK:       scf.for %[[E:.*]] = %[[E0]] to %[[VEC_END:.*]] step %c8{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK:         vector.load %{{.*}}[%[[T0]], %[[E]]] : memref<?x4096xf32>, vector<8xf32>
// CHECK:         vector.load %{{.*}}[%[[N]], %[[E]]] : memref<2048x4096xf32>, vector<8xf32>
// CHECK:         arith.addf {{.*}} fastmath<contract> : vector<8xf32>
// CHECK:         %[[AHEAD:.*]] = arith.addi %[[E]], %[[ELEMENT_SHIFT]]
// CHECK:         %[[ELEMENT:.*]] = arith.minui %[[AHEAD]], %c4095{{(_[0-9]+)?}}
// CHECK:         scf.if %[[IN0]] {
// CHECK:           memref.prefetch %{{.*}}[%[[ROW0]], %[[ELEMENT]]], read, locality<2>, data : memref<2048x4096xf32>
// CHECK:         scf.if %[[IN1]] {
// CHECK:           memref.prefetch %{{.*}}[%[[ROW1]], %[[ELEMENT]]], read, locality<2>, data : memref<2048x4096xf32>
// CHECK:       vector.reduction <add>, %{{.*}} fastmath<reassoc> : vector<8xf32> into f32
// CHECK:       scf.for %{{.*}} = %[[VEC_END]] to %[[END]] step %c1{{.*}} iter_args
// CHECK:     scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c2{{.*}}, %c2{{.*}})
// CHECK-NOT:   memref.prefetch
// CHECK:       scf.for %{{.*}} = %[[E0]] to %{{.*}} step %c8{{(_[0-9]+)?}}
// CHECK-NOT:   memref.prefetch
// CHECK:     scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c1{{.*}}, %c2{{.*}})
// CHECK-NOT:   memref.prefetch
// CHECK:       scf.for %{{.*}} = %[[E0]] to %{{.*}} step %c8{{(_[0-9]+)?}}
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @large_projection(%x: memref<?x4096xf32>, %w: memref<2048x4096xf32>,
                            %y: memref<?x2048xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x4096xf32>, memref<2048x4096xf32>) outs(%y : memref<?x2048xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A decode step's one token reuses no weight row, so the same weight is not
// chunked: each output sums its whole row, the token against the jam's
// columns (2 here, 4 with 32 registers: as many streams through the
// weight), in blocks of 32 columns per thread.
// CHECK-LABEL: func.func @large_projection_one_token
// CHECK: scf.parallel (%{{.*}}) = (%{{.*}}) to (%c2048{{.*}}) step (%c32{{.*}})
// CHECK-NOT: step %c2048
// CHECK:   scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c4{{.*}}, %c2{{.*}})
// CHECK:   scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c1{{.*}}, %c2{{.*}})
// CHECK:     scf.for %{{.*}} = %c0{{.*}} to %c4096{{.*}} step %c1{{.*}} -> (f32, f32)
// CHECK-NOT: step %c2048
// CHECK: return
// WIDE-LABEL: func.func @large_projection_one_token
// WIDE:   scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c1{{.*}}, %c4{{.*}})
// WIDE:     scf.for %{{.*}} = %c0{{.*}} to %c4096{{.*}} step %c1{{.*}} -> (f32, f32, f32, f32)
func.func @large_projection_one_token(%x: memref<1x4096xf32>, %w: memref<2048x4096xf32>,
                                      %y: memref<1x2048xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<1x4096xf32>, memref<2048x4096xf32>) outs(%y : memref<1x2048xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A row of P·V, o[h, d] += p[h, j] * V[j, d]: V is strided along the
// reduction but contiguous along the output's last dim, a static 8 wide, so
// the output row is a vector carried through the loop over j (one load and
// one store per row); p's element is broadcast, V's row loaded; each element
// is summed in order (contract, no reassoc).
// CHECK-LABEL: func.func @row_times_matrix
// CHECK-SAME: (%[[P:.*]]: memref<2x7xf32>, %[[V:.*]]: memref<7x8xf32>, %[[O:.*]]: memref<2x8xf32>)
// CHECK: scf.parallel (%[[H:.*]]) =
// CHECK:   %[[ROW:.*]] = vector.load %[[O]][%[[H]], %{{.*}}] : memref<2x8xf32>, vector<8xf32>
// CHECK:   %[[SUM:.*]] = scf.for %[[J:.*]] = {{.*}} iter_args(%[[ACC:.*]] = %[[ROW]]) -> (vector<8xf32>)
// CHECK:     %[[PJ:.*]] = memref.load %[[P]][%[[H]], %[[J]]]
// CHECK:     %[[PB:.*]] = vector.broadcast %[[PJ]] : f32 to vector<8xf32>
// CHECK:     %[[VJ:.*]] = vector.load %[[V]][%[[J]], %{{.*}}] : memref<7x8xf32>, vector<8xf32>
// CHECK:     %[[M:.*]] = arith.mulf %[[PB]], %[[VJ]] fastmath<contract> : vector<8xf32>
// CHECK:     %[[S:.*]] = arith.addf %[[ACC]], %[[M]] fastmath<contract> : vector<8xf32>
// CHECK:     scf.yield %[[S]]
// CHECK:   vector.store %[[SUM]], %[[O]][%[[H]], %{{.*}}]
func.func @row_times_matrix(%p: memref<2x7xf32>, %v: memref<7x8xf32>,
                            %o: memref<2x8xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(h, d, j) -> (h, j)>,
                       affine_map<(h, d, j) -> (j, d)>,
                       affine_map<(h, d, j) -> (h, d)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<2x7xf32>, memref<7x8xf32>) outs(%o : memref<2x8xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A payload with a comparison and a select (a masked P·V) in the row form:
// the compare gives a vector of i1, the select picks per lane, and a value
// from outside the body is broadcast; no fast-math on an add that is not
// the running sum's.
// CHECK-LABEL: func.func @masked_row
// CHECK: scf.for {{.*}} -> (vector<8xf32>)
// CHECK:   %[[CMP:.*]] = arith.cmpf ogt, %{{.*}}, %{{.*}} : vector<8xf32>
// CHECK:   %[[SEL:.*]] = arith.select %[[CMP]], %{{.*}}, %{{.*}} : vector<8xi1>, vector<8xf32>
// CHECK:   arith.addf %{{.*}}, %[[SEL]] fastmath<contract> : vector<8xf32>
func.func @masked_row(%p: memref<2x7xf32>, %v: memref<7x8xf32>,
                      %o: memref<2x8xf32>, %floor: f32) {
  linalg.generic {
      indexing_maps = [affine_map<(h, d, j) -> (h, j)>,
                       affine_map<(h, d, j) -> (j, d)>,
                       affine_map<(h, d, j) -> (h, d)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<2x7xf32>, memref<7x8xf32>) outs(%o : memref<2x8xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %keep = arith.cmpf ogt, %m, %floor : f32
    %x = arith.select %keep, %m, %floor : f32
    %s = arith.addf %c, %x : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// The same with a row width known only at run time: the reduction loop
// outside the output's last dim, which is the innermost loop, loading and
// storing each element (LLVM vectorizes it).
// CHECK-LABEL: func.func @row_times_matrix_dynamic
// CHECK-SAME: (%[[P:.*]]: memref<2x7xf32>, %[[V:.*]]: memref<7x?xf32>, %[[O:.*]]: memref<2x?xf32>)
// CHECK-NOT: vector
// CHECK: scf.parallel (%[[H:.*]]) =
// CHECK:   scf.for %[[J:.*]] =
// CHECK:     scf.for %[[D:.*]] =
// CHECK:       %[[ACC:.*]] = memref.load %[[O]][%[[H]], %[[D]]]
// CHECK:       memref.load %[[P]][%[[H]], %[[J]]]
// CHECK:       memref.load %[[V]][%[[J]], %[[D]]]
// CHECK:       %[[S:.*]] = arith.addf %[[ACC]], %{{.*}} fastmath<contract>
// CHECK:       memref.store %[[S]], %[[O]][%[[H]], %[[D]]]
func.func @row_times_matrix_dynamic(%p: memref<2x7xf32>, %v: memref<7x?xf32>,
                                    %o: memref<2x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(h, d, j) -> (h, j)>,
                       affine_map<(h, d, j) -> (j, d)>,
                       affine_map<(h, d, j) -> (h, d)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<2x7xf32>, memref<7x?xf32>) outs(%o : memref<2x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// linalg.index becomes the loop's iv; a max is carried like a sum but gets
// no fast-math flags.
// CHECK-LABEL: func.func @indexed_max
// CHECK: scf.parallel (%[[I:.*]]) =
// CHECK:   scf.for %[[J:.*]] = {{.*}} iter_args
// CHECK:     arith.index_cast %[[J]]
// CHECK:     arith.maximumf
// CHECK-NOT: fastmath
// CHECK:     scf.yield
func.func @indexed_max(%x: memref<4x6xf32>, %y: memref<4xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
      iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<4x6xf32>) outs(%y : memref<4xf32>) {
  ^bb0(%a: f32, %c: f32):
    %j = linalg.index 1 : index
    %ji = arith.index_cast %j : index to i32
    %jf = arith.sitofp %ji : i32 to f32
    %v = arith.addf %a, %jf : f32
    %m = arith.maximumf %c, %v : f32
    linalg.yield %m : f32
  }
  return
}

// -----

// Left to linalg's lowering: a full reduction (no parallel dim to carry the
// sum in), and a sum whose inputs are contiguous along neither the
// reduction nor the output.
// CHECK-LABEL: func.func @left_alone
// CHECK-COUNT-2: linalg.generic
func.func @left_alone(%x: memref<8xf32>, %s: memref<f32>,
                      %a: memref<5x4xf32>, %b: memref<4xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> ()>],
      iterator_types = ["reduction"]}
      ins(%x : memref<8xf32>) outs(%s : memref<f32>) {
  ^bb0(%v: f32, %c: f32):
    %r = arith.addf %c, %v : f32
    linalg.yield %r : f32
  }
  // b[i] += a[j, i]: the reduction runs down a column.
  linalg.generic {
      indexing_maps = [affine_map<(i, j) -> (j, i)>, affine_map<(i, j) -> (i)>],
      iterator_types = ["parallel", "reduction"]}
      ins(%a : memref<5x4xf32>) outs(%b : memref<4xf32>) {
  ^bb0(%v: f32, %c: f32):
    %r = arith.addf %c, %v : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A static token count: 48 or more take the packed form alone, fewer the
// dot-product form alone: 47 tokens as 11 jams of 4 rows x 2 columns
// (eight sums), then a pair of rows and a last row against as many
// columns.
// CHECK-LABEL: func.func @static_tokens
// CHECK-NOT: scf.if
// CHECK: memref.alloc
// CHECK: vector<16xf32>
// CHECK-LABEL: func.func @jammed_tokens
// CHECK-NOT: memref.alloc
// CHECK: scf.parallel
// CHECK:   scf.parallel {{.*}} = (%c0{{.*}}, %{{.*}}) to (%[[MAIN:.*]], %{{.*}}) step (%c4{{.*}}, %c2{{.*}})
// CHECK:     scf.for {{.*}} -> (f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK:   scf.parallel {{.*}} = (%[[MAIN]], %{{.*}}) to (%[[PAIRS:.*]], %{{.*}}) step (%c2{{.*}}, %c2{{.*}})
// CHECK:     scf.for {{.*}} -> (f32, f32, f32, f32)
// CHECK:   scf.parallel {{.*}} = (%[[PAIRS]], %{{.*}}) to (%c47{{.*}}, %{{.*}}) step (%c1{{.*}}, %c2{{.*}})
// CHECK:     scf.for {{.*}} -> (f32, f32)
// CHECK-LABEL: func.func @decode_tokens
// CHECK-NOT: scf.if
// CHECK-NOT: memref.alloc
// CHECK: scf.for {{.*}} -> (f32, f32, f32, f32, f32, f32, f32, f32)
func.func @static_tokens(%x: memref<48x8xf32>, %w: memref<32x8xf32>,
                         %y: memref<48x32xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<48x8xf32>, memref<32x8xf32>) outs(%y : memref<48x32xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}
func.func @jammed_tokens(%x: memref<47x8xf32>, %w: memref<32x8xf32>,
                         %y: memref<47x32xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<47x8xf32>, memref<32x8xf32>) outs(%y : memref<47x32xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}
func.func @decode_tokens(%x: memref<4x8xf32>, %w: memref<32x8xf32>,
                         %y: memref<4x32xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<4x8xf32>, memref<32x8xf32>) outs(%y : memref<4x32xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A weight over 8 MiB (as f32) is streamed from memory on every call: the
// packed form, which prefetches its next panel while it computes,
// overtakes the dot-product form (which prefetches its next chunk) from 20
// tokens (48 on a weight in cache); here 1000 deep, so the dot-product
// form does not chunk it.
// CHECK-LABEL: func.func @streamed_weight
// CHECK: %[[T:.*]] = memref.dim
// CHECK: arith.cmpi uge, %[[T]], %c20
// CHECK: } else {
// CHECK-NOT: step %c{{(1024|2048)}}
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @streamed_weight(%x: memref<?x1000xf32>, %w: memref<4096x1000xf32>,
                           %y: memref<?x4096xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x1000xf32>, memref<4096x1000xf32>) outs(%y : memref<?x4096xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A column count the block width does not divide (24 of 16): the
// dot-product form, without a run-time test.
// CHECK-LABEL: func.func @ragged_columns
// CHECK-NOT: scf.if
// CHECK-NOT: memref.alloc
// CHECK: scf.parallel
func.func @ragged_columns(%x: memref<?x8xf32>, %w: memref<24x8xf32>,
                          %y: memref<?x24xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<24x8xf32>) outs(%y : memref<?x24xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// f64 sums: the packed block sizes count f32 registers, so the dot-product
// form runs even with many tokens.
// CHECK-LABEL: func.func @f64_sums
// CHECK-NOT: scf.if
// CHECK-NOT: memref.alloc
// CHECK: scf.parallel
func.func @f64_sums(%x: memref<64x8xf64>, %w: memref<32x8xf64>,
                    %y: memref<64x32xf64>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<64x8xf64>, memref<32x8xf64>) outs(%y : memref<64x32xf64>) {
  ^bb0(%a: f64, %b: f64, %c: f64):
    %p = arith.mulf %a, %b : f64
    %s = arith.addf %c, %p : f64
    linalg.yield %s : f64
  }
  return
}

// -----

// P·V rows inside a threaded loop (an SDPA block): the reduction j goes in
// blocks of 16 outside the rows (each block's rows of V read from memory
// once, reused from L1 by every row), and within a block the rows h are
// jammed 4 at a time (8 f32 per row: one register each, half the 16
// registers for sums), so their sums are independent FMA chains and v's
// row, which does not depend on h, is loaded once per step for all four.
// Each element is still summed in order over j. The rest of the rows go
// one at a time.
// CHECK-LABEL: func.func @rows_in_threaded_loop
// CHECK-SAME: (%[[P:.*]]: memref<7x?xf32>, %[[V:.*]]: memref<?x8xf32>, %[[O:.*]]: memref<7x8xf32>, %{{.*}}: index)
// CHECK: scf.parallel
// CHECK:   %[[DIM:.*]] = memref.dim %[[P]]
// CHECK:   scf.for %[[J0:.*]] = %{{.*}} to %[[DIM]] step %c16
// CHECK:     %[[J1:.*]] = arith.minsi %{{.*}}, %[[DIM]]
// CHECK:     scf.parallel (%[[H:.*]]) = {{.*}} step (%c4{{.*}})
// CHECK-COUNT-4: vector.load %[[O]]
// CHECK:       scf.for %[[J:.*]] = %[[J0]] to %[[J1]] step %{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK:         memref.load %[[P]][%[[H]], %[[J]]]
// CHECK:         %[[VROW:.*]] = vector.load %[[V]][%[[J]], %{{.*}}] : memref<?x8xf32>, vector<8xf32>
// CHECK:         arith.mulf %{{.*}}, %[[VROW]] fastmath<contract>
// CHECK-NOT:     vector.load %[[V]]
// CHECK:         scf.yield
// CHECK-COUNT-4: vector.store {{.*}}, %[[O]]
// CHECK:     scf.parallel (%{{.*}}) = {{.*}} step (%c1{{.*}})
// CHECK:       scf.for %{{.*}} = %[[J0]] to %[[J1]] {{.*}} -> (vector<8xf32>)
func.func @rows_in_threaded_loop(%p: memref<7x?xf32>, %v: memref<?x8xf32>,
                                 %o: memref<7x8xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    linalg.generic {
        indexing_maps = [affine_map<(h, e, j) -> (h, j)>,
                         affine_map<(h, e, j) -> (j, e)>,
                         affine_map<(h, e, j) -> (h, e)>],
        iterator_types = ["parallel", "parallel", "reduction"]}
        ins(%p, %v : memref<7x?xf32>, memref<?x8xf32>) outs(%o : memref<7x8xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %c, %m : f32
      linalg.yield %s : f32
    }
    scf.reduce
  }
  return
}

// -----

// A row max (maximumf, as IEEE defines it, is associative and commutative):
// a vector of 8 partial maxima through the whole vectors of the row,
// combined across lanes, then the rest one element at a time. The value is
// the in-order max's (its bits may differ only in a zero's sign or a NaN's
// payload).
// CHECK-LABEL: func.func @row_max
// CHECK-SAME: (%[[X:.*]]: memref<3x7x?xf32>, %[[M:.*]]: memref<3x7xf32>)
// CHECK: scf.parallel (%[[T:.*]], %[[H:.*]]) =
// CHECK:   %[[INIT:.*]] = memref.load %[[M]][%[[T]], %[[H]]]
// CHECK:   %[[REM:.*]] = arith.remui %{{.*}}, %c8
// CHECK:   %[[SPLIT:.*]] = arith.subi %{{.*}}, %[[REM]]
// CHECK:   %[[BCAST:.*]] = vector.broadcast %[[INIT]] : f32 to vector<8xf32>
// CHECK:   %[[LANES:.*]] = scf.for %[[J:.*]] = %{{.*}} to %[[SPLIT]] step %c8{{.*}} iter_args(%[[ACC:.*]] = %[[BCAST]]) -> (vector<8xf32>)
// CHECK:     %[[XV:.*]] = vector.load %[[X]][%[[T]], %[[H]], %[[J]]] : memref<3x7x?xf32>, vector<8xf32>
// CHECK:     arith.maximumf %[[XV]], %[[ACC]] : vector<8xf32>
// CHECK:   %[[ACROSS:.*]] = vector.reduction <maximumf>, %[[LANES]] : vector<8xf32> into f32
// CHECK:   %[[ALL:.*]] = scf.for %{{.*}} = %[[SPLIT]] to %{{.*}} iter_args(%[[R:.*]] = %[[ACROSS]]) -> (f32)
// CHECK:     arith.maximumf %{{.*}}, %[[R]] : f32
// CHECK:   memref.store %[[ALL]], %[[M]][%[[T]], %[[H]]]
// WIDE-LABEL: func.func @row_max
// WIDE: vector.reduction <maximumf>, %{{.*}} : vector<16xf32> into f32
func.func @row_max(%x: memref<3x7x?xf32>, %m: memref<3x7xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j) -> (t, h, j)>,
                       affine_map<(t, h, j) -> (t, h)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : memref<3x7x?xf32>) outs(%m : memref<3x7xf32>) {
  ^bb0(%a: f32, %b: f32):
    %r = arith.maximumf %a, %b : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A row sum that is not exactly associative (addf) stays in the dot-product
// form: no vector.reduction here, LLVM's vectorizer reassociates it.
// CHECK-LABEL: func.func @row_sum
// CHECK-NOT: vector.reduction
// CHECK: arith.addf {{.*}} fastmath<reassoc,contract>
func.func @row_sum(%x: memref<3x7x?xf32>, %m: memref<3x7xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j) -> (t, h, j)>,
                       affine_map<(t, h, j) -> (t, h)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : memref<3x7x?xf32>) outs(%m : memref<3x7xf32>) {
  ^bb0(%a: f32, %b: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Scores for a number of query rows known only at run time (a prefill
// block) take the packed form: per block of 16 keys (two AVX2 vectors) the
// keys are transposed into a panel [64, 16], 8 x 8 at a time in registers
// (three levels of shuffles), the last count mod 8 keys of a partial block
// one element at a time and the panel's columns past the tile's end zeroed; then blocks of
// 6 query rows run as outer products (per e, one load of the panel's row
// and a broadcast FMA per row), each row's 16 scores a vector iter_arg,
// loaded and stored through the mask of the keys present; the rows past
// the last whole block go one at a time. Each score is summed in order
// (contract, no reassoc).
// CHECK-LABEL: func.func @score_tile_many_rows
// CHECK-SAME: (%[[Q:.*]]: memref<?x64xf32>, %[[K:.*]]: memref<?x64xf32>, %[[S:.*]]: memref<?x?xf32>)
// CHECK: %[[PANEL:.*]] = memref.alloc() {alignment = 64 : i64} : memref<64x16xf32>
// CHECK: scf.for %[[J0:.*]] = %{{.*}} to %{{.*}} step %c16
// CHECK:   %[[COUNT:.*]] = arith.minsi %c16{{.*}}, %{{.*}}
// CHECK:   scf.for %[[C0:.*]] = {{.*}} step %c8
// CHECK:     scf.for %[[E0:.*]] = {{.*}} step %c8
// CHECK-COUNT-8: vector.load %[[K]]{{.*}} : memref<?x64xf32>, vector<8xf32>
// CHECK-COUNT-24: vector.shuffle
// CHECK-COUNT-8: vector.store %{{.*}}, %[[PANEL]][%{{.*}}, %[[C0]]] : memref<64x16xf32>, vector<8xf32>
// CHECK:   scf.for
// CHECK:     scf.for
// CHECK:       %[[KE:.*]] = memref.load %[[K]]
// CHECK:       memref.store %[[KE]], %[[PANEL]]
// CHECK:   scf.for %{{.*}} = %[[COUNT]] to %c16
// CHECK:     scf.for
// CHECK:       memref.store %cst{{.*}}, %[[PANEL]]
// CHECK:   %[[MASK:.*]] = vector.create_mask %[[COUNT]] : vector<16xi1>
// CHECK:   scf.parallel (%{{.*}}) = {{.*}} step (%c6{{.*}})
// CHECK-COUNT-6: vector.maskedload %[[S]][%{{.*}}, %[[J0]]], %[[MASK]]
// CHECK:     scf.for %[[E:[a-z0-9_]+]] = {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:       %[[QE:.*]] = memref.load %[[Q]][%{{.*}}, %[[E]]]
// CHECK:       %[[QB:.*]] = vector.broadcast %[[QE]] : f32 to vector<16xf32>
// CHECK:       %[[KR:.*]] = vector.load %[[PANEL]][%[[E]], %{{.*}}] : memref<64x16xf32>, vector<16xf32>
// CHECK:       %[[M:.*]] = arith.mulf %[[QB]], %[[KR]] fastmath<contract>
// CHECK:       arith.addf %{{.*}}, %[[M]] fastmath<contract>
// CHECK-NOT:   vector.load %[[PANEL]]
// CHECK:       scf.yield
// CHECK-COUNT-6: vector.maskedstore %[[S]][%{{.*}}, %[[J0]]], %[[MASK]]
// CHECK:   scf.parallel (%{{.*}}) = {{.*}} step (%c1{{.*}})
// CHECK:     scf.for {{.*}} -> (vector<16xf32>)
// CHECK: memref.dealloc %[[PANEL]]
// With AVX-512's 32 registers: 64 keys (four vectors) per panel, 16 x 16
// transposes (four levels).
// WIDE-LABEL: func.func @score_tile_many_rows
// WIDE: memref.alloc() {alignment = 64 : i64} : memref<64x64xf32>
// WIDE-COUNT-16: vector.load %{{.*}} : memref<?x64xf32>, vector<16xf32>
// WIDE-COUNT-64: vector.shuffle
// WIDE: vector.create_mask %{{.*}} : vector<64xi1>
// WIDE: scf.for {{.*}} -> (vector<64xf32>, vector<64xf32>, vector<64xf32>, vector<64xf32>, vector<64xf32>, vector<64xf32>)
func.func @score_tile_many_rows(%q: memref<?x64xf32>, %k: memref<?x64xf32>,
                                %s: memref<?x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(h, j, e) -> (h, e)>,
                       affine_map<(h, j, e) -> (j, e)>,
                       affine_map<(h, j, e) -> (h, j)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x64xf32>, memref<?x64xf32>) outs(%s : memref<?x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A prefill block's scores with GQA folded: tokens x a group's 7 heads
// read their one KV head through h floordiv 7, an axis of size 1, so the
// panel serves every row; the rows (t, h) are linearized, blocks of 6
// crossing heads and tokens, and a bf16 K is packed as bf16 and widened
// per row of the panel.
// CHECK-LABEL: func.func @gqa_score_tile
// CHECK-SAME: (%[[Q:.*]]: memref<?x7x64xf32>, %[[K:.*]]: memref<?x1x64xbf16>, %[[S:.*]]: memref<?x7x?xf32>)
// CHECK: %[[PANEL:.*]] = memref.alloc() {alignment = 64 : i64} : memref<64x16xbf16>
// CHECK: scf.parallel (%[[R:.*]]) = {{.*}} step (%c6{{.*}})
// CHECK:   affine.delinearize_index %[[R]] into (%{{.*}}, %{{.*}}) : index, index
// CHECK:   scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:     %[[KR:.*]] = vector.load %[[PANEL]][%{{.*}}, %{{.*}}] : memref<64x16xbf16>, vector<16xbf16>
// CHECK:     arith.extf %[[KR]] : vector<16xbf16> to vector<16xf32>
func.func @gqa_score_tile(%q: memref<?x7x64xf32>, %k: memref<?x1x64xbf16>,
                          %s: memref<?x7x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x7x64xf32>, memref<?x1x64xbf16>) outs(%s : memref<?x7x?xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32):
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %a, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Keys that differ between rows (two KV heads, h floordiv 7 on an axis of
// size 2): no panel serves every row, so the key-block form runs (a key's
// lane partial sums, then a tree of shuffles).
// CHECK-LABEL: func.func @score_tile_keys_per_row
// CHECK-NOT: memref.alloc
// CHECK-NOT: vector.maskedload
// CHECK: scf.parallel
// CHECK: vector.shuffle
func.func @score_tile_keys_per_row(%q: memref<?x14x64xf32>, %k: memref<?x2x64xf32>,
                                   %s: memref<?x14x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x14x64xf32>, memref<?x2x64xf32>) outs(%s : memref<?x14x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A prefill block's P·V, o[t, h, d] += p[t, h, j] * V[j, h floordiv 7, d],
// many rows (dynamic tokens x 7 heads): the rows linearized in blocks of 6
// against each block of 16 columns (two AVX2 vectors; four blocks of the
// 64), V's row loaded once per step for all six rows (its head axis has
// size 1), a broadcast FMA per row; then the rest one row at a time.
// CHECK-LABEL: func.func @gqa_pv_many_rows
// CHECK-SAME: (%[[P:.*]]: memref<?x7x?xf32>, %[[V:.*]]: memref<?x1x64xf32>, %[[O:.*]]: memref<?x7x64xf32>)
// CHECK: scf.parallel (%[[R:.*]]) = {{.*}} step (%c6{{.*}})
// CHECK:   affine.delinearize_index %[[R]] into
// CHECK-COUNT-6: vector.load %[[O]]{{.*}} : memref<?x7x64xf32>, vector<16xf32>
// CHECK:   scf.for %[[J:[a-z0-9_]+]] = {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:     memref.load %[[P]][%{{.*}}, %{{.*}}, %[[J]]]
// CHECK:     vector.load %[[V]][%[[J]], %{{.*}}, %{{.*}}] : memref<?x1x64xf32>, vector<16xf32>
// CHECK-NOT: vector.load %[[V]]
// CHECK:     scf.yield
// CHECK-COUNT-6: vector.store %{{.*}}, %[[O]]
// CHECK:   scf.parallel (%{{.*}}) = {{.*}} step (%c1{{.*}})
// CHECK-COUNT-3: scf.parallel (%{{.*}}) = {{.*}} step (%c6{{.*}})
// CHECK: // -----
// With AVX-512: one block of 64 columns (four vectors).
// WIDE-LABEL: func.func @gqa_pv_many_rows
// WIDE: scf.parallel (%{{.*}}) = {{.*}} step (%c6{{.*}})
// WIDE: scf.for {{.*}} -> (vector<64xf32>, vector<64xf32>, vector<64xf32>, vector<64xf32>, vector<64xf32>, vector<64xf32>)
// WIDE: scf.parallel (%{{.*}}) = {{.*}} step (%c1{{.*}})
// WIDE-NOT: scf.parallel
// WIDE: // -----
func.func @gqa_pv_many_rows(%p: memref<?x7x?xf32>, %v: memref<?x1x64xf32>,
                            %o: memref<?x7x64xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, d, j) -> (t, h, j)>,
                       affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                       affine_map<(t, h, d, j) -> (t, h, d)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<?x7x?xf32>, memref<?x1x64xf32>) outs(%o : memref<?x7x64xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// V rows that differ between rows (two KV heads): the RowInRegisters form,
// rows of the last outer dim jammed (a 32-f32 row is 4 AVX2 vectors, so 2
// rows at a time: half the 16 registers hold sums).
// CHECK-LABEL: func.func @pv_values_per_row
// CHECK-NOT: affine.delinearize_index
// CHECK: scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c1{{.*}}, %c2{{.*}})
func.func @pv_values_per_row(%p: memref<?x14x?xf32>, %v: memref<?x2x32xf32>,
                             %o: memref<?x14x32xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, d, j) -> (t, h, j)>,
                       affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                       affine_map<(t, h, d, j) -> (t, h, d)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<?x14x?xf32>, memref<?x2x32xf32>) outs(%o : memref<?x14x32xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// P·V rows in a threaded loop, but many (dynamic) rows: no block loop over
// j around them (they would not stay in L1); each row jammed and carried
// in registers through the whole of j.
// CHECK-LABEL: func.func @many_rows_in_threaded_loop
// CHECK: scf.parallel
// CHECK-NOT: step %c16
// CHECK:   scf.parallel (%{{.*}}) = {{.*}} step (%c4{{.*}})
func.func @many_rows_in_threaded_loop(%p: memref<?x?xf32>, %v: memref<?x8xf32>,
                                      %o: memref<?x8xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    linalg.generic {
        indexing_maps = [affine_map<(h, e, j) -> (h, j)>,
                         affine_map<(h, e, j) -> (j, e)>,
                         affine_map<(h, e, j) -> (h, e)>],
        iterator_types = ["parallel", "parallel", "reduction"]}
        ins(%p, %v : memref<?x?xf32>, memref<?x8xf32>) outs(%o : memref<?x8xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %c, %m : f32
      linalg.yield %s : f32
    }
    scf.reduce
  }
  return
}

// -----

// Rows of index elements (no bit width to count registers by): one row at
// a time, as before the rows were jammed.
// CHECK-LABEL: func.func @pv_index
// CHECK: scf.parallel (%{{.*}}) = {{.*}} step (%c1{{.*}})
// CHECK:   scf.for {{.*}} -> (vector<8xindex>)
func.func @pv_index(%p: memref<7x?xindex>, %v: memref<?x8xindex>, %o: memref<7x8xindex>) {
  linalg.generic {
      indexing_maps = [affine_map<(h, e, j) -> (h, j)>,
                       affine_map<(h, e, j) -> (j, e)>,
                       affine_map<(h, e, j) -> (h, e)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<7x?xindex>, memref<?x8xindex>) outs(%o : memref<7x8xindex>) {
  ^bb0(%a: index, %b: index, %c: index):
    %m = arith.muli %a, %b : index
    %s = arith.addi %c, %m : index
    linalg.yield %s : index
  }
  return
}

// -----

// A streamed f64 projection is not for the explicit vector loops (f32
// lanes): its chunks are of 2048 and LLVM vectorizes the scalar loops;
// nothing is prefetched.
// CHECK-LABEL: func.func @large_projection_f64
// CHECK: scf.for %{{.*}} = %{{.*}} to %c4096{{.*}} step %c2048
// CHECK-NOT: vector.reduction
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @large_projection_f64(%x: memref<?x4096xf64>, %w: memref<2048x4096xf64>,
                                %y: memref<?x2048xf64>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x4096xf64>, memref<2048x4096xf64>) outs(%y : memref<?x2048xf64>) {
  ^bb0(%a: f64, %b: f64, %c: f64):
    %p = arith.mulf %a, %b : f64
    %s = arith.addf %c, %p : f64
    linalg.yield %s : f64
  }
  return
}

// -----

// A streamed weight 8192 deep: with 32 vector registers its packed panels
// (64 columns, 2 MiB) overflow L2, and the packed form takes over from 33
// tokens; with 16 (16 columns, 512 KiB) from 20.
// CHECK-LABEL: func.func @deep_streamed_weight
// CHECK: arith.cmpi uge, %{{.*}}, %c20
// WIDE-LABEL: func.func @deep_streamed_weight
// WIDE: arith.cmpi uge, %{{.*}}, %c33
func.func @deep_streamed_weight(%x: memref<?x8192xf32>, %w: memref<1024x8192xf32>,
                                %y: memref<?x1024xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8192xf32>, memref<1024x8192xf32>) outs(%y : memref<?x1024xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// The explicit vector loops take any f32 sum of inputs read contiguously
// along the reduction: here a bf16 weight read through (n floordiv 2, e)
// (widened in the loop), a scale s[e] and a scalar; 4100 deep, so the last
// chunk (4 elements) runs as the scalar tail; 2056 columns, the last block
// of 8. The prefetch takes the weight's map at the clamped column.
// CHECK-LABEL: func.func @streamed_mapped_weight
// CHECK: scf.for %{{.*}} = %{{.*}} to %c4100{{.*}} step %c1024
// CHECK: scf.for %[[E:.*]] = {{.*}} step %c8{{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK:   %[[WROW:.*]] = affine.apply #{{.*}}(%{{.*}}, %{{.*}}, %[[E]])
// CHECK:   %[[WV:.*]] = vector.load %{{.*}}[%[[WROW]], %[[E]]] : memref<1028x4100xbf16>, vector<8xbf16>
// CHECK:   vector.load %{{.*}}[%[[E]]] : memref<4100xf32>, vector<8xf32>
// CHECK:   arith.extf %[[WV]] : vector<8xbf16> to vector<8xf32>
// CHECK:   %[[PE:.*]] = arith.minui %{{.*}}, %c4099
// CHECK:   %[[PROW:.*]] = affine.apply #{{.*}}(%{{.*}}, %{{.*}}, %[[PE]])
// CHECK:   memref.prefetch %{{.*}}[%[[PROW]], %[[PE]]], read, locality<2>, data : memref<1028x4100xbf16>
// CHECK: vector.reduction <add>
func.func @streamed_mapped_weight(%x: memref<?x4100xf32>, %w: memref<1028x4100xbf16>,
                                  %s: memref<4100xf32>, %k: f32,
                                  %y: memref<?x2056xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n floordiv 2, e)>,
                       affine_map<(t, n, e) -> (e)>,
                       affine_map<(t, n, e) -> ()>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w, %s, %k : memref<?x4100xf32>, memref<1028x4100xbf16>, memref<4100xf32>, f32)
      outs(%y : memref<?x2056xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32, %kk: f32, %acc: f32):
    %bw = arith.extf %b : bf16 to f32
    %p = arith.mulf %a, %bw : f32
    %q = arith.mulf %p, %c : f32
    %r = arith.mulf %q, %kk : f32
    %sum = arith.addf %r, %acc : f32
    linalg.yield %sum : f32
  }
  return
}

// -----

// An input read along the tokens only (a per-token scale b[t]) is not a
// row along the reduction: the scalar loops, chunks of 2048, no prefetch.
// CHECK-LABEL: func.func @streamed_token_scale
// CHECK: scf.for %{{.*}} = %{{.*}} to %c4096{{.*}} step %c2048
// CHECK-NOT: vector.reduction
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @streamed_token_scale(%x: memref<?x4096xf32>, %w: memref<2048x4096xf32>,
                                %b: memref<?xf32>, %y: memref<?x2048xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w, %b : memref<?x4096xf32>, memref<2048x4096xf32>, memref<?xf32>)
      outs(%y : memref<?x2048xf32>) {
  ^bb0(%a: f32, %c: f32, %d: f32, %acc: f32):
    %p = arith.mulf %a, %c : f32
    %q = arith.mulf %p, %d : f32
    %sum = arith.addf %q, %acc : f32
    linalg.yield %sum : f32
  }
  return
}

// -----

// 3584 deep (Qwen2.5-7B's): chunks of 1024 and a last of 512, in which a
// step prefetches two runs of lanes of the next block's first chunk (its
// step r x 2 on), so that the shorter last chunk covers all of it; the
// second prefetch only in the last chunk.
// CHECK-LABEL: func.func @ragged_last_chunk
// CHECK: scf.for %[[E0:.*]] = %{{.*}} to %c3584{{.*}} step %c1024
// CHECK:   %[[NEXT:.*]] = arith.addi %[[E0]], %c1024
// CHECK:   %[[LAST:.*]] = arith.cmpi uge, %[[NEXT]], %c3584
// CHECK:   %[[SHIFT:.*]] = arith.select %[[LAST]], %{{.*}}, %c1024
// CHECK:   scf.parallel {{.*}} step (%c4{{.*}}, %c2{{.*}})
// CHECK:     %[[IN0:.*]] = arith.cmpi ult, %{{.*}}, %c2
// CHECK:     %[[ROW0:.*]] = arith.minui %{{.*}}, %c1023
// CHECK:     scf.for %[[E:.*]] = %[[E0]] to %{{.*}} step %c8
// CHECK:       %[[AHEAD:.*]] = arith.addi %[[E]], %[[SHIFT]]
// CHECK:       %[[REL:.*]] = arith.subi %[[E]], %[[E0]]
// CHECK:       %[[TWICE:.*]] = arith.muli %[[REL]], %c2
// CHECK:       %[[AT:.*]] = arith.select %[[LAST]], %[[TWICE]], %[[AHEAD]]
// CHECK:       %[[EL0:.*]] = arith.minui %[[AT]], %c3583
// CHECK:       scf.if %[[IN0]] {
// CHECK-NEXT:    memref.prefetch %{{.*}}[%[[ROW0]], %[[EL0]]]
// CHECK:       %[[AT1:.*]] = arith.addi %[[AT]], %c8
// CHECK:       %[[EL1:.*]] = arith.minui %[[AT1]], %c3583
// CHECK:       %[[IN0_LAST:.*]] = arith.andi %[[IN0]], %[[LAST]]
// CHECK:       scf.if %[[IN0_LAST]] {
// CHECK-NEXT:    memref.prefetch %{{.*}}[%[[ROW0]], %[[EL1]]]
func.func @ragged_last_chunk(%x: memref<?x3584xf32>, %w: memref<1024x3584xf32>,
                             %y: memref<?x1024xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, n, e) -> (t, e)>,
                       affine_map<(t, n, e) -> (n, e)>,
                       affine_map<(t, n, e) -> (t, n)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x3584xf32>, memref<1024x3584xf32>) outs(%y : memref<?x1024xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}
