// On the host, workgroup buffers are plain stack memory: every
// #gpu.address_space leaves the memref types, results and block arguments
// alike; GPU code is refused.
// RUN: rotor-opt %s --rotor-drop-gpu-address-spaces -split-input-file -verify-diagnostics | FileCheck %s

// CHECK-LABEL: func.func @buffers(
// CHECK: %[[BUF:.+]] = memref.alloca() : memref<4x8xf32>
// CHECK: %[[SUB:.+]] = memref.subview %[[BUF]][0, 0] [1, 8] [1, 1] : memref<4x8xf32> to memref<8xf32, strided<[1]>>
// CHECK: scf.for {{.+}} iter_args(%{{.+}} = %[[SUB]]) -> (memref<8xf32, strided<[1]>>)
// CHECK-NOT: address_space
func.func @buffers(%n: index) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %buf = memref.alloca() : memref<4x8xf32, #gpu.address_space<workgroup>>
  %sub = memref.subview %buf[0, 0] [1, 8] [1, 1]
      : memref<4x8xf32, #gpu.address_space<workgroup>>
        to memref<8xf32, strided<[1]>, #gpu.address_space<workgroup>>
  %last = scf.for %i = %c0 to %n step %c1 iter_args(%s = %sub)
      -> (memref<8xf32, strided<[1]>, #gpu.address_space<workgroup>>) {
    scf.yield %s : memref<8xf32, strided<[1]>, #gpu.address_space<workgroup>>
  }
  %x = memref.load %last[%c0] : memref<8xf32, strided<[1]>, #gpu.address_space<workgroup>>
  return %x : f32
}

// -----

func.func @launch() {
  %c1 = arith.constant 1 : index
  // expected-error @below {{is GPU code: the host cannot drop its address spaces (run the GPU or emulation pipeline)}}
  gpu.launch blocks(%bx, %by, %bz) in (%x = %c1, %y = %c1, %z = %c1)
             threads(%tx, %ty, %tz) in (%a = %c1, %b = %c1, %c = %c1) {
    gpu.terminator
  }
  return
}
