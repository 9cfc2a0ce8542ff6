//===- NarrowRoundedWeights.cpp - Store weights as their ops round them ---===//
//
// A weight that every use rounds to one narrower compute type is retyped to
// that type, so that it is rounded once, when the bundle is written, instead
// of at every step of every projection.
//
//===----------------------------------------------------------------------===//

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/MapVector.h"

namespace rotor::attn {
#define GEN_PASS_DEF_ATTNNARROWROUNDEDWEIGHTS
#include "rotor/Dialect/Attn/Transforms/Passes.h.inc"
} // namespace rotor::attn

using namespace mlir;
using namespace rotor::attn;

namespace {

/// The one float type narrower than `value`'s elements that every use of
/// `value` rounds it to (as an attn.linear's weight, directly or through
/// attn.permute), with the ops between `value` and those uses appended to
/// `chain`; null if some use reads it otherwise.
Type roundedByEveryUse(Value value, SmallVectorImpl<Operation *> &chain) {
  auto element = dyn_cast<FloatType>(getElementTypeOrSelf(value.getType()));
  if (!element || value.use_empty())
    return nullptr;
  Type rounded;
  for (OpOperand &use : value.getUses()) {
    Type to;
    if (auto permute = dyn_cast<PermuteOp>(use.getOwner())) {
      chain.push_back(permute);
      to = roundedByEveryUse(permute.getResult(), chain);
    } else if (auto linear = dyn_cast<LinearOp>(use.getOwner())) {
      auto compute = dyn_cast<FloatType>(linear.getPrecision().getCompute());
      if (use.get() == linear.getWeight() && use.get() != linear.getInput() &&
          compute && compute.getWidth() < element.getWidth())
        to = compute;
    }
    if (!to || (rounded && rounded != to))
      return nullptr;
    rounded = to;
  }
  return rounded;
}

struct AttnNarrowRoundedWeightsPass
    : rotor::attn::impl::AttnNarrowRoundedWeightsBase<
          AttnNarrowRoundedWeightsPass> {
  void runOnOperation() override {
    llvm::MapVector<StringRef, SmallVector<ParamOp>> byName;
    getOperation().walk(
        [&](ParamOp op) { byName[op.getName()].push_back(op); });
    for (auto &[name, params] : byName) {
      // All of a name's reads, since the bundle stores one tensor a name.
      Type narrow;
      SmallVector<Operation *> retyped;
      for (ParamOp param : params) {
        Type to = roundedByEveryUse(param.getResult(), retyped);
        if (!to || (narrow && narrow != to)) {
          narrow = nullptr;
          break;
        }
        narrow = to;
        retyped.push_back(param);
      }
      if (!narrow)
        continue;
      for (Operation *op : retyped) {
        Value result = op->getResult(0);
        result.setType(cast<RankedTensorType>(result.getType()).clone(narrow));
      }
    }
  }
};

} // namespace
