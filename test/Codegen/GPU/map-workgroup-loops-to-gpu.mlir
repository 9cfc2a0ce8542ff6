// Block-mapped loops become gpu.launch: their allocas in
// #gpu.address_space<workgroup> become workgroup attributions, thread phases
// block-strided loops each followed by a barrier, and the code between
// phases runs in every thread.
// RUN: rotor-opt %s --pass-pipeline='builtin.module(func.func(rotor-map-workgroup-loops-to-gpu{block-size=64}))' -split-input-file -verify-diagnostics | FileCheck %s

// CHECK-LABEL: func.func @two_phases(
// CHECK-SAME: %[[IN:.+]]: memref<?x16xf32>, %[[OUT:.+]]: memref<?x16xf32>, %[[N:.+]]: index
// CHECK-DAG: %[[THREADS:.+]] = arith.constant 64 : index
// CHECK: gpu.launch blocks(%[[BX:.+]], %{{.+}}, %{{.+}}) in (%{{.+}} = %[[N]], %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) threads(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %[[THREADS]], %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) workgroup(%[[BUF:.+]] : memref<16xf32, #gpu.address_space<workgroup>>)
// CHECK-NOT: memref.alloca
// CHECK: %[[TID:.+]] = gpu.thread_id x
// CHECK: %[[START:.+]] = arith.addi %{{.+}}, %{{.+}}
// CHECK: scf.for %[[I:.+]] = %[[START]] to %{{.+}} step %{{.+}} {
// CHECK:   memref.load %[[IN]][%[[BX]], %[[I]]]
// CHECK:   memref.store %{{.+}}, %[[BUF]][%[[I]]]
// CHECK: }
// CHECK-NEXT: gpu.barrier
// CHECK: scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %{{.+}} {
// CHECK:   memref.load %[[BUF]][
// CHECK:   memref.store %{{.+}}, %[[OUT]][%[[BX]], %[[J]]]
// CHECK: }
// CHECK-NEXT: gpu.barrier
// CHECK-NEXT: gpu.terminator
// CHECK-NOT: scf.parallel
func.func @two_phases(%in: memref<?x16xf32>, %out: memref<?x16xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c15 = arith.constant 15 : index
  %c16 = arith.constant 16 : index
  scf.parallel (%b) = (%c0) to (%n) step (%c1) {
    memref.alloca_scope {
      %buf = memref.alloca() : memref<16xf32, #gpu.address_space<workgroup>>
      scf.parallel (%i) = (%c0) to (%c16) step (%c1) {
        %x = memref.load %in[%b, %i] : memref<?x16xf32>
        memref.store %x, %buf[%i] : memref<16xf32, #gpu.address_space<workgroup>>
        scf.reduce
      } {mapping = [#gpu.thread<x>]}
      scf.parallel (%j) = (%c0) to (%c16) step (%c1) {
        %r = arith.subi %c15, %j : index
        %x = memref.load %buf[%r] : memref<16xf32, #gpu.address_space<workgroup>>
        memref.store %x, %out[%b, %j] : memref<?x16xf32>
        scf.reduce
      } {mapping = [#gpu.thread<x>]}
    }
    scf.reduce
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

// The IR says which allocas are workgroup buffers: one in the default
// memory space is not guessed to be one.
func.func @default_space_buffer(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%b) = (%c0) to (%n) step (%c1) {
    // expected-error @below {{a workgroup buffer must have a static shape in #gpu.address_space<workgroup>}}
    %m = memref.alloca() : memref<16xf32>
    scf.reduce
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

// Dims go where the mapping says: block y takes the first dim here.
// CHECK-LABEL: func.func @grid_yx(
// CHECK: gpu.launch blocks(%[[BX:.+]], %[[BY:.+]], %{{.+}}) in (%{{.+}} = %arg2, %{{.+}} = %arg1
// CHECK: memref.store %{{.+}}, %arg0[%[[BY]], %[[BX]]]
func.func @grid_yx(%out: memref<?x?xf32>, %m: index, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  scf.parallel (%i, %j) = (%c0, %c0) to (%m, %n) step (%c1, %c1) {
    memref.store %f, %out[%i, %j] : memref<?x?xf32>
    scf.reduce
  } {mapping = [#gpu.block<y>, #gpu.block<x>]}
  return
}

// -----

// Loops without a block mapping are left to the other passes.
// CHECK-LABEL: func.func @unmapped(
// CHECK-NOT: gpu.launch
// CHECK: scf.parallel
func.func @unmapped(%out: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    memref.store %f, %out[%i] : memref<?xf32>
    scf.reduce
  }
  return
}

// -----

func.func @nested_phases(%out: memref<?x4xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %f = arith.constant 1.0 : f32
  scf.parallel (%b) = (%c0) to (%n) step (%c1) {
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      // expected-error @below {{thread phases cannot nest}}
      scf.parallel (%j) = (%c0) to (%c4) step (%c1) {
        memref.store %f, %out[%b, %j] : memref<?x4xf32>
        scf.reduce
      } {mapping = [#gpu.thread<x>]}
      scf.reduce
    } {mapping = [#gpu.thread<x>]}
    scf.reduce
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

func.func @heap_buffer(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%b) = (%c0) to (%n) step (%c1) {
    // expected-error @below {{'memref.alloc' op is not supported inside a block-mapped loop}}
    %m = memref.alloc() : memref<4xf32>
    scf.reduce
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

func.func @offset_grid(%out: memref<?xf32>, %n: index) {
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  // expected-error @below {{a block-mapped loop must start at 0 with step 1}}
  scf.parallel (%b) = (%c1) to (%n) step (%c1) {
    memref.store %f, %out[%b] : memref<?xf32>
    scf.reduce
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

func.func @dynamic_buffer(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%b) = (%c0) to (%n) step (%c1) {
    // expected-error @below {{a workgroup buffer must have a static shape in #gpu.address_space<workgroup>}}
    %m = memref.alloca(%n) : memref<?xf32, #gpu.address_space<workgroup>>
    scf.reduce
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

func.func @unmapped_inner(%out: memref<?x4xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %f = arith.constant 1.0 : f32
  scf.parallel (%b) = (%c0) to (%n) step (%c1) {
    // expected-error @below {{inside a block-mapped loop, parallel loops must be 1-D thread phases (mapping [#gpu.thread<x>])}}
    scf.parallel (%j) = (%c0) to (%c4) step (%c1) {
      memref.store %f, %out[%b, %j] : memref<?x4xf32>
      scf.reduce
    }
    scf.reduce
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

// RUN: not rotor-opt %s --pass-pipeline='builtin.module(func.func(rotor-map-workgroup-loops-to-gpu{block-size=2048}))' -split-input-file 2>&1 | FileCheck %s --check-prefix=SIZE
// SIZE: error: rotor-map-workgroup-loops-to-gpu: block-size must be in [1, 1024], got 2048

// -----

// Code between phases may read a workgroup buffer (every thread does); the
// phase after it waits first, so that no thread overwrites what another
// has yet to read.
// CHECK-LABEL: func.func @read_between_phases(
// CHECK: gpu.barrier
// CHECK: memref.load %{{.+}}[%c0
// CHECK-NEXT: gpu.barrier
// CHECK-NEXT: arith.muli %thread_id_x
// CHECK: scf.for
func.func @read_between_phases(%out: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %f = arith.constant 1.0 : f32
  scf.parallel (%b) = (%c0) to (%n) step (%c1) {
    %buf = memref.alloca() : memref<16xf32, #gpu.address_space<workgroup>>
    scf.parallel (%i) = (%c0) to (%c16) step (%c1) {
      memref.store %f, %buf[%i] : memref<16xf32, #gpu.address_space<workgroup>>
      scf.reduce
    } {mapping = [#gpu.thread<x>]}
    %first = memref.load %buf[%c0] : memref<16xf32, #gpu.address_space<workgroup>>
    scf.parallel (%i) = (%c0) to (%c16) step (%c1) {
      memref.store %first, %buf[%i] : memref<16xf32, #gpu.address_space<workgroup>>
      scf.reduce
    } {mapping = [#gpu.thread<x>]}
    scf.reduce
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

func.func @write_between_phases(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  scf.parallel (%b) = (%c0) to (%n) step (%c1) {
    %buf = memref.alloca() : memref<16xf32, #gpu.address_space<workgroup>>
    // expected-error @below {{'memref.store' op writes a workgroup buffer outside a thread phase}}
    memref.store %f, %buf[%c0] : memref<16xf32, #gpu.address_space<workgroup>>
    scf.reduce
  } {mapping = [#gpu.block<x>]}
  return
}
