// A projection that only feeds a RoPE through its head split is lowered as
// one loop over tokens and heads that projects and rotates each head.
// RUN: rotor-opt %s -convert-attn-to-linalg -split-input-file | FileCheck %s
// RUN: rotor-opt %s -convert-attn-to-linalg=fuse-rope-epilogue=false -split-input-file | FileCheck %s --check-prefix=APART

// CHECK-LABEL: func.func @fused
// CHECK: %[[OUT:.+]] = scf.forall (%[[T:.+]], %[[H:.+]]) in (%{{.+}}, 2) shared_outs(%[[S:.+]] = %{{.+}}) -> (tensor<?x2x8xf32>)
// CHECK: tensor.extract_slice %{{.+}}[%{{.+}}, 0] [8, 16] [1, 1]
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK: tensor.extract %{{.+}}[%[[T]]] : tensor<?xi32>
// CHECK: math.roundeven %{{.+}} : f32
// CHECK: scf.forall.in_parallel
// CHECK-NEXT: tensor.parallel_insert_slice %{{.+}} into %[[S]][%[[T]], %[[H]], 0] [1, 1, 8] [1, 1, 1]
// CHECK-NOT: attn.
// CHECK: return %[[OUT]]
// APART-LABEL: func.func @fused
// APART-NOT: scf.forall
func.func @fused(%x: tensor<?x16xf32>, %w: tensor<16x16xf32>, %b: tensor<16xf32>, %p: tensor<?xi32>) -> tensor<?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x16xf32>
  %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
      : tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %r = attn.rope half_split %y3, %p rotary_dim(8) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>, tensor<?xi32>
  return %r : tensor<?x2x8xf32>
}

// -----

// The un-rotated projection is also returned: nothing to fuse.
// CHECK-LABEL: func.func @other_use
// CHECK-NOT: scf.forall
// CHECK: linalg.generic
func.func @other_use(%x: tensor<?x16xf32>, %w: tensor<16x16xf32>, %p: tensor<?xi32>) -> (tensor<?x2x8xf32>, tensor<?x16xf32>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x16xf32>
  %y = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
  %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %r = attn.rope half_split %y3, %p rotary_dim(8) theta(1.0e+04)
      precision <compute = f32, accumulate = f32> : tensor<?x2x8xf32>, tensor<?xi32>
  return %r, %y : tensor<?x2x8xf32>, tensor<?x16xf32>
}
