//===- PrefetchNextKeyTile.cpp - prefetch a decode step's next KV tile ----===//
//
// A decode step's attention streams the KV cache through a loop over key
// tiles: each iteration reads its tile's rows from memory, then computes on
// them. The hardware prefetchers see the tile's rows only once the loads
// reach them, so most of their latency is exposed (a Zen 4 read the cache
// at about 0.4 of its read bandwidth). Prefetching the next tile at the top
// of each iteration overlaps that tile's reads with this one's compute.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace rotor {
#define GEN_PASS_DEF_PREFETCHNEXTKEYTILE
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

constexpr int64_t kLineBytes = 64;

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
  if (rank < 1 || bits < 8 || bits % 8 != 0 || kLineBytes % (bits / 8) != 0)
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

/// At `tile.view`: prefetches of every 64-byte line of the rows the next
/// iteration takes, [offset + step, offset + step + min(step, ub - iv -
/// step)), none when there is no next iteration.
void prefetchNextTile(scf::ForOp loop, StreamedTile tile,
                      int64_t locality) {
  ImplicitLocOpBuilder b(tile.view.getLoc(), tile.view);
  b.setInsertionPointAfter(tile.view);
  MLIRContext *ctx = b.getContext();
  Value iv = loop.getInductionVar(), step = loop.getStep();
  Value offset = cast<Value>(tile.view.getMixedOffsets()[0]);
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value one = arith::ConstantIndexOp::create(b, 1);
  // Rows of the next tile: min(step, ub - (iv + step)), at most 0 past the
  // last.
  Value nextIv = arith::AddIOp::create(b, iv, step);
  Value rows = arith::MinSIOp::create(
      b, step, arith::SubIOp::create(b, loop.getUpperBound(), nextIv));
  Value first = arith::AddIOp::create(b, offset, step);
  int64_t rowElements = 1;
  for (int64_t size : tile.rowShape)
    rowElements *= size;
  int64_t lineElements = kLineBytes / tile.elementBytes;
  int64_t lines = llvm::divideCeil(rowElements, lineElements);
  Value source = tile.view.getSource();
  scf::ForOp::create(
      b, zero, rows, one, ValueRange{},
      [&](OpBuilder &rb, Location loc, Value row, ValueRange) {
        Value index0 = arith::AddIOp::create(rb, loc, first, row);
        scf::ForOp::create(
            rb, loc, zero, arith::ConstantIndexOp::create(rb, loc, lines),
            one, ValueRange{},
            [&](OpBuilder &lb, Location lloc, Value line, ValueRange) {
              // The line's first element, as indices of dims 1..rank-1.
              AffineExpr l = getAffineDimExpr(0, ctx);
              AffineExpr element = l * lineElements;
              SmallVector<Value> indices = {index0};
              int64_t inner = rowElements;
              for (int64_t size : tile.rowShape) {
                inner /= size;
                indices.push_back(affine::AffineApplyOp::create(
                    lb, lloc,
                    AffineMap::get(1, 0, element.floorDiv(inner) % size),
                    ValueRange{line}));
              }
              memref::PrefetchOp::create(lb, lloc, source, indices,
                                         /*isWrite=*/false, locality,
                                         /*isDataCache=*/true);
              scf::YieldOp::create(lb, lloc);
            });
        scf::YieldOp::create(rb, loc);
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
        prefetchNextTile(loop, tile, locality);
    });
  }
};

} // namespace
