//===- LowerNormAndGate.cpp - attn.rms_norm and attn.output_gate ----------===//
// Emits linalg.generic reductions and elementwise passes.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// Sum of squares over the last dim in the accumulate type, then
/// y = w * x * rsqrt(sum / D + eps) elementwise in the compute type.
struct LowerRmsNorm : OpRewritePattern<RmsNormOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(RmsNormOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Type compute = op.getPrecision().getCompute();
    Type acc = op.getPrecision().getAccumulate();
    auto inputType = cast<RankedTensorType>(op.getInput().getType());
    unsigned rank = inputType.getRank();
    int64_t d = inputType.getShape().back();

    SmallVector<OpFoldResult> rowShape = sizesOf(b, op.getInput());
    rowShape.pop_back();
    Value zero = filled(b, rowShape, acc, 0.0);
    AffineMap all = b.getMultiDimIdentityMap(rank);
    AffineMap rows = all.getMajorSubMap(rank - 1);
    AffineMap last = AffineMap::get(rank, 0, b.getAffineDimExpr(rank - 1));
    Value sumSq =
        linalg::GenericOp::create(
            b, zero.getType(), op.getInput(), zero,
            ArrayRef<AffineMap>{all, rows}, iterators(rank - 1, 1),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              Value x = castFloat(nb, loc, castFloat(nb, loc, args[0], compute),
                                  acc);
              Value sq = arith::MulFOp::create(nb, loc, x, x);
              yieldValue(
                  nb, loc, arith::AddFOp::create(nb, loc, args[1], sq));
            })
            .getResult(0);

    double eps = op.getEpsilon().convertToDouble();
    Value init = emptyLike(b, op.getInput(), inputType.getElementType());
    Value result =
        linalg::GenericOp::create(
            b, init.getType(), ValueRange{op.getInput(), op.getWeight(), sumSq},
            init, ArrayRef<AffineMap>{all, last, rows, all}, iterators(rank),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              Value mean = arith::DivFOp::create(
                  nb, loc, args[2], floatConst(nb, loc, acc, double(d)));
              Value inv = math::RsqrtOp::create(
                  nb, loc,
                  arith::AddFOp::create(nb, loc, mean,
                                        floatConst(nb, loc, acc, eps)));
              Value x = castFloat(nb, loc, args[0], compute);
              Value w = castFloat(nb, loc, args[1], compute);
              Value y = arith::MulFOp::create(
                  nb, loc, w,
                  arith::MulFOp::create(nb, loc, x,
                                        castFloat(nb, loc, inv, compute)));
              yieldValue(
                  nb, loc, castFloat(nb, loc, y, inputType.getElementType()));
            })
            .getResult(0);
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// y = x * sigmoid(g) elementwise in the compute type.
struct LowerOutputGate : OpRewritePattern<OutputGateOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(OutputGateOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Type compute = op.getPrecision().getCompute();
    Type storage = cast<RankedTensorType>(op.getType()).getElementType();
    Value result = elementwise(
        b, op.getInput(), ValueRange{op.getInput(), op.getGate()}, storage,
        [&](OpBuilder &nb, Location loc, ValueRange args) {
          Value x = castFloat(nb, loc, args[0], compute);
          Value g = castFloat(nb, loc, args[1], compute);
          Value one = floatConst(nb, loc, compute, 1.0);
          Value expNeg = math::ExpOp::create(
              nb, loc, arith::NegFOp::create(nb, loc, g));
          Value sigmoid = arith::DivFOp::create(
              nb, loc, one, arith::AddFOp::create(nb, loc, one, expNeg));
          return castFloat(nb, loc, arith::MulFOp::create(nb, loc, x, sigmoid),
                           storage);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateNormAndGateLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerRmsNorm, LowerOutputGate>(patterns.getContext());
}
