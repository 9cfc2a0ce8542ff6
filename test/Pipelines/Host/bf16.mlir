// bf16 arithmetic is emulated in f32 with explicit round-to-nearest-even,
// never left to LLVM (which would use AVX512-BF16 or __truncsfbf2).
// RUN: rotor-opt %s --rotor-host-pipeline | FileCheck %s

// CHECK-LABEL: llvm.func @scale
// CHECK-NOT: llvm.fptrunc {{.*}} to bf16
// CHECK-NOT: llvm.fpext {{.*}} : bf16
// CHECK: llvm.bitcast %{{.+}} : bf16 to i16
// CHECK-NOT: llvm.fptrunc {{.*}} to bf16
// CHECK-NOT: llvm.fpext {{.*}} : bf16
// CHECK-LABEL: llvm.func @_mlir_ciface_scale
func.func @scale(%x: tensor<?x2x4xbf16>, %pos: tensor<?xi32>) -> tensor<?x2x4xbf16> {
  %0 = attn.rope half_split %x, %pos rotary_dim(4) theta(1.0e+04)
      precision <compute = bf16, accumulate = f32> : tensor<?x2x4xbf16>, tensor<?xi32>
  return %0 : tensor<?x2x4xbf16>
}
