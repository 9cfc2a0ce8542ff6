// RUN: rotor-opt %s -allow-unregistered-dialect -split-input-file -rotor-prefetch-next-key-tile -mlir-print-local-scope | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -allow-unregistered-dialect -split-input-file -rotor-prefetch-next-key-tile=locality=3 | FileCheck %s --check-prefix=LOW
// RUN: not rotor-opt %s -allow-unregistered-dialect -split-input-file -rotor-prefetch-next-key-tile=locality=4 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not rotor-opt %s -allow-unregistered-dialect -split-input-file -rotor-prefetch-next-key-tile=distance=0 2>&1 | FileCheck %s --check-prefix=SHORT

// A decode step's tile loop (marked by convert-attn-to-linalg) in which no
// loop nest reads the tiles: the tiles of K and V ([keys, 2 KV heads, 64]
// f32, a row 512 bytes, 8 lines) each get, right after their subview,
// prefetches of the next tile's rows, through a view of the buffer as
// [keys, 128]: from j0 + 64, min(64, bound - (j0 + 64)) rows (none on the
// last tile), line l at row j0 + 64 + l / 8, element l mod 8 * 16. K's
// offset is the induction variable itself, V's an affine.apply of it plus
// the range's first key. Only when the buffer holds 8 MiB or more (16384
// rows): a smaller cache stays in L3.
// CHECK-LABEL: func.func @decode_tiles
// CHECK-SAME: (%[[K:.+]]: memref<?x2x64xf32>, %[[V:.+]]: memref<?x2x64xf32>, %[[BOUND:.+]]: index, %[[K0:.+]]: index)
// CHECK-DAG: %[[KROWS:.+]] = memref.collapse_shape %[[K]] {{\[}}[0], [1, 2]] : memref<?x2x64xf32> into memref<?x128xf32>
// CHECK-DAG: %[[VROWS:.+]] = memref.collapse_shape %[[V]] {{\[}}[0], [1, 2]]
// CHECK-DAG: %[[KDIM:.+]] = memref.dim %[[K]], %c0
// CHECK-DAG: %[[KLARGE:.+]] = arith.cmpi sge, %[[KDIM]], %c16384
// CHECK: scf.for %[[J0:.+]] = %{{.+}} to %[[BOUND]] step %[[STEP:.+]] {
// CHECK:   memref.subview %[[K]][%[[J0]], 0, 0]
// CHECK:   %[[FIRST:.+]] = arith.addi %[[J0]], %[[STEP]]
// CHECK:   %[[NEXT:.+]] = arith.addi %[[J0]], %[[STEP]]
// CHECK:   %[[LEFT:.+]] = arith.subi %[[BOUND]], %[[NEXT]]
// CHECK:   %[[ROWS:.+]] = arith.minsi %[[STEP]], %[[LEFT]]
// CHECK:   %[[WHOLE:.+]] = arith.maxsi %[[ROWS]], %c0
// CHECK:   %[[LINES:.+]] = arith.muli %[[WHOLE]], %c8
// CHECK:   scf.if %[[KLARGE]] {
// CHECK:   scf.for %[[L:.+]] = %c0{{.*}} to %[[LINES]] step %c1
// CHECK:     %[[R:.+]] = arith.divui %[[L]], %c8
// CHECK:     %[[ROW:.+]] = arith.addi %[[FIRST]], %[[R]]
// CHECK:     %[[IN:.+]] = arith.remui %[[L]], %c8
// CHECK:     %[[E:.+]] = arith.muli %[[IN]], %c16
// CHECK:     memref.prefetch %[[KROWS]][%[[ROW]], %[[E]]], read, locality<1>, data
// CHECK:   %[[VOFF:.+]] = affine.apply affine_map<(d0)[s0] -> (d0 + s0)>(%[[J0]])[%[[K0]]]
// CHECK:   memref.subview %[[V]][%[[VOFF]], 0, 0]
// CHECK:   arith.addi %[[VOFF]], %[[STEP]]
// CHECK:     memref.prefetch %[[VROWS]]
// CHECK: } {attn.streamed_key_tiles}
// LOW-LABEL: func.func @decode_tiles
// LOW: memref.prefetch %{{.+}}, read, locality<3>, data
// BAD: error: rotor-prefetch-next-key-tile: locality must be 0 to 3, got 4
// SHORT: error: rotor-prefetch-next-key-tile: distance must be at least 1, got 0
func.func @decode_tiles(%k: memref<?x2x64xf32>, %v: memref<?x2x64xf32>, %bound: index, %k0: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  scf.for %j0 = %c0 to %bound step %c64 {
    %n = arith.minsi %c64, %bound : index
    %kt = memref.subview %k[%j0, 0, 0] [%n, 2, 64] [1, 1, 1] : memref<?x2x64xf32> to memref<?x2x64xf32, strided<[128, 64, 1], offset: ?>>
    %off = affine.apply affine_map<(d0)[s0] -> (d0 + s0)>(%j0)[%k0]
    %vt = memref.subview %v[%off, 0, 0] [%n, 2, 64] [1, 1, 1] : memref<?x2x64xf32> to memref<?x2x64xf32, strided<[128, 64, 1], offset: ?>>
    "test.use"(%kt, %vt) : (memref<?x2x64xf32, strided<[128, 64, 1], offset: ?>>, memref<?x2x64xf32, strided<[128, 64, 1], offset: ?>>) -> ()
  } {attn.streamed_key_tiles}
  return
}

// -----

// The tiles as the register forms read them: K in a nest of blocks of 16
// keys by 4 query rows (an scf.parallel) around each row's sums (an
// scf.for over e), V in a loop over blocks whose body has a parallel loop
// over rows (its bound, 4 - 4 mod 2, computed in the block's body from
// constants) around each row's keys. Each tile's lines spread over the
// iterations of its nest down to the parent of the innermost loop: K's
// over the (block, row) grid of ceildiv(n, 16) x 4 iterations, V's over
// the blocks by the parallel loop's rows; iteration p prefetches lines
// [p s, min(p s + s, L)) with s = ceildiv(L, iterations) of the L lines
// of the rows 32 ahead of the tile's first (min(64, bound - j0 - 32) of
// them). A nest whose loops above the innermost are no grid (the second's
// bound is the first's induction variable) gets the next tile's rows at
// once, after its view.
// CHECK-LABEL: func.func @spread
// CHECK-SAME: (%[[K:.+]]: memref<?x2x64xf32>, %[[V:.+]]: memref<?x2x64xf32>, %[[BOUND:.+]]: index)
// CHECK-DAG: %[[KROWS:.+]] = memref.collapse_shape %[[K]]
// CHECK-DAG: %[[VROWS:.+]] = memref.collapse_shape %[[V]]
// CHECK: scf.for %[[J0:.+]] = %{{.+}} to %[[BOUND]] step %{{.+}} {
// CHECK:   scf.parallel (%[[B:.+]], %[[RW:.+]]) = (%c0{{.*}}, %c0{{.*}}) to (%[[N:.+]], %c4{{.*}}) step (%c16{{.*}}, %c1{{.*}}) {
// CHECK:     %[[FIRST:.+]] = arith.addi %[[J0]], %c32
// CHECK:     %[[AHEAD:.+]] = arith.addi %[[J0]], %c32
// CHECK:     %[[LEFT:.+]] = arith.subi %[[BOUND]], %[[AHEAD]]
// CHECK:     %[[ROWS:.+]] = arith.minsi %c64{{.*}}, %[[LEFT]]
// CHECK:     %[[LINES:.+]] = arith.muli %{{.+}}, %c8
// CHECK:     arith.ceildivsi %{{.+}}, %c16
// CHECK:     arith.divsi %{{.+}}, %c16
// CHECK:     arith.ceildivsi %{{.+}}, %c1
// CHECK:     %[[SHARE:.+]] = arith.ceildivsi %[[LINES]], %{{.+}}
// CHECK:     %[[BEGIN:.+]] = arith.muli %{{.+}}, %[[SHARE]]
// CHECK:     %[[UPTO:.+]] = arith.addi %[[BEGIN]], %[[SHARE]]
// CHECK:     %[[END:.+]] = arith.minsi %[[UPTO]], %[[LINES]]
// CHECK:     scf.for %{{.+}} = %[[BEGIN]] to %[[END]]
// CHECK:       memref.prefetch %[[KROWS]][%{{.+}}, %{{.+}}], read, locality<1>, data
// CHECK:     scf.for %{{.+}} = %c0{{.*}} to %c64{{.*}} step %c16{{.*}}
// CHECK:       memref.load
// CHECK:   scf.for %[[VB:.+]] = %c0{{.*}} to %[[N]] step %c16{{.*}} {
// CHECK:     scf.parallel (%{{.+}}) = (%c0{{.*}}) to (%{{.+}}) step (%c2{{.*}}) {
// CHECK:       scf.for %{{.+}} = %{{.+}} to %{{.+}}
// CHECK:         memref.prefetch %[[VROWS]][%{{.+}}, %{{.+}}], read, locality<1>, data
// CHECK:       scf.for %{{.+}} = %[[VB]] to
// CHECK:         memref.load
// CHECK: } {attn.streamed_key_tiles}
// CHECK: scf.for %[[T0:.+]] =
// CHECK:   memref.subview %[[K]][%[[T0]], 0, 0]
// CHECK:   arith.addi %[[T0]], %c64
// CHECK:   scf.for
// CHECK:     memref.prefetch %[[KROWS]]
// CHECK:   scf.for %[[I:.+]] =
// CHECK-NOT: memref.prefetch
// CHECK:     scf.for %{{.+}} = %c0{{.*}} to %[[I]]
// CHECK-NOT: memref.prefetch
// CHECK: } {attn.streamed_key_tiles}
func.func @spread(%k: memref<?x2x64xf32>, %v: memref<?x2x64xf32>, %bound: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %c16 = arith.constant 16 : index
  %c64 = arith.constant 64 : index
  scf.for %j0 = %c0 to %bound step %c64 {
    %n = arith.minsi %c64, %bound : index
    %kt = memref.subview %k[%j0, 0, 0] [%n, 2, 64] [1, 1, 1] : memref<?x2x64xf32> to memref<?x2x64xf32, strided<[128, 64, 1], offset: ?>>
    %vt = memref.subview %v[%j0, 0, 0] [%n, 2, 64] [1, 1, 1] : memref<?x2x64xf32> to memref<?x2x64xf32, strided<[128, 64, 1], offset: ?>>
    scf.parallel (%b, %r) = (%c0, %c0) to (%n, %c4) step (%c16, %c1) {
      %h = arith.divui %r, %c2 : index
      scf.for %e = %c0 to %c64 step %c16 {
        %x = memref.load %kt[%b, %h, %e] : memref<?x2x64xf32, strided<[128, 64, 1], offset: ?>>
        "test.use"(%x) : (f32) -> ()
      }
      scf.reduce
    }
    scf.for %vb = %c0 to %n step %c16 {
      %rem = arith.remui %c4, %c2 : index
      %rows = arith.subi %c4, %rem : index
      %vend = arith.addi %vb, %c16 : index
      scf.parallel (%r) = (%c0) to (%rows) step (%c2) {
        %h = arith.divui %r, %c2 : index
        scf.for %j = %vb to %vend step %c1 {
          %x = memref.load %vt[%j, %h, %c0] : memref<?x2x64xf32, strided<[128, 64, 1], offset: ?>>
          "test.use"(%x) : (f32) -> ()
        }
        scf.reduce
      }
    }
  } {attn.streamed_key_tiles}
  scf.for %t0 = %c0 to %bound step %c64 {
    %kt = memref.subview %k[%t0, 0, 0] [64, 2, 64] [1, 1, 1] : memref<?x2x64xf32> to memref<64x2x64xf32, strided<[128, 64, 1], offset: ?>>
    scf.for %i = %c0 to %c64 step %c1 {
      scf.for %j = %c0 to %i step %c1 {
        scf.for %e = %c0 to %c64 step %c16 {
          %x = memref.load %kt[%j, %c0, %e] : memref<64x2x64xf32, strided<[128, 64, 1], offset: ?>>
          "test.use"(%x) : (f32) -> ()
        }
      }
    }
  } {attn.streamed_key_tiles}
  return
}

// -----

// Not prefetched: a loop without the mark (a prefill's tiles, read by every
// block of queries); in a marked loop, a view that takes part of a row (one
// KV head of two), one whose offset does not move by the step (2 * j0),
// one of a buffer the loop defines, and one of a buffer whose rows are not
// contiguous (every other head).
// CHECK-LABEL: func.func @not_streamed
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @not_streamed(%k: memref<?x2x64xf32>, %bound: index, %strided: memref<?x2x64xf32, strided<[256, 128, 1]>>) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  scf.for %j0 = %c0 to %bound step %c64 {
    %kt = memref.subview %k[%j0, 0, 0] [64, 2, 64] [1, 1, 1] : memref<?x2x64xf32> to memref<64x2x64xf32, strided<[128, 64, 1], offset: ?>>
    "test.use"(%kt) : (memref<64x2x64xf32, strided<[128, 64, 1], offset: ?>>) -> ()
  }
  scf.for %j0 = %c0 to %bound step %c64 {
    %head = memref.subview %k[%j0, 1, 0] [64, 1, 64] [1, 1, 1] : memref<?x2x64xf32> to memref<64x1x64xf32, strided<[128, 64, 1], offset: ?>>
    %twice = affine.apply affine_map<(d0) -> (d0 * 2)>(%j0)
    %skip = memref.subview %k[%twice, 0, 0] [64, 2, 64] [1, 1, 1] : memref<?x2x64xf32> to memref<64x2x64xf32, strided<[128, 64, 1], offset: ?>>
    %local = memref.alloc() : memref<128x2x64xf32>
    %mine = memref.subview %local[%j0, 0, 0] [64, 2, 64] [1, 1, 1] : memref<128x2x64xf32> to memref<64x2x64xf32, strided<[128, 64, 1], offset: ?>>
    %gaps = memref.subview %strided[%j0, 0, 0] [64, 2, 64] [1, 1, 1] : memref<?x2x64xf32, strided<[256, 128, 1]>> to memref<64x2x64xf32, strided<[256, 128, 1], offset: ?>>
    "test.use"(%head, %skip, %mine, %gaps) : (memref<64x1x64xf32, strided<[128, 64, 1], offset: ?>>, memref<64x2x64xf32, strided<[128, 64, 1], offset: ?>>, memref<64x2x64xf32, strided<[128, 64, 1], offset: ?>>, memref<64x2x64xf32, strided<[256, 128, 1], offset: ?>>) -> ()
    memref.dealloc %local : memref<128x2x64xf32>
  } {attn.streamed_key_tiles}
  return
}

// -----

// A quantized cache's blocks ([keys, 2, 2 blocks, 34 bytes] i8), read as
// [keys, 136]: a row is 136 bytes, prefetched at its bytes 0, 64 and 128
// (the tile's rows are one contiguous run, so a row's last line that these
// miss is the next row's first).
// CHECK-LABEL: func.func @packed_blocks
// CHECK: %[[ROWS:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0], [1, 2, 3]] : memref<?x2x2x34xi8> into memref<?x136xi8>
// CHECK: arith.muli %{{.+}}, %c3
// CHECK: scf.for %[[L:.+]] =
// CHECK:   arith.divui %[[L]], %c3
// CHECK:   %[[IN:.+]] = arith.remui %[[L]], %c3
// CHECK:   %[[BYTE:.+]] = arith.muli %[[IN]], %c64
// CHECK:   memref.prefetch %[[ROWS]][%{{.+}}, %[[BYTE]]], read, locality<1>, data : memref<?x136xi8>
func.func @packed_blocks(%k: memref<?x2x2x34xi8>, %bound: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  scf.for %j0 = %c0 to %bound step %c64 {
    %kt = memref.subview %k[%j0, 0, 0, 0] [64, 2, 2, 34] [1, 1, 1, 1] : memref<?x2x2x34xi8> to memref<64x2x2x34xi8, strided<[136, 68, 34, 1], offset: ?>>
    "test.use"(%kt) : (memref<64x2x2x34xi8, strided<[136, 68, 34, 1], offset: ?>>) -> ()
  } {attn.streamed_key_tiles}
  return
}

// -----

// Buffers of index or vector elements (whose size in memory the type does
// not give) are not prefetched.
// CHECK-LABEL: func.func @not_scalar_bytes
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @not_scalar_bytes(%i: memref<?x4xindex>, %v: memref<?x4xvector<8xf32>>, %bound: index) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  scf.for %j0 = %c0 to %bound step %c64 {
    %it = memref.subview %i[%j0, 0] [64, 4] [1, 1] : memref<?x4xindex> to memref<64x4xindex, strided<[4, 1], offset: ?>>
    %vt = memref.subview %v[%j0, 0] [64, 4] [1, 1] : memref<?x4xvector<8xf32>> to memref<64x4xvector<8xf32>, strided<[4, 1], offset: ?>>
    "test.use"(%it, %vt) : (memref<64x4xindex, strided<[4, 1], offset: ?>>, memref<64x4xvector<8xf32>, strided<[4, 1], offset: ?>>) -> ()
  } {attn.streamed_key_tiles}
  return
}

// -----

// A loop from a lower bound other than 0, nested in another marked loop:
// each gets its own prefetches, the inner loop's rows from its own
// induction variable and bound.
// CHECK-LABEL: func.func @nested
// CHECK: scf.for %[[OUTER:.+]] = %{{.+}} to %{{.+}} step %c128
// CHECK:   memref.subview %{{.+}}[%[[OUTER]], 0]
// CHECK:   arith.addi %[[OUTER]], %c128
// CHECK:   memref.prefetch
// CHECK:   scf.for %[[INNER:.+]] = %c8 to %[[UB:.+]] step %c16
// CHECK:     memref.subview %{{.+}}[%[[INNER]], 0]
// CHECK:     arith.addi %[[INNER]], %c16
// CHECK:     %[[NEXT:.+]] = arith.addi %[[INNER]], %c16
// CHECK:     arith.subi %[[UB]], %[[NEXT]]
// CHECK:     memref.prefetch
// CHECK:   } {attn.streamed_key_tiles}
// CHECK: } {attn.streamed_key_tiles}
func.func @nested(%k: memref<?x16xf32>, %v: memref<?x16xf32>, %bound: index) {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %c16 = arith.constant 16 : index
  %c128 = arith.constant 128 : index
  scf.for %o = %c0 to %bound step %c128 {
    %kt = memref.subview %k[%o, 0] [128, 16] [1, 1] : memref<?x16xf32> to memref<128x16xf32, strided<[16, 1], offset: ?>>
    %ub = arith.addi %o, %c128 : index
    scf.for %j0 = %c8 to %ub step %c16 {
      %vt = memref.subview %v[%j0, 0] [16, 16] [1, 1] : memref<?x16xf32> to memref<16x16xf32, strided<[16, 1], offset: ?>>
      "test.use"(%vt) : (memref<16x16xf32, strided<[16, 1], offset: ?>>) -> ()
    } {attn.streamed_key_tiles}
    "test.use"(%kt) : (memref<128x16xf32, strided<[16, 1], offset: ?>>) -> ()
  } {attn.streamed_key_tiles}
  return
}
