// RUN: rotor-opt %s -allow-unregistered-dialect -split-input-file -rotor-prefetch-next-key-tile -mlir-print-local-scope | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -allow-unregistered-dialect -split-input-file -rotor-prefetch-next-key-tile=locality=1 | FileCheck %s --check-prefix=LOW
// RUN: not rotor-opt %s -allow-unregistered-dialect -split-input-file -rotor-prefetch-next-key-tile=locality=4 2>&1 | FileCheck %s --check-prefix=BAD

// A decode step's tile loop (marked by convert-attn-to-linalg): the tiles of
// K and V ([keys, 2 KV heads, 64] f32, a row 512 bytes, 8 lines) each get,
// right after their subview, prefetches of the next tile's rows: from
// j0 + 64, min(64, bound - (j0 + 64)) rows (none on the last tile), every
// 64-byte line of a row (8: head = line floordiv 4, element = line mod 4 *
// 16). K's offset is the induction variable itself, V's an affine.apply of
// it plus the range's first key.
// CHECK-LABEL: func.func @decode_tiles
// CHECK-SAME: (%[[K:.+]]: memref<?x2x64xf32>, %[[V:.+]]: memref<?x2x64xf32>, %[[BOUND:.+]]: index, %[[K0:.+]]: index)
// CHECK: scf.for %[[J0:.+]] = %{{.+}} to %[[BOUND]] step %[[STEP:.+]] {
// CHECK:   memref.subview %[[K]][%[[J0]], 0, 0]
// CHECK:   %[[NEXT:.+]] = arith.addi %[[J0]], %[[STEP]]
// CHECK:   %[[LEFT:.+]] = arith.subi %[[BOUND]], %[[NEXT]]
// CHECK:   %[[ROWS:.+]] = arith.minsi %[[STEP]], %[[LEFT]]
// CHECK:   %[[FIRST:.+]] = arith.addi %[[J0]], %[[STEP]]
// CHECK:   scf.for %[[R:.+]] = %{{.+}} to %[[ROWS]]
// CHECK:     %[[ROW:.+]] = arith.addi %[[FIRST]], %[[R]]
// CHECK:     scf.for %[[LINE:.+]] = %{{.+}} to %c8{{.*}}
// CHECK:       %[[HEAD:.+]] = affine.apply affine_map<(d0) -> (((d0 * 16) floordiv 64) mod 2)>(%[[LINE]])
// CHECK:       %[[E:.+]] = affine.apply affine_map<(d0) -> ((d0 * 16) mod 64)>(%[[LINE]])
// CHECK:       memref.prefetch %[[K]][%[[ROW]], %[[HEAD]], %[[E]]], read, locality<3>, data
// CHECK:   %[[VOFF:.+]] = affine.apply affine_map<(d0)[s0] -> (d0 + s0)>(%[[J0]])[%[[K0]]]
// CHECK:   memref.subview %[[V]][%[[VOFF]], 0, 0]
// CHECK:   arith.addi %[[VOFF]], %[[STEP]]
// CHECK:       memref.prefetch %[[V]]
// CHECK: } {attn.streamed_key_tiles}
// LOW-LABEL: func.func @decode_tiles
// LOW: memref.prefetch %{{.+}}, read, locality<1>, data
// BAD: error: rotor-prefetch-next-key-tile: locality must be 0 to 3, got 4
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

// A quantized cache's blocks ([keys, 2, 2 blocks, 34 bytes] i8): a row is
// 136 bytes, prefetched at its bytes 0, 64 and 128 (the tile's rows are one
// contiguous run, so a row's last line that these miss is the next row's
// first).
// CHECK-LABEL: func.func @packed_blocks
// CHECK: scf.for %{{.+}} = %{{.+}} to %c3{{.*}}
// CHECK:   affine.apply affine_map<(d0) -> (((d0 * 64) floordiv 68) mod 2)>
// CHECK:   affine.apply affine_map<(d0) -> (((d0 * 64) floordiv 34) mod 2)>
// CHECK:   affine.apply affine_map<(d0) -> ((d0 * 64) mod 34)>
// CHECK:   memref.prefetch %{{.+}} : memref<?x2x2x34xi8>
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
