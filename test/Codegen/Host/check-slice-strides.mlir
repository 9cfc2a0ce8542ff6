// RUN: rotor-opt %s -split-input-file -verify-diagnostics -rotor-check-slice-strides
// RUN: not rotor-opt %s -split-input-file --rotor-host-pipeline 2>&1 | FileCheck %s
// A zero stride in a rank-reducing insert crashed bufferization's
// memref.subview (found by scripts/fuzz_ir.py, seed 24): the host
// pipeline now stops at its first pass with the op named.
// CHECK: error: stride 0 of dim 0 is not positive

func.func @zero_insert(%t: tensor<1x64xf32>, %d: tensor<4x2x64xf32>, %i: index) -> tensor<4x2x64xf32> {
  // expected-error @below {{stride 0 of dim 0 is not positive}}
  %r = tensor.insert_slice %t into %d[%i, 0, 0] [1, 1, 64] [0, 1, 1] : tensor<1x64xf32> into tensor<4x2x64xf32>
  return %r : tensor<4x2x64xf32>
}

// -----

func.func @negative_extract(%x: tensor<8x64xf32>) -> tensor<2x64xf32> {
  // expected-error @below {{stride -2 of dim 0 is not positive}}
  %s = tensor.extract_slice %x[6, 0] [2, 64] [-2, 1] : tensor<8x64xf32> to tensor<2x64xf32>
  return %s : tensor<2x64xf32>
}

// -----

func.func @zero_subview(%x: memref<8x64xf32>) -> memref<2x64xf32, strided<[0, 1]>> {
  // expected-error @below {{stride 0 of dim 0 is not positive}}
  %s = memref.subview %x[0, 0] [2, 64] [0, 1] : memref<8x64xf32> to memref<2x64xf32, strided<[0, 1]>>
  return %s : memref<2x64xf32, strided<[0, 1]>>
}

// -----

// Dynamic and positive strides pass.
func.func @fine(%x: tensor<8x64xf32>, %s: index) -> tensor<2x64xf32> {
  %a = tensor.extract_slice %x[0, 0] [2, 64] [%s, 1] : tensor<8x64xf32> to tensor<2x64xf32>
  %b = tensor.extract_slice %x[0, 0] [2, 64] [3, 1] : tensor<8x64xf32> to tensor<2x64xf32>
  %c = arith.addf %a, %b : tensor<2x64xf32>
  return %c : tensor<2x64xf32>
}
