// With hadamard-lanes (the host), each row's Hadamard groups are rotated in
// SIMD vectors in one pass; without it, one generic per butterfly stage.
// RUN: rotor-opt %s -split-input-file -convert-attn-to-linalg="hadamard-lanes=8" -canonicalize -mlir-print-local-scope | FileCheck %s
// RUN: rotor-opt %s -split-input-file -convert-attn-to-linalg -canonicalize -mlir-print-local-scope | FileCheck %s --check-prefix=STAGES

// Group 16, two groups per row of 32, 8 lanes: two vectors per group. The
// stages of 1, 2 and 4 pair lanes (shuffle by lane xor h, then x + mate in
// the lower lanes and mate - x in the upper); the stage of 8 pairs the two
// vectors. Signs before; signs times 1/sqrt(16) after.
// CHECK-LABEL: func.func @rows
// CHECK-DAG: %[[UPPER4:.*]] = arith.constant dense<[false, false, false, false, true, true, true, true]> : vector<8xi1>
// CHECK-DAG: %[[UPPER1:.*]] = arith.constant dense<[false, true, false, true, false, true, false, true]> : vector<8xi1>
// CHECK-DAG: %[[S1LOW:.*]] = arith.constant dense<[1.000000e+00, -1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00]> : vector<8xf32>
// CHECK-DAG: %[[S2LOW:.*]] = arith.constant dense<[-2.500000e-01, 2.500000e-01, 2.500000e-01, 2.500000e-01, 2.500000e-01, 2.500000e-01, 2.500000e-01, 2.500000e-01]> : vector<8xf32>
// CHECK: scf.forall (%[[T:.*]], %[[H:.*]]) in (%{{.*}}, 2) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK: %[[X0:.*]] = vector.transfer_read %arg0[%[[T]], %[[H]], %c0]
// CHECK: %[[A:.*]] = arith.mulf %[[X0]], %[[S1LOW]]
// CHECK: %[[X1:.*]] = vector.transfer_read %arg0[%[[T]], %[[H]], %c8]
// CHECK: %[[B:.*]] = arith.mulf %[[X1]]
// CHECK: %[[AMATE:.*]] = vector.shuffle %[[A]], %[[A]] [1, 0, 3, 2, 5, 4, 7, 6]
// CHECK: %[[ADIFF:.*]] = arith.subf %[[AMATE]], %[[A]]
// CHECK: %[[ASUM:.*]] = arith.addf %[[A]], %[[AMATE]]
// CHECK: arith.select %[[UPPER1]], %[[ADIFF]], %[[ASUM]]
// CHECK: vector.shuffle %{{.*}} [2, 3, 0, 1, 6, 7, 4, 5]
// CHECK: vector.shuffle %{{.*}} [4, 5, 6, 7, 0, 1, 2, 3]
// CHECK: %[[LOW:.*]] = arith.select %[[UPPER4]]
// CHECK: vector.shuffle %{{.*}} [4, 5, 6, 7, 0, 1, 2, 3]
// CHECK: %[[HIGH:.*]] = arith.select %[[UPPER4]]
// CHECK: %[[SUM:.*]] = arith.addf %[[LOW]], %[[HIGH]]
// CHECK: %[[DIFF:.*]] = arith.subf %[[LOW]], %[[HIGH]]
// CHECK: %[[Y0:.*]] = arith.mulf %[[SUM]], %[[S2LOW]]
// CHECK: %[[ROW0:.*]] = vector.transfer_write %[[Y0]], %{{.*}}[%c0]
// CHECK: arith.mulf %[[DIFF]]
// CHECK: vector.transfer_write %{{.*}}, %[[ROW0]][%c8]
// The second group reads elements 16 and 24.
// CHECK: vector.transfer_read %arg0[%[[T]], %[[H]], %c16]
// CHECK: vector.transfer_read %arg0[%[[T]], %[[H]], %c24]
// CHECK: scf.forall.in_parallel
// CHECK: tensor.parallel_insert_slice %{{.*}} into %[[OUT]][%[[T]], %[[H]], 0] [1, 1, 32] [1, 1, 1] : tensor<32xf32> into tensor<?x2x32xf32>
// CHECK-NOT: linalg.generic
// CHECK: return
// STAGES-LABEL: func.func @rows
// STAGES-COUNT-6: linalg.generic
// STAGES-NOT: linalg.generic
// STAGES-NOT: vector.
// STAGES: return
func.func @rows(%x: tensor<?x2x32xf32>) -> tensor<?x2x32xf32> {
  %y = attn.hadamard %x rotation(<group = 16, s1 = [1, -1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1], s2 = [-1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<?x2x32xf32>
  return %y : tensor<?x2x32xf32>
}

// -----

// A bf16 tensor: widened to the compute type after the load, rounded back
// before the store.
// CHECK-LABEL: func.func @bf16
// CHECK: %[[X:.*]] = vector.transfer_read {{.*}} : tensor<4x16xbf16>, vector<8xbf16>
// CHECK: arith.extf %[[X]] : vector<8xbf16> to vector<8xf32>
// CHECK: %[[Y:.*]] = arith.truncf %{{.*}} : vector<8xf32> to vector<8xbf16>
// CHECK: vector.transfer_write %[[Y]]
func.func @bf16(%x: tensor<4x16xbf16>) -> tensor<4x16xbf16> {
  %y = attn.hadamard %x rotation(<group = 8, s1 = [1, -1, 1, 1, 1, 1, 1, 1], s2 = [1, 1, -1, 1, 1, 1, 1, 1]>) inverse
      precision <compute = f32, accumulate = f32> : tensor<4x16xbf16>
  return %y : tensor<4x16xbf16>
}

// -----

// A group of 4 is less than a vector: butterfly stages.
// CHECK-LABEL: func.func @small_group
// CHECK-NOT: vector.
// CHECK-COUNT-4: linalg.generic
func.func @small_group(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %y = attn.hadamard %x rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, -1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

// A bf16 compute type rounds after every stage: the stage generics keep
// that (a chain of vector adds would let the host's bf16 emulation fold
// the roundings away).
// CHECK-LABEL: func.func @bf16_compute
// CHECK-NOT: vector.
// CHECK: linalg.generic
func.func @bf16_compute(%x: tensor<4x16xbf16>) -> tensor<4x16xbf16> {
  %y = attn.hadamard %x rotation(<group = 16, s1 = [1, -1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1], s2 = [-1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]>)
      precision <compute = bf16, accumulate = f32> : tensor<4x16xbf16>
  return %y : tensor<4x16xbf16>
}

// -----

// Rows read through a slice with a stride of 2 along them: not vector
// loads; the stage generics.
// CHECK-LABEL: func.func @strided_rows
// CHECK-NOT: vector.
// CHECK: linalg.generic
func.func @strided_rows(%x: tensor<4x32xf32>) -> tensor<4x16xf32> {
  %s = tensor.extract_slice %x[0, 0] [4, 16] [1, 2] : tensor<4x32xf32> to tensor<4x16xf32>
  %y = attn.hadamard %s rotation(<group = 16, s1 = [1, -1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1], s2 = [-1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]>)
      precision <compute = f32, accumulate = f32> : tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}
