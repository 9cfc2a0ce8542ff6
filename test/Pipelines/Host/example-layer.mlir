// The example layer goes all the way to the LLVM dialect for the host, with
// C interfaces for both entry points and no call into MLIR's runner
// utilities.
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-host-pipeline | FileCheck %s
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-host-pipeline=kv-tile-size=16 | FileCheck %s

// The KV caches are updated in place, so each entry point returns one
// buffer (the output) and never clones a cache.
// CHECK-NOT: memrefCopy
// CHECK-DAG: llvm.func @prefill({{.*}}) -> !llvm.struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>
// CHECK-DAG: llvm.func @decode({{.*}}) -> !llvm.struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>
// CHECK-DAG: llvm.func @_mlir_ciface_prefill(
// CHECK-DAG: llvm.func @_mlir_ciface_decode(
// CHECK-NOT: = attn.
// CHECK-NOT: linalg.generic
// CHECK-NOT: scf.for

// A decode step's tile loops (one per KV head when there is one range,
// else the ranges') prefetch K and V 32 keys ahead with prefetcht2, spread
// over the scores' and P·V's loops (rotor-prefetch-next-key-tile);
// prefill's tiles, which every block of queries reads again, are not. Prefill's packed projections without a row
// epilogue (q with its RoPE, o) prefetch their next panel's weight rows.
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir --rotor-host-pipeline | FileCheck %s --check-prefix=PREFETCH
// PREFETCH-LABEL: llvm.func @prefill(
// PREFETCH-COUNT-2: "llvm.intr.prefetch"({{.*}}) <{cache = 1 : i32, hint = 3 : i32, rw = 0 : i32}>
// PREFETCH-NOT: llvm.intr.prefetch
// PREFETCH-LABEL: llvm.func @decode(
// PREFETCH-COUNT-4: "llvm.intr.prefetch"({{.*}}) <{cache = 1 : i32, hint = 1 : i32, rw = 0 : i32}>
// PREFETCH-NOT: llvm.intr.prefetch
// PREFETCH-LABEL: llvm.func @_mlir_ciface_decode(
