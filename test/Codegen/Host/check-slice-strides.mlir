// RUN: rotor-opt %s -split-input-file -verify-diagnostics -rotor-check-slice-strides
// RUN: not rotor-opt %s -split-input-file --rotor-host-pipeline 2>&1 | FileCheck %s
// A zero stride in a rank-reducing insert crashed bufferization's
// memref.subview (found by scripts/fuzz_ir.py, seed 24), and so did a
// stride of 4096: the host pipeline now stops at its first pass with the
// op named.
// CHECK: error: 'tensor.insert_slice' op stride 0 of dim 0 is not positive

func.func @zero_insert(%t: tensor<1x64xf32>, %d: tensor<4x2x64xf32>, %i: index) -> tensor<4x2x64xf32> {
  // expected-error @below {{'tensor.insert_slice' op stride 0 of dim 0 is not positive}}
  %r = tensor.insert_slice %t into %d[%i, 0, 0] [1, 1, 64] [0, 1, 1] : tensor<1x64xf32> into tensor<4x2x64xf32>
  return %r : tensor<4x2x64xf32>
}

// -----

func.func @negative_extract(%x: tensor<8x64xf32>) -> tensor<2x64xf32> {
  // expected-error @below {{'tensor.extract_slice' op stride -2 of dim 0 is not positive}}
  %s = tensor.extract_slice %x[6, 0] [2, 64] [-2, 1] : tensor<8x64xf32> to tensor<2x64xf32>
  return %s : tensor<2x64xf32>
}

// -----

func.func @zero_subview(%x: memref<8x64xf32>) -> memref<2x64xf32, strided<[0, 1]>> {
  // expected-error @below {{'memref.subview' op stride 0 of dim 0 is not positive}}
  %s = memref.subview %x[0, 0] [2, 64] [0, 1] : memref<8x64xf32> to memref<2x64xf32, strided<[0, 1]>>
  return %s : memref<2x64xf32, strided<[0, 1]>>
}

// -----

// A stride given as a constant operand: folding would make it static
// before bufferization, which crashed the same way.
func.func @constant_operand(%t: tensor<1x64xf32>, %d: tensor<4x2x64xf32>, %i: index) -> tensor<4x2x64xf32> {
  %c0 = arith.constant 0 : index
  %r = scf.forall (%j) in (4) shared_outs(%o = %d) -> (tensor<4x2x64xf32>) {
    scf.forall.in_parallel {
      // expected-error @below {{'tensor.parallel_insert_slice' op stride 0 of dim 0 is not positive}}
      tensor.parallel_insert_slice %t into %o[%j, 0, 0] [1, 1, 64] [%c0, 1, 1] : tensor<1x64xf32> into tensor<4x2x64xf32>
    }
  }
  return %r : tensor<4x2x64xf32>
}

// -----

// A positive stride on a slice that drops dims crashed the same way
// (fuzz_ir.py, seed 11, once this file was in its corpus).
func.func @rank_reducing_strided(%t: tensor<?x1x64xf32>, %d: tensor<2x?x1x64xf32>, %n: index) -> tensor<2x?x1x64xf32> {
  // expected-error @below {{'tensor.insert_slice' op drops dims and has stride 4096 in dim 1; a rank-reducing slice must have unit strides}}
  %r = tensor.insert_slice %t into %d[0, 0, 0, 0] [1, %n, 1, 64] [1, 4096, 1, 1] : tensor<?x1x64xf32> into tensor<2x?x1x64xf32>
  return %r : tensor<2x?x1x64xf32>
}

// -----

func.func @rank_reducing_dynamic(%x: tensor<8x64xf32>, %s: index) -> tensor<64xf32> {
  // expected-error @below {{'tensor.extract_slice' op drops dims and has stride ? in dim 0; a rank-reducing slice must have unit strides}}
  %r = tensor.extract_slice %x[0, 0] [1, 64] [%s, 1] : tensor<8x64xf32> to tensor<64xf32>
  return %r : tensor<64xf32>
}

// -----

// A view that is not a slice may broadcast through a zero stride.
func.func @broadcast_view(%x: memref<64xf32>) -> memref<4x64xf32, strided<[0, 1]>> {
  %v = memref.reinterpret_cast %x to offset: [0], sizes: [4, 64], strides: [0, 1] : memref<64xf32> to memref<4x64xf32, strided<[0, 1]>>
  return %v : memref<4x64xf32, strided<[0, 1]>>
}

// -----

// Dynamic and positive strides pass.
func.func @fine(%x: tensor<8x64xf32>, %s: index) -> tensor<2x64xf32> {
  %a = tensor.extract_slice %x[0, 0] [2, 64] [%s, 1] : tensor<8x64xf32> to tensor<2x64xf32>
  %b = tensor.extract_slice %x[0, 0] [2, 64] [3, 1] : tensor<8x64xf32> to tensor<2x64xf32>
  %c = arith.addf %a, %b : tensor<2x64xf32>
  return %c : tensor<2x64xf32>
}
