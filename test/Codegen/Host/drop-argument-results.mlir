// RUN: rotor-opt %s -rotor-drop-argument-results | FileCheck %s

// A buffer updated in place and returned leaves the results of an entry
// point; new buffers and results of functions called in the module stay.
// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[C:.+]]: memref<8xf32>, %{{.+}}: memref<4xf32>) -> memref<4xf32>
// CHECK: return %{{.+}} : memref<4xf32>
func.func @step(%cache: memref<8xf32>, %x: memref<4xf32>) -> (memref<4xf32>, memref<8xf32>) {
  %y = memref.alloc() : memref<4xf32>
  memref.copy %x, %y : memref<4xf32> to memref<4xf32>
  return %y, %cache : memref<4xf32>, memref<8xf32>
}

// CHECK-LABEL: func.func @callee
// CHECK-SAME: -> memref<8xf32>
func.func @callee(%cache: memref<8xf32>) -> memref<8xf32> {
  return %cache : memref<8xf32>
}

func.func @caller(%cache: memref<8xf32>) -> memref<4xf32> {
  %0 = call @callee(%cache) : (memref<8xf32>) -> memref<8xf32>
  %y = memref.alloc() : memref<4xf32>
  return %y : memref<4xf32>
}
