// RUN: rotor-opt %s -rotor-approximate-exp-for-simd | FileCheck %s
// RUN: rotor-opt %s -rotor-approximate-exp-for-simd=fma=false | FileCheck %s --check-prefix=NOFMA

// f32 exp2 as arith: x clamped to [-160, 130], n = roundeven(x), the
// polynomial in f = x - n (degree 6, its constant term 1), n added to its
// exponent bits; from x = 128 up +inf, below 2^-126 (x < -126) 0, no
// subnormal; NaN passes through.
// Other types keep math.exp2.
// CHECK-LABEL: func.func @exp2
// CHECK-SAME: (%[[X:.*]]: f32, %[[Y:.*]]: f64)
// CHECK: %[[LO:.*]] = arith.maximumf %[[X]], %{{.*}} : f32
// CHECK: %[[C:.*]] = arith.minimumf %[[LO]], %{{.*}} : f32
// CHECK: %[[N:.*]] = math.roundeven %[[C]] : f32
// CHECK: %[[F:.*]] = arith.subf %[[C]], %[[N]] : f32
// The polynomial's 6 Horner steps are explicit FMAs: a multiply and add
// that LLVM may contract were fused in some copies of a vectorized loop and
// not in others, which made results depend on the thread count.
// CHECK-COUNT-5: math.fma %{{.*}}, %[[F]], %{{.*}} : f32
// CHECK: %[[P:.*]] = math.fma %{{.*}}, %[[F]], %{{.*}} : f32
// CHECK-NOT: math.fma
// CHECK-NOT: fastmath<contract>
// CHECK: %[[NI:.*]] = arith.fptosi %[[N]] : f32 to i32
// CHECK: %[[E:.*]] = arith.shli %[[NI]], %{{.*}} : i32
// CHECK: %[[PI:.*]] = arith.bitcast %[[P]] : f32 to i32
// CHECK: %[[SUM:.*]] = arith.addi %[[PI]], %[[E]] : i32
// CHECK: %[[R:.*]] = arith.bitcast %[[SUM]] : i32 to f32
// CHECK: %[[BIG:.*]] = arith.cmpf oge, %[[X]], %{{.*}} : f32
// CHECK: %[[CAPPED:.*]] = arith.select %[[BIG]], %{{.*}}, %[[R]] : f32
// CHECK: %[[TINY:.*]] = arith.cmpf olt, %[[X]], %{{.*}} : f32
// CHECK: %[[FLUSHED:.*]] = arith.select %[[TINY]], %{{.*}}, %[[CAPPED]] : f32
// CHECK: %[[NAN:.*]] = arith.cmpf uno, %[[X]], %[[X]] : f32
// CHECK: %[[OUT:.*]] = arith.select %[[NAN]], %[[X]], %[[FLUSHED]] : f32
// CHECK-NOT: math.exp2 %[[X]]
// CHECK: math.exp2 %[[Y]] : f64
// CHECK: return %[[OUT]]
// Without FMA (fma=false, a CPU like x86-64-v2): a multiply and an add per
// step, neither with a flag that lets LLVM fuse them.
// NOFMA-LABEL: func.func @exp2
// NOFMA-NOT: math.fma
// NOFMA-COUNT-6: arith.addf {{%[^ ]+}}, {{%[^ ]+}} : f32
// NOFMA-NOT: fastmath<contract>
// NOFMA: return
func.func @exp2(%x: f32, %y: f64) -> (f32, f64) {
  %a = math.exp2 %x : f32
  %b = math.exp2 %y : f64
  return %a, %b : f32, f64
}
