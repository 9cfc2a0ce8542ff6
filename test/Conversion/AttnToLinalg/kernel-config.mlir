// convert-attn-to-linalg builds the loop forms an attn.kernel config names,
// with its KV tile; the workgroup kernels are not its job.
// RUN: rotor-opt %s -split-input-file -verify-diagnostics --convert-attn-to-linalg | FileCheck %s

// CHECK-LABEL: func.func @loops_tile_16(
// CHECK: scf.for {{.+}} step %c16
func.func @loops_tile_16(%q: tensor<?x2x64xf32>, %k: tensor<?x2x64xf32>,
                         %v: tensor<?x2x64xf32>) -> tensor<?x2x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<loops, keys = 16>}
      : tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x2x64xf32>
  return %o : tensor<?x2x64xf32>
}

// -----

// The pass's split-kv-decode option (on by default) serves only ops
// without a config: this decode step's config says loops.
// CHECK-LABEL: func.func @decode_loops(
// CHECK: scf.for {{.+}} step %c32
func.func @decode_loops(%q: tensor<1x2x64xf32>, %k: tensor<?x2x64xf32>,
                        %v: tensor<?x2x64xf32>) -> tensor<1x2x64xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<loops, keys = 32>}
      : tensor<1x2x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<1x2x64xf32>
  return %o : tensor<1x2x64xf32>
}

// -----

func.func @split_prefill(%q: tensor<?x2x64xf32>, %k: tensor<?x2x64xf32>,
                         %v: tensor<?x2x64xf32>) -> tensor<?x2x64xf32> {
  // expected-error @+1 {{has the kernel #attn.kernel<split_kv, keys = 64>, which needs an attn.sdpa with one query row}}
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<split_kv, keys = 64>}
      : tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x2x64xf32>
  return %o : tensor<?x2x64xf32>
}

// -----

func.func @workgroup(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) -> tensor<?x128xf32> {
  // expected-error @+1 {{has the workgroup kernel #attn.kernel<gemm, rows = 64, cols = 64, threads = 128>, which rotor-lower-workgroup-kernels builds (run it first)}}
  %y = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<gemm, rows = 64, cols = 64, threads = 128>}
      : tensor<?x64xf32>, tensor<128x64xf32> -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}
