//===- LowerSdpaSplitKV.cpp - Decode attn.sdpa as split-KV attention ------===//
//
// With one query row (a decode step) the KV length is the only large
// dimension, and the online-softmax loop over KV tiles (LowerSdpa.cpp) runs
// its tiles one after another: on a GPU that is a dozen kernel launches per
// 64 keys. Flash-decoding instead treats the tiles as a parallel dimension
// s: every tile computes its own max m_s, sum l_s and unnormalized output
// acc_s at once, and one combine rescales them by exp2(m_s - max_s m_s).
// The result is a fixed handful of loop nests whatever the KV length, each
// parallel over heads x tiles (x head dims), and the scores live in the
// exp2 domain as in the tiled form. Keys are read with a clamped index
// inside the bodies (j = s * tile + jj may run past the last key of the
// last tile; those scores are masked), so nothing is padded or copied.
//
// Emits linalg.generic steps over all KV tiles at once, then a combine.
//
//===----------------------------------------------------------------------===//

#include "SdpaUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <limits>
#include <numbers>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// The split-KV form of one single-row SDPA: what its shapes and tile fix,
/// the host values every step reads (set by emitBounds), and the index
/// arithmetic the steps' bodies share.
struct SplitKVPlan {
  SplitKVPlan(SdpaOp op, int64_t tile)
      : op(op), tile(tile), ctx(op.getContext()),
        compute(op.getPrecision().getCompute()),
        acc(op.getPrecision().getAccumulate()),
        storage(getElementTypeOrSelf(op.getType())), q(op.getQuery()),
        k(op.getKey()), v(op.getValue()),
        hq(cast<RankedTensorType>(q.getType()).getDimSize(1)),
        hkv(cast<RankedTensorType>(k.getType()).getDimSize(1)),
        dv(cast<RankedTensorType>(v.getType()).getDimSize(2)), group(hq / hkv),
        scale2(op.getEffectiveScale() * std::numbers::log2e) {}

  SdpaOp op;
  /// Keys per tile.
  int64_t tile;
  MLIRContext *ctx;
  Type compute, acc, storage;
  Value q, k, v;
  int64_t hq, hkv, dv, group;
  /// The softmax scale times log2(e): scores live in the exp2 domain.
  double scale2;

  /// Keys j < bound are visible; tiles (the parallel dim s) cover them,
  /// and lastKey is the last visible one.
  Value bound, splits, lastKey;

  AffineMap map(ArrayRef<AffineExpr> exprs, unsigned dims) const {
    return AffineMap::get(dims, 0, exprs, ctx);
  }
  /// The key index of tile dim `sDim`, in-tile dim `jDim`.
  Value keyIndex(OpBuilder &bb, Location bl, unsigned sDim,
                 unsigned jDim) const {
    Value sIdx = linalg::IndexOp::create(bb, bl, sDim);
    Value jj = linalg::IndexOp::create(bb, bl, jDim);
    return arith::AddIOp::create(
        bb, bl,
        arith::MulIOp::create(bb, bl, sIdx,
                              arith::ConstantIndexOp::create(bb, bl, tile)),
        jj);
  }
  Value kvHeadOf(OpBuilder &bb, Location bl, unsigned hDim) const {
    return arith::DivUIOp::create(
        bb, bl, linalg::IndexOp::create(bb, bl, hDim),
        arith::ConstantIndexOp::create(bb, bl, group));
  }
  /// Element e of key/value row j = s * tile + jj (clamped to the last
  /// visible key) of the KV head of query head dim 1.
  Value loadKV(OpBuilder &bb, Location bl, Value src, unsigned sDim,
               unsigned jDim, unsigned eDim) const {
    Value key =
        arith::MinSIOp::create(bb, bl, keyIndex(bb, bl, sDim, jDim), lastKey);
    return tensor::ExtractOp::create(
        bb, bl, src,
        ValueRange{key, kvHeadOf(bb, bl, 1),
                   linalg::IndexOp::create(bb, bl, eDim)});
  }
};

/// Keys j < bound are visible: all of them, or with causal masking those up
/// to the query's position (positions[0], else the last key). The tiles
/// that cover them are the splits.
void emitBounds(ImplicitLocOpBuilder &b, SplitKVPlan &p) {
  Type i64 = b.getI64Type();
  Value tk = tensor::DimOp::create(b, p.k, 0);
  p.bound = tk;
  if (p.op.getCausal()) {
    Value position;
    if (Value positions = p.op.getPositions()) {
      position = tensor::ExtractOp::create(
          b, positions, ValueRange{arith::ConstantIndexOp::create(b, 0)});
      if (position.getType() != i64)
        position = arith::ExtSIOp::create(b, i64, position);
    } else {
      position = arith::IndexCastOp::create(
          b, i64,
          arith::SubIOp::create(b, tk, arith::ConstantIndexOp::create(b, 1)));
    }
    Value visible = arith::AddIOp::create(
        b, position, arith::ConstantOp::create(b, b.getI64IntegerAttr(1)));
    visible = arith::MaxSIOp::create(
        b, visible, arith::ConstantOp::create(b, b.getI64IntegerAttr(0)));
    p.bound = arith::MinSIOp::create(
        b, arith::IndexCastOp::create(b, b.getIndexType(), visible), tk);
  }
  Value tileSize = arith::ConstantIndexOp::create(b, p.tile);
  p.splits = arith::CeilDivSIOp::create(b, p.bound, tileSize);
  p.lastKey =
      arith::SubIOp::create(b, p.bound, arith::ConstantIndexOp::create(b, 1));
}

/// The key-bias term (attn.sdpa) added to the scores [1, Hq, splits, tile]:
/// dims (t, h, s, jj, i) with the pairs i reduced, each tile's angles by
/// angle addition from its first key.
Value addKeyBiasTerm(ImplicitLocOpBuilder &b, const SplitKVPlan &p,
                     const KeyBiasTerm &term, Value scores) {
  int64_t tile = p.tile;
  auto [anchorCos, anchorSin] = keyBiasAnchors(
      b, term, p.splits, [&](OpBuilder &bb, Location loc, Value s) -> Value {
        return arith::MulIOp::create(
            bb, loc, s, arith::ConstantIndexOp::create(bb, loc, tile));
      });
  AffineExpr d0, d1, d2, d3, d4;
  bindDims(p.ctx, d0, d1, d2, d3, d4);
  return linalg::GenericOp::create(
             b, scores.getType(),
             ValueRange{term.a, term.b, anchorCos, anchorSin, term.stepCos,
                        term.stepSin},
             scores,
             ArrayRef<AffineMap>{p.map({d0, d1, d4}, 5), p.map({d0, d1, d4}, 5),
                                 p.map({d2, d4}, 5), p.map({d2, d4}, 5),
                                 p.map({d3, d4}, 5), p.map({d3, d4}, 5),
                                 p.map({d0, d1, d2, d3}, 5)},
             iterators(4, 1),
             [&](OpBuilder &bb, Location loc, ValueRange args) {
               auto [cosv, sinv] =
                   addAngles(bb, loc, args[2], args[3], args[4], args[5]);
               Value value = arith::AddFOp::create(
                   bb, loc, arith::MulFOp::create(bb, loc, args[0], cosv),
                   arith::MulFOp::create(bb, loc, args[1], sinv));
               yieldValue(bb, loc,
                          arith::AddFOp::create(bb, loc, args[6], value));
             })
      .getResult(0);
}

/// Steps 1 and 2: the scores of every key, dims (t, h, s, jj, e) with e
/// reduced, then into the exp2 domain with keys past the bound masked.
Value maskedScores(ImplicitLocOpBuilder &b, const SplitKVPlan &p,
                   const KeyBiasTerm *keyBias) {
  AffineExpr d0, d1, d2, d3, d4;
  bindDims(p.ctx, d0, d1, d2, d3, d4);
  double negInf = -std::numeric_limits<double>::infinity();
  SmallVector<OpFoldResult> scoreShape = {b.getIndexAttr(1),
                                          b.getIndexAttr(p.hq), p.splits,
                                          b.getIndexAttr(p.tile)};
  Value scores =
      linalg::GenericOp::create(
          b,
          RankedTensorType::get({1, p.hq, ShapedType::kDynamic, p.tile}, p.acc),
          ValueRange{p.q}, filled(b, scoreShape, p.acc, 0.0),
          ArrayRef<AffineMap>{p.map({d0, d1, d4}, 5),
                              p.map({d0, d1, d2, d3}, 5)},
          iterators(4, 1),
          [&](OpBuilder &bb, Location bl, ValueRange args) {
            Value kv = p.loadKV(bb, bl, p.k, /*sDim=*/2, /*jDim=*/3,
                                /*eDim=*/4);
            // q is in the compute precision already
            // (queryInComputePrecision).
            Value y =
                castFloat(bb, bl, castFloat(bb, bl, kv, p.compute), p.acc);
            yieldValue(bb, bl,
                       arith::AddFOp::create(
                           bb, bl, args[1],
                           arith::MulFOp::create(
                               bb, bl, castFloat(bb, bl, args[0], p.acc), y)));
          })
          .getResult(0);
  if (keyBias)
    scores = addKeyBiasTerm(b, p, *keyBias, scores);
  return elementwise(
      b, scores, ValueRange{scores}, p.acc,
      [&](OpBuilder &bb, Location bl, ValueRange args) -> Value {
        Value scaled = arith::MulFOp::create(
            bb, bl, args[0], floatConst(bb, bl, p.acc, p.scale2));
        Value hidden = arith::CmpIOp::create(bb, bl, arith::CmpIPredicate::sge,
                                             p.keyIndex(bb, bl, 2, 3), p.bound);
        return arith::SelectOp::create(
            bb, bl, hidden, floatConst(bb, bl, p.acc, negInf), scaled);
      });
}

/// Step 3's results, per tile: max m_s, probabilities, sum l_s.
struct TileSoftmax {
  Value max, probs, sum;
};

TileSoftmax tileSoftmax(ImplicitLocOpBuilder &b, const SplitKVPlan &p,
                        Value masked) {
  AffineExpr d0, d1, d2, d3;
  bindDims(p.ctx, d0, d1, d2, d3);
  double negInf = -std::numeric_limits<double>::infinity();
  SmallVector<OpFoldResult> tileRowShape = {b.getIndexAttr(1),
                                            b.getIndexAttr(p.hq), p.splits};
  TileSoftmax t;
  t.max = reduceInnermost(
      b, masked, filled(b, tileRowShape, p.acc, negInf),
      [&](OpBuilder &bb, Location bl, Value x, Value y) {
        return arith::MaximumFOp::create(bb, bl, x, y).getResult();
      });
  t.probs =
      linalg::GenericOp::create(
          b, masked.getType(), ValueRange{masked, t.max},
          emptyLike(b, masked, p.acc),
          ArrayRef<AffineMap>{p.map({d0, d1, d2, d3}, 4),
                              p.map({d0, d1, d2}, 4),
                              p.map({d0, d1, d2, d3}, 4)},
          iterators(4),
          [&](OpBuilder &bb, Location bl, ValueRange args) {
            yieldValue(
                bb, bl,
                math::Exp2Op::create(
                    bb, bl,
                    arith::SubFOp::create(bb, bl, args[0],
                                          finiteMax(bb, bl, args[1], p.acc))));
          })
          .getResult(0);
  t.sum =
      reduceInnermost(b, t.probs, filled(b, tileRowShape, p.acc, 0.0),
                      [&](OpBuilder &bb, Location bl, Value x, Value y) {
                        return arith::AddFOp::create(bb, bl, x, y).getResult();
                      });
  return t;
}

/// Step 4, per tile: acc_s[e] = sum_jj p * v; dims (t, h, s, e, jj).
Value tileOutputs(ImplicitLocOpBuilder &b, const SplitKVPlan &p, Value probs) {
  AffineExpr d0, d1, d2, d3, d4;
  bindDims(p.ctx, d0, d1, d2, d3, d4);
  SmallVector<OpFoldResult> tileOutShape = {
      b.getIndexAttr(1), b.getIndexAttr(p.hq), p.splits, b.getIndexAttr(p.dv)};
  return linalg::GenericOp::create(
             b,
             RankedTensorType::get({1, p.hq, ShapedType::kDynamic, p.dv},
                                   p.acc),
             probs, filled(b, tileOutShape, p.acc, 0.0),
             ArrayRef<AffineMap>{p.map({d0, d1, d2, d4}, 5),
                                 p.map({d0, d1, d2, d3}, 5)},
             iterators(4, 1),
             [&](OpBuilder &bb, Location bl, ValueRange args) {
               Value value = p.loadKV(bb, bl, p.v, /*sDim=*/2, /*jDim=*/4,
                                      /*eDim=*/3);
               Value y = castFloat(bb, bl, castFloat(bb, bl, value, p.compute),
                                   p.acc);
               Value prob = probabilityForValues(bb, bl, args[0], p.op);
               yieldValue(bb, bl,
                          arith::AddFOp::create(
                              bb, bl, args[1],
                              arith::MulFOp::create(bb, bl, prob, y)));
             })
      .getResult(0);
}

/// Step 5, the combine: M = max_s m_s, w_s = exp2(m_s - M), L = sum_s w_s
/// l_s, o = sum_s w_s acc_s / L. (Not one definition with the workgroup
/// kernel's combine, SdpaKernel.cpp: this one clamps m_s with finiteMax as
/// well, and multiplies w_s first.)
Value combineTiles(ImplicitLocOpBuilder &b, const SplitKVPlan &p,
                   const TileSoftmax &tiles, Value tileOut) {
  AffineExpr d0, d1, d2, d3;
  bindDims(p.ctx, d0, d1, d2, d3);
  double negInf = -std::numeric_limits<double>::infinity();
  SmallVector<OpFoldResult> rowShape = {b.getIndexAttr(1),
                                        b.getIndexAttr(p.hq)};
  Type acc = p.acc;
  Value rowMax = reduceInnermost(
      b, tiles.max, filled(b, rowShape, acc, negInf),
      [&](OpBuilder &bb, Location bl, Value x, Value y) {
        return arith::MaximumFOp::create(bb, bl, x, y).getResult();
      });
  // w_s + partial, the step of both weighted sums.
  auto weightedStep = [](OpBuilder &bb, Location bl, ValueRange args) {
    yieldValue(
        bb, bl,
        arith::AddFOp::create(bb, bl, args[2],
                              arith::MulFOp::create(bb, bl, args[0], args[1])));
  };
  Value weights =
      linalg::GenericOp::create(
          b, RankedTensorType::get({1, p.hq, ShapedType::kDynamic}, acc),
          ValueRange{tiles.max, rowMax}, emptyLike(b, tiles.max, acc),
          ArrayRef<AffineMap>{p.map({d0, d1, d2}, 3), p.map({d0, d1}, 3),
                              p.map({d0, d1, d2}, 3)},
          iterators(3),
          [&](OpBuilder &bb, Location bl, ValueRange args) {
            yieldValue(bb, bl,
                       math::Exp2Op::create(
                           bb, bl,
                           arith::SubFOp::create(
                               bb, bl, finiteMax(bb, bl, args[0], acc),
                               finiteMax(bb, bl, args[1], acc))));
          })
          .getResult(0);
  Value rowSum =
      linalg::GenericOp::create(
          b, RankedTensorType::get({1, p.hq}, acc),
          ValueRange{weights, tiles.sum}, filled(b, rowShape, acc, 0.0),
          ArrayRef<AffineMap>{p.map({d0, d1, d2}, 3), p.map({d0, d1, d2}, 3),
                              p.map({d0, d1}, 3)},
          iterators(2, 1), weightedStep)
          .getResult(0);
  SmallVector<OpFoldResult> outShape = {b.getIndexAttr(1), b.getIndexAttr(p.hq),
                                        b.getIndexAttr(p.dv)};
  Value outSum =
      linalg::GenericOp::create(b, RankedTensorType::get({1, p.hq, p.dv}, acc),
                                ValueRange{weights, tileOut},
                                filled(b, outShape, acc, 0.0),
                                ArrayRef<AffineMap>{p.map({d0, d1, d3}, 4),
                                                    p.map({d0, d1, d3, d2}, 4),
                                                    p.map({d0, d1, d2}, 4)},
                                iterators(3, 1), weightedStep)
          .getResult(0);
  return normalizeAttention(b, outSum, rowSum, acc, p.storage);
}

struct LowerDecodeSdpaAsSplitKV : OpRewritePattern<SdpaOp> {
  LowerDecodeSdpaAsSplitKV(MLIRContext *ctx, int64_t tile, bool withoutConfig)
      // Preferred over the tiled loop wherever it applies.
      : OpRewritePattern(ctx, /*benefit=*/3), defaultTile(tile),
        withoutConfig(withoutConfig) {}

  LogicalResult matchAndRewrite(SdpaOp op,
                                PatternRewriter &rewriter) const override {
    // Without a config, every single-row SDPA (the option that populates
    // this pattern asked for it); with one, what it names.
    KernelConfigAttr config = getKernelConfig(op);
    if (config ? config.getStrategy() != KernelStrategy::SplitKV
               : !withoutConfig)
      return rewriter.notifyMatchFailure(op, "split-KV was not asked for");
    auto qType = cast<RankedTensorType>(op.getQuery().getType());
    if (qType.getDimSize(0) != 1)
      return rewriter.notifyMatchFailure(op, "not a single query row");

    SplitKVPlan p(op, config ? config.getKeys() : defaultTile);
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    p.q = queryInComputePrecision(b, p.q, p.compute);
    emitBounds(b, p);
    std::optional<KeyBiasTerm> keyBias;
    if (op.getKeyBias())
      keyBias = planKeyBiasTerm(b, op, p.tile, b.getIndexAttr(1));
    Value masked = maskedScores(b, p, keyBias ? &*keyBias : nullptr);
    TileSoftmax tiles = tileSoftmax(b, p, masked);
    Value tileOut = tileOutputs(b, p, tiles.probs);
    rewriter.replaceOp(op, combineTiles(b, p, tiles, tileOut));
    return success();
  }

  /// Keys per tile of an op without an attn.kernel config.
  int64_t defaultTile;
  /// Whether an op without a config is lowered this way.
  bool withoutConfig;
};

} // namespace

void rotor::attn::lowering::populateSplitKVDecodeSdpaPatterns(
    RewritePatternSet &patterns, int64_t kvTileSize, bool withoutConfig) {
  patterns.add<LowerDecodeSdpaAsSplitKV>(patterns.getContext(), kvTileSize,
                                         withoutConfig);
}
