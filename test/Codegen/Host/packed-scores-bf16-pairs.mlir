// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32 bf16-dot-product=true" -canonicalize | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32" | FileCheck %s --check-prefix=OFF
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=32 bf16-dot-product=true amx-tiles=true" -canonicalize | FileCheck %s --check-prefix=AMX --enable-var-scope
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops="vector-registers=16 bf16-dot-product=true" | FileCheck %s --check-prefix=OFF

// A prefill block's packed scores (GQA: 7 query heads on one KV head) with
// compute bf16 and accumulate f32 (attn.sdpa's lowering: q and k bf16,
// widened, the product added to an f32 sum), on a CPU with AVX512-BF16. The
// tile's query rows (t, h linearized) are copied once as bf16 with each pair
// swapped (element e into the odd slot, which vdpbf16ps adds first); each
// block of 64 keys becomes a panel of bf16 pairs [32, 128], row k holding
// every key's pair (2k, 2k + 1) swapped (16 keys x 16 pairs at a time
// transposed in registers as i32 lanes, the last keys of a ragged block a
// pair at a time), the columns past the tile's end zero; blocks of 6 rows
// then run over the pairs, the panel's row loaded as four vectors of 16 pairs
// and each row's pair broadcast as one 32-bit word, one avx512.dot per vector
// of 16 scores, loaded and stored through the mask of the keys present; the
// rows past the last whole block go one at a time. Without the option, or
// with AVX2's 16 registers, the f32 form (no bf16 pairs) runs.
// CHECK-DAG: #[[$K0:.*]] = affine_map<(d0) -> (d0 floordiv 2)>
// CHECK-DAG: #[[$K8:.*]] = affine_map<(d0) -> (d0 floordiv 2 + 8)>
// CHECK-DAG: #[[$K15:.*]] = affine_map<(d0) -> (d0 floordiv 2 + 15)>
// CHECK-LABEL: func.func @gqa_pairs
// CHECK-SAME: (%[[Q:.*]]: memref<?x7x64xbf16>, %[[K:.*]]: memref<?x1x64xbf16>, %[[S:.*]]: memref<?x7x?xf32>)
// CHECK: %[[T:.*]] = memref.dim %[[Q]], %c0
// CHECK: %[[KEYS:.*]] = memref.dim %[[K]], %c0
// CHECK: %[[ROWS:.*]] = arith.muli %[[T]], %c7
// CHECK: %[[QP:.*]] = memref.alloc(%[[ROWS]]) : memref<?x64xbf16>
// CHECK: scf.for %[[R:.*]] = %c0 to %[[ROWS]] step %c1
// CHECK:   %[[TH:.*]]:2 = affine.delinearize_index %[[R]] into (%[[T]], 7)
// CHECK:   scf.for %[[E:.*]] = %c0 to %c64 step %c32
// CHECK:     %[[QR:.*]] = vector.load %[[Q]][%[[TH]]#0, %[[TH]]#1, %[[E]]] : memref<?x7x64xbf16>, vector<32xbf16>
// CHECK:     %[[QS:.*]] = vector.shuffle %[[QR]], %[[QR]] [1, 0, 3, 2, 5, 4, {{.*}}, 31, 30]
// CHECK:     vector.store %[[QS]], %[[QP]][%[[R]], %[[E]]]
// CHECK: %[[PANEL:.*]] = memref.alloc() {alignment = 64 : i64} : memref<32x128xbf16>
// CHECK: scf.for %[[J0:.*]] = %c0 to %[[KEYS]] step %c64
// CHECK:   %[[COUNT:.*]] = arith.minsi %{{.*}}, %c64
// CHECK:   %[[REST:.*]] = arith.remui %[[COUNT]], %c16
// CHECK:   %[[WHOLE:.*]] = arith.subi %[[COUNT]], %[[REST]]
// CHECK:   scf.for %[[C0:.*]] = %c0 to %[[WHOLE]] step %c16
// CHECK:     %[[BSLOT:.*]] = arith.addi %[[C0]], %[[C0]]
// CHECK:     scf.for %[[EB:.*]] = %c0 to %c64 step %c32
// CHECK:       %[[JB:.*]] = arith.addi %[[J0]], %[[C0]]
// CHECK:       %[[KB:.*]] = vector.load %[[K]][%[[JB]], %c0, %[[EB]]] : memref<?x1x64xbf16>, vector<32xbf16>
// CHECK:       %[[KBS:.*]] = vector.shuffle %[[KB]], %[[KB]] [1, 0, 3, 2,
// CHECK:       vector.bitcast %[[KBS]] : vector<32xbf16> to vector<16xi32>
// CHECK-COUNT-15: vector.bitcast %{{.*}} : vector<32xbf16> to vector<16xi32>
// The last of the four levels of the transposition: column 0 (pair 0 of
// the 16 keys) and column 8 (pair 8).
// CHECK:       %[[COL0:.*]] = vector.shuffle %{{.*}}, %{{.*}} [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]
// CHECK-NEXT:  %[[COL8:.*]] = vector.shuffle %{{.*}}, %{{.*}} [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31]
// CHECK:       %[[BK0:.*]] = affine.apply #[[$K0]](%[[EB]])
// CHECK-NEXT:  %[[BP0:.*]] = vector.bitcast %[[COL0]] : vector<16xi32> to vector<32xbf16>
// CHECK-NEXT:  vector.store %[[BP0]], %[[PANEL]][%[[BK0]], %[[BSLOT]]] : memref<32x128xbf16>, vector<32xbf16>
// CHECK:       %[[BK8:.*]] = affine.apply #[[$K8]](%[[EB]])
// CHECK-NEXT:  %[[BP8:.*]] = vector.bitcast %[[COL8]] : vector<16xi32> to vector<32xbf16>
// CHECK-NEXT:  vector.store %[[BP8]], %[[PANEL]][%[[BK8]], %[[BSLOT]]] : memref<32x128xbf16>, vector<32xbf16>
// CHECK-COUNT-7: vector.store %{{.*}}, %[[PANEL]][%{{.*}}, %[[BSLOT]]] : memref<32x128xbf16>, vector<32xbf16>
// The last count mod 16 keys, a pair at a time:
// CHECK:   scf.for %[[C:.*]] = %[[WHOLE]] to %[[COUNT]] step %c1
// CHECK:     %[[SLOT:.*]] = arith.addi %[[C]], %[[C]]
// CHECK:     scf.for %[[EK:.*]] = %c0 to %c64 step %c32
// CHECK:       %[[J:.*]] = arith.addi %[[J0]], %[[C]]
// CHECK:       %[[KR:.*]] = vector.load %[[K]][%[[J]], %c0, %[[EK]]] : memref<?x1x64xbf16>, vector<32xbf16>
// CHECK-NOT:   arith.truncf
// CHECK:       %[[KS:.*]] = vector.shuffle %[[KR]], %[[KR]] [1, 0, 3, 2,
// CHECK:       %[[P0:.*]] = vector.extract_strided_slice %[[KS]] {offsets = [0], sizes = [2], strides = [1]}
// CHECK:       %[[K0:.*]] = affine.apply #[[$K0]](%[[EK]])
// CHECK:       vector.store %[[P0]], %[[PANEL]][%[[K0]], %[[SLOT]]] : memref<32x128xbf16>, vector<2xbf16>
// CHECK:       %[[P15:.*]] = vector.extract_strided_slice %[[KS]] {offsets = [30], sizes = [2], strides = [1]}
// CHECK:       %[[K15:.*]] = affine.apply #[[$K15]](%[[EK]])
// CHECK:       vector.store %[[P15]], %[[PANEL]][%[[K15]], %[[SLOT]]]
// CHECK:   scf.for %[[CZ:.*]] = %[[COUNT]] to %c64 step %c1
// CHECK:     %[[ZSLOT:.*]] = arith.addi %[[CZ]], %[[CZ]]
// CHECK:     scf.for %[[KZ:.*]] = %c0 to %c32 step %c1
// CHECK:       vector.store %{{.*}}, %[[PANEL]][%[[KZ]], %[[ZSLOT]]] : memref<32x128xbf16>, vector<2xbf16>
// CHECK:   %[[MASK:.*]] = vector.create_mask %[[COUNT]] : vector<64xi1>
// CHECK:   scf.parallel (%[[R0:.*]]) = (%c0) to (%{{.*}}) step (%c6)
// CHECK-COUNT-6: vector.maskedload %[[S]][%{{.*}}, %{{.*}}, %[[J0]]], %[[MASK]]
// CHECK:     scf.for %[[PK:.*]] = %c0 to %c32 step %c1 iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:       %[[W0:.*]] = vector.load %[[PANEL]][%[[PK]], %c0] : memref<32x128xbf16>, vector<32xbf16>
// CHECK:       %[[W3:.*]] = vector.load %[[PANEL]][%[[PK]], %c96] : memref<32x128xbf16>, vector<32xbf16>
// CHECK:       %[[PE:.*]] = arith.addi %[[PK]], %[[PK]]
// CHECK:       %[[PAIR:.*]] = vector.load %[[QP]][%[[R0]], %[[PE]]] : memref<?x64xbf16>, vector<2xbf16>
// CHECK:       %[[WORD:.*]] = vector.bitcast %[[PAIR]] : vector<2xbf16> to vector<1xi32>
// CHECK:       %[[X:.*]] = vector.extract %[[WORD]][0] : i32 from vector<1xi32>
// CHECK:       %[[XB:.*]] = vector.broadcast %[[X]] : i32 to vector<16xi32>
// CHECK:       %[[XP:.*]] = vector.bitcast %[[XB]] : vector<16xi32> to vector<32xbf16>
// CHECK:       x86vector.avx512.dot %{{.*}}, %[[W0]], %[[XP]] : vector<32xbf16> -> vector<16xf32>
// CHECK-COUNT-23: x86vector.avx512.dot
// CHECK:       scf.yield
// CHECK-COUNT-6: vector.maskedstore %[[S]][%{{.*}}, %{{.*}}, %[[J0]]], %[[MASK]]
// CHECK:   scf.parallel (%{{.*}}) = (%{{.*}}) to (%[[ROWS]]) step (%c1)
// CHECK:     scf.for
// CHECK-COUNT-4: x86vector.avx512.dot
// CHECK:     vector.maskedstore %[[S]]
// CHECK: memref.dealloc %[[PANEL]]
// CHECK: memref.dealloc %[[QP]]
// With AMX tiles: the same query pairs and key panels; per block of 64
// keys the rows run in blocks of 16 as AMX tile products (two steps of 32
// over the head dim of 64: the query pairs a tile of 16 rows x 32, the
// panel's 16 pair rows x 16 keys per 16), then blocks of 6 and single rows
// as vdpbf16ps.
// AMX-LABEL: func.func @gqa_pairs
// AMX: %[[QP:.*]] = memref.alloc(%{{.*}}) : memref<?x64xbf16>
// AMX: %[[PANEL:.*]] = memref.alloc() {alignment = 64 : i64} : memref<32x128xbf16>
// AMX: scf.parallel (%[[R0:.*]]) = (%c0) to (%{{.*}}) step (%c16) {
// AMX: memref.alloca() : memref<16x64xf32>
// AMX: scf.for %{{.*}} = %c0 to %c2 step %c1 iter_args(
// AMX: amx.tile_load %[[QP]][%[[R0]], %{{.*}}] : memref<?x64xbf16> into !amx.tile<16x32xbf16>
// AMX: amx.tile_load %[[PANEL]][%{{.*}}, %c0] : memref<32x128xbf16> into !amx.tile<16x32xbf16>
// AMX-COUNT-4: amx.tile_mulf
// AMX: step (%c6) {
// AMX-NOT: amx.
// AMX: x86vector.avx512.dot
// AMX: step (%c1) {
// AMX-NOT: amx.
// AMX: x86vector.avx512.dot
// OFF-LABEL: func.func @gqa_pairs
// OFF-NOT: x86vector
// OFF: return
func.func @gqa_pairs(%q: memref<?x7x64xbf16>, %k: memref<?x1x64xbf16>,
                     %s: memref<?x7x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x7x64xbf16>, memref<?x1x64xbf16>) outs(%s : memref<?x7x?xf32>) {
  ^bb0(%a: bf16, %b: bf16, %c: f32):
    %x = arith.extf %a : bf16 to f32
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %x, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// An f32 query that the payload rounds to bf16 (to nearest even) is rounded
// as its pairs are made, once per row; the bf16 keys are not rounded.
// CHECK-LABEL: func.func @rounded_query
// CHECK: scf.for
// CHECK:   scf.for
// CHECK:     %[[QR:.*]] = vector.load %{{.*}} : memref<?x7x64xf32>, vector<32xf32>
// CHECK:     %[[QB:.*]] = arith.truncf %[[QR]] : vector<32xf32> to vector<32xbf16>
// CHECK:     vector.shuffle %[[QB]], %[[QB]] [1, 0,
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<32x128xbf16>
// CHECK: vector.load %{{.*}} : memref<?x1x64xbf16>, vector<32xbf16>
// CHECK-NOT: arith.truncf
// CHECK: x86vector.avx512.dot
// OFF-LABEL: func.func @rounded_query
// OFF-NOT: x86vector
// OFF: return
func.func @rounded_query(%q: memref<?x7x64xf32>, %k: memref<?x1x64xbf16>,
                         %s: memref<?x7x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x7x64xf32>, memref<?x1x64xbf16>) outs(%s : memref<?x7x?xf32>) {
  ^bb0(%a: f32, %b: bf16, %c: f32):
    %t = arith.truncf %a : f32 to bf16
    %x = arith.extf %t : bf16 to f32
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %x, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// The online-softmax step's scale, causal mask and row max stay fused into
// the pair form's rows, as into the f32 form's (packed-scores-epilogue.mlir):
// the sums start from the fill's value, each row is scaled, masked and
// folded into the running max, and stored once. No generic is left.
// CHECK-LABEL: func.func @softmax_tile
// CHECK-NOT: linalg.fill
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<32x128xbf16>
// CHECK: scf.parallel
// CHECK-NOT: vector.maskedload
// CHECK-COUNT-24: x86vector.avx512.dot
// CHECK: arith.cmpi sgt, %{{.*}}, %{{.*}} : vector<64xi64>
// CHECK: arith.maximumf %{{.*}}, %{{.*}} : f32
// CHECK: vector.maskedstore
// CHECK-NOT: linalg.generic
// CHECK: return
// OFF-LABEL: func.func @softmax_tile
// OFF-NOT: x86vector
// OFF: return
#q = affine_map<(t, h, j, e) -> (t, h, e)>
#k = affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>
#s4 = affine_map<(t, h, j, e) -> (t, h, j)>
#id = affine_map<(t, h, j) -> (t, h, j)>
#tok = affine_map<(t, h, j) -> (t)>
#row = affine_map<(t, h, j) -> (t, h)>
func.func @softmax_tile(%q: memref<?x7x64xbf16>, %k: memref<?x1x64xbf16>,
                        %pos: memref<?xi64>, %m: memref<?x7xf32>,
                        %start: i64) -> memref<?x7x?xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %scale = arith.constant 0.18 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %rows = memref.dim %q, %c0 : memref<?x7x64xbf16>
  %keys = memref.dim %k, %c0 : memref<?x1x64xbf16>
  %s = memref.alloc(%rows, %keys) {alignment = 64 : i64} : memref<?x7x?xf32>
  linalg.fill ins(%zero : f32) outs(%s : memref<?x7x?xf32>)
  linalg.generic {indexing_maps = [#q, #k, #s4],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x7x64xbf16>, memref<?x1x64xbf16>) outs(%s : memref<?x7x?xf32>) {
  ^bb0(%a: bf16, %b: bf16, %c: f32):
    %x = arith.extf %a : bf16 to f32
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %x, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id, #tok, #id],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%s, %pos : memref<?x7x?xf32>, memref<?xi64>) outs(%s : memref<?x7x?xf32>) {
  ^bb0(%x: f32, %p: i64, %o: f32):
    %y = arith.mulf %x, %scale : f32
    %j = linalg.index 2 : index
    %ji = arith.index_cast %j : index to i64
    %key = arith.addi %start, %ji : i64
    %future = arith.cmpi sgt, %key, %p : i64
    %r = arith.select %future, %ninf, %y : f32
    linalg.yield %r : f32
  }
  %running = memref.alloc(%rows) {alignment = 64 : i64} : memref<?x7xf32>
  linalg.copy ins(%m : memref<?x7xf32>) outs(%running : memref<?x7xf32>)
  linalg.generic {indexing_maps = [#id, #row],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%s : memref<?x7x?xf32>) outs(%running : memref<?x7xf32>) {
  ^bb0(%x: f32, %o: f32):
    %r = arith.maximumf %x, %o : f32
    linalg.yield %r : f32
  }
  linalg.copy ins(%running : memref<?x7xf32>) outs(%m : memref<?x7xf32>)
  return %s : memref<?x7x?xf32>
}

// -----

// Forms the pair form does not take (each runs the f32 packed form): an
// f32 query used as it is (f32 compute), a depth of 48 (not whole runs of
// 32), f16 keys, a query read with a stride along e, and a product with a
// second op in the payload.
// CHECK-LABEL: func.func @f32_query
// CHECK-NOT: x86vector
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<64x64xbf16>
// CHECK-NOT: x86vector
// CHECK: return
func.func @f32_query(%q: memref<?x7x64xf32>, %k: memref<?x1x64xbf16>,
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

// CHECK-LABEL: func.func @depth_48
// CHECK-NOT: x86vector
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<48x64xbf16>
// CHECK-NOT: x86vector
// CHECK: return
func.func @depth_48(%q: memref<?x7x48xbf16>, %k: memref<?x1x48xbf16>,
                   %s: memref<?x7x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x7x48xbf16>, memref<?x1x48xbf16>) outs(%s : memref<?x7x?xf32>) {
  ^bb0(%a: bf16, %b: bf16, %c: f32):
    %x = arith.extf %a : bf16 to f32
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %x, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// CHECK-LABEL: func.func @f16_keys
// CHECK-NOT: x86vector
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<64x64xf16>
// CHECK-NOT: x86vector
// CHECK: return
func.func @f16_keys(%q: memref<?x7x64xbf16>, %k: memref<?x1x64xf16>,
                    %s: memref<?x7x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x7x64xbf16>, memref<?x1x64xf16>) outs(%s : memref<?x7x?xf32>) {
  ^bb0(%a: bf16, %b: f16, %c: f32):
    %x = arith.extf %a : bf16 to f32
    %w = arith.extf %b : f16 to f32
    %p = arith.mulf %x, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// CHECK-LABEL: func.func @strided_query
// CHECK-NOT: x86vector
// CHECK: return
func.func @strided_query(%q: memref<?x7x64xbf16, strided<[896, 64, 2]>>,
                         %k: memref<?x1x64xbf16>, %s: memref<?x7x?xf32>) {
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x7x64xbf16, strided<[896, 64, 2]>>, memref<?x1x64xbf16>) outs(%s : memref<?x7x?xf32>) {
  ^bb0(%a: bf16, %b: bf16, %c: f32):
    %x = arith.extf %a : bf16 to f32
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %x, %w : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// CHECK-LABEL: func.func @scaled_product
// CHECK-NOT: x86vector
// CHECK: return
func.func @scaled_product(%q: memref<?x7x64xbf16>, %k: memref<?x1x64xbf16>,
                          %s: memref<?x7x?xf32>) {
  %half = arith.constant 0.5 : f32
  linalg.generic {
      indexing_maps = [affine_map<(t, h, j, e) -> (t, h, e)>,
                       affine_map<(t, h, j, e) -> (j, h floordiv 7, e)>,
                       affine_map<(t, h, j, e) -> (t, h, j)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x7x64xbf16>, memref<?x1x64xbf16>) outs(%s : memref<?x7x?xf32>) {
  ^bb0(%a: bf16, %b: bf16, %c: f32):
    %x = arith.extf %a : bf16 to f32
    %w = arith.extf %b : bf16 to f32
    %p = arith.mulf %x, %w : f32
    %h = arith.mulf %p, %half : f32
    %r = arith.addf %c, %h : f32
    linalg.yield %r : f32
  }
  return
}
