//===- Passes.h - Rotor's conversion passes ---------------------*- C++ -*-===//

#ifndef ROTOR_CONVERSION_PASSES_H
#define ROTOR_CONVERSION_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace rotor {

#define GEN_PASS_DECL
#include "rotor/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "rotor/Conversion/Passes.h.inc"

} // namespace rotor

#endif // ROTOR_CONVERSION_PASSES_H
