// The GPU pipeline lowers prefill SDPA as one workgroup-tiled kernel: one
// launch of a block per 32 (query, query head) rows of a KV head (the GQA
// group's heads share K/V) and KV split, KV tiles staged in shared memory
// behind barriers, 16-byte global loads of K and V. The loop-level form (workgroup-tiled-sdpa=false)
// launches kernels inside a loop over KV tiles instead.
// REQUIRES: cuda-toolkit
// RUN: rotor-opt %s --rotor-gpu-pipeline -mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=HOST
// RUN: rotor-opt %s --rotor-gpu-pipeline | FileCheck %s --check-prefix=PTX
// RUN: rotor-opt %s --rotor-gpu-pipeline=workgroup-tiled-sdpa=false -mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=LOOPS

// HOST-LABEL: func.func @prefill
// HOST-NOT: scf.for
// HOST: gpu.launch_func @prefill_kernel::@prefill_kernel blocks in (%{{.+}}, %c4{{(_[0-9]+)?}}, %{{.+}}) threads in (%c128{{(_[0-9]+)?}}, %{{.+}}, %{{.+}}) args(
// Short prompts split the KV length too; their partials are combined.
// HOST: scf.if
// HOST: gpu.launch_func @prefill_kernel_0::@prefill_kernel
// HOST-NOT: gpu.launch_func
// HOST: return
// HOST: gpu.module @prefill_kernel
// HOST: gpu.func @prefill_kernel({{.+}}) workgroup(%{{.+}} : memref<32x129xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<32x33xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<32x128xf32, #gpu.address_space<workgroup>>
// HOST-COUNT-7: gpu.barrier

// PTX: gpu.binary @prefill_kernel
// PTX-SAME: .visible .entry prefill_kernel(
// PTX-SAME: .shared .align 16 .b8 __wg_prefill_kernel_0[16512]
// PTX-SAME: bar.sync
// PTX-SAME: ld.global.v4.b32
// PTX-SAME: st.shared.b32
// PTX-SAME: ld.shared.b32

// LOOPS-LABEL: func.func @prefill
// LOOPS: scf.for
// LOOPS: gpu.launch_func
// LOOPS: gpu.launch_func
// LOOPS: scf.yield
func.func @prefill(%q: tensor<?x28x128xf32>, %k: tensor<?x4x128xf32>, %v: tensor<?x4x128xf32>) -> tensor<?x28x128xf32> {
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      : tensor<?x28x128xf32>, tensor<?x4x128xf32>, tensor<?x4x128xf32> -> tensor<?x28x128xf32>
  return %o : tensor<?x28x128xf32>
}
