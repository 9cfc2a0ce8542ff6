//===- LowerQuantization.cpp - attn.quantize and attn.dequantize ----------===//
// Emits linalg.generic reductions (block scales) and elementwise passes
// (codes, dequantized values).
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/IR/QuantCodebook.h"

#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// Maps of a blocked tensor [..., nb, B] and its per-block values [..., nb].
std::pair<AffineMap, AffineMap> blockMaps(OpBuilder &b, int64_t rank) {
  AffineMap all = b.getMultiDimIdentityMap(rank);
  return {all, all.getMajorSubMap(rank - 1)};
}

/// Per-block scale: absmax / Q, or the block's RMS for the codebook, in
/// the accumulate type, rounded to the scale type.
Value computeScales(ImplicitLocOpBuilder &b, Value blocks,
                    KVBlockFormatAttr format, Type compute, Type acc) {
  int64_t rank = cast<RankedTensorType>(blocks.getType()).getRank();
  auto [all, perBlock] = blockMaps(b, rank);
  SmallVector<OpFoldResult> shape = sizesOf(b, blocks);
  shape.pop_back();
  Value zero = filled(b, shape, acc, 0.0);
  Value reduced =
      linalg::GenericOp::create(
          b, zero.getType(), blocks, zero, ArrayRef<AffineMap>{all, perBlock},
          iterators(rank - 1, 1),
          [&](OpBuilder &nb, Location loc, ValueRange args) {
            Value x =
                castFloat(nb, loc, castFloat(nb, loc, args[0], compute), acc);
            yieldValue(nb, loc,
                       quantizeReduceStep(nb, loc, format, args[1], x));
          })
          .getResult(0);
  return elementwise(b, reduced, reduced, format.getScaleType(),
                     [&](OpBuilder &nb, Location loc, ValueRange args) {
                       return quantizeScale(nb, loc, format, args[0]);
                     });
}

struct LowerQuantize : OpRewritePattern<QuantizeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(QuantizeOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KVBlockFormatAttr format = op.getFormat();
    Type compute = op.getPrecision().getCompute();
    Type acc = op.getPrecision().getAccumulate();
    Type i8 = b.getI8Type();
    Value blocks = expandBlocks(b, op.getInput(), format.getBlockSize());
    Value scales = computeScales(b, blocks, format, compute, acc);

    int64_t rank = cast<RankedTensorType>(blocks.getType()).getRank();
    auto [all, perBlock] = blockMaps(b, rank);
    Value init = emptyLike(b, blocks, i8);
    Value codes =
        linalg::GenericOp::create(
            b, init.getType(), ValueRange{blocks, scales}, init,
            ArrayRef<AffineMap>{all, perBlock, all}, iterators(rank),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              Value x =
                  castFloat(nb, loc, castFloat(nb, loc, args[0], compute), acc);
              yieldValue(nb, loc,
                         quantizeCode(nb, loc, format, x,
                                      castFloat(nb, loc, args[1], acc)));
            })
            .getResult(0);
    rewriter.replaceOp(op, {collapseBlocks(b, codes), scales});
    return success();
  }
};

struct LowerDequantize : OpRewritePattern<DequantizeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(DequantizeOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KVBlockFormatAttr format = op.getFormat();
    Type compute = op.getPrecision().getCompute();
    Type storage = cast<RankedTensorType>(op.getType()).getElementType();
    Value blocks = expandBlocks(b, op.getCodes(), format.getBlockSize());
    int64_t rank = cast<RankedTensorType>(blocks.getType()).getRank();
    auto [all, perBlock] = blockMaps(b, rank);

    Value table = codebookTable(b, format);
    Value init = emptyLike(b, blocks, storage);
    Value values =
        linalg::GenericOp::create(
            b, init.getType(), ValueRange{blocks, op.getScales()}, init,
            ArrayRef<AffineMap>{all, perBlock, all}, iterators(rank),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              yieldValue(nb, loc,
                         dequantizeElement(nb, loc, format, table, args[0],
                                           args[1], compute, storage));
            })
            .getResult(0);
    rewriter.replaceOp(op, collapseBlocks(b, values));
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateQuantizationLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerQuantize, LowerDequantize>(patterns.getContext());
}
