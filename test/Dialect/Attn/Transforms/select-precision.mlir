// attn-select-precision: decisions on a small qwen2-style layer (hidden 64,
// 4/2 heads of 16, a 32-token cache), its weights written by
// make_layer_inputs.py: Qwen-like biases (K std 20, Q std 3) and bias-free.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python %scripts/make_layer_inputs.py --weights %t/qwen.safetensors --inputs %t/x.safetensors --hidden 64 --q-heads 4 --kv-heads 2 --head-dim 16 --tokens 8 --seed 1 > /dev/null
// RUN: %python %scripts/make_layer_inputs.py --weights %t/plain.safetensors --inputs %t/y.safetensors --hidden 64 --q-heads 4 --kv-heads 2 --head-dim 16 --tokens 8 --seed 1 --k-bias-std 0 --q-bias-std 0 > /dev/null

// A K bias of |50| in a 16-bit cache misses 1e-2; with the split it meets
// it at 16-bit cache bytes, and Q stays wider than bf16 (its bias would
// round).
// RUN: rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 target=1e-2" 2>&1 | FileCheck %s --check-prefix=QWEN
// QWEN: remark: attn-select-precision: layer 0: chose, predicted max relative error {{.*}} (target 1.0e-02), 1-PCC {{.*}}, KV cache 128 bytes per token
// QWEN: q into SDPA: {{f32|f16}} (|b_q| max
// QWEN: k/v caches: {{f16|bf16}} after the bias split (|b_k| max {{[0-9.]+}}; |k| up to
// QWEN-LABEL: func.func @layer0_prefill(
// QWEN-SAME: %arg2: tensor<32x2x16x[[$KV:f16|bf16]]> {attn.kv_format = "[[$KV]]"}
// QWEN: %[[K:.*]] = attn.linear %arg0, %k_proj_weight precision <compute = f32
// QWEN: arith.truncf %{{.*}} : tensor<?x2x16xf32> to tensor<?x2x16x[[$KV]]>
// QWEN: attn.sdpa {{.*}} key_bias(%{{.*}} : tensor<2x16xf32> rope(<layout = half_split, rotary_dim = 16, theta = 1.000000e+06>))
// QWEN-LABEL: func.func @layer0_decode(
// QWEN: %[[READ:.*]] = attn.kv_cache_read %{{.*}} : tensor<32x2x16x[[$KV]]>
// QWEN-NEXT: arith.extf %[[READ]] : tensor<?x2x16x[[$KV]]> to tensor<?x2x16xf32>

// Bias-free: bf16 weights and 16-bit caches already meet 1e-2, so nothing
// is kept wider than that needs, and nothing is split.
// RUN: rotor-opt %s -attn-select-precision="weights=%t/plain.safetensors input-rms=1 target=1e-2" 2>&1 | FileCheck %s --check-prefix=PLAIN
// PLAIN: layer 0: chose, {{.*}} KV cache 128 bytes per token
// PLAIN: q_proj weights: bf16
// PLAIN: k/v caches: {{f16|bf16}} (the output error bound with f32
// PLAIN-LABEL: func.func @layer0_prefill(
// PLAIN: %q_proj_weight = attn.param "model.layers.0.self_attn.q_proj.weight" rows(<half_split>) : tensor<64x64xbf16>
// PLAIN: attn.linear %arg0, %q_proj_weight, %q_proj_bias precision <compute = bf16, accumulate = f32> : tensor<?x64xf32>, tensor<64x64xbf16>, tensor<64xf32>
// PLAIN-NOT: key_bias
// PLAIN: return

// A tight target keeps f32 caches, and the split (which costs compute and
// saves no bytes then) is not bought.
// RUN: rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 target=1e-4" 2>&1 | FileCheck %s --check-prefix=TIGHT
// TIGHT: KV cache 256 bytes per token
// TIGHT: k/v caches: f32 (
// TIGHT-NOT: key_bias
// TIGHT: func.func @layer0_decode

// A named plan: everything bf16 (RoPE and SDPA computed in bf16, every
// activation stored in bf16 between ops), its predicted error reported.
// SDPA rounds its probabilities to bf16 where they multiply V
// (round_probabilities: the error model's "sdpa.p" term counts it).
// RUN: rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 plan=bf16" 2>&1 | FileCheck %s --check-prefix=BF16
// BF16: layer 0: applied, predicted max relative error
// BF16: sdpa compute: bf16 (probabilities rounded to it for P·V) (the output error bound with f32:
// BF16-LABEL: func.func @layer0_prefill(
// BF16-SAME: tensor<32x2x16xbf16> {attn.kv_format = "bf16"}
// BF16: %[[Q:.*]] = attn.linear {{.*}} precision <compute = bf16, accumulate = f32>
// BF16-NEXT: %[[T:.*]] = arith.truncf %[[Q]] : tensor<?x64xf32> to tensor<?x64xbf16>
// BF16-NEXT: arith.extf %[[T]]
// BF16: attn.rope {{.*}} precision <compute = bf16, accumulate = f32>
// BF16: attn.sdpa {{.*}} precision <compute = bf16, accumulate = f32> round_probabilities :

// Overrides of a named plan: f32 with 16-bit caches and the split.
// RUN: rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 plan=q-f32,kv=f16,split" 2>&1 | FileCheck %s --check-prefix=OVERRIDE
// OVERRIDE: k/v caches: f16 after the bias split
// OVERRIDE: tensor<32x2x16xf16> {attn.kv_format = "f16"}
// OVERRIDE: key_bias(
// OVERRIDE-NOT: round_probabilities
// OVERRIDE: func.func @layer0_decode
// OVERRIDE-NOT: round_probabilities
// OVERRIDE: return

// The JSON report: every decision with its alternatives, the ranges, and
// the shares of the predicted error.
// RUN: rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 report=%t/report.json" -o /dev/null 2> /dev/null
// RUN: %python -c "import json,sys; l=json.load(open(sys.argv[1]))['layers'][0]; print(sorted(l), [d['tensor'] for d in l['decisions']], l['ranges']['k_bias_abs_max'] > 40, len(l['decisions'][5]['alternatives']))" %t/report.json | FileCheck %s --check-prefix=REPORT
// REPORT: ['context', 'decisions', 'error_shares', 'kv_bytes_per_token', 'layer', 'plan', 'predicted', 'ranges', 'searched', 'weight_bytes'] ['q_proj weights', 'k_proj weights', 'v_proj weights', 'o_proj weights', 'q into SDPA', 'k/v caches', 'sdpa compute'] True 6

// Calibration rows instead of synthetic ones (no declared range needed).
// RUN: rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors calibration=%t/x.safetensors" -o /dev/null 2>&1 | FileCheck %s --check-prefix=CALIB
// CALIB: layer 0: chose, predicted max relative error

// Errors: an unreachable target names the op whose rounding dominates; a
// plan, a target, weights or calibration that is not there.
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 target=1e-12" -o /dev/null 2>&1 | FileCheck %s --check-prefix=UNREACHABLE
// UNREACHABLE: error: attn-select-precision: no plan meets the target 1.0e-12 for layer 0: even f32 everywhere bounds the output error at {{.*}}, most of it from
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 plan=fp8" -o /dev/null 2>&1 | FileCheck %s --check-prefix=PLAN
// PLAN: error: attn-select-precision: precision plan 'fp8': 'fp8' is not a plan (f32, bf16, rope-f32, q-f32)
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 plan=bf16,kv=f8" -o /dev/null 2>&1 | FileCheck %s --check-prefix=KEY
// KEY: error: attn-select-precision: precision plan 'bf16,kv=f8': 'kv=f8': expected split or KEY=f32|f16|bf16
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 target=-1" -o /dev/null 2>&1 | FileCheck %s --check-prefix=TARGET
// TARGET: error: attn-select-precision: the target must be a positive finite relative error, not -1
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 target=inf" -o /dev/null 2>&1 | FileCheck %s --check-prefix=TARGETINF
// TARGETINF: error: attn-select-precision: the target must be a positive finite relative error, not inf
// A negative or infinite input RMS was taken, and the plan applied with a
// predicted error of 0 (inf) or from a negative scale (-3).
// RUN: for rms in -3 inf nan; do not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=$rms plan=bf16" -o /dev/null 2>&1 | FileCheck %s --check-prefix=RMS || exit 1; done
// RMS: error: attn-select-precision: input-rms (rotor-aot --precision-input-rms) must be a positive finite RMS, or 0 for the input norm's, not {{-3|inf|nan}}
// A range that overflows the plan's types is an error, not a plan applied
// with infinities (input-rms=1e300 printed a predicted error of 0).
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1e300 plan=bf16" -o /dev/null 2>&1 | FileCheck %s --check-prefix=OVERFLOW
// OVERFLOW: error: attn-select-precision: the plan stores values that could overflow their types (|q| up to {{.*}}, |k| up to {{.*}}, |v| up to {{.*}}): store them in a wider type
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1e300" -o /dev/null 2>&1 | FileCheck %s --check-prefix=OVERFLOWALL
// OVERFLOWALL: error: attn-select-precision: every plan stores values that could overflow their types
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 samples=0" -o /dev/null 2>&1 | FileCheck %s --check-prefix=SAMPLES
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors input-rms=1 context-length=-5" -o /dev/null 2>&1 | FileCheck %s --check-prefix=SAMPLES
// SAMPLES: error: attn-select-precision: samples must be at least 1 and context-length at least 0 (0: the KV cache's capacity), not
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/missing.safetensors input-rms=1" -o /dev/null 2>&1 | FileCheck %s --check-prefix=WEIGHTS
// WEIGHTS: error: {{.*}}missing.safetensors
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors calibration=%t/none.safetensors" -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOCALIB
// NOCALIB: error: attn-select-precision: calibration inputs: {{.*}}none.safetensors
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors calibration=%t/qwen.safetensors" -o /dev/null 2>&1 | FileCheck %s --check-prefix=BADCALIB
// BADCALIB: error: attn-select-precision: {{.*}}qwen.safetensors: needs hidden_states, F32 [T, 64]
// RUN: not rotor-opt %s -attn-select-precision="weights=%t/qwen.safetensors" -o /dev/null 2>&1 | FileCheck %s --check-prefix=RANGE
// RANGE: error: attn-select-precision: the layer's input (argument 0) has no known range

module {
  func.func @layer0_prefill(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<32x2x16xf32> {attn.kv_format = "f32"}, %arg3: tensor<32x2x16xf32> {attn.kv_format = "f32"}) -> (tensor<?x64xf32>, tensor<32x2x16xf32>, tensor<32x2x16xf32>) attributes {attn.layer = 0 : i64} {
    %c0 = arith.constant 0 : index
    %dim = tensor.dim %arg0, %c0 : tensor<?x64xf32>
    %q_proj_weight = attn.param "model.layers.0.self_attn.q_proj.weight" rows(<half_split>) : tensor<64x64xf32>
    %q_proj_bias = attn.param "model.layers.0.self_attn.q_proj.bias" rows(<half_split>) : tensor<64xf32>
    %k_proj_weight = attn.param "model.layers.0.self_attn.k_proj.weight" rows(<half_split>) : tensor<32x64xf32>
    %k_proj_bias = attn.param "model.layers.0.self_attn.k_proj.bias" rows(<half_split>) : tensor<32xf32>
    %v_proj_weight = attn.param "model.layers.0.self_attn.v_proj.weight" : tensor<32x64xf32>
    %v_proj_bias = attn.param "model.layers.0.self_attn.v_proj.bias" : tensor<32xf32>
    %o_proj_weight = attn.param "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xf32>
    %0 = attn.linear %arg0, %q_proj_weight, %q_proj_bias precision <compute = f32, accumulate = f32> : tensor<?x64xf32>, tensor<64x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
    %expanded = tensor.expand_shape %0 [[0], [1, 2]] output_shape [%dim, 4, 16] : tensor<?x64xf32> into tensor<?x4x16xf32>
    %1 = attn.rope half_split %expanded, %arg1 rotary_dim(16) theta(1.000000e+06) precision <compute = f32, accumulate = f32> : tensor<?x4x16xf32>, tensor<?xi32>
    %2 = attn.linear %arg0, %k_proj_weight, %k_proj_bias precision <compute = f32, accumulate = f32> : tensor<?x64xf32>, tensor<32x64xf32>, tensor<32xf32> -> tensor<?x32xf32>
    %expanded_0 = tensor.expand_shape %2 [[0], [1, 2]] output_shape [%dim, 2, 16] : tensor<?x32xf32> into tensor<?x2x16xf32>
    %3 = attn.rope half_split %expanded_0, %arg1 rotary_dim(16) theta(1.000000e+06) precision <compute = f32, accumulate = f32> : tensor<?x2x16xf32>, tensor<?xi32>
    %4 = attn.linear %arg0, %v_proj_weight, %v_proj_bias precision <compute = f32, accumulate = f32> : tensor<?x64xf32>, tensor<32x64xf32>, tensor<32xf32> -> tensor<?x32xf32>
    %expanded_1 = tensor.expand_shape %4 [[0], [1, 2]] output_shape [%dim, 2, 16] : tensor<?x32xf32> into tensor<?x2x16xf32>
    %5 = attn.kv_cache_append %3 into %arg2 at %c0 : tensor<?x2x16xf32> into tensor<32x2x16xf32>
    %6 = attn.kv_cache_append %expanded_1 into %arg3 at %c0 : tensor<?x2x16xf32> into tensor<32x2x16xf32>
    %7 = attn.sdpa %1, %3, %expanded_1 causal precision <compute = f32, accumulate = f32> : tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32> -> tensor<?x4x16xf32>
    %collapsed = tensor.collapse_shape %7 [[0], [1, 2]] : tensor<?x4x16xf32> into tensor<?x64xf32>
    %8 = attn.linear %collapsed, %o_proj_weight precision <compute = f32, accumulate = f32> : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
    return %8, %5, %6 : tensor<?x64xf32>, tensor<32x2x16xf32>, tensor<32x2x16xf32>
  }
  func.func @layer0_decode(%arg0: tensor<1x64xf32>, %arg1: tensor<1xi32>, %arg2: tensor<32x2x16xf32> {attn.kv_format = "f32"}, %arg3: tensor<32x2x16xf32> {attn.kv_format = "f32"}, %arg4: index) -> (tensor<1x64xf32>, tensor<32x2x16xf32>, tensor<32x2x16xf32>) attributes {attn.layer = 0 : i64} {
    %q_proj_weight = attn.param "model.layers.0.self_attn.q_proj.weight" rows(<half_split>) : tensor<64x64xf32>
    %q_proj_bias = attn.param "model.layers.0.self_attn.q_proj.bias" rows(<half_split>) : tensor<64xf32>
    %k_proj_weight = attn.param "model.layers.0.self_attn.k_proj.weight" rows(<half_split>) : tensor<32x64xf32>
    %k_proj_bias = attn.param "model.layers.0.self_attn.k_proj.bias" rows(<half_split>) : tensor<32xf32>
    %v_proj_weight = attn.param "model.layers.0.self_attn.v_proj.weight" : tensor<32x64xf32>
    %v_proj_bias = attn.param "model.layers.0.self_attn.v_proj.bias" : tensor<32xf32>
    %o_proj_weight = attn.param "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xf32>
    %0 = attn.linear %arg0, %q_proj_weight, %q_proj_bias precision <compute = f32, accumulate = f32> : tensor<1x64xf32>, tensor<64x64xf32>, tensor<64xf32> -> tensor<1x64xf32>
    %expanded = tensor.expand_shape %0 [[0], [1, 2]] output_shape [1, 4, 16] : tensor<1x64xf32> into tensor<1x4x16xf32>
    %1 = attn.rope half_split %expanded, %arg1 rotary_dim(16) theta(1.000000e+06) precision <compute = f32, accumulate = f32> : tensor<1x4x16xf32>, tensor<1xi32>
    %2 = attn.linear %arg0, %k_proj_weight, %k_proj_bias precision <compute = f32, accumulate = f32> : tensor<1x64xf32>, tensor<32x64xf32>, tensor<32xf32> -> tensor<1x32xf32>
    %expanded_0 = tensor.expand_shape %2 [[0], [1, 2]] output_shape [1, 2, 16] : tensor<1x32xf32> into tensor<1x2x16xf32>
    %3 = attn.rope half_split %expanded_0, %arg1 rotary_dim(16) theta(1.000000e+06) precision <compute = f32, accumulate = f32> : tensor<1x2x16xf32>, tensor<1xi32>
    %4 = attn.linear %arg0, %v_proj_weight, %v_proj_bias precision <compute = f32, accumulate = f32> : tensor<1x64xf32>, tensor<32x64xf32>, tensor<32xf32> -> tensor<1x32xf32>
    %expanded_1 = tensor.expand_shape %4 [[0], [1, 2]] output_shape [1, 2, 16] : tensor<1x32xf32> into tensor<1x2x16xf32>
    %c1 = arith.constant 1 : index
    %5 = arith.addi %arg4, %c1 : index
    %6 = attn.kv_cache_append %3 into %arg2 at %arg4 : tensor<1x2x16xf32> into tensor<32x2x16xf32>
    %7 = attn.kv_cache_read %6 length %5 : tensor<32x2x16xf32>
    %8 = attn.kv_cache_append %expanded_1 into %arg3 at %arg4 : tensor<1x2x16xf32> into tensor<32x2x16xf32>
    %9 = attn.kv_cache_read %8 length %5 : tensor<32x2x16xf32>
    %10 = attn.sdpa %1, %7, %9 causal precision <compute = f32, accumulate = f32> : tensor<1x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32> -> tensor<1x4x16xf32>
    %collapsed = tensor.collapse_shape %10 [[0], [1, 2]] : tensor<1x4x16xf32> into tensor<1x64xf32>
    %11 = attn.linear %collapsed, %o_proj_weight precision <compute = f32, accumulate = f32> : tensor<1x64xf32>, tensor<64x64xf32> -> tensor<1x64xf32>
    return %11, %6, %8 : tensor<1x64xf32>, tensor<32x2x16xf32>, tensor<32x2x16xf32>
  }
}

