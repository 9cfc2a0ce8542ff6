//===- Passes.td - Transforms of the attn dialect ----------*- tablegen -*-===//

#ifndef ROTOR_DIALECT_ATTN_TRANSFORMS_PASSES_TD
#define ROTOR_DIALECT_ATTN_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def AttnOutlineParams : Pass<"attn-outline-params", "mlir::ModuleOp"> {
  let summary = "Turn attn.param ops into trailing function arguments";
  let description = [{
    Each public function gets one extra argument per distinct parameter name
    it reads (in order of first use), carrying the argument attribute
    `attn.param = "<name>"`, and every `attn.param` of that name is replaced
    by it. This is how compiled entry points receive their weights from the
    runtime. Private functions that read parameters are rejected: their
    callers would have to pass the weights on.
  }];
}

#endif // ROTOR_DIALECT_ATTN_TRANSFORMS_PASSES_TD
