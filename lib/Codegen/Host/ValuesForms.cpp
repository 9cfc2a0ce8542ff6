//===- ValuesForms.cpp - A prefill block's P·V in registers ---------------===//
//
// The forms rotor-lower-reductions-to-register-loops gives a prefill
// block's P·V, acc[.., e] += p[.., j] v[j, .., e], whose many rows (a GQA
// group's heads times a block of queries) share V's rows: a row panel of
// outer products, each V row loaded once per key for a block of rows; and,
// where attn.sdpa rounds its probabilities to bf16 (`round_probabilities`)
// and the CPU has AVX512-BF16, the same panel as dot products on bf16
// pairs of keys.
//
//===----------------------------------------------------------------------===//

#include "RegisterLoops.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/TypeUtilities.h"

using namespace mlir;

namespace rotor::host {

/// The columns per block of the RowPanel form of a RowInRegisters
/// reduction whose output rows are `width` wide, when it takes that form:
/// one reduction dim, many rows (not fewRows: a prefill block's P·V, not a
/// decode step's), and every input read along the output's contiguous dim
/// the same for every row (sameAlongDims: a GQA group's heads all read their
/// KV head's V row), so one load of it feeds every row of a block. A block
/// is four vectors with 32 registers (6 x 4 sums, as a projection's packed
/// form), two with 16; it must divide `width`.
std::optional<int64_t> rowPanelColumns(linalg::GenericOp op,
                                       const LoopBounds &all, int64_t width,
                                       int64_t vectorRegisters) {
  unsigned parallel = op.getNumParallelLoops();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  unsigned inner = *contiguousDim(outMap);
  Type sum = op.getRegion().front().getArguments().back().getType();
  int64_t columns = f32Lanes(vectorRegisters) * (vectorRegisters >= 32 ? 4 : 2);
  if (op.getNumLoops() != parallel + 1 || parallel < 2 || !sum.isF32() ||
      width % columns != 0)
    return std::nullopt;
  SmallVector<unsigned> rowDims;
  for (unsigned d = 0; d < parallel; ++d)
    if (d != inner)
      rowDims.push_back(d);
  if (fewRows(op, all, rowDims, width))
    return std::nullopt;
  for (OpOperand *input : op.getDpsInputOperands()) {
    AffineMap map = op.getMatchingIndexingMap(input);
    if (isa<MemRefType>(input->get().getType()) && map.isFunctionOfDim(inner) &&
        !sameAlongDims(map, input->get(), rowDims))
      return std::nullopt;
  }
  return columns;
}

/// RowPanel form (rowPanelColumns): the rows (every parallel dim but the
/// output's contiguous one, linearized) in blocks of kPackedRows, against
/// each block of `columns` of the output row: per reduction step, one load
/// of the shared input's row (V's) feeds a broadcast FMA per row and
/// vector (emitRowPanelBlocks). The RowInRegisters form jams the last
/// outer dim only (a GQA group's 7 heads went 4 + 1 + 1 + 1), its single
/// rows loading a vector per FMA. Each element is summed in order, as
/// there: bit-identical to it.
void lowerToRowPanelLoops(IRRewriter &rewriter, linalg::GenericOp op,
                          const LoopBounds &all, int64_t width,
                          int64_t columns) {
  Location loc = op.getLoc();
  unsigned red = op.getNumParallelLoops();
  unsigned inner =
      *contiguousDim(op.getMatchingIndexingMap(op.getDpsInitOperand(0)));
  RowPanelTile tile = rowPanelTile(rewriter, loc, all, inner, red);
  auto inputRow = [&](OpBuilder &fb, Location fl, OpOperand *in,
                      ArrayRef<Value> at) -> Value {
    Type element =
        op.getRegion().front().getArgument(in->getOperandNumber()).getType();
    return vector::LoadOp::create(
        fb, fl, VectorType::get({columns}, element), in->get(),
        applyMap(fb, fl, op.getMatchingIndexingMap(in), at));
  };
  for (int64_t c = 0; c < width; c += columns) {
    Value c0 =
        arith::AddIOp::create(rewriter, loc, all.lbs[inner],
                              arith::ConstantIndexOp::create(rewriter, loc, c));
    emitRowPanel(rewriter, loc, op, all, tile, c0, columns, Value(), inputRow);
  }
  rewriter.eraseOp(op);
}

/// The probabilities of a RowPanel P·V (rowPanelColumns, `columns` a
/// block) that the bf16 pair form takes, or null: AVX-512's 64 columns a
/// block; two inputs, V read along the output's contiguous dim and P not,
/// both contiguous in memory; P read along the reduction j as its last
/// index and nowhere else; the payload a dot product's step on bf16
/// operands (bf16ProductOperands: attn.sdpa's `round_probabilities` rounds
/// P to bf16, and a bf16 V is read as it is).
OpOperand *pairValuesProbabilities(linalg::GenericOp op, const LoopBounds &all,
                                   int64_t width, int64_t columns) {
  unsigned red = op.getNumParallelLoops();
  unsigned inner =
      *contiguousDim(op.getMatchingIndexingMap(op.getDpsInitOperand(0)));
  if (columns != 64 || width % columns != 0 || op.getNumDpsInputs() != 2 ||
      getConstantIntValue(all.steps[red]) != 1)
    return nullptr;
  OpOperand *probs = nullptr, *values = nullptr;
  for (OpOperand *input : op.getDpsInputOperands()) {
    if (!isa<MemRefType>(input->get().getType()) ||
        !unitInnerStride(input->get()))
      return nullptr;
    (op.getMatchingIndexingMap(input).isFunctionOfDim(inner) ? values : probs) =
        input;
  }
  if (!probs || !values)
    return nullptr;
  AffineMap map = op.getMatchingIndexingMap(probs);
  if (map.getNumResults() == 0 ||
      map.getResults().back() != getAffineDimExpr(red, op.getContext()) ||
      llvm::any_of(map.getResults().drop_back(),
                   [&](AffineExpr e) { return e.isFunctionOfDim(red); }))
    return nullptr;
  return bf16ProductOperands(op, probs, values) ? probs : nullptr;
}

namespace {

/// The probabilities [rows, ceil(count / kPairRun) * kPairRun] as bf16
/// pairs (swappedPairRun's order) of `tile`'s rows, the keys past `count`
/// zero: one masked load of kPairRun per run.
Value pairProbabilityRows(OpBuilder &b, Location l, linalg::GenericOp op,
                          const LoopBounds &all, const RowPanelTile &tile,
                          OpOperand *probs, Value count, bool round) {
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  AffineExpr d0 = b.getAffineDimExpr(0);
  Value padded = affine::AffineApplyOp::create(
      b, l,
      AffineMap::get(1, 0, (d0 + kPairRun - 1).floorDiv(kPairRun) * kPairRun),
      ValueRange{count});
  Value pairs = memref::AllocOp::create(
      b, l,
      MemRefType::get({ShapedType::kDynamic, ShapedType::kDynamic},
                      b.getBF16Type()),
      ValueRange{tile.rows, padded}, b.getI64IntegerAttr(64));
  unsigned red = tile.reduction;
  scf::ForOp::create(
      b, l, index(0), tile.rows, index(1), ValueRange{},
      [&](OpBuilder &rb, Location rl, Value r, ValueRange) {
        SmallVector<Value> at = rowPosition(rb, rl, all, tile, r);
        scf::ForOp::create(
            rb, rl, index(0), padded, index(kPairRun), ValueRange{},
            [&](OpBuilder &jb, Location jl, Value j0, ValueRange) {
              at[red] = arith::AddIOp::create(jb, jl, all.lbs[red], j0);
              Value mask = vector::CreateMaskOp::create(
                  jb, jl, VectorType::get({kPairRun}, jb.getI1Type()),
                  ValueRange{arith::SubIOp::create(jb, jl, count, j0)});
              vector::StoreOp::create(
                  jb, jl,
                  swappedPairRun(
                      jb, jl, probs->get(),
                      applyMap(jb, jl, op.getMatchingIndexingMap(probs), at),
                      round, mask),
                  pairs, ValueRange{r, j0});
              scf::YieldOp::create(jb, jl);
            });
        scf::YieldOp::create(rb, rl);
      });
  return pairs;
}

/// Copies V's rows for columns [c0, c0 + columns) into `panel` [pairSteps,
/// 2 x columns] of bf16 pairs: row k holds keys 2k and 2k + 1 interleaved,
/// swapped (key 2k + 1 in the even slot, as swappedPairRun orders P's), a
/// key past `count` zero (its row is not read: the last one is, unused).
void packValuePairs(OpBuilder &b, Location l, linalg::GenericOp op,
                    const LoopBounds &all, OpOperand *values, Value panel,
                    Value c0, Value count, Value pairSteps, int64_t columns,
                    bool round) {
  unsigned red = op.getNumParallelLoops();
  unsigned inner =
      *contiguousDim(op.getMatchingIndexingMap(op.getDpsInitOperand(0)));
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  Type element = getElementTypeOrSelf(values->get().getType());
  auto rowType = VectorType::get({columns}, element);
  auto pairRowType = VectorType::get({columns}, b.getBF16Type());
  Value zeros = arith::ConstantOp::create(
      b, l,
      DenseElementsAttr::get(pairRowType, b.getZeroAttr(b.getBF16Type())));
  SmallVector<int64_t> interleave;
  for (int64_t c = 0; c < columns; ++c)
    interleave.append({c, columns + c});
  Value last = arith::SubIOp::create(b, l, count, index(1));
  scf::ForOp::create(
      b, l, index(0), pairSteps, index(1), ValueRange{},
      [&](OpBuilder &kb, Location kl, Value k, ValueRange) {
        SmallVector<Value> at(all.lbs);
        at[inner] = c0;
        auto row = [&](Value j) -> Value {
          at[red] = arith::AddIOp::create(kb, kl, all.lbs[red], j);
          Value v = vector::LoadOp::create(
              kb, kl, rowType, values->get(),
              applyMap(kb, kl, op.getMatchingIndexingMap(values), at));
          return round ? arith::TruncFOp::create(kb, kl, pairRowType, v) : v;
        };
        Value first = arith::AddIOp::create(kb, kl, k, k);
        Value second = arith::AddIOp::create(kb, kl, first, index(1));
        Value present = arith::CmpIOp::create(kb, kl, arith::CmpIPredicate::slt,
                                              second, count);
        Value odd = arith::SelectOp::create(
            kb, kl, present, row(arith::MinSIOp::create(kb, kl, second, last)),
            zeros);
        vector::StoreOp::create(
            kb, kl,
            vector::ShuffleOp::create(kb, kl, odd, row(first), interleave),
            panel, ValueRange{k, index(0)});
        scf::YieldOp::create(kb, kl);
      });
}

/// Zeroes rows [from, to) of a `panel` of bf16 pairs [rows, 2 x columns]:
/// the pairs of keys past a tile's last that AMX's whole steps read. V's
/// packing (packValuePairs) rewrites only the rows before `from`.
void zeroPanelRows(OpBuilder &b, Location l, Value panel, Value from, Value to,
                   int64_t columns) {
  auto rowType = VectorType::get({2 * columns}, b.getBF16Type());
  Value zeros = arith::ConstantOp::create(
      b, l, DenseElementsAttr::get(rowType, b.getZeroAttr(b.getBF16Type())));
  scf::ForOp::create(
      b, l, from, to, arith::ConstantIndexOp::create(b, l, 1), ValueRange{},
      [&](OpBuilder &kb, Location kl, Value k, ValueRange) {
        vector::StoreOp::create(
            kb, kl, zeros, panel,
            ValueRange{k, arith::ConstantIndexOp::create(kb, kl, 0)});
        scf::YieldOp::create(kb, kl);
      });
}

} // namespace

/// The RowPanel form on bf16 pairs of keys (pairValuesProbabilities gave
/// `probs`): the tile's probabilities made bf16 pairs once
/// (pairProbabilityRows), then per block of `columns`, V's rows packed as
/// pairs of keys (packValuePairs) and the rows summed by pairPanelSums: per
/// pair of keys, one vdpbf16ps per 16 columns and row where the f32 form
/// takes two FMAs. Each sum adds its keys in order, so the bits are the f32
/// form's but for denormals (the instruction flushes bf16 inputs and f32
/// sums and results below f32's normal range) and the sign of a zero sum
/// (a missing last key adds +0).
/// With `amxTiles`, blocks of 16 rows take amxPanelSums over whole steps of
/// 32 keys: the panel then has a row per pair of the padded keys, the
/// rows past the keys' zero.
void emitPairValues(IRRewriter &rewriter, linalg::GenericOp op,
                    const LoopBounds &all, OpOperand *probs, int64_t width,
                    int64_t columns, bool amxTiles) {
  Location loc = op.getLoc();
  unsigned red = op.getNumParallelLoops();
  unsigned inner =
      *contiguousDim(op.getMatchingIndexingMap(op.getDpsInitOperand(0)));
  OpOperand *values = op.getDpsInputOperand(0) == probs
                          ? op.getDpsInputOperand(1)
                          : op.getDpsInputOperand(0);
  BF16Pairs round = *bf16ProductOperands(op, probs, values);
  RowPanelTile tile = rowPanelTile(rewriter, loc, all, inner, red);
  Value count =
      arith::SubIOp::create(rewriter, loc, all.ubs[red], all.lbs[red]);
  AffineExpr d0 = rewriter.getAffineDimExpr(0);
  Value pairSteps = affine::AffineApplyOp::create(
      rewriter, loc, AffineMap::get(1, 0, (d0 + 1).floorDiv(2)),
      ValueRange{count});
  Value pairs = pairProbabilityRows(rewriter, loc, op, all, tile, probs, count,
                                    round.roundInput);
  // AMX's steps of 32 keys, and the panel's rows they read.
  Value amxSteps = affine::AffineApplyOp::create(
      rewriter, loc,
      AffineMap::get(1, 0, (d0 + kPairRun - 1).floorDiv(kPairRun)),
      ValueRange{count});
  Value panelRows =
      amxTiles ? affine::AffineApplyOp::create(
                     rewriter, loc, AffineMap::get(1, 0, d0 * (kPairRun / 2)),
                     ValueRange{amxSteps})
                     .getResult()
               : pairSteps;
  Value panel = memref::AllocOp::create(
      rewriter, loc,
      MemRefType::get({ShapedType::kDynamic, 2 * columns},
                      rewriter.getBF16Type()),
      ValueRange{panelRows}, rewriter.getI64IntegerAttr(64));
  if (amxTiles)
    zeroPanelRows(rewriter, loc, panel, pairSteps, panelRows, columns);
  auto pairSums = [&](OpBuilder &sb, Location sl, ArrayRef<Value> rows,
                      ValueRange inits) {
    if (amxTiles && int64_t(rows.size()) == kAmxRows)
      return amxPanelSums(
          sb, sl, panel, pairs, rows.front(), inits, amxSteps, columns,
          memref::AllocaOp::create(
              sb, sl, MemRefType::get({kAmxRows, columns}, sb.getF32Type())));
    return pairPanelSums(sb, sl, panel, pairs, rows, inits, pairSteps, columns);
  };
  RowPanelEnds ends;
  ends.sums = pairSums;
  ends.firstBlock = amxTiles ? kAmxRows : 0;
  // The sums come from `ends.sums`: no input is read by the rows.
  auto noColumnRow = [](OpBuilder &, Location, OpOperand *,
                        ArrayRef<Value>) -> Value { return Value(); };
  for (int64_t c = 0; c < width; c += columns) {
    Value c0 =
        arith::AddIOp::create(rewriter, loc, all.lbs[inner],
                              arith::ConstantIndexOp::create(rewriter, loc, c));
    packValuePairs(rewriter, loc, op, all, values, panel, c0, count, pairSteps,
                   columns, round.roundWeight);
    emitRowPanel(rewriter, loc, op, all, tile, c0, columns, Value(),
                 noColumnRow, &ends);
  }
  memref::DeallocOp::create(rewriter, loc, panel);
  memref::DeallocOp::create(rewriter, loc, pairs);
  rewriter.eraseOp(op);
}

} // namespace rotor::host
