// The #attn.kernel attribute's verifier: a strategy carries exactly the
// parameters it uses.
// RUN: rotor-opt %s -split-input-file -verify-diagnostics

// expected-error @+1 {{kernel strategy loops has no rows (got 4)}}
func.func private @f() attributes {k = #attn.kernel<loops, rows = 4>}

// -----

// expected-error @+1 {{kernel strategy workgroup_tiled needs workgroups >= 1}}
func.func private @f() attributes {k = #attn.kernel<workgroup_tiled, rows = 8, keys = 8, threads = 128>}

// -----

// expected-error @+1 {{kernel threads must be a multiple of 32 up to 1024, got 100}}
func.func private @f() attributes {k = #attn.kernel<head_chain, rows = 8, threads = 100>}

// -----

// expected-error @+1 {{kernel keys must not be negative, got -1}}
func.func private @f() attributes {k = #attn.kernel<split_kv, keys = -1>}

// -----

// expected-error @+2 {{expected ::rotor::attn::KernelStrategy to be one of: loops, split_kv, workgroup_tiled, gemm, gemv, head_chain}}
// expected-error @+1 {{failed to parse Attn_KernelConfigAttr parameter 'strategy'}}
func.func private @f() attributes {k = #attn.kernel<warp_specialized>}

// -----

// Round trip, parameters a strategy does not use are not printed.
// RUN: rotor-opt %s -split-input-file -verify-diagnostics 2>/dev/null | FileCheck %s
// CHECK: #attn.kernel<gemv, cols = 4, threads = 128>
func.func private @g() attributes {k = #attn.kernel<gemv, cols = 4, threads = 128>}

// -----

// A config no lowering would read is an error, not a silent fallback.
func.func @wrong_type(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) -> tensor<?x128xf32> {
  // expected-error @+1 {{'attn.kernel' must be a #attn.kernel, got "gemm"}}
  %y = attn.linear %x, %w precision <compute = f32, accumulate = f32> {attn.kernel = "gemm"}
      : tensor<?x64xf32>, tensor<128x64xf32> -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

func.func @wrong_op(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) -> tensor<?x128xf32> {
  // expected-error @+1 {{'attn.linear' cannot take the kernel #attn.kernel<split_kv, keys = 64>}}
  %y = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<split_kv, keys = 64>}
      : tensor<?x64xf32>, tensor<128x64xf32> -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

// expected-error @+1 {{'func.func' cannot take the kernel #attn.kernel<loops>}}
func.func private @not_an_attn_op() attributes {attn.kernel = #attn.kernel<loops>}
