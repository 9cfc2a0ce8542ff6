// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32 bf16-dot-product=true" -canonicalize | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32" | FileCheck %s --check-prefix=OFF
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=16 bf16-dot-product=true" | FileCheck %s --check-prefix=OFF

// A projection with compute bf16 and accumulate f32 (attn.linear's lowering:
// both operands rounded to bf16 and widened, the product added to an f32 sum)
// on a CPU with AVX512-BF16. The input's rows are copied once as bf16 with
// each pair swapped (element e into the odd slot, which vdpbf16ps adds
// first); each panel of 64 columns holds bf16 pairs [E/2, 128], row k holding
// every column's pair (2k, 2k + 1) swapped, packed from whole runs of 32 of
// each weight row (16 rows at a time, their 16 x 16 pairs transposed in
// registers as i32 lanes, each panel row a store of 16 pairs); the steps go
// over pairs, the panel's row loaded as four vectors of 16 pairs and each
// token's pair broadcast as one 32-bit word, one avx512.dot per vector of 16
// sums. The finished sums are stored as the f32 form's. Without the option,
// or with AVX2's 16 registers, the f32 form (no bf16 pairs) runs.
// CHECK-DAG: #[[$K0:.*]] = affine_map<(d0) -> (d0 floordiv 2)>
// CHECK-DAG: #[[$K1:.*]] = affine_map<(d0) -> (d0 floordiv 2 + 1)>
// CHECK-DAG: #[[$K8:.*]] = affine_map<(d0) -> (d0 floordiv 2 + 8)>
// CHECK-DAG: #[[$K15:.*]] = affine_map<(d0) -> (d0 floordiv 2 + 15)>
// CHECK-LABEL: func.func @round_both
// CHECK-SAME: (%[[X:.*]]: memref<32x64xf32>, %[[W:.*]]: memref<128x64xf32>, %[[Y:.*]]: memref<32x128xf32>)
// CHECK: %[[XP:.*]] = memref.alloc() : memref<32x64xbf16>
// CHECK: scf.parallel (%[[T:.*]]) =
// CHECK:   scf.for %[[E:.*]] = %c0 to %c64 step %c32
// CHECK:     %[[XR:.*]] = vector.load %[[X]][%[[T]], %[[E]]] : memref<32x64xf32>, vector<32xf32>
// CHECK:     %[[XB:.*]] = arith.truncf %[[XR]] : vector<32xf32> to vector<32xbf16>
// CHECK:     %[[XS:.*]] = vector.shuffle %[[XB]], %[[XB]] [1, 0, 3, 2, 5, 4, {{.*}}, 31, 30]
// CHECK:     vector.store %[[XS]], %[[XP]][%[[T]], %[[E]]]
// CHECK: scf.parallel (%[[N0:.*]]) = (%c0) to (%c128) step (%c64)
// CHECK:   %[[PANEL:.*]] = memref.alloc() : memref<32x128xbf16>
// CHECK:   scf.for %[[C0:.*]] = %c0 to %c64 step %c16
// CHECK:     %[[N:.*]] = arith.addi %[[N0]], %[[C0]]
// CHECK:     %[[SLOT:.*]] = arith.addi %[[C0]], %[[C0]]
// CHECK:     scf.for %[[E:.*]] = %c0 to %c64 step %c32
// CHECK:       %[[WR:.*]] = vector.load %[[W]][%[[N]], %[[E]]] : memref<128x64xf32>, vector<32xf32>
// CHECK:       %[[WB:.*]] = arith.truncf %[[WR]] : vector<32xf32> to vector<32xbf16>
// CHECK:       %[[WS:.*]] = vector.shuffle %[[WB]], %[[WB]] [1, 0, 3, 2,
// CHECK:       %[[N1:.*]] = arith.addi %[[N]], %c1
// CHECK:       vector.load %[[W]][%[[N1]], %[[E]]]
// CHECK:       %[[WP:.*]] = vector.bitcast %[[WS]] : vector<32xbf16> to vector<16xi32>
// CHECK-COUNT-15: vector.bitcast %{{.*}} : vector<32xbf16> to vector<16xi32>
// CHECK:       vector.shuffle %[[WP]], %{{.*}} [0, 16, 2, 18, {{.*}}] : vector<16xi32>, vector<16xi32>
// The last of the four levels: column 0 (row 0's pairs) and column 8.
// CHECK:       %[[COL0:.*]] = vector.shuffle %{{.*}}, %{{.*}} [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]
// CHECK-NEXT:  %[[COL8:.*]] = vector.shuffle %{{.*}}, %{{.*}} [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31]
// CHECK:       %[[K0:.*]] = affine.apply #[[$K0]](%[[E]])
// CHECK:       %[[P0:.*]] = vector.bitcast %[[COL0]] : vector<16xi32> to vector<32xbf16>
// CHECK:       vector.store %[[P0]], %[[PANEL]][%[[K0]], %[[SLOT]]] : memref<32x128xbf16>, vector<32xbf16>
// CHECK:       %[[K1:.*]] = affine.apply #[[$K1]](%[[E]])
// CHECK:       vector.store %{{.*}}, %[[PANEL]][%[[K1]], %[[SLOT]]]
// CHECK:       %[[K8:.*]] = affine.apply #[[$K8]](%[[E]])
// CHECK:       %[[P8:.*]] = vector.bitcast %[[COL8]] : vector<16xi32> to vector<32xbf16>
// CHECK:       vector.store %[[P8]], %[[PANEL]][%[[K8]], %[[SLOT]]]
// CHECK-COUNT-6: vector.store %{{.*}}, %[[PANEL]][%{{.*}}, %[[SLOT]]] : memref<32x128xbf16>, vector<32xbf16>
// CHECK:       %[[K15:.*]] = affine.apply #[[$K15]](%[[E]])
// CHECK:       vector.store %{{.*}}, %[[PANEL]][%[[K15]], %[[SLOT]]]
// The first four blocks of 6 tokens prefetch the next panel's 64 weight
// rows (4 lines each: 256 lines, 64 per block); the fifth runs without.
// CHECK:   scf.for %[[T0:.*]] = %c0 to %c24 step %c6
// CHECK:     scf.for %[[K:.*]] = %c0 to %c32 step %c1 iter_args({{.*}}) -> (vector<16xf32>, {{.*}}vector<16xf32>)
// Each step of pairs prefetches two lines of the next panel's weight rows
// (one per element of e, as the f32 form).
// CHECK-COUNT-2: memref.prefetch %[[W]][%{{.*}}, %{{.*}}], read, locality<3>, data : memref<128x64xf32>
// CHECK:       %[[W0:.*]] = vector.load %[[PANEL]][%[[K]], %c0] : memref<32x128xbf16>, vector<32xbf16>
// CHECK:       %[[W1:.*]] = vector.load %[[PANEL]][%[[K]], %c32] : memref<32x128xbf16>, vector<32xbf16>
// CHECK:       %[[W2:.*]] = vector.load %[[PANEL]][%[[K]], %c64] : memref<32x128xbf16>, vector<32xbf16>
// CHECK:       %[[W3:.*]] = vector.load %[[PANEL]][%[[K]], %c96] : memref<32x128xbf16>, vector<32xbf16>
// CHECK:       %[[E2:.*]] = arith.addi %[[K]], %[[K]]
// CHECK:       %[[PAIR:.*]] = vector.load %[[XP]][%[[T0]], %[[E2]]] : memref<32x64xbf16>, vector<2xbf16>
// CHECK:       %[[WORD:.*]] = vector.bitcast %[[PAIR]] : vector<2xbf16> to vector<1xi32>
// CHECK:       %[[SCALAR:.*]] = vector.extract %[[WORD]][0]
// CHECK:       %[[SPLAT:.*]] = vector.broadcast %[[SCALAR]] : i32 to vector<16xi32>
// CHECK:       %[[XV:.*]] = vector.bitcast %[[SPLAT]] : vector<16xi32> to vector<32xbf16>
// CHECK:       x86vector.avx512.dot %{{.*}}, %[[W0]], %[[XV]] : vector<32xbf16> -> vector<16xf32>
// CHECK:       x86vector.avx512.dot %{{.*}}, %[[W1]], %[[XV]]
// CHECK:       x86vector.avx512.dot %{{.*}}, %[[W2]], %[[XV]]
// CHECK:       x86vector.avx512.dot %{{.*}}, %[[W3]], %[[XV]]
// CHECK-COUNT-20: x86vector.avx512.dot
// CHECK:       scf.yield
// CHECK-COUNT-4: vector.insert_strided_slice
// CHECK:     vector.store %{{.*}}, %[[Y]][%[[T0]], %[[N0]]] : memref<32x128xf32>, vector<64xf32>
// The fifth block (one iteration, inlined):
// CHECK:   vector.load %[[Y]][%c24, %[[N0]]]
// CHECK-NOT: memref.prefetch
// CHECK:   scf.for %{{.*}} = %c0 to %c32 step %c1 iter_args({{.*}}) -> (vector<16xf32>, {{.*}}vector<16xf32>)
// CHECK-COUNT-24: x86vector.avx512.dot
// CHECK:       scf.yield
// The last two tokens, a block of 2 (one iteration, inlined): two rows of
// four vectors of sums.
// CHECK:   scf.for {{.*}} = %c0 to %c32 step %c1 iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK-COUNT-8: x86vector.avx512.dot
// CHECK:   memref.dealloc %[[PANEL]]
// CHECK: memref.dealloc %[[XP]]
// OFF-LABEL: func.func @round_both
// OFF-NOT: memref<{{.*}}bf16>
// OFF-NOT: x86vector
// OFF: arith.mulf {{.*}} fastmath<contract>
// OFF-NOT: x86vector
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @round_both(%x: memref<32x64xf32>, %w: memref<128x64xf32>, %y: memref<32x128xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<32x64xf32>, memref<128x64xf32>) outs(%y : memref<32x128xf32>) {
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

// Weights stored as bf16 (only widened in the payload) are packed without
// rounding; the product's operands may come in either order.
// CHECK-LABEL: func.func @bf16_weight
// CHECK-SAME: (%[[X:.*]]: memref<32x64xf32>, %[[W:.*]]: memref<64x64xbf16>,
// CHECK: arith.truncf %{{.*}} : vector<32xf32> to vector<32xbf16>
// CHECK:   %[[WR:.*]] = vector.load %[[W]][%{{.*}}, %{{.*}}] : memref<64x64xbf16>, vector<32xbf16>
// CHECK-NEXT: vector.shuffle %[[WR]], %[[WR]] [1, 0, 3, 2,
// CHECK-NOT: arith.truncf
// CHECK: x86vector.avx512.dot
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @bf16_weight(%x: memref<32x64xf32>, %w: memref<64x64xbf16>, %y: memref<32x64xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<32x64xf32>, memref<64x64xbf16>) outs(%y : memref<32x64xf32>) {
  ^bb0(%a: f32, %b: bf16, %s: f32):
    %0 = arith.truncf %a : f32 to bf16
    %1 = arith.extf %0 : bf16 to f32
    %3 = arith.extf %b : bf16 to f32
    %4 = arith.mulf %3, %1 : f32
    %5 = arith.addf %4, %s : f32
    linalg.yield %5 : f32
  }
  return
}

// -----

// Few tokens: the pair form packs from one register block of 6 tokens on
// (8 static tokens here; with a dynamic count the run-time test is T >= 6),
// where the f32 form (OFF) keeps the dot-product form below 48.
// CHECK-LABEL: func.func @eight_tokens
// CHECK: x86vector.avx512.dot
// OFF-LABEL: func.func @eight_tokens
// OFF-NOT: memref<?x64xbf16>
// OFF: scf.parallel
// CHECK-LABEL: func.func @dynamic_tokens
// CHECK: %[[T:.*]] = memref.dim
// CHECK: arith.cmpi uge, %[[T]], %c6
// CHECK: x86vector.avx512.dot
// OFF-LABEL: func.func @dynamic_tokens
// OFF: arith.cmpi uge, %{{.*}}, %c48
// The f32 form's panel of a bf16 weight that the payload only widens is
// f32, widened as it is packed (not in the sums' loop).
// (Both OFF runs: 64 columns of 16 lanes, or 16 of 8.)
// OFF: %[[OPANEL:.*]] = memref.alloc(%{{.*}}) : memref<?x{{16|64}}xf32>
// OFF: %[[OROW:.*]] = vector.load %{{.*}} : memref<64x64xbf16>, vector<{{8|16}}xbf16>
// OFF-NEXT: arith.extf %[[OROW]] : vector<{{8|16}}xbf16> to vector<{{8|16}}xf32>
// OFF: vector.store %{{.*}}, %[[OPANEL]]{{.*}} : memref<?x{{16|64}}xf32>, vector<{{8|16}}xf32>
// OFF: vector.load %[[OPANEL]]{{.*}} : memref<?x{{16|64}}xf32>, vector<{{16|64}}xf32>
// OFF-NOT: arith.extf {{.*}} : vector<{{16|64}}xbf16> to vector<{{16|64}}xf32>
// OFF: } else {
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @eight_tokens(%x: memref<8x64xf32>, %w: memref<64x64xbf16>, %y: memref<8x64xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<8x64xf32>, memref<64x64xbf16>) outs(%y : memref<8x64xf32>) {
  ^bb0(%a: f32, %b: bf16, %s: f32):
    %0 = arith.truncf %a : f32 to bf16
    %1 = arith.extf %0 : bf16 to f32
    %3 = arith.extf %b : bf16 to f32
    %4 = arith.mulf %1, %3 : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return
}
func.func @dynamic_tokens(%x: memref<?x64xf32>, %w: memref<64x64xbf16>, %y: memref<?x64xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x64xf32>, memref<64x64xbf16>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %b: bf16, %s: f32):
    %0 = arith.truncf %a : f32 to bf16
    %1 = arith.extf %0 : bf16 to f32
    %3 = arith.extf %b : bf16 to f32
    %4 = arith.mulf %1, %3 : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return
}

// -----

// Not taken: a depth that runs of 32 do not divide (48); the f32 form
// runs on x and W rounded once each (hoisted out of its loops).
// CHECK-LABEL: func.func @depth_48
// CHECK-NOT: x86vector
// CHECK: arith.mulf {{.*}} fastmath<contract> : vector<64xf32>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @depth_48(%x: memref<48x48xf32>, %w: memref<64x48xf32>, %y: memref<48x64xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<48x48xf32>, memref<64x48xf32>) outs(%y : memref<48x64xf32>) {
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

// Not taken: f32 compute (nothing rounded), and a rounding other than to
// nearest even (the packing's truncf rounds to nearest even).
// CHECK-LABEL: func.func @f32_compute
// CHECK-NOT: x86vector
// CHECK-LABEL: func.func @toward_zero
// CHECK-NOT: x86vector
// CHECK: return
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @f32_compute(%x: memref<32x64xf32>, %w: memref<64x64xf32>, %y: memref<32x64xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<32x64xf32>, memref<64x64xf32>) outs(%y : memref<32x64xf32>) {
  ^bb0(%a: f32, %b: f32, %s: f32):
    %4 = arith.mulf %a, %b : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return
}
func.func @toward_zero(%x: memref<32x64xf32>, %w: memref<64x64xf32>, %y: memref<32x64xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<32x64xf32>, memref<64x64xf32>) outs(%y : memref<32x64xf32>) {
  ^bb0(%a: f32, %b: f32, %s: f32):
    %0 = arith.truncf %a toward_zero : f32 to bf16
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

// Not taken: f16 compute, and a payload that does more than the product
// (a scale of the input).
// CHECK-LABEL: func.func @f16_compute
// CHECK-NOT: x86vector
// CHECK-LABEL: func.func @scaled
// CHECK-NOT: x86vector
// CHECK: return
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @f16_compute(%x: memref<32x64xf32>, %w: memref<64x64xf32>, %y: memref<32x64xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<32x64xf32>, memref<64x64xf32>) outs(%y : memref<32x64xf32>) {
  ^bb0(%a: f32, %b: f32, %s: f32):
    %0 = arith.truncf %a : f32 to f16
    %1 = arith.extf %0 : f16 to f32
    %2 = arith.truncf %b : f32 to f16
    %3 = arith.extf %2 : f16 to f32
    %4 = arith.mulf %1, %3 : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return
}
func.func @scaled(%x: memref<32x64xf32>, %w: memref<64x64xf32>, %y: memref<32x64xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<32x64xf32>, memref<64x64xf32>) outs(%y : memref<32x64xf32>) {
  ^bb0(%a: f32, %b: f32, %s: f32):
    %half = arith.constant 0.5 : f32
    %h = arith.mulf %a, %half : f32
    %0 = arith.truncf %h : f32 to bf16
    %1 = arith.extf %0 : bf16 to f32
    %2 = arith.truncf %b : f32 to bf16
    %3 = arith.extf %2 : bf16 to f32
    %4 = arith.mulf %1, %3 : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return
}
