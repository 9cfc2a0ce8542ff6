//===- TileParallelLoopsForGpu.cpp - Parallel loops as grids of blocks ----===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"

#include <numeric>

namespace rotor {
#define GEN_PASS_DEF_TILEPARALLELLOOPSFORGPU
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

struct TileParallelLoopsForGpuPass
    : rotor::impl::TileParallelLoopsForGpuBase<TileParallelLoopsForGpuPass> {
  using Base::Base;

  void runOnOperation() override {
    if (blockSize < 1) {
      getOperation().emitError()
          << "rotor-tile-parallel-loops-for-gpu: block-size must be >= 1";
      return signalPassFailure();
    }
    SmallVector<scf::ParallelOp> outermost;
    WalkResult reductions = getOperation().walk([&](scf::ParallelOp op) {
      // A grid has no cross-block sum: the loop's result would be lost.
      if (op.getNumResults() != 0) {
        op.emitOpError("reduces across its iterations, which a GPU grid of "
                       "independent blocks cannot; write the sum as a loop "
                       "inside one iteration");
        return WalkResult::interrupt();
      }
      if (!op->getParentOfType<scf::ParallelOp>())
        outermost.push_back(op);
      return WalkResult::advance();
    });
    if (reductions.wasInterrupted())
      return signalPassFailure();
    IRRewriter rewriter(&getContext());
    for (scf::ParallelOp op : outermost) {
      scf::ParallelOp flat = op;
      if (op.getNumLoops() > 1) {
        std::vector<unsigned> all(op.getNumLoops());
        std::iota(all.begin(), all.end(), 0);
        rewriter.setInsertionPoint(op);
        // collapseParallelLoops replaces `op`; find its replacement as the
        // parallel loop now at the same position.
        Operation *prev = op->getPrevNode();
        Block *block = op->getBlock();
        collapseParallelLoops(rewriter, op, {all});
        Operation *next = prev ? prev->getNextNode() : &block->front();
        while (next && !isa<scf::ParallelOp>(next))
          next = next->getNextNode();
        if (!next)
          continue;
        flat = cast<scf::ParallelOp>(next);
      }
      scf::tileParallelLoop(flat, {blockSize}, /*noMinMaxBounds=*/true);
    }
  }
};

} // namespace
