// RUN: rotor-opt %s -rotor-approximate-exp-for-simd | FileCheck %s
// RUN: rotor-opt %s -rotor-approximate-exp-for-simd=fma=false | FileCheck %s --check-prefix=NOFMA

// f32 exp2 as arith: x clamped to [-160, 130], n = roundeven(x), the
// polynomial in f = x - n, 2^n as 2^h * 2^(n-h) from the exponent bits;
// below 2^-126 (x < -126) 0, no subnormal; NaN passes through.
// Other types keep math.exp2.
// CHECK-LABEL: func.func @exp2
// CHECK-SAME: (%[[X:.*]]: f32, %[[Y:.*]]: f64)
// CHECK: %[[LO:.*]] = arith.maximumf %[[X]], %{{.*}} : f32
// CHECK: %[[C:.*]] = arith.minimumf %[[LO]], %{{.*}} : f32
// CHECK: %[[N:.*]] = math.roundeven %[[C]] : f32
// CHECK: %[[F:.*]] = arith.subf %[[C]], %[[N]] : f32
// The polynomial's 7 Horner steps are explicit FMAs: a multiply and add
// that LLVM may contract were fused in some copies of a vectorized loop and
// not in others, which made results depend on the thread count.
// CHECK-COUNT-7: math.fma {{.*}} : f32
// CHECK-NOT: fastmath<contract>
// CHECK: %[[NI:.*]] = arith.fptosi %[[N]] : f32 to i32
// CHECK: %[[H:.*]] = arith.shrsi %[[NI]], %{{.*}} : i32
// CHECK: %[[REST:.*]] = arith.subi %[[NI]], %[[H]] : i32
// CHECK: arith.bitcast %{{.*}} : i32 to f32
// CHECK: arith.mulf
// CHECK: arith.bitcast %{{.*}} : i32 to f32
// CHECK: %[[R:.*]] = arith.mulf
// CHECK: %[[TINY:.*]] = arith.cmpf olt, %[[X]], %{{.*}} : f32
// CHECK: %[[FLUSHED:.*]] = arith.select %[[TINY]], %{{.*}}, %[[R]] : f32
// CHECK: %[[NAN:.*]] = arith.cmpf uno, %[[X]], %[[X]] : f32
// CHECK: %[[OUT:.*]] = arith.select %[[NAN]], %[[X]], %[[FLUSHED]] : f32
// CHECK-NOT: math.exp2 %[[X]]
// CHECK: math.exp2 %[[Y]] : f64
// CHECK: return %[[OUT]]
// Without FMA (fma=false, a CPU like x86-64-v2): a multiply and an add per
// step, neither with a flag that lets LLVM fuse them.
// NOFMA-LABEL: func.func @exp2
// NOFMA-NOT: math.fma
// NOFMA-COUNT-7: arith.addf {{%[^ ]+}}, {{%[^ ]+}} : f32
// NOFMA-NOT: fastmath<contract>
// NOFMA: return
func.func @exp2(%x: f32, %y: f64) -> (f32, f64) {
  %a = math.exp2 %x : f32
  %b = math.exp2 %y : f64
  return %a, %b : f32, f64
}
