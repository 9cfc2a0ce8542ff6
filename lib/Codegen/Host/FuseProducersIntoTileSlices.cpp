//===- FuseProducersIntoTileSlices.cpp - Compute producers per tile -------===//
//
// SDPA's loop form slices K and V per KV head and per tile of keys. When K
// or V is computed elementwise from what the cache stores (a quantized
// cache's bit-unpacking and dequantization), the producer would otherwise
// run over the whole cache before SDPA, a full pass over memory per decode
// step; fused into the slices, it runs on each tile while the tile is in
// cache. A producer is fused only where every loop around the slice (and
// not around the producer) takes a different slice in each iteration, so
// nothing is computed twice: decode's single block of queries qualifies,
// prefill's query blocks (which all read every key tile) do not.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/Transforms.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/TilingInterface.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace rotor {
#define GEN_PASS_DEF_FUSEPRODUCERSINTOTILESLICES
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

/// Whether `target` is among the values `roots` are computed from.
bool dependsOn(ValueRange roots, Value target) {
  SmallVector<Value> worklist(roots.begin(), roots.end());
  llvm::SmallPtrSet<Value, 16> seen;
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    if (v == target)
      return true;
    if (!seen.insert(v).second)
      continue;
    if (Operation *def = v.getDefiningOp())
      llvm::append_range(worklist, def->getOperands());
  }
  return false;
}

/// Whether every loop around `slice` that does not also hold `producer`
/// takes a different slice in each of its iterations: each induction
/// variable of a loop with more than one iteration feeds the offsets.
bool takesDistinctSlices(tensor::ExtractSliceOp slice, Operation *producer) {
  ValueRange offsets = slice.getOffsets();
  auto repeats = [&](Value iv, OpFoldResult lb, OpFoldResult ub) {
    std::optional<int64_t> l = getConstantIntValue(lb),
                           u = getConstantIntValue(ub);
    bool single = l && u && *u - *l <= 1;
    return !single && !dependsOn(offsets, iv);
  };
  for (Operation *op = slice->getParentOp(); op && !op->isAncestor(producer);
       op = op->getParentOp()) {
    if (auto loop = dyn_cast<scf::ForOp>(op)) {
      if (repeats(loop.getInductionVar(), loop.getLowerBound(),
                  loop.getUpperBound()))
        return false;
    } else if (auto loop = dyn_cast<scf::ForallOp>(op)) {
      for (auto [iv, lb, ub] :
           llvm::zip(loop.getInductionVars(), loop.getMixedLowerBound(),
                     loop.getMixedUpperBound()))
        if (repeats(iv, lb, ub))
          return false;
    } else if (isa<LoopLikeOpInterface>(op)) {
      return false;
    }
  }
  return true;
}

/// extract_slice(generic) -> the generic on that slice, for an elementwise
/// generic whose only use is the slice, inside loops that take distinct
/// slices. The TilingInterface offsets the producer's linalg.index ops, so
/// payloads that index captured tensors (bit-unpacking) stay correct.
struct FuseElementwiseProducerIntoSlice
    : OpRewritePattern<tensor::ExtractSliceOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::ExtractSliceOp slice,
                                PatternRewriter &rewriter) const override {
    auto producer = slice.getSource().getDefiningOp<linalg::GenericOp>();
    if (!producer || producer->getNumResults() != 1 ||
        !slice.getSource().hasOneUse() ||
        producer.getNumLoops() != producer.getNumParallelLoops())
      return rewriter.notifyMatchFailure(slice, "no elementwise producer");
    if (!slice.hasUnitStride() ||
        slice.getType().getRank() != slice.getSourceType().getRank())
      return rewriter.notifyMatchFailure(slice, "strided or rank-reducing");
    if (producer->getBlock() == slice->getBlock() ||
        !takesDistinctSlices(slice, producer))
      return rewriter.notifyMatchFailure(slice, "would recompute");
    FailureOr<TilingResult> tiled = tensor::replaceExtractSliceWithTiledProducer(
        rewriter, slice, cast<OpResult>(slice.getSource()));
    if (failed(tiled) || tiled->tiledValues.size() != 1 ||
        tiled->tiledValues.front().getType() != slice.getType())
      return rewriter.notifyMatchFailure(slice, "not tileable");
    rewriter.replaceOp(slice, tiled->tiledValues.front());
    return success();
  }
};

/// dim(collapse_shape(x), i) -> dim(x, k) when result dim i collapses x's
/// dim k alone.
struct DimOfUnitCollapseGroup : OpRewritePattern<tensor::DimOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::DimOp dim,
                                PatternRewriter &rewriter) const override {
    auto collapse = dim.getSource().getDefiningOp<tensor::CollapseShapeOp>();
    std::optional<int64_t> index = dim.getConstantIndex();
    if (!collapse || !index)
      return failure();
    ReassociationIndices group = collapse.getReassociationIndices()[*index];
    if (group.size() != 1)
      return failure();
    rewriter.replaceOpWithNewOp<tensor::DimOp>(dim, collapse.getSrc(),
                                               group.front());
    return success();
  }
};

/// dim(expand_shape(x), i) -> the expand_shape's own output size i.
struct DimOfExpandShape : OpRewritePattern<tensor::DimOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::DimOp dim,
                                PatternRewriter &rewriter) const override {
    auto expand = dim.getSource().getDefiningOp<tensor::ExpandShapeOp>();
    std::optional<int64_t> index = dim.getConstantIndex();
    if (!expand || !index)
      return failure();
    OpFoldResult size = expand.getMixedOutputShape()[*index];
    rewriter.replaceOp(dim, getValueOrCreateConstantIndexOp(
                                rewriter, dim.getLoc(), size));
    return success();
  }
};

/// dim(r, i) -> dim(init, i) for a result r of a destination-style op
/// (its result has its init's shape).
struct DimOfDestinationResult : OpRewritePattern<tensor::DimOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::DimOp dim,
                                PatternRewriter &rewriter) const override {
    auto result = dyn_cast<OpResult>(dim.getSource());
    auto dps = result ? dyn_cast<DestinationStyleOpInterface>(
                            result.getOwner())
                      : DestinationStyleOpInterface();
    if (!dps || !dps.hasPureTensorSemantics())
      return failure();
    Value init = dps.getTiedOpOperand(result)->get();
    rewriter.modifyOpInPlace(dim,
                             [&] { dim.getSourceMutable().assign(init); });
    return success();
  }
};

struct FuseProducersIntoTileSlicesPass
    : rotor::impl::FuseProducersIntoTileSlicesBase<
          FuseProducersIntoTileSlicesPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseElementwiseProducerIntoSlice>(&getContext());
    // Slices of reshapes (a dequantization's [.., blocks, B] view) become
    // reshapes of slices, so that they reach the producer.
    tensor::populateBubbleUpExtractSliceOpPatterns(patterns);
    // A size read from the producer or its reshape (tensor.dim) would keep
    // the whole producer alive: sizes are read from its operands instead.
    patterns.add<DimOfUnitCollapseGroup, DimOfExpandShape, DimOfDestinationResult>(
        &getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
