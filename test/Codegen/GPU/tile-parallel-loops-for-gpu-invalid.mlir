// RUN: rotor-opt %s -split-input-file -verify-diagnostics -pass-pipeline='builtin.module(func.func(rotor-tile-parallel-loops-for-gpu{block-size=128}))'
// RUN: not rotor-opt %s --rotor-gpu-pipeline=format=isa 2>&1 | FileCheck %s
// CHECK: error: 'scf.parallel' op reduces across its iterations

// A sum across the iterations: a grid of independent blocks has none.
func.func @reduction(%m: memref<8xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %zero = arith.constant 0.0 : f32
  // expected-error @below {{reduces across its iterations, which a GPU grid of independent blocks cannot; write the sum as a loop inside one iteration}}
  %r = scf.parallel (%i) = (%c0) to (%c2) step (%c1) init (%zero) -> f32 {
    %x = memref.load %m[%i] : memref<8xf32>
    scf.reduce(%x : f32) {
    ^bb0(%a: f32, %b: f32):
      %s = arith.addf %a, %b : f32
      scf.reduce.return %s : f32
    }
  }
  return %r : f32
}
