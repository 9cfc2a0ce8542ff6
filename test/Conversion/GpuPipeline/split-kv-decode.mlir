// The GPU pipeline lowers decode SDPA as split-KV attention: a fixed set of
// kernel launches, none inside a loop over KV tiles (the tiled form
// launches a dozen kernels per 64 keys). The PTX is checked elsewhere; this
// looks at the host code right after the kernels are outlined.
// REQUIRES: cuda-toolkit
// RUN: rotor-opt %s --rotor-gpu-pipeline -mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s
// RUN: rotor-opt %s --rotor-gpu-pipeline=split-kv-decode=false -mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=TILED

// CHECK-LABEL: func.func @decode
// CHECK-NOT: scf.for
// CHECK-COUNT-18: gpu.launch_func
// CHECK-NOT: scf.for
// CHECK-NOT: gpu.launch_func
// CHECK: return

// TILED-LABEL: func.func @decode
// TILED: scf.for
// TILED: gpu.launch_func
// TILED: scf.yield
func.func @decode(%q: tensor<1x28x128xf32>, %k: tensor<?x4x128xf32>, %v: tensor<?x4x128xf32>) -> tensor<1x28x128xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<1x28x128xf32>, tensor<?x4x128xf32>, tensor<?x4x128xf32> -> tensor<1x28x128xf32>
  return %o : tensor<1x28x128xf32>
}
