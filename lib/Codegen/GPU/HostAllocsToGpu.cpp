//===- HostAllocsToGpu.cpp - Host buffers in GPU-visible memory -----------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace rotor {
#define GEN_PASS_DEF_HOSTALLOCSTOGPU
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

struct HostAllocsToGpuPass
    : rotor::impl::HostAllocsToGpuBase<HostAllocsToGpuPass> {
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      func.walk([&](memref::AllocOp alloc) {
        rewriter.setInsertionPoint(alloc);
        rewriter.replaceOpWithNewOp<gpu::AllocOp>(
            alloc, alloc.getType(), /*asyncToken=*/Type(), ValueRange{},
            alloc.getDynamicSizes(), alloc.getSymbolOperands(),
            /*hostShared=*/true);
      });
      // Constant tables are globals of the kernel modules
      // (rotor-sink-constant-tables-into-launches); a host global passed to
      // a kernel would be a host address there.
      WalkResult tables = func.walk([&](gpu::LaunchFuncOp launch) {
        for (Value operand : launch.getKernelOperands()) {
          // Through views to what they view.
          while (auto view = operand.getDefiningOp<ViewLikeOpInterface>())
            operand = view.getViewSource();
          if (auto global = operand.getDefiningOp<memref::GetGlobalOp>()) {
            launch.emitOpError("passes the host global @")
                << global.getName()
                << " to a kernel; tables must be read inside kernels "
                   "(rotor-sink-constant-tables-into-launches, before "
                   "outlining)";
            return WalkResult::interrupt();
          }
        }
        return WalkResult::advance();
      });
      if (tables.wasInterrupted())
        return signalPassFailure();
      Type token = gpu::AsyncTokenType::get(&getContext());
      // The GPU-to-LLVM lowering frees only asynchronously: wait for
      // everything before, free on a stream, wait for the free.
      func.walk([&](memref::DeallocOp dealloc) {
        rewriter.setInsertionPoint(dealloc);
        Location loc = dealloc.getLoc();
        Value ready = gpu::WaitOp::create(rewriter, loc, token, ValueRange{})
                          .getAsyncToken();
        Value freed =
            gpu::DeallocOp::create(rewriter, loc, token, ValueRange{ready},
                                   dealloc.getMemref())
                .getAsyncToken();
        gpu::WaitOp::create(rewriter, loc, Type(), ValueRange{freed});
        rewriter.eraseOp(dealloc);
      });
    }
  }
};

} // namespace
