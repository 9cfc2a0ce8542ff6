// An SDPA with a key-bias term (attn-split-rope-bias) gets the workgroup
// kernel, which adds RoPE(b, j) to K while staging it in the accumulate
// type (so its tiles are f32 and smaller for a bf16 cache: 32x32 here where
// bias-free bf16 K/V take 64x64), as an SDPA without one does, decode rows
// included.
// RUN: rotor-opt %s --rotor-select-kernel-config="workgroup-tiled-sdpa=true split-kv-decode=true" 2>&1 | FileCheck %s
// RUN: rotor-opt %s --rotor-select-kernel-config="workgroup-tiled-sdpa=true split-kv-decode=true" --rotor-lower-workgroup-kernels 2>&1 | FileCheck %s --check-prefix=KERNEL

// CHECK-NOT: warning
// CHECK-LABEL: func.func @prefill(
// CHECK: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<workgroup_tiled, rows = 32, keys = 32, threads = 128, workgroups = 256>}
// KERNEL-LABEL: func.func @prefill(
// KERNEL: math.cos
// KERNEL: %[[ROWS:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<?x2x64xf32> to memref<?x2x64xf32
// KERNEL: memref.alloca() : memref<32x65xf32, #gpu.address_space<workgroup>>
// KERNEL: memref.load %[[ROWS]]
func.func @prefill(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>,
                   %b: tensor<2x64xf32>) -> tensor<?x4x64xf32> {
  %o = attn.sdpa %q, %k, %v key_bias(%b : tensor<2x64xf32> rope(<layout = half_split, rotary_dim = 64, theta = 1.0e+06>))
      causal precision <compute = f32, accumulate = f32>
      : tensor<?x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<?x4x64xf32>
  return %o : tensor<?x4x64xf32>
}

// CHECK-LABEL: func.func @decode(
// CHECK: attn.sdpa {{.+}} {attn.kernel = #attn.kernel<workgroup_tiled, rows = 2, keys = 64, threads = 128, workgroups = 256>}
func.func @decode(%q: tensor<1x4x64xf32>, %k: tensor<?x2x64xbf16>, %v: tensor<?x2x64xbf16>,
                  %b: tensor<2x64xf32>) -> tensor<1x4x64xf32> {
  %o = attn.sdpa %q, %k, %v key_bias(%b : tensor<2x64xf32> rope(<layout = half_split, rotary_dim = 64, theta = 1.0e+06>))
      causal precision <compute = f32, accumulate = f32>
      : tensor<1x4x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16> -> tensor<1x4x64xf32>
  return %o : tensor<1x4x64xf32>
}
