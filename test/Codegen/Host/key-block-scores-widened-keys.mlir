// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops=vector-registers=32 -canonicalize | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops=vector-registers=16 -canonicalize | FileCheck %s --check-prefix=AVX2

// A decode step's scores on a bf16 cache, two KV heads (h floordiv 7):
// per block of 16 keys and group of 7 query heads, the keys are widened
// once into an f32 panel on the stack, and each of the group's rows reads
// the panel (no widening per row).
// With 16 registers (AVX2) the blocks are of 8 keys.
// AVX2-LABEL: func.func @decode_scores_two_kv_heads
// AVX2: scf.parallel (%{{.*}}, %{{.*}}) = (%c0, %c0) to (%{{.*}}, %c14) step (%c8, %c7)
// AVX2: memref.alloca() {alignment = 64 : i64} : memref<8x64xf32>
// AVX2-LABEL: func.func @decode_scores_one_kv_head
// AVX2: memref.alloca() {alignment = 64 : i64} : memref<8x64xf32>
// AVX2-LABEL: func.func @no_panel
// AVX2-NOT: memref.alloca
// CHECK-LABEL: func.func @decode_scores_two_kv_heads
// CHECK-SAME: (%[[Q:.*]]: memref<1x14x64xf32>, %[[K:.*]]: memref<?x2x64xbf16>, %[[S:.*]]: memref<1x14x?xf32>)
// CHECK-DAG: %[[C7:.*]] = arith.constant 7 : index
// CHECK-DAG: %[[C14:.*]] = arith.constant 14 : index
// CHECK-DAG: %[[C16:.*]] = arith.constant 16 : index
// CHECK: scf.parallel (%[[J:.*]], %[[G:.*]]) = (%{{.*}}, %{{.*}}) to (%{{.*}}, %[[C14]]) step (%[[C16]], %[[C7]])
// CHECK:   %[[END:.*]] = arith.addi %[[G]], %[[C7]] : index
// CHECK:   %[[PANEL:.*]] = memref.alloca() {alignment = 64 : i64} : memref<16x64xf32>
// CHECK:   scf.for %[[E:.*]] =
// CHECK:     %[[KR:.*]] = vector.load %[[K]][%[[J]], %{{.*}}, %[[E]]] : memref<?x2x64xbf16>, vector<16xbf16>
// CHECK:     %[[W:.*]] = arith.extf %[[KR]] : vector<16xbf16> to vector<16xf32>
// CHECK:     vector.store %[[W]], %[[PANEL]][%{{.*}}, %[[E]]] : memref<16x64xf32>, vector<16xf32>
// CHECK:   scf.for %[[H:.*]] = %[[G]] to %[[END]] step
// CHECK:     scf.for {{.*}} -> (vector<16xf32>,
// CHECK:       vector.load %[[Q]][%{{.*}}, %[[H]], %{{.*}}]
// CHECK-NOT:   arith.extf
// CHECK:       vector.load %[[PANEL]][%{{.*}}, %{{.*}}] : memref<16x64xf32>, vector<16xf32>
// CHECK-NOT:   arith.extf
// CHECK:     vector.shuffle
// CHECK: scf.reduce
func.func @decode_scores_two_kv_heads(%q: memref<1x14x64xf32>, %k: memref<?x2x64xbf16>,
                                      %s: memref<1x14x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<1x14x64xf32>, memref<?x2x64xbf16>) outs(%s : memref<1x14x?xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32):
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %a, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// One KV head (its axis of size 1 serves every row): one panel a block of
// keys for all 7 heads, a bf16 query widened as before.
// CHECK-LABEL: func.func @decode_scores_one_kv_head
// CHECK: scf.parallel (%[[J:.*]]) =
// CHECK:   %[[PANEL:.*]] = memref.alloca() {alignment = 64 : i64} : memref<16x64xf32>
// CHECK:   vector.store %{{.*}}, %[[PANEL]]
// CHECK:   scf.for
// CHECK:     scf.for
// CHECK:       arith.extf %{{.*}} : vector<16xbf16> to vector<16xf32>
// CHECK:       vector.load %[[PANEL]]
func.func @decode_scores_one_kv_head(%q: memref<1x7x64xbf16>, %k: memref<?x1x64xbf16>,
                                     %s: memref<1x7x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<1x7x64xbf16>, memref<?x1x64xbf16>) outs(%s : memref<1x7x?xf32>) {
  ^bb0(%a: bf16, %b: bf16, %c: f32):
    %v = arith.extf %a : bf16 to f32
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %v, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Left to the key-block form: f32 keys (nothing to widen), one row (no one
// to share a panel with), and heads whose group (floordiv 4) does not
// divide their 14.
// CHECK-LABEL: func.func @no_panel
// CHECK-NOT: memref.alloca
// CHECK: return
func.func @no_panel(%q: memref<1x14x64xf32>, %kf: memref<?x2x64xf32>,
                    %q1: memref<1x1x64xf32>, %kb: memref<?x1x64xbf16>,
                    %k4: memref<?x4x64xbf16>, %s: memref<1x14x?xf32>,
                    %s1: memref<1x1x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %kf : memref<1x14x64xf32>, memref<?x2x64xf32>) outs(%s : memref<1x14x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q1, %kb : memref<1x1x64xf32>, memref<?x1x64xbf16>) outs(%s1 : memref<1x1x?xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32):
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %a, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 4, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k4 : memref<1x14x64xf32>, memref<?x4x64xbf16>) outs(%s : memref<1x14x?xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32):
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %a, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}
