//===- Passes.td - Transforms of the attn dialect ----------*- tablegen -*-===//

#ifndef ROTOR_DIALECT_ATTN_TRANSFORMS_PASSES_TD
#define ROTOR_DIALECT_ATTN_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def AttnOutlineParams : Pass<"attn-outline-params", "mlir::ModuleOp"> {
  let summary = "Turn attn.param ops into trailing function arguments";
  let description = [{
    Each public function gets one extra argument per distinct parameter name
    it reads (in order of first use), carrying the argument attributes
    `attn.param = "<name>"` and `bufferization.writable = false` (the
    runtime passes the bundle's weight buffers, which every call reads
    again, so no code may write them), and every `attn.param` of that name
    is replaced by it. This is how compiled entry points receive their weights from the
    runtime. Private functions that read parameters are rejected: their
    callers would have to pass the weights on.
  }];
  let dependentDialects = ["mlir::bufferization::BufferizationDialect"];
}

def AttnConvertRopeLayout : Pass<"attn-convert-rope-layout", "mlir::ModuleOp"> {
  let summary = "Convert RoPE between half-split and interleaved pairs by permuting weight rows";
  let description = [{
    For every `attn.rope` whose layout is not `to`, the rows of the
    projection that feeds it (through the head split `tensor.expand_shape`,
    and an optional `attn.rms_norm`, whose weight is permuted too) are
    permuted per head, within the first R dims only, and the op's layout is
    rewritten. Half-split to interleaved takes row `i` to `2i` and row
    `i + R/2` to `2i + 1` (for `i < R/2`); interleaved to half-split is the
    inverse, which is the permutation transformers' Llama conversion script
    applies to Meta weights. The rotated Q and K come out permuted by the
    same permutation per head, so every attention score is unchanged.

    The permutations are `attn.permute` ops on the parameters; the archive
    is never modified. A function is converted only when every converted
    RoPE's result reaches nothing but SDPA queries and keys (directly, or
    through KV-cache append/read and captures) and both its query and key
    RoPEs are converted; otherwise the pass leaves it alone and says why in a
    remark.
  }];
  let options = [
    Option<"to", "to", "std::string", /*default=*/"\"interleaved\"",
           "Target layout: half_split or interleaved">,
  ];
}

def AttnCheckRopeLayout : Pass<"attn-check-rope-layout", "mlir::ModuleOp"> {
  let summary = "Reject RoPE whose layout disagrees with its weights' row order";
  let description = [{
    Follows each `attn.rope` back to the weight of the projection that feeds
    it (through the head split and an optional `attn.rms_norm`). When that
    weight is an `attn.param` with a `rows` order, possibly permuted by
    `attn-convert-rope-layout` (whose permutation turns one order into the
    other), the order must equal the RoPE's layout; otherwise the RoPE would
    pair the wrong dims and compute garbage, and the pass fails with an
    error naming the op's layout and the weight's order. With
    `allow-mismatch` the error becomes a warning.
  }];
  let options = [
    Option<"allowMismatch", "allow-mismatch", "bool", /*default=*/"false",
           "Warn instead of failing on a mismatch">,
  ];
}

def AttnFoldKVRotation : Pass<"attn-fold-kv-rotation", "mlir::ModuleOp"> {
  let summary = "Rotate Q once instead of inverse-rotating every K/V block read from a rotated cache";
  let description = [{
    A KV cache quantized after a Walsh-Hadamard rotation `R` is read as
    `Rᵀ·dequantize(...)`. Since `q·(Rᵀk̂) = (Rq)·k̂` and
    `Σ_j p_j Rᵀv̂_j = Rᵀ Σ_j p_j v̂_j`, this pass rewrites, per `attn.sdpa`:

    * key read through `attn.hadamard inverse` (R): Q is rotated by `R`
      right before SDPA (after RoPE and q_norm), and SDPA reads the
      dequantized, still-rotated keys;
    * value read through `attn.hadamard inverse` (R): SDPA reads the
      rotated values and its output is inverse-rotated once per head. When
      nothing but the head merge lies between SDPA and the output
      projection, that inverse is folded into `W_o`'s columns
      (`W_o' = W_o·blockdiag(Rᵀ)`, an `attn.hadamard` of `W_o`'s last dim,
      folded into the weight by rotor-aot); before an `attn.output_gate`
      (non-linear) it stays an online rotation;
    * value rotated after `v_proj` with nothing in between: the rotation is
      folded into `W_v`'s rows and `b_v` (`attn.hadamard ... dim(0)`).

    Each fold happens only when it is exact. Otherwise the IR is left
    unchanged and a remark names what stopped it:
    `[different-rotations]` (the cache is written with one rotation and read
    with another), `[rotation-before-rope]`, `[rotation-before-norm]` (the
    cache's rotation is applied before RoPE or the q/k norm, which do not
    commute with it), `[group-spans-heads]` (a group larger than a head),
    `[non-linear-between]` (an op between the rotation and SDPA),
    `[sequence-in-group]` (the rotation runs along the token dim),
    `[low-precision-rotation]` (a rotation computed below f32),
    `[not-rotated-on-write]` (the cache is read through a rotation it was
    never written with), `[output-gate]` (the output's inverse stays before
    the gate).

    `report=FILE` (`-` for stderr) writes what was and was not done, per
    layer and function.

    `test-apply-mistake` exists only for tests: it applies one of the known
    wrong rewrites (`q-transposed`, `output-transposed`, `never-unrotated`,
    `group-spanning-heads`, `rotation-before-rope`, `inverse-across-gate`),
    skipping the legality checks, so that tests can show each one changes
    the output far beyond the tolerance.
  }];
  let options = [
    Option<"report", "report", "std::string", /*default=*/"\"\"",
           "Write a per-layer report of the folds to this file ('-': stderr)">,
    Option<"foldOutputProjection", "fold-output-projection", "bool",
           /*default=*/"true",
           "Fold the output's inverse rotation into W_o where legal">,
    Option<"foldValueProjection", "fold-value-projection", "bool",
           /*default=*/"true",
           "Fold V's forward rotation into W_v and b_v where legal">,
    Option<"testApplyMistake", "test-apply-mistake", "std::string",
           /*default=*/"\"\"",
           "Tests only: apply a known wrong rewrite, skipping legality">,
  ];
  let dependentDialects = ["mlir::tensor::TensorDialect"];
}

def AttnSplitRopeBias : Pass<"attn-split-rope-bias", "mlir::ModuleOp"> {
  let summary = "Keep K's bias out of the KV cache: SDPA adds q·RoPE(b_k, p) to each score";
  let description = [{
    RoPE is linear, so `RoPE(W_k x + b_k, p) = RoPE(W_k x, p) + RoPE(b_k, p)`.
    For every `attn.sdpa` whose keys are the RoPE of a biased K projection
    (directly, or written to and read from a KV cache in any format), the
    pass drops `b_k` from the projection, so that the cache stores only
    `RoPE(W_k x, p)` (small, and so cheap to store in bf16 or a quantized
    format), and gives SDPA `b_k` as its `key_bias` with the RoPE's
    parameters: SDPA adds `q · RoPE(b_k, p_j)` to each score, in f32, from
    the key's position. Exact in exact arithmetic.

    The rewrite is all or nothing per module, since prefill and decode
    share the caches: if any SDPA with a biased K cannot be split, none is,
    and a remark on each names what stopped it: `[norm-between]` (a k_norm
    between the bias and RoPE is not linear), `[dynamic-scaling]` (dynamic
    NTK's frequencies depend on the call), `[positions]` (the K RoPE's
    positions are not the query's, so a key's row is not its position),
    `[rotated-cache]` (a rotation between RoPE and SDPA that SDPA does not
    undo: a rotated cache read back through the inverse of its rotation,
    rotor-import's form, splits like a float one, and
    `attn-fold-kv-rotation` then leaves the K rotation on the read side),
    `[capture]` (a
    capture of K would lose the bias), `[shared-projection]` (the
    projection or its RoPE has other users).

    With `suggest-only` nothing is rewritten: each SDPA whose K bias could
    split and whose keys are stored narrower than f32 (a 16-bit or
    quantized cache) gets a warning naming the cache's format and
    `rotor-aot --split-rope-bias`. rotor-aot runs it so when neither
    `--split-rope-bias` nor `--precision` is given: a Qwen2.5-like K bias
    in a turbo3 cache otherwise gives PCC 0.53 without a word.
  }];
  let options = [
    Option<"suggestOnly", "suggest-only", "bool", /*default=*/"false",
           "Rewrite nothing; warn where a split would keep K's bias out of "
           "a cache stored narrower than f32">
  ];
  let dependentDialects = ["mlir::tensor::TensorDialect"];
}

#endif // ROTOR_DIALECT_ATTN_TRANSFORMS_PASSES_TD

def AttnSelectPrecision : Pass<"attn-select-precision", "mlir::ModuleOp"> {
  let summary = "Choose every stored tensor's type and every op's compute type from a rounding-error bound";
  let description = [{
    Starting from an f32 layer (`rotor-import --dtype f32 --kv-cache f32`),
    chooses per layer the storage type of the Q/K/V/O weights, of Q as SDPA
    reads it and of the K and V caches, SDPA's compute type, and whether K's
    bias moves out of the cache into SDPA's score term
    (`attn-split-rope-bias`), so that the predicted error of the layer's
    output, `max |out - exact| / max |exact|`, is at most `target`, at the
    least cost: KV-cache bytes per token first, then weight bytes, then
    compute. Biases, RoPE and the layer's output stay f32 (their bytes and
    arithmetic are negligible).

    The prediction comes from value ranges and a first-order rounding
    model (`PrecisionModel.h`): the layer is evaluated in f64 on sampled
    tokens over the cache's context (rows of the input's declared RMS
    times the input norm's gain, which the importer records as the
    argument's `attn.input_norm_gain`, or calibration rows), and each
    rounding site (a weight, an activation, a cache element, SDPA's
    probabilities, f32 accumulation) contributes `u²/3` times its
    variance response at the output, carried through projections, norms,
    RoPE and SDPA's softmax. The bound is `lambda` standard deviations,
    `lambda = sqrt(2 ln(context · hidden))`, over the largest output.
    Worst-case ranges (Cauchy-Schwarz from the weights and the input's
    norm) decide where f16 could overflow.

    `plan` other than `auto` applies a named plan (`f32`, `bf16`: every
    tensor and op in bf16, `rope-f32`: the same with RoPE computed in f32,
    `q-f32`: f32 with bf16 caches), with comma-separated overrides
    (`weights=`, `q=`, `kv=`, `sdpa=` a type, `split`: e.g.
    `rope-f32,kv=f32` or `q-f32,split`), and reports its predicted error.
    `report=FILE` (`-`: stderr) writes the decisions and the numbers behind
    them as JSON; the readable summary is a remark on each layer's SDPA.

    Errors: a target no plan meets (names the op whose rounding dominates
    the most accurate plan's error), an input without a known range, a
    layer the model does not cover (names the op), a graph that is not
    f32, a missing calibration file.
  }];
  let options = [
    Option<"plan", "plan", "std::string", /*default=*/"\"auto\"",
           "auto, or a named plan (f32, bf16, rope-f32, q-f32) with overrides: rope-f32,kv=f32,split">,
    Option<"target", "target", "double", /*default=*/"1e-2",
           "The largest predicted max relative error of a layer's output">,
    Option<"weights", "weights", "std::string", /*default=*/"\"\"",
           "The checkpoint to read weights from (default: the module's "
           "attn.checkpoint)">,
    Option<"inputRms", "input-rms", "double", /*default=*/"0",
           "Declared RMS of each input row (0: from the input norm the "
           "importer recorded, else an error)">,
    Option<"calibration", "calibration", "std::string", /*default=*/"\"\"",
           "Calibration inputs (safetensors with hidden_states [T, hidden] "
           "and positions [T]) to evaluate the layer on instead of "
           "synthetic rows">,
    Option<"samples", "samples", "int64_t", /*default=*/"64",
           "Tokens the model evaluates the layer on">,
    Option<"contextLength", "context-length", "int64_t", /*default=*/"0",
           "Context the error is predicted for (0: the KV cache's capacity)">,
    Option<"report", "report", "std::string", /*default=*/"\"\"",
           "Write the decisions as JSON to this file ('-': stderr)">,
  ];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::tensor::TensorDialect"];
}

def AttnNarrowRoundedWeights
    : Pass<"attn-narrow-rounded-weights", "mlir::ModuleOp"> {
  let summary = "Store each weight that every use rounds to one narrower type in that type";
  let description = [{
    An `attn.linear` whose precision's `compute` type is narrower than its
    weight's element type rounds the weight to it at every step. A
    parameter (every `attn.param` of its name, in every function) that only
    such linears read, as their weight and all with the same compute type,
    directly or through `attn.permute`, is retyped to that type: the bundle
    then holds it rounded once, to nearest even as the ops round, and no
    kernel rounds a weight. Every op reads the same values, so the results
    are the same bits; the bundle holds half the bytes of an f32 weight, and
    a decode step reads half of them.

    `attn-select-precision`'s plans store their weights narrow already;
    this is for precisions written by hand or by another tool. A parameter
    read by anything else (a bias, a norm's gain, a linear of another
    compute type) is left as it is.

    `rotor-run --reference` computes its fp64 reference from the weights
    the bundle stores: after this pass it measures the kernels against the
    rounded weights, and the weights' own rounding error is not in the
    figure (rotor-aot --narrow-rounded-weights=false keeps the weights as
    written, and the reference then counts it).

    ```mlir
    // Before: W is stored f32 and rounded to bf16 by the projection.
    %w = attn.param "q_proj.weight" : tensor<896x896xf32>
    %q = attn.linear %x, %w precision <compute = bf16, accumulate = f32>
        : tensor<?x896xf32>, tensor<896x896xf32> -> tensor<?x896xf32>
    // After:
    %w = attn.param "q_proj.weight" : tensor<896x896xbf16>
    %q = attn.linear %x, %w precision <compute = bf16, accumulate = f32>
        : tensor<?x896xf32>, tensor<896x896xbf16> -> tensor<?x896xf32>
    ```
  }];
}
