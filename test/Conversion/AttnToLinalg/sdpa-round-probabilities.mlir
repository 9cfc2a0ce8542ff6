// attn.sdpa with round_probabilities rounds each probability to the
// compute type where P·V multiplies it with V; the row sum adds the
// unrounded probabilities. The loop over key tiles rounds each tile's
// probabilities once, into a tensor of the compute type (as it does the
// query), which P·V widens; split-KV decode rounds them in P·V's payload.
// Without the attribute P·V reads them as they are.
// RUN: rotor-opt %s -convert-attn-to-linalg -split-input-file -mlir-print-local-scope | FileCheck %s

// CHECK-LABEL: func.func @prefill_rounds_p
// CHECK: scf.for
// The probabilities: exp2 of the scores against the running max.
// CHECK: math.exp2
// The row sum of the unrounded probabilities.
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-NEXT: ^bb0(%[[PS:.+]]: f32, %[[L:.+]]: f32):
// CHECK-NEXT: arith.addf %[[PS]], %[[L]] : f32
// The tile's probabilities rounded once to a bf16 tensor.
// CHECK: %[[PB:.+]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel"]} ins(%{{.+}} : tensor<?x4x?xf32>) outs(%{{.+}} : tensor<?x4x?xbf16>)
// CHECK-NEXT: ^bb0(%[[PF:.+]]: f32, %{{.+}}: bf16):
// CHECK-NEXT: %[[PR:.+]] = arith.truncf %[[PF]] : f32 to bf16
// CHECK-NEXT: linalg.yield %[[PR]] : bf16
// P·V: p and v (a bf16 cache) widened.
// CHECK-NEXT: } -> tensor<?x4x?xbf16>
// CHECK-NEXT: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[PB]], %{{.+}} : tensor<?x4x?xbf16>, tensor<?x2x64xbf16>)
// CHECK-NEXT: ^bb0(%[[P:.+]]: bf16, %[[V:.+]]: bf16, %[[ACC:.+]]: f32):
// CHECK-NEXT: %[[VW:.+]] = arith.extf %[[V]] : bf16 to f32
// CHECK-NEXT: %[[PW:.+]] = arith.extf %[[P]] : bf16 to f32
// CHECK-NEXT: %[[PV:.+]] = arith.mulf %[[PW]], %[[VW]] : f32
// CHECK-NEXT: arith.addf %[[ACC]], %[[PV]] : f32
func.func @prefill_rounds_p(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>) -> tensor<?x4x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32> round_probabilities
      : tensor<?x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<?x4x64xf32>
  return %o : tensor<?x4x64xf32>
}

// -----

// CHECK-LABEL: func.func @prefill_keeps_p
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%{{.+}}, %{{.+}} : tensor<?x4x?xf32>, tensor<?x2x64xbf16>)
// CHECK-NEXT: ^bb0(%[[P:.+]]: f32, %[[V:.+]]: bf16, %[[ACC:.+]]: f32):
// CHECK-NEXT: %[[VW:.+]] = arith.extf %[[V]] : bf16 to f32
// CHECK-NEXT: %[[PV:.+]] = arith.mulf %[[P]], %[[VW]] : f32
// CHECK-NEXT: arith.addf %[[ACC]], %[[PV]] : f32
func.func @prefill_keeps_p(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>) -> tensor<?x4x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32>
      : tensor<?x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<?x4x64xf32>
  return %o : tensor<?x4x64xf32>
}

// -----

// Split-KV's P·V reads V with a clamped key index inside its body.
// CHECK-LABEL: func.func @decode_rounds_p
// CHECK: %[[V:.+]] = tensor.extract %arg2
// CHECK-NEXT: %[[VW:.+]] = arith.extf %[[V]] : bf16 to f32
// CHECK-NEXT: %[[PR:.+]] = arith.truncf %in : f32 to bf16
// CHECK-NEXT: %[[PW:.+]] = arith.extf %[[PR]] : bf16 to f32
// CHECK-NEXT: %[[PV:.+]] = arith.mulf %[[PW]], %[[VW]] : f32
// CHECK-NEXT: arith.addf %out, %[[PV]] : f32
func.func @decode_rounds_p(%q: tensor<1x4x64xf32>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>) -> tensor<1x4x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32> round_probabilities
      : tensor<1x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<1x4x64xf32>
  return %o : tensor<1x4x64xf32>
}
