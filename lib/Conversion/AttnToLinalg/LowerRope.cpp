//===- LowerRope.cpp - attn.rope to one elementwise linalg.generic --------===//

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/IR/RopeFrequencies.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <numbers>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// One elementwise linalg.generic: every element reads its own input
/// element and, through tensor.extract, its pair partner.
struct LowerRope : OpRewritePattern<RopeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(RopeOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    if (op.getRotaryDim() == 0) {
      rewriter.replaceOp(op, op.getInput());
      return success();
    }
    Type storage = cast<RankedTensorType>(op.getType()).getElementType();
    RopeEmitter emitter(b, op);
    Value input = op.getInput();
    MLIRContext *ctx = b.getContext();
    AffineMap all = b.getMultiDimIdentityMap(3);
    AffineMap tokens = AffineMap::get(3, 0, b.getAffineDimExpr(0), ctx);
    Value init = emptyLike(b, input, storage);
    Value result =
        linalg::GenericOp::create(
            b, init.getType(), ValueRange{input, op.getPositions()}, init,
            ArrayRef<AffineMap>{all, tokens, all}, iterators(3),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              Value t = linalg::IndexOp::create(nb, loc, 0);
              Value h = linalg::IndexOp::create(nb, loc, 1);
              Value d = linalg::IndexOp::create(nb, loc, 2);
              yieldValue(nb, loc,
                         emitter.emit(
                             nb, loc, d, args[0],
                             [&](Value partner) -> Value {
                               return tensor::ExtractOp::create(
                                   nb, loc, input, ValueRange{t, h, partner});
                             },
                             args[1]));
            })
            .getResult(0);
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateRopeLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerRope>(patterns.getContext());
}
