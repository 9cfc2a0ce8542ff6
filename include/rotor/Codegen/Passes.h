//===- Passes.h - Rotor's codegen passes ------------------------*- C++ -*-===//

#ifndef ROTOR_CODEGEN_PASSES_H
#define ROTOR_CODEGEN_PASSES_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace rotor {

#define GEN_PASS_DECL
#include "rotor/Codegen/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "rotor/Codegen/Passes.h.inc"

} // namespace rotor

#endif // ROTOR_CODEGEN_PASSES_H
