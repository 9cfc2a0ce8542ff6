//===- LowerHadamard.cpp - attn.hadamard to butterfly stages --------------===//
// Emits one elementwise linalg.generic per butterfly stage (partners read
// through linalg.index and tensor.extract).
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include <cmath>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// The fast Walsh-Hadamard transform: the input signs, then log2(G)
/// butterfly stages (stage h pairs element j with j xor h inside each
/// group), then the output signs and 1/sqrt(G). O(G log G) per group, in
/// the compute type.
struct LowerHadamard : OpRewritePattern<HadamardOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(HadamardOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Type compute = op.getPrecision().getCompute();
    auto type = cast<RankedTensorType>(op.getType());
    Type storage = type.getElementType();
    int64_t rank = type.getRank();
    int64_t dim = op.getRotatedDim();
    HadamardAttr rotation = op.getRotation();
    int64_t g = rotation.getGroup();
    auto [signsIn, signsOut] = rotation.getEffectiveSigns(op.getInverse());

    auto groupIndex = [&](OpBuilder &nb, Location loc) {
      Value d = linalg::IndexOp::create(nb, loc, dim);
      return arith::AndIOp::create(
                 nb, loc, d, arith::ConstantIndexOp::create(nb, loc, g - 1))
          .getResult();
    };
    // x * signs[j mod G] * magnitude in the compute type, rounded to `to`.
    auto applySigns = [&](Value src, ArrayRef<int32_t> signs, double magnitude,
                          Type to) {
      return elementwise(
          b, src, src, to, [&](OpBuilder &nb, Location loc, ValueRange args) {
            Value sign = signedConstant(nb, loc, signs, magnitude, compute,
                                        groupIndex(nb, loc));
            Value x = castFloat(nb, loc, args[0], compute);
            return castFloat(nb, loc, arith::MulFOp::create(nb, loc, x, sign),
                             to);
          });
    };

    Value current = applySigns(op.getInput(), signsIn, 1.0, compute);
    for (int64_t half = 1; half < g; half *= 2) {
      Value stageInput = current;
      current = elementwise(
          b, stageInput, stageInput, compute,
          [&](OpBuilder &nb, Location loc, ValueRange args) {
            SmallVector<Value> indices;
            for (int64_t i = 0; i < rank; ++i)
              indices.push_back(linalg::IndexOp::create(nb, loc, i));
            Value h = arith::ConstantIndexOp::create(nb, loc, half);
            Value upper = arith::CmpIOp::create(
                nb, loc, arith::CmpIPredicate::ne,
                arith::AndIOp::create(nb, loc, indices[dim], h),
                arith::ConstantIndexOp::create(nb, loc, 0));
            indices[dim] = arith::XOrIOp::create(nb, loc, indices[dim], h);
            Value mate =
                tensor::ExtractOp::create(nb, loc, stageInput, indices);
            // Lower element: x + mate; upper element: mate - x.
            Value sum = arith::AddFOp::create(nb, loc, args[0], mate);
            Value diff = arith::SubFOp::create(nb, loc, mate, args[0]);
            return arith::SelectOp::create(nb, loc, upper, diff, sum)
                .getResult();
          });
    }
    rewriter.replaceOp(
        op, applySigns(current, signsOut, 1.0 / std::sqrt(double(g)), storage));
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateHadamardLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerHadamard>(patterns.getContext());
}
