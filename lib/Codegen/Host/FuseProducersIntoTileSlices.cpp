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
#include "mlir/Interfaces/TilingInterface.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace rotor {
#define GEN_PASS_DEF_FUSEPRODUCERSINTOTILESLICES
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

/// The distance between the offsets `offset` takes in consecutive
/// iterations of a loop whose induction variable `iv` steps by `step`, as
/// a constant or a value the loop does not change: step for iv, step * c
/// for iv * c (as SDPA's head offsets are formed), and s for iv * s with
/// step 1, s defined outside the loop (a decode step's range size, a
/// function of its key count).
std::optional<OpFoldResult> offsetDistance(Value offset, Value iv,
                                           int64_t step, Builder &b) {
  if (offset == iv)
    return OpFoldResult(b.getIndexAttr(step));
  auto apply = offset.getDefiningOp<affine::AffineApplyOp>();
  if (!apply || apply.getMapOperands().empty() ||
      apply.getMapOperands().front() != iv ||
      apply.getAffineMap().getNumDims() != 1)
    return std::nullopt;
  auto product =
      dyn_cast<AffineBinaryOpExpr>(apply.getAffineMap().getResult(0));
  if (!product || product.getKind() != AffineExprKind::Mul ||
      !isa<AffineDimExpr>(product.getLHS()))
    return std::nullopt;
  if (auto factor = dyn_cast<AffineConstantExpr>(product.getRHS()))
    return OpFoldResult(b.getIndexAttr(step * factor.getValue()));
  auto symbol = dyn_cast<AffineSymbolExpr>(product.getRHS());
  Operation *loop = iv.getParentBlock()->getParentOp();
  if (!symbol || step != 1)
    return std::nullopt;
  Value size = apply.getMapOperands()[1 + symbol.getPosition()];
  if (loop->isAncestor(size.getParentBlock()->getParentOp()))
    return std::nullopt;
  return OpFoldResult(size);
}

/// Whether iterations of a loop whose induction variable `iv` steps by
/// `step` take disjoint slices: some dim's offset moves by a distance
/// (offsetDistance) at least its size (that distance as a constant, or a
/// tile clamped by min(rest, distance)).
bool disjointAlong(tensor::ExtractSliceOp slice, Value iv, OpFoldResult step) {
  std::optional<int64_t> stride = getConstantIntValue(step);
  if (!stride)
    return false;
  for (auto [offset, size] :
       llvm::zip(slice.getMixedOffsets(), slice.getMixedSizes())) {
    auto value = dyn_cast<Value>(offset);
    if (!value)
      continue;
    Builder builder(slice.getContext());
    std::optional<OpFoldResult> distance =
        offsetDistance(value, iv, *stride, builder);
    if (!distance)
      continue;
    std::optional<int64_t> constant = getConstantIntValue(*distance);
    auto isDistance = [&](Value v) {
      return constant ? getConstantIntValue(v) == constant
                      : v == cast<Value>(*distance);
    };
    std::optional<int64_t> extent = getConstantIntValue(size);
    if (extent && constant && *extent <= *constant)
      return true;
    if (auto min = dyn_cast_if_present<Value>(size)
                       ? cast<Value>(size).getDefiningOp<arith::MinSIOp>()
                       : arith::MinSIOp())
      if (isDistance(min.getLhs()) || isDistance(min.getRhs()))
        return true;
  }
  return false;
}

/// Whether every loop around `slice` that does not also hold `producer`
/// takes disjoint slices in its iterations (or runs once), so that the
/// producer, computed per slice, computes no element twice.
bool takesDistinctSlices(tensor::ExtractSliceOp slice, Operation *producer) {
  auto distinct = [&](Value iv, OpFoldResult lb, OpFoldResult ub,
                      OpFoldResult step) {
    std::optional<int64_t> l = getConstantIntValue(lb),
                           u = getConstantIntValue(ub);
    if (l && u && *u - *l <= 1)
      return true;
    return disjointAlong(slice, iv, step);
  };
  for (Operation *op = slice->getParentOp(); op && !op->isAncestor(producer);
       op = op->getParentOp()) {
    if (auto loop = dyn_cast<scf::ForOp>(op)) {
      if (!distinct(loop.getInductionVar(), loop.getLowerBound(),
                    loop.getUpperBound(), loop.getStep()))
        return false;
    } else if (auto loop = dyn_cast<scf::ForallOp>(op)) {
      for (auto [iv, lb, ub, step] :
           llvm::zip(loop.getInductionVars(), loop.getMixedLowerBound(),
                     loop.getMixedUpperBound(), loop.getMixedStep()))
        if (!distinct(iv, lb, ub, step))
          return false;
    } else if (!isa<scf::IfOp>(op)) {
      // Other regions may run more than once (a payload, a while).
      return false;
    }
  }
  return true;
}

/// Whether at most one of `a` and `b` runs for each time `producer` does:
/// they are in different branches of the closest scf.if around both, and
/// nothing but scf.ifs lies between that if and the producer's block (in
/// a loop, the two branches could run in different iterations).
bool inExclusiveBranches(Operation *a, Operation *b, Operation *producer) {
  for (Operation *around = a->getParentOp(); around;
       around = around->getParentOp()) {
    if (!around->isProperAncestor(b))
      continue;
    if (!isa<scf::IfOp>(around))
      return false;
    for (Operation *up = around->getParentOp(); up && !up->isAncestor(producer);
         up = up->getParentOp())
      if (!isa<scf::IfOp>(up))
        return false;
    for (Region &region : around->getRegions())
      if (region.findAncestorOpInRegion(*a))
        return !region.findAncestorOpInRegion(*b);
    return false;
  }
  return false;
}

/// Whether `source` (a producer's result) may be computed per slice at
/// every use: its only use is `slice`, or every use is a slice that takes
/// distinct slices (takesDistinctSlices), each in its own branch of an
/// scf.if (a decode step's two forms of its ranges), so that however many
/// copies there are, one runs.
bool slicedOnceWherever(Value source, tensor::ExtractSliceOp slice,
                        Operation *producer) {
  if (source.hasOneUse())
    return takesDistinctSlices(slice, producer);
  SmallVector<tensor::ExtractSliceOp> slices;
  for (Operation *user : source.getUsers()) {
    auto other = dyn_cast<tensor::ExtractSliceOp>(user);
    if (!other || other.getSource() != source ||
        other->getBlock() == producer->getBlock() ||
        !takesDistinctSlices(other, producer))
      return false;
    for (tensor::ExtractSliceOp seen : slices)
      if (!inExclusiveBranches(seen, other, producer))
        return false;
    slices.push_back(other);
  }
  return true;
}

/// extract_slice(generic) -> the generic on that slice, for an elementwise
/// generic whose only use is the slice (or whose uses are all slices in
/// exclusive branches: slicedOnceWherever), inside loops that take
/// distinct slices. The TilingInterface offsets the producer's linalg.index
/// ops, so payloads that index captured tensors (bit-unpacking) stay correct.
struct FuseElementwiseProducerIntoSlice
    : OpRewritePattern<tensor::ExtractSliceOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::ExtractSliceOp slice,
                                PatternRewriter &rewriter) const override {
    auto producer = slice.getSource().getDefiningOp<linalg::GenericOp>();
    if (!producer || producer->getNumResults() != 1 ||
        producer.getNumLoops() != producer.getNumParallelLoops())
      return rewriter.notifyMatchFailure(slice, "no elementwise producer");
    if (!slice.hasUnitStride() ||
        slice.getType().getRank() != slice.getSourceType().getRank())
      return rewriter.notifyMatchFailure(slice, "strided or rank-reducing");
    if (producer->getBlock() == slice->getBlock() ||
        !slicedOnceWherever(slice.getSource(), slice, producer))
      return rewriter.notifyMatchFailure(slice, "would recompute");
    FailureOr<TilingResult> tiled =
        tensor::replaceExtractSliceWithTiledProducer(
            rewriter, slice, cast<OpResult>(slice.getSource()));
    if (failed(tiled) || tiled->tiledValues.size() != 1)
      return rewriter.notifyMatchFailure(slice, "not tileable");
    Value value = tiled->tiledValues.front();
    if (value.getType() != slice.getType())
      value = tensor::CastOp::create(rewriter, slice.getLoc(), slice.getType(),
                                     value);
    rewriter.replaceOp(slice, value);
    return success();
  }
};

/// extract_slice with a size of 0 -> tensor.empty: nothing to compute.
/// Ahead of the bubble-up through reshapes (a higher benefit), which built
/// a slice with a null size from one of 0 (a crash found by
/// scripts/fuzz_ir.py).
struct EmptySliceToEmptyTensor : OpRewritePattern<tensor::ExtractSliceOp> {
  explicit EmptySliceToEmptyTensor(MLIRContext *ctx)
      : OpRewritePattern(ctx, /*benefit=*/2) {}
  LogicalResult matchAndRewrite(tensor::ExtractSliceOp slice,
                                PatternRewriter &rewriter) const override {
    if (!llvm::is_contained(slice.getStaticSizes(), 0))
      return rewriter.notifyMatchFailure(slice, "not empty");
    llvm::SmallBitVector dropped = slice.getDroppedDims();
    SmallVector<OpFoldResult> sizes;
    for (auto [i, size] : llvm::enumerate(slice.getMixedSizes()))
      if (!dropped.test(i))
        sizes.push_back(size);
    Value empty = tensor::EmptyOp::create(rewriter, slice.getLoc(), sizes,
                                          slice.getType().getElementType());
    if (empty.getType() != slice.getType())
      empty = tensor::CastOp::create(rewriter, slice.getLoc(), slice.getType(),
                                     empty);
    rewriter.replaceOp(slice, empty);
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
    if (!collapse || !index || *index < 0 ||
        *index >= collapse.getResultType().getRank())
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
    if (!expand || !index || *index < 0 ||
        *index >= expand.getResultType().getRank())
      return failure();
    OpFoldResult size = expand.getMixedOutputShape()[*index];
    rewriter.replaceOp(dim, getValueOrCreateConstantIndexOp(
                                rewriter, dim.getLoc(), size));
    return success();
  }
};

struct FuseProducersIntoTileSlicesPass
    : rotor::impl::FuseProducersIntoTileSlicesBase<
          FuseProducersIntoTileSlicesPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseElementwiseProducerIntoSlice, EmptySliceToEmptyTensor>(
        &getContext());
    // Slices of reshapes (a dequantization's [.., blocks, B] view) become
    // reshapes of slices, so that they reach the producer.
    tensor::populateBubbleUpExtractSliceOpPatterns(patterns);
    // A fused producer's init, a slice of the whole result's tensor.empty,
    // becomes an empty tile.
    tensor::populateFoldTensorEmptyPatterns(patterns);
    // A size read from the producer or its reshape (tensor.dim) would keep
    // the whole producer alive: sizes are read from its operands instead.
    // (tensor.dim's canonicalizations read a destination-style result's
    // size from its init.)
    patterns.add<DimOfUnitCollapseGroup, DimOfExpandShape>(&getContext());
    tensor::DimOp::getCanonicalizationPatterns(patterns, &getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
