// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32 bf16-dot-product=true amx-tiles=true" -canonicalize | FileCheck %s
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32 amx-tiles=true" | FileCheck %s --check-prefix=NOPAIRS
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32 bf16-dot-product=true" | FileCheck %s --check-prefix=NOAMX

// A projection with compute bf16 and accumulate f32 on a CPU with AMX-BF16:
// the bf16 pair form's input pairs and panels, its blocks of 16 tokens as AMX
// tile products. Each row's sums start from the output's row, staged in a
// 16 x 64 f32 buffer that the four 16 x 16 sum tiles load from; each step of
// 32 elements of e loads the block's pairs (16 tokens x 32) and, per 16
// columns, the panel's 16 pair rows x 32 (row stride 128: the panel's
// [E/2, 128] rows), one tdpbf16ps (amx.tile_mulf) per sum tile, the tiles
// carried by the loop; the finished tiles go back to the buffer, and each row
// from it to the output. The rest of the 20 tokens (4) runs as one more
// block of 16: the input's pairs have 15 zeroed rows after the last token
// for it to read, its rows past the last token start from the last row's
// output (discarded), and only its 4 rows are stored: no vdpbf16ps. Without
// bf16 pairs (no bf16-dot-product) there are no tiles; without amx-tiles,
// the pair form takes every token.
// CHECK-LABEL: func.func @twenty_tokens
// CHECK-SAME: (%[[X:.*]]: memref<20x64xf32>, %[[W:.*]]: memref<128x64xf32>, %[[Y:.*]]: memref<20x128xf32>)
// CHECK: %[[XP:.*]] = memref.alloc() : memref<35x64xbf16>
// CHECK: %[[PAIRS:.*]] = memref.cast %[[XP]] : memref<35x64xbf16> to memref<?x64xbf16>
// CHECK: scf.for %[[PAD:.*]] = %c20 to %c35 step %c1
// CHECK:   scf.for %[[PE:.*]] = %c0 to %c64 step %c32
// CHECK:     vector.store %{{.*}}, %[[XP]][%[[PAD]], %[[PE]]] : memref<35x64xbf16>, vector<32xbf16>
// CHECK: scf.parallel (%[[N0:.*]]) = (%c0) to (%c128) step (%c64)
// CHECK:   %[[PANEL:.*]] = memref.cast %{{.*}} : memref<32x128xbf16> to memref<?x128xbf16>
// CHECK:   %[[STAGE:.*]] = memref.alloca() : memref<16x64xf32>
// CHECK:   %[[R0:.*]] = vector.load %[[Y]][%c0, %[[N0]]] : memref<20x128xf32>, vector<64xf32>
// CHECK:   vector.store %[[R0]], %[[STAGE]][%c0, %c0] : memref<16x64xf32>, vector<64xf32>
// CHECK-COUNT-15: vector.store %{{.*}}, %[[STAGE]]
// CHECK:   %[[S0:.*]] = amx.tile_load %[[STAGE]][%c0, %c0] : memref<16x64xf32> into !amx.tile<16x16xf32>
// CHECK:   %[[S1:.*]] = amx.tile_load %[[STAGE]][%c0, %c16]
// CHECK:   %[[S2:.*]] = amx.tile_load %[[STAGE]][%c0, %c32]
// CHECK:   %[[S3:.*]] = amx.tile_load %[[STAGE]][%c0, %c48]
// CHECK:   %[[SUMS:.*]]:4 = scf.for %[[K:.*]] = %c0 to %c2 step %c1 iter_args(%[[A0:.*]] = %[[S0]], %[[A1:.*]] = %[[S1]], %[[A2:.*]] = %[[S2]], %[[A3:.*]] = %[[S3]]) -> (!amx.tile<16x16xf32>, !amx.tile<16x16xf32>, !amx.tile<16x16xf32>, !amx.tile<16x16xf32>)
// CHECK:     %[[E:.*]] = arith.muli %[[K]], %c32
// CHECK:     %[[KR:.*]] = arith.muli %[[K]], %c16
// CHECK:     %[[XT:.*]] = amx.tile_load %[[PAIRS]][%c0, %[[E]]] : memref<?x64xbf16> into !amx.tile<16x32xbf16>
// CHECK:     %[[W0:.*]] = amx.tile_load %[[PANEL]][%[[KR]], %c0] : memref<?x128xbf16> into !amx.tile<16x32xbf16>
// CHECK:     %[[N0S:.*]] = amx.tile_mulf %[[XT]], %[[W0]], %[[A0]]
// CHECK:     %[[W1:.*]] = amx.tile_load %[[PANEL]][%[[KR]], %c32]
// CHECK:     %[[N1S:.*]] = amx.tile_mulf %[[XT]], %[[W1]], %[[A1]]
// CHECK:     %[[W2:.*]] = amx.tile_load %[[PANEL]][%[[KR]], %c64]
// CHECK:     %[[N2S:.*]] = amx.tile_mulf %[[XT]], %[[W2]], %[[A2]]
// CHECK:     %[[W3:.*]] = amx.tile_load %[[PANEL]][%[[KR]], %c96]
// CHECK:     %[[N3S:.*]] = amx.tile_mulf %[[XT]], %[[W3]], %[[A3]]
// CHECK:     scf.yield %[[N0S]], %[[N1S]], %[[N2S]], %[[N3S]]
// CHECK:   amx.tile_store %[[STAGE]][%c0, %c0], %[[SUMS]]#0
// CHECK:   amx.tile_store %[[STAGE]][%c0, %c16], %[[SUMS]]#1
// CHECK:   amx.tile_store %[[STAGE]][%c0, %c32], %[[SUMS]]#2
// CHECK:   amx.tile_store %[[STAGE]][%c0, %c48], %[[SUMS]]#3
// CHECK:   %[[F0:.*]] = vector.load %[[STAGE]][%c0, %c0] : memref<16x64xf32>, vector<64xf32>
// CHECK:   vector.store %[[F0]], %[[Y]][%c0, %[[N0]]]
// CHECK-COUNT-15: vector.store %{{.*}}, %[[Y]]
// CHECK-NOT: amx.
// CHECK-NOT: avx512.dot
// CHECK:   vector.load %[[Y]][%c16, %[[N0]]]
// CHECK-COUNT-3: vector.load %[[Y]]
// CHECK-COUNT-12: vector.load %[[Y]][%c19, %[[N0]]]
// CHECK:   scf.for {{.*}} iter_args
// CHECK:     amx.tile_load %[[PAIRS]][%c16, %{{.*}}] : memref<?x64xbf16> into !amx.tile<16x32xbf16>
// CHECK-COUNT-4: amx.tile_mulf
// CHECK-COUNT-4: amx.tile_store %[[STAGE]]
// CHECK:   vector.store %{{.*}}, %[[Y]][%c16, %[[N0]]]
// CHECK-COUNT-3: vector.store %{{.*}}, %[[Y]]
// CHECK-NOT: vector.store %{{.*}}, %[[Y]]
// CHECK-NOT: x86vector
// CHECK:   memref.dealloc
// NOPAIRS-LABEL: func.func @twenty_tokens
// NOPAIRS-NOT: amx.
// NOPAIRS-NOT: x86vector
// NOAMX-LABEL: func.func @twenty_tokens
// NOAMX-NOT: amx.
// NOAMX: x86vector.avx512.dot
// NOAMX-NOT: amx.
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @twenty_tokens(%x: memref<20x64xf32>, %w: memref<128x64xf32>, %y: memref<20x128xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<20x64xf32>, memref<128x64xf32>) outs(%y : memref<20x128xf32>) {
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

// Tokens known only at run time: blocks of 16 from token 0 up to the last
// whole block (T - T mod 16), then, when T mod 16 is not 0, one more block
// whose rows past T start from row T - 1's output and are not stored.
// CHECK-LABEL: func.func @dynamic_tokens
// CHECK: %[[T:.*]] = memref.dim
// CHECK: %[[REST:.*]] = arith.remui %[[T]], %c16
// CHECK: %[[END:.*]] = arith.subi %[[T]], %[[REST]]
// CHECK: %[[LAST:.*]] = arith.subi %[[T]], %c1
// CHECK: scf.for %[[T0:.*]] = %c0 to %[[END]] step %c16
// CHECK:   scf.for {{.*}} iter_args({{.*}}) -> (!amx.tile<16x16xf32>, !amx.tile<16x16xf32>, !amx.tile<16x16xf32>, !amx.tile<16x16xf32>)
// CHECK:     amx.tile_load %{{.*}}[%[[T0]], %{{.*}}] : memref<?x64xbf16> into !amx.tile<16x32xbf16>
// CHECK-COUNT-4: amx.tile_mulf
// CHECK: %[[RESTROWS:.*]] = arith.subi %[[T]], %[[END]]
// CHECK: %[[RESTBLOCKS:.*]] = arith.ceildivui %[[RESTROWS]], %c16
// CHECK: %[[RESTLEN:.*]] = arith.muli %[[RESTBLOCKS]], %c16
// CHECK: %[[PEND:.*]] = arith.addi %[[END]], %[[RESTLEN]]
// CHECK: scf.for %[[P0:.*]] = %[[END]] to %[[PEND]] step %c16
// CHECK:   arith.minui %[[P0]], %[[LAST]]
// CHECK:   amx.tile_load %{{.*}}[%[[P0]], %{{.*}}] : memref<?x64xbf16> into !amx.tile<16x32xbf16>
// CHECK:   %[[IN:.*]] = arith.cmpi ult, %[[P0]], %[[T]]
// CHECK:   scf.if %[[IN]] {
// CHECK:     vector.store %{{.*}}, %{{.*}}[%[[P0]], %c0] : memref<?x64xf32>, vector<64xf32>
// CHECK-COUNT-15: scf.if
// CHECK-NOT: x86vector
// CHECK: } else {
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
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

// An output filled with +0.0 just before (bufferization's fresh buffer):
// the fill becomes the sums' start, and the sum tiles start zeroed
// (tilezero) instead of being loaded from staged rows of zeros. A fill of
// -0.0 is not +0.0 (-0.0 + -0.0 stays -0.0), so its tiles are loaded.
// CHECK-LABEL: func.func @zero_filled
// CHECK:   %[[STAGE:.*]] = memref.alloca() : memref<16x64xf32>
// CHECK-NOT: vector.store %{{.*}}, %[[STAGE]]
// CHECK-NOT: amx.tile_load %[[STAGE]]
// CHECK-COUNT-4: amx.tile_zero : !amx.tile<16x16xf32>
// CHECK-NOT: amx.tile_load %[[STAGE]]
// CHECK:   scf.for {{.*}} iter_args({{.*}}) -> (!amx.tile<16x16xf32>, !amx.tile<16x16xf32>, !amx.tile<16x16xf32>, !amx.tile<16x16xf32>)
// CHECK-COUNT-4: amx.tile_mulf
// CHECK-COUNT-4: amx.tile_store %[[STAGE]]
// CHECK-LABEL: func.func @negative_zero_filled
// CHECK-NOT: amx.tile_zero
// CHECK:   %[[NSTAGE:.*]] = memref.alloca() : memref<16x64xf32>
// CHECK-COUNT-16: vector.store %{{.*}}, %[[NSTAGE]]
// CHECK-COUNT-4: amx.tile_load %[[NSTAGE]]
// CHECK-NOT: amx.tile_zero
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
func.func @zero_filled(%x: memref<32x64xf32>, %w: memref<64x64xbf16>) -> memref<32x64xf32> {
  %zero = arith.constant 0.0 : f32
  %y = memref.alloc() {alignment = 64 : i64} : memref<32x64xf32>
  linalg.fill ins(%zero : f32) outs(%y : memref<32x64xf32>)
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<32x64xf32>, memref<64x64xbf16>) outs(%y : memref<32x64xf32>) {
  ^bb0(%a: f32, %b: bf16, %s: f32):
    %0 = arith.truncf %a : f32 to bf16
    %1 = arith.extf %0 : bf16 to f32
    %3 = arith.extf %b : bf16 to f32
    %4 = arith.mulf %1, %3 : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return %y : memref<32x64xf32>
}
func.func @negative_zero_filled(%x: memref<32x64xf32>, %w: memref<64x64xbf16>) -> memref<32x64xf32> {
  %zero = arith.constant -0.0 : f32
  %y = memref.alloc() {alignment = 64 : i64} : memref<32x64xf32>
  linalg.fill ins(%zero : f32) outs(%y : memref<32x64xf32>)
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<32x64xf32>, memref<64x64xbf16>) outs(%y : memref<32x64xf32>) {
  ^bb0(%a: f32, %b: bf16, %s: f32):
    %0 = arith.truncf %a : f32 to bf16
    %1 = arith.extf %0 : bf16 to f32
    %3 = arith.extf %b : bf16 to f32
    %4 = arith.mulf %1, %3 : f32
    %5 = arith.addf %s, %4 : f32
    linalg.yield %5 : f32
  }
  return %y : memref<32x64xf32>
}
