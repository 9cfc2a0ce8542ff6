// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -split-input-file -rotor-lower-reductions-to-register-loops=packed-epilogues=false | FileCheck %s --check-prefix=UNFUSED

// The epilogues of a packed projection (AVX2 blocks of 16 columns here):
// q = x W^T + bias, then a half-split RoPE over q viewed as [T, 2 heads,
// 2 halves, 16 pairs], as convert-attn-to-linalg and bufferization leave
// them. Fused, the bias generic and the RoPE generic are gone from the
// packed form: each panel of 16 columns packs two halves of 8 columns of
// the same pairs (head h = n0 / 32, block q = n0 mod 32 / 16: columns
// 32h + 8q + j and 16 further), its sums start from the bias's same two
// halves, and each finished row of sums is split into its halves, rotated
// (half 0 and half 1 of each pair, with the tables' 8 entries at 8q) and
// stored into the RoPE's output at [t, h, half, 8q]. The fused form is
// emitted at the RoPE's place; the dot-product form behind the test of T
// keeps the bias generic, the projection and the RoPE generic as they were.
// CHECK-DAG: #[[$HEAD:.*]] = affine_map<(d0) -> (d0 floordiv 32)>
// CHECK-DAG: #[[$PAIR:.*]] = affine_map<(d0) -> (((d0 mod 32) floordiv 16) * 8)>
// CHECK-DAG: #[[$FIRST:.*]] = affine_map<(d0) -> ((d0 floordiv 32) * 32 + ((d0 mod 32) floordiv 16) * 8)>
// CHECK-DAG: #[[$SECOND:.*]] = affine_map<(d0) -> ((d0 floordiv 32) * 32 + ((d0 mod 32) floordiv 16) * 8 + 16)>
// CHECK-LABEL: func.func @bias_rope
// CHECK-SAME: (%[[X:.*]]: memref<?x8xf32>, %[[W:.*]]: memref<64x8xf32>, %[[B:.*]]: memref<64xf32>, %[[COS:.*]]: memref<?x16xf32>, %[[SIN:.*]]: memref<?x16xf32>)
// CHECK: %[[Y:.*]] = memref.alloc
// CHECK: %[[Z:.*]] = memref.alloc
// CHECK-NOT: linalg.generic
// CHECK: scf.if
// CHECK:   scf.parallel (%[[N0:.*]]) = (%{{.*}}) to (%c64{{.*}}) step (%c16{{.*}})
// CHECK:     %[[H:.*]] = affine.apply #[[$HEAD]](%[[N0]])
// CHECK:     %[[PO:.*]] = affine.apply #[[$PAIR]](%[[N0]])
// CHECK:     %[[C1ST:.*]] = affine.apply #[[$FIRST]](%[[N0]])
// CHECK:     %[[C2ND:.*]] = affine.apply #[[$SECOND]](%[[N0]])
// CHECK:     %[[PANEL:.*]] = memref.alloc(%{{.*}}) : memref<?x16xf32>
// CHECK:     scf.for %[[C:.*]] = %{{.*}} to %c8
// CHECK:       %[[N:.*]] = arith.addi %[[C1ST]], %[[C]]
// CHECK:       scf.for %[[E:.*]] =
// CHECK:         vector.load %[[W]][%[[N]], %[[E]]] : memref<64x8xf32>, vector<8xf32>
// CHECK:         vector.store %{{.*}}, %[[PANEL]][%[[E]], %[[C]]] : memref<?x16xf32>, vector<8xf32>
// CHECK:     scf.for %[[C:.*]] = %{{.*}} to %c8
// CHECK:       %[[N:.*]] = arith.addi %[[C2ND]], %[[C]]
// CHECK:       %[[AT:.*]] = arith.addi %[[C]], %c8
// CHECK:       scf.for %[[E:.*]] =
// CHECK:         vector.load %[[W]][%[[N]], %[[E]]] : memref<64x8xf32>, vector<8xf32>
// CHECK:         vector.store %{{.*}}, %[[PANEL]][%[[E]], %[[AT]]] : memref<?x16xf32>, vector<8xf32>
// The next panel's halves (columns N0 + 16 on), whose weight rows the
// blocks of 6 prefetch: panel row r is its first half's row r, or its
// second half's row r - 8.
// CHECK:     %[[NN0:.*]] = arith.addi %[[N0]], %c16
// CHECK:     %[[N1ST:.*]] = affine.apply #[[$FIRST]](%[[NN0]])
// CHECK:     %[[N2ND:.*]] = affine.apply #[[$SECOND]](%[[NN0]])
// The bias's two halves, once per panel: every token row starts from them.
// CHECK:     %[[LO:.*]] = vector.load %[[B]][%[[C1ST]]] : memref<64xf32>, vector<8xf32>
// CHECK:     %[[S0:.*]] = vector.insert_strided_slice %[[LO]], %{{.*}} {offsets = [0], strides = [1]} : vector<8xf32> into vector<16xf32>
// CHECK:     %[[HI:.*]] = vector.load %[[B]][%[[C2ND]]] : memref<64xf32>, vector<8xf32>
// CHECK:     %[[INIT:.*]] = vector.insert_strided_slice %[[HI]], %[[S0]] {offsets = [8], strides = [1]} : vector<8xf32> into vector<16xf32>
// CHECK:     scf.for %[[T0:.*]] =
// CHECK-NOT:   vector.load %[[B]]
// CHECK:       %[[SUMS:.*]]:6 = scf.for {{.*}} iter_args(%{{[^ ]*}} = %[[INIT]], %{{[^ ]*}} = %[[INIT]], {{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:         %[[RC:.*]] = arith.select %{{.*}}, %c15{{.*}}, %{{.*}} : index
// CHECK:         %[[FROM1:.*]] = arith.addi %[[N1ST]], %[[RC]]
// CHECK:         %[[HALF2:.*]] = arith.cmpi uge, %[[RC]], %c8
// CHECK:         %[[R2:.*]] = arith.subi %[[RC]], %c8
// CHECK:         %[[FROM2:.*]] = arith.addi %[[N2ND]], %[[R2]]
// CHECK:         %[[PROW:.*]] = arith.select %[[HALF2]], %[[FROM2]], %[[FROM1]]
// CHECK:         %[[PCLAMP:.*]] = arith.minui %[[PROW]], %{{.*}}
// CHECK:         memref.prefetch %[[W]][%[[PCLAMP]], %{{.*}}], read, locality<3>, data
// CHECK:       %[[X0:.*]] = vector.extract_strided_slice %[[SUMS]]#0 {offsets = [0], sizes = [8], strides = [1]}
// CHECK:       %[[X1:.*]] = vector.extract_strided_slice %[[SUMS]]#0 {offsets = [8], sizes = [8], strides = [1]}
// CHECK:       %[[CV:.*]] = vector.load %[[COS]][%[[T0]], %[[PO]]] : memref<?x16xf32>, vector<8xf32>
// CHECK:       %[[SV:.*]] = vector.load %[[SIN]][%[[T0]], %[[PO]]] : memref<?x16xf32>, vector<8xf32>
// CHECK:       arith.mulf %{{.*}}, %[[CV]] : vector<8xf32>
// CHECK:       arith.mulf %{{.*}}, %[[SV]] : vector<8xf32>
// CHECK:       arith.subf
// CHECK:       vector.store %{{.*}}, %[[Z]][%[[T0]], %[[H]], %c0{{.*}}, %[[PO]]] : memref<?x2x2x16xf32>, vector<8xf32>
// CHECK:       arith.addf
// CHECK:       vector.store %{{.*}}, %[[Z]][%[[T0]], %[[H]], %c1{{.*}}, %[[PO]]] : memref<?x2x2x16xf32>, vector<8xf32>
// CHECK-NOT:   vector.store %{{.*}}, %[[Y]][
// CHECK: } else {
// CHECK:   linalg.generic {{.*}} ins(%[[B]] : memref<64xf32>) outs(%[[Y]] : memref<?x64xf32>)
// CHECK:   scf.parallel
// CHECK:   linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %[[COS]], %[[SIN]] : {{.*}}) outs(%[[Z]] : memref<?x2x2x16xf32>)
// CHECK: }
// CHECK-NOT: linalg.generic
// CHECK: return %[[Z]]
// Off: the bias generic before, the RoPE generic after, outside the test of T.
// UNFUSED-LABEL: func.func @bias_rope
// UNFUSED: linalg.generic {{.*}} ins(%{{.*}} : memref<64xf32>)
// UNFUSED: scf.if
// UNFUSED-NOT: vector.extract_strided_slice
// UNFUSED: } else {
// UNFUSED: }
// UNFUSED: linalg.generic {{.*}} outs(%{{.*}} : memref<?x2x2x16xf32>)
#bias = affine_map<(t, n) -> (n)>
#id2 = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
#half0 = affine_map<(t, h, p, i) -> (t, h, 0, i)>
#half1 = affine_map<(t, h, p, i) -> (t, h, 1, i)>
#table = affine_map<(t, h, p, i) -> (t, i)>
#id4 = affine_map<(t, h, p, i) -> (t, h, p, i)>
func.func @bias_rope(%x: memref<?x8xf32>, %w: memref<64x8xf32>, %b: memref<64xf32>,
                     %cos: memref<?x16xf32>, %sin: memref<?x16xf32>) -> memref<?x2x2x16xf32> {
  %c0 = arith.constant 0 : index
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) {alignment = 64 : i64} : memref<?x64xf32>
  linalg.generic {indexing_maps = [#bias, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x8xf32>, memref<64x8xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32):
    %p = arith.mulf %a, %bb : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2, 3]] output_shape [%t, 2, 2, 16] : memref<?x64xf32> into memref<?x2x2x16xf32>
  %z = memref.alloc(%t) {alignment = 64 : i64} : memref<?x2x2x16xf32>
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
  return %z : memref<?x2x2x16xf32>
}

// -----

// 48 tokens (static): the fused form alone; the bias and RoPE generics are
// gone. The output's buffer is reused afterwards by the next projection,
// which first fills it afresh (bufferization does this): the RoPE's input
// is never read again, so it is still fused. That next projection's init,
// a linalg.fill, becomes its sums' start (a broadcast of the constant).
// CHECK-LABEL: func.func @static_then_reused
// CHECK-NOT: scf.if
// CHECK-NOT: linalg.generic
// CHECK-NOT: linalg.fill
// CHECK: vector.extract_strided_slice
// CHECK: vector.store {{.*}} : memref<48x2x2x16xf32>, vector<8xf32>
// CHECK: vector.broadcast %[[ZERO:.*]] : f32 to vector<16xf32>
// CHECK-NOT: linalg
// CHECK: return
#bias = affine_map<(t, n) -> (n)>
#id2 = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
#half0 = affine_map<(t, h, p, i) -> (t, h, 0, i)>
#half1 = affine_map<(t, h, p, i) -> (t, h, 1, i)>
#table = affine_map<(t, h, p, i) -> (t, i)>
#id4 = affine_map<(t, h, p, i) -> (t, h, p, i)>
func.func @static_then_reused(%x: memref<48x8xf32>, %w: memref<64x8xf32>, %b: memref<64xf32>,
                              %cos: memref<48x16xf32>, %sin: memref<48x16xf32>,
                              %w2: memref<64x8xf32>) -> (memref<48x2x2x16xf32>, memref<48x64xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %y = memref.alloc() {alignment = 64 : i64} : memref<48x64xf32>
  linalg.generic {indexing_maps = [#bias, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<48x8xf32>, memref<64x8xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32):
    %p = arith.mulf %a, %bb : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2, 3]] output_shape [48, 2, 2, 16] : memref<48x64xf32> into memref<48x2x2x16xf32>
  %z = memref.alloc() {alignment = 64 : i64} : memref<48x2x2x16xf32>
  linalg.generic {indexing_maps = [#half0, #half1, #table, #table, #id4],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%v, %v, %cos, %sin : memref<48x2x2x16xf32>, memref<48x2x2x16xf32>, memref<48x16xf32>, memref<48x16xf32>)
      outs(%z : memref<48x2x2x16xf32>) {
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
  linalg.fill ins(%zero : f32) outs(%y : memref<48x64xf32>)
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w2 : memref<48x8xf32>, memref<64x8xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32):
    %p = arith.mulf %a, %bb : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return %z, %y : memref<48x2x2x16xf32>, memref<48x64xf32>
}

// -----

// Not fused: the RoPE's input is read again after it (the copy), and a
// RoPE whose head (32 columns) the block does not divide would not be
// either. The bias still starts the sums; the RoPE stays a generic, run on
// each chunk of a head's rows as a row op (packed-projection-row-epilogues
// .mlir), the projection's output written whole before the copy.
// CHECK-LABEL: func.func @read_after_rope
// CHECK: vector.load %{{.*}} : memref<64xf32>, vector<16xf32>
// CHECK-NOT: vector.extract_strided_slice
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : memref<?x1x2x16xf32, {{.*}}>)
// CHECK: memref.copy
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
#bias = affine_map<(t, n) -> (n)>
#id2 = affine_map<(t, n) -> (t, n)>
#half0 = affine_map<(t, h, p, i) -> (t, h, 0, i)>
#half1 = affine_map<(t, h, p, i) -> (t, h, 1, i)>
#table = affine_map<(t, h, p, i) -> (t, i)>
#id4 = affine_map<(t, h, p, i) -> (t, h, p, i)>
func.func @read_after_rope(%x: memref<48x8xf32>, %w: memref<64x8xf32>, %b: memref<64xf32>,
                           %cos: memref<48x16xf32>, %sin: memref<48x16xf32>,
                           %keep: memref<48x64xf32>) -> memref<48x2x2x16xf32> {
  %y = memref.alloc() {alignment = 64 : i64} : memref<48x64xf32>
  linalg.generic {indexing_maps = [#bias, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<48x8xf32>, memref<64x8xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32):
    %p = arith.mulf %a, %bb : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2, 3]] output_shape [48, 2, 2, 16] : memref<48x64xf32> into memref<48x2x2x16xf32>
  %z = memref.alloc() {alignment = 64 : i64} : memref<48x2x2x16xf32>
  linalg.generic {indexing_maps = [#half0, #half1, #table, #table, #id4],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%v, %v, %cos, %sin : memref<48x2x2x16xf32>, memref<48x2x2x16xf32>, memref<48x16xf32>, memref<48x16xf32>)
      outs(%z : memref<48x2x2x16xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32, %s: f32, %out: f32):
    %i = linalg.index 2 : index
    %r = arith.mulf %a, %c : f32
    linalg.yield %r : f32
  }
  memref.copy %y, %keep : memref<48x64xf32> to memref<48x64xf32>
  return %z : memref<48x2x2x16xf32>
}

// -----

// Not fused: an op between the projection and the RoPE writes the
// projection's input, so the projection cannot move down to the RoPE.
// CHECK-LABEL: func.func @input_written_between
// CHECK-NOT: vector.extract_strided_slice
// CHECK: linalg.fill
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : memref<48x2x2x16xf32>)
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
#half0 = affine_map<(t, h, p, i) -> (t, h, 0, i)>
#half1 = affine_map<(t, h, p, i) -> (t, h, 1, i)>
#table = affine_map<(t, h, p, i) -> (t, i)>
#id4 = affine_map<(t, h, p, i) -> (t, h, p, i)>
func.func @input_written_between(%w: memref<64x8xf32>, %cos: memref<48x16xf32>,
                                 %sin: memref<48x16xf32>) -> memref<48x2x2x16xf32> {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  %x = memref.alloc() {alignment = 64 : i64} : memref<48x8xf32>
  linalg.fill ins(%one : f32) outs(%x : memref<48x8xf32>)
  %y = memref.alloc() {alignment = 64 : i64} : memref<48x64xf32>
  linalg.fill ins(%zero : f32) outs(%y : memref<48x64xf32>)
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<48x8xf32>, memref<64x8xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32):
    %p = arith.mulf %a, %bb : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  linalg.fill ins(%zero : f32) outs(%x : memref<48x8xf32>)
  %v = memref.expand_shape %y [[0], [1, 2, 3]] output_shape [48, 2, 2, 16] : memref<48x64xf32> into memref<48x2x2x16xf32>
  %z = memref.alloc() {alignment = 64 : i64} : memref<48x2x2x16xf32>
  linalg.generic {indexing_maps = [#half0, #half1, #table, #table, #id4],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%v, %v, %cos, %sin : memref<48x2x2x16xf32>, memref<48x2x2x16xf32>, memref<48x16xf32>, memref<48x16xf32>)
      outs(%z : memref<48x2x2x16xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32, %s: f32, %out: f32):
    %r = arith.mulf %a, %c : f32
    linalg.yield %r : f32
  }
  return %z : memref<48x2x2x16xf32>
}

// -----

// Not fused (review findings): a RoPE that also reads another head of the
// view (not in the row of sums at hand); a RoPE whose output is a view of
// the projection's input, which other panels still read. And no bias in
// the sums when y is read through a view between its init and the
// projection: the init generic stays.
// CHECK-LABEL: func.func @other_head_read
// CHECK-NOT: vector.extract_strided_slice
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : memref<48x2x2x16xf32>)
// CHECK-LABEL: func.func @output_aliases_input
// CHECK-NOT: vector.extract_strided_slice
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : memref<48x2x2x16xf32>)
// CHECK-LABEL: func.func @init_read_through_view
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : memref<64xf32>)
// CHECK: linalg.copy
// CHECK-NOT: vector.load %{{.*}} : memref<64xf32>
// CHECK: return
#bias = affine_map<(t, n) -> (n)>
#id2 = affine_map<(t, n) -> (t, n)>
#x = affine_map<(t, n, e) -> (t, e)>
#w = affine_map<(t, n, e) -> (n, e)>
#y = affine_map<(t, n, e) -> (t, n)>
#half0 = affine_map<(t, h, p, i) -> (t, h, 0, i)>
#half1 = affine_map<(t, h, p, i) -> (t, h, 1, i)>
#head0 = affine_map<(t, h, p, i) -> (t, 0, 0, i)>
#table = affine_map<(t, h, p, i) -> (t, i)>
#id4 = affine_map<(t, h, p, i) -> (t, h, p, i)>
func.func @other_head_read(%x: memref<48x8xf32>, %w: memref<64x8xf32>, %b: memref<64xf32>,
                           %cos: memref<48x16xf32>) -> memref<48x2x2x16xf32> {
  %y = memref.alloc() {alignment = 64 : i64} : memref<48x64xf32>
  linalg.generic {indexing_maps = [#bias, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<48x8xf32>, memref<64x8xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32):
    %p = arith.mulf %a, %bb : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2, 3]] output_shape [48, 2, 2, 16] : memref<48x64xf32> into memref<48x2x2x16xf32>
  %z = memref.alloc() {alignment = 64 : i64} : memref<48x2x2x16xf32>
  linalg.generic {indexing_maps = [#half0, #half1, #head0, #table, #id4],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%v, %v, %v, %cos : memref<48x2x2x16xf32>, memref<48x2x2x16xf32>, memref<48x2x2x16xf32>, memref<48x16xf32>)
      outs(%z : memref<48x2x2x16xf32>) {
  ^bb0(%a: f32, %bb: f32, %h0: f32, %c: f32, %out: f32):
    %u = arith.mulf %a, %c : f32
    %r = arith.addf %u, %h0 : f32
    linalg.yield %r : f32
  }
  return %z : memref<48x2x2x16xf32>
}
func.func @output_aliases_input(%x: memref<48x64xf32>, %w: memref<64x64xf32>, %b: memref<64xf32>,
                                %cos: memref<48x16xf32>) {
  %y = memref.alloc() {alignment = 64 : i64} : memref<48x64xf32>
  linalg.generic {indexing_maps = [#bias, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<48x64xf32>, memref<64x64xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32):
    %p = arith.mulf %a, %bb : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  %v = memref.expand_shape %y [[0], [1, 2, 3]] output_shape [48, 2, 2, 16] : memref<48x64xf32> into memref<48x2x2x16xf32>
  %z = memref.expand_shape %x [[0], [1, 2, 3]] output_shape [48, 2, 2, 16] : memref<48x64xf32> into memref<48x2x2x16xf32>
  linalg.generic {indexing_maps = [#half0, #half1, #table, #id4],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%v, %v, %cos : memref<48x2x2x16xf32>, memref<48x2x2x16xf32>, memref<48x16xf32>)
      outs(%z : memref<48x2x2x16xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32, %out: f32):
    %r = arith.mulf %a, %c : f32
    linalg.yield %r : f32
  }
  return
}
func.func @init_read_through_view(%x: memref<48x8xf32>, %w: memref<64x8xf32>, %b: memref<64xf32>)
    -> (memref<48x64xf32>, memref<48x2x32xf32>) {
  %copy = memref.alloc() {alignment = 64 : i64} : memref<48x2x32xf32>
  %y = memref.alloc() {alignment = 64 : i64} : memref<48x64xf32>
  %v = memref.expand_shape %y [[0], [1, 2]] output_shape [48, 2, 32] : memref<48x64xf32> into memref<48x2x32xf32>
  linalg.generic {indexing_maps = [#bias, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<64xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.copy ins(%v : memref<48x2x32xf32>) outs(%copy : memref<48x2x32xf32>)
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<48x8xf32>, memref<64x8xf32>) outs(%y : memref<48x64xf32>) {
  ^bb0(%a: f32, %bb: f32, %c: f32):
    %p = arith.mulf %a, %bb : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return %y, %copy : memref<48x64xf32>, memref<48x2x32xf32>
}
