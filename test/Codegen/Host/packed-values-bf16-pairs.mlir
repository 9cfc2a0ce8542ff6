// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32 bf16-dot-product=true" -canonicalize -mlir-print-local-scope | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32" | FileCheck %s --check-prefix=OFF
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32 bf16-dot-product=true amx-tiles=true" -canonicalize -mlir-print-local-scope | FileCheck %s --check-prefix=AMX --enable-var-scope
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=16 bf16-dot-product=true" | FileCheck %s --check-prefix=OFF

// A prefill block's P·V (GQA: 7 query heads on one KV head) whose
// probabilities attn.sdpa rounds to bf16 (round_probabilities) and whose V
// is a bf16 cache, on a CPU with AVX512-BF16. The tile's probability rows
// (t, h linearized) are made bf16 pairs once, each run of 32 keys a masked
// load (the keys past the tile's end zero), rounded, each pair swapped
// (key j into the odd slot, which vdpbf16ps adds first); V's rows become a
// panel of pairs of keys [ceil(keys / 2), 128], row k holding keys 2k + 1
// and 2k interleaved (a missing last key zero, its row clamped in bounds
// and not used); blocks of 6 rows then run over the pairs of keys, the
// panel's row loaded as four vectors and each row's pair broadcast as one
// 32-bit word, one avx512.dot per vector of 16 sums; the rows past the
// last whole block go one at a time. Without the option, or with AVX2's
// 16 registers, the f32 form (no bf16 pairs) runs.
// CHECK-LABEL: func.func @gqa_pv_pairs
// CHECK-SAME: (%[[P:.*]]: memref<?x7x?xf32>, %[[V:.*]]: memref<?x1x64xbf16>, %[[O:.*]]: memref<?x7x64xf32>)
// CHECK: %[[T:.*]] = memref.dim %[[P]], %c0
// CHECK: %[[KEYS:.*]] = memref.dim %[[P]], %c2
// CHECK: %[[ROWS:.*]] = arith.muli %[[T]], %c7
// CHECK: %[[STEPS:.*]] = affine.apply affine_map<()[s0] -> ((s0 + 1) floordiv 2)>()[%[[KEYS]]]
// CHECK: %[[PADDED:.*]] = affine.apply affine_map<()[s0] -> (((s0 + 31) floordiv 32) * 32)>()[%[[KEYS]]]
// CHECK: %[[PP:.*]] = memref.alloc(%[[ROWS]], %[[PADDED]]) {alignment = 64 : i64} : memref<?x?xbf16>
// CHECK: scf.for %[[R:.*]] = %c0 to %[[ROWS]] step %c1
// CHECK:   %[[TH:.*]]:2 = affine.delinearize_index %[[R]] into (%[[T]], 7)
// CHECK:   scf.for %[[J0:.*]] = %c0 to %[[PADDED]] step %c32
// CHECK:     %[[LEFT:.*]] = arith.subi %[[KEYS]], %[[J0]]
// CHECK:     %[[MASK:.*]] = vector.create_mask %[[LEFT]] : vector<32xi1>
// CHECK:     %[[ROW:.*]] = vector.maskedload %[[P]][%[[TH]]#0, %[[TH]]#1, %[[J0]]], %[[MASK]], %{{.*}} : memref<?x7x?xf32>, vector<32xi1>, vector<32xf32> into vector<32xf32>
// CHECK:     %[[RB:.*]] = arith.truncf %[[ROW]] : vector<32xf32> to vector<32xbf16>
// CHECK:     %[[RS:.*]] = vector.shuffle %[[RB]], %[[RB]] [1, 0, 3, 2, {{.*}}, 31, 30]
// CHECK:     vector.store %[[RS]], %[[PP]][%[[R]], %[[J0]]]
// CHECK: %[[PANEL:.*]] = memref.alloc(%[[STEPS]]) {alignment = 64 : i64} : memref<?x128xbf16>
// CHECK: %[[LAST:.*]] = arith.subi %[[KEYS]], %c1
// CHECK: scf.for %[[K:.*]] = %c0 to %[[STEPS]] step %c1
// CHECK:   %[[EVEN:.*]] = arith.addi %[[K]], %[[K]]
// CHECK:   %[[ODD:.*]] = arith.addi %[[EVEN]], %c1
// CHECK:   %[[HAS:.*]] = arith.cmpi slt, %[[ODD]], %[[KEYS]]
// CHECK:   %[[IN:.*]] = arith.minsi %[[ODD]], %[[LAST]]
// CHECK:   %[[VO:.*]] = vector.load %[[V]][%[[IN]], %c0, %c0] : memref<?x1x64xbf16>, vector<64xbf16>
// CHECK:   %[[VOZ:.*]] = arith.select %[[HAS]], %[[VO]], %{{.*}} : vector<64xbf16>
// CHECK:   %[[VE:.*]] = vector.load %[[V]][%[[EVEN]], %c0, %c0] : memref<?x1x64xbf16>, vector<64xbf16>
// CHECK:   %[[VP:.*]] = vector.interleave %[[VOZ]], %[[VE]] : vector<64xbf16> -> vector<128xbf16>
// CHECK:   vector.store %[[VP]], %[[PANEL]][%[[K]], %c0] : memref<?x128xbf16>, vector<128xbf16>
// CHECK: scf.parallel (%[[R0:.*]]) = (%c0) to (%{{.*}}) step (%c6)
// CHECK-COUNT-6: vector.load %[[O]][%{{.*}}, %{{.*}}, %c0] : memref<?x7x64xf32>, vector<64xf32>
// CHECK:   scf.for %[[PK:.*]] = %c0 to %[[STEPS]] step %c1 iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:     %[[W0:.*]] = vector.load %[[PANEL]][%[[PK]], %c0] : memref<?x128xbf16>, vector<32xbf16>
// CHECK:     %[[W3:.*]] = vector.load %[[PANEL]][%[[PK]], %c96] : memref<?x128xbf16>, vector<32xbf16>
// CHECK:     %[[PJ:.*]] = arith.addi %[[PK]], %[[PK]]
// CHECK:     %[[PAIR:.*]] = vector.load %[[PP]][%[[R0]], %[[PJ]]] : memref<?x?xbf16>, vector<2xbf16>
// CHECK:     %[[WORD:.*]] = vector.bitcast %[[PAIR]] : vector<2xbf16> to vector<1xi32>
// CHECK:     %[[X:.*]] = vector.extract %[[WORD]][0] : i32 from vector<1xi32>
// CHECK:     %[[XB:.*]] = vector.broadcast %[[X]] : i32 to vector<16xi32>
// CHECK:     %[[XP:.*]] = vector.bitcast %[[XB]] : vector<16xi32> to vector<32xbf16>
// CHECK:     x86vector.avx512.dot %{{.*}}, %[[W0]], %[[XP]] : vector<32xbf16> -> vector<16xf32>
// CHECK-COUNT-23: x86vector.avx512.dot
// CHECK:     scf.yield
// CHECK-COUNT-6: vector.store %{{.*}}, %[[O]][%{{.*}}, %{{.*}}, %c0] : memref<?x7x64xf32>, vector<64xf32>
// CHECK: scf.parallel (%{{.*}}) = (%{{.*}}) to (%[[ROWS]]) step (%c1)
// CHECK:   scf.for
// CHECK-COUNT-4: x86vector.avx512.dot
// CHECK:   vector.store %{{.*}}, %[[O]]
// CHECK: memref.dealloc %[[PANEL]]
// CHECK: memref.dealloc %[[PP]]
// With AMX tiles: the panel has a row per pair of keys of whole steps of
// 32 (ceil(keys / 32) x 16), the rows past the keys' pairs zeroed once; the
// rows run in blocks of 16 as AMX tile products over those steps (four sum
// tiles staged through a 16 x 64 buffer, the probabilities' pairs a tile of
// 16 rows x 32 keys, V's a tile of 16 pair rows x 16 columns per 16), then
// in blocks of 6 and single rows as vdpbf16ps.
// AMX-LABEL: func.func @gqa_pv_pairs
// AMX: %[[KEYS:.*]] = memref.dim %{{.*}}, %c2 : memref<?x7x?xf32>
// AMX: %[[PSTEPS:.*]] = affine.apply affine_map<()[s0] -> ((s0 + 1) floordiv 2)>()[%[[KEYS]]]
// AMX: %[[PROBS:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<?x?xbf16>
// AMX: %[[STEPS:.*]] = affine.apply affine_map<()[s0] -> ((s0 + 31) floordiv 32)>()[%[[KEYS]]]
// AMX: %[[PROWS:.*]] = affine.apply affine_map<()[s0] -> (((s0 + 31) floordiv 32) * 16)>()[%[[KEYS]]]
// AMX: %[[PANEL:.*]] = memref.alloc(%[[PROWS]]) {alignment = 64 : i64} : memref<?x128xbf16>
// AMX: scf.for %[[Z:.*]] = %[[PSTEPS]] to %[[PROWS]] step %c1 {
// AMX-NEXT: vector.store %{{.*}}, %[[PANEL]][%[[Z]], %c0] : memref<?x128xbf16>, vector<128xbf16>
// AMX: scf.for %{{.*}} = %c0 to %[[PSTEPS]] step %c1 {
// AMX: %[[REST16:.*]] = arith.remui %[[ROWS:.*]], %c16 : index
// AMX: %[[END16:.*]] = arith.subi %[[ROWS]], %[[REST16]] : index
// AMX: scf.parallel (%[[R0:.*]]) = (%c0) to (%[[END16]]) step (%c16) {
// AMX: %[[STAGE:.*]] = memref.alloca() : memref<16x64xf32>
// AMX-COUNT-4: amx.tile_load %[[STAGE]]
// AMX: scf.for %[[K:.*]] = %c0 to %[[STEPS]] step %c1 iter_args(
// AMX: amx.tile_load %[[PROBS]][%[[R0]], %{{.*}}] : memref<?x?xbf16> into !amx.tile<16x32xbf16>
// AMX-COUNT-4: amx.tile_mulf
// AMX: scf.parallel (%{{.*}}) = (%[[END16]]) to (%{{.*}}) step (%c6) {
// AMX-NOT: amx.
// AMX: x86vector.avx512.dot
// AMX: scf.parallel (%{{.*}}) = (%{{.*}}) to (%[[ROWS]]) step (%c1) {
// AMX-NOT: amx.
// AMX: x86vector.avx512.dot
// OFF-LABEL: func.func @gqa_pv_pairs
// OFF-NOT: x86vector
// OFF: return
func.func @gqa_pv_pairs(%p: memref<?x7x?xf32>, %v: memref<?x1x64xbf16>,
                        %o: memref<?x7x64xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, d, j) -> (t, h, j)>,
                       affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                       affine_map<(t, h, d, j) -> (t, h, d)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<?x7x?xf32>, memref<?x1x64xbf16>) outs(%o : memref<?x7x64xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32):
    %vw = arith.extf %b : bf16 to f32
    %pr = arith.truncf %a : f32 to bf16
    %pw = arith.extf %pr : bf16 to f32
    %m = arith.mulf %pw, %vw : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Probabilities already bf16 (attn.sdpa's loop form rounds each tile's
// once, into a bf16 tensor): their runs are loaded as they are.
// CHECK-LABEL: func.func @bf16_probabilities
// CHECK-SAME: (%[[P:.*]]: memref<?x7x?xbf16>,
// CHECK: scf.for
// CHECK:   scf.for
// CHECK:     %[[PB:.*]] = vector.maskedload %[[P]]{{.*}} : memref<?x7x?xbf16>, vector<32xi1>, vector<32xbf16> into vector<32xbf16>
// CHECK-NOT: arith.truncf
// CHECK:     vector.shuffle %[[PB]], %[[PB]] [1, 0, 3, 2,
// CHECK: scf.parallel
// CHECK-COUNT-24: x86vector.avx512.dot
func.func @bf16_probabilities(%p: memref<?x7x?xbf16>, %v: memref<?x1x64xbf16>,
                              %o: memref<?x7x64xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, d, j) -> (t, h, j)>,
                       affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                       affine_map<(t, h, d, j) -> (t, h, d)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<?x7x?xbf16>, memref<?x1x64xbf16>) outs(%o : memref<?x7x64xf32>) {
  ^bb0(%a: bf16, %b: bf16, %c: f32):
    %vw = arith.extf %b : bf16 to f32
    %pw = arith.extf %a : bf16 to f32
    %m = arith.mulf %pw, %vw : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// An f32 V (an f32 cache under bf16 compute) is rounded as its rows are
// packed; a head dim of 128 takes two blocks of 64 columns, each with its
// own panel of V's pairs and row loops.
// CHECK-LABEL: func.func @f32_values_two_blocks
// CHECK-SAME: (%{{.*}}: memref<?x7x?xf32>, %[[V:.*]]: memref<?x1x128xf32>,
// CHECK: %[[PANEL:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<?x128xbf16>
// CHECK: scf.for
// CHECK:   %[[VO:.*]] = vector.load %[[V]][%{{.*}}, %c0, %c0] : memref<?x1x128xf32>, vector<64xf32>
// CHECK:   arith.truncf %[[VO]] : vector<64xf32> to vector<64xbf16>
// CHECK:   vector.interleave
// CHECK: scf.parallel
// CHECK-COUNT-24: x86vector.avx512.dot
// CHECK: scf.parallel
// CHECK-COUNT-4: x86vector.avx512.dot
// CHECK: scf.for
// CHECK:   %[[VO2:.*]] = vector.load %[[V]][%{{.*}}, %c0, %c64] : memref<?x1x128xf32>, vector<64xf32>
// CHECK:   arith.truncf %[[VO2]] : vector<64xf32> to vector<64xbf16>
// CHECK: scf.parallel
// CHECK-COUNT-24: x86vector.avx512.dot
// CHECK: scf.parallel
// CHECK-COUNT-4: x86vector.avx512.dot
// CHECK-NOT: x86vector.avx512.dot
// CHECK: return
func.func @f32_values_two_blocks(%p: memref<?x7x?xf32>, %v: memref<?x1x128xf32>,
                                 %o: memref<?x7x128xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, d, j) -> (t, h, j)>,
                       affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                       affine_map<(t, h, d, j) -> (t, h, d)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<?x7x?xf32>, memref<?x1x128xf32>) outs(%o : memref<?x7x128xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %vr = arith.truncf %b : f32 to bf16
    %vw = arith.extf %vr : bf16 to f32
    %pr = arith.truncf %a : f32 to bf16
    %pw = arith.extf %pr : bf16 to f32
    %m = arith.mulf %pw, %vw : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Probabilities not rounded (attn.sdpa without round_probabilities): a
// product of an f32 and a bf16 value, which vdpbf16ps cannot form: the f32
// row panel.
// CHECK-LABEL: func.func @unrounded_probabilities
// CHECK-NOT: x86vector
// CHECK: return
func.func @unrounded_probabilities(%p: memref<?x7x?xf32>, %v: memref<?x1x64xbf16>,
                                   %o: memref<?x7x64xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, d, j) -> (t, h, j)>,
                       affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                       affine_map<(t, h, d, j) -> (t, h, d)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<?x7x?xf32>, memref<?x1x64xbf16>) outs(%o : memref<?x7x64xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32):
    %vw = arith.extf %b : bf16 to f32
    %m = arith.mulf %a, %vw : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// V's rows differ between rows (two KV heads in one tile): no row panel,
// so no pairs either.
// CHECK-LABEL: func.func @values_per_row
// CHECK-NOT: x86vector
// CHECK: return
func.func @values_per_row(%p: memref<?x14x?xf32>, %v: memref<?x2x64xbf16>,
                          %o: memref<?x14x64xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, d, j) -> (t, h, j)>,
                       affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                       affine_map<(t, h, d, j) -> (t, h, d)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<?x14x?xf32>, memref<?x2x64xbf16>) outs(%o : memref<?x14x64xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32):
    %vw = arith.extf %b : bf16 to f32
    %pr = arith.truncf %a : f32 to bf16
    %pw = arith.extf %pr : bf16 to f32
    %m = arith.mulf %pw, %vw : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// V read with a stride along the reduction only, but the probabilities
// read along another dim than the keys' (p[t, j, h]): not the pairs' layout.
// CHECK-LABEL: func.func @probabilities_not_along_keys
// CHECK-NOT: x86vector
// CHECK: return
func.func @probabilities_not_along_keys(%p: memref<?x?x7xf32>, %v: memref<?x1x64xbf16>,
                                        %o: memref<?x7x64xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, d, j) -> (t, j, h)>,
                       affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                       affine_map<(t, h, d, j) -> (t, h, d)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %v : memref<?x?x7xf32>, memref<?x1x64xbf16>) outs(%o : memref<?x7x64xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32):
    %vw = arith.extf %b : bf16 to f32
    %pr = arith.truncf %a : f32 to bf16
    %pw = arith.extf %pr : bf16 to f32
    %m = arith.mulf %pw, %vw : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  return
}
