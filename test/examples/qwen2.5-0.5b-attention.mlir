// The bundled example layer verifies, survives a round trip and
// canonicalization, and has the structure of Qwen2.5-0.5B's attention.
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir | rotor-opt | FileCheck %s
// RUN: rotor-opt %examples/qwen2.5-0.5b-attention.mlir -canonicalize -cse | FileCheck %s

// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%[[H:.+]]: tensor<?x896xf32>, %[[POS:.+]]: tensor<?xi32>, %[[KC:.+]]: tensor<4096x2x64xf32>, %[[VC:.+]]: tensor<4096x2x64xf32>)
// CHECK-DAG: %[[WQ:.+]] = attn.param "model.layers.0.self_attn.q_proj.weight" rows(<half_split>) : tensor<896x896xf32>
// CHECK-DAG: %[[BQ:.+]] = attn.param "model.layers.0.self_attn.q_proj.bias" rows(<half_split>) : tensor<896xf32>
// CHECK-DAG: %[[WK:.+]] = attn.param "model.layers.0.self_attn.k_proj.weight" rows(<half_split>) : tensor<128x896xf32>
// CHECK-DAG: %[[BK:.+]] = attn.param "model.layers.0.self_attn.k_proj.bias" rows(<half_split>) : tensor<128xf32>
// CHECK-DAG: %[[WO:.+]] = attn.param "model.layers.0.self_attn.o_proj.weight" : tensor<896x896xf32>
// CHECK: %[[Q:.+]] = attn.linear %[[H]], %[[WQ]], %[[BQ]]
// CHECK: %[[K:.+]] = attn.linear %[[H]], %[[WK]], %[[BK]]
// CHECK: %[[Q3:.+]] = tensor.expand_shape %[[Q]] {{\[}}[0], [1, 2]] output_shape [%{{.+}}, 14, 64]
// CHECK: %[[K3:.+]] = tensor.expand_shape %[[K]] {{\[}}[0], [1, 2]] output_shape [%{{.+}}, 2, 64]
// CHECK: %[[V3:.+]] = tensor.expand_shape
// CHECK: %[[QR:.+]] = attn.rope half_split %[[Q3]], %[[POS]] rotary_dim(64) theta(1.000000e+06)
// CHECK: %[[KR:.+]] = attn.rope half_split %[[K3]], %[[POS]] rotary_dim(64) theta(1.000000e+06)
// CHECK: attn.kv_cache_append %[[KR]] into %[[KC]]
// CHECK: attn.kv_cache_append %[[V3]] into %[[VC]]
// CHECK: %[[O:.+]] = attn.sdpa %[[QR]], %[[KR]], %[[V3]] causal
// CHECK-SAME: -> tensor<?x14x64xf32>
// CHECK: %[[O2:.+]] = tensor.collapse_shape %[[O]]
// CHECK: attn.linear %[[O2]], %[[WO]] precision

// CHECK-LABEL: func.func @decode
// CHECK-SAME: %[[LEN:[^:]+]]: index)
// CHECK: attn.rope half_split %{{.+}} : tensor<1x14x64xf32>, tensor<1xi32>
// CHECK: %[[KR:.+]] = attn.rope half_split %{{.+}} : tensor<1x2x64xf32>, tensor<1xi32>
// CHECK: %[[KC1:.+]] = attn.kv_cache_append %[[KR]] into %{{.+}} at %[[LEN]] : tensor<1x2x64xf32> into tensor<4096x2x64xf32>
// CHECK: %[[N:.+]] = arith.addi %[[LEN]], %{{.+}} : index
// CHECK: %[[KEYS:.+]] = attn.kv_cache_read %[[KC1]] length %[[N]]
// CHECK: attn.sdpa %{{.+}}, %[[KEYS]], %{{.+}} causal
// CHECK-SAME: : tensor<1x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<1x14x64xf32>
