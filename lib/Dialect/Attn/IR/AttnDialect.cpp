//===- AttnDialect.cpp - The attn dialect ---------------------------------===//

#include "rotor/Dialect/Attn/IR/AttnDialect.h"
#include "rotor/Dialect/Attn/IR/AttnAttrs.h"
#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace rotor::attn;

#include "rotor/Dialect/Attn/IR/AttnDialect.cpp.inc"

void AttnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "rotor/Dialect/Attn/IR/AttnOps.cpp.inc"
      >();
  registerAttributes();
}
