// The loop-level form of each attn op family.
// RUN: rotor-opt %s -convert-attn-to-linalg -split-input-file -mlir-print-local-scope | FileCheck %s

// The sum starts from the widened bias, products of bf16 operands are formed
// and summed in f32, and one truncation rounds the result.
// CHECK-LABEL: func.func @linear_bias_bf16
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xbf16>, %[[W:.+]]: tensor<4x8xbf16>, %[[B:.+]]: tensor<4xbf16>)
// CHECK: %[[INIT:.+]] = linalg.generic {{.*}}ins(%[[B]] : tensor<4xbf16>) outs(%{{.+}} : tensor<?x4xf32>)
// CHECK: arith.extf %{{.+}} : bf16 to f32
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[X]], %[[W]] : {{.*}}) outs(%[[INIT]] : tensor<?x4xf32>)
// CHECK: arith.mulf %{{.+}}, %{{.+}} : f32
// CHECK: arith.addf %{{.+}}, %{{.+}} : f32
// CHECK: linalg.generic {{.*}}ins(%[[SUM]] : tensor<?x4xf32>) outs(%{{.+}} : tensor<?x4xbf16>)
// CHECK: arith.truncf %{{.+}} : f32 to bf16
func.func @linear_bias_bf16(%x: tensor<?x8xbf16>, %w: tensor<4x8xbf16>, %b: tensor<4xbf16>) -> tensor<?x4xbf16> {
  %0 = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
      : tensor<?x8xbf16>, tensor<4x8xbf16>, tensor<4xbf16> -> tensor<?x4xbf16>
  return %0 : tensor<?x4xbf16>
}

// -----

// theta = 1e4, R = 4: inv_freq = [1, 1e-2], a constant; the partner of
// dim d < 2 is d + 2; the angle is reduced modulo 2 pi in f64.
// CHECK-LABEL: func.func @rope_half_split
// CHECK: %[[FREQ:.+]] = arith.constant dense<[1.000000e+00, 1.000000e-02]> : tensor<2xf64>
// CHECK: linalg.generic
// CHECK: %[[D:.+]] = linalg.index 2 : index
// CHECK: %[[ROT:.+]] = arith.cmpi ult, %[[D]], %c4 : index
// CHECK: %[[FIRST:.+]] = arith.cmpi ult, %[[D]], %c2 : index
// CHECK: tensor.extract %[[FREQ]]
// CHECK: arith.sitofp %{{.+}} : i32 to f64
// CHECK: math.roundeven %{{.+}} : f64
// cos and sin as polynomials (Cephes's, after a reduction by pi/2 whose
// quadrant selects them): no libm call, so the loop vectorizes.
// CHECK-NOT: math.cos
// CHECK: math.roundeven %{{.+}} : f32
// CHECK: arith.fptosi %{{.+}} : f32 to i32
// CHECK: arith.select %[[FIRST]]
// CHECK: arith.select %[[ROT]]
func.func @rope_half_split(%x: tensor<?x2x8xf32>, %pos: tensor<?xi32>) -> tensor<?x2x8xf32> {
  %0 = attn.rope half_split %x, %pos rotary_dim(4) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>, tensor<?xi32>
  return %0 : tensor<?x2x8xf32>
}

// -----

// Dynamic NTK: the base follows max(positions) + 1 at run time.
// CHECK-LABEL: func.func @rope_dynamic
// CHECK: linalg.generic {{.*}}iterator_types = ["reduction"]
// CHECK: arith.maxsi
// CHECK: math.powf %{{.+}}, %{{.+}} : f64
// CHECK: arith.cmpf ogt
// CHECK: %[[BASE:.+]] = arith.select
// CHECK: math.log %[[BASE]] : f64
// CHECK: math.exp %{{.+}} : f64
// CHECK: arith.xori
func.func @rope_dynamic(%x: tensor<?x2x8xf32>, %pos: tensor<?xi64>) -> tensor<?x2x8xf32> {
  %0 = attn.rope interleaved %x, %pos rotary_dim(8) theta(1.0e+04)
      scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 16>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>, tensor<?xi64>
  return %0 : tensor<?x2x8xf32>
}

// -----

// G = 4: input signs, two butterfly stages (partners d ^ 1, d ^ 2), output
// signs times 1/sqrt(4). Signs come from bit masks (s1 = [1, -1, 1, 1]: bit
// 1, mask 2; s2 = [1, 1, -1, 1]: bit 2, mask 4), not tables.
// CHECK-LABEL: func.func @hadamard
// CHECK-NOT: tensor<4xf64>
// CHECK: arith.constant -1.000000e+00 : f32
// CHECK: arith.shrui %c2_i64
// CHECK: arith.select
// CHECK: arith.xori %{{.+}}, %c1
// CHECK: arith.addf
// CHECK: arith.subf
// CHECK: arith.xori %{{.+}}, %c2
// CHECK-NOT: arith.xori
// CHECK: arith.constant -5.000000e-01 : f32
// CHECK: arith.shrui %c4_i64
func.func @hadamard(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %0 = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, -1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<3x8xf32>
  return %0 : tensor<3x8xf32>
}

// -----

// Blocks of 32: absmax per block, scale = absmax / 7 rounded to f16, codes
// round half to even and clamp to [-7, 7].
// CHECK-LABEL: func.func @quantize_absmax
// CHECK: %[[BLOCKS:.+]] = tensor.expand_shape %{{.+}} {{\[}}[0], [1, 2]] output_shape [%{{.+}}, 2, 32] : tensor<?x64xf32> into tensor<?x2x32xf32>
// CHECK: math.absf
// CHECK: arith.maximumf
// CHECK: arith.divf %{{.+}}, %cst{{.*}} : f32
// CHECK: arith.truncf %{{.+}} : f32 to f16
// CHECK: math.roundeven
// CHECK: arith.minimumf
// CHECK: arith.fptosi %{{.+}} : f32 to i8
// CHECK: tensor.collapse_shape %{{.+}} {{\[}}[0], [1, 2]] : tensor<?x2x32xi8> into tensor<?x64xi8>
func.func @quantize_absmax(%x: tensor<?x64xf32>) -> (tensor<?x64xi8>, tensor<?x2xf16>) {
  %c, %s = attn.quantize %x format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
      precision <compute = f32, accumulate = f32> : tensor<?x64xf32>
  return %c, %s : tensor<?x64xi8>, tensor<?x2xf16>
}

// -----

// Online softmax over KV tiles of 64, stopping at the last visible key; KV
// head h floordiv 2 serves query head h.
// CHECK-LABEL: func.func @sdpa_gqa_causal
// CHECK: arith.maxsi
// CHECK: %[[BOUND:.+]] = arith.minsi %{{.+}}, %{{.+}} : index
// CHECK: scf.for %[[J0:.+]] = %{{.+}} to %[[BOUND]] step %c64{{.*}} iter_args
// CHECK: tensor.extract_slice %{{.+}}[%[[J0]], 0, 0]
// CHECK: affine_map<(d0, d1, d2, d3) -> (d2, d1 floordiv 2, d3)>
// CHECK: arith.maximumf
// CHECK: math.exp2
// CHECK: affine_map<(d0, d1, d2, d3) -> (d3, d1 floordiv 2, d2)>
// CHECK: scf.yield
// CHECK: arith.divf
func.func @sdpa_gqa_causal(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32> -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}
