// RUN: rotor-opt %s -rotor-inline-alloca-scopes | FileCheck %s

// The scope's ops move into the parent; its results are what it yielded.
// CHECK-LABEL: func.func @scoped
// CHECK-NOT: memref.alloca_scope
// CHECK: %[[A:.*]] = memref.alloca() : memref<4xf32>
// CHECK: %[[X:.*]] = memref.load %[[A]]
// CHECK: return %[[X]]
func.func @scoped(%i: index) -> f32 {
  %r = memref.alloca_scope -> (f32) {
    %a = memref.alloca() : memref<4xf32>
    %x = memref.load %a[%i] : memref<4xf32>
    memref.alloca_scope.return %x : f32
  }
  return %r : f32
}
