//===- AttnOps.h - Operations of the attn dialect ---------------*- C++ -*-===//

#ifndef ROTOR_DIALECT_ATTN_IR_ATTNOPS_H
#define ROTOR_DIALECT_ATTN_IR_ATTNOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "rotor/Dialect/Attn/IR/AttnAttrs.h"
#include "rotor/Dialect/Attn/IR/AttnDialect.h"

#define GET_OP_CLASSES
#include "rotor/Dialect/Attn/IR/AttnOps.h.inc"

#endif // ROTOR_DIALECT_ATTN_IR_ATTNOPS_H
