// Workgroup buffers are declared 16-byte aligned, as the vector loads LLVM
// forms from them assume; an alignment already given is kept.
// RUN: rotor-opt %s --rotor-align-workgroup-buffers | FileCheck %s

// CHECK-LABEL: gpu.func @kernel
// CHECK-SAME: workgroup(%{{.+}} : memref<32xi64, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.+}} : memref<8xf32, #gpu.address_space<workgroup>> {llvm.align = 64 : i64})
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @kernel() workgroup(%a : memref<32xi64, #gpu.address_space<workgroup>>, %b : memref<8xf32, #gpu.address_space<workgroup>> {llvm.align = 64 : i64}) kernel {
      gpu.return
    }
  }
}
