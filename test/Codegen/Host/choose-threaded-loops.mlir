// RUN: rotor-opt %s -split-input-file -verify-diagnostics -rotor-choose-threaded-loops | FileCheck %s --enable-var-scope
// RUN: rotor-opt %s -split-input-file -verify-diagnostics -rotor-choose-threaded-loops=min-iterations=4 | FileCheck %s --check-prefix=LOW

// The outer loop has an inner loop: it stays parallel (threads); the loop
// nested in it becomes scf.for nests, outermost dim first.
// CHECK-LABEL: func.func @nested
// CHECK: scf.parallel (%[[I:.*]]) =
// CHECK-NOT: scf.parallel
// CHECK:   scf.for %[[J:.*]] = %c0 to %c4 step %c1
// CHECK:     scf.for %[[K:.*]] = %c0 to %c3 step %c1
// CHECK:       memref.store %{{.*}}, %{{.*}}[%[[I]], %[[J]], %[[K]]]
func.func @nested(%m: memref<8x4x3xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    scf.parallel (%j, %k) = (%c0, %c0) to (%c4, %c3) step (%c1, %c1) {
      memref.store %v, %m[%i, %j, %k] : memref<8x4x3xf32>
    }
  }
  return
}

// -----

// An elementwise loop of 8 iterations is not worth a fork (it is with
// min-iterations=4); one whose size is known only at run time is.
// CHECK-LABEL: func.func @sizes
// CHECK: scf.for
// CHECK: scf.parallel
// LOW-LABEL: func.func @sizes
// LOW-COUNT-2: scf.parallel
func.func @sizes(%m: memref<8xf32>, %d: memref<?xf32>, %n: index, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %v, %m[%i] : memref<8xf32>
  }
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    memref.store %v, %d[%i] : memref<?xf32>
  }
  return
}

// -----

// An elementwise loop inside a sequential loop (an SDPA's loop over key
// tiles) would fork on every iteration of it, whatever its size: it becomes
// scf.for. One with an inner loop (a projection's loops inside its loop
// over reduction chunks) keeps its threads.
// CHECK-LABEL: func.func @in_sequential_loop
// CHECK: scf.for %[[T:.*]] = %c0 to %{{.*}} step %c1
// CHECK-NOT: scf.parallel
// CHECK:   scf.for %[[I:.*]] = %c0 to %[[N:.*]] step %c1
// CHECK:     memref.store %{{.*}}, %{{.*}}[%[[T]], %[[I]]]
// CHECK:   scf.parallel (%[[R:.*]]) =
// CHECK:     scf.for
// LOW-LABEL: func.func @in_sequential_loop
// LOW-COUNT-1: scf.parallel
func.func @in_sequential_loop(%m: memref<?x?xf32>, %tiles: index, %n: index, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %t = %c0 to %tiles step %c1 {
    scf.parallel (%i) = (%c0) to (%n) step (%c1) {
      memref.store %v, %m[%t, %i] : memref<?x?xf32>
    }
    scf.parallel (%r) = (%c0) to (%n) step (%c1) {
      scf.for %e = %c0 to %n step %c1 {
        memref.store %v, %m[%r, %e] : memref<?x?xf32>
      }
    }
  }
  return
}

// -----

// A sum across iterations would depend on the number of threads.
func.func @reduction(%m: memref<8xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  // expected-error @below {{reduces across its iterations; its result would depend on the number of threads}}
  %r = scf.parallel (%i) = (%c0) to (%c8) step (%c1) init (%zero) -> f32 {
    %x = memref.load %m[%i] : memref<8xf32>
    scf.reduce(%x : f32) {
    ^bb0(%a: f32, %b: f32):
      %s = arith.addf %a, %b : f32
      scf.reduce.return %s : f32
    }
  }
  return %r : f32
}

// -----

// An elementwise nest on threads keeps its last dim as an inner scf.for:
// convert-scf-to-openmp would collapse every dim into one index, divided
// back into the dims in each iteration, which LLVM does not vectorize.
// CHECK-LABEL: func.func @elementwise_nest
// CHECK: scf.parallel (%[[I:.*]], %[[J:.*]]) = (%c0, %c0) to (%[[N:.*]], %c4) step (%c1, %c1)
// CHECK-NEXT: scf.for %[[K:.*]] = %c0 to %c32 step %c1
// CHECK-NEXT:   memref.store %{{.*}}, %{{.*}}[%[[I]], %[[J]], %[[K]]]
func.func @elementwise_nest(%m: memref<?x4x32xf32>, %n: index, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c32 = arith.constant 32 : index
  scf.parallel (%i, %j, %k) = (%c0, %c0, %c0) to (%n, %c4, %c32) step (%c1, %c1, %c1) {
    memref.store %v, %m[%i, %j, %k] : memref<?x4x32xf32>
  }
  return
}
