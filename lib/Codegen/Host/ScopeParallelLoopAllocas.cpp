//===- ScopeParallelLoopAllocas.cpp - Per-iteration allocas on the host ---===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/LoopLikeInterface.h"

namespace rotor {
#define GEN_PASS_DEF_SCOPEPARALLELLOOPALLOCAS
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

struct ScopeParallelLoopAllocasPass
    : rotor::impl::ScopeParallelLoopAllocasBase<ScopeParallelLoopAllocasPass> {
  void runOnOperation() override {
    // Every loop whose body is an automatic allocation scope: scf.parallel,
    // scf.forall and scf.for too. The canonicalizer relies on scf.for's
    // trait: it inlines a memref.alloca_scope that ends a loop body into
    // that body (the per-block scope of rotor-emulate-gpu-launches-on-host
    // ends up so), and convert-scf-to-cf then drops the scope.
    SmallVector<Operation *> loops;
    getOperation()->walk([&](LoopLikeOpInterface loop) {
      Operation *op = loop.getOperation();
      if (!op->hasTrait<OpTrait::AutomaticAllocationScope>() ||
          op->getNumRegions() != 1 || !op->getRegion(0).hasOneBlock())
        return;
      if (!op->getRegion(0).front().getOps<memref::AllocaOp>().empty())
        loops.push_back(op);
    });
    // memref.alloca_scope would do, but its region must stay one block,
    // which convert-scf-to-cf breaks; the LLVM intrinsics have no region.
    IRRewriter rewriter(&getContext());
    auto ptr = LLVM::LLVMPointerType::get(&getContext());
    for (Operation *loop : loops) {
      Block *body = &loop->getRegion(0).front();
      rewriter.setInsertionPointToStart(body);
      Value saved = LLVM::StackSaveOp::create(rewriter, loop->getLoc(), ptr);
      rewriter.setInsertionPoint(body->getTerminator());
      LLVM::StackRestoreOp::create(rewriter, loop->getLoc(), saved);
    }
  }
};

} // namespace
