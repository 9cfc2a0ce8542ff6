//===- ScopeParallelLoopAllocas.cpp - Per-iteration allocas on the host ---===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/PatternMatch.h"

namespace rotor {
#define GEN_PASS_DEF_SCOPEPARALLELLOOPALLOCAS
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

struct ScopeParallelLoopAllocasPass
    : rotor::impl::ScopeParallelLoopAllocasBase<ScopeParallelLoopAllocasPass> {
  void runOnOperation() override {
    SmallVector<scf::ParallelOp> loops;
    getOperation()->walk([&](scf::ParallelOp loop) {
      if (!loop.getBody()->getOps<memref::AllocaOp>().empty())
        loops.push_back(loop);
    });
    // memref.alloca_scope would do, but its region must stay one block,
    // which convert-scf-to-cf breaks; the LLVM intrinsics have no region.
    IRRewriter rewriter(&getContext());
    auto ptr = LLVM::LLVMPointerType::get(&getContext());
    for (scf::ParallelOp loop : loops) {
      Block *body = loop.getBody();
      rewriter.setInsertionPointToStart(body);
      Value saved = LLVM::StackSaveOp::create(rewriter, loop.getLoc(), ptr);
      rewriter.setInsertionPoint(body->getTerminator());
      LLVM::StackRestoreOp::create(rewriter, loop.getLoc(), saved);
    }
  }
};

} // namespace
