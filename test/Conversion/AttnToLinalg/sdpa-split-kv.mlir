// Decode SDPA (one query row) as split-KV attention: no loop over KV tiles;
// scores of all tiles (keys read at a clamped index), per-tile max, sum and
// output, then one combine. With split-kv-decode=false, or several query
// rows, it stays the loop over tiles.
// RUN: rotor-opt %s -convert-attn-to-linalg -mlir-print-local-scope | FileCheck %s
// RUN: rotor-opt %s -convert-attn-to-linalg=split-kv-decode=false -mlir-print-local-scope | FileCheck %s --check-prefix=TILED

// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%[[Q:.+]]: tensor<1x14x64xf32>, %[[K:.+]]: tensor<?x2x64xf32>, %[[V:.+]]: tensor<?x2x64xf32>)
// CHECK-NOT: scf.for
// CHECK: %[[TK:.+]] = tensor.dim %[[K]], %{{.+}} : tensor<?x2x64xf32>
// CHECK: %[[SPLITS:.+]] = arith.ceildivsi %{{.+}}, %{{.+}} : index
// Scores: (t, h, s, jj, e) with e reduced; the key clamped to the last one.
// CHECK: %[[SCORES:.+]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[Q]] : tensor<1x14x64xf32>) outs(%{{.+}} : tensor<1x14x?x64xf32>)
// CHECK: arith.minsi
// CHECK: tensor.extract %[[K]]
// CHECK: %[[MASKED:.+]] = linalg.generic {{.*}}ins(%[[SCORES]] : tensor<1x14x?x64xf32>)
// CHECK: arith.cmpi sge
// CHECK: %[[TMAX:.+]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[MASKED]] : tensor<1x14x?x64xf32>) outs(%{{.+}} : tensor<1x14x?xf32>)
// CHECK: arith.maximumf
// CHECK: %[[P:.+]] = linalg.generic {{.*}}ins(%[[MASKED]], %[[TMAX]] :
// CHECK: math.exp2
// CHECK: %[[TSUM:.+]] = linalg.generic {{.*}}ins(%[[P]] : tensor<1x14x?x64xf32>) outs(%{{.+}} : tensor<1x14x?xf32>)
// CHECK: %[[TOUT:.+]] = linalg.generic {{.*}}ins(%[[P]] : tensor<1x14x?x64xf32>) outs(%{{.+}} : tensor<1x14x?x64xf32>)
// CHECK: tensor.extract %[[V]]
// CHECK: %[[MAX:.+]] = linalg.generic {{.*}}ins(%[[TMAX]] : tensor<1x14x?xf32>) outs(%{{.+}} : tensor<1x14xf32>)
// CHECK: %[[W:.+]] = linalg.generic {{.*}}ins(%[[TMAX]], %[[MAX]] :
// CHECK: %[[L:.+]] = linalg.generic {{.*}}ins(%[[W]], %[[TSUM]] :
// CHECK: %[[O:.+]] = linalg.generic {{.*}}ins(%[[W]], %[[TOUT]] : tensor<1x14x?xf32>, tensor<1x14x?x64xf32>) outs(%{{.+}} : tensor<1x14x64xf32>)
// CHECK: linalg.generic {{.*}}ins(%[[O]], %[[L]] :
// CHECK: arith.divf
// CHECK-NOT: scf.for
// CHECK: return

// TILED-LABEL: func.func @decode
// TILED: scf.for
func.func @decode(%q: tensor<1x14x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x64xf32>) -> tensor<1x14x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<1x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<1x14x64xf32>
  return %o : tensor<1x14x64xf32>
}

// Several query rows keep the loop over tiles.
// CHECK-LABEL: func.func @prefill
// CHECK: scf.for
func.func @prefill(%q: tensor<?x14x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x64xf32>) -> tensor<?x14x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x14x64xf32>
  return %o : tensor<?x14x64xf32>
}
