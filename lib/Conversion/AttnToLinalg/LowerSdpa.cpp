//===- LowerSdpa.cpp - attn.sdpa to an online-softmax loop over KV tiles --===//
//
// The loop-level form shared by the host and GPU paths (IREE's
// online_attention decomposition and FlashAttention-2's order): an scf.for
// over tiles of keys carries the running row max m, row sum l and
// unnormalized output acc, so memory is O(Tq * Hq * tile), never
// O(Tq * Tk). Scores live in the exp2 domain (log2(e) folded into the
// scale). With causal masking the loop stops at the last key any query can
// see, so fully masked tiles are never visited. GQA reads KV head
// h floordiv (Hq / Hkv) through the indexing map; K and V are never
// repeated in memory.
//
// Emits an scf.for over KV tiles of linalg.generic/linalg.fill steps.
//
//===----------------------------------------------------------------------===//

#include "SdpaUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <limits>
#include <numbers>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

struct LowerSdpa : OpRewritePattern<SdpaOp> {
  LowerSdpa(MLIRContext *ctx, int64_t tile)
      : OpRewritePattern(ctx), defaultTile(tile) {}

  LogicalResult matchAndRewrite(SdpaOp op,
                                PatternRewriter &rewriter) const override {
    // The loop form of an op without a config, or whose config names it.
    KernelConfigAttr config = getKernelConfig(op);
    if (config && config.getStrategy() != KernelStrategy::Loops)
      return rewriter.notifyMatchFailure(op, "its kernel config is not loops");
    const int64_t tile =
        config && config.getKeys() ? config.getKeys() : defaultTile;
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    Type compute = op.getPrecision().getCompute();
    Type acc = op.getPrecision().getAccumulate();
    Type i64 = b.getI64Type();
    Type storage = cast<RankedTensorType>(op.getType()).getElementType();
    Value q = op.getQuery(), k = op.getKey(), v = op.getValue();
    auto qType = cast<RankedTensorType>(q.getType());
    auto kType = cast<RankedTensorType>(k.getType());
    auto vType = cast<RankedTensorType>(v.getType());
    int64_t hq = qType.getDimSize(1), hkv = kType.getDimSize(1);
    int64_t dHead = qType.getDimSize(2), dv = vType.getDimSize(2);
    int64_t group = hq / hkv;
    double scale2 = op.getEffectiveScale() * std::numbers::log2e;
    double negInf = -std::numeric_limits<double>::infinity();

    OpFoldResult tq = tensor::getMixedSize(b, b.getLoc(), q, 0);
    Value tk = tensor::DimOp::create(b, k, 0);
    auto idx = [&](int64_t n) {
      return arith::ConstantIndexOp::create(b, n).getResult();
    };

    // Absolute position of each query, as i64.
    Value queryPositions;
    {
      Value init = emptyTensor(b, {tq}, i64);
      if (Value positions = op.getPositions()) {
        queryPositions = elementwise(
            b, init, positions, i64,
            [&](OpBuilder &nb, Location loc, ValueRange args) -> Value {
              if (args[0].getType() == i64)
                return args[0];
              return arith::ExtSIOp::create(nb, loc, i64, args[0]);
            });
      } else {
        Value tqValue = getValueOrCreateConstantIndexOp(b, b.getLoc(), tq);
        Value shift = arith::SubIOp::create(b, tk, tqValue);
        queryPositions = elementwise(
            b, init, ValueRange{}, i64,
            [&](OpBuilder &nb, Location loc, ValueRange) -> Value {
              Value t = linalg::IndexOp::create(nb, loc, 0);
              return arith::IndexCastOp::create(
                  nb, loc, i64, arith::AddIOp::create(nb, loc, t, shift));
            });
      }
    }

    // Keys past the largest query position are masked for every query.
    Value bound = tk;
    if (op.getCausal()) {
      Value lowest = arith::ConstantOp::create(
          b, b.getI64IntegerAttr(std::numeric_limits<int64_t>::min()));
      Value init =
          linalg::FillOp::create(
              b, lowest, tensor::EmptyOp::create(b, ArrayRef<int64_t>{}, i64).getResult())
              .getResult(0);
      Value maxPos =
          linalg::GenericOp::create(
              b, init.getType(), queryPositions, init,
              ArrayRef<AffineMap>{b.getMultiDimIdentityMap(1),
                                  AffineMap::get(1, 0, {}, ctx)},
              iterators(0, 1),
              [&](OpBuilder &nb, Location loc, ValueRange args) {
                yieldValue(
                    nb, loc, arith::MaxSIOp::create(nb, loc, args[0], args[1]));
              })
              .getResult(0);
      Value visible = arith::AddIOp::create(
          b, tensor::ExtractOp::create(b, maxPos, ValueRange{}),
          arith::ConstantOp::create(b, b.getI64IntegerAttr(1)));
      visible = arith::MaxSIOp::create(
          b, visible, arith::ConstantOp::create(b, b.getI64IntegerAttr(0)));
      bound = arith::MinSIOp::create(
          b, arith::IndexCastOp::create(b, b.getIndexType(), visible), tk);
    }

    SmallVector<OpFoldResult> rowShape = {tq, b.getIndexAttr(hq)};
    SmallVector<OpFoldResult> outShape = {tq, b.getIndexAttr(hq),
                                          b.getIndexAttr(dv)};
    Value m0 = filled(b, rowShape, acc, negInf);
    Value l0 = filled(b, rowShape, acc, 0.0);
    Value acc0 = filled(b, outShape, acc, 0.0);

    AffineExpr t, h, j, e;
    bindDims(ctx, t, h, j, e);
    AffineExpr kvHead = h.floorDiv(group);
    auto map = [&](ArrayRef<AffineExpr> exprs, unsigned dims) {
      return AffineMap::get(dims, 0, exprs, ctx);
    };

    auto loop = scf::ForOp::create(
        b, idx(0), bound, idx(tile), ValueRange{m0, l0, acc0},
        [&](OpBuilder &lb, Location loc, Value j0, ValueRange carried) {
          ImplicitLocOpBuilder nb(loc, lb);
          Value m = carried[0], l = carried[1], accum = carried[2];
          Value size = arith::MinSIOp::create(
              nb, arith::ConstantIndexOp::create(nb, tile),
              arith::SubIOp::create(nb, bound, j0));
          auto tileOf = [&](Value src, int64_t width) {
            SmallVector<OpFoldResult> offsets = {j0, nb.getIndexAttr(0),
                                                 nb.getIndexAttr(0)};
            SmallVector<OpFoldResult> sizes = {size, nb.getIndexAttr(hkv),
                                               nb.getIndexAttr(width)};
            SmallVector<OpFoldResult> strides(3, nb.getIndexAttr(1));
            return tensor::ExtractSliceOp::create(nb, src, offsets, sizes,
                                                  strides)
                .getResult();
          };
          Value kTile = tileOf(k, dHead), vTile = tileOf(v, dv);

          // Scores s[t, h, j] = q[t, h, :] . k[j, h / group, :].
          SmallVector<OpFoldResult> scoreShape = {tq, nb.getIndexAttr(hq),
                                                  size};
          Value s0 = filled(nb, scoreShape, acc, 0.0);
          Value scores =
              linalg::GenericOp::create(
                  nb, s0.getType(), ValueRange{q, kTile}, s0,
                  ArrayRef<AffineMap>{map({t, h, e}, 4), map({j, kvHead, e}, 4),
                                      map({t, h, j}, 4)},
                  iterators(3, 1),
                  [&](OpBuilder &bb, Location bl, ValueRange args) {
                    yieldValue(bb, bl,
                               multiplyAccumulate(bb, bl, args[2], args[0],
                                                  args[1], compute, acc));
                  })
                  .getResult(0);

          // Scale into the exp2 domain and mask keys after the query.
          bool causal = op.getCausal();
          Value j0i64 = arith::IndexCastOp::create(nb, i64, j0);
          Value masked =
              linalg::GenericOp::create(
                  nb, scores.getType(), ValueRange{scores, queryPositions},
                  tensor::EmptyOp::create(nb, scoreShape, acc).getResult(),
                  ArrayRef<AffineMap>{map({t, h, j}, 3), map({t}, 3),
                                      map({t, h, j}, 3)},
                  iterators(3),
                  [&](OpBuilder &bb, Location bl, ValueRange args) {
                    Value scaled = arith::MulFOp::create(
                        bb, bl, args[0], floatConst(bb, bl, acc, scale2));
                    if (causal) {
                      Value key = arith::AddIOp::create(
                          bb, bl, j0i64,
                          arith::IndexCastOp::create(
                              bb, bl, i64, linalg::IndexOp::create(bb, bl, 2)));
                      Value hidden = arith::CmpIOp::create(
                          bb, bl, arith::CmpIPredicate::sgt, key, args[1]);
                      scaled = arith::SelectOp::create(
                          bb, bl, hidden, floatConst(bb, bl, acc, negInf),
                          scaled);
                    }
                    yieldValue(bb, bl, scaled);
                  })
                  .getResult(0);

          // New running max.
          Value mNew = reduceInnermost(
              nb, masked, m, [&](OpBuilder &bb, Location bl, Value x, Value y) {
                return arith::MaximumFOp::create(bb, bl, x, y).getResult();
              });

          Value probs =
              linalg::GenericOp::create(
                  nb, masked.getType(), ValueRange{masked, mNew},
                  tensor::EmptyOp::create(nb, scoreShape, acc).getResult(),
                  ArrayRef<AffineMap>{map({t, h, j}, 3), map({t, h}, 3),
                                      map({t, h, j}, 3)},
                  iterators(3),
                  [&](OpBuilder &bb, Location bl, ValueRange args) {
                    Value diff = arith::SubFOp::create(bb, bl, args[0],
                                                       finiteMax(bb, bl, args[1], acc));
                    yieldValue(bb, bl,
                                            math::Exp2Op::create(bb, bl, diff)
                                                .getResult());
                  })
                  .getResult(0);

          // Correction of what was accumulated under the old max.
          Value alpha = elementwise(
              nb, m, ValueRange{m, mNew}, acc,
              [&](OpBuilder &bb, Location bl, ValueRange args) -> Value {
                return math::Exp2Op::create(
                    bb, bl,
                    arith::SubFOp::create(bb, bl, args[0],
                                          finiteMax(bb, bl, args[1], acc)));
              });
          Value lScaled = elementwise(
              nb, l, ValueRange{l, alpha}, acc,
              [&](OpBuilder &bb, Location bl, ValueRange args) -> Value {
                return arith::MulFOp::create(bb, bl, args[0], args[1]);
              });
          Value lNew = reduceInnermost(
              nb, probs, lScaled,
              [&](OpBuilder &bb, Location bl, Value x, Value y) {
                return arith::AddFOp::create(bb, bl, x, y).getResult();
              });

          Value accScaled =
              linalg::GenericOp::create(
                  nb, accum.getType(), ValueRange{accum, alpha},
                  tensor::EmptyOp::create(nb, outShape, acc).getResult(),
                  ArrayRef<AffineMap>{map({t, h, j}, 3), map({t, h}, 3),
                                      map({t, h, j}, 3)},
                  iterators(3),
                  [&](OpBuilder &bb, Location bl, ValueRange args) {
                    yieldValue(
                        bb, bl, arith::MulFOp::create(bb, bl, args[0], args[1]));
                  })
                  .getResult(0);
          // acc[t, h, e] += sum_j p[t, h, j] * v[j, h / group, e]; loop
          // order (t, h, e, j) with j the reduction.
          AffineExpr t4 = t, h4 = h, e4 = j, j4 = e;
          Value accNew =
              linalg::GenericOp::create(
                  nb, accum.getType(), ValueRange{probs, vTile}, accScaled,
                  ArrayRef<AffineMap>{map({t4, h4, j4}, 4),
                                      map({j4, h4.floorDiv(group), e4}, 4),
                                      map({t4, h4, e4}, 4)},
                  iterators(3, 1),
                  [&](OpBuilder &bb, Location bl, ValueRange args) {
                    Value y = castFloat(bb, bl,
                                        castFloat(bb, bl, args[1], compute), acc);
                    yieldValue(
                        bb, bl,
                        arith::AddFOp::create(
                            bb, bl, args[2],
                            arith::MulFOp::create(bb, bl, args[0], y)));
                  })
                  .getResult(0);
          scf::YieldOp::create(nb, ValueRange{mNew, lNew, accNew});
        });

    Value result = normalizeAttention(b, loop.getResult(2), loop.getResult(1),
                                      acc, storage);
    rewriter.replaceOp(op, result);
    return success();
  }

  /// Keys per tile of an op without an attn.kernel config.
  int64_t defaultTile;
};

} // namespace

void rotor::attn::lowering::populateSdpaLoweringPatterns(
    RewritePatternSet &patterns, int64_t kvTileSize) {
  patterns.add<LowerSdpa>(patterns.getContext(), kvTileSize);
}
