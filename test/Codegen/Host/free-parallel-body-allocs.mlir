// RUN: rotor-opt %s -rotor-free-parallel-body-allocs | FileCheck %s

// A per-iteration buffer is freed at the end of its iteration; one the body
// already frees is left alone.
// CHECK-LABEL: func.func @per_head
// CHECK: scf.forall
// CHECK: %[[TMP:.+]] = memref.alloc() : memref<32xf32>
// CHECK: %[[DONE:.+]] = memref.alloc() : memref<8xf32>
// CHECK: memref.dealloc %[[DONE]]
// CHECK: memref.dealloc %[[TMP]]
// CHECK-NOT: memref.dealloc
// CHECK: return
func.func @per_head(%out: memref<4x32xf32>) {
  scf.forall (%h) in (4) {
    %tmp = memref.alloc() : memref<32xf32>
    %done = memref.alloc() : memref<8xf32>
    memref.dealloc %done : memref<8xf32>
    %row = memref.subview %out[%h, 0] [1, 32] [1, 1] : memref<4x32xf32> to memref<32xf32, strided<[1], offset: ?>>
    memref.copy %tmp, %row : memref<32xf32> to memref<32xf32, strided<[1], offset: ?>>
  }
  return
}
