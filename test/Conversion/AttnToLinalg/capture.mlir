// attn.capture becomes a call into the runtime's capture stream, with the
// data widened to f32 and positions to i64; the tags are listed by id.
// RUN: rotor-opt %s -convert-attn-to-linalg | FileCheck %s

// CHECK: module attributes {attn.captures = ["layer0.q", "layer0.k"]}
// CHECK: func.func private @rotor_capture(i64, memref<*xf32>, memref<*xi64>)
// CHECK-LABEL: func.func @f
// CHECK-SAME: (%[[Q:.+]]: tensor<?x2x8xbf16>, %[[P:.+]]: tensor<?xi32>)
// CHECK: arith.extf %{{.+}} : bf16 to f32
// CHECK: arith.extsi %{{.+}} : i32 to i64
// CHECK: %[[D:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<?x2x8xf32> to memref<?x2x8xf32>
// CHECK: %[[DU:.+]] = memref.cast %[[D]] : memref<?x2x8xf32> to memref<*xf32>
// CHECK: call @rotor_capture(%c0_i64, %[[DU]], %{{.+}})
// CHECK: call @rotor_capture(%c1_i64,
// CHECK: call @rotor_capture(%c0_i64{{.*}},
// CHECK: return %[[Q]]
func.func @f(%q: tensor<?x2x8xbf16>, %pos: tensor<?xi32>) -> tensor<?x2x8xbf16> {
  %0 = attn.capture %q, %pos tag("layer0.q") : tensor<?x2x8xbf16>, tensor<?xi32>
  %1 = attn.capture %0, %pos tag("layer0.k") : tensor<?x2x8xbf16>, tensor<?xi32>
  %2 = attn.capture %1, %pos tag("layer0.q") : tensor<?x2x8xbf16>, tensor<?xi32>
  return %2 : tensor<?x2x8xbf16>
}
