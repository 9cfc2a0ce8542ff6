// Each gpu.launch runs on the host as a loop over its blocks, each block an
// OpenMP team of blockDim threads that share the block's workgroup buffers
// (host allocas, in a scope per block) and meet at omp.barrier where the
// kernel has gpu.barrier. HostExecutionTest runs the result against the
// kernels run phase by phase.
// RUN: rotor-opt %s --rotor-emulate-gpu-launches-on-host -split-input-file -verify-diagnostics | FileCheck %s

// CHECK-LABEL: func.func private @omp_get_thread_num() -> i32
// CHECK-LABEL: func.func @reverse(
// CHECK-SAME: %[[IN:.+]]: memref<?xf32>, %[[OUT:.+]]: memref<?xf32>, %[[BLOCKS:.+]]: index)
// CHECK: %[[THREADS:.+]] = arith.index_cast %{{.+}} : index to i32
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step
// Last block first.
// CHECK: scf.for %[[I:.+]] = %{{.+}} to %[[BLOCKS]] step
// CHECK: %[[LAST:.+]] = arith.subi %[[BLOCKS]], %{{.+}} : index
// CHECK: %[[BX:.+]] = arith.subi %[[LAST]], %[[I]] : index
// CHECK: memref.alloca_scope {
// CHECK: %[[SHARED:.+]] = memref.alloca() : memref<64xf32>
// CHECK: omp.parallel num_threads(%[[THREADS]] : i32) {
// CHECK: %[[TID:.+]] = func.call @omp_get_thread_num() : () -> i32
// CHECK: arith.muli %[[BX]]
// CHECK: memref.store %{{.+}}, %[[SHARED]][
// CHECK: omp.barrier
// CHECK: memref.load %[[SHARED]][
// CHECK: omp.terminator
// CHECK-NOT: gpu.
// CHECK: return
func.func @reverse(%in: memref<?xf32>, %out: memref<?xf32>, %blocks: index) {
  %c1 = arith.constant 1 : index
  %c63 = arith.constant 63 : index
  %c64 = arith.constant 64 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %blocks, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1)
             workgroup(%shared : memref<64xf32, #gpu.address_space<workgroup>>) {
    %base = arith.muli %bx, %c64 : index
    %i = arith.addi %base, %tx : index
    %v = memref.load %in[%i] : memref<?xf32>
    memref.store %v, %shared[%tx] : memref<64xf32, #gpu.address_space<workgroup>>
    gpu.barrier
    %mirror = arith.subi %c63, %tx : index
    %w = memref.load %shared[%mirror] : memref<64xf32, #gpu.address_space<workgroup>>
    memref.store %w, %out[%i] : memref<?xf32>
    gpu.terminator
  }
  return
}

// -----

// An asynchronous launch has no host equivalent here.
func.func @async(%n: index) {
  %c1 = arith.constant 1 : index
  %t = gpu.wait async
  // expected-error @+1 {{cannot be emulated on the host: async or clustered launch}}
  %done = gpu.launch async [%t] blocks(%bx, %by, %bz) in (%gx = %n, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    gpu.terminator
  }
  return
}

// -----

// Per-thread buffers are not emulated (the GPU mapping never makes them).
func.func @private(%n: index) {
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{cannot be emulated on the host: private attributions}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %n, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1)
             private(%p : memref<4xf32, #gpu.address_space<private>>) {
    gpu.terminator
  }
  return
}
