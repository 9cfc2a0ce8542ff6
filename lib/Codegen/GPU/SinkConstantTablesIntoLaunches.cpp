//===- SinkConstantTablesIntoLaunches.cpp - Tables as kernel globals ------===//
//
// A constant table that a kernel reads (RoPE inverse frequencies, codebook
// centroids) is a host `memref.global`. Passed to the kernel as an operand,
// it would have to be copied into device-visible memory on every call, and
// that copy is a synchronous driver call. Referenced from inside the launch
// instead, it is cloned into the kernel's module by gpu-kernel-outlining and
// becomes a global of the module image, uploaded once when the module loads.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Utils/GPUUtils.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include <functional>

namespace rotor {
#define GEN_PASS_DEF_SINKCONSTANTTABLESINTOLAUNCHES
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

struct SinkConstantTablesIntoLaunchesPass
    : rotor::impl::SinkConstantTablesIntoLaunchesBase<
          SinkConstantTablesIntoLaunchesPass> {
  void runOnOperation() override {
    SymbolTableCollection symbols;
    // A constant table, or a view of one (with constant offsets and sizes).
    std::function<bool(Operation *)> isTable = [&](Operation *op) {
      if (auto get = dyn_cast<memref::GetGlobalOp>(op)) {
        auto global = symbols.lookupNearestSymbolFrom<memref::GlobalOp>(
            get, get.getNameAttr());
        return global && global.getConstant() && global.getInitialValue();
      }
      if (auto view = dyn_cast<ViewLikeOpInterface>(op))
        if (Operation *source = view.getViewSource().getDefiningOp())
          return isTable(source);
      return false;
    };
    // The sinking also takes the constants a view's operands need.
    auto beneficial = [&](Operation *op) {
      return isTable(op) || op->hasTrait<OpTrait::ConstantLike>();
    };
    getOperation()->walk([&](gpu::LaunchOp launch) {
      if (failed(sinkOperationsIntoLaunchOp(launch, beneficial)))
        return signalPassFailure();
    });
  }
};

} // namespace
