// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops=packed-epilogues=false | FileCheck %s --check-prefix=UNFUSED

// Row epilogues of a packed projection (AVX2 panels of 16 columns, two per
// head of 32): y = x W^T + bias viewed as [T, 2 heads, 32], then a cache's
// write path as the loop-level lowering leaves it: a rotation's loop over
// (token, head) rows, a norm per row (a fill, then a reduction), codes per
// element, and a copy into the cache's slots. Each touches only row
// (t, h) of what it reads and writes, so the fused form runs them on each
// chunk of a head's rows (96 rows: 48 per panel) right after the chunk is
// computed: every panel packed first into one buffer, then one iteration
// per (head, chunk) runs the chunk against the head's two panels, then the
// rotation's loop with its token and head bounds clamped to the chunk, the
// norm's and the codes' tiles (subviews at [t0, h]) and the copy's tile.
// The fill writes a buffer the chain has not touched yet: it stays where
// it was, before the fused form (emitted at the copy's place). Behind the
// run-time test of T, the dot-product form runs them all unfused.

// CHECK-LABEL: func.func @rows_into_cache
// CHECK-SAME: (%[[X:.*]]: memref<?x8xf32>, %[[W:.*]]: memref<64x8xf32>, %[[B:.*]]: memref<64xf32>, %[[SIGNS:.*]]: memref<32xf32>, %[[CACHE:.*]]: memref<128x2x32xi8>)
// CHECK: %[[Y:.*]] = memref.alloc
// CHECK: %[[R:.*]] = memref.alloc
// CHECK: %[[N:.*]] = memref.alloc
// CHECK: linalg.fill {{.*}} outs(%[[N]]
// CHECK: %[[CODES:.*]] = memref.alloc
// CHECK: %[[SLOT:.*]] = memref.subview %[[CACHE]][0, 0, 0]
// CHECK: scf.if
// CHECK:   %[[PACKED:.*]] = memref.alloc(%{{.*}}) : memref<?x16xf32>
// CHECK:   scf.parallel (%[[N0:.*]]) = (%{{.*}}) to (%c64{{.*}}) step (%c16{{.*}})
// CHECK:     memref.subview %[[PACKED]]
// CHECK:     vector.load %[[W]]{{.*}} : memref<64x8xf32>, vector<8xf32>
// CHECK:   scf.parallel (%[[H:.*]], %[[T0:.*]]) = (%{{.*}}, %{{.*}}) to (%c2{{.*}}, %{{.*}}) step (%c1{{.*}}, %c96)
// CHECK:     %[[END:.*]] = arith.addi %[[T0]], %c96
// CHECK:     %[[T1:.*]] = arith.minsi %[[END]]
// CHECK:     memref.subview %[[PACKED]]
// CHECK:     scf.for %{{.*}} = %[[T0]] to %{{.*}} step %c6
// CHECK:     memref.subview %[[PACKED]]
// CHECK:     scf.for %{{.*}} = %[[T0]] to %{{.*}} step %c6
// CHECK:     %[[H1:.*]] = arith.addi %[[H]], %c1
// CHECK:     %[[LO:.*]] = arith.maxsi %{{.*}}, %[[T0]]
// CHECK:     %[[HI:.*]] = arith.minsi %{{.*}}, %[[T1]]
// CHECK:     %[[HLO:.*]] = arith.maxsi %{{.*}}, %[[H]]
// CHECK:     %[[HHI:.*]] = arith.minsi %{{.*}}, %[[H1]]
// CHECK:     scf.parallel (%[[I:.*]], %[[J:.*]]) = (%[[LO]], %[[HLO]]) to (%[[HI]], %[[HHI]])
// CHECK:       memref.subview %[[R]][%[[I]], %[[J]], 0] [1, 1, 32]
// CHECK:       vector.transfer_read
// CHECK:     %[[NORMIN:.*]] = memref.subview %[[R]][%[[T0]], %[[H]], 0] [%{{.*}}, 1, 32]
// CHECK:     %[[NORMOUT:.*]] = memref.subview %[[N]][%[[T0]], %[[H]]] [%{{.*}}, 1]
// CHECK:     vector.load %[[NORMIN]]
// CHECK:     memref.subview %[[CODES]][%[[T0]], %[[H]], 0]
// CHECK:     linalg.generic
// CHECK:     %[[FROM:.*]] = memref.subview %[[CODES]][%[[T0]], %[[H]], 0]
// CHECK:     %[[TO:.*]] = memref.subview %[[SLOT]][%[[T0]], %[[H]], 0]
// CHECK:     linalg.copy ins(%[[FROM]] : {{.*}}) outs(%[[TO]] :
// CHECK:   memref.dealloc %[[PACKED]]
// CHECK: } else {
// CHECK:   scf.parallel
// CHECK:   vector.transfer_read
// CHECK:   linalg.generic
// CHECK:   linalg.copy ins(%[[CODES]] : {{.*}}) outs(%[[SLOT]] :
// CHECK: {{^    }$}}
// CHECK-NEXT: return
// UNFUSED-LABEL: func.func @rows_into_cache
// UNFUSED-NOT: step (%c1{{.*}}, %c96)
// UNFUSED: return

#bias = affine_map<(t, n) -> (n)>
#tn = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
#row = affine_map<(t, h, e) -> (t, h, e)>
#head = affine_map<(t, h, e) -> (t, h)>

func.func @rows_into_cache(%x: memref<?x8xf32>, %w: memref<64x8xf32>,
    %b: memref<64xf32>, %signs: memref<32xf32>, %cache: memref<128x2x32xi8>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) : memref<?x64xf32>
  linalg.generic {indexing_maps = [#bias, #tn], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<64x8xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %c: f32, %s: f32):
    %p = arith.mulf %a, %c : f32
    %r = arith.addf %s, %p : f32
    linalg.yield %r : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2]] output_shape [%t, 2, 32] : memref<?x64xf32> into memref<?x2x32xf32>
  %r = memref.alloc(%t) : memref<?x2x32xf32>
  scf.parallel (%i, %h) = (%c0, %c0) to (%t, %c2) step (%c1, %c1) {
    %dst = memref.subview %r[%i, %h, 0] [1, 1, 32] [1, 1, 1] : memref<?x2x32xf32> to memref<32xf32, strided<[1], offset: ?>>
    %in = vector.transfer_read %v[%i, %h, %c0], %zero {in_bounds = [true]} : memref<?x2x32xf32>, vector<32xf32>
    %s = vector.load %signs[%c0] : memref<32xf32>, vector<32xf32>
    %m = arith.mulf %in, %s : vector<32xf32>
    vector.transfer_write %m, %dst[%c0] {in_bounds = [true]} : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
    scf.reduce
  }
  %n = memref.alloc(%t) : memref<?x2xf32>
  linalg.fill ins(%zero : f32) outs(%n : memref<?x2xf32>)
  linalg.generic {indexing_maps = [#row, #head], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%r : memref<?x2x32xf32>) outs(%n : memref<?x2xf32>) {
  ^bb0(%a: f32, %s: f32):
    %p = arith.mulf %a, %a : f32
    %q = arith.addf %s, %p : f32
    linalg.yield %q : f32
  }
  %codes = memref.alloc(%t) : memref<?x2x32xi8>
  linalg.generic {indexing_maps = [#row, #head, #row], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%r, %n : memref<?x2x32xf32>, memref<?x2xf32>) outs(%codes : memref<?x2x32xi8>) {
  ^bb0(%a: f32, %s: f32, %o: i8):
    %d = arith.divf %a, %s : f32
    %c = arith.fptosi %d : f32 to i8
    linalg.yield %c : i8
  }
  %slot = memref.subview %cache[0, 0, 0] [%t, 2, 32] [1, 1, 1] : memref<128x2x32xi8> to memref<?x2x32xi8, strided<[64, 32, 1]>>
  linalg.copy ins(%codes : memref<?x2x32xi8>) outs(%slot : memref<?x2x32xi8, strided<[64, 32, 1]>>)
  return
}

// -----

// A rotation that reads head 0 for every head's row is not row-local: no
// row epilogue (the plain packed form, one panel per thread).
// CHECK-LABEL: func.func @other_head
// CHECK-NOT: step (%c1{{.*}}, %c96)
// CHECK: scf.if
// CHECK: scf.parallel (%{{.*}}) = (%{{.*}}) to (%c64{{.*}}) step (%c16{{.*}})
// CHECK:   memref.alloc(%{{.*}}) : memref<?x16xf32>
// CHECK-NOT: step (%c1{{.*}}, %c96)
// CHECK: return

#bias = affine_map<(t, n) -> (n)>
#tn = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
#row = affine_map<(t, h, e) -> (t, h, e)>
#head = affine_map<(t, h, e) -> (t, h)>

func.func @other_head(%x: memref<?x8xf32>, %w: memref<64x8xf32>,
    %b: memref<64xf32>, %signs: memref<32xf32>, %cache: memref<128x2x32xi8>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) : memref<?x64xf32>
  linalg.generic {indexing_maps = [#bias, #tn], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<64x8xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %c: f32, %s: f32):
    %p = arith.mulf %a, %c : f32
    %r = arith.addf %s, %p : f32
    linalg.yield %r : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2]] output_shape [%t, 2, 32] : memref<?x64xf32> into memref<?x2x32xf32>
  %r = memref.alloc(%t) : memref<?x2x32xf32>
  scf.parallel (%i, %h) = (%c0, %c0) to (%t, %c2) step (%c1, %c1) {
    %dst = memref.subview %r[%i, %h, 0] [1, 1, 32] [1, 1, 1] : memref<?x2x32xf32> to memref<32xf32, strided<[1], offset: ?>>
    %in = vector.transfer_read %v[%i, %c0, %c0], %zero {in_bounds = [true]} : memref<?x2x32xf32>, vector<32xf32>
    %s = vector.load %signs[%c0] : memref<32xf32>, vector<32xf32>
    %m = arith.mulf %in, %s : vector<32xf32>
    vector.transfer_write %m, %dst[%c0] {in_bounds = [true]} : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
    scf.reduce
  }
  %n = memref.alloc(%t) : memref<?x2xf32>
  linalg.fill ins(%zero : f32) outs(%n : memref<?x2xf32>)
  linalg.generic {indexing_maps = [#row, #head], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%r : memref<?x2x32xf32>) outs(%n : memref<?x2xf32>) {
  ^bb0(%a: f32, %s: f32):
    %p = arith.mulf %a, %a : f32
    %q = arith.addf %s, %p : f32
    linalg.yield %q : f32
  }
  %codes = memref.alloc(%t) : memref<?x2x32xi8>
  linalg.generic {indexing_maps = [#row, #head, #row], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%r, %n : memref<?x2x32xf32>, memref<?x2xf32>) outs(%codes : memref<?x2x32xi8>) {
  ^bb0(%a: f32, %s: f32, %o: i8):
    %d = arith.divf %a, %s : f32
    %c = arith.fptosi %d : f32 to i8
    linalg.yield %c : i8
  }
  %slot = memref.subview %cache[0, 0, 0] [%t, 2, 32] [1, 1, 1] : memref<128x2x32xi8> to memref<?x2x32xi8, strided<[64, 32, 1]>>
  linalg.copy ins(%codes : memref<?x2x32xi8>) outs(%slot : memref<?x2x32xi8, strided<[64, 32, 1]>>)
  return
}

// -----

// An op between that writes x, which the projection reads, ends the chain:
// the fused form takes the rotation only and is emitted at its place,
// before the write of x; the norm, codes and copy stay after it.
// CHECK-LABEL: func.func @input_written_between
// CHECK-SAME: (%[[X:[^:]*]]: memref<?x8xf32>
// CHECK: scf.if
// CHECK:   scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c1{{.*}}, %c96)
// CHECK:     vector.transfer_read
// CHECK-NOT: linalg.copy
// CHECK: } else {
// CHECK:   vector.transfer_read
// CHECK-NOT: linalg.copy
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[X]] :
// CHECK: linalg.fill
// CHECK: linalg.generic
// CHECK: linalg.copy
// CHECK: return

#bias = affine_map<(t, n) -> (n)>
#tn = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
#row = affine_map<(t, h, e) -> (t, h, e)>
#head = affine_map<(t, h, e) -> (t, h)>

func.func @input_written_between(%x: memref<?x8xf32>, %w: memref<64x8xf32>,
    %b: memref<64xf32>, %signs: memref<32xf32>, %cache: memref<128x2x32xi8>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) : memref<?x64xf32>
  linalg.generic {indexing_maps = [#bias, #tn], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<64x8xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %c: f32, %s: f32):
    %p = arith.mulf %a, %c : f32
    %r = arith.addf %s, %p : f32
    linalg.yield %r : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2]] output_shape [%t, 2, 32] : memref<?x64xf32> into memref<?x2x32xf32>
  %r = memref.alloc(%t) : memref<?x2x32xf32>
  scf.parallel (%i, %h) = (%c0, %c0) to (%t, %c2) step (%c1, %c1) {
    %dst = memref.subview %r[%i, %h, 0] [1, 1, 32] [1, 1, 1] : memref<?x2x32xf32> to memref<32xf32, strided<[1], offset: ?>>
    %in = vector.transfer_read %v[%i, %h, %c0], %zero {in_bounds = [true]} : memref<?x2x32xf32>, vector<32xf32>
    %s = vector.load %signs[%c0] : memref<32xf32>, vector<32xf32>
    %m = arith.mulf %in, %s : vector<32xf32>
    vector.transfer_write %m, %dst[%c0] {in_bounds = [true]} : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
    scf.reduce
  }
  linalg.fill ins(%zero : f32) outs(%x : memref<?x8xf32>)
  %n = memref.alloc(%t) : memref<?x2xf32>
  linalg.fill ins(%zero : f32) outs(%n : memref<?x2xf32>)
  linalg.generic {indexing_maps = [#row, #head], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%r : memref<?x2x32xf32>) outs(%n : memref<?x2xf32>) {
  ^bb0(%a: f32, %s: f32):
    %p = arith.mulf %a, %a : f32
    %q = arith.addf %s, %p : f32
    linalg.yield %q : f32
  }
  %codes = memref.alloc(%t) : memref<?x2x32xi8>
  linalg.generic {indexing_maps = [#row, #head, #row], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%r, %n : memref<?x2x32xf32>, memref<?x2xf32>) outs(%codes : memref<?x2x32xi8>) {
  ^bb0(%a: f32, %s: f32, %o: i8):
    %d = arith.divf %a, %s : f32
    %c = arith.fptosi %d : f32 to i8
    linalg.yield %c : i8
  }
  %slot = memref.subview %cache[0, 0, 0] [%t, 2, 32] [1, 1, 1] : memref<128x2x32xi8> to memref<?x2x32xi8, strided<[64, 32, 1]>>
  linalg.copy ins(%codes : memref<?x2x32xi8>) outs(%slot : memref<?x2x32xi8, strided<[64, 32, 1]>>)
  return
}

// -----

// A read of the cache's rows back ends the chain: the rows it reads are
// all written by then (the fused form is emitted before it).
// CHECK-LABEL: func.func @cache_read_back
// CHECK: %[[SLOT:.*]] = memref.subview
// CHECK: scf.if
// CHECK:   scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c1{{.*}}, %c96)
// CHECK:     linalg.copy
// CHECK: } else {
// CHECK:   linalg.copy
// CHECK: {{^    }$}}
// CHECK-NEXT: %[[BACK:.*]] = memref.alloc
// CHECK-NEXT: linalg.copy ins(%[[SLOT]] : {{.*}}) outs(%[[BACK]] :
// CHECK: return

#bias = affine_map<(t, n) -> (n)>
#tn = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
#row = affine_map<(t, h, e) -> (t, h, e)>
#head = affine_map<(t, h, e) -> (t, h)>

func.func @cache_read_back(%x: memref<?x8xf32>, %w: memref<64x8xf32>,
    %b: memref<64xf32>, %signs: memref<32xf32>, %cache: memref<128x2x32xi8>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) : memref<?x64xf32>
  linalg.generic {indexing_maps = [#bias, #tn], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<64x8xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %c: f32, %s: f32):
    %p = arith.mulf %a, %c : f32
    %r = arith.addf %s, %p : f32
    linalg.yield %r : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2]] output_shape [%t, 2, 32] : memref<?x64xf32> into memref<?x2x32xf32>
  %r = memref.alloc(%t) : memref<?x2x32xf32>
  scf.parallel (%i, %h) = (%c0, %c0) to (%t, %c2) step (%c1, %c1) {
    %dst = memref.subview %r[%i, %h, 0] [1, 1, 32] [1, 1, 1] : memref<?x2x32xf32> to memref<32xf32, strided<[1], offset: ?>>
    %in = vector.transfer_read %v[%i, %h, %c0], %zero {in_bounds = [true]} : memref<?x2x32xf32>, vector<32xf32>
    %s = vector.load %signs[%c0] : memref<32xf32>, vector<32xf32>
    %m = arith.mulf %in, %s : vector<32xf32>
    vector.transfer_write %m, %dst[%c0] {in_bounds = [true]} : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
    scf.reduce
  }
  %n = memref.alloc(%t) : memref<?x2xf32>
  linalg.fill ins(%zero : f32) outs(%n : memref<?x2xf32>)
  linalg.generic {indexing_maps = [#row, #head], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%r : memref<?x2x32xf32>) outs(%n : memref<?x2xf32>) {
  ^bb0(%a: f32, %s: f32):
    %p = arith.mulf %a, %a : f32
    %q = arith.addf %s, %p : f32
    linalg.yield %q : f32
  }
  %codes = memref.alloc(%t) : memref<?x2x32xi8>
  linalg.generic {indexing_maps = [#row, #head, #row], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%r, %n : memref<?x2x32xf32>, memref<?x2xf32>) outs(%codes : memref<?x2x32xi8>) {
  ^bb0(%a: f32, %s: f32, %o: i8):
    %d = arith.divf %a, %s : f32
    %c = arith.fptosi %d : f32 to i8
    linalg.yield %c : i8
  }
  %slot = memref.subview %cache[0, 0, 0] [%t, 2, 32] [1, 1, 1] : memref<128x2x32xi8> to memref<?x2x32xi8, strided<[64, 32, 1]>>
  linalg.copy ins(%codes : memref<?x2x32xi8>) outs(%slot : memref<?x2x32xi8, strided<[64, 32, 1]>>)
  %back = memref.alloc(%t) : memref<?x2x32xi8>
  linalg.copy ins(%slot : memref<?x2x32xi8, strided<[64, 32, 1]>>) outs(%back : memref<?x2x32xi8>)
  return
}

// -----

// A vector read along the token axis (8 tokens from row t) would read rows
// of the next chunk before they are computed: not row-local.
// CHECK-LABEL: func.func @vector_along_tokens
// CHECK-NOT: step (%c1{{.*}}, %c96)
// CHECK: return

#bias = affine_map<(t, n) -> (n)>
#tn = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>

func.func @vector_along_tokens(%x: memref<?x8xf32>, %w: memref<64x8xf32>,
    %b: memref<64xf32>, %cache: memref<128x2x32xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) : memref<?x64xf32>
  linalg.generic {indexing_maps = [#bias, #tn], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<64x8xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %c: f32, %s: f32):
    %p = arith.mulf %a, %c : f32
    %r = arith.addf %s, %p : f32
    linalg.yield %r : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2]] output_shape [%t, 2, 32] : memref<?x64xf32> into memref<?x2x32xf32>
  %n = memref.alloc(%t) : memref<?x2xf32>
  scf.parallel (%i, %h) = (%c0, %c0) to (%t, %c2) step (%c1, %c1) {
    %in = vector.transfer_read %v[%i, %h, %c0], %zero {permutation_map = affine_map<(d0, d1, d2) -> (d0)>} : memref<?x2x32xf32>, vector<8xf32>
    %s = vector.reduction <add>, %in : vector<8xf32> into f32
    memref.store %s, %n[%i, %h] : memref<?x2xf32>
    scf.reduce
  }
  return
}

// -----

// A loop with a linalg op inside (which this pass lowers on its own) is
// no row op.
// CHECK-LABEL: func.func @linalg_in_loop
// CHECK-NOT: step (%c1{{.*}}, %c96)
// CHECK: return

#bias = affine_map<(t, n) -> (n)>
#tn = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>

func.func @linalg_in_loop(%x: memref<?x8xf32>, %w: memref<64x8xf32>,
    %b: memref<64xf32>, %cache: memref<128x2x32xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) : memref<?x64xf32>
  linalg.generic {indexing_maps = [#bias, #tn], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<64x8xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %c: f32, %s: f32):
    %p = arith.mulf %a, %c : f32
    %r = arith.addf %s, %p : f32
    linalg.yield %r : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2]] output_shape [%t, 2, 32] : memref<?x64xf32> into memref<?x2x32xf32>
  %n = memref.alloc(%t) : memref<?x2xf32>
  scf.parallel (%i, %h) = (%c0, %c0) to (%t, %c2) step (%c1, %c1) {
    %row = memref.subview %v[%i, %h, 0] [1, 1, 32] [1, 1, 1] : memref<?x2x32xf32> to memref<1x32xf32, strided<[32, 1], offset: ?>>
    %acc = memref.subview %n[%i, %h] [1, 1] [1, 1] : memref<?x2xf32> to memref<1xf32, strided<[1], offset: ?>>
    linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]}
        ins(%row : memref<1x32xf32, strided<[32, 1], offset: ?>>) outs(%acc : memref<1xf32, strided<[1], offset: ?>>) {
    ^bb0(%a: f32, %s: f32):
      %q = arith.addf %s, %a : f32
      linalg.yield %q : f32
    }
    scf.reduce
  }
  return
}

// -----

// The projection's output is freed once its RoPE has read it, before the
// row op (a copy of the RoPE's output into a cache). The fused form never
// touches it, and the unfused one (behind T < 48) runs the init, the
// projection and the RoPE where the RoPE was, before the free; the row op
// runs at its own place, fused or not.
// CHECK-LABEL: func.func @freed_after_rope
// CHECK: %[[Y:.*]] = memref.alloc
// CHECK: scf.if
// CHECK:   linalg.generic {{.*}} outs(%[[Y]]
// CHECK: memref.dealloc %[[Y]]
// CHECK: scf.if
// CHECK:   scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c1{{.*}}, %c96)
// CHECK-NOT: %[[Y]] :
// CHECK-NOT: %[[Y]][
// CHECK: } else {
// CHECK:   linalg.copy
// CHECK: return

#bias = affine_map<(t, n) -> (n)>
#tn = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
#half0 = affine_map<(t, h, p, i) -> (t, h, 0, i)>
#half1 = affine_map<(t, h, p, i) -> (t, h, 1, i)>
#table = affine_map<(t, h, p, i) -> (t, i)>
#id4 = affine_map<(t, h, p, i) -> (t, h, p, i)>

func.func @freed_after_rope(%x: memref<?x8xf32>, %w: memref<64x8xf32>,
    %b: memref<64xf32>, %cos: memref<?x16xf32>, %sin: memref<?x16xf32>,
    %cache: memref<128x2x32xf32>) {
  %c0 = arith.constant 0 : index
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) : memref<?x64xf32>
  linalg.generic {indexing_maps = [#bias, #tn], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<64x8xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %c: f32, %s: f32):
    %p = arith.mulf %a, %c : f32
    %r = arith.addf %s, %p : f32
    linalg.yield %r : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2, 3]] output_shape [%t, 2, 2, 16] : memref<?x64xf32> into memref<?x2x2x16xf32>
  %z = memref.alloc(%t) : memref<?x2x2x16xf32>
  linalg.generic {indexing_maps = [#half0, #half1, #table, #table, #id4],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%v, %v, %cos, %sin : memref<?x2x2x16xf32>, memref<?x2x2x16xf32>, memref<?x16xf32>, memref<?x16xf32>)
      outs(%z : memref<?x2x2x16xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32, %s: f32, %out: f32):
    %i = linalg.index 2 : index
    %first = arith.cmpi eq, %i, %c0 : index
    %u = arith.select %first, %a, %bb : f32
    %o = arith.select %first, %bb, %a : f32
    %uc = arith.mulf %u, %c : f32
    %os = arith.mulf %o, %s : f32
    %lo = arith.subf %uc, %os : f32
    %hi = arith.addf %os, %uc : f32
    %r = arith.select %first, %lo, %hi : f32
    linalg.yield %r : f32
  }
  memref.dealloc %y : memref<?x64xf32>
  %rows = memref.collapse_shape %z [[0], [1], [2, 3]] : memref<?x2x2x16xf32> into memref<?x2x32xf32>
  %slot = memref.subview %cache[0, 0, 0] [%t, 2, 32] [1, 1, 1] : memref<128x2x32xf32> to memref<?x2x32xf32, strided<[64, 32, 1]>>
  linalg.copy ins(%rows : memref<?x2x32xf32>) outs(%slot : memref<?x2x32xf32, strided<[64, 32, 1]>>)
  return
}

// -----

// Two writes of one cache at different row offsets: the second is no row
// op of the chain (its rows are other chunks'); it runs after.
// CHECK-LABEL: func.func @two_offsets
// CHECK: scf.if
// CHECK:   scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} step (%c1{{.*}}, %c96)
// CHECK:     linalg.copy
// CHECK: } else {
// CHECK:   linalg.copy
// CHECK: linalg.copy ins(%{{.*}} : memref<?x2x32xf32>) outs(%{{.*}} : memref<?x2x32xf32, strided<[64, 32, 1], offset: 64>>)
// CHECK: return

#bias = affine_map<(t, n) -> (n)>
#tn = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>

func.func @two_offsets(%x: memref<?x8xf32>, %w: memref<64x8xf32>,
    %b: memref<64xf32>, %cache: memref<128x2x32xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) : memref<?x64xf32>
  linalg.generic {indexing_maps = [#bias, #tn], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<64x8xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %c: f32, %s: f32):
    %p = arith.mulf %a, %c : f32
    %r = arith.addf %s, %p : f32
    linalg.yield %r : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2]] output_shape [%t, 2, 32] : memref<?x64xf32> into memref<?x2x32xf32>
  %n = memref.alloc(%t) : memref<?x2xf32>
  %slot = memref.subview %cache[0, 0, 0] [%t, 2, 32] [1, 1, 1] : memref<128x2x32xf32> to memref<?x2x32xf32, strided<[64, 32, 1]>>
  linalg.copy ins(%v : memref<?x2x32xf32>) outs(%slot : memref<?x2x32xf32, strided<[64, 32, 1]>>)
  %next = memref.subview %cache[1, 0, 0] [%t, 2, 32] [1, 1, 1] : memref<128x2x32xf32> to memref<?x2x32xf32, strided<[64, 32, 1], offset: 64>>
  linalg.copy ins(%v : memref<?x2x32xf32>) outs(%next : memref<?x2x32xf32, strided<[64, 32, 1], offset: 64>>)
  return
}
