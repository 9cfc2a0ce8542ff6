// An SDPA with a key-bias term (attn-split-rope-bias) has no workgroup
// kernel yet: asked for one, the config says why and takes the loop form, or
// for a decode row split-KV (which computes the term).
// RUN: rotor-opt %s --rotor-select-kernel-config="workgroup-tiled-sdpa=true split-kv-decode=true" 2>&1 | FileCheck %s

// CHECK: :[[@LINE+6]]:8: warning: lowered to the loop-level form, not a workgroup-tiled kernel: its key-bias term (attn-split-rope-bias) is not in the workgroup kernel
// CHECK: :[[@LINE+15]]:8: warning: lowered to the loop-level form
// CHECK-LABEL: func.func @prefill(
// CHECK: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<loops, keys = 64>}
func.func @prefill(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>,
                   %b: tensor<2x64xf32>) -> tensor<?x4x64xf32> {
  %o = attn.sdpa %q, %k, %v key_bias(%b : tensor<2x64xf32> rope(<layout = half_split, rotary_dim = 64, theta = 1.0e+06>))
      causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<?x4x64xf32>
  return %o : tensor<?x4x64xf32>
}

// CHECK-LABEL: func.func @decode(
// CHECK: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<split_kv, keys = 64>}
func.func @decode(%q: tensor<1x4x64xf32>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>,
                  %b: tensor<2x64xf32>) -> tensor<1x4x64xf32> {
  %o = attn.sdpa %q, %k, %v key_bias(%b : tensor<2x64xf32> rope(<layout = half_split, rotary_dim = 64, theta = 1.0e+06>))
      causal precision <compute = f32, accumulate = f32>
      : tensor<1x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<1x4x64xf32>
  return %o : tensor<1x4x64xf32>
}

