//===- SdpaKeyBias.cpp - attn.sdpa's key-bias term ------------------------===//
//
// q · RoPE(b, j) per score, as A·cos(φ_j) + B·sin(φ_j) per RoPE pair: A and
// B once per query and head, cos and sin of a tile's keys by angle addition
// from its first key, so that a tile takes R/2 sines and cosines.
//
//===----------------------------------------------------------------------===//

#include "SdpaUtils.h"

#include "rotor/Dialect/Attn/IR/RopeFrequencies.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>
#include <numbers>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// A and B [Tq, Hq, R/2] of `op`'s key-bias term.
std::pair<Value, Value> coefficients(ImplicitLocOpBuilder &b, SdpaOp op,
                                     OpFoldResult tq, Type acc) {
  RopeParamsAttr rope = op.getKeyBiasRopeAttr();
  int64_t r = rope.getRotaryDim();
  bool halfSplit = rope.getLayout() == RopeLayout::HalfSplit;
  Value q = op.getQuery(), bias = op.getKeyBias();
  int64_t hq = cast<RankedTensorType>(q.getType()).getDimSize(1);
  int64_t group =
      hq / cast<RankedTensorType>(op.getKey().getType()).getDimSize(1);
  SmallVector<OpFoldResult> shape = {tq, b.getIndexAttr(hq),
                                     b.getIndexAttr(r / 2)};
  Value initA = emptyTensor(b, shape, acc), initB = emptyTensor(b, shape, acc);
  AffineMap identity = b.getMultiDimIdentityMap(3);
  auto generic = linalg::GenericOp::create(
      b, TypeRange{initA.getType(), initB.getType()}, ValueRange{},
      ValueRange{initA, initB}, ArrayRef<AffineMap>{identity, identity},
      iterators(3), [&](OpBuilder &nb, Location loc, ValueRange) {
        auto idx = [&](int64_t v) {
          return arith::ConstantIndexOp::create(nb, loc, v).getResult();
        };
        Value t = linalg::IndexOp::create(nb, loc, 0);
        Value h = linalg::IndexOp::create(nb, loc, 1);
        Value i = linalg::IndexOp::create(nb, loc, 2);
        Value kvHead = arith::DivUIOp::create(nb, loc, h, idx(group));
        // The pair (a, c): (i, i + R/2) half-split, (2i, 2i + 1) interleaved.
        Value a = halfSplit ? i : arith::MulIOp::create(nb, loc, i, idx(2));
        Value c = arith::AddIOp::create(nb, loc, a, idx(halfSplit ? r / 2 : 1));
        auto load = [&](Value t, ValueRange at) {
          return castFloat(nb, loc, tensor::ExtractOp::create(nb, loc, t, at),
                           acc);
        };
        Value qa = load(q, {t, h, a}), qc = load(q, {t, h, c});
        Value ba = load(bias, {kvHead, a}), bc = load(bias, {kvHead, c});
        auto mul = [&](Value x, Value y) {
          return arith::MulFOp::create(nb, loc, x, y).getResult();
        };
        Value coefA = arith::AddFOp::create(nb, loc, mul(qa, ba), mul(qc, bc));
        Value coefB = arith::SubFOp::create(nb, loc, mul(qc, ba), mul(qa, bc));
        linalg::YieldOp::create(nb, loc, ValueRange{coefA, coefB});
      });
  return {generic.getResult(0), generic.getResult(1)};
}

/// The bias's per-dim coefficients of `term` (see KeyBiasTerm), once per
/// op.
void planPerDim(ImplicitLocOpBuilder &b, SdpaOp op, KeyBiasTerm &term) {
  RopeParamsAttr rope = op.getKeyBiasRopeAttr();
  int64_t r = rope.getRotaryDim();
  bool halfSplit = rope.getLayout() == RopeLayout::HalfSplit;
  Value bias = op.getKeyBias();
  auto biasType = cast<RankedTensorType>(bias.getType());
  int64_t hkv = biasType.getDimSize(0), d = biasType.getDimSize(1);
  term.dims = d;
  term.halfSplit = halfSplit;
  // self and cross [Hkv, D], once per op.
  Type acc = term.acc;
  SmallVector<OpFoldResult> shape = {b.getIndexAttr(hkv), b.getIndexAttr(d)};
  Value selfInit = emptyTensor(b, shape, acc), crossInit = emptyTensor(b, shape, acc);
  AffineMap id2 = b.getMultiDimIdentityMap(2);
  auto generic = linalg::GenericOp::create(
      b, TypeRange{selfInit.getType(), crossInit.getType()}, ValueRange{},
      ValueRange{selfInit, crossInit}, ArrayRef<AffineMap>{id2, id2},
      iterators(2), [&](OpBuilder &nb, Location loc, ValueRange) {
        auto idx = [&](int64_t v) {
          return arith::ConstantIndexOp::create(nb, loc, v).getResult();
        };
        Value g = linalg::IndexOp::create(nb, loc, 0);
        Value k = linalg::IndexOp::create(nb, loc, 1);
        Value inRotary =
            arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::ult, k, idx(r));
        Value first, partner;
        if (halfSplit) {
          first = arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::ult, k,
                                        idx(r / 2));
          partner = arith::SelectOp::create(
              nb, loc, first, arith::AddIOp::create(nb, loc, k, idx(r / 2)),
              arith::SubIOp::create(nb, loc, k, idx(r / 2)));
        } else {
          first = arith::CmpIOp::create(
              nb, loc, arith::CmpIPredicate::eq,
              arith::AndIOp::create(nb, loc, k, idx(1)), idx(0));
          partner = arith::XOrIOp::create(nb, loc, k, idx(1));
        }
        partner = arith::SelectOp::create(nb, loc, inRotary, partner, idx(0));
        auto load = [&](Value at) {
          return castFloat(nb, loc,
                           tensor::ExtractOp::create(nb, loc, bias, ValueRange{g, at}),
                           acc);
        };
        Value zero = floatConst(nb, loc, acc, 0.0);
        Value self = arith::SelectOp::create(nb, loc, inRotary, load(k), zero);
        Value other = load(partner);
        Value cross = arith::SelectOp::create(
            nb, loc, first, arith::NegFOp::create(nb, loc, other), other);
        cross = arith::SelectOp::create(nb, loc, inRotary, cross, zero);
        linalg::YieldOp::create(nb, loc, ValueRange{self, cross});
      });
  term.biasSelf = generic.getResult(0);
  term.biasCross = generic.getResult(1);
}

} // namespace

KeyBiasTerm rotor::attn::lowering::planKeyBiasTerm(ImplicitLocOpBuilder &b,
                                                   SdpaOp op, int64_t tile,
                                                   OpFoldResult tq) {
  KeyBiasTerm term;
  term.acc = op.getPrecision().getAccumulate();
  RopeParamsAttr rope = op.getKeyBiasRopeAttr();
  int64_t r = rope.getRotaryDim();
  term.pairs = r / 2;
  // The verifier admits only static scalings.
  std::optional<SmallVector<double>> freqs = getStaticInverseFrequencies(
      r, rope.getTheta().convertToDouble(), rope.getScaling());
  term.invFreq = arith::ConstantOp::create(
      b, DenseElementsAttr::get(RankedTensorType::get({r / 2}, b.getF64Type()),
                                ArrayRef<double>(*freqs)));
  term.attentionFactor = getRopeAttentionFactor(rope.getScaling());
  SmallVector<double> stepCos, stepSin;
  for (int64_t j = 0; j < tile; ++j)
    for (double f : *freqs) {
      stepCos.push_back(std::cos(double(j) * f));
      stepSin.push_back(std::sin(double(j) * f));
    }
  // Constants of the accumulate type (f32 or f64), rounded once here.
  auto table = [&](ArrayRef<int64_t> shape, ArrayRef<double> values) -> Value {
    SmallVector<APFloat> rounded;
    for (double v : values) {
      APFloat x(v);
      bool lost;
      x.convert(cast<FloatType>(term.acc).getFloatSemantics(),
                APFloat::rmNearestTiesToEven, &lost);
      rounded.push_back(x);
    }
    return arith::ConstantOp::create(
        b, DenseElementsAttr::get(RankedTensorType::get(shape, term.acc),
                                  rounded));
  };
  auto stepTable = [&](ArrayRef<double> values) {
    return table({tile, r / 2}, values);
  };
  term.stepCos = stepTable(stepCos);
  term.stepSin = stepTable(stepSin);
  // The same per dim [tile, D]: d's pair is d mod R/2 (half-split) or
  // d floordiv 2 (interleaved); past R, 0.
  int64_t d = cast<RankedTensorType>(op.getKeyBias().getType()).getDimSize(1);
  bool halfSplit = rope.getLayout() == RopeLayout::HalfSplit;
  SmallVector<double> cosPerDim, sinPerDim;
  for (int64_t j = 0; j < tile; ++j)
    for (int64_t k = 0; k < d; ++k) {
      int64_t pair = halfSplit ? k % (r / 2) : k / 2;
      bool rotated = k < r;
      cosPerDim.push_back(rotated ? stepCos[j * (r / 2) + pair] : 0.0);
      sinPerDim.push_back(rotated ? stepSin[j * (r / 2) + pair] : 0.0);
    }
  term.stepCosPerDim = table({tile, d}, cosPerDim);
  term.stepSinPerDim = table({tile, d}, sinPerDim);
  std::tie(term.a, term.b) = coefficients(b, op, tq, term.acc);
  planPerDim(b, op, term);
  return term;
}

std::pair<Value, Value> rotor::attn::lowering::keyBiasAnchors(
    ImplicitLocOpBuilder &b, const KeyBiasTerm &term, OpFoldResult rows,
    function_ref<Value(OpBuilder &, Location, Value)> firstKey) {
  Type acc = term.acc, f64 = b.getF64Type();
  SmallVector<OpFoldResult> shape = {rows, b.getIndexAttr(term.pairs)};
  Value cosInit = emptyTensor(b, shape, acc);
  Value sinInit = emptyTensor(b, shape, acc);
  AffineMap id2 = b.getMultiDimIdentityMap(2);
  double factor = term.attentionFactor;
  auto generic = linalg::GenericOp::create(
      b, TypeRange{cosInit.getType(), sinInit.getType()}, ValueRange{},
      ValueRange{cosInit, sinInit}, ArrayRef<AffineMap>{id2, id2},
      iterators(2), [&](OpBuilder &bb, Location loc, ValueRange) {
        Value row = linalg::IndexOp::create(bb, loc, 0);
        Value i = linalg::IndexOp::create(bb, loc, 1);
        Value pos = arith::SIToFPOp::create(
            bb, loc, f64,
            arith::IndexCastOp::create(bb, loc, bb.getI64Type(),
                                       firstKey(bb, loc, row)));
        Value freq =
            tensor::ExtractOp::create(bb, loc, term.invFreq, ValueRange{i});
        Value phi =
            castFloat(bb, loc, reducedRopeAngle(bb, loc, pos, freq), acc);
        Value scale = floatConst(bb, loc, acc, factor);
        auto [cosPhi, sinPhi] = ropeCosSin(bb, loc, phi);
        Value cosv = arith::MulFOp::create(bb, loc, cosPhi, scale);
        Value sinv = arith::MulFOp::create(bb, loc, sinPhi, scale);
        linalg::YieldOp::create(bb, loc, ValueRange{cosv, sinv});
      });
  return {generic.getResult(0), generic.getResult(1)};
}

std::pair<Value, Value> rotor::attn::lowering::addAngles(OpBuilder &b,
                                                        Location loc,
                                                        Value cosA, Value sinA,
                                                        Value cosB,
                                                        Value sinB) {
  auto mul = [&](Value x, Value y) {
    return arith::MulFOp::create(b, loc, x, y).getResult();
  };
  Value cosv = arith::SubFOp::create(b, loc, mul(cosA, cosB), mul(sinA, sinB));
  Value sinv = arith::AddFOp::create(b, loc, mul(sinA, cosB), mul(cosA, sinB));
  return {cosv, sinv};
}
