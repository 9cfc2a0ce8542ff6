//===- CheckDimIndices.cpp - Constant dim indices within the rank ----------===//

#include "rotor/Conversion/Passes.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace rotor {
#define GEN_PASS_DEF_CHECKDIMINDICES
#include "rotor/Conversion/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

/// Fails on `op` when its constant index is outside [0, rank of `source`).
LogicalResult checkIndex(Operation *op, Value source, Value index) {
  auto shaped = dyn_cast<ShapedType>(source.getType());
  std::optional<int64_t> constant = getConstantIntValue(index);
  if (!shaped || !shaped.hasRank() || !constant)
    return success();
  if (*constant >= 0 && *constant < shaped.getRank())
    return success();
  return op->emitError() << "dim index " << *constant
                         << " is outside the rank " << shaped.getRank()
                         << " of " << shaped;
}

struct CheckDimIndicesPass
    : rotor::impl::CheckDimIndicesBase<CheckDimIndicesPass> {
  void runOnOperation() override {
    WalkResult result = getOperation()->walk([](Operation *op) {
      LogicalResult ok = success();
      if (auto dim = dyn_cast<tensor::DimOp>(op))
        ok = checkIndex(op, dim.getSource(), dim.getIndex());
      else if (auto dim = dyn_cast<memref::DimOp>(op))
        ok = checkIndex(op, dim.getSource(), dim.getIndex());
      return failed(ok) ? WalkResult::interrupt() : WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
