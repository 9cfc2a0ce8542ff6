// attn.sdpa with round_probabilities rounds each probability to the
// compute type where P·V multiplies it with V; the row sum adds the
// unrounded probabilities. The loop over key tiles rounds each tile's
// probabilities once: into an f32 tensor of the rounded values, which P·V
// reads as it reads unrounded ones; with narrow-probabilities (the host
// pipeline's with AVX512-BF16), a tile of many query rows into a tensor of
// the compute type, which P·V widens (its payload then a product of bf16
// values). Split-KV decode rounds them in P·V's payload. Without the
// attribute P·V reads them as they are.
// RUN: rotor-opt %s -convert-attn-to-linalg -split-input-file -mlir-print-local-scope | FileCheck %s
// RUN: rotor-opt %s -convert-attn-to-linalg=narrow-probabilities=true -split-input-file -mlir-print-local-scope | FileCheck %s --check-prefix=NARROW
// A decode step in the host's loop form (key ranges): its probabilities
// stay f32 even with narrow-probabilities (its P·V has few rows, which
// broadcast each probability).
// RUN: rotor-opt %s -convert-attn-to-linalg="split-kv-decode=false sdpa-query-block=32 sdpa-key-split=2048 narrow-probabilities=true" -split-input-file -mlir-print-local-scope | FileCheck %s --check-prefix=RANGES
// So does one without key ranges (a static row count within a block of
// queries: few rows).
// RUN: rotor-opt %s -convert-attn-to-linalg="split-kv-decode=false sdpa-query-block=32 narrow-probabilities=true" -split-input-file -mlir-print-local-scope | FileCheck %s --check-prefix=RANGES

// RANGES-LABEL: func.func @prefill_rounds_p
// CHECK-LABEL: func.func @prefill_rounds_p
// CHECK: scf.for
// The probabilities: exp2 of the scores against the running max.
// CHECK: math.exp2
// The row sum of the unrounded probabilities.
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-NEXT: ^bb0(%[[PS:.+]]: f32, %[[L:.+]]: f32):
// CHECK-NEXT: arith.addf %[[PS]], %[[L]] : f32
// The tile's probabilities rounded once, kept in f32.
// CHECK: %[[PB:.+]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel"]} ins(%{{.+}} : tensor<?x4x?xf32>) outs(%{{.+}} : tensor<?x4x?xf32>)
// CHECK-NEXT: ^bb0(%[[PF:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[PR:.+]] = arith.truncf %[[PF]] : f32 to bf16
// CHECK-NEXT: %[[PRW:.+]] = arith.extf %[[PR]] : bf16 to f32
// CHECK-NEXT: linalg.yield %[[PRW]] : f32
// P·V: v (a bf16 cache) widened, p read as it is.
// CHECK-NEXT: } -> tensor<?x4x?xf32>
// CHECK-NEXT: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[PB]], %{{.+}} : tensor<?x4x?xf32>, tensor<?x2x64xbf16>)
// CHECK-NEXT: ^bb0(%[[P:.+]]: f32, %[[V:.+]]: bf16, %[[ACC:.+]]: f32):
// CHECK-NEXT: %[[VW:.+]] = arith.extf %[[V]] : bf16 to f32
// CHECK-NEXT: %[[PV:.+]] = arith.mulf %[[P]], %[[VW]] : f32
// CHECK-NEXT: arith.addf %[[ACC]], %[[PV]] : f32
// With narrow-probabilities: rounded to a bf16 tensor, which P·V widens.
// NARROW-LABEL: func.func @prefill_rounds_p
// NARROW: %[[PB:.+]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel"]} ins(%{{.+}} : tensor<?x4x?xf32>) outs(%{{.+}} : tensor<?x4x?xbf16>)
// NARROW-NEXT: ^bb0(%[[PF:.+]]: f32, %{{.+}}: bf16):
// NARROW-NEXT: %[[PR:.+]] = arith.truncf %[[PF]] : f32 to bf16
// NARROW-NEXT: linalg.yield %[[PR]] : bf16
// NARROW-NEXT: } -> tensor<?x4x?xbf16>
// NARROW-NEXT: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[PB]], %{{.+}} : tensor<?x4x?xbf16>, tensor<?x2x64xbf16>)
// NARROW-NEXT: ^bb0(%[[P:.+]]: bf16, %[[V:.+]]: bf16, %[[ACC:.+]]: f32):
// NARROW-NEXT: %[[VW:.+]] = arith.extf %[[V]] : bf16 to f32
// NARROW-NEXT: %[[PW:.+]] = arith.extf %[[P]] : bf16 to f32
// NARROW-NEXT: %[[PV:.+]] = arith.mulf %[[PW]], %[[VW]] : f32
// NARROW-NEXT: arith.addf %[[ACC]], %[[PV]] : f32
func.func @prefill_rounds_p(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>) -> tensor<?x4x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32> round_probabilities
      : tensor<?x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<?x4x64xf32>
  return %o : tensor<?x4x64xf32>
}

// -----

// RANGES-LABEL: func.func @prefill_keeps_p
// CHECK-LABEL: func.func @prefill_keeps_p
// NARROW-LABEL: func.func @prefill_keeps_p
// NARROW-NOT: tensor<?x4x?xbf16>
// NARROW: return
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

// RANGES-LABEL: func.func @decode_rounds_p
// RANGES-COUNT-2: arith.truncf %{{.+}} : f32 to bf16
// RANGES-NEXT: arith.extf %{{.+}} : bf16 to f32
// RANGES-NEXT: linalg.yield %{{.+}} : f32
// RANGES-NOT: tensor<1x4x?xbf16>
// RANGES: return
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

// -----

// A V head dim that is not whole 64-column blocks (no pair form): the
// rounded probabilities stay f32 with narrow-probabilities too.
// CHECK-LABEL: func.func @prefill_dv32
// NARROW-LABEL: func.func @prefill_dv32
// NARROW: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel"]} ins(%{{.+}} : tensor<?x4x?xf32>) outs(%{{.+}} : tensor<?x4x?xf32>)
// NARROW-NEXT: ^bb0
// NARROW-NEXT: arith.truncf %{{.+}} : f32 to bf16
// NARROW-NEXT: arith.extf
// NARROW-NOT: tensor<?x4x?xbf16>
// NARROW: return
// RANGES-LABEL: func.func @prefill_dv32
func.func @prefill_dv32(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x32xbf16>) -> tensor<?x4x32xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32> round_probabilities
      : tensor<?x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x32xbf16> -> tensor<?x4x32xf32>
  return %o : tensor<?x4x32xf32>
}
