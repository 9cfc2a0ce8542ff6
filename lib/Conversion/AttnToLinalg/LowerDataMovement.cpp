//===- LowerDataMovement.cpp - attn.permute and the KV cache ops ----------===//
// Emits linalg.generic (attn.permute gathers through linalg.index) and
// tensor.insert_slice/extract_slice for the KV cache ops.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// A gather along one dim through a constant index table.
struct LowerPermute : OpRewritePattern<PermuteOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(PermuteOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getType());
    int64_t dim = op.getDim();
    ArrayRef<int64_t> perm = op.getPermutation();
    auto tableType =
        RankedTensorType::get({int64_t(perm.size())}, b.getIndexType());
    SmallVector<APInt> entries;
    for (int64_t p : perm)
      entries.push_back(APInt(64, p));
    Value table = arith::ConstantOp::create(
        b, DenseElementsAttr::get(tableType, entries));
    Value input = op.getInput();
    Value result = elementwise(
        b, input, ValueRange{}, type.getElementType(),
        [&](OpBuilder &nb, Location loc, ValueRange) {
          SmallVector<Value> indices;
          for (int64_t i = 0; i < type.getRank(); ++i)
            indices.push_back(linalg::IndexOp::create(nb, loc, i));
          indices[dim] =
              tensor::ExtractOp::create(nb, loc, table, indices[dim]);
          return tensor::ExtractOp::create(nb, loc, input, indices)
              .getResult();
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// Rows [offset, offset + N) of the cache replaced by the update.
struct LowerKVCacheAppend : OpRewritePattern<KVCacheAppendOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(KVCacheAppendOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getType());
    SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
    offsets[0] = op.getOffset();
    SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
    rewriter.replaceOpWithNewOp<tensor::InsertSliceOp>(
        op, op.getUpdate(), op.getCache(), offsets, sizesOf(b, op.getUpdate()),
        strides);
    return success();
  }
};

/// Rows [0, length) of the cache.
struct LowerKVCacheRead : OpRewritePattern<KVCacheReadOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(KVCacheReadOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getType());
    SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
    SmallVector<OpFoldResult> sizes = sizesOf(b, op.getCache());
    sizes[0] = op.getLength();
    SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
    rewriter.replaceOpWithNewOp<tensor::ExtractSliceOp>(
        op, type, op.getCache(), offsets, sizes, strides);
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateDataMovementLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerPermute, LowerKVCacheAppend, LowerKVCacheRead>(
      patterns.getContext());
}
