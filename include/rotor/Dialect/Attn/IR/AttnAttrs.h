//===- AttnAttrs.h - Attributes of the attn dialect -------------*- C++ -*-===//

#ifndef ROTOR_DIALECT_ATTN_IR_ATTNATTRS_H
#define ROTOR_DIALECT_ATTN_IR_ATTNATTRS_H

#include "mlir/IR/Attributes.h"
#include "llvm/ADT/APFloat.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/DialectImplementation.h"

#include "rotor/Dialect/Attn/IR/AttnEnums.h.inc"

namespace rotor::attn::detail {
/// Parsers for the scalar attribute parameters that MLIR has no FieldParser
/// for.
mlir::FailureOr<llvm::APFloat> parseF64(mlir::AsmParser &parser);
mlir::FailureOr<bool> parseBool(mlir::AsmParser &parser);
} // namespace rotor::attn::detail

#define GET_ATTRDEF_CLASSES
#include "rotor/Dialect/Attn/IR/AttnAttrs.h.inc"

#endif // ROTOR_DIALECT_ATTN_IR_ATTNATTRS_H
