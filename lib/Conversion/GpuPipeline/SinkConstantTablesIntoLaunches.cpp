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

#include "rotor/Conversion/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Utils/GPUUtils.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/SymbolTable.h"

namespace rotor {
#define GEN_PASS_DEF_SINKCONSTANTTABLESINTOLAUNCHES
#include "rotor/Conversion/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

struct SinkConstantTablesIntoLaunchesPass
    : rotor::impl::SinkConstantTablesIntoLaunchesBase<
          SinkConstantTablesIntoLaunchesPass> {
  void runOnOperation() override {
    SymbolTableCollection symbols;
    auto isConstantTable = [&](Operation *op) {
      auto get = dyn_cast<memref::GetGlobalOp>(op);
      if (!get)
        return false;
      auto global = symbols.lookupNearestSymbolFrom<memref::GlobalOp>(
          get, get.getNameAttr());
      return global && global.getConstant() && global.getInitialValue();
    };
    getOperation()->walk([&](gpu::LaunchOp launch) {
      if (failed(sinkOperationsIntoLaunchOp(launch, isConstantTable)))
        return signalPassFailure();
    });
  }
};

} // namespace
