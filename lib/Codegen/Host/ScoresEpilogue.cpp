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
// elementwise ops are the same ops on the same values (bit-identical); the
// max is exact whatever the grouping (its bits may differ only in a zero's
// sign or a NaN's payload, as the lane form's).
//
//===----------------------------------------------------------------------===//

#include "ScoresEpilogue.h"
#include "PackedProjection.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

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
  return llvm::all_of(
      op.getRegion().front().without_terminator(), [](Operation &inner) {
        if (isa<linalg::IndexOp>(inner))
          return true;
        if (isa<arith::ConstantOp>(inner))
          return inner.getResult(0).getType().isIntOrIndexOrFloat();
        return inner.getNumResults() == 1 && inner.getNumRegions() == 0 &&
               inner.hasTrait<OpTrait::Elementwise>() && isPure(&inner) &&
               llvm::all_of(inner.getOperandTypes(), [](Type t) {
                 return t.isIntOrIndexOrFloat();
               });
      });
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

/// The buffer `value` views (through view-like ops), or `value` itself.
Value viewedBuffer(Value value) {
  while (auto view = value.getDefiningOp<ViewLikeOpInterface>())
    value = view.getViewSource();
  return value;
}

/// The buffers `op` writes (or frees), when they are all allocations in
/// `fresh`; nothing when it writes anything else or its effects are
/// unknown.
std::optional<SmallVector<Value>> freshWrites(Operation *op,
                                              const DenseSet<Value> &fresh) {
  auto effects = dyn_cast<MemoryEffectOpInterface>(op);
  if (!effects)
    return std::nullopt;
  SmallVector<MemoryEffects::EffectInstance> instances;
  effects.getEffects(instances);
  SmallVector<Value> written;
  for (MemoryEffects::EffectInstance &instance : instances) {
    if (isa<MemoryEffects::Read>(instance.getEffect()))
      continue;
    Value value = instance.getValue();
    if (!value || !fresh.contains(viewedBuffer(value)))
      return std::nullopt;
    written.push_back(viewedBuffer(value));
  }
  return written;
}

/// One elementwise op of the epilogue on a row of scores (`width` lanes
/// from key at[key]): the scores as a vector, other inputs loaded at the
/// row's position and broadcast, linalg.index of the key the lanes' keys.
Value emitElementwiseRow(OpBuilder &b, Location l, linalg::GenericOp op,
                         ArrayRef<Value> at, unsigned key, int64_t width,
                         Value scores) {
  Block &body = op.getRegion().front();
  auto rowOf = [&](Type element) { return VectorType::get({width}, element); };
  IRMapping rows;
  auto asRow = [&](Value v) -> Value {
    if (Value mapped = rows.lookupOrNull(v))
      return mapped;
    return vector::BroadcastOp::create(b, l, rowOf(v.getType()), v);
  };
  Value s = op.getDpsInitOperand(0)->get();
  for (OpOperand &operand : op->getOpOperands()) {
    Value arg = body.getArgument(operand.getOperandNumber());
    if (operand.get() == s)
      rows.map(arg, scores);
    else if (arg.use_empty())
      continue;
    else if (isa<MemRefType>(operand.get().getType()))
      rows.map(arg, asRow(memref::LoadOp::create(
                        b, l, operand.get(),
                        applyMap(b, l, op.getMatchingIndexingMap(&operand),
                                 at))));
    else
      rows.map(arg, asRow(operand.get()));
  }
  for (Operation &scalar : body.without_terminator()) {
    Value row;
    if (auto index = dyn_cast<linalg::IndexOp>(scalar)) {
      row = asRow(at[index.getDim()]);
      if (index.getDim() == key)
        row = arith::AddIOp::create(
            b, l, row, vector::StepOp::create(b, l, rowOf(b.getIndexType())));
    } else if (isa<arith::ConstantOp>(scalar)) {
      row = asRow(b.clone(scalar)->getResult(0));
    } else {
      SmallVector<Value> operands =
          llvm::map_to_vector(scalar.getOperands(), asRow);
      OperationState state(l, scalar.getName().getStringRef(), operands,
                           TypeRange{rowOf(scalar.getResult(0).getType())},
                           scalar.getAttrs());
      row = b.create(state)->getResult(0);
    }
    rows.map(scalar.getResult(0), row);
  }
  return asRow(body.getTerminator()->getOperand(0));
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
  // The scores are an allocation that no view aliases, so every op that
  // reads or writes them names them.
  if (!s.getDefiningOp<memref::AllocOp>() ||
      !leadingDims(scores.getMatchingIndexingMap(init), rank) ||
      llvm::any_of(s.getUsers(), [](Operation *user) {
        return isa<ViewLikeOpInterface>(user);
      }))
    return std::nullopt;
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
  // The ops that move down to the row max's place, past every op between.
  SmallVector<Operation *> moved = {scores};
  DenseSet<Value> fresh;
  for (Operation *it = scores->getNextNode(); it && !epi.rowMax;
       it = it->getNextNode()) {
    if (llvm::any_of(s.getUsers(),
                     [&](Operation *user) { return it->isAncestor(user); })) {
      auto generic = dyn_cast<linalg::GenericOp>(it);
      if (generic && isRowMax(generic, s, rank))
        epi.rowMax = generic;
      else if (generic && isInPlaceElementwise(generic, s, rank))
        epi.elementwise.push_back(generic), moved.push_back(generic);
      else
        return std::nullopt;
      continue;
    }
    if (auto alloc = dyn_cast<memref::AllocOp>(it)) {
      fresh.insert(alloc);
      continue;
    }
    if (it->getNumRegions() == 0 && isPure(it))
      continue;
    // Stays before the fused form: it may write only buffers allocated
    // since the scores, none of them read by an op that moves past it.
    std::optional<SmallVector<Value>> writes = freshWrites(it, fresh);
    if (!writes)
      return std::nullopt;
    for (Operation *op : moved)
      for (Value operand : op->getOperands())
        if (llvm::is_contained(*writes, viewedBuffer(operand)))
          return std::nullopt;
  }
  if (!epi.rowMax)
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
  Operation *next = b.clone(*body.getTerminator()->getOperand(0).getDefiningOp(),
                            values);
  memref::StoreOp::create(b, l, next->getResult(0), out->get(), indices);
  return row;
}

} // namespace rotor::host
