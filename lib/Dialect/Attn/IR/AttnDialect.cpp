//===- AttnDialect.cpp - The attn dialect ---------------------------------===//

#include "rotor/Dialect/Attn/IR/AttnDialect.h"
#include "rotor/Dialect/Attn/IR/AttnAttrs.h"
#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace rotor::attn;

#include "rotor/Dialect/Attn/IR/AttnDialect.cpp.inc"

namespace {
/// Prints each Hadamard rotation once, as `#rotation = #attn.hadamard<...>`
/// at the top of the module, and every use by that name: a layer's K and V
/// paths, its Q after folding and the weights folded with it visibly share
/// one orientation.
struct AttnOpAsmInterface : OpAsmDialectInterface {
  using OpAsmDialectInterface::OpAsmDialectInterface;

  AliasResult getAlias(Attribute attr, raw_ostream &os) const override {
    if (isa<HadamardAttr>(attr)) {
      os << "rotation";
      return AliasResult::FinalAlias;
    }
    return AliasResult::NoAlias;
  }
};
} // namespace

void AttnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "rotor/Dialect/Attn/IR/AttnOps.cpp.inc"
      >();
  registerAttributes();
  addInterfaces<AttnOpAsmInterface>();
}

LogicalResult AttnDialect::verifyOperationAttribute(Operation *op,
                                                    NamedAttribute attr) {
  if (attr.getName() != kKernelConfigAttrName)
    return success();
  auto config = dyn_cast<KernelConfigAttr>(attr.getValue());
  if (!config)
    return op->emitError() << "'" << kKernelConfigAttrName
                           << "' must be a #attn.kernel, got "
                           << attr.getValue();
  // Which strategies each op can take; a config no lowering reads would be
  // ignored silently.
  KernelStrategy s = config.getStrategy();
  bool fits =
      llvm::TypeSwitch<Operation *, bool>(op)
          .Case([&](SdpaOp) {
            return s == KernelStrategy::Loops || s == KernelStrategy::SplitKV ||
                   s == KernelStrategy::WorkgroupTiled;
          })
          .Case([&](LinearOp) {
            return s == KernelStrategy::Loops || s == KernelStrategy::Gemm ||
                   s == KernelStrategy::Gemv;
          })
          .Case<RopeOp, HadamardOp, QuantizeOp>(
              [&](Operation *) { return s == KernelStrategy::HeadChain; })
          .Default([](Operation *) { return false; });
  if (!fits)
    return op->emitError() << "'" << op->getName() << "' cannot take the kernel "
                           << config;
  return success();
}
