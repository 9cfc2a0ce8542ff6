// An alloca in an scf.parallel body lives for one iteration; once the loop
// is sequential code the stack pointer is saved and restored around each
// iteration, so the stack does not grow with the trip count.
// RUN: rotor-opt %s --rotor-scope-parallel-loop-allocas | FileCheck %s

// CHECK-LABEL: func.func @per_iteration(
// CHECK: scf.parallel
// CHECK-NEXT: %[[SP:.+]] = llvm.intr.stacksave : !llvm.ptr
// CHECK-NEXT: memref.alloca() : memref<64xf32>
// CHECK: llvm.intr.stackrestore %[[SP]] : !llvm.ptr
// CHECK-NEXT: scf.reduce
func.func @per_iteration(%out: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %buf = memref.alloca() : memref<64xf32>
    memref.store %f, %buf[%c0] : memref<64xf32>
    %x = memref.load %buf[%c0] : memref<64xf32>
    memref.store %x, %out[%i] : memref<?xf32>
    scf.reduce
  }
  return
}

// CHECK-LABEL: func.func @no_alloca(
// CHECK-NOT: llvm.intr.stacksave
func.func @no_alloca(%out: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    memref.store %f, %out[%i] : memref<?xf32>
    scf.reduce
  }
  return
}
