// RUN: rotor-opt %s -split-input-file -verify-diagnostics -rotor-check-params-read-only | FileCheck %s

// Reads of a parameter, through views too, pass; other arguments may be
// written.
// CHECK-LABEL: func.func @reads
func.func @reads(%out: memref<4xf32>,
                 %bias: memref<4xf32> {attn.param = "k_proj.bias"}) {
  %c0 = arith.constant 0 : index
  %view = memref.subview %bias[1] [2] [1] : memref<4xf32> to memref<2xf32, strided<[1], offset: 1>>
  %v = memref.load %view[%c0] : memref<2xf32, strided<[1], offset: 1>>
  memref.store %v, %out[%c0] : memref<4xf32>
  memref.copy %bias, %out : memref<4xf32> to memref<4xf32>
  memref.prefetch %bias[%c0], read, locality<3>, data : memref<4xf32>
  return
}

// -----

// The defect of issue 11: a GEMV accumulating into its bias argument.
func.func @accumulates_into_bias(%x: memref<4xf32>,
                                 %bias: memref<4xf32> {attn.param = "k_proj.bias"}) {
  // expected-error @below {{may write parameter 'k_proj.bias', which is read-only}}
  linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                  iterator_types = ["parallel"]}
      ins(%x : memref<4xf32>) outs(%bias : memref<4xf32>) {
  ^bb0(%a: f32, %b: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Through a view.
func.func @store_through_view(%bias: memref<2x4xf32> {attn.param = "q_proj.bias"}) {
  %c0 = arith.constant 0 : index
  %f = arith.constant 1.0 : f32
  %flat = memref.collapse_shape %bias [[0, 1]] : memref<2x4xf32> into memref<8xf32>
  // expected-error @below {{may write parameter 'q_proj.bias'}}
  memref.store %f, %flat[%c0] : memref<8xf32>
  return
}

// -----

// A read prefetch passes (@reads above), though memref.prefetch declares a
// write of its memref to stay ordered; a prefetch for writing counts as a
// write.
func.func @prefetch_for_write(%w: memref<4xf32> {attn.param = "o_proj.weight"}) {
  %c0 = arith.constant 0 : index
  // expected-error @below {{may write parameter 'o_proj.weight'}}
  memref.prefetch %w[%c0], write, locality<3>, data : memref<4xf32>
  return
}

// -----

// A call may do anything with it.
func.func private @opaque(memref<4xf32>)
func.func @call(%bias: memref<4xf32> {attn.param = "b"}) {
  // expected-error @below {{may write parameter 'b'}}
  func.call @opaque(%bias) : (memref<4xf32>) -> ()
  return
}
