// RUN: rotor-opt %s -rotor-host-allocs-to-gpu -allow-unregistered-dialect -split-input-file -verify-diagnostics | FileCheck %s

memref.global "private" constant @table : memref<4xf64> = dense<[1.0, 2.0, 3.0, 4.0]>

// Host buffers move to managed memory; frees wait for earlier work. A
// constant table the host code reads stays the host global: no copy, no
// wait on entry.
// CHECK-LABEL: func.func @entry
// CHECK-NOT: gpu.wait
// CHECK: %[[G:.+]] = memref.get_global @table
// CHECK-NOT: gpu.memcpy
// CHECK: %[[A:.+]] = gpu.alloc  host_shared (%{{.+}}) : memref<?xf32>
// CHECK: "use"(%[[G]], %[[A]])
// CHECK: %[[T2:.+]] = gpu.wait async
// CHECK: gpu.dealloc async [%[[T2]]] %[[A]]
// CHECK-NOT: memref.alloc
// CHECK-NOT: memref.dealloc
// CHECK-NOT: gpu.dealloc
// CHECK: return
func.func @entry(%n: index) {
  %g = memref.get_global @table : memref<4xf64>
  %a = memref.alloc(%n) : memref<?xf32>
  "use"(%g, %a) : (memref<4xf64>, memref<?xf32>) -> ()
  memref.dealloc %a : memref<?xf32>
  return
}

// -----

// A kernel handed a host global would read a host address.
module attributes {gpu.container_module} {
  gpu.module @k {
    gpu.func @k(%t: memref<4xf64>) kernel {
      gpu.return
    }
  }
  memref.global "private" constant @table : memref<4xf64> = dense<[1.0, 2.0, 3.0, 4.0]>
  func.func @entry() {
    %c1 = arith.constant 1 : index
    %g = memref.get_global @table : memref<4xf64>
    // expected-error @+1 {{passes the host global @table to a kernel; tables must be read inside kernels}}
    gpu.launch_func @k::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%g : memref<4xf64>)
    return
  }
}

// -----

// So would a view of one.
module attributes {gpu.container_module} {
  gpu.module @k {
    gpu.func @k(%t: memref<2xf64, strided<[1], offset: 2>>) kernel {
      gpu.return
    }
  }
  memref.global "private" constant @table : memref<4xf64> = dense<[1.0, 2.0, 3.0, 4.0]>
  func.func @entry() {
    %c1 = arith.constant 1 : index
    %g = memref.get_global @table : memref<4xf64>
    %v = memref.subview %g[2] [2] [1] : memref<4xf64> to memref<2xf64, strided<[1], offset: 2>>
    // expected-error @+1 {{passes the host global @table to a kernel}}
    gpu.launch_func @k::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%v : memref<2xf64, strided<[1], offset: 2>>)
    return
  }
}
