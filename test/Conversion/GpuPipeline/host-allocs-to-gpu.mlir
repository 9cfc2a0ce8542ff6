// RUN: rotor-opt %s -rotor-host-allocs-to-gpu -allow-unregistered-dialect | FileCheck %s

memref.global "private" constant @table : memref<4xf64> = dense<[1.0, 2.0, 3.0, 4.0]>

// Host buffers move to managed memory; constant tables get a managed copy
// that is freed on return; frees wait for earlier work.
// CHECK-LABEL: func.func @entry
// CHECK: %[[G:.+]] = memref.get_global @table
// CHECK: %[[COPY:.+]] = gpu.alloc  host_shared () : memref<4xf64>
// CHECK: %[[T0:.+]] = gpu.wait async
// CHECK: %[[T1:.+]] = gpu.memcpy async [%[[T0]]] %[[COPY]], %[[G]]
// CHECK: gpu.wait [%[[T1]]]
// CHECK: %[[A:.+]] = gpu.alloc  host_shared (%{{.+}}) : memref<?xf32>
// CHECK: "use"(%[[COPY]], %[[A]])
// CHECK: %[[T2:.+]] = gpu.wait async
// CHECK: gpu.dealloc async [%[[T2]]] %[[A]]
// CHECK: gpu.dealloc async [%{{.+}}] %[[COPY]]
// CHECK-NOT: memref.alloc
// CHECK-NOT: memref.dealloc
// CHECK: return
func.func @entry(%n: index) {
  %g = memref.get_global @table : memref<4xf64>
  %a = memref.alloc(%n) : memref<?xf32>
  "use"(%g, %a) : (memref<4xf64>, memref<?xf32>) -> ()
  memref.dealloc %a : memref<?xf32>
  return
}
