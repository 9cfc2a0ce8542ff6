// RUN: rotor-opt %s -pass-pipeline='builtin.module(func.func(rotor-tile-parallel-loops-for-gpu{block-size=128}))' | FileCheck %s

// A 2-D parallel loop becomes one flat dimension tiled into blocks of 128
// threads; the inner loop guards the last, partial block.
// CHECK-LABEL: func.func @fill
// CHECK: %[[DIM:.+]] = memref.dim
// CHECK: %[[N:.+]] = arith.muli %{{.+}}, %c896
// CHECK: %[[STEP:.+]] = arith.muli %{{.+}}, %c128
// CHECK: scf.parallel (%[[B:.+]]) = (%{{.+}}) to (%[[N]]) step (%[[STEP]])
// CHECK-NEXT: scf.parallel (%[[T:.+]]) = (%{{.+}}) to (%[[STEP]])
// CHECK: %[[IN:.+]] = arith.cmpi ult, %{{.+}}, %[[N]]
// CHECK: scf.if
// CHECK: %[[J:.+]] = arith.remsi %{{.+}}, %c896
// CHECK: %[[I:.+]] = arith.divsi %{{.+}}, %c896
// CHECK: memref.store %{{.+}}, %{{.+}}[%[[I]], %[[J]]]
func.func @fill(%m: memref<?x896xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c896 = arith.constant 896 : index
  %n = memref.dim %m, %c0 : memref<?x896xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c896) step (%c1, %c1) {
    memref.store %v, %m[%i, %j] : memref<?x896xf32>
  }
  return
}
