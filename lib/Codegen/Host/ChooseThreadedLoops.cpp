//===- ChooseThreadedLoops.cpp - Which parallel loops run on threads ------===//
//
// convert-scf-to-openmp turns every scf.parallel into an OpenMP region. A
// nested one would fork (or, serialized by the runtime, still pay a call)
// on every iteration of its parent, and a short elementwise loop costs more
// to fork than to run. So only outermost loops with enough work keep
// scf.parallel; every other becomes scf.for nests here, before that pass.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/LoopLikeInterface.h"

namespace rotor {
#define GEN_PASS_DEF_CHOOSETHREADEDLOOPS
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

/// Whether `loop`'s body has no loop of its own.
bool innermost(scf::ParallelOp loop) {
  bool inner = false;
  loop.getBody()->walk([&](LoopLikeOpInterface) {
    inner = true;
    return WalkResult::interrupt();
  });
  return !inner;
}

/// Whether `loop` is worth a fork: it has an inner loop (a reduction, a
/// row), or, unless it runs inside a sequential loop (which would fork it
/// on every iteration: the elementwise steps of an SDPA's loop over key
/// tiles), a size known only at run time or at least `minIterations`
/// iterations.
bool worthThreads(scf::ParallelOp loop, int64_t minIterations) {
  if (!innermost(loop))
    return true;
  if (loop->getParentOfType<LoopLikeOpInterface>())
    return false;
  int64_t total = 1;
  for (auto [lb, ub, step] : llvm::zip(loop.getLowerBound(),
                                       loop.getUpperBound(), loop.getStep())) {
    std::optional<int64_t> l = getConstantIntValue(lb),
                           u = getConstantIntValue(ub),
                           s = getConstantIntValue(step);
    if (!l || !u || !s || *s <= 0)
      return true;
    total *= llvm::divideCeil(std::max<int64_t>(*u - *l, 0), *s);
  }
  return total >= minIterations;
}

/// Replaces `loop` by a nest of scf.for, outermost dim first.
void serialize(IRRewriter &rewriter, scf::ParallelOp loop) {
  Location loc = loop.getLoc();
  rewriter.setInsertionPoint(loop);
  SmallVector<Value> ivs;
  for (auto [lb, ub, step] : llvm::zip(loop.getLowerBound(),
                                       loop.getUpperBound(), loop.getStep())) {
    auto inner = scf::ForOp::create(rewriter, loc, lb, ub, step);
    ivs.push_back(inner.getInductionVar());
    rewriter.setInsertionPoint(inner.getBody()->getTerminator());
  }
  Block *body = loop.getBody();
  rewriter.eraseOp(body->getTerminator());
  rewriter.inlineBlockBefore(body, rewriter.getInsertionBlock(),
                             rewriter.getInsertionPoint(), ivs);
  rewriter.eraseOp(loop);
}

/// Keeps all but `loop`'s last dim threaded and runs the last as an scf.for
/// inside. convert-scf-to-openmp collapses every dim of a threaded loop
/// into one index that each iteration divides back into its dims, which
/// LLVM cannot vectorize; an inner loop over the last (contiguous) dim it
/// can (the host's elementwise passes: RoPE, its cos/sin table, bias).
void keepLastDimSequential(IRRewriter &rewriter, scf::ParallelOp loop) {
  Location loc = loop.getLoc();
  rewriter.setInsertionPoint(loop);
  auto outer = scf::ParallelOp::create(
      rewriter, loc, loop.getLowerBound().drop_back(),
      loop.getUpperBound().drop_back(), loop.getStep().drop_back());
  rewriter.setInsertionPoint(outer.getBody()->getTerminator());
  auto inner = scf::ForOp::create(rewriter, loc, loop.getLowerBound().back(),
                                  loop.getUpperBound().back(),
                                  loop.getStep().back());
  SmallVector<Value> ivs(outer.getInductionVars());
  ivs.push_back(inner.getInductionVar());
  Block *body = loop.getBody();
  rewriter.eraseOp(body->getTerminator());
  rewriter.inlineBlockBefore(body, inner.getBody()->getTerminator(), ivs);
  rewriter.eraseOp(loop);
}

struct ChooseThreadedLoopsPass
    : rotor::impl::ChooseThreadedLoopsBase<ChooseThreadedLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<scf::ParallelOp> serial, split;
    WalkResult result = getOperation()->walk([&](scf::ParallelOp loop) {
      // A sum across threads would depend on how many there are.
      if (loop.getNumResults() != 0) {
        loop.emitOpError("reduces across its iterations; its result would "
                         "depend on the number of threads");
        return WalkResult::interrupt();
      }
      bool outermost = !loop->getParentOfType<scf::ParallelOp>();
      if (!outermost || !worthThreads(loop, minIterations))
        serial.push_back(loop);
      else if (loop.getNumLoops() > 1 && innermost(loop))
        split.push_back(loop);
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return signalPassFailure();
    IRRewriter rewriter(&getContext());
    // Post-order: inner loops first, so that each parent is still intact.
    for (scf::ParallelOp loop : serial)
      serialize(rewriter, loop);
    for (scf::ParallelOp loop : split)
      keepLastDimSequential(rewriter, loop);
  }
};

} // namespace
