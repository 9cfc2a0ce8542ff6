// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32" -canonicalize | FileCheck %s --enable-var-scope

// A decode step's projection with compute bf16 on f32 operands: the
// payload rounds x and W to bf16 and widens them back at every step. x is
// read by all 128 columns, so it is rounded once into a buffer of its own
// before the lowered form, which reads it as it is and frees it after; W's
// elements are each read once (T = 1), so W keeps its rounding in the loop.
// CHECK-LABEL: func.func @decode_step
// CHECK-SAME: (%[[X:.*]]: memref<1x64xf32>, %[[W:.*]]: memref<128x64xf32>, %[[Y:.*]]: memref<1x128xf32>)
// CHECK: %[[XR:.*]] = memref.alloc() : memref<1x64xf32>
// CHECK-NOT: memref.alloc
// CHECK: linalg.generic {{.*}} ins(%[[X]] : memref<1x64xf32>) outs(%[[XR]] : memref<1x64xf32>)
// CHECK:   %[[N:.*]] = arith.truncf %{{.*}} : f32 to bf16
// CHECK:   %[[WIDE:.*]] = arith.extf %[[N]] : bf16 to f32
// CHECK:   linalg.yield %[[WIDE]]
// CHECK-NOT: memref.alloc
// CHECK: scf.parallel
// CHECK:   scf.for
// CHECK:     %[[XE:.*]] = memref.load %[[XR]][%c0, %{{.*}}] : memref<1x64xf32>
// CHECK:     %[[WL:.*]] = memref.load %[[W]]
// CHECK:     %[[WN:.*]] = arith.truncf %[[WL]] : f32 to bf16
// CHECK:     %[[WE:.*]] = arith.extf %[[WN]] : bf16 to f32
// CHECK:     arith.mulf %[[XE]], %[[WE]]
// CHECK:   scf.yield
// CHECK: memref.dealloc %[[XR]] : memref<1x64xf32>
// CHECK-NEXT: return
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @decode_step(%x: memref<1x64xf32>, %w: memref<128x64xf32>, %y: memref<1x128xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<1x64xf32>, memref<128x64xf32>) outs(%y : memref<1x128xf32>) {
  ^bb0(%a: f32, %b: f32, %s: f32):
    %0 = arith.truncf %a : f32 to bf16
    %1 = arith.extf %0 : bf16 to f32
    %2 = arith.truncf %b : f32 to bf16
    %3 = arith.extf %2 : bf16 to f32
    %4 = arith.mulf %1, %3 : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return
}

// -----

// A prefill projection (packed form, no AVX512-BF16) over a dynamic number
// of tokens with both operands rounded to bf16: x is read by every column
// and W by every token (an unknown number), so both are rounded once, at
// the projection's place, before the test of T; both forms (packed and
// dot-product) read the rounded buffers, which are freed after the test.
// CHECK-LABEL: func.func @prefill_both
// CHECK-SAME: (%[[X:.*]]: memref<?x64xf32>, %[[W:.*]]: memref<128x64xf32>, %[[Y:.*]]: memref<?x128xf32>)
// CHECK: memref.dim %[[X]], %c0
// CHECK: %[[T:.*]] = memref.dim %[[X]], %c0
// CHECK-NEXT: %[[XR:.*]] = memref.alloc(%[[T]]) : memref<?x64xf32>
// CHECK: linalg.generic {{.*}} ins(%[[X]] : memref<?x64xf32>) outs(%[[XR]] : memref<?x64xf32>)
// CHECK: %[[WR:.*]] = memref.alloc() : memref<128x64xf32>
// CHECK: linalg.generic {{.*}} ins(%[[W]] : memref<128x64xf32>) outs(%[[WR]] : memref<128x64xf32>)
// CHECK: scf.if
// CHECK:   vector.load %[[WR]]
// CHECK:   memref.load %[[XR]]
// CHECK-NOT: arith.truncf
// CHECK: } else {
// CHECK:   memref.load %[[XR]]
// CHECK-NOT: arith.truncf
// CHECK: }
// CHECK: memref.dealloc %[[XR]]
// CHECK: memref.dealloc %[[WR]]
// CHECK-NEXT: return
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @prefill_both(%x: memref<?x64xf32>, %w: memref<128x64xf32>, %y: memref<?x128xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xf32>, memref<128x64xf32>) outs(%y : memref<?x128xf32>) {
  ^bb0(%a: f32, %b: f32, %s: f32):
    %0 = arith.truncf %a : f32 to bf16
    %1 = arith.extf %0 : bf16 to f32
    %2 = arith.truncf %b : f32 to bf16
    %3 = arith.extf %2 : bf16 to f32
    %4 = arith.mulf %1, %3 : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return
}

// -----

// Not hoisted: a rounding toward zero (kept as it is), and an input the
// payload also uses unrounded (x_bf16 * x).
// CHECK-LABEL: func.func @not_hoisted
// CHECK-NOT: memref.alloc
// CHECK: arith.truncf %{{.*}} toward_zero : f32 to bf16
// CHECK-LABEL: func.func @used_twice
// CHECK-NOT: memref.alloc
// CHECK: arith.truncf
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @not_hoisted(%x: memref<1x64xf32>, %w: memref<128x64xbf16>, %y: memref<1x128xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<1x64xf32>, memref<128x64xbf16>) outs(%y : memref<1x128xf32>) {
  ^bb0(%a: f32, %b: bf16, %s: f32):
    %0 = arith.truncf %a toward_zero : f32 to bf16
    %1 = arith.extf %0 : bf16 to f32
    %3 = arith.extf %b : bf16 to f32
    %4 = arith.mulf %1, %3 : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return
}
func.func @used_twice(%x: memref<1x64xf32>, %w: memref<128x64xbf16>, %y: memref<1x128xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<1x64xf32>, memref<128x64xbf16>) outs(%y : memref<1x128xf32>) {
  ^bb0(%a: f32, %b: bf16, %s: f32):
    %0 = arith.truncf %a : f32 to bf16
    %1 = arith.extf %0 : bf16 to f32
    %2 = arith.mulf %1, %a : f32
    %3 = arith.extf %b : bf16 to f32
    %4 = arith.mulf %2, %3 : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return
}

// -----

// Not hoisted: a projection inside a loop, where the copy would be made
// (and allocated) at every iteration.
// CHECK-LABEL: func.func @in_a_loop
// CHECK-NOT: memref.alloc
// CHECK: arith.truncf %{{.*}} : f32 to bf16
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @in_a_loop(%x: memref<1x64xf32>, %w: memref<128x64xbf16>, %y: memref<1x128xf32>, %steps: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %steps step %c1 {
    linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
        ins(%x, %w : memref<1x64xf32>, memref<128x64xbf16>) outs(%y : memref<1x128xf32>) {
    ^bb0(%a: f32, %b: bf16, %s: f32):
      %0 = arith.truncf %a : f32 to bf16
      %1 = arith.extf %0 : bf16 to f32
      %3 = arith.extf %b : bf16 to f32
      %4 = arith.mulf %1, %3 : f32
      %5 = arith.addf %s, %4 : f32
      linalg.yield %5 : f32
    }
  }
  return
}
