//===- OpArithmetic.cpp - The scalar arithmetic of attn ops ---------------===//

#include "rotor/Dialect/Attn/Utils/OpArithmetic.h"

#include "rotor/Dialect/Attn/IR/QuantCodebook.h"
#include "rotor/Dialect/Attn/IR/RopeFrequencies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>
#include <numbers>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace rotor::attn::lowering {

Value castFloat(OpBuilder &b, Location loc, Value v, Type to) {
  auto vector = dyn_cast<VectorType>(v.getType());
  Type from = getElementTypeOrSelf(v.getType());
  if (from == to)
    return v;
  auto like = [&](Type element) -> Type {
    return vector ? VectorType::get(vector.getShape(), element) : element;
  };
  unsigned fromWidth = from.getIntOrFloatBitWidth();
  unsigned toWidth = to.getIntOrFloatBitWidth();
  if (fromWidth == toWidth) // bf16 <-> f16: both are exact in f32.
    return arith::TruncFOp::create(
        b, loc, like(to), arith::ExtFOp::create(b, loc, like(b.getF32Type()), v));
  if (fromWidth < toWidth)
    return arith::ExtFOp::create(b, loc, like(to), v);
  return arith::TruncFOp::create(b, loc, like(to), v);
}

Value multiplyAccumulate(OpBuilder &b, Location loc, Value sum, Value lhs,
                         Value rhs, Type compute, Type acc) {
  Value x = castFloat(b, loc, castFloat(b, loc, lhs, compute), acc);
  Value y = castFloat(b, loc, castFloat(b, loc, rhs, compute), acc);
  return arith::AddFOp::create(b, loc, sum,
                               arith::MulFOp::create(b, loc, x, y));
}

Value probabilityForValues(OpBuilder &b, Location loc, Value p, SdpaOp op) {
  if (!op.getRoundProbabilities())
    return p;
  return castFloat(b, loc, castFloat(b, loc, p, op.getPrecision().getCompute()),
                   p.getType());
}

Value signedConstant(OpBuilder &b, Location loc, ArrayRef<int32_t> signs,
                     double magnitude, Type type, Value pos) {
  Value plus = floatConst(b, loc, type, magnitude);
  Value minus = floatConst(b, loc, type, -magnitude);
  if (llvm::all_of(signs, [](int32_t s) { return s > 0; }))
    return plus;
  if (llvm::all_of(signs, [](int32_t s) { return s < 0; }))
    return minus;
  SmallVector<uint64_t> words(llvm::divideCeil(signs.size(), 64), 0);
  for (auto [i, s] : llvm::enumerate(signs))
    if (s < 0)
      words[i / 64] |= uint64_t(1) << (i % 64);
  Type i64 = b.getI64Type();
  auto word = [&](uint64_t v) {
    return arith::ConstantOp::create(b, loc, b.getIntegerAttr(i64, v))
        .getResult();
  };
  Value p = arith::IndexCastUIOp::create(b, loc, i64, pos);
  Value mask = word(words[0]);
  if (words.size() > 1) {
    Value wordIndex = arith::ShRUIOp::create(b, loc, p, word(6));
    for (size_t w = 1; w < words.size(); ++w)
      mask = arith::SelectOp::create(
          b, loc,
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, wordIndex,
                                word(w)),
          word(words[w]), mask);
  }
  Value bit = arith::AndIOp::create(
      b, loc,
      arith::ShRUIOp::create(b, loc, mask,
                             arith::AndIOp::create(b, loc, p, word(63))),
      word(1));
  Value negative =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, bit, word(0));
  return arith::SelectOp::create(b, loc, negative, minus, plus);
}

Value floatConst(OpBuilder &b, Location loc, Type type, double value) {
  return arith::ConstantOp::create(b, loc, type, b.getFloatAttr(type, value));
}

Value finiteMax(OpBuilder &b, Location loc, Value m, Type acc) {
  Value isInf = arith::CmpFOp::create(
      b, loc, arith::CmpFPredicate::OEQ, m,
      floatConst(b, loc, acc, -std::numeric_limits<double>::infinity()));
  return arith::SelectOp::create(b, loc, isInf, floatConst(b, loc, acc, 0.0),
                                 m);
}

Value normalizedElement(OpBuilder &b, Location loc, Value out, Value sum,
                        Type acc, Type storage) {
  // A query that sees no key (possible only without causal masking on an
  // empty KV) gets zeros.
  Value empty = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, sum,
                                      floatConst(b, loc, acc, 0.0));
  Value quotient = arith::DivFOp::create(b, loc, out, sum);
  Value value = arith::SelectOp::create(b, loc, empty,
                                        floatConst(b, loc, acc, 0.0), quotient);
  return castFloat(b, loc, value, storage);
}

} // namespace rotor::attn::lowering

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
          SmallVector<utils::IteratorType>{utils::IteratorType::reduction},
          [&](OpBuilder &nb, Location loc, ValueRange args) {
            Value p = args[0];
            if (p.getType() != i64)
              p = arith::ExtSIOp::create(nb, loc, i64, p);
            linalg::YieldOp::create(
                nb, loc, ValueRange{arith::MaxSIOp::create(nb, loc, p, args[1])});
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
  return linalg::GenericOp::create(
             b, empty.getType(), ValueRange{}, empty,
             ArrayRef<AffineMap>{b.getMultiDimIdentityMap(1)},
             SmallVector<utils::IteratorType>{utils::IteratorType::parallel},
             [&](OpBuilder &nb, Location loc, ValueRange) {
               Value i = arith::IndexCastOp::create(
                   nb, loc, i64, linalg::IndexOp::create(nb, loc, 0));
               Value exponent = arith::MulFOp::create(
                   nb, loc, arith::SIToFPOp::create(nb, loc, f64, i),
                   floatConst(nb, loc, f64, -2.0 / double(r)));
               Value freq = math::ExpOp::create(
                   nb, loc, arith::MulFOp::create(nb, loc, exponent, logBase));
               linalg::YieldOp::create(nb, loc, ValueRange{freq});
             })
      .getResult(0);
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

Value rotor::attn::lowering::reducedRopeAngle(OpBuilder &b, Location loc,
                                              Value position, Value freq) {
  Type f64 = b.getF64Type();
  Value phi = arith::MulFOp::create(b, loc, position, freq);
  double twoPi = 2 * std::numbers::pi;
  Value turns = math::RoundEvenOp::create(
      b, loc,
      arith::MulFOp::create(b, loc, phi, floatConst(b, loc, f64, 1 / twoPi)));
  return arith::SubFOp::create(
      b, loc, phi,
      arith::MulFOp::create(b, loc, turns, floatConst(b, loc, f64, twoPi)));
}

std::pair<Value, Value> rotor::attn::lowering::ropeCosSin(OpBuilder &b,
                                                         Location loc,
                                                         Value angle) {
  if (!angle.getType().isF32())
    return {math::CosOp::create(b, loc, angle),
            math::SinOp::create(b, loc, angle)};
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  auto c = [&](double v) { return floatConst(b, loc, f32, v); };
  auto mul = [&](Value x, Value y) {
    return arith::MulFOp::create(b, loc, x, y).getResult();
  };
  auto add = [&](Value x, Value y) {
    return arith::AddFOp::create(b, loc, x, y).getResult();
  };
  auto sub = [&](Value x, Value y) {
    return arith::SubFOp::create(b, loc, x, y).getResult();
  };
  // k = round(angle / (pi/2)), |k| <= 2: k times each part of pi/2 is
  // exact, so r = angle - k pi/2 loses nothing but its own rounding.
  Value k = math::RoundEvenOp::create(b, loc, mul(angle, c(2 / std::numbers::pi)));
  Value r = sub(sub(sub(angle, mul(k, c(1.5703125))),
                    mul(k, c(4.837512969970703125e-4))),
                mul(k, c(7.54978995489188216e-8)));
  Value z = mul(r, r);
  // Cephes sinf and cosf on [-pi/4, pi/4].
  Value s = add(mul(mul(sub(mul(add(mul(c(-1.9515295891e-4), z),
                                    c(8.3321608736e-3)),
                                z),
                            c(1.6666654611e-1)),
                        z),
                    r),
                r);
  Value cp = add(mul(add(mul(c(2.443315711809948e-5), z),
                         c(-1.388731625493765e-3)),
                     z),
                 c(4.166664568298827e-2));
  Value co = add(sub(mul(mul(cp, z), z), mul(c(0.5), z)), c(1.0));
  // Quadrant q = k mod 4: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s).
  Value q = arith::FPToSIOp::create(b, loc, i32, k);
  auto bit = [&](Value v, int64_t m) {
    Value one = arith::ConstantIntOp::create(b, loc, i32, m);
    return arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::ne, arith::AndIOp::create(b, loc, v, one),
        arith::ConstantIntOp::create(b, loc, i32, 0));
  };
  Value swap = bit(q, 1);
  Value sinNegative = bit(q, 2);
  Value cosNegative =
      bit(arith::AddIOp::create(b, loc, q,
                                arith::ConstantIntOp::create(b, loc, i32, 1)),
          2);
  Value sinv = arith::SelectOp::create(b, loc, swap, co, s);
  Value cosv = arith::SelectOp::create(b, loc, swap, s, co);
  sinv = arith::SelectOp::create(b, loc, sinNegative,
                                 arith::NegFOp::create(b, loc, sinv), sinv);
  cosv = arith::SelectOp::create(b, loc, cosNegative,
                                 arith::NegFOp::create(b, loc, cosv), cosv);
  return {cosv, sinv};
}

/// The angle pos * inv_freq is formed and reduced to [-pi, pi] in f64, so
/// that long positions lose no accuracy; cos and sin are evaluated in f32
/// (at least) and rounded to the compute type, where the rotation happens.
/// Dims >= R are copied unchanged.
std::pair<Value, Value> RopeEmitter::cosSin(OpBuilder &nb, Location loc,
                                            Value freqIndex, Value position) {
  Type f64 = nb.getF64Type();
  Type compute = op.getPrecision().getCompute();
  Type trig = compute.getIntOrFloatBitWidth() < 32 ? nb.getF32Type() : compute;
  double attentionFactor = getRopeAttentionFactor(op);
  Value freq = tensor::ExtractOp::create(nb, loc, invFreq, freqIndex);
  Value pos = arith::SIToFPOp::create(nb, loc, f64, position);
  Value angle = castFloat(nb, loc, reducedRopeAngle(nb, loc, pos, freq), trig);
  auto [cos, sin] = ropeCosSin(nb, loc, angle);
  if (attentionFactor != 1.0) {
    Value af = floatConst(nb, loc, trig, attentionFactor);
    cos = arith::MulFOp::create(nb, loc, cos, af);
    sin = arith::MulFOp::create(nb, loc, sin, af);
  }
  return {castFloat(nb, loc, cos, compute), castFloat(nb, loc, sin, compute)};
}

Value RopeEmitter::rotatePair(OpBuilder &nb, Location loc, Value first,
                              Value self, Value other, Value cos, Value sin) {
  Type compute = op.getPrecision().getCompute();
  Type storage = self.getType();
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
  return castFloat(nb, loc,
                   arith::SelectOp::create(nb, loc, first, asFirst, asSecond),
                   storage);
}

Value RopeEmitter::emit(OpBuilder &nb, Location loc, Value d, Value self,
                        function_ref<Value(Value)> loadPartner,
                        Value position) {
  int64_t r = op.getRotaryDim();
  bool halfSplit = op.getLayout() == RopeLayout::HalfSplit;
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
  auto [cos, sin] = cosSin(nb, loc, freqIndex, position);
  Value rotated = rotatePair(nb, loc, first, self, other, cos, sin);
  return arith::SelectOp::create(nb, loc, inRotary, rotated, self);
}

Value rotor::attn::lowering::codebookTable(ImplicitLocOpBuilder &b,
                                           KVBlockFormatAttr format) {
  if (format.getScheme() != QuantScheme::Codebook)
    return Value();
  SmallVector<double> centroids = getLloydMaxCentroids(format.getBits());
  return arith::ConstantOp::create(
      b, DenseElementsAttr::get(
             RankedTensorType::get({int64_t(centroids.size())}, b.getF64Type()),
             ArrayRef<double>(centroids)));
}

Value rotor::attn::lowering::dequantizeElement(OpBuilder &b, Location loc,
                                               KVBlockFormatAttr format,
                                               Value table, Value code,
                                               Value scale, Type compute,
                                               Type storage) {
  Value level;
  if (table) {
    // Codes outside the codebook (a corrupted cache) clamp to it rather
    // than reading out of bounds.
    int64_t entries = int64_t(1) << format.getBits();
    Value index = arith::IndexCastUIOp::create(b, loc, b.getIndexType(), code);
    index = arith::MinUIOp::create(
        b, loc, index, arith::ConstantIndexOp::create(b, loc, entries - 1));
    level = castFloat(b, loc, tensor::ExtractOp::create(b, loc, table, index),
                      compute);
  } else {
    // |code| <= 127 is exact in every compute type.
    level = castFloat(
        b, loc, arith::SIToFPOp::create(b, loc, b.getF32Type(), code), compute);
  }
  Value s = castFloat(b, loc, scale, compute);
  return castFloat(b, loc, arith::MulFOp::create(b, loc, s, level), storage);
}

Value rotor::attn::lowering::unpackCode(OpBuilder &b, Location loc,
                                        function_ref<Value(Value)> byteAt,
                                        Value byteIndex, Value shift,
                                        KVBlockFormatAttr format,
                                        int64_t lastByte) {
  int64_t bits = format.getBits();
  Type i32 = b.getI32Type();
  auto word32 = [&](Value byte) {
    return arith::ExtUIOp::create(b, loc, i32, byte).getResult();
  };
  Value next = arith::MinUIOp::create(
      b, loc,
      arith::AddIOp::create(b, loc, byteIndex,
                            arith::ConstantIndexOp::create(b, loc, 1)),
      arith::ConstantIndexOp::create(b, loc, lastByte));
  Value word = arith::OrIOp::create(
      b, loc, word32(byteAt(byteIndex)),
      arith::ShLIOp::create(b, loc, word32(byteAt(next)),
                            arith::ConstantIntOp::create(b, loc, i32, 8)));
  Value code = arith::AndIOp::create(
      b, loc,
      arith::ShRUIOp::create(b, loc, word,
                             arith::IndexCastOp::create(b, loc, i32, shift)),
      arith::ConstantIntOp::create(b, loc, i32, (1 << bits) - 1));
  if (format.getScheme() == QuantScheme::Absmax) {
    // Sign-extend from `bits`: shift up to bit 31, then back.
    Value up = arith::ConstantIntOp::create(b, loc, i32, 32 - bits);
    code = arith::ShRSIOp::create(b, loc,
                                  arith::ShLIOp::create(b, loc, code, up), up);
  }
  return arith::TruncIOp::create(b, loc, b.getI8Type(), code);
}

Value rotor::attn::lowering::unpackScale(OpBuilder &b, Location loc,
                                         function_ref<Value(Value)> byteAt,
                                         Value blk, KVBlockFormatAttr format) {
  FloatType scaleType = format.getScaleType();
  int64_t scaleBytes = scaleType.getWidth() / 8;
  Type i32 = b.getI32Type();
  Value base = arith::MulIOp::create(
      b, loc, blk,
      arith::ConstantIndexOp::create(b, loc, packedBlockBytes(format)));
  Value word = arith::ConstantIntOp::create(b, loc, i32, 0);
  for (int64_t k = 0; k < scaleBytes; ++k) {
    Value byte = arith::ExtUIOp::create(
        b, loc, i32,
        byteAt(arith::AddIOp::create(
            b, loc, base, arith::ConstantIndexOp::create(b, loc, k))));
    word = arith::OrIOp::create(
        b, loc, word,
        arith::ShLIOp::create(b, loc, byte,
                              arith::ConstantIntOp::create(b, loc, i32, 8 * k)));
  }
  Value raw = scaleBytes == 4
                  ? word
                  : arith::TruncIOp::create(
                        b, loc, b.getIntegerType(scaleBytes * 8), word)
                        .getResult();
  return arith::BitcastOp::create(b, loc, scaleType, raw);
}

Value rotor::attn::lowering::quantizeReduceStep(OpBuilder &b, Location loc,
                                                KVBlockFormatAttr format,
                                                Value reduced, Value x) {
  if (format.getScheme() == QuantScheme::Absmax)
    return arith::MaximumFOp::create(b, loc, reduced,
                                     math::AbsFOp::create(b, loc, x));
  return arith::AddFOp::create(b, loc, reduced,
                               arith::MulFOp::create(b, loc, x, x));
}

Value rotor::attn::lowering::quantizeScale(OpBuilder &b, Location loc,
                                           KVBlockFormatAttr format,
                                           Value reduced) {
  Type acc = reduced.getType();
  Value scale;
  if (format.getScheme() == QuantScheme::Absmax) {
    double qmax = double((1 << (format.getBits() - 1)) - 1);
    scale =
        arith::DivFOp::create(b, loc, reduced, floatConst(b, loc, acc, qmax));
  } else {
    double blockSize = double(format.getBlockSize());
    scale = math::SqrtOp::create(
        b, loc,
        arith::DivFOp::create(b, loc, reduced,
                              floatConst(b, loc, acc, blockSize)));
  }
  return castFloat(b, loc, scale, format.getScaleType());
}

Value rotor::attn::lowering::quantizeCode(OpBuilder &b, Location loc,
                                          KVBlockFormatAttr format, Value x,
                                          Value scale) {
  Type acc = x.getType();
  Type i8 = b.getI8Type();
  Value zero = floatConst(b, loc, acc, 0.0);
  Value isZero =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, scale, zero);
  Value ratio = arith::SelectOp::create(
      b, loc, isZero, zero, arith::DivFOp::create(b, loc, x, scale));
  if (format.getScheme() == QuantScheme::Absmax) {
    // Round half to even, then clamp: the stored scale was rounded, so
    // |x| / s can exceed Q slightly.
    double qmax = double((1 << (format.getBits() - 1)) - 1);
    Value q = math::RoundEvenOp::create(b, loc, ratio);
    q = arith::MinimumFOp::create(b, loc, q, floatConst(b, loc, acc, qmax));
    q = arith::MaximumFOp::create(b, loc, q, floatConst(b, loc, acc, -qmax));
    return arith::FPToSIOp::create(b, loc, i8, q);
  }
  // The index of the nearest centroid: the number of decision boundaries
  // strictly below the value (ties go down).
  SmallVector<double> centroids = getLloydMaxCentroids(format.getBits());
  Value code = arith::ConstantOp::create(b, loc, b.getIntegerAttr(i8, 0));
  for (size_t i = 0; i + 1 < centroids.size(); ++i) {
    double boundary = 0.5 * (centroids[i] + centroids[i + 1]);
    Value above =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, ratio,
                              floatConst(b, loc, acc, boundary));
    code = arith::AddIOp::create(b, loc, code,
                                 arith::ExtUIOp::create(b, loc, i8, above));
  }
  return code;
}
