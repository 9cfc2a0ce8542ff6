// Constant tables a kernel reads are referenced inside the launch, so that
// outlining clones them into the kernel module (uploaded with it, once)
// instead of passing a host address that would need a copy per call.
// RUN: rotor-opt %s --rotor-sink-constant-tables-into-launches -split-input-file | FileCheck %s
// RUN: rotor-opt %s --rotor-sink-constant-tables-into-launches --gpu-kernel-outlining -split-input-file | FileCheck %s --check-prefix=OUTLINED

memref.global "private" constant @freqs : memref<4xf64> = dense<[1.0, 0.5, 0.25, 0.125]>
memref.global "private" @scratch : memref<4xf64> = dense<0.0>

// CHECK-LABEL: func.func @rope_like(
// CHECK: %[[HOST:.+]] = memref.get_global @freqs
// CHECK: %[[S:.+]] = memref.get_global @scratch
// CHECK: gpu.launch
// CHECK: %[[IN:.+]] = memref.get_global @freqs
// CHECK: memref.load %[[IN]]
// CHECK: memref.load %[[S]][
// CHECK: gpu.terminator
// CHECK: memref.load %[[HOST]]
// A mutable global is not a table: it stays an operand.
// CHECK-NOT: memref.get_global @scratch

// Only the mutable global is still an operand; the kernel module holds its
// own copy of the table.
// OUTLINED-LABEL: func.func @rope_like(
// OUTLINED: gpu.launch_func @rope_like_kernel::@rope_like_kernel {{.*}} args(%{{.+}} : memref<4xf64>, %{{.+}} : memref<?xf32>)
// OUTLINED: gpu.module @rope_like_kernel
// OUTLINED: gpu.func @rope_like_kernel(%{{.+}}: memref<4xf64>, %{{.+}}: memref<?xf32>)
// OUTLINED: memref.get_global @freqs
// OUTLINED: memref.global "private" constant @freqs
// OUTLINED-NOT: @scratch
func.func @rope_like(%out: memref<?xf32>) -> f64 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %table = memref.get_global @freqs : memref<4xf64>
  %scratch = memref.get_global @scratch : memref<4xf64>
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    %f = memref.load %table[%tx] : memref<4xf64>
    %s = memref.load %scratch[%tx] : memref<4xf64>
    %sum = arith.addf %f, %s : f64
    %v = arith.truncf %sum : f64 to f32
    memref.store %v, %out[%tx] : memref<?xf32>
    gpu.terminator
  }
  %host = memref.load %table[%c0] : memref<4xf64>
  return %host : f64
}

// -----

memref.global "private" constant @centroids : memref<8xf64> = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]>

// A view of a table goes in with the table (and the constants it needs).
// CHECK-LABEL: func.func @view_of_table(
// CHECK: gpu.launch
// CHECK: %[[G:.+]] = memref.get_global @centroids
// CHECK: %[[V:.+]] = memref.subview %[[G]][4] [4] [1]
// CHECK: memref.load %[[V]]
// OUTLINED-LABEL: func.func @view_of_table(
// OUTLINED: gpu.launch_func @view_of_table_kernel::@view_of_table_kernel {{.*}} args(%{{.+}} : memref<?xf32>)
func.func @view_of_table(%out: memref<?xf32>) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %table = memref.get_global @centroids : memref<8xf64>
  %upper = memref.subview %table[4] [4] [1] : memref<8xf64> to memref<4xf64, strided<[1], offset: 4>>
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    %f = memref.load %upper[%tx] : memref<4xf64, strided<[1], offset: 4>>
    %v = arith.truncf %f : f64 to f32
    memref.store %v, %out[%tx] : memref<?xf32>
    gpu.terminator
  }
  return
}
