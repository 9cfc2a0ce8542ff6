//===- LowerLinear.cpp - attn.linear to a linalg contraction --------------===//
// Emits a linalg.generic contraction initialized with the bias (a
// linalg.fill of zeros without one).
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// y[t, n] = bias[n] + sum_e x[t, e] * W[n, e]: operands rounded to the
/// compute type, products and the sum in the accumulate type (the order in
/// which tensor cores work), one rounding to the result type at the end.
struct LowerLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Type compute = op.getPrecision().getCompute();
    Type acc = op.getPrecision().getAccumulate();
    auto resultType = cast<RankedTensorType>(op.getType());

    SmallVector<OpFoldResult> shape = {
        tensor::getMixedSize(b, b.getLoc(), op.getInput(), 0),
        tensor::getMixedSize(b, b.getLoc(), op.getWeight(), 0)};
    Value init;
    if (Value bias = op.getBias()) {
      MLIRContext *ctx = b.getContext();
      AffineExpr t, n;
      bindDims(ctx, t, n);
      Value empty = emptyTensor(b, shape, acc);
      init = linalg::GenericOp::create(
                 b, empty.getType(), bias, empty,
                 ArrayRef<AffineMap>{AffineMap::get(2, 0, {n}, ctx),
                                     AffineMap::get(2, 0, {t, n}, ctx)},
                 iterators(2),
                 [&](OpBuilder &nb, Location loc, ValueRange args) {
                   // The bias enters the sum as stored, widened exactly.
                   yieldValue(nb, loc,
                                           castFloat(nb, loc, args[0], acc));
                 })
                 .getResult(0);
    } else {
      init = filled(b, shape, acc, 0.0);
    }

    MLIRContext *ctx = b.getContext();
    AffineExpr t, n, e;
    bindDims(ctx, t, n, e);
    Value sum =
        linalg::GenericOp::create(
            b, init.getType(), ValueRange{op.getInput(), op.getWeight()},
            init,
            ArrayRef<AffineMap>{AffineMap::get(3, 0, {t, e}, ctx),
                                AffineMap::get(3, 0, {n, e}, ctx),
                                AffineMap::get(3, 0, {t, n}, ctx)},
            iterators(2, 1),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              yieldValue(nb, loc,
                         multiplyAccumulate(nb, loc, args[2], args[0], args[1],
                                            compute, acc));
            })
            .getResult(0);

    Type storage = resultType.getElementType();
    if (storage != acc)
      sum = elementwise(b, sum, sum, storage,
                        [&](OpBuilder &nb, Location loc, ValueRange args) {
                          return castFloat(nb, loc, args[0], storage);
                        });
    rewriter.replaceOp(op, sum);
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateLinearLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerLinear>(patterns.getContext());
}
