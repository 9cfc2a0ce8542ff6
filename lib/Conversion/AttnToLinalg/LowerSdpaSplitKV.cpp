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
    const int64_t tile = config ? config.getKeys() : defaultTile;

    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    Type compute = op.getPrecision().getCompute();
    Type acc = op.getPrecision().getAccumulate();
    Type i64 = b.getI64Type();
    Type storage = cast<RankedTensorType>(op.getType()).getElementType();
    Value q = op.getQuery(), k = op.getKey(), v = op.getValue();
    auto kType = cast<RankedTensorType>(k.getType());
    auto vType = cast<RankedTensorType>(v.getType());
    int64_t hq = qType.getDimSize(1), hkv = kType.getDimSize(1);
    int64_t dv = vType.getDimSize(2);
    int64_t group = hq / hkv;
    double scale2 = op.getEffectiveScale() * std::numbers::log2e;
    double negInf = -std::numeric_limits<double>::infinity();

    // Keys j < bound are visible: all of them, or with causal masking those
    // up to the query's position (positions[0], else the last key).
    Value tk = tensor::DimOp::create(b, k, 0);
    Value bound = tk;
    if (op.getCausal()) {
      Value position;
      if (Value positions = op.getPositions()) {
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
      bound = arith::MinSIOp::create(
          b, arith::IndexCastOp::create(b, b.getIndexType(), visible), tk);
    }
    Value tileSize = arith::ConstantIndexOp::create(b, tile);
    Value splits = arith::CeilDivSIOp::create(b, bound, tileSize);
    Value lastKey =
        arith::SubIOp::create(b, bound, arith::ConstantIndexOp::create(b, 1));

    OpFoldResult one = b.getIndexAttr(1), heads = b.getIndexAttr(hq);
    OpFoldResult s = splits, ts = b.getIndexAttr(tile), dvSize = b.getIndexAttr(dv);
    auto map = [&](ArrayRef<AffineExpr> exprs, unsigned dims) {
      return AffineMap::get(dims, 0, exprs, ctx);
    };
    AffineExpr d0, d1, d2, d3, d4;
    bindDims(ctx, d0, d1, d2, d3, d4);

    // The key index of tile dim `sDim`, in-tile dim `jDim`, and the same
    // index clamped to a key that exists.
    auto keyIndex = [&](OpBuilder &bb, Location bl, unsigned sDim,
                        unsigned jDim) {
      Value sIdx = linalg::IndexOp::create(bb, bl, sDim);
      Value jj = linalg::IndexOp::create(bb, bl, jDim);
      return arith::AddIOp::create(
                 bb, bl,
                 arith::MulIOp::create(
                     bb, bl, sIdx, arith::ConstantIndexOp::create(bb, bl, tile)),
                 jj)
          .getResult();
    };
    auto kvHeadOf = [&](OpBuilder &bb, Location bl, unsigned hDim) {
      return arith::DivUIOp::create(
                 bb, bl, linalg::IndexOp::create(bb, bl, hDim),
                 arith::ConstantIndexOp::create(bb, bl, group))
          .getResult();
    };
    // Element e of key/value row j = s * tile + jj (clamped to the last
    // visible key) of the KV head of query head dim 1.
    auto loadKV = [&](OpBuilder &bb, Location bl, Value src, unsigned sDim,
                      unsigned jDim, unsigned eDim) -> Value {
      Value key = arith::MinSIOp::create(bb, bl, keyIndex(bb, bl, sDim, jDim),
                                         lastKey);
      return tensor::ExtractOp::create(
          bb, bl, src,
          ValueRange{key, kvHeadOf(bb, bl, 1),
                     linalg::IndexOp::create(bb, bl, eDim)});
    };

    // 1. Scores of every key: dims (t, h, s, jj, e), e reduced.
    SmallVector<OpFoldResult> scoreShape = {one, heads, s, ts};
    Value scores =
        linalg::GenericOp::create(
            b, RankedTensorType::get({1, hq, ShapedType::kDynamic, tile}, acc),
            ValueRange{q}, filled(b, scoreShape, acc, 0.0),
            ArrayRef<AffineMap>{map({d0, d1, d4}, 5),
                                map({d0, d1, d2, d3}, 5)},
            iterators(4, 1),
            [&](OpBuilder &bb, Location bl, ValueRange args) {
              Value kv = loadKV(bb, bl, k, /*sDim=*/2, /*jDim=*/3, /*eDim=*/4);
              yieldValue(bb, bl,
                         multiplyAccumulate(bb, bl, args[1], args[0], kv,
                                            compute, acc));
            })
            .getResult(0);

    // 2. Into the exp2 domain, keys past the bound masked.
    Value masked = elementwise(
        b, scores, ValueRange{scores}, acc,
        [&](OpBuilder &bb, Location bl, ValueRange args) -> Value {
          Value scaled = arith::MulFOp::create(
              bb, bl, args[0], floatConst(bb, bl, acc, scale2));
          Value hidden = arith::CmpIOp::create(
              bb, bl, arith::CmpIPredicate::sge, keyIndex(bb, bl, 2, 3), bound);
          return arith::SelectOp::create(bb, bl, hidden,
                                         floatConst(bb, bl, acc, negInf),
                                         scaled);
        });

    // 3. Per tile: max m_s, probabilities, sum l_s.
    SmallVector<OpFoldResult> tileRowShape = {one, heads, s};
    auto tileRowType = RankedTensorType::get({1, hq, ShapedType::kDynamic}, acc);
    Value tileMax = reduceInnermost(
        b, masked, filled(b, tileRowShape, acc, negInf),
        [&](OpBuilder &bb, Location bl, Value x, Value y) {
          return arith::MaximumFOp::create(bb, bl, x, y).getResult();
        });
    Value probs =
        linalg::GenericOp::create(
            b, masked.getType(), ValueRange{masked, tileMax},
            emptyLike(b, masked, acc),
            ArrayRef<AffineMap>{map({d0, d1, d2, d3}, 4), map({d0, d1, d2}, 4),
                                map({d0, d1, d2, d3}, 4)},
            iterators(4),
            [&](OpBuilder &bb, Location bl, ValueRange args) {
              yieldValue(bb, bl,
                         math::Exp2Op::create(
                             bb, bl,
                             arith::SubFOp::create(bb, bl, args[0],
                                                   finiteMax(bb, bl, args[1], acc))));
            })
            .getResult(0);
    Value tileSum = reduceInnermost(
        b, probs, filled(b, tileRowShape, acc, 0.0),
        [&](OpBuilder &bb, Location bl, Value x, Value y) {
          return arith::AddFOp::create(bb, bl, x, y).getResult();
        });

    // 4. Per tile: acc_s[e] = sum_jj p * v; dims (t, h, s, e, jj).
    SmallVector<OpFoldResult> tileOutShape = {one, heads, s, dvSize};
    Value tileOut =
        linalg::GenericOp::create(
            b, RankedTensorType::get({1, hq, ShapedType::kDynamic, dv}, acc),
            probs, filled(b, tileOutShape, acc, 0.0),
            ArrayRef<AffineMap>{map({d0, d1, d2, d4}, 5),
                                map({d0, d1, d2, d3}, 5)},
            iterators(4, 1),
            [&](OpBuilder &bb, Location bl, ValueRange args) {
              Value value =
                  loadKV(bb, bl, v, /*sDim=*/2, /*jDim=*/4, /*eDim=*/3);
              Value y = castFloat(bb, bl, castFloat(bb, bl, value, compute), acc);
              yieldValue(bb, bl,
                         arith::AddFOp::create(
                             bb, bl, args[1],
                             arith::MulFOp::create(bb, bl, args[0], y)));
            })
            .getResult(0);

    // 5. Combine: M = max_s m_s, w_s = exp2(m_s - M), L = sum_s w_s l_s,
    //    o = sum_s w_s acc_s / L.
    SmallVector<OpFoldResult> rowShape = {one, heads};
    auto rowType = RankedTensorType::get({1, hq}, acc);
    Value rowMax = reduceInnermost(
        b, tileMax, filled(b, rowShape, acc, negInf),
        [&](OpBuilder &bb, Location bl, Value x, Value y) {
          return arith::MaximumFOp::create(bb, bl, x, y).getResult();
        });
    Value weights =
        linalg::GenericOp::create(
            b, tileRowType, ValueRange{tileMax, rowMax},
            emptyLike(b, tileMax, acc),
            ArrayRef<AffineMap>{map({d0, d1, d2}, 3), map({d0, d1}, 3),
                                map({d0, d1, d2}, 3)},
            iterators(3),
            [&](OpBuilder &bb, Location bl, ValueRange args) {
              yieldValue(bb, bl,
                         math::Exp2Op::create(
                             bb, bl,
                             arith::SubFOp::create(bb, bl,
                                                   finiteMax(bb, bl, args[0], acc),
                                                   finiteMax(bb, bl, args[1], acc))));
            })
            .getResult(0);
    Value rowSum =
        linalg::GenericOp::create(
            b, rowType, ValueRange{weights, tileSum},
            filled(b, rowShape, acc, 0.0),
            ArrayRef<AffineMap>{map({d0, d1, d2}, 3), map({d0, d1, d2}, 3),
                                map({d0, d1}, 3)},
            iterators(2, 1),
            [&](OpBuilder &bb, Location bl, ValueRange args) {
              yieldValue(bb, bl,
                         arith::AddFOp::create(
                             bb, bl, args[2],
                             arith::MulFOp::create(bb, bl, args[0], args[1])));
            })
            .getResult(0);
    SmallVector<OpFoldResult> outShape = {one, heads, dvSize};
    Value outSum =
        linalg::GenericOp::create(
            b, RankedTensorType::get({1, hq, dv}, acc),
            ValueRange{weights, tileOut}, filled(b, outShape, acc, 0.0),
            ArrayRef<AffineMap>{map({d0, d1, d3}, 4), map({d0, d1, d3, d2}, 4),
                                map({d0, d1, d2}, 4)},
            iterators(3, 1),
            [&](OpBuilder &bb, Location bl, ValueRange args) {
              yieldValue(bb, bl,
                         arith::AddFOp::create(
                             bb, bl, args[2],
                             arith::MulFOp::create(bb, bl, args[0], args[1])));
            })
            .getResult(0);
    Value result = normalizeAttention(b, outSum, rowSum, acc, storage);
    rewriter.replaceOp(op, result);
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
