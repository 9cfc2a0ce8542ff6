//===- Passes.h - Transforms of the attn dialect ----------------*- C++ -*-===//

#ifndef ROTOR_DIALECT_ATTN_TRANSFORMS_PASSES_H
#define ROTOR_DIALECT_ATTN_TRANSFORMS_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace rotor::attn {

#define GEN_PASS_DECL
#include "rotor/Dialect/Attn/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "rotor/Dialect/Attn/Transforms/Passes.h.inc"

} // namespace rotor::attn

#endif // ROTOR_DIALECT_ATTN_TRANSFORMS_PASSES_H
