// RUN: rotor-opt %s -split-input-file -verify-diagnostics -rotor-check-static-sizes
// RUN: not rotor-opt %s -split-input-file --rotor-host-pipeline 2>&1 | FileCheck %s
// CHECK: error: argument 0 of type 'tensor<4611686018427387904x4xf32>' has more bytes than int64 can count

// expected-error @below {{argument 0 of type 'tensor<4611686018427387904x4xf32>' has more bytes than int64 can count}}
func.func @arg(%x: tensor<4611686018427387904x4xf32>) {
  return
}

// -----

func.func @result() {
  // expected-error @below {{result of type 'tensor<2305843009213693952x2xf32>' has more bytes than int64 can count}}
  %0 = tensor.empty() : tensor<2305843009213693952x2xf32>
  return
}

// -----

func.func @fits(%x: tensor<?x1024x1024xf32>) {
  %0 = tensor.empty() : tensor<1048576x1024xf32>
  return
}

// -----

// index elements count 8 bytes (asking index for a bit width crashed).
// expected-error @below {{argument 0 of type 'memref<1152921504606846976x2xindex>' has more bytes than int64 can count}}
func.func @index_elements(%x: memref<1152921504606846976x2xindex>, %y: memref<7x8xindex>) {
  return
}
