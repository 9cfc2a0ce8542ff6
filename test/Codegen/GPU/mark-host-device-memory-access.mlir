// Host code that only allocates, launches and frees through gpu ops does
// not touch kernel memory; a host load, a store or a call might.
// RUN: rotor-opt %s --rotor-mark-host-device-memory-access -split-input-file | FileCheck %s

// CHECK: module attributes {gpu.container_module, rotor.host_reads_device_memory = false}
module attributes {gpu.container_module} {
  func.func @only_gpu_ops(%n: index) {
    %c1 = arith.constant 1 : index
    %m = gpu.alloc host_shared (%n) : memref<?xf32>
    gpu.launch_func @k::@k blocks in (%n, %c1, %c1) threads in (%c1, %c1, %c1) args(%m : memref<?xf32>)
    %t = gpu.wait async
    %d = gpu.dealloc async [%t] %m : memref<?xf32>
    gpu.wait [%d]
    return
  }
  gpu.module @k {
    gpu.func @k(%m: memref<?xf32>) kernel {
      // Kernels may do anything.
      %c0 = arith.constant 0 : index
      %x = memref.load %m[%c0] : memref<?xf32>
      memref.store %x, %m[%c0] : memref<?xf32>
      gpu.return
    }
  }
}

// -----

// CHECK: module attributes {rotor.host_reads_device_memory = true}
module {
  func.func @host_load(%m: memref<?xf32>) -> f32 {
    %c0 = arith.constant 0 : index
    %x = memref.load %m[%c0] : memref<?xf32>
    return %x : f32
  }
}

// -----

// CHECK: module attributes {rotor.host_reads_device_memory = true}
module {
  func.func private @external(memref<?xf32>)
  func.func @host_call(%m: memref<?xf32>) {
    func.call @external(%m) : (memref<?xf32>) -> ()
    return
  }
}
