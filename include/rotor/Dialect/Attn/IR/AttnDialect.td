//===- AttnDialect.td - The attn dialect -------------------*- tablegen -*-===//

#ifndef ROTOR_DIALECT_ATTN_IR_ATTNDIALECT_TD
#define ROTOR_DIALECT_ATTN_IR_ATTNDIALECT_TD

include "mlir/IR/OpBase.td"

def Attn_Dialect : Dialect {
  let name = "attn";
  let cppNamespace = "::rotor::attn";
  let summary = "Transformer attention blocks: projections, RoPE, rotations, "
                "KV-cache quantization and GQA attention";
  let description = [{
    The `attn` dialect describes one attention sublayer of a decoder-only
    transformer at the level an inference engineer reasons about it: biased
    projections, rotary position embeddings with an explicit pair layout,
    Walsh-Hadamard rotations, KV-cache quantization and grouped-query
    attention.

    All tensors are value-semantic. Shapes use `T` for tokens, `Hq`/`Hkv` for
    query/KV heads, `D` for the head dim, `R` for the rotary dim and `E` for
    the hidden size.

    Every op that computes carries a `#attn.precision` attribute: operands
    are converted to its `compute` type, reductions accumulate in its
    `accumulate` type, and the result is rounded (round-to-nearest-even) to
    the result tensor's element type, which is the storage type.
  }];
  let useDefaultAttributePrinterParser = 1;
  // `attn.kernel` on an op must be a #attn.kernel its op can take.
  let hasOperationAttrVerify = 1;
  let extraClassDeclaration = [{
    /// Defined beside the attribute storage classes, in AttnAttrs.cpp.
    void registerAttributes();
  }];
}

class Attn_Op<string mnemonic, list<Trait> traits = []>
    : Op<Attn_Dialect, mnemonic, traits>;

#endif // ROTOR_DIALECT_ATTN_IR_ATTNDIALECT_TD
