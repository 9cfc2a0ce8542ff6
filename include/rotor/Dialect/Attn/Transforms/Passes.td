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

#endif // ROTOR_DIALECT_ATTN_TRANSFORMS_PASSES_TD
