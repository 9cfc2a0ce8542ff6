//===- ScoresEpilogue.cpp - A tile of scores' softmax steps in registers --===//
//
// An online softmax computes a tile of scores, rewrites it in place (the
// scale, the causal mask) and reduces each row to its max: a pass over the
// tile per step, the last a chain of NaN-aware maximums along each row
// that is latency-bound (6.6% of the example layer's prefill attention).
// The packed form of the scores (LowerReductionsToRegisterLoops.cpp) holds
// each row of sums in registers at the end of its reduction; here the
// scale, the mask and the row's max are applied there, before the row's
// one store, with the rows of a block as independent chains. The
// elementwise ops are the same ops on the same values (bit-identical). The
// max is exact whatever the grouping; its compare-and-select tree differs
// from maximumf only where a row holds a NaN (which the tree may drop:
// exp(s - max) makes that row's output NaN either way) or zeros of both
// signs.
//
//===----------------------------------------------------------------------===//

#include "ScoresEpilogue.h"
#include "PackedProjection.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;

namespace rotor::host {
namespace {

/// Whether `map` selects exactly its first `count` dims, in order.
bool leadingDims(AffineMap map, unsigned count) {
  if (map.getNumResults() != count)
    return false;
  for (auto [i, e] : llvm::enumerate(map.getResults()))
    if (e != getAffineDimExpr(i, map.getContext()))
      return false;
  return true;
}

/// Whether `op` rewrites the scores `s` (`rank` dims, the key last) in
/// place, element by element: its one output s and any input s at the
/// element it writes, its other inputs scalars or memrefs read at an index
/// that does not depend on the key, and a payload of pure elementwise ops,
/// scalar constants and linalg.index.
bool isInPlaceElementwise(linalg::GenericOp op, Value s, unsigned rank) {
  if (!op.hasPureBufferSemantics() || op.getNumLoops() != rank ||
      op.getNumParallelLoops() != rank || op.getNumDpsInits() != 1 ||
      op.getDpsInitOperand(0)->get() != s ||
      !leadingDims(op.getMatchingIndexingMap(op.getDpsInitOperand(0)), rank))
    return false;
  for (OpOperand *input : op.getDpsInputOperands()) {
    Value value = input->get();
    AffineMap map = op.getMatchingIndexingMap(input);
    if (value == s ? !leadingDims(map, rank)
                   : isa<ShapedType>(value.getType()) &&
                         (!isa<MemRefType>(value.getType()) ||
                          map.isFunctionOfDim(rank - 1)))
      return false;
  }
  return elementwisePayload(op, /*indices=*/true);
}

/// Whether `op` is the row max of the f32 scores `s` (`rank` dims, the key
/// last) into a buffer of its own: m[..] = maximumf(s[.., j], m[..]).
bool isRowMax(linalg::GenericOp op, Value s, unsigned rank) {
  if (!op.hasPureBufferSemantics() || op.getNumLoops() != rank ||
      op.getNumDpsInputs() != 1 || op.getNumDpsInits() != 1 ||
      op.getIteratorTypesArray().back() != utils::IteratorType::reduction ||
      op.getNumParallelLoops() != rank - 1)
    return false;
  OpOperand *in = op.getDpsInputOperand(0), *out = op.getDpsInitOperand(0);
  auto runningType = dyn_cast<MemRefType>(out->get().getType());
  if (in->get() != s || out->get() == s || !runningType ||
      !runningType.getElementType().isF32() ||
      !leadingDims(op.getMatchingIndexingMap(in), rank) ||
      !leadingDims(op.getMatchingIndexingMap(out), rank - 1))
    return false;
  Block &body = op.getRegion().front();
  auto max =
      body.getTerminator()->getOperand(0).getDefiningOp<arith::MaximumFOp>();
  if (!max || !llvm::hasSingleElement(body.without_terminator()))
    return false;
  Value score = body.getArgument(0), running = body.getArgument(1);
  return (max.getLhs() == score && max.getRhs() == running) ||
         (max.getLhs() == running && max.getRhs() == score);
}

/// The buffer a linalg.copy or linalg.fill between the scores and the row
/// max initializes: an allocation made since the scores (in `fresh`), named
/// directly; null for any other op.
Value freshInit(Operation *op, const DenseSet<Value> &fresh) {
  if (!isa<linalg::CopyOp, linalg::FillOp>(op))
    return Value();
  auto linalgOp = cast<linalg::LinalgOp>(op);
  Value init = linalgOp.getDpsInitOperand(0)->get();
  return linalgOp.hasPureBufferSemantics() && fresh.contains(init) ? init
                                                                   : Value();
}

/// Whether every op in `block` before `end` that uses `buffer` (directly or
/// inside it) is one of `allowed`.
bool usedOnlyBy(Value buffer, Block *block, Operation *end,
                ArrayRef<Operation *> allowed) {
  return llvm::all_of(buffer.getUsers(), [&](Operation *user) {
    Operation *at = block->findAncestorOpInBlock(*user);
    return at && (end->isBeforeInBlock(at) || llvm::is_contained(allowed, at));
  });
}

/// One elementwise op of the epilogue on a row of scores (`width` lanes
/// from key at[key]): the scores as a vector, other inputs loaded at the
/// row's position and broadcast, linalg.index of the key the lanes' keys.
Value emitElementwiseRow(OpBuilder &b, Location l, linalg::GenericOp op,
                         ArrayRef<Value> at, unsigned key, int64_t width,
                         Value scores) {
  Value s = op.getDpsInitOperand(0)->get();
  auto inputValue = [&](OpOperand *input) -> Value {
    if (input->get() == s)
      return scores;
    return memref::LoadOp::create(
        b, l, input->get(),
        applyMap(b, l, op.getMatchingIndexingMap(input), at));
  };
  auto indexRow = [&](unsigned dim) -> Value {
    if (dim != key)
      return at[dim];
    auto keys = VectorType::get({width}, b.getIndexType());
    return arith::AddIOp::create(
        b, l, vector::BroadcastOp::create(b, l, keys, at[dim]),
        vector::StepOp::create(b, l, keys));
  };
  return emitRowPayload(b, l, op, width, scores, inputValue, indexRow,
                        /*contractSum=*/false);
}

/// The largest lane of `row` by a tree of `a > b ? a : b` (x86's vmaxps,
/// one instruction a level): first across its `lanes`-wide pieces, then
/// across the lanes by shuffles. A maximumf tree takes five instructions a
/// level on x86 (NaNs and the order of -0 and +0), all in each row's one
/// chain. Where it differs from the row's maximumf, the row holds a NaN
/// (its output is NaN through exp(s - max) either way) or only zeros of
/// both signs (exp(s - max) is 1 either way).
Value greatestLane(OpBuilder &b, Location l, Value row, int64_t lanes) {
  auto larger = [&](Value x, Value y) -> Value {
    Value greater =
        arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGT, x, y);
    return arith::SelectOp::create(b, l, greater, x, y);
  };
  int64_t width = cast<VectorType>(row.getType()).getNumElements();
  SmallVector<Value> pieces;
  for (int64_t offset = 0; offset < width; offset += lanes)
    pieces.push_back(vector::ExtractStridedSliceOp::create(
        b, l, row, ArrayRef<int64_t>{offset}, ArrayRef<int64_t>{lanes},
        ArrayRef<int64_t>{1}));
  while (pieces.size() > 1) {
    SmallVector<Value> next;
    for (size_t i = 0; i + 1 < pieces.size(); i += 2)
      next.push_back(larger(pieces[i], pieces[i + 1]));
    if (pieces.size() % 2)
      next.push_back(pieces.back());
    pieces = std::move(next);
  }
  Value piece = pieces.front();
  for (int64_t half = lanes / 2; half >= 1; half /= 2) {
    SmallVector<int64_t> mask;
    for (int64_t i = 0; i < lanes; ++i)
      mask.push_back((i + half) % lanes);
    piece = larger(piece,
                   vector::ShuffleOp::create(b, l, piece, piece, mask));
  }
  return vector::ExtractOp::create(b, l, piece, ArrayRef<int64_t>{0});
}

} // namespace

std::optional<ScoresEpilogue> matchScoresEpilogue(linalg::GenericOp scores) {
  unsigned rank = scores.getNumParallelLoops();
  if (!scores.hasPureBufferSemantics() || scores.getNumDpsInits() != 1 ||
      scores.getNumLoops() != rank + 1)
    return std::nullopt;
  OpOperand *init = scores.getDpsInitOperand(0);
  Value s = init->get();
  if (!s.getDefiningOp<memref::AllocOp>() ||
      !leadingDims(scores.getMatchingIndexingMap(init), rank))
    return std::nullopt;
  Block *block = scores->getBlock();
  ScoresEpilogue epi;
  // Every element of the scores is summed (their op's parallel dims index
  // them whole), so a fill before it only gives the sums' start.
  for (Operation *it = scores->getPrevNode(); it; it = it->getPrevNode()) {
    if (llvm::none_of(s.getUsers(),
                      [&](Operation *user) { return it->isAncestor(user); }))
      continue;
    auto fill = dyn_cast<linalg::FillOp>(it);
    if (fill && fill.hasPureBufferSemantics() &&
        fill.getDpsInitOperand(0)->get() == s)
      epi.init = fill;
    break;
  }
  // Between the scores and the row max: the epilogue's elementwise ops,
  // and ops that stay before the fused form, which may only be pure,
  // allocate, or initialize a buffer allocated since the scores (the
  // running max's copy).
  DenseSet<Value> fresh;
  SmallVector<Operation *> inits;
  for (Operation *it = scores->getNextNode(); it && !epi.rowMax;
       it = it->getNextNode()) {
    auto generic = dyn_cast<linalg::GenericOp>(it);
    if (generic && isRowMax(generic, s, rank))
      epi.rowMax = generic;
    else if (generic && isInPlaceElementwise(generic, s, rank))
      epi.elementwise.push_back(generic);
    else if (auto alloc = dyn_cast<memref::AllocOp>(it))
      fresh.insert(alloc);
    else if (freshInit(it, fresh))
      inits.push_back(it);
    else if (it->getNumRegions() != 0 || !isPure(it))
      return std::nullopt;
  }
  if (!epi.rowMax)
    return std::nullopt;
  // No other op before the row max touches the scores, under their name or
  // another (a view, a transpose, a select, a region's value), so none sees
  // them at another step than the unfused passes would. A buffer
  // initialized on the way, the running max among them, is touched before
  // the row max only by its init and the row max: the moved ops never read
  // it, so they may run after its init.
  SmallVector<Operation *> scoresOps = {scores, epi.rowMax};
  if (epi.init)
    scoresOps.push_back(epi.init);
  scoresOps.append(epi.elementwise.begin(), epi.elementwise.end());
  if (!usedOnlyBy(s, block, epi.rowMax, scoresOps))
    return std::nullopt;
  for (Operation *it : inits)
    if (!usedOnlyBy(freshInit(it, fresh), block, epi.rowMax,
                    {it, epi.rowMax}))
      return std::nullopt;
  // The running max itself is one of those buffers, so it is updated after
  // every block of rows without an op that moved past it reading it.
  Value running = epi.rowMax.getDpsInitOperand(0)->get();
  if (llvm::none_of(inits, [&](Operation *it) {
        return freshInit(it, fresh) == running;
      }))
    return std::nullopt;
  return epi;
}

Value emitScoresEpilogueRow(OpBuilder &b, Location l,
                            const ScoresEpilogue &epi, ArrayRef<Value> at,
                            unsigned key, int64_t width, int64_t lanes,
                            Value sums, Value mask) {
  Value row = sums;
  for (linalg::GenericOp op : epi.elementwise)
    row = emitElementwiseRow(b, l, op, at, key, width, row);
  // The lanes past the tile's end hold no key: -inf leaves the max alone.
  Value keys = row;
  if (mask) {
    auto rowType = cast<VectorType>(row.getType());
    Value minusInf = arith::ConstantOp::create(
        b, l,
        DenseElementsAttr::get(
            rowType, APFloat::getInf(b.getF32Type().getFloatSemantics(),
                                     /*Negative=*/true)));
    keys = arith::SelectOp::create(b, l, mask, row, minusInf);
  }
  Value tileMax = greatestLane(b, l, keys, lanes);
  linalg::GenericOp max = epi.rowMax;
  OpOperand *out = max.getDpsInitOperand(0);
  SmallVector<Value> indices =
      applyMap(b, l, max.getMatchingIndexingMap(out), at);
  Value running = memref::LoadOp::create(b, l, out->get(), indices);
  Block &body = max.getRegion().front();
  IRMapping values;
  values.map(body.getArgument(0), tileMax);
  values.map(body.getArgument(1), running);
  Operation *next =
      b.clone(*body.getTerminator()->getOperand(0).getDefiningOp(), values);
  memref::StoreOp::create(b, l, next->getResult(0), out->get(), indices);
  return row;
}

} // namespace rotor::host
