// RUN: rotor-opt %s -attn-outline-params -split-input-file -verify-diagnostics | FileCheck %s

// Each distinct name becomes one trailing argument, in order of first use.
// CHECK-LABEL: func.func @entry
// CHECK-SAME: (%[[X:.+]]: tensor<2x4xf32>, %[[W:.+]]: tensor<8x4xf32> {attn.param = "w", bufferization.writable = false}, %[[B:.+]]: tensor<8xf32> {attn.param = "b", bufferization.writable = false})
// CHECK-NOT: attn.param
// CHECK: attn.linear %[[X]], %[[W]], %[[B]]
// CHECK: attn.linear %[[X]], %[[W]] precision
func.func @entry(%x: tensor<2x4xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
  %w = attn.param "w" : tensor<8x4xf32>
  %b = attn.param "b" : tensor<8xf32>
  %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
      : tensor<2x4xf32>, tensor<8x4xf32>, tensor<8xf32> -> tensor<2x8xf32>
  %w2 = attn.param "w" : tensor<8x4xf32>
  %z = attn.linear %x, %w2 precision <compute = f32, accumulate = f32>
      : tensor<2x4xf32>, tensor<8x4xf32> -> tensor<2x8xf32>
  return %y, %z : tensor<2x8xf32>, tensor<2x8xf32>
}

// -----

// expected-error @below {{'func.func' op is private but reads parameter 'w'; only public entry points can receive weights}}
func.func private @helper() -> tensor<4xf32> {
  %w = attn.param "w" : tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

func.func @conflict() -> (tensor<4xf32>, tensor<4xbf16>) {
  %a = attn.param "w" : tensor<4xf32>
  // expected-error @below {{'attn.param' op reads parameter 'w' as 'tensor<4xbf16>' but another attn.param reads it as 'tensor<4xf32>'}}
  %b = attn.param "w" : tensor<4xbf16>
  return %a, %b : tensor<4xf32>, tensor<4xbf16>
}
