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
// On the host the loop runs per block of queries and KV head (an
// scf.forall), and a decode step's per range of keys (every KV head), whose
// states one combine merges (flash-decoding, with the fast tile loop). A
// block's tiles that all its queries see run in a loop of their own without
// the causal mask's compare and select per score.
//
// Emits an scf.for over KV tiles of linalg.generic/linalg.fill steps.
//
//===----------------------------------------------------------------------===//

#include "SdpaUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <limits>
#include <numbers>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

/// What every phase of one attn.sdpa loop reads: the operands (q [Tq, Hq, D],
/// k [Tk, Hkv, D], v [Tk, Hkv, Dv]), their sizes and element types, and the
/// dims (t, h, j, e) the indexing maps are written in.
struct SdpaLoop {
  /// The type of the tensor of rounded probabilities that P·V reads
  /// (round_probabilities): `compute`, or `acc` holding the rounded
  /// values; null when they are not rounded.
  Type roundedProbabilities;
  /// The op's positions operand (may be null) and causal flag.
  Value positions;
  bool causal;
  /// Keys per tile.
  int64_t tile;
  Type compute, acc, i64, storage;
  Value q, k, v;
  int64_t hq, hkv, dHead, dv, group;
  /// The softmax scale times log2(e): scores live in the exp2 domain.
  double scale2;
  OpFoldResult tq;
  Value tk;
  /// [Tq, Hq] (the row max and sum) and [Tq, Hq, Dv] (the output).
  SmallVector<OpFoldResult> rowShape, outShape;
  /// The key-bias term, when the op has a key bias.
  KeyBiasTerm keyBias;
  AffineExpr t, h, j, e;

  AffineMap map(ArrayRef<AffineExpr> exprs, unsigned dims) const {
    return AffineMap::get(dims, 0, exprs, t.getContext());
  }
};

SdpaLoop planLoop(ImplicitLocOpBuilder &b, SdpaOp op, int64_t tile) {
  SdpaLoop s;
  s.positions = op.getPositions();
  s.causal = op.getCausal();
  s.tile = tile;
  s.compute = op.getPrecision().getCompute();
  s.acc = op.getPrecision().getAccumulate();
  s.roundedProbabilities = op.getRoundProbabilities() ? s.acc : Type();
  s.i64 = b.getI64Type();
  s.storage = cast<RankedTensorType>(op.getType()).getElementType();
  s.q = queryInComputePrecision(b, op.getQuery(), s.compute);
  s.k = op.getKey();
  s.v = op.getValue();
  auto qType = cast<RankedTensorType>(s.q.getType());
  auto kType = cast<RankedTensorType>(s.k.getType());
  auto vType = cast<RankedTensorType>(s.v.getType());
  s.hq = qType.getDimSize(1);
  s.hkv = kType.getDimSize(1);
  s.dHead = qType.getDimSize(2);
  s.dv = vType.getDimSize(2);
  s.group = s.hq / s.hkv;
  s.scale2 = op.getEffectiveScale() * std::numbers::log2e;
  s.tq = tensor::getMixedSize(b, b.getLoc(), s.q, 0);
  s.tk = tensor::DimOp::create(b, s.k, 0);
  s.rowShape = {s.tq, b.getIndexAttr(s.hq)};
  s.outShape = {s.tq, b.getIndexAttr(s.hq), b.getIndexAttr(s.dv)};
  bindDims(b.getContext(), s.t, s.h, s.j, s.e);
  return s;
}

/// Absolute position of each query, as i64: the op's positions, or the last
/// Tq of the Tk keys.
Value queryPositions(ImplicitLocOpBuilder &b, const SdpaLoop &s) {
  Type i64 = s.i64;
  Value init = emptyTensor(b, {s.tq}, i64);
  if (Value positions = s.positions)
    return elementwise(
        b, init, positions, i64,
        [&](OpBuilder &nb, Location loc, ValueRange args) -> Value {
          if (args[0].getType() == i64)
            return args[0];
          return arith::ExtSIOp::create(nb, loc, i64, args[0]);
        });
  Value tqValue = getValueOrCreateConstantIndexOp(b, b.getLoc(), s.tq);
  Value shift = arith::SubIOp::create(b, s.tk, tqValue);
  return elementwise(b, init, ValueRange{}, i64,
                     [&](OpBuilder &nb, Location loc, ValueRange) -> Value {
                       Value t = linalg::IndexOp::create(nb, loc, 0);
                       return arith::IndexCastOp::create(
                           nb, loc, i64,
                           arith::AddIOp::create(nb, loc, t, shift));
                     });
}

/// The largest (or the smallest) query position, as an i64.
Value extremePosition(ImplicitLocOpBuilder &b, const SdpaLoop &s,
                      Value queryPositions, bool largest) {
  MLIRContext *ctx = b.getContext();
  Type i64 = s.i64;
  Value start = arith::ConstantOp::create(
      b, b.getI64IntegerAttr(largest ? std::numeric_limits<int64_t>::min()
                                     : std::numeric_limits<int64_t>::max()));
  Value init =
      linalg::FillOp::create(
          b, start,
          tensor::EmptyOp::create(b, ArrayRef<int64_t>{}, i64).getResult())
          .getResult(0);
  Value extreme =
      linalg::GenericOp::create(
          b, init.getType(), queryPositions, init,
          ArrayRef<AffineMap>{b.getMultiDimIdentityMap(1),
                              AffineMap::get(1, 0, {}, ctx)},
          iterators(0, 1),
          [&](OpBuilder &nb, Location loc, ValueRange args) {
            Value next =
                largest ? arith::MaxSIOp::create(nb, loc, args[0], args[1])
                              .getResult()
                        : arith::MinSIOp::create(nb, loc, args[0], args[1])
                              .getResult();
            yieldValue(nb, loc, next);
          })
          .getResult(0);
  return tensor::ExtractOp::create(b, extreme, ValueRange{});
}

/// The end of the keys the loop visits: Tk, or with causal masking one past
/// the largest query position (keys after it are masked for every query).
Value keyBound(ImplicitLocOpBuilder &b, const SdpaLoop &s,
               Value queryPositions) {
  if (!s.causal)
    return s.tk;
  Value visible = arith::AddIOp::create(
      b, extremePosition(b, s, queryPositions, /*largest=*/true),
      arith::ConstantOp::create(b, b.getI64IntegerAttr(1)));
  visible = arith::MaxSIOp::create(
      b, visible, arith::ConstantOp::create(b, b.getI64IntegerAttr(0)));
  return arith::MinSIOp::create(
      b, arith::IndexCastOp::create(b, b.getIndexType(), visible), s.tk);
}

/// The running row max m, row sum l and unnormalized output acc.
struct RunningState {
  Value m, l, acc;
};

/// Before any key: m = -inf, l = 0, acc = 0.
RunningState initialState(ImplicitLocOpBuilder &b, const SdpaLoop &s) {
  Value m0 = filled(b, s.rowShape, s.acc, kNegInf);
  Value l0 = filled(b, s.rowShape, s.acc, 0.0);
  Value acc0 = filled(b, s.outShape, s.acc, 0.0);
  return {m0, l0, acc0};
}

/// The keys and values of the tile starting at row j0 of `s`'s keys, which
/// is key key0 of the whole cache (they differ in a split of the keys), and
/// the shape [Tq, Hq, size] of its scores.
struct KeyTile {
  Value j0, key0, k, v;
  SmallVector<OpFoldResult> scoreShape;
};

/// `keyBase`: the cache index of `s`'s first key (null: 0).
KeyTile sliceKeyTile(ImplicitLocOpBuilder &nb, const SdpaLoop &s, Value j0,
                     Value bound, Value keyBase) {
  Value size =
      arith::MinSIOp::create(nb, arith::ConstantIndexOp::create(nb, s.tile),
                             arith::SubIOp::create(nb, bound, j0));
  auto tileOf = [&](Value src, int64_t width) {
    SmallVector<OpFoldResult> offsets = {j0, nb.getIndexAttr(0),
                                         nb.getIndexAttr(0)};
    SmallVector<OpFoldResult> sizes = {size, nb.getIndexAttr(s.hkv),
                                       nb.getIndexAttr(width)};
    SmallVector<OpFoldResult> strides(3, nb.getIndexAttr(1));
    return tensor::ExtractSliceOp::create(nb, src, offsets, sizes, strides)
        .getResult();
  };
  Value kTile = tileOf(s.k, s.dHead), vTile = tileOf(s.v, s.dv);
  Value key0 = keyBase ? arith::AddIOp::create(nb, keyBase, j0) : j0;
  return {j0, key0, kTile, vTile, {s.tq, nb.getIndexAttr(s.hq), size}};
}

/// The tile's keys with the key bias in them, in the accumulate type:
/// k'[j, g, d] = k[j, g, d] (rounded to the compute type) + RoPE(b_g, j)[d],
/// formed once per key and KV head and shared by every query and query head
/// of the group, so that q·k' = q·k + q·RoPE(b, j) costs one add per key
/// element. Key j's angle is the tile's first key's (its anchor a) plus a
/// compile-time step s_j, so with RoPE(b)[d] = self·cos + cross·sin,
///   RoPE(b, j)[d] = P[d]·cos(s_j) + Q[d]·sin(s_j),
///   P = self·cos(a) + cross·sin(a),  Q = cross·cos(a) − self·sin(a),
/// where P and Q [Hkv, D] are formed once per tile: two multiply-adds per
/// key element, every operand read contiguously along D, so it vectorizes.
/// The steps are a [tile, R/2] table for the half-split layout when R/2 is
/// at least 16 and divides D (both dims of a pair share it), else one per
/// dim [tile, D].
/// Past the rotary dim the bias's coefficients and the steps are 0 (the
/// softmax cancels the constant such a dim would add).
Value biasedKeys(ImplicitLocOpBuilder &nb, const SdpaLoop &s,
                 const KeyTile &kv) {
  const KeyBiasTerm &term = s.keyBias;
  auto [anchorCos, anchorSin] = keyBiasAnchors(
      nb, term, nb.getIndexAttr(1),
      [&](OpBuilder &, Location, Value) { return kv.key0; });
  Type acc = term.acc, compute = s.compute;
  MLIRContext *ctx = nb.getContext();
  auto mul = [](OpBuilder &bb, Location loc, Value x, Value y) {
    return arith::MulFOp::create(bb, loc, x, y).getResult();
  };
  // P and Q per KV head and dim [Hkv, D]: d's pair is d mod R/2
  // (half-split) or d floordiv 2 (interleaved), taken mod R/2 past the
  // rotary dim.
  AffineExpr d1 = nb.getAffineDimExpr(1);
  AffineExpr pair = (term.halfSplit ? d1 : d1.floorDiv(2)) % term.pairs;
  SmallVector<OpFoldResult> perDimShape = {nb.getIndexAttr(s.hkv),
                                           nb.getIndexAttr(term.dims)};
  Value pInit = emptyTensor(nb, perDimShape, acc);
  Value qInit = emptyTensor(nb, perDimShape, acc);
  AffineMap id2 = nb.getMultiDimIdentityMap(2);
  AffineMap anchorMap =
      AffineMap::get(2, 0, {nb.getAffineConstantExpr(0), pair}, ctx);
  auto perTile = linalg::GenericOp::create(
      nb, TypeRange{pInit.getType(), qInit.getType()},
      ValueRange{anchorCos, anchorSin, term.biasSelf, term.biasCross},
      ValueRange{pInit, qInit},
      ArrayRef<AffineMap>{anchorMap, anchorMap, id2, id2, id2, id2},
      iterators(2), [&](OpBuilder &bb, Location loc, ValueRange args) {
        Value cosA = args[0], sinA = args[1], self = args[2], cross = args[3];
        Value p = arith::AddFOp::create(bb, loc, mul(bb, loc, self, cosA),
                                        mul(bb, loc, cross, sinA));
        Value q = arith::SubFOp::create(bb, loc, mul(bb, loc, cross, cosA),
                                        mul(bb, loc, self, sinA));
        linalg::YieldOp::create(bb, loc, ValueRange{p, q});
      });
  // The steps [tile, W]: per pair (W = R/2) when the layout is half-split
  // and R/2 (at least 16) divides D, with k, P and Q viewed as [.., D / W, W] (d's pair
  // is then its index in the last dim), else per dim (W = D).
  // (At least 16 pairs: a narrower last dim would not fill a vector.)
  bool perPair =
      term.halfSplit && term.pairs >= 16 && term.dims % term.pairs == 0;
  int64_t width = perPair ? term.pairs : term.dims;
  OpFoldResult size = kv.scoreShape[2];
  auto steps = [&](Value table) -> Value {
    OpFoldResult zero = nb.getIndexAttr(0), one = nb.getIndexAttr(1);
    return tensor::ExtractSliceOp::create(
        nb, table, ArrayRef<OpFoldResult>{zero, zero},
        ArrayRef<OpFoldResult>{size, nb.getIndexAttr(width)},
        ArrayRef<OpFoldResult>{one, one});
  };
  Value stepCos = steps(perPair ? term.stepCos : term.stepCosPerDim);
  Value stepSin = steps(perPair ? term.stepSin : term.stepSinPerDim);
  auto view = [&](Value v) {
    return perPair ? expandBlocks(nb, v, width) : v;
  };
  Value keys = view(kv.k);
  int64_t rank = cast<RankedTensorType>(keys.getType()).getRank();
  SmallVector<AffineExpr> dims;
  for (int64_t i = 0; i < rank; ++i)
    dims.push_back(nb.getAffineDimExpr(i));
  auto map = [&](ArrayRef<AffineExpr> exprs) {
    return AffineMap::get(rank, 0, exprs, ctx);
  };
  // Key j, KV head g, [chunk c,] element e of the last dim.
  AffineMap id = nb.getMultiDimIdentityMap(rank);
  AffineMap stepMap = map({dims.front(), dims.back()});
  AffineMap perHeadMap = map(ArrayRef<AffineExpr>(dims).drop_front());
  Value init = emptyTensor(nb, sizesOf(nb, keys), acc);
  Value biased =
      linalg::GenericOp::create(
          nb, TypeRange{init.getType()},
          ValueRange{keys, stepCos, stepSin, view(perTile.getResult(0)),
                     view(perTile.getResult(1))},
          ValueRange{init},
          ArrayRef<AffineMap>{id, stepMap, stepMap, perHeadMap, perHeadMap,
                              id},
          iterators(rank), [&](OpBuilder &bb, Location loc, ValueRange args) {
            Value key =
                castFloat(bb, loc, castFloat(bb, loc, args[0], compute), acc);
            Value turned =
                arith::AddFOp::create(bb, loc, mul(bb, loc, args[3], args[1]),
                                      mul(bb, loc, args[4], args[2]));
            yieldValue(bb, loc, arith::AddFOp::create(bb, loc, key, turned));
          })
          .getResult(0);
  return perPair ? collapseBlocks(nb, biased) : biased;
}

/// Scores s[t, h, j] = q[t, h, :] . k[j, h / group, :], scaled into the exp2
/// domain, with keys after the query masked to -inf when causal.
Value tileScores(ImplicitLocOpBuilder &nb, const SdpaLoop &s, const KeyTile &kv,
                 Value queryPositions) {
  AffineExpr t = s.t, h = s.h, j = s.j, e = s.e;
  AffineExpr kvHead = h.floorDiv(s.group);
  Type compute = s.compute, acc = s.acc, i64 = s.i64;
  Value s0 = filled(nb, kv.scoreShape, acc, 0.0);
  // With a key bias the keys are already in the accumulate type, rounded to
  // the compute type before the bias was added (biasedKeys).
  bool biased = bool(s.keyBias.a);
  Value keys = biased ? biasedKeys(nb, s, kv) : kv.k;
  Type keyCompute = biased ? acc : compute;
  Value scores =
      linalg::GenericOp::create(
          nb, s0.getType(), ValueRange{s.q, keys}, s0,
          ArrayRef<AffineMap>{s.map({t, h, e}, 4), s.map({j, kvHead, e}, 4),
                              s.map({t, h, j}, 4)},
          iterators(3, 1),
          [&](OpBuilder &bb, Location bl, ValueRange args) {
            // q is in the compute precision already
            // (queryInComputePrecision).
            Value x = castFloat(bb, bl, args[0], acc);
            Value y = castFloat(bb, bl, castFloat(bb, bl, args[1], keyCompute), acc);
            yieldValue(bb, bl,
                       arith::AddFOp::create(bb, bl, args[2],
                                             arith::MulFOp::create(bb, bl, x, y)));
          })
          .getResult(0);

  bool causal = s.causal;
  double scale2 = s.scale2;
  Value j0i64 = arith::IndexCastOp::create(nb, i64, kv.key0);
  return linalg::GenericOp::create(
             nb, scores.getType(), ValueRange{scores, queryPositions},
             tensor::EmptyOp::create(nb, kv.scoreShape, acc).getResult(),
             ArrayRef<AffineMap>{s.map({t, h, j}, 3), s.map({t}, 3),
                                 s.map({t, h, j}, 3)},
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
                     bb, bl, hidden, floatConst(bb, bl, acc, kNegInf), scaled);
               }
               yieldValue(bb, bl, scaled);
             })
      .getResult(0);
}

/// One online-softmax step over a tile's scores: the new max, the tile's
/// probabilities p = exp2(s - m_new), the correction alpha = exp2(m - m_new)
/// of what was accumulated under the old max, and l_new = alpha * l + sum p.
struct SoftmaxStep {
  Value mNew, probs, alpha, lNew;
};

SoftmaxStep onlineSoftmax(ImplicitLocOpBuilder &nb, const SdpaLoop &s,
                          const KeyTile &kv, Value scores, Value m, Value l) {
  AffineExpr t = s.t, h = s.h, j = s.j;
  Type acc = s.acc;
  Value mNew = reduceInnermost(
      nb, scores, m, [&](OpBuilder &bb, Location bl, Value x, Value y) {
        return arith::MaximumFOp::create(bb, bl, x, y).getResult();
      });

  Value probs =
      linalg::GenericOp::create(
          nb, scores.getType(), ValueRange{scores, mNew},
          tensor::EmptyOp::create(nb, kv.scoreShape, acc).getResult(),
          ArrayRef<AffineMap>{s.map({t, h, j}, 3), s.map({t, h}, 3),
                              s.map({t, h, j}, 3)},
          iterators(3),
          [&](OpBuilder &bb, Location bl, ValueRange args) {
            Value diff = arith::SubFOp::create(bb, bl, args[0],
                                               finiteMax(bb, bl, args[1], acc));
            yieldValue(bb, bl, math::Exp2Op::create(bb, bl, diff).getResult());
          })
          .getResult(0);

  Value alpha =
      elementwise(nb, m, ValueRange{m, mNew}, acc,
                  [&](OpBuilder &bb, Location bl, ValueRange args) -> Value {
                    return math::Exp2Op::create(
                        bb, bl,
                        arith::SubFOp::create(bb, bl, args[0],
                                              finiteMax(bb, bl, args[1], acc)));
                  });
  Value lScaled =
      elementwise(nb, l, ValueRange{l, alpha}, acc,
                  [&](OpBuilder &bb, Location bl, ValueRange args) -> Value {
                    return arith::MulFOp::create(bb, bl, args[0], args[1]);
                  });
  Value lNew = reduceInnermost(
      nb, probs, lScaled, [&](OpBuilder &bb, Location bl, Value x, Value y) {
        return arith::AddFOp::create(bb, bl, x, y).getResult();
      });
  return {mNew, probs, alpha, lNew};
}

/// acc[t, h, e] = alpha[t, h] * acc[t, h, e]
///              + sum_j p[t, h, j] * v[j, h / group, e].
Value accumulateValues(ImplicitLocOpBuilder &nb, const SdpaLoop &s,
                       const KeyTile &kv, const SoftmaxStep &step,
                       Value accum) {
  AffineExpr t = s.t, h = s.h, j = s.j, e = s.e;
  Type compute = s.compute, acc = s.acc;
  // Scaled in place (acc is the only operand it writes, and only reads
  // through its own block argument): the loop then yields the buffer it was
  // given, so bufferization neither allocates nor copies acc per tile.
  Value accScaled =
      linalg::GenericOp::create(
          nb, accum.getType(), ValueRange{step.alpha}, accum,
          ArrayRef<AffineMap>{s.map({t, h}, 3), s.map({t, h, j}, 3)},
          iterators(3),
          [&](OpBuilder &bb, Location bl, ValueRange args) {
            yieldValue(bb, bl, arith::MulFOp::create(bb, bl, args[1], args[0]));
          })
          .getResult(0);
  // With round_probabilities, the tile's probabilities rounded once (P·V
  // reads each once per row block and output column block): as a tensor
  // of the compute type, P·V's payload a product of bf16 values that the
  // host's AVX512-BF16 P·V takes as pairs; or as f32 values, which the
  // other forms broadcast with no conversion per use (from a bf16 element
  // each would widen a whole broadcast row).
  Value probs = step.probs;
  if (Type rounded = s.roundedProbabilities)
    probs = elementwise(nb, probs, probs, rounded,
                        [&](OpBuilder &bb, Location bl, ValueRange args) {
                          return castFloat(bb, bl,
                                           castFloat(bb, bl, args[0], compute),
                                           rounded);
                        });
  // Loop order (t, h, e, j) with j the reduction.
  AffineExpr t4 = t, h4 = h, e4 = j, j4 = e;
  return linalg::GenericOp::create(
             nb, accum.getType(), ValueRange{probs, kv.v}, accScaled,
             ArrayRef<AffineMap>{s.map({t4, h4, j4}, 4),
                                 s.map({j4, h4.floorDiv(s.group), e4}, 4),
                                 s.map({t4, h4, e4}, 4)},
             iterators(3, 1),
             [&](OpBuilder &bb, Location bl, ValueRange args) {
               Value y =
                   castFloat(bb, bl, castFloat(bb, bl, args[1], compute), acc);
               Value p = castFloat(bb, bl, args[0], acc);
               yieldValue(
                   bb, bl,
                   arith::AddFOp::create(bb, bl, args[2],
                                         arith::MulFOp::create(bb, bl, p, y)));
             })
      .getResult(0);
}

/// The loop body: the running state after the tile of keys at j0.
RunningState attendToTile(ImplicitLocOpBuilder &nb, const SdpaLoop &s,
                          Value queryPositions, Value bound, Value keyBase,
                          Value j0, const RunningState &state) {
  KeyTile kv = sliceKeyTile(nb, s, j0, bound, keyBase);
  Value scores = tileScores(nb, s, kv, queryPositions);
  SoftmaxStep step = onlineSoftmax(nb, s, kv, scores, state.m, state.l);
  Value accNew = accumulateValues(nb, s, kv, step, state.acc);
  return {step.mNew, step.lNew, accNew};
}

/// The running state after the tiles of `s`'s keys from `from` (a tile's
/// start) to `to` (at most `bound`, the end of the keys) from `init`, the
/// first key of `s` being key `keyBase` of the cache (null: 0).
RunningState attendToTiles(ImplicitLocOpBuilder &b, const SdpaLoop &s,
                           Value positions, Value from, Value to, Value bound,
                           Value keyBase, const RunningState &init) {
  auto loop = scf::ForOp::create(
      b, from, to, arith::ConstantIndexOp::create(b, s.tile),
      ValueRange{init.m, init.l, init.acc},
      [&](OpBuilder &lb, Location loc, Value j0, ValueRange carried) {
        ImplicitLocOpBuilder nb(loc, lb);
        RunningState next =
            attendToTile(nb, s, positions, bound, keyBase, j0,
                         {carried[0], carried[1], carried[2]});
        scf::YieldOp::create(nb, ValueRange{next.m, next.l, next.acc});
      });
  return {loop.getResult(0), loop.getResult(1), loop.getResult(2)};
}

/// The running state after every tile of `s`'s keys up to `bound`, the
/// first of which is key `keyBase` of the cache (null: 0).
RunningState attendToKeyTiles(ImplicitLocOpBuilder &b, const SdpaLoop &s,
                              Value positions, Value bound, Value keyBase) {
  return attendToTiles(b, s, positions, arith::ConstantIndexOp::create(b, 0),
                       bound, bound, keyBase, initialState(b, s));
}

/// The keys below `bound` that causal masking hides from no query of `s`,
/// in whole tiles: those up to its smallest position (clamped first, so
/// that adding one cannot overflow), rounded down to the tile.
Value keysSeenByAll(ImplicitLocOpBuilder &b, const SdpaLoop &s,
                    Value queryPositions, Value bound) {
  Value boundI64 = arith::IndexCastOp::create(b, s.i64, bound);
  Value seen = arith::AddIOp::create(
      b,
      arith::MinSIOp::create(
          b, extremePosition(b, s, queryPositions, /*largest=*/false),
          boundI64),
      arith::ConstantOp::create(b, b.getI64IntegerAttr(1)));
  seen = arith::MinSIOp::create(
      b,
      arith::MaxSIOp::create(
          b, seen, arith::ConstantOp::create(b, b.getI64IntegerAttr(0))),
      boundI64);
  AffineExpr d0 = b.getAffineDimExpr(0);
  return affine::AffineApplyOp::create(
      b, AffineMap::get(1, 0, d0.floorDiv(s.tile) * s.tile),
      ValueRange{arith::IndexCastOp::create(b, b.getIndexType(), seen)});
}

/// Every tile of keys up to `bound` for the queries of `s`, then the
/// normalized output [Tq, Hq, Dv] in the op's storage type. With
/// `unmaskedFirst` and causal masking, the tiles every query sees run
/// first without the mask (its compare and select per score), the rest
/// with it: the same tiles in the same order, so the same values.
Value attendToKeys(ImplicitLocOpBuilder &b, const SdpaLoop &s,
                   Value positions, bool unmaskedFirst = false) {
  Value bound = keyBound(b, s, positions);
  RunningState state;
  if (unmaskedFirst && s.causal) {
    SdpaLoop open = s;
    open.causal = false;
    Value seen = keysSeenByAll(b, s, positions, bound);
    state = attendToTiles(b, open, positions,
                          arith::ConstantIndexOp::create(b, 0), seen, bound,
                          Value(), initialState(b, s));
    state = attendToTiles(b, s, positions, seen, bound, bound, Value(), state);
  } else {
    state = attendToKeyTiles(b, s, positions, bound, Value());
  }
  return normalizeAttention(b, state.acc, state.l, s.acc, s.storage);
}

/// `s` narrowed to the query rows [t0, t0 + rows), the group of query heads
/// [h0, h0 + group) that share KV head `kvHead`, and the keys
/// [k0, k0 + keys).
SdpaLoop groupOfKVHead(ImplicitLocOpBuilder &nb, const SdpaLoop &s,
                       Value kvHead, Value h0, OpFoldResult t0,
                       OpFoldResult rows, OpFoldResult k0,
                       OpFoldResult keys) {
  OpFoldResult zero = nb.getIndexAttr(0), one = nb.getIndexAttr(1);
  SmallVector<OpFoldResult> ones(3, one);
  auto headOf = [&](Value src, int64_t width) {
    return tensor::ExtractSliceOp::create(
               nb, src, ArrayRef<OpFoldResult>{k0, kvHead, zero},
               ArrayRef<OpFoldResult>{keys, one, nb.getIndexAttr(width)}, ones)
        .getResult();
  };
  SdpaLoop sb = s;
  sb.q = tensor::ExtractSliceOp::create(
      nb, s.q, ArrayRef<OpFoldResult>{t0, h0, zero},
      ArrayRef<OpFoldResult>{rows, nb.getIndexAttr(s.group),
                             nb.getIndexAttr(s.dHead)},
      ones);
  sb.k = headOf(s.k, s.dHead);
  sb.v = headOf(s.v, s.dv);
  sb.tk = getValueOrCreateConstantIndexOp(nb, nb.getLoc(), keys);
  // The key-bias term's per-dim coefficients [Hkv, D]: this KV head's.
  if (s.keyBias.a) {
    auto coefficientsOf = [&](Value coefficients) {
      return tensor::ExtractSliceOp::create(
                 nb, coefficients, ArrayRef<OpFoldResult>{kvHead, zero},
                 ArrayRef<OpFoldResult>{one, nb.getIndexAttr(s.keyBias.dims)},
                 ArrayRef<OpFoldResult>{one, one})
          .getResult();
    };
    sb.keyBias.biasSelf = coefficientsOf(s.keyBias.biasSelf);
    sb.keyBias.biasCross = coefficientsOf(s.keyBias.biasCross);
  }
  sb.hq = s.group;
  sb.hkv = 1;
  sb.tq = rows;
  sb.rowShape = {rows, nb.getIndexAttr(s.group)};
  sb.outShape = {rows, nb.getIndexAttr(s.group), nb.getIndexAttr(s.dv)};
  return sb;
}

/// Flash-style attention on the host: an scf.forall over (blocks of `block`
/// queries) x (KV heads). Each iteration attends the `group` query heads
/// that share one KV head (GQA folded: every K/V element is read once per
/// KV head and query block, while its tile is in L1) to the key tiles up to
/// its own last query (causal tiles past the diagonal are skipped), with a
/// running state small enough to stay in cache. Exact: a tile a query
/// cannot see changes neither its max, nor its sum, nor its output, and the
/// heads of a group are independent.
Value attendInBlocks(ImplicitLocOpBuilder &b, const SdpaLoop &s,
                     Value positions, int64_t block) {
  MLIRContext *ctx = b.getContext();
  Value tq = getValueOrCreateConstantIndexOp(b, b.getLoc(), s.tq);
  AffineExpr d0, d1;
  bindDims(ctx, d0, d1);
  OpFoldResult blocks = affine::makeComposedFoldedAffineApply(
      b, b.getLoc(), AffineMap::get(1, 0, d0.ceilDiv(block)), {s.tq});
  Value out = emptyTensor(b, s.outShape, s.storage);
  auto forall = scf::ForallOp::create(
      b, b.getLoc(), ArrayRef<OpFoldResult>{blocks, b.getIndexAttr(s.hkv)},
      ValueRange{out}, std::nullopt,
      [&](OpBuilder &fb, Location loc, ValueRange args) {
        ImplicitLocOpBuilder nb(loc, fb);
        // One block (a decode step): all queries, static when Tq is.
        OpFoldResult t0 = nb.getIndexAttr(0), rows = s.tq;
        if (!isConstantIntValue(blocks, 1)) {
          // Iteration i takes block i/2 (even i) or blocks-1-i/2 (odd i):
          // with causal masking a block's cost grows with its index, and
          // threads take contiguous ranges of iterations (OpenMP's static
          // schedule), so in order the last thread would get the most work
          // (2 threads measured 1.5x on the example prefill); paired small
          // with large, each range gets about the same.
          Value index = args[0];
          Value two = arith::ConstantIndexOp::create(nb, 2);
          Value half = arith::DivUIOp::create(nb, index, two);
          Value odd = arith::CmpIOp::create(
              nb, arith::CmpIPredicate::ne,
              arith::RemUIOp::create(nb, index, two),
              arith::ConstantIndexOp::create(nb, 0));
          Value mirrored = affine::AffineApplyOp::create(
              nb, AffineMap::get(2, 0, d1 - d0 - 1, ctx),
              ValueRange{half, getValueOrCreateConstantIndexOp(
                                   nb, nb.getLoc(), blocks)});
          Value blockIndex = arith::SelectOp::create(nb, odd, mirrored, half);
          Value first = affine::AffineApplyOp::create(
              nb, AffineMap::get(1, 0, d0 * block), ValueRange{blockIndex});
          t0 = first;
          rows = affine::AffineMinOp::create(
                     nb,
                     AffineMap::get(
                         2, 0, {nb.getAffineConstantExpr(block), d1 - d0}, ctx),
                     ValueRange{first, tq})
                     .getResult();
        }
        Value h0 = affine::AffineApplyOp::create(
            nb, AffineMap::get(1, 0, d0 * s.group), ValueRange{args[1]});
        SdpaLoop sb = groupOfKVHead(nb, s, args[1], h0, t0, rows,
                                    nb.getIndexAttr(0), s.tk);
        OpFoldResult zero = nb.getIndexAttr(0), one = nb.getIndexAttr(1);
        SmallVector<OpFoldResult> ones(3, one);
        Value blockPositions = tensor::ExtractSliceOp::create(
            nb, positions, ArrayRef<OpFoldResult>{t0},
            ArrayRef<OpFoldResult>{rows}, ArrayRef<OpFoldResult>{one});
        Value result =
            attendToKeys(nb, sb, blockPositions, /*unmaskedFirst=*/true);
        auto inParallel = scf::InParallelOp::create(nb);
        OpBuilder::InsertionGuard guard(nb);
        nb.setInsertionPointToStart(inParallel.getBody());
        tensor::ParallelInsertSliceOp::create(
            nb, result, args[2], ArrayRef<OpFoldResult>{t0, h0, zero},
            sb.outShape, ones);
      });
  return forall.getResult(0);
}

/// The output [Tq, Hq, Dv] from the splits' running states (m and l
/// [splits, Tq, Hq], acc [splits, Tq, Hq, Dv]): with M the largest m and
/// w_s = exp2(m_s - M), out = sum_s w_s acc_s / sum_s w_s l_s, each sum in
/// split order. A split no query sees (m = -inf) weighs 0.
Value combineKeySplits(ImplicitLocOpBuilder &b, const SdpaLoop &s, Value m,
                       Value l, Value acc) {
  MLIRContext *ctx = b.getContext();
  Type accType = s.acc;
  AffineExpr t, h, e, x;
  bindDims(ctx, t, h, e, x);
  auto map = [&](ArrayRef<AffineExpr> exprs, unsigned dims) {
    return AffineMap::get(dims, 0, exprs, ctx);
  };
  // Loops (t, h, split): the split is the reduction.
  AffineExpr split3 = e;
  Value mMax =
      linalg::GenericOp::create(
          b, TypeRange{emptyTensor(b, s.rowShape, accType).getType()},
          ValueRange{m}, ValueRange{filled(b, s.rowShape, accType, kNegInf)},
          ArrayRef<AffineMap>{map({split3, t, h}, 3), map({t, h}, 3)},
          iterators(2, 1),
          [&](OpBuilder &bb, Location bl, ValueRange args) {
            yieldValue(bb, bl,
                       arith::MaximumFOp::create(bb, bl, args[0], args[1]));
          })
          .getResult(0);
  // w [splits, Tq, Hq].
  Value weights =
      linalg::GenericOp::create(
          b, m.getType(), ValueRange{m, mMax}, ValueRange{emptyLike(b, m, accType)},
          ArrayRef<AffineMap>{map({t, h, e}, 3), map({h, e}, 3),
                              map({t, h, e}, 3)},
          iterators(3),
          [&](OpBuilder &bb, Location bl, ValueRange args) {
            Value diff = arith::SubFOp::create(
                bb, bl, args[0], finiteMax(bb, bl, args[1], accType));
            yieldValue(bb, bl, math::Exp2Op::create(bb, bl, diff).getResult());
          })
          .getResult(0);
  auto weightedSum = [&](Value parts, ArrayRef<OpFoldResult> shape,
                         ArrayRef<AffineExpr> outDims,
                         ArrayRef<AffineExpr> partDims, AffineExpr split,
                         unsigned dims) {
    SmallVector<AffineExpr> weightDims = {split, t, h};
    return linalg::GenericOp::create(
               b, TypeRange{emptyTensor(b, shape, accType).getType()},
               ValueRange{weights, parts},
               ValueRange{filled(b, shape, accType, 0.0)},
               ArrayRef<AffineMap>{map(weightDims, dims), map(partDims, dims),
                                   map(outDims, dims)},
               iterators(dims - 1, 1),
               [&](OpBuilder &bb, Location bl, ValueRange args) {
                 yieldValue(bb, bl,
                            arith::AddFOp::create(
                                bb, bl, args[2],
                                arith::MulFOp::create(bb, bl, args[0],
                                                      args[1])));
               })
        .getResult(0);
  };
  Value sum = weightedSum(l, s.rowShape, {t, h}, {split3, t, h}, split3, 3);
  Value out = weightedSum(acc, s.outShape, {t, h, e}, {x, t, h, e}, x, 4);
  return normalizeAttention(b, out, sum, s.acc, s.storage);
}

/// `s` narrowed to the keys [k0, k0 + keys), every head kept.
SdpaLoop keyRange(ImplicitLocOpBuilder &nb, const SdpaLoop &s, Value k0,
                  Value keys) {
  OpFoldResult zero = nb.getIndexAttr(0), one = nb.getIndexAttr(1);
  auto rangeOf = [&](Value src, int64_t width) {
    return tensor::ExtractSliceOp::create(
               nb, src, ArrayRef<OpFoldResult>{k0, zero, zero},
               ArrayRef<OpFoldResult>{keys, nb.getIndexAttr(s.hkv),
                                      nb.getIndexAttr(width)},
               SmallVector<OpFoldResult>(3, one))
        .getResult();
  };
  SdpaLoop sr = s;
  sr.k = rangeOf(s.k, s.dHead);
  sr.v = rangeOf(s.v, s.dv);
  sr.tk = keys;
  return sr;
}

/// Keys per range of a decode step's split: `splitKeys` counts the keys of
/// one KV head, and a range holds every KV head's, so it takes splitKeys /
/// Hkv keys (about the bytes of K and V that splitKeys keys of one head
/// were), rounded down to whole tiles where that is at least one. A step
/// with no more keys than that has one range, which attendInKeySplits runs
/// per KV head instead when there are several (else its attention would
/// run on one thread).
int64_t keysPerRange(const SdpaLoop &s, int64_t splitKeys) {
  int64_t keys = std::max<int64_t>(1, splitKeys / s.hkv);
  return keys >= s.tile ? keys / s.tile * s.tile : keys;
}

/// How a decode step's `bound` keys split into ranges of at most
/// `rangeKeys`: `keys` per range (the last range takes the rest) and the
/// number of `splits`, both functions of `bound` alone.
struct KeyRanges {
  Value keys, splits;
};

/// Ranges of (nearly) equal size: ceil(bound / rangeKeys) of them, rounded
/// up to an even count when more than one, share the keys, so that two
/// threads (or any even number that divides the count) take equal work.
/// Ranges of exactly rangeKeys left a short last range: at 1028 keys of
/// the example layer (rangeKeys 1024) one thread took 1024 keys and the
/// other 4, and at 4100 keys a static schedule gave one thread three
/// ranges and the other two, one of them 4 keys. The share is rounded up
/// to a multiple of 16 keys (a key block of the host's score tiles) when
/// rangeKeys is one, so that no range exceeds rangeKeys; the count is then
/// recomputed from it, so that no range is empty. That recount is one
/// less, and odd, where the rounding would have left the last range
/// empty (many ranges of few keys: 15 of 240 at 3585 keys and
/// rangeKeys 256).
KeyRanges balancedKeyRanges(ImplicitLocOpBuilder &b, Value bound,
                            int64_t rangeKeys) {
  AffineExpr d0 = b.getAffineDimExpr(0);
  int64_t grain = rangeKeys % 16 == 0 ? 16 : 1;
  auto apply = [&](AffineExpr e, Value operand) -> Value {
    return affine::AffineApplyOp::create(b, AffineMap::get(1, 0, e),
                                         ValueRange{operand});
  };
  Value needed = apply(d0.ceilDiv(rangeKeys), bound);
  Value one = arith::ConstantIndexOp::create(b, 1);
  // 0 or 1 range as it is; more, up to an even count.
  Value target = arith::SelectOp::create(
      b, arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, needed, one),
      apply((d0 + 1).floorDiv(2) * 2, needed), one);
  Value keys = arith::MaxSIOp::create(
      b,
      apply(d0.ceilDiv(grain) * grain,
            arith::CeilDivUIOp::create(b, bound, target)),
      arith::ConstantIndexOp::create(b, grain));
  return {keys, arith::CeilDivUIOp::create(b, bound, keys)};
}

/// A decode step's one range (1 to rangeKeys keys) as an scf.forall over
/// the KV heads, each its group of query heads over all `bound` keys, into
/// row 0 of `parts` (m, l [splits, Tq, Hq], acc [splits, Tq, Hq, Dv],
/// splits being 1 here) at its heads: the parts the ranges' forall gives,
/// on up to Hkv threads where one range would run on one.
scf::ForallOp attendOneRangePerKVHead(ImplicitLocOpBuilder &b,
                                      const SdpaLoop &s, Value positions,
                                      Value bound, ValueRange parts) {
  AffineExpr d0 = b.getAffineDimExpr(0);
  return scf::ForallOp::create(
      b, b.getLoc(), ArrayRef<OpFoldResult>{b.getIndexAttr(s.hkv)}, parts,
      std::nullopt, [&](OpBuilder &fb, Location loc, ValueRange args) {
        ImplicitLocOpBuilder nb(loc, fb);
        Value h0 = affine::AffineApplyOp::create(
            nb, AffineMap::get(1, 0, d0 * s.group), ValueRange{args[0]});
        OpFoldResult zero = nb.getIndexAttr(0), one = nb.getIndexAttr(1);
        SdpaLoop sh =
            groupOfKVHead(nb, s, args[0], h0, zero, s.tq, zero, bound);
        RunningState state =
            attendToKeyTiles(nb, sh, positions, bound, /*keyBase=*/Value());
        // Read once, from memory, as a range is.
        state.m.getDefiningOp<scf::ForOp>()->setAttr(kStreamedKeyTilesAttrName,
                                                     nb.getUnitAttr());
        auto inParallel = scf::InParallelOp::create(nb);
        OpBuilder::InsertionGuard guard(nb);
        nb.setInsertionPointToStart(inParallel.getBody());
        OpFoldResult group = nb.getIndexAttr(s.group);
        for (auto [part, dest] :
             {std::pair{state.m, args[1]}, std::pair{state.l, args[2]}})
          tensor::ParallelInsertSliceOp::create(
              nb, part, dest, ArrayRef<OpFoldResult>{zero, zero, h0},
              ArrayRef<OpFoldResult>{one, s.tq, group},
              SmallVector<OpFoldResult>(3, one));
        tensor::ParallelInsertSliceOp::create(
            nb, state.acc, args[3],
            ArrayRef<OpFoldResult>{zero, zero, h0, zero},
            ArrayRef<OpFoldResult>{one, s.tq, group, nb.getIndexAttr(s.dv)},
            SmallVector<OpFoldResult>(4, one));
      });
}

/// A decode step's attention with its keys split in ranges (flash-decoding):
/// an scf.forall over the ranges, each attending every query head to its
/// range's tiles (the fast form of attendInBlocks), then one combine. A
/// range takes all KV heads of its keys, so its tiles are whole runs of the
/// cache ([keys, Hkv, D] is contiguous), read as one stream; GQA is folded
/// in the tile's indexing maps as in attendToKeys. The ranges depend only
/// on the number of keys, never on the threads, so results do not either.
/// With one range (and more than one KV head), an scf.if runs it as an
/// scf.forall over the KV heads instead, each its group of query heads
/// over all the keys: the same parts, computed on up to Hkv threads.
Value attendInKeySplits(ImplicitLocOpBuilder &b, const SdpaLoop &s,
                        Value positions, int64_t splitKeys) {
  MLIRContext *ctx = b.getContext();
  AffineExpr d0;
  bindDims(ctx, d0);
  Value bound = keyBound(b, s, positions);
  KeyRanges ranged =
      balancedKeyRanges(b, bound, keysPerRange(s, splitKeys));
  OpFoldResult splits = ranged.splits;
  SmallVector<OpFoldResult> rowParts = {splits, s.tq, b.getIndexAttr(s.hq)};
  SmallVector<OpFoldResult> outParts = {splits, s.tq, b.getIndexAttr(s.hq),
                                        b.getIndexAttr(s.dv)};
  Value mInit = emptyTensor(b, rowParts, s.acc);
  Value lInit = emptyTensor(b, rowParts, s.acc);
  Value accInit = emptyTensor(b, outParts, s.acc);
  auto ranges = [&](ImplicitLocOpBuilder &b) {
    return scf::ForallOp::create(
        b, b.getLoc(), ArrayRef<OpFoldResult>{splits},
        ValueRange{mInit, lInit, accInit}, std::nullopt,
        [&](OpBuilder &fb, Location loc, ValueRange args) {
          ImplicitLocOpBuilder nb(loc, fb);
          Value split = args[0];
          Value k0 = affine::AffineApplyOp::create(
              nb, AffineMap::get(1, 1, d0 * nb.getAffineSymbolExpr(0)),
              ValueRange{split, ranged.keys});
          // Clamped as sliceKeyTile clamps a tile, so that
          // rotor-fuse-producers-into-tile-slices sees disjoint ranges.
          Value keys = arith::MinSIOp::create(
              nb, ranged.keys, arith::SubIOp::create(nb, bound, k0));
          SdpaLoop sr = keyRange(nb, s, k0, keys);
          RunningState state =
              attendToKeyTiles(nb, sr, positions, keys, /*keyBase=*/k0);
          // A decode step's range is read once, from memory: its tile loop
          // may prefetch the next tile (rotor-prefetch-next-key-tile).
          state.m.getDefiningOp<scf::ForOp>()->setAttr(
              kStreamedKeyTilesAttrName, nb.getUnitAttr());
          OpFoldResult zero = nb.getIndexAttr(0), one = nb.getIndexAttr(1);
          auto inParallel = scf::InParallelOp::create(nb);
          OpBuilder::InsertionGuard guard(nb);
          nb.setInsertionPointToStart(inParallel.getBody());
          // [Tq, Hq] and [Tq, Hq, Dv] into the split's row of parts.
          for (auto [part, dest] :
               {std::pair{state.m, args[1]}, std::pair{state.l, args[2]}})
            tensor::ParallelInsertSliceOp::create(
                nb, part, dest, ArrayRef<OpFoldResult>{split, zero, zero},
                ArrayRef<OpFoldResult>{one, s.tq, nb.getIndexAttr(s.hq)},
                SmallVector<OpFoldResult>(3, one));
          tensor::ParallelInsertSliceOp::create(
              nb, state.acc, args[3],
              ArrayRef<OpFoldResult>{split, zero, zero, zero},
              ArrayRef<OpFoldResult>{one, s.tq, nb.getIndexAttr(s.hq),
                                     nb.getIndexAttr(s.dv)},
              SmallVector<OpFoldResult>(4, one));
        });
  };
  auto perKVHead = [&](ImplicitLocOpBuilder &b) {
    return attendOneRangePerKVHead(b, s, positions, bound,
                                   {mInit, lInit, accInit});
  };
  if (s.hkv == 1) {
    scf::ForallOp forall = ranges(b);
    return combineKeySplits(b, s, forall.getResult(0), forall.getResult(1),
                            forall.getResult(2));
  }
  auto branch = [&](auto form) {
    return [&, form](OpBuilder &ib, Location il) {
      ImplicitLocOpBuilder bb(il, ib);
      scf::YieldOp::create(bb, form(bb).getResults());
    };
  };
  // Exactly one range: with no keys at all (bound 0) there are no parts'
  // rows to write, and the ranges' forall runs no iteration.
  Value oneRange = arith::CmpIOp::create(
      b, arith::CmpIPredicate::eq,
      getValueOrCreateConstantIndexOp(b, b.getLoc(), splits),
      arith::ConstantIndexOp::create(b, 1));
  // The parts' types come from the branches' yields.
  auto split =
      scf::IfOp::create(b, oneRange, branch(perKVHead), branch(ranges));
  return combineKeySplits(b, s, split.getResult(0), split.getResult(1),
                          split.getResult(2));
}

struct LowerSdpa : OpRewritePattern<SdpaOp> {
  LowerSdpa(MLIRContext *ctx, int64_t tile, int64_t queryBlock,
            int64_t splitKeys, bool narrowProbabilities)
      : OpRewritePattern(ctx), defaultTile(tile), queryBlock(queryBlock),
        splitKeys(splitKeys), narrowProbabilities(narrowProbabilities) {}

  LogicalResult matchAndRewrite(SdpaOp op,
                                PatternRewriter &rewriter) const override {
    // The loop form of an op without a config, or whose config names it.
    KernelConfigAttr config = getKernelConfig(op);
    if (config && config.getStrategy() != KernelStrategy::Loops)
      return rewriter.notifyMatchFailure(op, "its kernel config is not loops");
    const int64_t tile =
        config && config.getKeys() ? config.getKeys() : defaultTile;
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    SdpaLoop s = planLoop(b, op, tile);
    if (op.getKeyBias())
      s.keyBias = planKeyBiasTerm(b, op, tile, s.tq);
    Value positions = queryPositions(b, s);
    // More than one block of queries (or a count known only at run time),
    // or more than one KV head: one block and KV head at a time.
    std::optional<int64_t> tq = getConstantIntValue(s.tq);
    // A decode step (one block of queries): its keys in ranges.
    if (splitKeys > 0 && queryBlock > 0 && tq && *tq <= queryBlock) {
      rewriter.replaceOp(op, attendInKeySplits(b, s, positions, splitKeys));
      return success();
    }
    // Many query rows (a count known only at run time, or more than a
    // block) and whole 64-column blocks of V: their P·V may run on pairs
    // of bf16 probabilities. Other P·V forms broadcast each probability,
    // and a bf16 one would be widened at every use.
    if (narrowProbabilities && s.roundedProbabilities &&
        (!tq || *tq > queryBlock) && s.dv % 64 == 0)
      s.roundedProbabilities = s.compute;
    bool blocked =
        queryBlock > 0 && (!tq || *tq > queryBlock || s.hkv > 1);
    Value result = blocked ? attendInBlocks(b, s, positions, queryBlock)
                           : attendToKeys(b, s, positions);
    rewriter.replaceOp(op, result);
    return success();
  }

  /// Keys per tile of an op without an attn.kernel config.
  int64_t defaultTile;
  /// Queries per block of the flash-style form; 0: all at once.
  int64_t queryBlock;
  /// Keys per range of a decode step's split form; 0: not split.
  int64_t splitKeys;
  /// Rounded probabilities as a compute-typed tensor (in tiles of many
  /// query rows, V's head dim whole 64-column blocks).
  bool narrowProbabilities;
};

} // namespace

void rotor::attn::lowering::populateSdpaLoweringPatterns(
    RewritePatternSet &patterns, int64_t kvTileSize, int64_t queryBlock,
    int64_t splitKeys, bool narrowProbabilities) {
  patterns.add<LowerSdpa>(patterns.getContext(), kvTileSize, queryBlock,
                          splitKeys, narrowProbabilities);
}
