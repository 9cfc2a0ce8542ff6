//===- AttnOps.td - Operations of the attn dialect ---------*- tablegen -*-===//

#ifndef ROTOR_DIALECT_ATTN_IR_ATTNOPS_TD
#define ROTOR_DIALECT_ATTN_IR_ATTNOPS_TD

include "rotor/Dialect/Attn/IR/AttnDialect.td"
include "rotor/Dialect/Attn/IR/AttnAttrs.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/OpAsmInterface.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Attn_FloatTensor : RankedTensorOf<[AnyFloat]>;
def Attn_PositionTensor : 1DTensorOf<[I32, I64]>;
def Attn_CacheTensor : RankedTensorOf<[AnyFloat, I8]>;

//===----------------------------------------------------------------------===//
// attn.param
//===----------------------------------------------------------------------===//

def Attn_ParamOp : Attn_Op<"param", [Pure,
    DeclareOpInterfaceMethods<OpAsmOpInterface, ["getAsmResultNames"]>]> {
  let summary = "a named weight";
  let description = [{
    The value of the weight tensor called `name` in the layer's parameter
    archive (a safetensors file given to `rotor-aot`, or the checkpoint an
    importer read). The result type is the tensor's shape and element type
    as the kernels read it; its shape is static. The printer names the
    result after the last two components of the name (`%q_proj_weight`).

    `rows`, on a Q or K projection's weight or bias, records the RoPE pair
    order its rows are stored in (Hugging Face checkpoints store
    `half_split`; Meta's original ones `interleaved`).
    `attn-check-rope-layout` rejects a RoPE whose declared layout disagrees
    with it.

    ```mlir
    %wq = attn.param "model.layers.0.self_attn.q_proj.weight" rows(<half_split>)
        : tensor<896x896xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<Attn_RopeLayoutAttr>:$rows);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$name (`rows` `(` $rows^ `)`)? attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// attn.linear
//===----------------------------------------------------------------------===//

def Attn_LinearOp : Attn_Op<"linear", [Pure]> {
  let summary = "a projection with optional bias";
  let description = [{
    `y[t, n] = sum_e x[t, e] · W[n, e] + b[n]`, with `x: [T, E]`,
    `W: [N, E]` (Hugging Face's row layout) and the optional `b: [N]`.
    Operands are rounded to the precision's `compute` type; the sum starts
    from the bias (widened to `accumulate`) and the products are formed and
    added in `accumulate`, with one rounding to the result's element type at
    the end. The result's shape is `[T, N]` exactly: each dim is static
    where the operand's is, dynamic where it is dynamic.

    ```mlir
    %q = attn.linear %x, %wq, %bq precision <compute = f32, accumulate = f32>
        : tensor<?x896xf32>, tensor<896x896xf32>, tensor<896xf32> -> tensor<?x896xf32>
    ```
  }];
  let arguments = (ins Attn_FloatTensor:$input, Attn_FloatTensor:$weight,
                       Optional<Attn_FloatTensor>:$bias,
                       Attn_PrecisionAttr:$precision);
  let results = (outs Attn_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? `precision` $precision attr-dict `:`
    type($input) `,` type($weight) (`,` type($bias)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// attn.rms_norm
//===----------------------------------------------------------------------===//

def Attn_RmsNormOp : Attn_Op<"rms_norm", [Pure,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "RMS normalization over the last dim";
  let description = [{
    Over the last dim of size `D`:
    `y[..., d] = w[d] · x[..., d] / sqrt(sum_j x[..., j]² / D + epsilon)`.
    This is the q_norm/k_norm of Qwen3-style models, applied per head. The
    sum of squares accumulates in the precision's `accumulate` type.

    ```mlir
    %qn = attn.rms_norm %q, %w epsilon(1.0e-06) precision <compute = f32, accumulate = f32>
        : tensor<?x16x128xf32>, tensor<128xf32>
    ```
  }];
  let arguments = (ins Attn_FloatTensor:$input, 1DTensorOf<[AnyFloat]>:$weight,
                       F64Attr:$epsilon, Attn_PrecisionAttr:$precision);
  let results = (outs Attn_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `epsilon` `(` $epsilon `)` `precision` $precision
    attr-dict `:` type($input) `,` type($weight)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// attn.rope
//===----------------------------------------------------------------------===//

def Attn_RopeOp : Attn_Op<"rope", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding with an explicit pair layout";
  let description = [{
    `x: [T, H, D]`, `positions: [T]`. For `i < R/2` (`R = rotary_dim`, even,
    `R <= D`), `inv_freq_i = theta^(-2i/R)`, then changed by the optional
    `scaling`, and `φ = positions[t] · inv_freq_i`. Each pair `(a, b)` of the
    layout (`(x[i], x[i + R/2])` for `half_split`, `(x[2i], x[2i+1])` for
    `interleaved`) becomes

    `(a·cos φ − b·sin φ, a·sin φ + b·cos φ)`

    (with `cos` and `sin` multiplied by YaRN's `attention_factor` when that
    scaling is given). Dims `>= R` pass through unchanged; `R = 0` is the
    identity. The rotation is computed in the precision's `compute` type.

    ```mlir
    %qr = attn.rope half_split %q, %pos rotary_dim(64) theta(1.0e+06)
        precision <compute = f32, accumulate = f32>
        : tensor<?x14x64xf32>, tensor<?xi32>
    ```
  }];
  let arguments = (ins Attn_FloatTensor:$input, Attn_PositionTensor:$positions,
                       Attn_RopeLayoutAttr:$layout, I64Attr:$rotary_dim,
                       F64Attr:$theta, OptionalAttr<Attn_RopeScalingAttr>:$scaling,
                       Attn_PrecisionAttr:$precision);
  let results = (outs Attn_FloatTensor:$result);
  let assemblyFormat = [{
    custom<RopeLayout>($layout) $input `,` $positions `rotary_dim` `(` $rotary_dim `)`
    `theta` `(` $theta `)` (`scaling` `(` $scaling^ `)`)? `precision` $precision
    attr-dict `:` type($input) `,` type($positions)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// attn.hadamard
//===----------------------------------------------------------------------===//

def Attn_HadamardOp : Attn_Op<"hadamard", [Pure,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "Walsh-Hadamard rotation of contiguous groups of one dim";
  let description = [{
    The rotated dim (`dim`, the last one when absent) is cut into contiguous
    groups of `G = rotation.group` elements (`G` divides it), and each group
    `x_g` becomes
    `R · x_g = diag(s2) · H_G / sqrt(G) · diag(s1) · x_g`, or
    `R^T · x_g = diag(s1) · H_G / sqrt(G) · diag(s2) · x_g` when `inverse` is
    set. The transform runs in the precision's `compute` type.

    Activations are rotated along their last dim (a head's dims). `dim`
    exists for weights: `attn-fold-kv-rotation` rotates the rows of `W_v`
    (dim 0 of `[N, E]`) so that the projection yields rotated values.

    Two consecutive rotations of the same dim and group size fold away
    exactly when their product is the identity: applied forwards as
    `R(a, b)` then `R(c, d)`, that is when `(c, d) = (b, a)` (a rotation and
    its inverse) or `(c, d) = (-b, -a)`. In particular `R` is an involution
    when `s1 = ±s2`, which is why the op does not carry the `Involution`
    trait.

    ```mlir
    %y = attn.hadamard %x rotation(#attn.hadamard<group = 2, s1 = [1, -1], s2 = [1, 1]>)
        precision <compute = f32, accumulate = f32> : tensor<?x2x64xf32>
    %w = attn.hadamard %wv rotation(#attn.hadamard<group = 2, s1 = [1, -1], s2 = [1, 1]>)
        dim(0) precision <compute = f32, accumulate = f32> : tensor<128x896xf32>
    ```
  }];
  let arguments = (ins Attn_FloatTensor:$input, Attn_HadamardAttr:$rotation,
                       UnitAttr:$inverse, Attn_PrecisionAttr:$precision,
                       OptionalAttr<I64Attr>:$dim);
  let results = (outs Attn_FloatTensor:$result);
  let assemblyFormat = [{
    $input `rotation` `(` $rotation `)` (`inverse` $inverse^)?
    (`dim` `(` $dim^ `)`)? `precision` $precision attr-dict `:` type($input)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
  let extraClassDeclaration = [{
    /// The dim whose groups are rotated: `dim`, or the last one.
    int64_t getRotatedDim();
    /// Whether the rotation acts on the last dim (a head's dims).
    bool rotatesLastDim() {
      return getRotatedDim() ==
             ::llvm::cast<::mlir::RankedTensorType>(getInput().getType())
                     .getRank() - 1;
    }
  }];
}

//===----------------------------------------------------------------------===//
// attn.quantize / attn.dequantize
//===----------------------------------------------------------------------===//

def Attn_QuantizeOp : Attn_Op<"quantize", [Pure,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "block-quantize along the last dim";
  let description = [{
    Cuts the last dim of `input` into blocks of `format.block_size` elements
    and quantizes each as `format` describes. `codes` has the input's shape
    and element type `i8`; `scales` has the input's shape with the last dim
    divided by the block size, and element type `format.scale_type`. The
    scale is computed in the precision's `accumulate` type and the codes
    from the rounded (stored) scale, so that dequantization reproduces them.

    ```mlir
    %codes, %scales = attn.quantize %k
        format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
        precision <compute = f32, accumulate = f32> : tensor<?x2x64xf32>
    ```
  }];
  let arguments = (ins Attn_FloatTensor:$input,
                       Attn_KVBlockFormatAttr:$format,
                       Attn_PrecisionAttr:$precision);
  let results = (outs RankedTensorOf<[I8]>:$codes, Attn_FloatTensor:$scales);
  let assemblyFormat = [{
    $input `format` `(` $format `)` `precision` $precision attr-dict
    `:` type($input)
  }];
}

def Attn_DequantizeOp : Attn_Op<"dequantize", [Pure]> {
  let summary = "reconstruct values from block codes and scales";
  let description = [{
    The inverse map of `attn.quantize` with the same `format`:
    `y[..., j] = scales[..., j / B] · c(codes[..., j])` with `c(q) = q` for
    `absmax` and `c(q)` the `q`-th Lloyd-Max centroid for `codebook`,
    computed in the precision's `compute` type. The result has exactly the
    shape of `codes`.

    ```mlir
    %k = attn.dequantize %codes, %scales
        format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
        precision <compute = f32, accumulate = f32>
        : tensor<?x2x64xi8>, tensor<?x2x2xf16> -> tensor<?x2x64xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I8]>:$codes, Attn_FloatTensor:$scales,
                       Attn_KVBlockFormatAttr:$format,
                       Attn_PrecisionAttr:$precision);
  let results = (outs Attn_FloatTensor:$result);
  let assemblyFormat = [{
    $codes `,` $scales `format` `(` $format `)` `precision` $precision attr-dict
    `:` type($codes) `,` type($scales) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Attn_PackBlocksOp : Attn_Op<"pack_blocks", [Pure]> {
  let summary = "store block codes and scales as the cache's bytes";
  let description = [{
    The bytes a quantized KV cache holds: the last dim of `codes` (`L`
    codes of `format.bits` bits) and of `scales` (`L / B` scales of
    `format.scale_type`) become `L / B` blocks of
    `sizeof(scale) + B · bits / 8` bytes each (`B · bits` must be a multiple
    of 8). A block is its scale's bytes (little-endian), then its codes
    bit-packed: code `i` of the block occupies bits `[i · bits, (i + 1) ·
    bits)` of the code bytes, least significant bit first (two per byte at
    4 bits, eight per three bytes at 3 bits). Absmax codes are stored in
    two's complement.

    ```mlir
    %bytes = attn.pack_blocks %codes, %scales
        format(<bits = 3, block_size = 128, scheme = codebook, scale_type = f16>)
        : tensor<?x2x128xi8>, tensor<?x2x1xf16> -> tensor<?x2x50xi8>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I8]>:$codes, Attn_FloatTensor:$scales,
                       Attn_KVBlockFormatAttr:$format);
  let results = (outs RankedTensorOf<[I8]>:$result);
  let assemblyFormat = [{
    $codes `,` $scales `format` `(` $format `)` attr-dict `:` type($codes) `,`
    type($scales) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Attn_UnpackBlocksOp : Attn_Op<"unpack_blocks", [Pure]> {
  let summary = "block codes and scales from the cache's bytes";
  let description = [{
    The inverse of `attn.pack_blocks` with the same `format`: the codes
    (sign-extended for absmax) and scales stored in `bytes`.

    ```mlir
    %codes, %scales = attn.unpack_blocks %bytes
        format(<bits = 3, block_size = 128, scheme = codebook, scale_type = f16>)
        : tensor<?x2x50xi8> -> tensor<?x2x128xi8>, tensor<?x2x1xf16>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I8]>:$bytes,
                       Attn_KVBlockFormatAttr:$format);
  let results = (outs RankedTensorOf<[I8]>:$codes, Attn_FloatTensor:$scales);
  let assemblyFormat = [{
    $bytes `format` `(` $format `)` attr-dict `:` type($bytes) `->`
    type($codes) `,` type($scales)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// KV cache
//===----------------------------------------------------------------------===//

def Attn_KVCacheAppendOp : Attn_Op<"kv_cache_append", [Pure,
    AllTypesMatch<["cache", "result"]>]> {
  let summary = "write new rows into a KV cache";
  let description = [{
    `cache: [M, ...]`, `update: [N, ...]` with the same trailing dims and
    element type. The result is `cache` with rows `[offset, offset + N)`
    replaced by `update`; the caller guarantees `offset + N <= M` (the
    runtime checks it before it runs a step; the verifier checks a constant
    `offset`). Rows are tokens: row `p` holds the token at absolute position
    `p`. The cache has at least one row, and no trailing dim of the cache or
    the update is 0; `N` may be 0 (the op then folds to `cache`).

    ```mlir
    %kc2 = attn.kv_cache_append %k into %kc at %len
        : tensor<1x2x64xf32> into tensor<4096x2x64xf32>
    ```
  }];
  let arguments = (ins Attn_CacheTensor:$update, Attn_CacheTensor:$cache,
                       Index:$offset);
  let results = (outs Attn_CacheTensor:$result);
  let assemblyFormat = [{
    $update `into` $cache `at` $offset attr-dict `:` type($update) `into`
    type($cache)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Attn_KVCacheReadOp : Attn_Op<"kv_cache_read", [Pure,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "the first rows of a KV cache";
  let description = [{
    The rows `[0, length)` of `cache: [M, ...]`, a tensor `[?, ...]`; the
    caller guarantees `0 <= length <= M` (the verifier checks a constant
    `length`). As for `kv_cache_append`, no dim of the cache is 0.

    ```mlir
    %k = attn.kv_cache_read %kc length %n : tensor<4096x2x64xf32>
    ```
  }];
  let arguments = (ins Attn_CacheTensor:$cache, Index:$length);
  let results = (outs Attn_CacheTensor:$result);
  let assemblyFormat = "$cache `length` $length attr-dict `:` type($cache)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// attn.sdpa
//===----------------------------------------------------------------------===//

def Attn_SdpaOp : Attn_Op<"sdpa", [Pure, AttrSizedOperandSegments]> {
  let summary = "scaled dot-product attention with grouped KV heads";
  let description = [{
    `q: [Tq, Hq, D]`, `k: [Tk, Hkv, D]`, `v: [Tk, Hkv, Dv]`, `Hq % Hkv == 0`;
    the result is `[Tq, Hq, Dv]`, with `Tq` exactly as in `q`. Query head
    `h` reads KV head `h' = h / (Hq / Hkv)` (Hugging Face's `repeat_kv`
    grouping). With `s = scale` (default `1 / sqrt(D)`):

    `o[t, h, :] = sum_j softmax_j(s · score(t, h, j)) · v[j, h', :]`,
    `score(t, h, j) = q[t, h, :] · k[j, h', :]`

    With `causal`, key `j` (which sits at absolute position `j`) is visible
    to query `t` only when `j <= pos(t)`, where `pos(t) = positions[t]` if
    `positions` is given and `Tk - Tq + t` otherwise. Scores are formed in
    the precision's `compute` type; the softmax and the weighted sum
    accumulate in its `accumulate` type, which is `f32` or `f64`.
    K and V are rounded to the `compute` type as they are read, so they
    may be stored narrower than it: canonicalization turns
    `sdpa(q, extf(k), extf(v))` into `sdpa(q, k, v)` when K and V are both
    widened from one element type (the workgroup kernel stages them alike;
    exact: widening a
    float loses nothing, and rounding it to `compute` gives what rounding
    the narrow value would), so a bf16 cache is read as bf16, not widened
    in full before every step.

    With `round_probabilities`, each probability is rounded to the compute
    type where it multiplies V (the weighted sum still accumulates in the
    accumulate type, and the row sum adds the unrounded values), as
    FlashAttention's P·V on bf16 tensor cores does; the compute type must
    then be narrower than the accumulate type. The probabilities rounded are
    the online softmax's, `exp(s - m)` against the running maximum `m` of
    the keys seen so far, so which values are rounded depends on the tiling
    (within a unit of the compute type's rounding per probability, as the
    order of the sums does within the accumulate type's).
    `attn-select-precision` sets it when it computes SDPA narrower than
    f32 (bf16), as its error model counts this rounding. On the host it lets P·V run as bf16 dot products
    (AVX512-BF16).

    With a `key_bias` `b: [Hkv, D]` (and its `key_bias_rope` ρ), each score
    gains the term that a bias added to K before the RoPE ρ would have
    given, computed in the `accumulate` type from the key's position:

    `score(t, h, j) = q[t, h, :] · (k[j, h', :] + RoPE_ρ(b[h', :], j))`

    This is how `attn-split-rope-bias` keeps a large K bias out of a
    low-precision cache. Per RoPE pair `(a, c)` of ρ's layout the term is
    `A·cos(φ_j) + B·sin(φ_j)` with `A = q_a b_a + q_c b_c`,
    `B = q_c b_a − q_a b_c`, `φ_j = j · inv_freq`; the dims past the rotary
    dim add `q · b`, the same for every key of a query and head, which the
    softmax cancels (lowerings may drop it). ρ must rotate some dims
    (`rotary_dim > 0`): with none the whole term is such a constant.

    ```mlir
    %o = attn.sdpa %q, %k, %v positions(%pos) causal
        precision <compute = f32, accumulate = f32>
        : tensor<?x14x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<?xi32>
        -> tensor<?x14x64xf32>
    %o2 = attn.sdpa %q, %k, %v
        key_bias(%bk : tensor<2x64xf32> rope(<layout = half_split, rotary_dim = 64, theta = 1.0e+06>))
        causal precision <compute = f32, accumulate = f32>
        : tensor<?x14x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16>
        -> tensor<?x14x64xf32>
    %o3 = attn.sdpa %q, %k, %v positions(%pos) causal
        precision <compute = bf16, accumulate = f32> round_probabilities
        : tensor<?x14x64xf32>, tensor<?x2x64xbf16>, tensor<?x2x64xbf16>, tensor<?xi32>
        -> tensor<?x14x64xf32>
    ```
  }];
  let arguments = (ins Attn_FloatTensor:$query, Attn_FloatTensor:$key,
                       Attn_FloatTensor:$value,
                       Optional<Attn_PositionTensor>:$positions,
                       Optional<Attn_FloatTensor>:$key_bias,
                       OptionalAttr<Attn_RopeParamsAttr>:$key_bias_rope,
                       UnitAttr:$causal, OptionalAttr<F64Attr>:$scale,
                       Attn_PrecisionAttr:$precision,
                       UnitAttr:$round_probabilities);
  let results = (outs Attn_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`positions` `(` $positions^ `)`)?
    (`key_bias` `(` $key_bias^ `:` type($key_bias) `rope` `(` $key_bias_rope
     `)` `)`)?
    (`causal` $causal^)? (`scale` `(` $scale^ `)`)? `precision` $precision
    (`round_probabilities` $round_probabilities^)? attr-dict `:` type($query) `,` type($key) `,` type($value)
    (`,` type($positions)^)? `->` type($result)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// The softmax scale: the `scale` attribute, or 1/sqrt(D).
    double getEffectiveScale();
  }];
}

//===----------------------------------------------------------------------===//
// attn.output_gate
//===----------------------------------------------------------------------===//

def Attn_OutputGateOp : Attn_Op<"output_gate", [Pure,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "sigmoid output gate of gated-attention models";
  let description = [{
    `y = x ⊙ sigmoid(g)` elementwise, `sigmoid(g) = 1 / (1 + exp(-g))`, with
    `x` the attention output and `g` the gate from the Q projection
    (Qwen3-Next style), both of the same shape. A gate is non-linear: no
    rotation may be moved across it.

    ```mlir
    %y = attn.output_gate %o, %g precision <compute = f32, accumulate = f32>
        : tensor<?x16x256xf32>, tensor<?x16x256xf32>
    ```
  }];
  let arguments = (ins Attn_FloatTensor:$input, Attn_FloatTensor:$gate,
                       Attn_PrecisionAttr:$precision);
  let results = (outs Attn_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $gate `precision` $precision attr-dict `:` type($input) `,`
    type($gate)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// attn.capture
//===----------------------------------------------------------------------===//

def Attn_CaptureOp : Attn_Op<"capture", [
    AllTypesMatch<["input", "result"]>,
    MemoryEffects<[MemWrite]>]> {
  let summary = "record a tensor and its token positions";
  let description = [{
    Returns `input` unchanged and, as a side effect, hands `input: [T, ...]`
    with its `positions: [T]` to the runtime under `tag`, which appends them
    to the capture stream of that tag. Used to record post-RoPE Q and K for
    geometry analysis. Because of the side effect it is never folded away.

    ```mlir
    %q2 = attn.capture %q, %pos tag("layer0.q") : tensor<?x14x64xf32>, tensor<?xi32>
    ```
  }];
  let arguments = (ins Attn_FloatTensor:$input, Attn_PositionTensor:$positions,
                       StrAttr:$tag);
  let results = (outs Attn_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $positions `tag` `(` $tag `)` attr-dict `:` type($input) `,`
    type($positions)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// attn.permute
//===----------------------------------------------------------------------===//

def Attn_PermuteOp : Attn_Op<"permute", [Pure,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "gather one dim by a static permutation";
  let description = [{
    `y[..., i, ...] = x[..., permutation[i], ...]` along dim `dim`, whose size
    is static and equal to the permutation's length. This is how passes
    reorder weight rows (e.g. RoPE layout conversion) without touching the
    archive. Two permutations of the same dim compose into one, and the
    identity folds away.

    ```mlir
    %w2 = attn.permute %w dim(0) permutation([0, 2, 1, 3]) : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$dim,
                       DenseI64ArrayAttr:$permutation);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `dim` `(` $dim `)` `permutation` `(` $permutation `)` attr-dict
    `:` type($input)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

#endif // ROTOR_DIALECT_ATTN_IR_ATTNOPS_TD
