// RUN: rotor-opt %s -split-input-file -verify-diagnostics -rotor-check-dim-indices
// RUN: not rotor-opt %s -split-input-file --rotor-host-pipeline 2>&1 | FileCheck %s
// CHECK: error: dim index -1 is outside the rank 2 of 'tensor<?x4xf32>'

func.func @negative(%x: tensor<?x4xf32>) -> index {
  %c = arith.constant -1 : index
  // expected-error @below {{dim index -1 is outside the rank 2 of 'tensor<?x4xf32>'}}
  %d = tensor.dim %x, %c : tensor<?x4xf32>
  return %d : index
}

// -----

func.func @past_rank(%x: memref<?x4xf32>) -> index {
  %c = arith.constant 2 : index
  // expected-error @below {{dim index 2 is outside the rank 2 of 'memref<?x4xf32>'}}
  %d = memref.dim %x, %c : memref<?x4xf32>
  return %d : index
}

// -----

func.func @in_range(%x: tensor<?x4xf32>) -> index {
  %c = arith.constant 0 : index
  %d = tensor.dim %x, %c : tensor<?x4xf32>
  return %d : index
}
