//===- AttnDialect.h - The attn dialect -------------------------*- C++ -*-===//

#ifndef ROTOR_DIALECT_ATTN_IR_ATTNDIALECT_H
#define ROTOR_DIALECT_ATTN_IR_ATTNDIALECT_H

#include "mlir/IR/Dialect.h"

#include "rotor/Dialect/Attn/IR/AttnDialect.h.inc"

#endif // ROTOR_DIALECT_ATTN_IR_ATTNDIALECT_H
