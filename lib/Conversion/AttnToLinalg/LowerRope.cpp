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

/// inv_freq of dynamic NTK scaling, computed from L = max(positions) + 1:
/// theta' = theta * (factor * L / L0 - (factor - 1))^(R / (R - 2)) when
/// L > L0, and inv_freq_i = theta'^(-2i/R).
Value buildDynamicInverseFrequencies(ImplicitLocOpBuilder &b, RopeOp op,
                                     DynamicRopeScalingAttr scaling) {
  Type f64 = b.getF64Type();
  Type i64 = b.getI64Type();
  int64_t r = op.getRotaryDim();
  MLIRContext *ctx = b.getContext();

  Value zero = arith::ConstantOp::create(b, b.getI64IntegerAttr(0));
  Value init =
      linalg::FillOp::create(
          b, zero,
          tensor::EmptyOp::create(b, ArrayRef<int64_t>{}, i64).getResult())
          .getResult(0);
  Value maxPos =
      linalg::GenericOp::create(
          b, init.getType(), op.getPositions(), init,
          ArrayRef<AffineMap>{b.getMultiDimIdentityMap(1),
                              AffineMap::get(1, 0, {}, ctx)},
          iterators(0, 1),
          [&](OpBuilder &nb, Location loc, ValueRange args) {
            Value p = args[0];
            if (p.getType() != i64)
              p = arith::ExtSIOp::create(nb, loc, i64, p);
            yieldValue(nb, loc, arith::MaxSIOp::create(nb, loc, p, args[1]));
          })
          .getResult(0);
  Value len = arith::SIToFPOp::create(
      b, f64,
      arith::AddIOp::create(
          b, tensor::ExtractOp::create(b, maxPos, ValueRange{}),
          arith::ConstantOp::create(b, b.getI64IntegerAttr(1))));

  double factor = scaling.getFactor().convertToDouble();
  double original = double(scaling.getOriginalMaxPositionEmbeddings());
  double theta = op.getTheta().convertToDouble();
  auto cst = [&](double v) { return floatConst(b, b.getLoc(), f64, v); };
  Value grown = arith::SubFOp::create(
      b, arith::MulFOp::create(b, cst(factor / original), len),
      cst(factor - 1));
  Value scaledBase = arith::MulFOp::create(
      b, cst(theta),
      math::PowFOp::create(b, grown, cst(double(r) / double(r - 2))));
  Value longer =
      arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, len, cst(original));
  Value base = arith::SelectOp::create(b, longer, scaledBase, cst(theta));
  Value logBase = math::LogOp::create(b, base);

  Value empty = tensor::EmptyOp::create(b, ArrayRef<int64_t>{r / 2}, f64);
  return elementwise(b, empty, ValueRange{}, f64,
                     [&](OpBuilder &nb, Location loc, ValueRange) -> Value {
                       Value i = arith::IndexCastOp::create(
                           nb, loc, i64, linalg::IndexOp::create(nb, loc, 0));
                       Value exponent = arith::MulFOp::create(
                           nb, loc, arith::SIToFPOp::create(nb, loc, f64, i),
                           floatConst(nb, loc, f64, -2.0 / double(r)));
                       return math::ExpOp::create(
                           nb, loc,
                           arith::MulFOp::create(nb, loc, exponent, logBase));
                     });
}

} // namespace

RopeEmitter::RopeEmitter(ImplicitLocOpBuilder &b, RopeOp op) : op(op) {
  int64_t r = op.getRotaryDim();
  if (std::optional<SmallVector<double>> freqs =
          getStaticInverseFrequencies(op)) {
    auto type = RankedTensorType::get({r / 2}, b.getF64Type());
    invFreq = arith::ConstantOp::create(
        b, DenseElementsAttr::get(type, ArrayRef<double>(*freqs)));
  } else {
    invFreq = buildDynamicInverseFrequencies(
        b, op, cast<DynamicRopeScalingAttr>(op.getScalingAttr()));
  }
}

std::pair<Value, Value> RopeEmitter::pairDims(OpBuilder &b, Location loc,
                                              Value q) {
  auto idx = [&](int64_t v) {
    return arith::ConstantIndexOp::create(b, loc, v).getResult();
  };
  int64_t r = op.getRotaryDim();
  Value ja = arith::MulIOp::create(b, loc, q, idx(2));
  Value jb = arith::AddIOp::create(b, loc, ja, idx(1));
  if (op.getLayout() == RopeLayout::HalfSplit) {
    Value inRotary =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, q, idx(r / 2));
    ja = arith::SelectOp::create(b, loc, inRotary, q, ja);
    jb = arith::SelectOp::create(
        b, loc, inRotary, arith::AddIOp::create(b, loc, q, idx(r / 2)), jb);
  }
  return {ja, jb};
}

/// The angle pos * inv_freq is formed and reduced to [-pi, pi] in f64, so
/// that long positions lose no accuracy; cos and sin are evaluated in f32
/// (at least) and rounded to the compute type, where the rotation happens.
/// Dims >= R are copied unchanged.
Value RopeEmitter::emit(OpBuilder &nb, Location loc, Value d, Value self,
                        function_ref<Value(Value)> loadPartner,
                        Value position) {
  int64_t r = op.getRotaryDim();
  Type f64 = nb.getF64Type();
  Type compute = op.getPrecision().getCompute();
  Type trig = compute.getIntOrFloatBitWidth() < 32 ? nb.getF32Type() : compute;
  Type storage = self.getType();
  bool halfSplit = op.getLayout() == RopeLayout::HalfSplit;
  double attentionFactor = getRopeAttentionFactor(op);
  auto idx = [&](int64_t v) {
    return arith::ConstantIndexOp::create(nb, loc, v).getResult();
  };
  Value inRotary =
      arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::ult, d, idx(r));
  Value first, freqIndex, partner;
  if (halfSplit) {
    first = arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::ult, d,
                                  idx(r / 2));
    Value low = arith::SubIOp::create(nb, loc, d, idx(r / 2));
    freqIndex = arith::SelectOp::create(nb, loc, first, d, low);
    partner = arith::SelectOp::create(
        nb, loc, first, arith::AddIOp::create(nb, loc, d, idx(r / 2)), low);
  } else {
    Value odd = arith::AndIOp::create(nb, loc, d, idx(1));
    first =
        arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::eq, odd, idx(0));
    freqIndex = arith::ShRUIOp::create(nb, loc, d, idx(1));
    partner = arith::XOrIOp::create(nb, loc, d, idx(1));
  }
  // Dims past R read themselves and frequency 0; the select at the end
  // discards what they compute.
  freqIndex = arith::SelectOp::create(nb, loc, inRotary, freqIndex, idx(0));
  partner = arith::SelectOp::create(nb, loc, inRotary, partner, d);

  Value other = loadPartner(partner);
  Value freq = tensor::ExtractOp::create(nb, loc, invFreq, freqIndex);
  Value pos = arith::SIToFPOp::create(nb, loc, f64, position);
  Value phi = arith::MulFOp::create(nb, loc, pos, freq);
  double twoPi = 2 * std::numbers::pi;
  Value turns = math::RoundEvenOp::create(
      nb, loc,
      arith::MulFOp::create(nb, loc, phi, floatConst(nb, loc, f64, 1 / twoPi)));
  phi = arith::SubFOp::create(
      nb, loc, phi,
      arith::MulFOp::create(nb, loc, turns, floatConst(nb, loc, f64, twoPi)));
  Value angle = castFloat(nb, loc, phi, trig);
  Value cos = math::CosOp::create(nb, loc, angle);
  Value sin = math::SinOp::create(nb, loc, angle);
  if (attentionFactor != 1.0) {
    Value af = floatConst(nb, loc, trig, attentionFactor);
    cos = arith::MulFOp::create(nb, loc, cos, af);
    sin = arith::MulFOp::create(nb, loc, sin, af);
  }
  cos = castFloat(nb, loc, cos, compute);
  sin = castFloat(nb, loc, sin, compute);

  Value a = castFloat(nb, loc, self, compute);
  Value mate = castFloat(nb, loc, other, compute);
  // (a, b) -> (a cos - b sin, a sin + b cos); `self` is a for the first
  // element of the pair and b for the second.
  Value asFirst =
      arith::SubFOp::create(nb, loc, arith::MulFOp::create(nb, loc, a, cos),
                            arith::MulFOp::create(nb, loc, mate, sin));
  Value asSecond =
      arith::AddFOp::create(nb, loc, arith::MulFOp::create(nb, loc, mate, sin),
                            arith::MulFOp::create(nb, loc, a, cos));
  Value rotated = castFloat(
      nb, loc, arith::SelectOp::create(nb, loc, first, asFirst, asSecond),
      storage);
  return arith::SelectOp::create(nb, loc, inRotary, rotated, self);
}

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
