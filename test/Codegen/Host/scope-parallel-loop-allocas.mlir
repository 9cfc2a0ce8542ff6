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

// scf.for is an allocation scope too: canonicalization inlines an
// alloca_scope that ends its body (an emulated GPU block's workgroup
// buffers), and scf-to-cf would then grow the stack per iteration.
// CHECK-LABEL: func.func @serial_loop(
// CHECK: scf.for
// CHECK: scf.for
// CHECK-NEXT: %[[SP:.+]] = llvm.intr.stacksave : !llvm.ptr
// CHECK-NEXT: memref.alloca() : memref<32x129xf32>
// CHECK: llvm.intr.stackrestore %[[SP]] : !llvm.ptr
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NOT: llvm.intr.stacksave
func.func @serial_loop(%out: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %f = arith.constant 1.0 : f32
  scf.for %j = %c0 to %c2 step %c1 {
    scf.for %i = %c0 to %n step %c1 {
      %buf = memref.alloca() : memref<32x129xf32>
      memref.store %f, %buf[%c0, %c0] : memref<32x129xf32>
      %x = memref.load %buf[%c0, %c0] : memref<32x129xf32>
      memref.store %x, %out[%i] : memref<?xf32>
    }
  }
  return
}

// With iter_args the stack is restored before the yield.
// CHECK-LABEL: func.func @serial_loop_iter_args(
// CHECK: scf.for
// CHECK-NEXT: %[[SP:.+]] = llvm.intr.stacksave : !llvm.ptr
// CHECK: llvm.intr.stackrestore %[[SP]] : !llvm.ptr
// CHECK-NEXT: scf.yield
func.func @serial_loop_iter_args(%n: index) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %z = arith.constant 0.0 : f32
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %z) -> (f32) {
    %buf = memref.alloca() : memref<64xf32>
    memref.store %acc, %buf[%c0] : memref<64xf32>
    %x = memref.load %buf[%c0] : memref<64xf32>
    %y = arith.addf %x, %x : f32
    scf.yield %y : f32
  }
  return %r : f32
}
