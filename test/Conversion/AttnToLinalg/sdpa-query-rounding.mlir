// attn.sdpa with a compute type narrower than its accumulate type rounds
// the query once, as a tensor of the compute type, before the loop over key
// tiles: the scores read each query element once per key, and rounding it
// there cost more than the scores' FMAs. The scores' payload then only
// widens q (a product of bf16 values, which the host runs as AVX512-BF16
// dot products: packed-scores-bf16-pairs.mlir); keys are still rounded (or
// widened) in it. A query that is a widening of a compute-typed tensor
// (what attn-select-precision's plans give) is read narrow, not rounded
// again, and an f32-compute SDPA has no rounding pass at all. Both
// lowerings: the loop over tiles and split-KV decode.
// RUN: rotor-opt %s -convert-attn-to-linalg -split-input-file -mlir-print-local-scope | FileCheck %s

// CHECK-LABEL: func.func @prefill_rounds_q_once
// CHECK-SAME: (%[[Q:.+]]: tensor<?x4x64xf32>, %[[K:.+]]: tensor<?x2x64xf32>,
// CHECK: %[[QR:.+]] = linalg.generic {{.*}}ins(%[[Q]] : tensor<?x4x64xf32>) outs(%{{.+}} : tensor<?x4x64xbf16>)
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: bf16):
// CHECK-NEXT: %[[R:.+]] = arith.truncf %[[IN]] : f32 to bf16
// CHECK-NEXT: linalg.yield %[[R]] : bf16
// CHECK: scf.for
// The scores: q widened, k rounded and widened.
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[QR]], %{{.+}} : tensor<?x4x64xbf16>, tensor<?x2x64xf32>)
// CHECK-NEXT: ^bb0(%[[QE:.+]]: bf16, %[[KE:.+]]: f32, %[[S:.+]]: f32):
// CHECK-NEXT: %[[QW:.+]] = arith.extf %[[QE]] : bf16 to f32
// CHECK-NEXT: %[[KR:.+]] = arith.truncf %[[KE]] : f32 to bf16
// CHECK-NEXT: %[[KW:.+]] = arith.extf %[[KR]] : bf16 to f32
// CHECK-NEXT: %[[P:.+]] = arith.mulf %[[QW]], %[[KW]] : f32
// CHECK-NEXT: arith.addf %[[S]], %[[P]] : f32
func.func @prefill_rounds_q_once(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x64xf32>) -> tensor<?x4x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32>
      : tensor<?x4x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x4x64xf32>
  return %o : tensor<?x4x64xf32>
}

// -----

// CHECK-LABEL: func.func @prefill_q_already_widened
// CHECK-SAME: (%[[Q16:.+]]: tensor<?x4x64xbf16>,
// CHECK-NOT: arith.truncf
// CHECK: scf.for
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[Q16]], %{{.+}} : tensor<?x4x64xbf16>, tensor<?x2x64xbf16>)
// CHECK-NEXT: ^bb0(%[[QE:.+]]: bf16, %[[KE:.+]]: bf16, %[[S:.+]]: f32):
// CHECK-NEXT: %[[QW:.+]] = arith.extf %[[QE]] : bf16 to f32
// CHECK-NEXT: %[[KW:.+]] = arith.extf %[[KE]] : bf16 to f32
// CHECK-NEXT: %[[P:.+]] = arith.mulf %[[QW]], %[[KW]] : f32
func.func @prefill_q_already_widened(%q16: tensor<?x4x64xbf16>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>) -> tensor<?x4x64xf32> {
  %q = arith.extf %q16 : tensor<?x4x64xbf16> to tensor<?x4x64xf32>
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32>
      : tensor<?x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<?x4x64xf32>
  return %o : tensor<?x4x64xf32>
}

// -----

// A widening from another type than the compute type is rounded.
// CHECK-LABEL: func.func @prefill_q_widened_from_f16
// CHECK: %[[QW:.+]] = arith.extf %{{.+}} : tensor<?x4x64xf16> to tensor<?x4x64xf32>
// CHECK: linalg.generic {{.*}}ins(%[[QW]] : tensor<?x4x64xf32>) outs(%{{.+}} : tensor<?x4x64xbf16>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.truncf %{{.+}} : f32 to bf16
func.func @prefill_q_widened_from_f16(%q16: tensor<?x4x64xf16>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>) -> tensor<?x4x64xf32> {
  %q = arith.extf %q16 : tensor<?x4x64xf16> to tensor<?x4x64xf32>
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32>
      : tensor<?x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<?x4x64xf32>
  return %o : tensor<?x4x64xf32>
}

// -----

// CHECK-LABEL: func.func @prefill_f32_compute
// CHECK-NOT: arith.truncf
// CHECK: return
func.func @prefill_f32_compute(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x64xf32>) -> tensor<?x4x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x4x64xf32>
  return %o : tensor<?x4x64xf32>
}

// -----

// Split-KV decode: the same, before the scores of every tile.
// CHECK-LABEL: func.func @decode_rounds_q_once
// CHECK-SAME: (%[[Q:.+]]: tensor<1x4x64xf32>,
// CHECK: %[[QR:.+]] = linalg.generic {{.*}}ins(%[[Q]] : tensor<1x4x64xf32>) outs(%{{.+}} : tensor<1x4x64xbf16>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.truncf %{{.+}} : f32 to bf16
// CHECK-NEXT: linalg.yield
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[QR]] : tensor<1x4x64xbf16>)
// CHECK-NEXT: ^bb0(%[[QE:.+]]: bf16, %[[S:.+]]: f32):
// CHECK-NOT: arith.truncf
// CHECK: %[[KE:.+]] = tensor.extract
// CHECK-NEXT: %[[KW:.+]] = arith.extf %[[KE]] : bf16 to f32
// CHECK-NEXT: %[[QW:.+]] = arith.extf %[[QE]] : bf16 to f32
// CHECK-NEXT: %[[P:.+]] = arith.mulf %[[QW]], %[[KW]] : f32
// CHECK-NEXT: arith.addf %[[S]], %[[P]] : f32
func.func @decode_rounds_q_once(%q: tensor<1x4x64xf32>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>) -> tensor<1x4x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32>
      : tensor<1x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<1x4x64xf32>
  return %o : tensor<1x4x64xf32>
}
