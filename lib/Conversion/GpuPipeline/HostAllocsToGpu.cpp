//===- HostAllocsToGpu.cpp - Host buffers in GPU-visible memory -----------===//

#include "rotor/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"

namespace rotor {
#define GEN_PASS_DEF_HOSTALLOCSTOGPU
#include "rotor/Conversion/Passes.h.inc"
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
      Type token = gpu::AsyncTokenType::get(&getContext());
      // Constant tables (RoPE frequencies, Hadamard signs, codebooks) are
      // host globals; kernels read a managed copy, freed on return.
      SmallVector<Value> tables;
      func.walk([&](memref::GetGlobalOp global) {
        rewriter.setInsertionPointAfter(global);
        Location loc = global.getLoc();
        auto copy = gpu::AllocOp::create(rewriter, loc, global.getType(),
                                         Type(), ValueRange{}, ValueRange{},
                                         ValueRange{}, /*hostShared=*/true);
        Value ready = gpu::WaitOp::create(rewriter, loc, token, ValueRange{})
                          .getAsyncToken();
        Value copied =
            gpu::MemcpyOp::create(rewriter, loc, token, ValueRange{ready},
                                  copy.getMemref(), global.getResult())
                .getAsyncToken();
        gpu::WaitOp::create(rewriter, loc, Type(), ValueRange{copied});
        rewriter.replaceAllUsesExcept(global.getResult(), copy.getMemref(),
                                      copied.getDefiningOp());
        tables.push_back(copy.getMemref());
      });
      func.walk([&](func::ReturnOp ret) {
        rewriter.setInsertionPoint(ret);
        for (Value table : tables)
          memref::DeallocOp::create(rewriter, ret.getLoc(), table);
      });
      // The GPU-to-LLVM lowering frees only asynchronously: wait for
      // everything before, free on a stream, wait for the free.
      func.walk([&](memref::DeallocOp dealloc) {
        rewriter.setInsertionPoint(dealloc);
        Location loc = dealloc.getLoc();
        Value ready =
            gpu::WaitOp::create(rewriter, loc, token, ValueRange{}).getAsyncToken();
        Value freed = gpu::DeallocOp::create(rewriter, loc, token, ValueRange{ready},
                                             dealloc.getMemref())
                          .getAsyncToken();
        gpu::WaitOp::create(rewriter, loc, Type(), ValueRange{freed});
        rewriter.eraseOp(dealloc);
      });
    }
  }
};

} // namespace
