//===- ScoresForms.cpp - Tiles of attention scores in registers ----------===//
//
// The forms rotor-lower-reductions-to-register-loops gives a tile of
// scores s[.., j] += q[.., e] k[j, .., e]: a decode step's few rows in
// blocks of keys whose lane partial sums a shuffle tree reduces (a narrow
// cache's keys widened once per block for the rows that share them); a
// prefill block's many rows as outer products on a panel of its keys
// transposed in registers (packed), with AVX512-BF16 as dot products on
// bf16 pairs; and the row panels those outer products (and a prefill
// block's P·V) run on.
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

/// Whether `op` is a tile of scores the key-block form takes:
/// s[.., j] += f(a[.., e], k[j, .., e]) with the key j the last parallel
/// dim (the output contiguous along it) and one reduction dim e, static and
/// a multiple of `lanes`, along which every input read with e is
/// contiguous; the payload adds to the sum something that does not read
/// it (so that lanes may hold partial sums); f32 sums.
bool isKeyBlockScores(linalg::GenericOp op, const LoopBounds &all,
                      int64_t lanes) {
  unsigned parallel = op.getNumParallelLoops(), loops = op.getNumLoops();
  if (loops != parallel + 1)
    return false;
  unsigned key = parallel - 1, red = parallel;
  Block &body = op.getRegion().front();
  BlockArgument acc = body.getArguments().back();
  auto add = body.getTerminator()->getOperand(0).getDefiningOp<arith::AddFOp>();
  if (!acc.getType().isF32() || !elementwisePayload(op) || !add ||
      !acc.hasOneUse() || (add.getLhs() != acc && add.getRhs() != acc))
    return false;
  std::optional<int64_t> depth = getConstantIntValue(all.ubs[red]);
  if (!depth || *depth % lanes != 0 || getConstantIntValue(all.lbs[red]) != 0 ||
      getConstantIntValue(all.steps[red]) != 1 ||
      getConstantIntValue(all.steps[key]) != 1)
    return false;
  Value output = op.getDpsInitOperand(0)->get();
  if (contiguousDim(op.getMatchingIndexingMap(op.getDpsInitOperand(0))) !=
          key ||
      !unitInnerStride(output))
    return false;
  bool keyed = false;
  for (OpOperand *input : op.getDpsInputOperands()) {
    if (!isa<MemRefType>(input->get().getType()))
      continue;
    AffineMap map = op.getMatchingIndexingMap(input);
    keyed |= map.isFunctionOfDim(key);
    if (!map.isFunctionOfDim(red))
      continue;
    if (contiguousDim(map) != red || !unitInnerStride(input->get()) ||
        llvm::any_of(map.getResults().drop_back(),
                     [&](AffineExpr e) { return e.isFunctionOfDim(red); }))
      return false;
  }
  return keyed;
}

/// The sums of the lanes of each of `partials` (one vector per key, as many
/// keys as lanes), as one vector: lane r is key r's sum. Each level adds
/// pairs of vectors after two shuffles, halving the vectors and doubling
/// the keys each holds (lanes - 1 adds in all), where a horizontal sum per
/// key takes log2(lanes) shuffles and adds each.
Value sumLanesOfEach(OpBuilder &b, Location l, SmallVector<Value> partials) {
  int64_t lanes = partials.size();
  for (int64_t block = 2; block <= lanes; block *= 2) {
    // Lane base + r of a pair's sum: for r < half key r of the first
    // vector's block, else key r - half of the second's.
    int64_t half = block / 2;
    SmallVector<int64_t> low(lanes), high(lanes);
    for (int64_t i = 0; i < lanes; ++i) {
      int64_t r = i % block, base = i - r;
      low[i] = r < half ? base + r : lanes + base + r - half;
      high[i] = r < half ? base + r + half : lanes + base + r;
    }
    SmallVector<Value> next;
    for (size_t p = 0; p < partials.size(); p += 2) {
      Value x =
          vector::ShuffleOp::create(b, l, partials[p], partials[p + 1], low);
      Value y =
          vector::ShuffleOp::create(b, l, partials[p], partials[p + 1], high);
      next.push_back(arith::AddFOp::create(b, l, x, y));
    }
    partials = std::move(next);
  }
  return partials.front();
}

/// The key input of a key-block scores tile (isKeyBlockScores) that
/// emitWidenedKeyBlocks widens once per block for the rows that share it,
/// and how they share it: the one input read with the key, a float
/// narrower than f32 that the payload only widens to f32 (arith.extf),
/// read at the same element along every other parallel dim
/// (sameAlongDims) but at most one, `groupDim`, read only as
/// `groupDim floordiv group` (a decode step's query heads, `group` to a KV
/// head); at least two rows share each element.
struct WidenedKeys {
  OpOperand *keys = nullptr;
  std::optional<unsigned> groupDim;
  int64_t group = 1;
};

std::optional<WidenedKeys>
widenedKeyInput(linalg::GenericOp op, const LoopBounds &all, unsigned key) {
  WidenedKeys widened;
  for (OpOperand *input : op.getDpsInputOperands()) {
    if (!isa<MemRefType>(input->get().getType()) ||
        !op.getMatchingIndexingMap(input).isFunctionOfDim(key))
      continue;
    if (widened.keys)
      return std::nullopt;
    widened.keys = input;
  }
  if (!widened.keys)
    return std::nullopt;
  AffineMap map = op.getMatchingIndexingMap(widened.keys);
  int64_t rows = 1;
  for (unsigned d = 0; d < key; ++d) {
    std::optional<int64_t> lb = getConstantIntValue(all.lbs[d]),
                           ub = getConstantIntValue(all.ubs[d]);
    if (!lb || !ub)
      return std::nullopt;
    if (sameAlongDims(map, widened.keys->get(), {d})) {
      rows *= *ub - *lb;
      continue;
    }
    // Every result that reads d is d floordiv G, for one G dividing d's
    // extent (from 0).
    std::optional<int64_t> group;
    for (AffineExpr e : map.getResults()) {
      if (!e.isFunctionOfDim(d))
        continue;
      auto div = dyn_cast<AffineBinaryOpExpr>(e);
      auto by = div ? dyn_cast<AffineConstantExpr>(div.getRHS()) : nullptr;
      if (!by || div.getKind() != AffineExprKind::FloorDiv ||
          div.getLHS() != getAffineDimExpr(d, op.getContext()) ||
          (group && *group != by.getValue()))
        return std::nullopt;
      group = by.getValue();
    }
    if (widened.groupDim || *lb != 0 || *group <= 0 || *ub % *group != 0)
      return std::nullopt;
    widened.groupDim = d;
    widened.group = *group;
    rows *= *group;
  }
  if (rows < 2 || !onlyWidenedToF32(op, widened.keys))
    return std::nullopt;
  return widened;
}

/// The key blocks [lbs, split) of a key-block scores tile whose key input
/// `widened` describes: per block (and group of rows), its `lanes` keys
/// widened to f32 once into a panel on the stack [lanes, E], then each of
/// the group's rows sums (`emitBlock`) reading the keys from the panel, an
/// FMA with a memory operand per key and step, where a bf16 key read per
/// row costs a load, a widening and a shift in every row.
void emitWidenedKeyBlocks(
    IRRewriter &rewriter, linalg::GenericOp op, const LoopBounds &all,
    const WidenedKeys &widened, int64_t lanes, Value split,
    function_ref<void(OpBuilder &, Location, ArrayRef<Value>, RowLoad)>
        emitBlock) {
  Location loc = op.getLoc();
  unsigned key = op.getNumParallelLoops() - 1, red = key + 1;
  int64_t depth = *getConstantIntValue(all.ubs[red]);
  OpOperand *keys = widened.keys;
  Type f32 = rewriter.getF32Type();
  Type narrow =
      op.getRegion().front().getArgument(keys->getOperandNumber()).getType();
  AffineMap map = op.getMatchingIndexingMap(keys);
  auto index = [&](OpBuilder &b, Location l, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  // The key blocks, and the groups of rows when the key input has them.
  SmallVector<Value> lbs = {all.lbs[key]}, ubs = {split},
                     steps = {index(rewriter, loc, lanes)};
  if (widened.groupDim) {
    lbs.push_back(index(rewriter, loc, 0));
    ubs.push_back(all.ubs[*widened.groupDim]);
    steps.push_back(index(rewriter, loc, widened.group));
  }
  scf::ParallelOp::create(
      rewriter, loc, lbs, ubs, steps,
      [&](OpBuilder &b, Location l, ValueRange ivs) {
        SmallVector<Value> rowLbs(ArrayRef(all.lbs).take_front(key)),
            rowUbs(ArrayRef(all.ubs).take_front(key));
        if (widened.groupDim) {
          rowLbs[*widened.groupDim] = ivs[1];
          rowUbs[*widened.groupDim] =
              arith::AddIOp::create(b, l, ivs[1], index(b, l, widened.group));
        }
        Value panel =
            memref::AllocaOp::create(b, l, MemRefType::get({lanes, depth}, f32),
                                     b.getI64IntegerAttr(64));
        for (int64_t r = 0; r < lanes; ++r) {
          SmallVector<Value> at(rowLbs);
          at.push_back(arith::AddIOp::create(b, l, ivs[0], index(b, l, r)));
          at.push_back(Value());
          scf::ForOp::create(
              b, l, index(b, l, 0), index(b, l, depth), index(b, l, lanes),
              ValueRange{},
              [&](OpBuilder &eb, Location el, Value e0, ValueRange) {
                at[red] = e0;
                Value row = vector::LoadOp::create(
                    eb, el, VectorType::get({lanes}, narrow), keys->get(),
                    applyMap(eb, el, map, at));
                vector::StoreOp::create(
                    eb, el,
                    arith::ExtFOp::create(eb, el, VectorType::get({lanes}, f32),
                                          row),
                    panel, ValueRange{index(eb, el, r), e0});
                scf::YieldOp::create(eb, el);
              });
        }
        // Key r of the block (position r of emitBlock) at the step's e.
        auto fromPanel = [&](OpBuilder &pb, Location pl, OpOperand *input,
                             int64_t r, ArrayRef<Value> at) -> Value {
          if (input != keys)
            return Value();
          return vector::LoadOp::create(pb, pl, VectorType::get({lanes}, f32),
                                        panel,
                                        ValueRange{index(pb, pl, r), at[red]});
        };
        scf::buildLoopNest(b, l, rowLbs, rowUbs,
                           SmallVector<Value>(key, index(b, l, 1)),
                           [&](OpBuilder &nb, Location nl, ValueRange rowIvs) {
                             SmallVector<Value> blockIvs(rowIvs);
                             blockIvs.push_back(ivs[0]);
                             emitBlock(nb, nl, blockIvs, fromPanel);
                           });
        scf::ReduceOp::create(b, l);
      });
}

/// One block of `lanes` keys of a tile of scores for one row (`blockIvs`:
/// the parallel dims' ivs, the key's the block's first): lane partial sums
/// per key, reduced together (sumLanesOfEach) and added to the output.
/// `load` overrides inputs' rows (the widened panel).
void emitScoresKeyBlock(OpBuilder &b, Location l, linalg::GenericOp op,
                        const LoopBounds &all, int64_t lanes,
                        ArrayRef<Value> blockIvs, RowLoad load) {
  unsigned key = op.getNumParallelLoops() - 1, red = key + 1;
  Value output = op.getDpsInitOperand(0)->get();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  auto rowType = VectorType::get({lanes}, b.getF32Type());
  // The ivs of each key of the block, the reduction's appended below.
  SmallVector<SmallVector<Value>> ivs;
  for (int64_t r = 0; r < lanes; ++r) {
    ivs.emplace_back(blockIvs);
    if (r > 0)
      ivs.back()[key] = arith::AddIOp::create(b, l, blockIvs[key], index(r));
  }
  Value zero =
      arith::ConstantOp::create(b, l, DenseElementsAttr::get(rowType, 0.0f));
  auto loop = scf::ForOp::create(
      b, l, all.lbs[red], all.ubs[red], index(lanes),
      SmallVector<Value>(lanes, zero),
      [&](OpBuilder &fb, Location fl, Value e0, ValueRange sums) {
        SmallVector<SmallVector<Value>> at(ivs);
        for (SmallVector<Value> &keyIvs : at)
          keyIvs.push_back(e0);
        scf::YieldOp::create(
            fb, fl,
            emitSharedRowPayloads(fb, fl, op, lanes, at, sums, key, red, load));
      });
  Value scores = sumLanesOfEach(b, l, SmallVector<Value>(loop.getResults()));
  SmallVector<Value> outIndices = applyMap(b, l, outMap, ivs.front());
  Value init = vector::LoadOp::create(b, l, rowType, output, outIndices);
  vector::StoreOp::create(b, l, arith::AddFOp::create(b, l, init, scores),
                          output, outIndices);
}

/// Key-block form of a tile of scores: `lanes` keys at a time, each key's
/// sum a vector of lane partial sums (the reduction dim read a vector at a
/// time, FMAs), the block's sums then reduced together (sumLanesOfEach) and
/// added to the output as one vector; inputs that do not depend on the key
/// (the query row) are loaded once per step for all the block's keys. The
/// keys past the last whole block go one score at a time.
void emitKeyBlockScores(IRRewriter &rewriter, linalg::GenericOp op,
                        const LoopBounds &all, int64_t lanes) {
  Location loc = op.getLoc();
  unsigned parallel = op.getNumParallelLoops(), key = parallel - 1,
           red = parallel;
  auto index = [&](OpBuilder &b, Location l, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  SmallVector<Value> lbs(ArrayRef(all.lbs).take_front(parallel)),
      ubs(ArrayRef(all.ubs).take_front(parallel)),
      steps(parallel, index(rewriter, loc, 1));
  Value extent = arith::SubIOp::create(rewriter, loc, ubs[key], lbs[key]);
  Value split = arith::SubIOp::create(
      rewriter, loc, ubs[key],
      arith::RemUIOp::create(rewriter, loc, extent,
                             index(rewriter, loc, lanes)));
  SmallVector<Value> mainUbs(ubs), restLbs(lbs);
  mainUbs[key] = split;
  restLbs[key] = split;
  steps[key] = index(rewriter, loc, lanes);
  // With few query rows (a decode step's heads: their rows fit L1 with
  // room to spare) the key blocks go outermost (inside a threaded loop, an
  // SDPA block's, the loop nest runs its dims in order): each block's keys
  // are read from memory once and then reused from L1 by every row, so the
  // misses spread over the tile's work instead of all falling in its first
  // row's. With many rows
  // (a prefill block) the rows go outermost: the tile's keys stay in L1
  // from earlier rows anyway, and each row's inputs stay in L1 across its
  // key blocks.
  bool keysOutermost =
      fewRows(op, all, ArrayRef<unsigned>(llvm::to_vector(llvm::seq(0u, key))),
              *getConstantIntValue(all.ubs[red]));
  auto ordered = [&](ArrayRef<Value> dims) {
    if (!keysOutermost)
      return SmallVector<Value>(dims);
    SmallVector<Value> order = {dims[key]};
    llvm::append_range(order, dims.drop_back());
    return order;
  };
  auto emitBlock = [&](OpBuilder &b, Location l, ArrayRef<Value> blockIvs,
                       RowLoad load) {
    emitScoresKeyBlock(b, l, op, all, lanes, blockIvs, load);
  };
  std::optional<WidenedKeys> widened;
  if (keysOutermost)
    widened = widenedKeyInput(op, all, key);
  if (widened) {
    emitWidenedKeyBlocks(rewriter, op, all, *widened, lanes, split, emitBlock);
  } else {
    scf::ParallelOp::create(
        rewriter, loc, ordered(lbs), ordered(mainUbs), ordered(steps),
        [&](OpBuilder &b, Location l, ValueRange orderedIvs) {
          SmallVector<Value> blockIvs(orderedIvs);
          if (keysOutermost) {
            blockIvs.assign(orderedIvs.begin() + 1, orderedIvs.end());
            blockIvs.push_back(orderedIvs.front());
          }
          emitBlock(b, l, blockIvs, nullptr);
          scf::ReduceOp::create(b, l);
        });
  }
  emitRegisterLoops(rewriter, loc, op, all, restLbs, ubs,
                    SmallVector<int64_t>(parallel, 1));
}

/// The columns of the square matrix whose rows are `rows` (`rows.size()`
/// vectors of as many lanes, a power of two): each level swaps the
/// off-diagonal s x s blocks of every 2s x 2s block, one two-source shuffle
/// per vector (log2(lanes) levels).
SmallVector<Value> transposeLanes(OpBuilder &b, Location l,
                                  SmallVector<Value> rows) {
  int64_t n = rows.size();
  for (int64_t s = 1; s < n; s *= 2) {
    SmallVector<int64_t> low(n), high(n);
    for (int64_t j = 0; j < n; ++j) {
      bool upper = j & s;
      low[j] = upper ? n + j - s : j;
      high[j] = upper ? n + j : j + s;
    }
    for (int64_t i = 0; i < n; ++i) {
      if (i & s)
        continue;
      Value a = rows[i], c = rows[i + s];
      rows[i] = vector::ShuffleOp::create(b, l, a, c, low);
      rows[i + s] = vector::ShuffleOp::create(b, l, a, c, high);
    }
  }
  return rows;
}

RowPanelTile rowPanelTile(OpBuilder &b, Location l, const LoopBounds &all,
                          unsigned column, unsigned reduction) {
  RowPanelTile tile;
  tile.column = column;
  tile.reduction = reduction;
  tile.rows = arith::ConstantIndexOp::create(b, l, 1);
  for (unsigned d = 0; d < reduction; ++d) {
    if (d == column)
      continue;
    Value extent = arith::SubIOp::create(b, l, all.ubs[d], all.lbs[d]);
    tile.rowDims.push_back(d);
    tile.extents.push_back(extent);
    tile.rows = arith::MulIOp::create(b, l, tile.rows, extent);
  }
  tile.blockedRows = arith::SubIOp::create(
      b, l, tile.rows,
      arith::RemUIOp::create(
          b, l, tile.rows, arith::ConstantIndexOp::create(b, l, kPackedRows)));
  return tile;
}

SmallVector<Value> rowPosition(OpBuilder &b, Location l, const LoopBounds &all,
                               const RowPanelTile &tile, Value r) {
  auto split = affine::AffineDelinearizeIndexOp::create(b, l, r, tile.extents,
                                                        /*hasOuterBound=*/true);
  SmallVector<Value> at(all.lbs);
  for (auto [i, d] : llvm::enumerate(tile.rowDims))
    at[d] = arith::AddIOp::create(b, l, all.lbs[d], split.getResult(i));
  return at;
}

/// Rows [from, to) of `tile`, `block` at a time, against its `width`
/// columns from `c0`: each row's sums a vector iter_arg of the reduction
/// loop, started from the output and stored back (through `mask` when
/// there is one). Per step the input read along the column (`columnRow`
/// gives its row at the step's ivs) is loaded once for all the block's
/// rows, so are inputs that read the same element for every row
/// (sameAlongDims), the rest an element per row; the payload then runs on
/// rows (emitRowPayload: a broadcast FMA per row and vector). Each output is
/// summed in order (contract, no reassoc). `ends`, when given, changes
/// what the sums start from and what is stored.
void emitRowPanelBlocks(
    OpBuilder &b, Location l, linalg::GenericOp op, const LoopBounds &all,
    const RowPanelTile &tile, Value c0, int64_t width, Value from, Value to,
    int64_t block, Value mask,
    function_ref<Value(OpBuilder &, Location, OpOperand *, ArrayRef<Value>)>
        columnRow,
    const RowPanelEnds *ends) {
  Value output = op.getDpsInitOperand(0)->get();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  Type sumElement = op.getRegion().front().getArguments().back().getType();
  auto sumsType = VectorType::get({width}, sumElement);
  auto index = [&](OpBuilder &ib, Location il, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ib, il, v);
  };
  Value zeroSums =
      mask ? arith::ConstantOp::create(
                 b, l,
                 DenseElementsAttr::get(sumsType, b.getZeroAttr(sumElement)))
           : Value();
  Value initSums = ends && ends->init
                       ? vector::BroadcastOp::create(b, l, sumsType, ends->init)
                       : Value();
  scf::ParallelOp::create(
      b, l, ValueRange{from}, ValueRange{to}, ValueRange{index(b, l, block)},
      [&](OpBuilder &rb, Location rl, ValueRange r0) {
        SmallVector<SmallVector<Value>> ivs;
        SmallVector<SmallVector<Value>> outIndices;
        SmallVector<Value> inits, rowIds;
        for (int64_t m = 0; m < block; ++m) {
          Value r =
              m == 0 ? r0[0]
                     : arith::AddIOp::create(rb, rl, r0[0], index(rb, rl, m));
          rowIds.push_back(r);
          SmallVector<Value> at = rowPosition(rb, rl, all, tile, r);
          at[tile.column] = c0;
          outIndices.push_back(applyMap(rb, rl, outMap, at));
          inits.push_back(
              initSums ? initSums
              : mask   ? vector::MaskedLoadOp::create(rb, rl, sumsType, output,
                                                      outIndices.back(), mask,
                                                      zeroSums)
                           .getResult()
                     : vector::LoadOp::create(rb, rl, sumsType, output,
                                              outIndices.back())
                           .getResult());
          ivs.push_back(std::move(at));
        }
        unsigned red = tile.reduction;
        auto storeRows = [&](ValueRange finished) {
          for (auto [sum, indices, at] : llvm::zip(finished, outIndices, ivs)) {
            Value row =
                ends && ends->store
                    ? ends->store(rb, rl, ArrayRef(at).take_front(red), sum)
                    : sum;
            if (mask)
              vector::MaskedStoreOp::create(rb, rl, output, indices, mask, row);
            else
              vector::StoreOp::create(rb, rl, row, output, indices);
          }
          scf::ReduceOp::create(rb, rl);
        };
        if (ends && ends->sums) {
          storeRows(ends->sums(rb, rl, rowIds, inits));
          return;
        }
        auto loop = scf::ForOp::create(
            rb, rl, all.lbs[red], all.ubs[red], all.steps[red], inits,
            [&](OpBuilder &fb, Location fl, Value e, ValueRange sums) {
              for (SmallVector<Value> &at : ivs)
                at[red] = e;
              DenseMap<OpOperand *, Value> shared;
              SmallVector<Value> next;
              for (auto [at, sum] : llvm::zip(ivs, sums))
                next.push_back(emitRowPayload(
                    fb, fl, op, width, sum, [&](OpOperand *in) -> Value {
                      if (Value v = shared.lookup(in))
                        return v;
                      AffineMap map = op.getMatchingIndexingMap(in);
                      Value v;
                      if (map.isFunctionOfDim(tile.column))
                        v = columnRow(fb, fl, in, at);
                      else
                        v = memref::LoadOp::create(fb, fl, in->get(),
                                                   applyMap(fb, fl, map, at));
                      if (map.isFunctionOfDim(tile.column) ||
                          sameAlongDims(map, in->get(), tile.rowDims))
                        shared[in] = v;
                      return v;
                    }));
              scf::YieldOp::create(fb, fl, next);
            });
        storeRows(loop.getResults());
      });
}

/// Every row of `tile` against the panel at `c0` (emitRowPanelBlocks):
/// its blockedRows kPackedRows at a time, the rest one at a time; with
/// `ends->firstBlock`, blocks of that many rows first, then the rest so.
void emitRowPanel(
    OpBuilder &b, Location l, linalg::GenericOp op, const LoopBounds &all,
    const RowPanelTile &tile, Value c0, int64_t width, Value mask,
    function_ref<Value(OpBuilder &, Location, OpOperand *, ArrayRef<Value>)>
        columnRow,
    const RowPanelEnds *ends) {
  Value zero = arith::ConstantIndexOp::create(b, l, 0);
  if (ends && ends->firstBlock) {
    SmallVector<Value> blockEnds =
        rowBlockEnds(b, l, zero, tile.rows, {ends->firstBlock, kPackedRows, 1});
    emitRowPanelBlocks(b, l, op, all, tile, c0, width, zero, blockEnds[0],
                       ends->firstBlock, mask, columnRow, ends);
    emitRowPanelBlocks(b, l, op, all, tile, c0, width, blockEnds[0],
                       blockEnds[1], kPackedRows, mask, columnRow, ends);
    emitRowPanelBlocks(b, l, op, all, tile, c0, width, blockEnds[1], tile.rows,
                       1, mask, columnRow, ends);
    return;
  }
  emitRowPanelBlocks(b, l, op, all, tile, c0, width, zero, tile.blockedRows,
                     kPackedRows, mask, columnRow, ends);
  emitRowPanelBlocks(b, l, op, all, tile, c0, width, tile.blockedRows,
                     tile.rows, 1, mask, columnRow, ends);
}

/// The key input of a tile of scores that the packed form takes: a
/// key-block tile (isKeyBlockScores) with many query rows (not fewRows: a
/// prefill block, where each key is reused by every row) whose one input
/// that depends on the key is read at [.., key, .., e], every other index
/// of it the same for every row (it reads no row dim, or an axis of static
/// size 1), so that one packed copy of the tile's keys serves all rows.
OpOperand *packedScoresKeys(linalg::GenericOp op, const LoopBounds &all,
                            int64_t lanes) {
  unsigned parallel = op.getNumParallelLoops(), key = parallel - 1,
           red = parallel;
  if (parallel < 2 || !isKeyBlockScores(op, all, lanes))
    return nullptr;
  SmallVector<unsigned> rowDims = llvm::to_vector(llvm::seq(0u, key));
  if (fewRows(op, all, rowDims, *getConstantIntValue(all.ubs[red])))
    return nullptr;
  OpOperand *keys = nullptr;
  for (OpOperand *input : op.getDpsInputOperands()) {
    AffineMap map = op.getMatchingIndexingMap(input);
    if (!isa<MemRefType>(input->get().getType()) || !map.isFunctionOfDim(key))
      continue;
    if (keys || !map.isFunctionOfDim(red))
      return nullptr;
    keys = input;
    AffineExpr keyDim = getAffineDimExpr(key, op.getContext());
    if (!sameAlongDims(map, input->get(), rowDims) ||
        llvm::count(map.getResults(), keyDim) != 1 ||
        llvm::count_if(map.getResults(), [&](AffineExpr e) {
          return e.isFunctionOfDim(key);
        }) != 1)
      return nullptr;
  }
  return keys;
}

/// Copies keys [j0, j0 + count) of `op`'s key input into `panel` [E,
/// width] (element e of key c at [e, c]): blocks of `lanes` keys x `lanes`
/// elements transposed in registers, the last count mod lanes keys one
/// element at a time, and the columns from count on zeroed.
void packKeyPanel(OpBuilder &b, Location l, linalg::GenericOp op,
                  const LoopBounds &all, OpOperand *keys, Value panel, Value j0,
                  Value count, int64_t width, int64_t lanes) {
  unsigned key = op.getNumParallelLoops() - 1, red = key + 1;
  AffineMap keyMap = op.getMatchingIndexingMap(keys);
  Type keyElement = cast<MemRefType>(keys->get().getType()).getElementType();
  int64_t depth = *getConstantIntValue(all.ubs[red]);
  auto index = [&](OpBuilder &ib, Location il, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ib, il, v);
  };
  Value zero = index(b, l, 0), one = index(b, l, 1);
  Value keyStep = index(b, l, width);
  Value lanesStep = index(b, l, lanes);
  Value wholeKeys = arith::SubIOp::create(
      b, l, count, arith::RemUIOp::create(b, l, count, lanesStep));
  scf::ForOp::create(
      b, l, zero, wholeKeys, lanesStep, ValueRange{},
      [&](OpBuilder &cb, Location cl, Value c0, ValueRange) {
        scf::ForOp::create(
            cb, cl, zero, index(cb, cl, depth), lanesStep, ValueRange{},
            [&](OpBuilder &eb, Location el, Value e0, ValueRange) {
              SmallVector<Value> rowsOfKeys;
              SmallVector<Value> at(all.lbs);
              at[red] = e0;
              for (int64_t i = 0; i < lanes; ++i) {
                at[key] = arith::AddIOp::create(
                    eb, el, j0,
                    arith::AddIOp::create(eb, el, c0, index(eb, el, i)));
                rowsOfKeys.push_back(vector::LoadOp::create(
                    eb, el, VectorType::get({lanes}, keyElement), keys->get(),
                    applyMap(eb, el, keyMap, at)));
              }
              for (auto [i, column] :
                   llvm::enumerate(transposeLanes(eb, el, rowsOfKeys)))
                vector::StoreOp::create(
                    eb, el, column, panel,
                    ValueRange{
                        arith::AddIOp::create(eb, el, e0, index(eb, el, i)),
                        c0});
              scf::YieldOp::create(eb, el);
            });
        scf::YieldOp::create(cb, cl);
      });
  // Panel columns [from, to) one element at a time: `element` gives the
  // value of element e of column c, after `column` (if any) ran once for c.
  auto eachElement =
      [&](Value from, Value to,
          function_ref<void(OpBuilder &, Location, Value)> column,
          function_ref<Value(OpBuilder &, Location, Value, Value)> element) {
        scf::ForOp::create(
            b, l, from, to, one, ValueRange{},
            [&](OpBuilder &cb, Location cl, Value c, ValueRange) {
              if (column)
                column(cb, cl, c);
              scf::ForOp::create(
                  cb, cl, zero, index(cb, cl, depth), one, ValueRange{},
                  [&](OpBuilder &eb, Location el, Value e, ValueRange) {
                    memref::StoreOp::create(eb, el, element(eb, el, c, e),
                                            panel, ValueRange{e, c});
                    scf::YieldOp::create(eb, el);
                  });
              scf::YieldOp::create(cb, cl);
            });
      };
  SmallVector<Value> at(all.lbs);
  eachElement(
      wholeKeys, count,
      [&](OpBuilder &cb, Location cl, Value c) {
        at[key] = arith::AddIOp::create(cb, cl, j0, c);
      },
      [&](OpBuilder &eb, Location el, Value, Value e) -> Value {
        at[red] = e;
        return memref::LoadOp::create(eb, el, keys->get(),
                                      applyMap(eb, el, keyMap, at));
      });
  Value zeroKey =
      arith::ConstantOp::create(b, l, keyElement, b.getZeroAttr(keyElement));
  eachElement(count, keyStep, nullptr,
              [&](OpBuilder &, Location, Value, Value) { return zeroKey; });
}

/// Packed form of a tile of scores with many rows (packedScoresKeys): per
/// block of `width` keys, the keys are copied into a panel [E, width]
/// (element e of every key contiguous, the keys past the tile's end zero),
/// then blocks of kPackedRows query rows (the row dims linearized) run as
/// outer products: per e, one load of the panel's row feeds one broadcast
/// FMA per row, each row's scores a vector iter_arg (6 x 4 AVX-512 sums, as
/// a projection's packed form). In the key-block form each FMA loaded a key
/// vector of its own and every 16 scores took a tree of shuffles. Each
/// score is summed in order over e (contract, no reassoc). A block of
/// fewer than `width` keys (a tile's end) loads and stores its scores
/// through a mask. With `scores`, each row of sums takes that epilogue
/// (the softmax's scale, mask and row max) before its store.
void emitPackedScores(IRRewriter &rewriter, linalg::GenericOp op,
                      const LoopBounds &all, OpOperand *keys, int64_t width,
                      int64_t lanes, const ScoresEpilogue *scores) {
  Location loc = op.getLoc();
  unsigned parallel = op.getNumParallelLoops(), key = parallel - 1,
           red = parallel;
  Type keyElement = cast<MemRefType>(keys->get().getType()).getElementType();
  int64_t depth = *getConstantIntValue(all.ubs[red]);
  auto index = [&](OpBuilder &b, Location l, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  auto maskType = VectorType::get({width}, rewriter.getI1Type());
  Value zero = index(rewriter, loc, 0);
  RowPanelTile tile = rowPanelTile(rewriter, loc, all, key, red);
  Value panel = memref::AllocOp::create(
      rewriter, loc, MemRefType::get({depth, width}, keyElement),
      rewriter.getI64IntegerAttr(64));
  Value keyStep = index(rewriter, loc, width);
  scf::ForOp::create(
      rewriter, loc, all.lbs[key], all.ubs[key], keyStep, ValueRange{},
      [&](OpBuilder &b, Location l, Value j0, ValueRange) {
        Value count = arith::MinSIOp::create(
            b, l, keyStep, arith::SubIOp::create(b, l, all.ubs[key], j0));
        packKeyPanel(b, l, op, all, keys, panel, j0, count, width, lanes);
        Value mask =
            vector::CreateMaskOp::create(b, l, maskType, ValueRange{count});
        auto panelRow = [&](OpBuilder &fb, Location fl, OpOperand *,
                            ArrayRef<Value> at) -> Value {
          return vector::LoadOp::create(fb, fl,
                                        VectorType::get({width}, keyElement),
                                        panel, ValueRange{at[red], zero});
        };
        auto epilogue = [&](OpBuilder &eb, Location el, ArrayRef<Value> at,
                            Value row) {
          return emitScoresEpilogueRow(eb, el, *scores, at, key, width, lanes,
                                       row, mask);
        };
        RowPanelEnds ends;
        if (scores) {
          if (scores->init)
            ends.init = scores->init->getOperand(0);
          ends.store = epilogue;
        }
        emitRowPanel(b, l, op, all, tile, j0, width, mask, panelRow, &ends);
        scf::YieldOp::create(b, l);
      });
  memref::DeallocOp::create(rewriter, loc, panel);
}

/// The bf16 pair form of the packed scores of `op` whose key input is
/// `keys` (packedScoresKeys), `width` keys a block: its query input when
/// the payload is a dot product's step on bf16 operands
/// (bf16ProductOperands: q and k bf16, or f32 rounded to it) and both are
/// read along a depth of whole runs of kPairRun, contiguous in memory.
OpOperand *pairScoresQuery(linalg::GenericOp op, const LoopBounds &all,
                           OpOperand *keys, int64_t width) {
  unsigned red = op.getNumParallelLoops();
  std::optional<int64_t> depth = getConstantIntValue(all.ubs[red]);
  if (width != 64 || op.getNumLoops() != red + 1 || !depth ||
      *depth % kPairRun != 0 || op.getNumDpsInputs() != 2)
    return nullptr;
  OpOperand *query = op.getDpsInputOperand(0) == keys
                         ? op.getDpsInputOperand(1)
                         : op.getDpsInputOperand(0);
  AffineExpr e = getAffineDimExpr(red, op.getContext());
  for (OpOperand *input : {query, keys}) {
    AffineMap map = op.getMatchingIndexingMap(input);
    if (!isa<MemRefType>(input->get().getType()) || map.getNumResults() == 0 ||
        map.getResults().back() != e || !unitInnerStride(input->get()))
      return nullptr;
  }
  return bf16ProductOperands(op, query, keys) ? query : nullptr;
}

/// Copies keys [j0, j0 + count) of `op`'s key input into `panel` [E/2, 2 x
/// width] of bf16 pairs (rounded to bf16 first when `round`): key c's pair
/// k (elements 2k, 2k + 1, swapped: swappedPairRun) at [k, 2 c]. Whole
/// blocks of 16 keys go through storeTransposedPairRuns (a store per panel
/// row), the last count mod 16 keys a store per pair, and the columns from
/// count on are zeroed.
void packKeyPairPanel(OpBuilder &b, Location l, linalg::GenericOp op,
                      const LoopBounds &all, OpOperand *keys, Value panel,
                      Value j0, Value count, int64_t width, bool round) {
  unsigned key = op.getNumParallelLoops() - 1, red = key + 1;
  int64_t depth = *getConstantIntValue(all.ubs[red]);
  auto index = [&](OpBuilder &ib, Location il, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ib, il, v);
  };
  Type bf16 = b.getBF16Type();
  Value zero = index(b, l, 0), one = index(b, l, 1),
        run = index(b, l, kPairRun), end = index(b, l, depth);
  AffineExpr d0 = b.getAffineDimExpr(0);
  // Key c's run of kPairRun elements from e0.
  auto keyRun = [&](OpBuilder &kb, Location kl, Value c, Value e0) {
    SmallVector<Value> at(all.lbs);
    at[red] = e0;
    at[key] = arith::AddIOp::create(kb, kl, j0, c);
    return swappedPairRun(kb, kl, keys->get(),
                          applyMap(kb, kl, op.getMatchingIndexingMap(keys), at),
                          round);
  };
  // `body(c, e0, slot)` for keys [from, to), `step` at a time, and each
  // run of kPairRun elements from e0; key c's pairs at column `slot` = 2c.
  auto eachKeyRun =
      [&](Value from, Value to, Value step,
          function_ref<void(OpBuilder &, Location, Value, Value, Value)> body) {
        scf::ForOp::create(
            b, l, from, to, step, ValueRange{},
            [&](OpBuilder &cb, Location cl, Value c, ValueRange) {
              Value slot = arith::AddIOp::create(cb, cl, c, c);
              scf::ForOp::create(
                  cb, cl, zero, end, run, ValueRange{},
                  [&](OpBuilder &eb, Location el, Value e0, ValueRange) {
                    body(eb, el, c, e0, slot);
                    scf::YieldOp::create(eb, el);
                  });
              scf::YieldOp::create(cb, cl);
            });
      };
  constexpr int64_t blockKeys = kPairRun / 2;
  Value blockStep = index(b, l, blockKeys);
  Value whole = arith::SubIOp::create(
      b, l, count, arith::RemUIOp::create(b, l, count, blockStep));
  eachKeyRun(zero, whole, blockStep,
             [&](OpBuilder &eb, Location el, Value c0, Value e0, Value slot) {
               SmallVector<Value> runs;
               for (int64_t i = 0; i < blockKeys; ++i)
                 runs.push_back(keyRun(eb, el, offsetBy(eb, el, c0, i), e0));
               storeTransposedPairRuns(eb, el, runs, panel, e0, slot);
             });
  eachKeyRun(
      whole, count, one,
      [&](OpBuilder &eb, Location el, Value c, Value e0, Value slot) {
        Value pairs = keyRun(eb, el, c, e0);
        for (int64_t p = 0; p < kPairRun / 2; ++p)
          vector::StoreOp::create(
              eb, el,
              vector::ExtractStridedSliceOp::create(
                  eb, el, pairs, ArrayRef<int64_t>{2 * p}, ArrayRef<int64_t>{2},
                  ArrayRef<int64_t>{1}),
              panel,
              ValueRange{affine::AffineApplyOp::create(
                             eb, el, AffineMap::get(1, 0, d0.floorDiv(2) + p),
                             ValueRange{e0}),
                         slot});
      });
  Value zeroPair = arith::ConstantOp::create(
      b, l,
      DenseElementsAttr::get(VectorType::get({2}, bf16), b.getZeroAttr(bf16)));
  scf::ForOp::create(
      b, l, count, index(b, l, width), one, ValueRange{},
      [&](OpBuilder &cb, Location cl, Value c, ValueRange) {
        Value slot = arith::AddIOp::create(cb, cl, c, c);
        scf::ForOp::create(
            cb, cl, zero, index(cb, cl, depth / 2), one, ValueRange{},
            [&](OpBuilder &kb, Location kl, Value k, ValueRange) {
              vector::StoreOp::create(kb, kl, zeroPair, panel,
                                      ValueRange{k, slot});
              scf::YieldOp::create(kb, kl);
            });
        scf::YieldOp::create(cb, cl);
      });
}

/// The packed scores (emitPackedScores) as AVX512-BF16 dot products, for
/// a tile whose pairScoresQuery is `query`: the tile's query rows made bf16
/// pairs once (swappedPairRun), each block of `width` keys a panel of
/// pairs [E/2, 2 x width] (the keys past the tile's end zero), and each
/// block of rows summed by pairPanelSums: per pair of e, one vdpbf16ps per
/// 16 scores. Each pair is stored swapped, so every score sums e in order
/// and has the f32 form's bits (but for bf16 denormals, which the
/// instruction flushes). `scores`, when given, is fused as in the f32 form.
void emitPairScores(IRRewriter &rewriter, linalg::GenericOp op,
                    const LoopBounds &all, OpOperand *query, OpOperand *keys,
                    int64_t width, int64_t lanes, const ScoresEpilogue *scores,
                    bool amxTiles) {
  Location loc = op.getLoc();
  unsigned key = op.getNumParallelLoops() - 1, red = key + 1;
  int64_t depth = *getConstantIntValue(all.ubs[red]);
  BF16Pairs round = *bf16ProductOperands(op, query, keys);
  auto index = [&](OpBuilder &b, Location l, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  Type bf16 = rewriter.getBF16Type();
  Value zero = index(rewriter, loc, 0), one = index(rewriter, loc, 1),
        run = index(rewriter, loc, kPairRun), end = index(rewriter, loc, depth);
  RowPanelTile tile = rowPanelTile(rewriter, loc, all, key, red);
  // Each pair of kPairRun elements from `at` (along e) into `store`.
  auto eachRun =
      [&](OpBuilder &b, Location l, OpOperand *input, SmallVector<Value> at,
          bool rounded,
          function_ref<void(OpBuilder &, Location, Value, Value)> store) {
        scf::ForOp::create(
            b, l, zero, end, run, ValueRange{},
            [&](OpBuilder &eb, Location el, Value e0, ValueRange) {
              at[red] = e0;
              store(eb, el, e0,
                    swappedPairRun(
                        eb, el, input->get(),
                        applyMap(eb, el, op.getMatchingIndexingMap(input), at),
                        rounded));
              scf::YieldOp::create(eb, el);
            });
      };
  Value queryPairs = memref::AllocOp::create(
      rewriter, loc, MemRefType::get({ShapedType::kDynamic, depth}, bf16),
      ValueRange{tile.rows});
  scf::ForOp::create(
      rewriter, loc, zero, tile.rows, one, ValueRange{},
      [&](OpBuilder &b, Location l, Value r, ValueRange) {
        SmallVector<Value> at = rowPosition(b, l, all, tile, r);
        eachRun(b, l, query, at, round.roundInput,
                [&](OpBuilder &sb, Location sl, Value e0, Value pairs) {
                  vector::StoreOp::create(sb, sl, pairs, queryPairs,
                                          ValueRange{r, e0});
                });
        scf::YieldOp::create(b, l);
      });
  Value panel = memref::AllocOp::create(
      rewriter, loc, MemRefType::get({depth / 2, 2 * width}, bf16),
      rewriter.getI64IntegerAttr(64));
  Value keyStep = index(rewriter, loc, width);
  scf::ForOp::create(
      rewriter, loc, all.lbs[key], all.ubs[key], keyStep, ValueRange{},
      [&](OpBuilder &b, Location l, Value j0, ValueRange) {
        Value count = arith::MinSIOp::create(
            b, l, keyStep, arith::SubIOp::create(b, l, all.ubs[key], j0));
        packKeyPairPanel(b, l, op, all, keys, panel, j0, count, width,
                         round.roundWeight);
        Value mask = vector::CreateMaskOp::create(
            b, l, VectorType::get({width}, b.getI1Type()), ValueRange{count});
        auto epilogue = [&](OpBuilder &eb, Location el, ArrayRef<Value> at,
                            Value row) {
          return emitScoresEpilogueRow(eb, el, *scores, at, key, width, lanes,
                                       row, mask);
        };
        auto pairSums = [&](OpBuilder &sb, Location sl, ArrayRef<Value> rows,
                            ValueRange inits) {
          if (amxTiles && int64_t(rows.size()) == kAmxRows)
            return amxPanelSums(
                sb, sl, panel, queryPairs, rows.front(), inits,
                index(sb, sl, depth / 32), width,
                memref::AllocaOp::create(
                    sb, sl,
                    MemRefType::get({kAmxRows, width}, sb.getF32Type())));
          return pairPanelSums(sb, sl, panel, queryPairs, rows, inits,
                               index(sb, sl, depth / 2), width);
        };
        RowPanelEnds ends;
        ends.sums = pairSums;
        ends.firstBlock = amxTiles ? kAmxRows : 0;
        if (scores) {
          if (scores->init)
            ends.init = scores->init->getOperand(0);
          ends.store = epilogue;
        }
        // The sums come from `ends.sums`: no input is read by the rows.
        auto noColumnRow = [](OpBuilder &, Location, OpOperand *,
                              ArrayRef<Value>) -> Value { return Value(); };
        emitRowPanel(b, l, op, all, tile, j0, width, mask, noColumnRow, &ends);
        scf::YieldOp::create(b, l);
      });
  memref::DeallocOp::create(rewriter, loc, panel);
  memref::DeallocOp::create(rewriter, loc, queryPairs);
}

/// Keys per block of the packed scores: four vectors with 32 registers
/// (AVX-512: 6 x 4 sums), two with 16.
int64_t packedScoresWidth(int64_t vectorRegisters) {
  return f32Lanes(vectorRegisters) * (vectorRegisters >= 32 ? 4 : 2);
}

} // namespace rotor::host
