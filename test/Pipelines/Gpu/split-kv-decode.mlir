// Decode SDPA on the GPU. By default it is the workgroup-tiled kernel: one
// launch over (row tile, KV head, KV split), then one combine launch when
// the KV length was split. Without it (workgroup-tiled-sdpa=false) it is
// split-KV attention in loop nests: a fixed set of launches, none inside a
// loop over KV tiles, where the tiled form (split-kv-decode=false too)
// launches a dozen kernels per 64 keys. The PTX is checked elsewhere; this
// looks at the host code right after the kernels are outlined.
// REQUIRES: cuda-toolkit
// RUN: rotor-opt %s --rotor-gpu-pipeline -mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=WORKGROUP
// RUN: rotor-opt %s --rotor-gpu-pipeline=workgroup-tiled-sdpa=false -mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s
// RUN: rotor-opt %s --rotor-gpu-pipeline="workgroup-tiled-sdpa=false split-kv-decode=false" -mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=TILED

// The 7 query heads of each of the 4 KV heads are one workgroup's rows.
// WORKGROUP-LABEL: func.func @decode
// WORKGROUP-NOT: scf.for
// WORKGROUP: gpu.launch_func @decode_kernel::@decode_kernel blocks in (%c1{{(_[0-9]+)?}}, %c4{{(_[0-9]+)?}}, %[[SPLITS:.+]]) threads in
// WORKGROUP: scf.if
// WORKGROUP: gpu.launch_func @decode_kernel_0::@decode_kernel
// WORKGROUP-NOT: gpu.launch_func
// WORKGROUP: return
// WORKGROUP: gpu.func @decode_kernel({{.+}}) workgroup(%{{.+}} : memref<64x129xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<8x65xf32, #gpu.address_space<workgroup>>

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
