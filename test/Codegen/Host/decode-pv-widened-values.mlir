// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops=vector-registers=32 -canonicalize | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops=vector-registers=16 -canonicalize | FileCheck %s --check-prefix=AVX2

// A decode step's P·V on a bf16 cache, two KV heads (h floordiv 7), in a
// threaded loop: per block of 16 keys, V's rows are widened to f32 once
// into a panel on the stack [16, 2, 64], and every head (jams of 4 that
// cross KV heads, then single rows) reads its KV head's rows from the
// panel, with no widening of its own.
// The same panel with 16 registers (AVX2).
// AVX2-LABEL: func.func @decode_pv_two_kv_heads
// AVX2: memref.alloca() {alignment = 64 : i64} : memref<16x2x64xf32>
// AVX2-LABEL: func.func @no_panel
// AVX2-NOT: memref.alloca
// CHECK-LABEL: func.func @decode_pv_two_kv_heads
// CHECK-SAME: (%[[P:.*]]: memref<1x14x?xf32>, %[[V:.*]]: memref<?x2x64xbf16>, %[[O:.*]]: memref<1x14x64xf32>)
// CHECK: scf.for %[[J0:.*]] = %{{.*}} to %{{.*}} step %c16
// CHECK:   %[[END:.*]] = arith.minsi
// CHECK:   %[[PANEL:.*]] = memref.alloca() {alignment = 64 : i64} : memref<16x2x64xf32>
// CHECK:   %[[COUNT:.*]] = arith.subi %[[END]], %[[J0]]
// CHECK:   scf.for %[[K:.*]] = %c0 to %[[COUNT]] step %c1
// CHECK:     scf.for %[[H:.*]] = %c0 to %c2 step %c1
// CHECK:       %[[ROW:.*]] = arith.addi %[[J0]], %[[K]]
// CHECK:       %[[VR:.*]] = vector.load %[[V]][%[[ROW]], %[[H]], %c0] : memref<?x2x64xbf16>, vector<64xbf16>
// CHECK:       %[[W:.*]] = arith.extf %[[VR]] : vector<64xbf16> to vector<64xf32>
// CHECK:       vector.store %[[W]], %[[PANEL]][%[[K]], %[[H]], %c0]
// CHECK:   scf.parallel
// CHECK:     scf.for %[[J:.*]] = %[[J0]] to %[[END]]
// CHECK-NOT:   arith.extf
// CHECK:       %[[OFF:.*]] = arith.subi %[[J]], %[[J0]]
// CHECK:       vector.load %[[PANEL]][%[[OFF]], %{{.*}}, %c0] : memref<16x2x64xf32>, vector<64xf32>
// CHECK-NOT:   arith.extf
// CHECK:     scf.yield
// CHECK:   scf.parallel
// CHECK:     vector.load %[[PANEL]]
func.func @decode_pv_two_kv_heads(%p: memref<1x14x?xf32>, %v: memref<?x2x64xbf16>,
                                  %o: memref<1x14x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  scf.parallel (%i) = (%c0) to (%c2) step (%c1) {
    linalg.generic {
        indexing_maps = [affine_map<(t, h, d, j) -> (t, h, j)>,
                         affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                         affine_map<(t, h, d, j) -> (t, h, d)>],
        iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
        ins(%p, %v : memref<1x14x?xf32>, memref<?x2x64xbf16>) outs(%o : memref<1x14x64xf32>) {
    ^bb0(%a: f32, %b: bf16, %c: f32):
      %w = arith.extf %b : bf16 to f32
      %m = arith.mulf %a, %w : f32
      %r = arith.addf %c, %m : f32
      linalg.yield %r : f32
    }
    scf.reduce
  }
  return
}

// -----

// Left as they were: f32 values (nothing to widen), and bf16 values that
// the payload rounds rather than only widens.
// CHECK-LABEL: func.func @no_panel
// CHECK-NOT: memref.alloca
// CHECK: return
func.func @no_panel(%p: memref<1x7x?xf32>, %vf: memref<?x1x64xf32>,
                    %vb: memref<?x1x64xbf16>, %o: memref<1x7x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  scf.parallel (%i) = (%c0) to (%c2) step (%c1) {
    linalg.generic {
        indexing_maps = [affine_map<(t, h, d, j) -> (t, h, j)>,
                         affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                         affine_map<(t, h, d, j) -> (t, h, d)>],
        iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
        ins(%p, %vf : memref<1x7x?xf32>, memref<?x1x64xf32>) outs(%o : memref<1x7x64xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %m = arith.mulf %a, %b : f32
      %r = arith.addf %c, %m : f32
      linalg.yield %r : f32
    }
    linalg.generic {
        indexing_maps = [affine_map<(t, h, d, j) -> (t, h, j)>,
                         affine_map<(t, h, d, j) -> (j, h floordiv 7, d)>,
                         affine_map<(t, h, d, j) -> (t, h, d)>],
        iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
        ins(%p, %vb : memref<1x7x?xf32>, memref<?x1x64xbf16>) outs(%o : memref<1x7x64xf32>) {
    ^bb0(%a: f32, %b: bf16, %c: f32):
      %t = arith.truncf %a : f32 to bf16
      %x = arith.mulf %t, %b : bf16
      %w = arith.extf %x : bf16 to f32
      %r = arith.addf %c, %w : f32
      linalg.yield %r : f32
    }
    scf.reduce
  }
  return
}

