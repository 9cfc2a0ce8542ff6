//===- PrefetchNextKeyTile.cpp - prefetch a decode step's next KV tile ----===//
//
// A decode step's attention streams the KV cache through a loop over key
// tiles: each iteration reads its tile's rows from memory, then computes on
// them. The hardware prefetchers see the rows only once the loads reach
// them and run only a short way ahead, so the memory's time and the
// compute's add up (a Zen 4 read the 7B's cache at 0.4-0.5 of its read
// bandwidth). This pass prefetches the rows a fixed distance ahead, a few
// lines at each iteration of the nest that computes on the tile, so that
// the reads run alongside the compute.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/Interfaces/LoopLikeInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace rotor {
#define GEN_PASS_DEF_PREFETCHNEXTKEYTILE
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

constexpr int64_t kLineBytes = 64;
/// The fewest bytes of a buffer worth prefetching (8 MiB of K, as much of
/// V): a smaller cache stays in L3 from one step to the next, where the
/// prefetches cost more than they save (the example layer at 4k keys, 4
/// MiB: 0.358 against 0.330 ms a step), while the 7B's 8 MiB at 4k keys
/// gained as much as they cost.
constexpr int64_t kMinStreamedBytes = 8 << 20;

/// A tile the loop takes of a buffer defined outside it: rows [offset,
/// offset + step) along dim 0, whole in the other dims, which are
/// contiguous in the buffer.
struct StreamedTile {
  memref::SubViewOp view;
  /// The buffer's sizes past dim 0 and the bytes of one element.
  SmallVector<int64_t> rowShape;
  int64_t elementBytes;
};

/// Whether `offset` is the loop's induction variable plus what does not
/// change in the loop, so that the next iteration's is `offset + step`.
bool movesWithInductionVar(scf::ForOp loop, Value offset) {
  Value iv = loop.getInductionVar();
  if (offset == iv)
    return true;
  auto invariant = [&](Value v) { return loop.isDefinedOutsideOfLoop(v); };
  if (auto add = offset.getDefiningOp<arith::AddIOp>())
    return (invariant(add.getLhs()) &&
            movesWithInductionVar(loop, add.getRhs())) ||
           (invariant(add.getRhs()) &&
            movesWithInductionVar(loop, add.getLhs()));
  auto apply = offset.getDefiningOp<affine::AffineApplyOp>();
  if (!apply)
    return false;
  // Exactly one operand moves, and the map is that operand plus the rest:
  // f(.., x + 1, ..) - f(.., x, ..) simplifies to 1.
  AffineMap map = apply.getAffineMap();
  unsigned moving = map.getNumInputs();
  for (auto [i, operand] : llvm::enumerate(apply.getMapOperands())) {
    if (invariant(operand))
      continue;
    if (moving != map.getNumInputs() ||
        !movesWithInductionVar(loop, operand))
      return false;
    moving = i;
  }
  if (moving == map.getNumInputs())
    return false;
  MLIRContext *ctx = loop.getContext();
  AffineExpr x = moving < map.getNumDims()
                     ? getAffineDimExpr(moving, ctx)
                     : getAffineSymbolExpr(moving - map.getNumDims(), ctx);
  AffineExpr f = map.getResult(0);
  AffineExpr delta = simplifyAffineExpr(f.replace(x, x + 1) - f,
                                        map.getNumDims(), map.getNumSymbols());
  auto constant = dyn_cast<AffineConstantExpr>(delta);
  return constant && constant.getValue() == 1;
}

/// `view` as a streamed tile of `loop`, or nothing.
std::optional<StreamedTile> streamedTile(scf::ForOp loop,
                                         memref::SubViewOp view) {
  Value source = view.getSource();
  if (!loop.isDefinedOutsideOfLoop(source))
    return std::nullopt;
  auto type = cast<MemRefType>(source.getType());
  int64_t rank = type.getRank();
  // Scalars of whole bytes only (not index, vectors or complex numbers,
  // whose size in memory the memref type does not give).
  if (!type.getElementType().isIntOrFloat())
    return std::nullopt;
  unsigned bits = type.getElementTypeBitWidth();
  if (rank < 2 || bits < 8 || bits % 8 != 0 || kLineBytes % (bits / 8) != 0)
    return std::nullopt;
  // Dim 0 moves with the loop; every other dim is taken whole.
  SmallVector<OpFoldResult> offsets = view.getMixedOffsets();
  SmallVector<OpFoldResult> sizes = view.getMixedSizes();
  auto offset = dyn_cast<Value>(offsets[0]);
  if (!offset || !movesWithInductionVar(loop, offset))
    return std::nullopt;
  if (!llvm::all_of(view.getMixedStrides(),
                    [](OpFoldResult s) { return isConstantIntValue(s, 1); }))
    return std::nullopt;
  // A rank-reducing view would drop dims the indices below name.
  if (cast<MemRefType>(view.getType()).getRank() != rank)
    return std::nullopt;
  StreamedTile tile{view, {}, bits / 8};
  for (int64_t d = 1; d < rank; ++d) {
    if (type.isDynamicDim(d) || !isConstantIntValue(offsets[d], 0) ||
        !isConstantIntValue(sizes[d], type.getDimSize(d)))
      return std::nullopt;
    tile.rowShape.push_back(type.getDimSize(d));
  }
  // One row (an index of dim 0) is one run of memory.
  SmallVector<int64_t> strides;
  int64_t bufferOffset;
  if (failed(type.getStridesAndOffset(strides, bufferOffset)))
    return std::nullopt;
  int64_t contiguous = 1;
  for (int64_t d = rank - 1; d >= 1; --d) {
    if (strides[d] != contiguous)
      return std::nullopt;
    contiguous *= type.getDimSize(d);
  }
  return tile;
}

/// Whether `v` is the same in every iteration of `nest`: defined outside
/// it, or computed inside it by pure ops from such values (a form's bounds
/// computed from constants in a loop's body).
bool sameInEveryIteration(Value v, Operation *nest) {
  if (!nest->isAncestor(v.getParentBlock()->getParentOp()))
    return true;
  Operation *def = v.getDefiningOp();
  return def && isPure(def) &&
         llvm::all_of(def->getOperands(), [&](Value operand) {
           return sameInEveryIteration(operand, nest);
         });
}

/// The loops over which the prefetches of `tile` spread: of the loop nests
/// in `loop`'s body, the first that reads the tile (a form's main nest; its
/// remainders come after it), from its outermost loop down to the parent of
/// the innermost loop around its first read (an iteration is then one
/// row's sums over a block of keys), or to the read's only loop. Empty when
/// no nest reads the tile, or when a bound of those loops changes inside
/// the nest (the iterations are then not a grid).
SmallVector<Operation *> spreadingLoops(scf::ForOp loop, StreamedTile tile) {
  // The tile and the views of it.
  llvm::SmallPtrSet<Value, 4> aliases = {tile.view.getResult()};
  SmallVector<Value> worklist = {tile.view.getResult()};
  while (!worklist.empty())
    for (Operation *user : worklist.pop_back_val().getUsers())
      if (auto view = dyn_cast<ViewLikeOpInterface>(user))
        if (aliases.contains(view.getViewSource()))
          for (Value result : user->getResults())
            if (aliases.insert(result).second)
              worklist.push_back(result);
  auto reads = [&](Operation *op) {
    return !isa<ViewLikeOpInterface>(op) &&
           llvm::any_of(op->getOperands(),
                        [&](Value v) { return aliases.contains(v); });
  };
  Operation *firstRead = nullptr, *nest = nullptr;
  for (Operation &op : loop.getBody()->without_terminator()) {
    if (!isa<scf::ForOp, scf::ParallelOp>(op))
      continue;
    op.walk<WalkOrder::PreOrder>([&](Operation *inner) {
      if (!reads(inner))
        return WalkResult::advance();
      firstRead = inner;
      return WalkResult::interrupt();
    });
    if (firstRead) {
      nest = &op;
      break;
    }
  }
  if (!nest)
    return {};
  SmallVector<Operation *> loops;
  for (Operation *op = firstRead->getParentOp(); op != loop;
       op = op->getParentOp())
    if (isa<scf::ForOp, scf::ParallelOp>(op))
      loops.insert(loops.begin(), op);
  if (loops.size() > 1)
    loops.pop_back();
  for (Operation *op : loops) {
    auto like = cast<LoopLikeOpInterface>(op);
    for (std::optional<SmallVector<OpFoldResult>> bounds :
         {like.getLoopLowerBounds(), like.getLoopUpperBounds(),
          like.getLoopSteps()})
      for (OpFoldResult bound : bounds.value_or(SmallVector<OpFoldResult>()))
        if (auto v = dyn_cast<Value>(bound);
            v && !sameInEveryIteration(v, nest))
          return {};
  }
  return loops;
}

/// The grid position of the current iteration of `loops` (row-major over
/// their induction variables) and the grid's size, built at `b`'s point
/// inside the innermost loop.
std::pair<Value, Value> gridPosition(ImplicitLocOpBuilder &b,
                                     ArrayRef<Operation *> loops) {
  auto value = [&](OpFoldResult v) {
    return getValueOrCreateConstantIndexOp(b, b.getLoc(), v);
  };
  Value position = arith::ConstantIndexOp::create(b, 0);
  Value size = arith::ConstantIndexOp::create(b, 1);
  for (Operation *op : loops) {
    auto like = cast<LoopLikeOpInterface>(op);
    for (auto [iv, lb, ub, step] : llvm::zip_equal(
             *like.getLoopInductionVars(), *like.getLoopLowerBounds(),
             *like.getLoopUpperBounds(), *like.getLoopSteps())) {
      Value trips = arith::CeilDivSIOp::create(
          b, arith::SubIOp::create(b, value(ub), value(lb)), value(step));
      Value at = arith::DivSIOp::create(
          b, arith::SubIOp::create(b, iv, value(lb)), value(step));
      position = arith::AddIOp::create(
          b, arith::MulIOp::create(b, position, trips), at);
      size = arith::MulIOp::create(b, size, trips);
    }
  }
  return {position, size};
}

/// Whether the cache `tile` is taken from holds at least `bytes`, at
/// `b`'s point: the rows of the outermost view in the chain of subviews
/// above the tile (the cache's visible keys) times its row's bytes; null
/// (no condition) when a row's size is not static.
Value holdsAtLeast(ImplicitLocOpBuilder &b, StreamedTile tile, int64_t bytes) {
  Value whole = tile.view.getSource();
  while (auto view = whole.getDefiningOp<memref::SubViewOp>()) {
    if (!view.getSource().getDefiningOp<memref::SubViewOp>())
      break;
    whole = view.getSource();
  }
  auto type = cast<MemRefType>(whole.getType());
  if (llvm::any_of(type.getShape().drop_front(), ShapedType::isDynamic))
    return Value();
  int64_t rowBytes = tile.elementBytes;
  for (int64_t size : type.getShape().drop_front())
    rowBytes *= size;
  Value rows = memref::DimOp::create(b, whole, 0);
  return arith::CmpIOp::create(
      b, arith::CmpIPredicate::sge, rows,
      arith::ConstantIndexOp::create(b, llvm::divideCeil(bytes, rowBytes)));
}

/// Prefetches of every 64-byte line of the rows [offset + ahead, offset +
/// ahead + min(step, ub - iv - ahead)) of `tile`'s buffer (none past the
/// loop's bound), `ahead` being `distance` rows when `loops` (spreadingLoops)
/// is not empty and the loop's step (the next tile) otherwise. Spread, each
/// iteration of the loops' grid prefetches its share of the lines, in
/// address order, at the top of its body; otherwise all of them are
/// prefetched right after the view; either only when the cache holds at
/// least kMinStreamedBytes (holdsAtLeast). The buffer is read as rows of
/// lines through a view of it as [rows, elements of a row].
void prefetchAhead(scf::ForOp loop, StreamedTile tile,
                   ArrayRef<Operation *> loops, int64_t distance,
                   int64_t locality) {
  Value source = tile.view.getSource();
  ImplicitLocOpBuilder b(tile.view.getLoc(), loop);
  auto sourceType = cast<MemRefType>(source.getType());
  if (sourceType.getRank() > 2) {
    SmallVector<ReassociationIndices> rows = {{0}, {}};
    for (int64_t d = 1; d < sourceType.getRank(); ++d)
      rows.back().push_back(d);
    source = memref::CollapseShapeOp::create(b, source, rows);
  }
  int64_t rowElements = 1;
  for (int64_t size : tile.rowShape)
    rowElements *= size;
  int64_t lineElements = kLineBytes / tile.elementBytes;
  int64_t rowLines = llvm::divideCeil(rowElements, lineElements);
  Value large = holdsAtLeast(b, tile, kMinStreamedBytes);

  if (loops.empty()) {
    b.setInsertionPointAfter(tile.view);
  } else {
    auto inner = cast<LoopLikeOpInterface>(loops.back());
    b.setInsertionPointToStart(&inner.getLoopRegions().front()->front());
  }
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value one = arith::ConstantIndexOp::create(b, 1);
  Value lineCount = arith::ConstantIndexOp::create(b, rowLines);
  Value iv = loop.getInductionVar(), step = loop.getStep();
  Value ahead =
      loops.empty() ? step : arith::ConstantIndexOp::create(b, distance);
  Value first = arith::AddIOp::create(
      b, cast<Value>(tile.view.getMixedOffsets()[0]), ahead);
  Value rows = arith::MinSIOp::create(
      b, step,
      arith::SubIOp::create(b, loop.getUpperBound(),
                            arith::AddIOp::create(b, iv, ahead)));
  Value lines = arith::MulIOp::create(b, arith::MaxSIOp::create(b, rows, zero),
                                      lineCount);
  Value begin = zero, end = lines;
  if (!loops.empty()) {
    // This iteration's share: ceil(lines / iterations) lines from its
    // position's (LLVM hoists what the iterations share).
    auto [position, iterations] = gridPosition(b, loops);
    Value share = arith::CeilDivSIOp::create(b, lines, iterations);
    begin = arith::MulIOp::create(b, position, share);
    end = arith::MinSIOp::create(b, arith::AddIOp::create(b, begin, share),
                                 lines);
  }
  if (large)
    b.setInsertionPointToStart(
        &scf::IfOp::create(b, large).getThenRegion().front());
  scf::ForOp::create(
      b, begin, end, one, ValueRange{},
      [&](OpBuilder &lb, Location loc, Value line, ValueRange) {
        Value row = arith::AddIOp::create(
            lb, loc, first, arith::DivUIOp::create(lb, loc, line, lineCount));
        Value element = arith::MulIOp::create(
            lb, loc, arith::RemUIOp::create(lb, loc, line, lineCount),
            arith::ConstantIndexOp::create(lb, loc, lineElements));
        memref::PrefetchOp::create(lb, loc, source, ValueRange{row, element},
                                   /*isWrite=*/false, locality,
                                   /*isDataCache=*/true);
        scf::YieldOp::create(lb, loc);
      });
}

struct PrefetchNextKeyTile
    : rotor::impl::PrefetchNextKeyTileBase<PrefetchNextKeyTile> {
  using PrefetchNextKeyTileBase::PrefetchNextKeyTileBase;

  void runOnOperation() override {
    if (locality < 0 || locality > 3) {
      getOperation()->emitError()
          << "rotor-prefetch-next-key-tile: locality must be 0 to 3, got "
          << static_cast<int64_t>(locality);
      return signalPassFailure();
    }
    if (distance < 1) {
      getOperation()->emitError()
          << "rotor-prefetch-next-key-tile: distance must be at least 1, got "
          << static_cast<int64_t>(distance);
      return signalPassFailure();
    }
    getOperation()->walk([&](scf::ForOp loop) {
      if (!loop->hasAttr(rotor::attn::kStreamedKeyTilesAttrName))
        return;
      // One prefetch stream per buffer, however many views of it the tile
      // takes.
      llvm::SmallPtrSet<Value, 4> seen;
      SmallVector<StreamedTile> tiles;
      for (auto view : loop.getBody()->getOps<memref::SubViewOp>())
        if (std::optional<StreamedTile> tile = streamedTile(loop, view))
          if (seen.insert(view.getSource()).second)
            tiles.push_back(*tile);
      for (StreamedTile &tile : tiles)
        prefetchAhead(loop, tile, spreadingLoops(loop, tile), distance,
                      locality);
    });
  }
};

} // namespace
