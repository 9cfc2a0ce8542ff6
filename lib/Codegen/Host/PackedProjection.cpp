//===- PackedProjection.cpp - The host's packed projections --------------===//
//
// The packed form of a prefill projection y[t, n] += x[t, e] * W[n, e]: the
// weight's columns in panels [E, width], outer products of each panel with
// blocks of tokens, each row of sums a vector iter_arg (each output summed
// in order). Its epilogues: the bias the sums start from, a half-split
// RoPE applied to each finished row of sums in registers, and the row ops
// after it (a KV cache's rotation, quantization and packing) run on each
// chunk of a head's rows while it is in cache.
//
//===----------------------------------------------------------------------===//

#include "PackedProjection.h"
#include "RegisterLoops.h"

#include "mlir/Dialect/AMX/AMXDialect.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/TilingInterface.h"

using namespace mlir;

namespace rotor::host {

//===----------------------------------------------------------------------===//
// Packed projections
//===----------------------------------------------------------------------===//

namespace {

/// The payload's block argument that a bf16 product operand reads, and
/// whether it is f32 rounded to bf16 (ext(truncf(arg)), round to nearest
/// even) or bf16 (ext(arg)).
std::optional<std::pair<BlockArgument, bool>> bf16Operand(Value value) {
  auto ext = value.getDefiningOp<arith::ExtFOp>();
  if (!ext || !ext.getType().isF32() || !ext.getIn().getType().isBF16())
    return std::nullopt;
  Value in = ext.getIn();
  bool round = false;
  if (auto trunc = in.getDefiningOp<arith::TruncFOp>()) {
    if (trunc.getRoundingmodeAttr() || !trunc.getIn().getType().isF32())
      return std::nullopt;
    in = trunc.getIn();
    round = true;
  }
  auto arg = dyn_cast<BlockArgument>(in);
  if (!arg)
    return std::nullopt;
  return std::make_pair(arg, round);
}

} // namespace

std::optional<BF16Pairs> bf16ProductOperands(linalg::GenericOp op,
                                             OpOperand *lhs, OpOperand *rhs) {
  Block &body = op.getRegion().front();
  BlockArgument sum = body.getArguments().back();
  if (!sum.getType().isF32())
    return std::nullopt;
  auto add = cast<linalg::YieldOp>(body.getTerminator())
                 .getValues()[0]
                 .getDefiningOp<arith::AddFOp>();
  if (!add || (add.getLhs() != sum && add.getRhs() != sum))
    return std::nullopt;
  auto mul = (add.getLhs() == sum ? add.getRhs() : add.getLhs())
                 .getDefiningOp<arith::MulFOp>();
  if (!mul)
    return std::nullopt;
  auto x = bf16Operand(mul.getLhs()), w = bf16Operand(mul.getRhs());
  if (!x || !w)
    return std::nullopt;
  if (x->first == op.getMatchingBlockArgument(rhs))
    std::swap(x, w);
  if (x->first != op.getMatchingBlockArgument(lhs) ||
      w->first != op.getMatchingBlockArgument(rhs))
    return std::nullopt;
  // The add, the product, two widenings, the roundings and the yield.
  if (body.getOperations().size() != 5 + x->second + w->second)
    return std::nullopt;
  return BF16Pairs{x->second, w->second};
}

namespace {

/// The bf16 pair form of the packed projection `p` of `op`
/// (bf16ProductOperands of x and W), AVX-512's 64 columns a panel, and a
/// depth of whole runs of kPairRun (the packing's vectors) along rows
/// contiguous in memory.
std::optional<BF16Pairs> bf16PairsOf(linalg::GenericOp op,
                                     const PackedProjection &p) {
  int64_t depth = op.getStaticLoopRanges()[2];
  if (p.width != 64 || ShapedType::isDynamic(depth) || depth % kPairRun != 0 ||
      !unitInnerStride(p.input->get()) || !unitInnerStride(p.weight->get()))
    return std::nullopt;
  return bf16ProductOperands(op, p.input, p.weight);
}

} // namespace

std::optional<PackedProjection> packedProjection(linalg::GenericOp op,
                                                 const HostIsa &cpu) {
  // The block sizes count f32 sums (24 zmm with AVX-512): wider sums
  // would spill.
  if (op.getNumParallelLoops() != 2 || op.getNumLoops() != 3 ||
      !elementwisePayload(op) ||
      !unitInnerStride(op.getDpsInitOperand(0)->get()) ||
      !op.getRegion().front().getArguments().back().getType().isF32())
    return std::nullopt;
  MLIRContext *ctx = op.getContext();
  AffineExpr t = getAffineDimExpr(0, ctx), n = getAffineDimExpr(1, ctx),
             e = getAffineDimExpr(2, ctx);
  if (op.getMatchingIndexingMap(op.getDpsInitOperand(0)) !=
      AffineMap::get(3, 0, {t, n}, ctx))
    return std::nullopt;
  // A generic's loops start at 0 with step 1; only the extents vary.
  PackedProjection p;
  p.width = cpu.vectorRegisters >= 32 ? 64 : 16;
  p.lanes = f32Lanes(cpu.vectorRegisters);
  int64_t columns = op.getStaticLoopRanges()[1];
  if (ShapedType::isDynamic(columns) || columns % p.width != 0)
    return std::nullopt;
  for (OpOperand *operand : op.getDpsInputOperands()) {
    if (!isa<MemRefType>(operand->get().getType()))
      continue;
    AffineMap map = op.getMatchingIndexingMap(operand);
    if (map == AffineMap::get(3, 0, {t, e}, ctx) && !p.input)
      p.input = operand;
    else if (map == AffineMap::get(3, 0, {n, e}, ctx) && !p.weight)
      p.weight = operand;
    else
      return std::nullopt;
  }
  if (!p.input || !p.weight)
    return std::nullopt;
  if (cpu.bf16Dot)
    p.bf16Pairs = bf16PairsOf(op, p);
  p.amxTiles = cpu.amxTiles && p.bf16Pairs.has_value();
  // The AMX blocks prefetch nothing (the FMA form's prefetch measured
  // slower there).
  p.prefetchNextPanel = cpu.panelPrefetch && !p.amxTiles;
  return p;
}

namespace {


//===----------------------------------------------------------------------===//
// Packed projection epilogues
//===----------------------------------------------------------------------===//

/// The buffer `value` views (through view-like ops), or `value` itself.
Value rootBuffer(Value value) {
  while (auto view = value.getDefiningOp<ViewLikeOpInterface>())
    value = view.getViewSource();
  return value;
}

/// Whether `from` may move down to `to` (one block) past the ops between:
/// each has no memory effects, is an allocation, one of `skip`, or a linalg
/// op that writes only buffers allocated in the same block, none of them one
/// of `readOnly` (by root buffer), and has none of `untouched` as an
/// operand.
bool onlyFreshWritesBetween(Operation *from, Operation *to,
                            ArrayRef<Operation *> skip,
                            ArrayRef<Value> untouched,
                            ArrayRef<Value> readOnly) {
  SmallVector<Value> roots = llvm::map_to_vector(readOnly, rootBuffer);
  for (Operation *it = from->getNextNode(); it && it != to;
       it = it->getNextNode()) {
    if (llvm::is_contained(skip, it) || isMemoryEffectFree(it) ||
        isa<memref::AllocOp>(it))
      continue;
    auto linalgOp = dyn_cast<linalg::LinalgOp>(it);
    if (!linalgOp || !linalgOp.hasPureBufferSemantics())
      return false;
    for (Value operand : it->getOperands())
      if (llvm::is_contained(untouched, operand))
        return false;
    for (OpOperand &init : linalgOp.getDpsInitsMutable()) {
      auto alloc = init.get().getDefiningOp<memref::AllocOp>();
      if (!alloc || alloc->getBlock() != it->getBlock() ||
          llvm::is_contained(roots, init.get()))
        return false;
    }
  }
  return true;
}

/// Whether `it` writes every element of the 2-D buffer `y` from nothing
/// but its own inputs: a linalg.fill of y (its value in `fillValue`) or a
/// generic y[t, n] = bias[n] (the contiguous bias in `bias`).
bool initializesOutput(Operation *it, Value y, Value &bias,
                       Value &fillValue) {
  if (auto fill = dyn_cast<linalg::FillOp>(it)) {
    // A fill may convert its value; the sums' broadcast may not.
    if (!fill.hasPureBufferSemantics() || fill.getOutputs()[0] != y ||
        fill.getInputs()[0].getType() != getElementTypeOrSelf(y.getType()))
      return false;
    fillValue = fill.getInputs()[0];
    return true;
  }
  auto generic = dyn_cast<linalg::GenericOp>(it);
  MLIRContext *ctx = it->getContext();
  AffineExpr t = getAffineDimExpr(0, ctx), n = getAffineDimExpr(1, ctx);
  if (!generic || !generic.hasPureBufferSemantics() ||
      generic.getNumDpsInputs() != 1 || generic.getNumDpsInits() != 1 ||
      generic.getDpsInitOperand(0)->get() != y ||
      generic.getIndexingMapsArray() !=
          SmallVector<AffineMap>{AffineMap::get(2, 0, {n}, ctx),
                                 AffineMap::get(2, 0, {t, n}, ctx)})
    return false;
  Block &body = generic.getRegion().front();
  if (body.getOperations().size() != 1 ||
      body.getTerminator()->getOperand(0) != body.getArgument(0) ||
      !unitInnerStride(generic.getDpsInputOperand(0)->get()))
    return false;
  bias = generic.getDpsInputOperand(0)->get();
  return true;
}

/// The op that initializes `op`'s output: the last op before it that uses
/// the output, when that op writes all of it (initializesOutput).
Operation *outputInit(linalg::GenericOp op, Value &bias, Value &fillValue) {
  Value y = op.getDpsInitOperand(0)->get();
  for (Operation *it = op->getPrevNode(); it; it = it->getPrevNode())
    if (llvm::is_contained(it->getOperands(), y))
      return initializesOutput(it, y, bias, fillValue) ? it : nullptr;
  return nullptr;
}

/// The uses of `buffer` and of every view of it, each as the op in
/// `block` that holds it (a use nested in a loop counts where the loop is;
/// null when outside `block`).
SmallVector<Operation *> usesThroughViews(Value buffer, Block *block) {
  SmallVector<Operation *> uses;
  SmallVector<Value> buffers = {buffer};
  while (!buffers.empty()) {
    Value b = buffers.pop_back_val();
    for (Operation *user : b.getUsers()) {
      if (isa<ViewLikeOpInterface>(user)) {
        buffers.push_back(user->getResult(0));
        continue;
      }
      uses.push_back(block->findAncestorOpInBlock(*user));
    }
  }
  return uses;
}

/// Whether `y`'s values after `rope` are never read: every use of `y` (or
/// of a view of it) after `rope` in its block comes at or after an op that
/// writes all of `y` afresh (bufferization reuses a projection's buffer for
/// the next projection once the RoPE has read it).
bool overwrittenAfter(Value y, Operation *rope, ArrayRef<Operation *> skip) {
  Operation *first = nullptr;
  for (Operation *at : usesThroughViews(y, rope->getBlock())) {
    if (at && (llvm::is_contained(skip, at) || isa<memref::DeallocOp>(at)))
      continue;
    if (!at || !rope->isBeforeInBlock(at))
      return false;
    if (!first || at->isBeforeInBlock(first))
      first = at;
  }
  Value bias, fillValue;
  return !first || initializesOutput(first, y, bias, fillValue);
}

/// Whether `rope` is a half-split RoPE over `view` ([T, H, 2, D/2] of the
/// output) that the packed form can apply to its rows: its two halves read
/// through maps (t, h, 0, i) and (t, h, 1, i), every other input a table
/// [t, i], an identity-mapped contiguous output, and a payload of pure
/// elementwise ops that reads only dim 2 (which half it writes).
bool isPackedRope(linalg::GenericOp rope, memref::ExpandShapeOp view,
                  int64_t width) {
  MLIRContext *ctx = rope.getContext();
  AffineExpr t = getAffineDimExpr(0, ctx), h = getAffineDimExpr(1, ctx),
             i = getAffineDimExpr(3, ctx);
  auto viewType = cast<MemRefType>(view.getType());
  if (!rope.hasPureBufferSemantics() || rope.getNumDpsInits() != 1 ||
      rope.getNumLoops() != 4 || rope.getNumReductionLoops() != 0 ||
      viewType.getRank() != 4 || viewType.getDimSize(2) != 2 ||
      ShapedType::isDynamic(viewType.getDimSize(3)) ||
      (2 * viewType.getDimSize(3)) % width != 0 ||
      view.getReassociationIndices() !=
          SmallVector<ReassociationIndices>{{0}, {1, 2, 3}} ||
      !rope.getMatchingIndexingMap(rope.getDpsInitOperand(0)).isIdentity() ||
      !unitInnerStride(rope.getDpsInitOperand(0)->get()))
    return false;
  Block &body = rope.getRegion().front();
  if (!body.getArguments().back().use_empty())
    return false;
  int halves = 0;
  for (OpOperand *input : rope.getDpsInputOperands()) {
    AffineMap map = rope.getMatchingIndexingMap(input);
    if (input->get() == view.getResult()) {
      // Any other read of the view (another head, an identity map) would
      // not be in the row of sums at hand.
      int found = 0;
      for (int64_t half = 0; half < 2; ++half)
        if (map == AffineMap::get(4, 0,
                                  {t, h, getAffineConstantExpr(half, ctx), i},
                                  ctx))
          found = 1 << half;
      if (!found)
        return false;
      halves |= found;
    } else if (map != AffineMap::get(4, 0, {t, i}, ctx) ||
               !isa<MemRefType>(input->get().getType()) ||
               !unitInnerStride(input->get())) {
      return false;
    }
  }
  if (halves != 3)
    return false;
  return llvm::all_of(body.without_terminator(), [](Operation &inner) {
    if (auto index = dyn_cast<linalg::IndexOp>(inner))
      return index.getDim() == 2;
    return inner.getNumResults() == 1 && inner.getNumRegions() == 0 &&
           isPure(&inner) &&
           (inner.hasTrait<OpTrait::Elementwise>() ||
            inner.hasTrait<OpTrait::ConstantLike>());
  });
}

} // namespace

/// The epilogue a packed projection `op` can take: its output's init, and a
/// RoPE when the output feeds nothing else and every op between the
/// projection and the RoPE leaves the buffers they use alone (the fused
/// projection is emitted at the RoPE's place).
PackedEpilogue packedEpilogue(linalg::GenericOp op, const PackedProjection &p) {
  PackedEpilogue epi;
  Value y = op.getDpsInitOperand(0)->get();
  if (!y.getDefiningOp<memref::AllocOp>())
    return epi;
  Operation *init = outputInit(op, epi.bias, epi.fillValue);
  SmallVector<Value> read = {p.input->get(), p.weight->get()};
  if (epi.bias)
    read.push_back(epi.bias);
  if (!init || !onlyFreshWritesBetween(init, op, {}, {y}, read))
    return PackedEpilogue();
  // The init moves into the sums: nothing may read y (through a view
  // either) between it and the projection.
  for (Operation *use : usesThroughViews(y, op->getBlock()))
    if (!use || (init->isBeforeInBlock(use) && use->isBeforeInBlock(op)))
      return PackedEpilogue();
  epi.init = init;
  // The view the RoPE reads: the first use of the output after the
  // projection.
  memref::ExpandShapeOp view;
  for (Operation *it = op->getNextNode(); it && !view; it = it->getNextNode())
    if (llvm::is_contained(it->getOperands(), y))
      if (!(view = dyn_cast<memref::ExpandShapeOp>(it)))
        return epi;
  if (!view || view->use_empty())
    return epi;
  // The RoPE reads the view twice (both halves of each pair), and nothing
  // else reads it.
  Operation *reader = *view->getUsers().begin();
  if (llvm::any_of(view->getUsers(),
                   [&](Operation *user) { return user != reader; }))
    return epi;
  auto rope = dyn_cast<linalg::GenericOp>(reader);
  int64_t columns = cast<MemRefType>(y.getType()).getDimSize(1);
  if (!rope || rope->getBlock() != op->getBlock() ||
      !isPackedRope(rope, view, p.width) ||
      !overwrittenAfter(y, rope, {init, op, rope}))
    return epi;
  // The fused form writes the RoPE's output while other panels still read
  // x, W and the bias: it must be none of them, nor y (in place).
  Value out = rootBuffer(rope.getDpsInitOperand(0)->get());
  for (Value v : read)
    if (rootBuffer(v) == out)
      return epi;
  if (out == y)
    return epi;

  int64_t headDim = 2 * cast<MemRefType>(view.getType()).getDimSize(3);
  // The projection (and its init) move down to the RoPE: what they read
  // must not change on the way (the RoPE's tables may be written there:
  // the RoPE reads them where it was).
  if (columns % headDim != 0 ||
      !onlyFreshWritesBetween(op, rope, {view}, {y, view.getResult()}, read))
    return epi;
  epi.rope = rope;
  epi.view = view;
  epi.headDim = headDim;
  return epi;
}

namespace {


//===----------------------------------------------------------------------===//
// Packed projection row epilogues
//===----------------------------------------------------------------------===//

/// Whether `root` (a rootBuffer) is a buffer of its own: an allocation, a
/// global, or an argument of the function. Other memrefs (a transpose, a
/// loop's iter_arg, a region's result) may alias any of those.
bool knownRoot(Value root) {
  if (auto arg = dyn_cast<BlockArgument>(root))
    return arg.getOwner()->isEntryBlock() &&
           isa<FunctionOpInterface>(arg.getOwner()->getParentOp());
  return root.getDefiningOp<memref::AllocOp>() ||
         root.getDefiningOp<memref::AllocaOp>() ||
         root.getDefiningOp<memref::GetGlobalOp>();
}

/// The buffers (roots) an op reads and writes, with everything nested in
/// it (a free counts as a write); false when some effect is on no buffer
/// known here (a call, an opaque resource, an aliasing memref, a write to a
/// global).
bool bufferEffects(Operation *op, DenseSet<Value> &reads,
                   DenseSet<Value> &writes) {
  WalkResult result = op->walk([&](Operation *it) {
    auto effecting = dyn_cast<MemoryEffectOpInterface>(it);
    if (!effecting) {
      bool nested = it->hasTrait<OpTrait::HasRecursiveMemoryEffects>() ||
                    it->hasTrait<OpTrait::IsTerminator>();
      return nested ? WalkResult::advance() : WalkResult::interrupt();
    }
    SmallVector<MemoryEffects::EffectInstance> effects;
    effecting.getEffects(effects);
    for (const MemoryEffects::EffectInstance &effect : effects) {
      if (isa<MemoryEffects::Allocate>(effect.getEffect()))
        continue;
      Value value = effect.getValue();
      if (!value || !isa<MemRefType>(value.getType()))
        return WalkResult::interrupt();
      Value root = rootBuffer(value);
      bool read = isa<MemoryEffects::Read>(effect.getEffect());
      if (!knownRoot(root) ||
          (!read && root.getDefiningOp<memref::GetGlobalOp>()))
        return WalkResult::interrupt();
      (read ? reads : writes).insert(root);
    }
    return WalkResult::advance();
  });
  return !result.wasInterrupted();
}

/// How a memref views its root buffer's rows: the number of heads (axis 1)
/// and the token rows (axis 0): their count and their offset in the root.
struct RowView {
  int64_t heads = 0;
  OpFoldResult rows, offset;
};

/// How `value` views its root buffer with axis 0 the token and axis 1 the
/// head, when it does: through reshapes that keep both axes alone in their
/// groups, a subview that keeps axis 1 whole (offset on axis 0 only where
/// `offsetRows`: a cache's slots at their position), or an expansion
/// [T, N] -> [T, H, ...] of the 2-D root itself (a projection's output
/// split into heads).
std::optional<RowView> rowViewOf(Value value, bool offsetRows) {
  auto type = dyn_cast<MemRefType>(value.getType());
  if (!type || type.getRank() < 2 || type.isDynamicDim(1))
    return std::nullopt;
  Builder b(value.getContext());
  RowView view;
  view.heads = type.getDimSize(1);
  view.offset = b.getIndexAttr(0);
  auto alone = [](ArrayRef<ReassociationIndices> groups) {
    return groups.size() >= 2 && groups[0] == ReassociationIndices{0} &&
           groups[1] == ReassociationIndices{1};
  };
  bool offsetSeen = false;
  while (Operation *def = value.getDefiningOp()) {
    if (auto expand = dyn_cast<memref::ExpandShapeOp>(def)) {
      SmallVector<ReassociationIndices> groups =
          expand.getReassociationIndices();
      if (!alone(groups)) {
        // [T, N] -> [T, H, ...]: the head axis starts here.
        Value source = expand.getSrc();
        if (groups[0] != ReassociationIndices{0} || groups.size() != 2 ||
            groups[1].front() != 1 ||
            cast<MemRefType>(source.getType()).getRank() != 2 ||
            rootBuffer(source) != source)
          return std::nullopt;
      }
      if (!view.rows)
        view.rows = expand.getMixedOutputShape()[0];
      value = expand.getSrc();
    } else if (auto collapse = dyn_cast<memref::CollapseShapeOp>(def)) {
      if (!alone(collapse.getReassociationIndices()))
        return std::nullopt;
      value = collapse.getSrc();
    } else if (auto subview = dyn_cast<memref::SubViewOp>(def)) {
      auto source = cast<MemRefType>(subview.getSource().getType());
      ArrayRef<int64_t> offsets = subview.getStaticOffsets(),
                        sizes = subview.getStaticSizes(),
                        strides = subview.getStaticStrides();
      bool offset = offsets[0] != 0;
      if (subview.getType().getRank() != source.getRank() ||
          strides[0] != 1 || strides[1] != 1 || offsets[1] != 0 ||
          sizes[1] != source.getDimSize(1) ||
          (offset && (!offsetRows || offsetSeen)))
        return std::nullopt;
      if (offset) {
        offsetSeen = true;
        view.offset = subview.getMixedOffsets()[0];
      }
      if (!view.rows)
        view.rows = subview.getMixedSizes()[0];
      value = subview.getSource();
    } else if (isa<ViewLikeOpInterface>(def)) {
      return std::nullopt;
    } else {
      break;
    }
  }
  if (!view.rows) {
    if (auto alloc = value.getDefiningOp<memref::AllocOp>())
      view.rows = alloc.getMixedSizes()[0];
    else if (!type.isDynamicDim(0))
      view.rows = b.getIndexAttr(type.getDimSize(0));
    else
      return std::nullopt;
  }
  return view;
}

/// What the row epilogue's matcher knows so far: the buffers the
/// projection and the row ops accepted write (the chain) and read (with
/// what the projection itself reads), its heads and token rows, and the
/// row offset at which it writes each function argument (a cache).
struct RowChain {
  DenseSet<Value> writes, reads;
  int64_t heads = 0;
  OpFoldResult rows;
  DenseMap<Value, OpFoldResult> argumentOffsets;

  /// Whether `v`'s buffer is written by the chain, or by the op at hand
  /// (`opWrites`), so that its rows must be read and written in place.
  bool inPlace(Value v, const DenseSet<Value> &opWrites) const {
    Value root = rootBuffer(v);
    return writes.contains(root) || opWrites.contains(root);
  }
  /// Whether `v` views the chain's rows: `heads` heads (the first view
  /// seen sets it), the projection's token count, and for an argument of
  /// the function one row offset for every view of it.
  bool rowView(Value v) {
    Value root = rootBuffer(v);
    bool argument = isa<BlockArgument>(root);
    std::optional<RowView> view = rowViewOf(v, argument);
    if (!view || (heads && view->heads != heads) ||
        !isEqualConstantIntOrValue(view->rows, rows))
      return false;
    if (argument) {
      auto [it, inserted] = argumentOffsets.try_emplace(root, view->offset);
      if (!inserted && !isEqualConstantIntOrValue(it->second, view->offset))
        return false;
    }
    heads = view->heads;
    return true;
  }
};

/// Whether the linalg op `op` computes each row (t, h) of what it writes
/// from rows (t, h) alone of the chain's buffers: its first output indexed
/// (t, h, ...) by two parallel dims, every chain operand at the same two
/// dims, and loads in its payload (a bit-packer's) at linalg.index of
/// them.
bool rowLocalLinalg(linalg::LinalgOp op, RowChain &chain,
                    const DenseSet<Value> &opWrites,
                    std::pair<unsigned, unsigned> &dims) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInits() == 0)
    return false;
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  if (outMap.getNumResults() < 2)
    return false;
  auto t = dyn_cast<AffineDimExpr>(outMap.getResult(0));
  auto h = dyn_cast<AffineDimExpr>(outMap.getResult(1));
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  if (!t || !h || t == h ||
      iterators[t.getPosition()] != utils::IteratorType::parallel ||
      iterators[h.getPosition()] != utils::IteratorType::parallel)
    return false;
  for (OpOperand &operand : op->getOpOperands()) {
    if (!isa<MemRefType>(operand.get().getType()) ||
        !chain.inPlace(operand.get(), opWrites))
      continue;
    AffineMap map = op.getMatchingIndexingMap(&operand);
    if (map.getNumResults() < 2 || map.getResult(0) != t ||
        map.getResult(1) != h || !chain.rowView(operand.get()))
      return false;
  }
  for (Operation &inner : op->getRegion(0).getOps()) {
    if (isMemoryEffectFree(&inner))
      continue;
    auto load = dyn_cast<memref::LoadOp>(inner);
    if (!load || load.getIndices().size() < 2)
      return false;
    if (!chain.inPlace(load.getMemRef(), opWrites))
      continue;
    auto ti = load.getIndices()[0].getDefiningOp<linalg::IndexOp>();
    auto hi = load.getIndices()[1].getDefiningOp<linalg::IndexOp>();
    if (!ti || !hi || ti.getDim() != t.getPosition() ||
        hi.getDim() != h.getPosition() || !chain.rowView(load.getMemRef()))
      return false;
  }
  dims = {t.getPosition(), h.getPosition()};
  return true;
}

/// The indices along axes 0 and 1 at which `user` accesses its operand
/// `use` (a load, a store, a vector transfer, or a subview of single rows),
/// or nothing when it is another kind of use.
std::optional<std::pair<Value, Value>> rowIndices(Operation *user,
                                                  OpOperand &use) {
  SmallVector<Value> indices;
  if (auto subview = dyn_cast<memref::SubViewOp>(user)) {
    SmallVector<OpFoldResult> offsets = subview.getMixedOffsets();
    ArrayRef<int64_t> sizes = subview.getStaticSizes(),
                      strides = subview.getStaticStrides();
    if (sizes.size() < 2 || sizes[0] != 1 || sizes[1] != 1 ||
        strides[0] != 1 || strides[1] != 1)
      return std::nullopt;
    Value t = dyn_cast<Value>(offsets[0]), h = dyn_cast<Value>(offsets[1]);
    if (!t || !h)
      return std::nullopt;
    return std::make_pair(t, h);
  }
  // A vector must span axes past the head's (of one row), not tokens or
  // heads.
  auto pastHead = [](AffineMap permutation) {
    return llvm::all_of(permutation.getResults(), [](AffineExpr e) {
      auto dim = dyn_cast<AffineDimExpr>(e);
      return !dim || dim.getPosition() >= 2;
    });
  };
  auto trailing = [&](VectorType vector) {
    return vector.getRank() + 2 <=
           cast<MemRefType>(use.get().getType()).getRank();
  };
  if (auto load = dyn_cast<memref::LoadOp>(user)) {
    indices = load.getIndices();
  } else if (auto store = dyn_cast<memref::StoreOp>(user);
             store && use.get() == store.getMemRef()) {
    indices = store.getIndices();
  } else if (auto read = dyn_cast<vector::TransferReadOp>(user)) {
    if (!pastHead(read.getPermutationMap()))
      return std::nullopt;
    indices = read.getIndices();
  } else if (auto write = dyn_cast<vector::TransferWriteOp>(user);
             write && use.get() == write.getBase()) {
    if (!pastHead(write.getPermutationMap()))
      return std::nullopt;
    indices = write.getIndices();
  } else if (auto load = dyn_cast<vector::LoadOp>(user)) {
    if (!trailing(load.getVectorType()))
      return std::nullopt;
    indices = load.getIndices();
  } else if (auto store = dyn_cast<vector::StoreOp>(user);
             store && use.get() == store.getBase()) {
    if (!trailing(store.getVectorType()))
      return std::nullopt;
    indices = store.getIndices();
  }
  if (indices.size() < 2)
    return std::nullopt;
  return std::make_pair(indices[0], indices[1]);
}

/// Whether the scf.parallel `loop` computes each row (t, h) of what it
/// writes from rows (t, h) alone of the chain's buffers: every use inside
/// it of a chain buffer's view from outside is an access (or a subview of
/// one row) at the same two of its ivs, each of step 1 (a Hadamard
/// rotation's loop over tokens and heads). Sets `dims` to their positions.
bool rowLocalParallel(scf::ParallelOp loop, RowChain &chain,
                      const DenseSet<Value> &opWrites,
                      std::pair<unsigned, unsigned> &dims) {
  if (loop.getNumResults() != 0)
    return false;
  auto ivPosition = [&](Value v) -> std::optional<unsigned> {
    for (auto [i, iv] : llvm::enumerate(loop.getInductionVars()))
      if (iv == v && getConstantIntValue(loop.getStep()[i]) == 1)
        return unsigned(i);
    return std::nullopt;
  };
  std::optional<std::pair<unsigned, unsigned>> found;
  WalkResult result = loop.getBody()->walk([&](Operation *user) {
    for (OpOperand &use : user->getOpOperands()) {
      Value v = use.get();
      if (!isa<MemRefType>(v.getType()) ||
          loop.getRegion().isAncestor(v.getParentRegion()) ||
          !chain.inPlace(v, opWrites))
        continue;
      std::optional<std::pair<Value, Value>> at = rowIndices(user, use);
      if (!at || !chain.rowView(v))
        return WalkResult::interrupt();
      std::optional<unsigned> t = ivPosition(at->first),
                              h = ivPosition(at->second);
      if (!t || !h || (found && *found != std::make_pair(*t, *h)))
        return WalkResult::interrupt();
      found = std::make_pair(*t, *h);
    }
    return WalkResult::advance();
  });
  if (result.wasInterrupted() || !found || found->first == found->second)
    return false;
  // It covers the projection's rows and heads, no more (the fused form runs
  // it on chunks of those); no linalg op inside (this pass would lower it
  // on its own).
  auto [t, h] = *found;
  Builder b(loop.getContext());
  if (!isConstantIntValue(loop.getLowerBound()[t], 0) ||
      !isConstantIntValue(loop.getLowerBound()[h], 0) ||
      !isEqualConstantIntOrValue(loop.getUpperBound()[t], chain.rows) ||
      !isEqualConstantIntOrValue(loop.getUpperBound()[h],
                                 b.getIndexAttr(chain.heads)))
    return false;
  if (loop.getBody()
          ->walk([](linalg::LinalgOp) { return WalkResult::interrupt(); })
          .wasInterrupted())
    return false;
  dims = *found;
  return true;
}

} // namespace

/// Finds the row epilogue of a packed projection `op` (see PackedEpilogue):
/// after it (or its fused RoPE), each op that touches a buffer the chain
/// reads or writes must be row-local, and then joins the chain; the chain
/// ends at the first that is not. Every other op between stays before the
/// fused form (emitted at the last row op's place), so it must commute
/// with the chain's ops before it: write nothing they read or write, read
/// nothing they write. (Another chain's ops between may move down with
/// their own fused form: every op only moves down, past ops its own chain's
/// matcher checked.)
void matchRowEpilogue(linalg::GenericOp op, const PackedProjection &p,
                      PackedEpilogue &epi) {
  Value y = op.getDpsInitOperand(0)->get();
  Operation *start = epi.rope ? epi.rope.getOperation() : op.getOperation();
  Value source = epi.rope ? rootBuffer(epi.rope.getDpsInitOperand(0)->get())
                          : y;
  if (!source.getDefiningOp<memref::AllocOp>())
    return;
  RowChain chain;
  chain.writes.insert(source);
  // The fused projection reads x, W, the bias (or y itself, without an
  // init) and the RoPE's tables; writes only its output.
  DenseSet<Value> groupReads = {rootBuffer(p.input->get()),
                                rootBuffer(p.weight->get())};
  if (epi.bias)
    groupReads.insert(rootBuffer(epi.bias));
  if (!epi.init)
    groupReads.insert(rootBuffer(y));
  if (epi.rope)
    for (OpOperand *input : epi.rope.getDpsInputOperands())
      if (input->get() != epi.view.getResult())
        groupReads.insert(rootBuffer(input->get()));
  chain.reads = groupReads;
  int64_t columns = op.getStaticLoopRanges()[1];
  std::optional<RowView> rows = rowViewOf(y, /*offsetRows=*/false);
  if (ShapedType::isDynamic(columns) || !rows)
    return;
  chain.rows = rows->rows;
  // The RoPE writes the rows of its heads in place.
  if (epi.rope) {
    chain.heads = columns / epi.headDim;
    if (!chain.rowView(epi.rope.getDpsInitOperand(0)->get()))
      return;
  }

  SmallVector<Operation *> rowOps;
  SmallVector<std::pair<unsigned, unsigned>> rowDims;
  for (Operation *it = start->getNextNode();
       it && !it->hasTrait<OpTrait::IsTerminator>(); it = it->getNextNode()) {
    DenseSet<Value> reads, writes;
    if (!bufferEffects(it, reads, writes))
      break;
    bool touches = llvm::any_of(reads, [&](Value v) {
                     return chain.writes.contains(v);
                   }) ||
                   llvm::any_of(writes, [&](Value v) {
                     return chain.writes.contains(v) || chain.reads.contains(v);
                   });
    if (!touches) {
      // Stays before the fused form: fine, it commutes with the chain.
      continue;
    }
    // A writer of what the chain reads but does not write (x, W) is no row
    // op: the fused form reads them after it. Nor is a reader of rows the
    // chain wrote into a function's argument (a cache, written at an
    // offset): the rows it reads need not be the chunk's.
    if (llvm::any_of(writes,
                     [&](Value v) {
                       return chain.reads.contains(v) &&
                              !chain.writes.contains(v);
                     }) ||
        llvm::any_of(reads, [&](Value v) {
          return isa<BlockArgument>(v) &&
                 (chain.writes.contains(v) || writes.contains(v));
        }))
      break;
    RowChain tried = chain;
    std::pair<unsigned, unsigned> dims;
    bool local = false;
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(it))
      local = isa<TilingInterface>(it) &&
              rowLocalLinalg(linalgOp, tried, writes, dims);
    else if (auto loop = dyn_cast<scf::ParallelOp>(it))
      local = rowLocalParallel(loop, tried, writes, dims);
    if (!local)
      break;
    chain = std::move(tried);
    chain.writes.insert(writes.begin(), writes.end());
    chain.reads.insert(reads.begin(), reads.end());
    rowOps.push_back(it);
    rowDims.push_back(dims);
  }
  if (rowOps.empty() || !chain.heads || columns % chain.heads != 0)
    return;
  int64_t headDim = columns / chain.heads;
  if (headDim % p.width != 0 || (epi.rope && headDim != epi.headDim))
    return;
  // The chain writes nothing the projection reads (other heads still read
  // it while a head's rows are written) but the projection's own output
  // (read in place without an init).
  if (llvm::any_of(chain.writes, [&](Value v) {
        return v != rootBuffer(y) && groupReads.contains(v);
      }))
    return;
  epi.rowOps = std::move(rowOps);
  epi.rowDims = std::move(rowDims);
  epi.rowHeads = chain.heads;
  epi.rowHeadDim = headDim;
}

namespace {


/// `rope`'s payload on rows of `width` elements for half `half` of each
/// pair: its inputs given by `inputValue`, linalg.index 2 the constant
/// `half`; ops on scalars alone stay scalar (and fold), the rest become
/// vector ops, a select keeping a scalar condition.
Value emitRopeHalf(OpBuilder &b, Location l, linalg::GenericOp rope,
                   int64_t half, int64_t width,
                   function_ref<Value(OpOperand *)> inputValue) {
  Block &body = rope.getRegion().front();
  IRMapping map;
  for (OpOperand *input : rope.getDpsInputOperands())
    map.map(body.getArgument(input->getOperandNumber()), inputValue(input));
  for (Operation &inner : body.without_terminator()) {
    if (isa<linalg::IndexOp>(inner)) {
      map.map(inner.getResult(0), arith::ConstantIndexOp::create(b, l, half));
      continue;
    }
    SmallVector<Value> operands = llvm::map_to_vector(
        inner.getOperands(), [&](Value v) { return map.lookupOrDefault(v); });
    if (llvm::none_of(operands,
                      [](Value v) { return isa<VectorType>(v.getType()); })) {
      map.map(inner.getResult(0), b.clone(inner, map)->getResult(0));
      continue;
    }
    for (auto [k, operand] : llvm::enumerate(operands))
      if (!isa<VectorType>(operand.getType()) &&
          !(k == 0 && isa<arith::SelectOp>(inner)))
        operand = vector::BroadcastOp::create(
            b, l, VectorType::get({width}, operand.getType()), operand);
    OperationState state(
        l, inner.getName().getStringRef(), operands,
        TypeRange{VectorType::get({width}, inner.getResult(0).getType())},
        inner.getAttrs());
    map.map(inner.getResult(0), b.create(state)->getResult(0));
  }
  return map.lookupOrDefault(body.getTerminator()->getOperand(0));
}

//===----------------------------------------------------------------------===//
// Packed projections, continued
//===----------------------------------------------------------------------===//

/// The columns of a packed projection's panel that starts at slot `n0`:
/// [n0, n0 + width) without RoPE; with it, the two halves of `width / 2`
/// columns of the same pairs, so that both elements of each pair are in
/// the same row of sums: head h = n0 / D, quarter q = n0 mod D / width,
/// first half from h D + q width / 2, second half D / 2 further.
struct PanelColumns {
  Value head, pairOffset, first, second;
};

PanelColumns panelColumns(OpBuilder &b, Location l, Value n0, int64_t width,
                          const PackedEpilogue &epi) {
  PanelColumns c;
  if (!epi.rope) {
    c.first = n0;
    c.second = arith::AddIOp::create(
        b, l, n0, arith::ConstantIndexOp::create(b, l, width / 2));
    return c;
  }
  int64_t d = epi.headDim;
  AffineExpr s = getAffineDimExpr(0, b.getContext());
  auto apply = [&](AffineExpr e) -> Value {
    return affine::AffineApplyOp::create(
        b, l, AffineMap::get(1, 0, e), ValueRange{n0});
  };
  c.head = apply(s.floorDiv(d));
  c.pairOffset = apply((s % d).floorDiv(width) * (width / 2));
  c.first = apply(s.floorDiv(d) * d + (s % d).floorDiv(width) * (width / 2));
  c.second = apply(s.floorDiv(d) * d + d / 2 +
                   (s % d).floorDiv(width) * (width / 2));
  return c;
}

/// Calls `column(b, l, n, at)` for every `step`-th column of a panel:
/// weight rows [n, n + step) into the panel's slots [at, at + step), in
/// two halves with RoPE (`step` divides a half).
void eachPanelColumn(
    OpBuilder &b, Location l, const PanelColumns &cols, int64_t width,
    bool halves, int64_t step,
    function_ref<void(OpBuilder &, Location, Value, Value)> column) {
  Value zero = arith::ConstantIndexOp::create(b, l, 0),
        stepValue = arith::ConstantIndexOp::create(b, l, step),
        halfWidth = arith::ConstantIndexOp::create(b, l, width / 2),
        fullWidth = arith::ConstantIndexOp::create(b, l, width);
  SmallVector<Value> starts = {cols.first};
  if (halves)
    starts.push_back(cols.second);
  for (auto [slot, start] : llvm::enumerate(starts))
    scf::ForOp::create(
        b, l, zero, halves ? halfWidth : fullWidth, stepValue, ValueRange{},
        [&, start = start, slot = slot](OpBuilder &cb, Location cl, Value c,
                                        ValueRange) {
          Value n = arith::AddIOp::create(cb, cl, start, c);
          Value at = slot == 0
                         ? c
                         : arith::AddIOp::create(cb, cl, c, halfWidth);
          column(cb, cl, n, at);
          scf::YieldOp::create(cb, cl);
        });
}

/// Copies the weight rows of a panel's columns into `panel` [E, width]:
/// element e of every column contiguous; in two halves with RoPE. Blocks
/// of `lanes` weight rows x `lanes` elements are transposed in registers
/// (each block row a vector load, each panel row a vector store), the
/// blocks of a row band in order along e, so `lanes` streams from memory
/// at a time; the last E mod lanes elements (all of them for a weight not
/// contiguous along E) one at a time. (One element at a time, a weight row
/// read in order and written down a panel column, the stores became
/// scatters: 2/3 of the projections' time in the example layer's prefill
/// of 16 tokens, then packed. Element e of every row in turn, the panel's 64
/// rows were 64 streams that the prefetchers did not follow.)
void packPanel(OpBuilder &b, Location l, Value weight, Value panel, Value depth,
               const PanelColumns &cols, int64_t width, int64_t lanes,
               bool halves) {
  auto index = [&](OpBuilder &ib, Location il, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ib, il, v);
  };
  Type element = cast<MemRefType>(weight.getType()).getElementType();
  Type panelElement = cast<MemRefType>(panel.getType()).getElementType();
  // A narrower weight widened into an f32 panel (exact): once per call,
  // not once per token block in the sums' loop.
  auto widen = [&](OpBuilder &wb, Location wl, Value v) -> Value {
    if (element == panelElement)
      return v;
    Type to = isa<VectorType>(v.getType())
                  ? Type(VectorType::get({lanes}, panelElement))
                  : panelElement;
    return arith::ExtFOp::create(wb, wl, to, v);
  };
  Value lanesStep = index(b, l, lanes);
  std::optional<int64_t> staticDepth = getConstantIntValue(depth);
  bool blocks = unitInnerStride(weight);
  Value whole =
      !blocks ? index(b, l, 0)
      : staticDepth
          ? index(b, l, *staticDepth - *staticDepth % lanes)
          : arith::SubIOp::create(
                b, l, depth, arith::RemUIOp::create(b, l, depth, lanesStep))
                .getResult();
  if (blocks)
    eachPanelColumn(
        b, l, cols, width, halves, lanes,
        [&](OpBuilder &cb, Location cl, Value n0, Value at) {
          scf::ForOp::create(
              cb, cl, index(cb, cl, 0), whole, lanesStep, ValueRange{},
              [&](OpBuilder &eb, Location el, Value e0, ValueRange) {
                SmallVector<Value> rows;
                for (int64_t i = 0; i < lanes; ++i)
                  rows.push_back(widen(
                      eb, el,
                      vector::LoadOp::create(
                          eb, el, VectorType::get({lanes}, element), weight,
                          ValueRange{offsetBy(eb, el, n0, i), e0})));
                for (auto [j, column] :
                     llvm::enumerate(transposeLanes(eb, el, rows)))
                  vector::StoreOp::create(
                      eb, el, column, panel,
                      ValueRange{offsetBy(eb, el, e0, int64_t(j)), at});
                scf::YieldOp::create(eb, el);
              });
        });
  if (blocks && staticDepth && *staticDepth % lanes == 0)
    return;
  eachPanelColumn(
      b, l, cols, width, halves, /*step=*/1,
      [&](OpBuilder &cb, Location cl, Value n, Value at) {
        scf::ForOp::create(
            cb, cl, whole, depth, index(cb, cl, 1), ValueRange{},
            [&](OpBuilder &eb, Location el, Value e, ValueRange) {
              Value w = widen(
                  eb, el,
                  memref::LoadOp::create(eb, el, weight, ValueRange{n, e}));
              memref::StoreOp::create(eb, el, w, panel, ValueRange{e, at});
              scf::YieldOp::create(eb, el);
            });
      });
}

//===----------------------------------------------------------------------===//
// bf16 pairs
//===----------------------------------------------------------------------===//

} // namespace

Value swappedPairRun(OpBuilder &b, Location l, Value source, ValueRange at,
                     bool round, Value mask) {
  Type element = getElementTypeOrSelf(source.getType());
  auto runType = VectorType::get({kPairRun}, element);
  Value run =
      mask ? vector::MaskedLoadOp::create(
                 b, l, runType, source, at, mask,
                 arith::ConstantOp::create(
                     b, l,
                     DenseElementsAttr::get(runType, b.getZeroAttr(element))))
                 .getResult()
           : vector::LoadOp::create(b, l, runType, source, at).getResult();
  if (round)
    run = arith::TruncFOp::create(
        b, l, VectorType::get({kPairRun}, b.getBF16Type()), run);
  SmallVector<int64_t> swap;
  for (int64_t i = 0; i < kPairRun; ++i)
    swap.push_back(i ^ 1);
  return vector::ShuffleOp::create(b, l, run, run, swap);
}

SmallVector<Value> rowBlockEnds(OpBuilder &b, Location l, Value lo, Value hi,
                                ArrayRef<int64_t> sizes) {
  assert(!sizes.empty() && sizes.back() == 1 && "the last block is a row");
  SmallVector<Value> ends;
  for (int64_t rows : sizes.drop_back()) {
    Value span =
        isConstantIntValue(lo, 0) ? hi : arith::SubIOp::create(b, l, hi, lo);
    lo = arith::SubIOp::create(
        b, l, hi,
        arith::RemUIOp::create(b, l, span,
                               arith::ConstantIndexOp::create(b, l, rows)));
    ends.push_back(lo);
  }
  ends.push_back(hi);
  return ends;
}

Value offsetBy(OpBuilder &b, Location l, Value base, int64_t i) {
  if (i == 0)
    return base;
  return arith::AddIOp::create(b, l, base,
                               arith::ConstantIndexOp::create(b, l, i));
}

void storeTransposedPairRuns(OpBuilder &b, Location l, ArrayRef<Value> runs,
                             Value panel, Value e0, Value slot) {
  auto pairsType = VectorType::get({kPairRun / 2}, b.getI32Type());
  auto runType = VectorType::get({kPairRun}, b.getBF16Type());
  SmallVector<Value> rows = llvm::map_to_vector(runs, [&](Value run) -> Value {
    return vector::BitCastOp::create(b, l, pairsType, run);
  });
  AffineExpr d0 = getAffineDimExpr(0, b.getContext());
  for (auto [j, column] : llvm::enumerate(transposeLanes(b, l, rows))) {
    Value k = affine::AffineApplyOp::create(
        b, l, AffineMap::get(1, 0, d0.floorDiv(2) + int64_t(j)), e0);
    vector::StoreOp::create(b, l,
                            vector::BitCastOp::create(b, l, runType, column),
                            panel, ValueRange{k, slot});
  }
}

namespace {

/// The input x [T, E] as bf16 pairs (swappedPairRun), made once per call
/// (in parallel over tokens): each step broadcasts a token's pair from it.
/// `padRows` zeroed rows follow the T rows (the rows a partial block of
/// AMX tile products reads past the last token).
Value pairInputRows(OpBuilder &b, Location l, Value input, Value tokens,
                    int64_t depth, bool round, int64_t padRows) {
  Value zero = arith::ConstantIndexOp::create(b, l, 0),
        one = arith::ConstantIndexOp::create(b, l, 1),
        run = arith::ConstantIndexOp::create(b, l, kPairRun),
        end = arith::ConstantIndexOp::create(b, l, depth);
  Value rows = arith::AddIOp::create(
      b, l, tokens, arith::ConstantIndexOp::create(b, l, padRows));
  Value pairs = memref::AllocOp::create(
      b, l, MemRefType::get({ShapedType::kDynamic, depth}, b.getBF16Type()),
      rows);
  if (padRows) {
    auto runType = VectorType::get({kPairRun}, b.getBF16Type());
    Value zeros =
        arith::ConstantOp::create(b, l, runType, b.getZeroAttr(runType));
    scf::ForOp::create(
        b, l, tokens, rows, one, ValueRange{},
        [&](OpBuilder &rb, Location rl, Value t, ValueRange) {
          scf::ForOp::create(
              rb, rl, zero, end, run, ValueRange{},
              [&](OpBuilder &fb, Location fl, Value e, ValueRange) {
                vector::StoreOp::create(fb, fl, zeros, pairs, ValueRange{t, e});
                scf::YieldOp::create(fb, fl);
              });
          scf::YieldOp::create(rb, rl);
        });
  }
  scf::ParallelOp::create(
      b, l, ValueRange{zero}, ValueRange{tokens}, ValueRange{one},
      [&](OpBuilder &pb, Location pl, ValueRange t) {
        scf::ForOp::create(
            pb, pl, zero, end, run, ValueRange{},
            [&](OpBuilder &fb, Location fl, Value e, ValueRange) {
              vector::StoreOp::create(
                  fb, fl,
                  swappedPairRun(fb, fl, input, ValueRange{t[0], e}, round),
                  pairs, ValueRange{t[0], e});
              scf::YieldOp::create(fb, fl);
            });
        scf::ReduceOp::create(pb, pl);
      });
  return pairs;
}

/// Copies the weight rows of a panel's columns into a panel of bf16 pairs
/// `panel` [E/2, 2 x width]: row k holds each column's pair (2k, 2k + 1),
/// swapped (swappedPairRun), in blocks of kPairRun / 2 rows x kPairRun
/// elements (storeTransposedPairRuns); before, each pair was a store of
/// its own (a third of the bf16 plan's prefill of 16 tokens).
void packPairPanel(OpBuilder &b, Location l, Value weight, Value panel,
                   int64_t depth, const PanelColumns &cols, int64_t width,
                   bool halves, bool round) {
  auto index = [&](OpBuilder &ib, Location il, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ib, il, v);
  };
  eachPanelColumn(
      b, l, cols, width, halves, kPairRun / 2,
      [&](OpBuilder &cb, Location cl, Value n0, Value at) {
        // Column c's pair in panel row k is at [k, 2 c].
        Value slot = arith::AddIOp::create(cb, cl, at, at);
        scf::ForOp::create(
            cb, cl, index(cb, cl, 0), index(cb, cl, depth),
            index(cb, cl, kPairRun), ValueRange{},
            [&](OpBuilder &eb, Location el, Value e0, ValueRange) {
              SmallVector<Value> runs;
              for (int64_t i = 0; i < kPairRun / 2; ++i)
                runs.push_back(swappedPairRun(
                    eb, el, weight, ValueRange{offsetBy(eb, el, n0, i), e0},
                    round));
              storeTransposedPairRuns(eb, el, runs, panel, e0, slot);
              scf::YieldOp::create(eb, el);
            });
      });
}

} // namespace

SmallVector<Value>
pairPanelSums(OpBuilder &b, Location l, Value panel, Value pairs,
              ArrayRef<Value> ts, ValueRange inits, Value pairSteps,
              int64_t width,
              function_ref<void(OpBuilder &, Location, Value)> eachStep) {
  int64_t parts = width / 16;
  auto sumType = VectorType::get({16}, b.getF32Type());
  auto runType = VectorType::get({kPairRun}, b.getBF16Type());
  SmallVector<Value> partSums;
  for (Value init : inits)
    for (int64_t q = 0; q < parts; ++q)
      partSums.push_back(vector::ExtractStridedSliceOp::create(
          b, l, init, ArrayRef<int64_t>{16 * q}, ArrayRef<int64_t>{16},
          ArrayRef<int64_t>{1}));
  auto index = [&](OpBuilder &ib, Location il, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ib, il, v);
  };
  auto loop = scf::ForOp::create(
      b, l, index(b, l, 0), pairSteps, index(b, l, 1), partSums,
      [&](OpBuilder &fb, Location fl, Value k, ValueRange sums) {
        if (eachStep)
          eachStep(fb, fl, k);
        SmallVector<Value> w;
        for (int64_t q = 0; q < parts; ++q)
          w.push_back(vector::LoadOp::create(
              fb, fl, runType, panel,
              ValueRange{k, index(fb, fl, kPairRun * q)}));
        Value e = arith::AddIOp::create(fb, fl, k, k);
        SmallVector<Value> next;
        for (auto [r, t] : llvm::enumerate(ts)) {
          // The token's pair as one 32-bit word in every lane (LLVM folds
          // the broadcast into vdpbf16ps's memory operand).
          Value pair = vector::LoadOp::create(
              fb, fl, VectorType::get({2}, fb.getBF16Type()), pairs,
              ValueRange{t, e});
          Value word = vector::ExtractOp::create(
              fb, fl,
              vector::BitCastOp::create(
                  fb, fl, VectorType::get({1}, fb.getI32Type()), pair),
              ArrayRef<int64_t>{0});
          Value x = vector::BitCastOp::create(
              fb, fl, runType,
              vector::BroadcastOp::create(
                  fb, fl, VectorType::get({16}, fb.getI32Type()), word));
          for (int64_t q = 0; q < parts; ++q)
            next.push_back(x86vector::DotBF16Op::create(
                fb, fl, sumType, sums[r * parts + q], w[q], x));
        }
        scf::YieldOp::create(fb, fl, next);
      });
  SmallVector<Value> rows;
  auto rowType = VectorType::get({width}, b.getF32Type());
  for (size_t r = 0; r < ts.size(); ++r) {
    Value row =
        arith::ConstantOp::create(b, l, rowType, b.getZeroAttr(rowType));
    for (int64_t q = 0; q < parts; ++q)
      row = vector::InsertStridedSliceOp::create(
          b, l, loop.getResult(r * parts + q), row, ArrayRef<int64_t>{16 * q},
          ArrayRef<int64_t>{1});
    rows.push_back(row);
  }
  return rows;
}

namespace {

/// Whether `v` is a vector of +0.0 (a constant, or a broadcast of one):
/// -0.0 is not, since -0.0 + -0.0 stays -0.0 where a zeroed tile gives +0.0.
bool isPositiveZeroSplat(Value v) {
  if (auto broadcast = v.getDefiningOp<vector::BroadcastOp>())
    v = broadcast.getSource();
  return matchPattern(v, m_PosZeroFloat());
}

} // namespace

SmallVector<Value> amxPanelSums(OpBuilder &b, Location l, Value panel,
                                Value pairs, Value r0, ValueRange inits,
                                Value steps, int64_t width, Value staging) {
  auto index = [&](OpBuilder &ib, Location il, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ib, il, v);
  };
  int64_t tiles = width / 16;
  auto sumTile = amx::TileType::get({16, 16}, b.getF32Type());
  auto pairTile = amx::TileType::get({16, 32}, b.getBF16Type());
  Value zero = index(b, l, 0);
  // Sums that start from +0 (the scores', P·V's, a projection's without a
  // bias) start as zeroed tiles: no stores of the inits and tile loads.
  bool zeroInits = llvm::all_of(inits, isPositiveZeroSplat);
  if (!zeroInits)
    for (auto [m, init] : llvm::enumerate(inits))
      vector::StoreOp::create(b, l, init, staging,
                              ValueRange{index(b, l, m), zero});
  SmallVector<Value> sums;
  for (int64_t j = 0; j < tiles; ++j)
    sums.push_back(zeroInits ? Value(amx::TileZeroOp::create(b, l, sumTile))
                             : Value(amx::TileLoadOp::create(
                                   b, l, sumTile, staging,
                                   ValueRange{zero, index(b, l, 16 * j)})));
  auto loop = scf::ForOp::create(
      b, l, zero, steps, index(b, l, 1), sums,
      [&](OpBuilder &kb, Location kl, Value k, ValueRange acc) {
        Value e = arith::MulIOp::create(kb, kl, k, index(kb, kl, 32));
        Value row = arith::MulIOp::create(kb, kl, k, index(kb, kl, 16));
        Value x =
            amx::TileLoadOp::create(kb, kl, pairTile, pairs, ValueRange{r0, e});
        SmallVector<Value> next;
        for (int64_t j = 0; j < tiles; ++j) {
          Value w = amx::TileLoadOp::create(
              kb, kl, pairTile, panel, ValueRange{row, index(kb, kl, 32 * j)});
          next.push_back(
              amx::TileMulFOp::create(kb, kl, sumTile, x, w, acc[j]));
        }
        scf::YieldOp::create(kb, kl, next);
      });
  for (int64_t j = 0; j < tiles; ++j)
    amx::TileStoreOp::create(b, l, staging,
                             ValueRange{zero, index(b, l, 16 * j)},
                             loop.getResult(j));
  auto rowType = VectorType::get({width}, b.getF32Type());
  SmallVector<Value> rows;
  for (int64_t m = 0; m < kAmxRows; ++m)
    rows.push_back(vector::LoadOp::create(b, l, rowType, staging,
                                          ValueRange{index(b, l, m), zero}));
  return rows;
}

namespace {

/// The sums a row of the panel starts from: the output's row as it is, or
/// with an epilogue the bias's columns, in two halves with RoPE (or the
/// fill's value).
Value initialSums(OpBuilder &b, Location l, Value output, Value t,
                  const PanelColumns &cols, VectorType rowType,
                  const PackedEpilogue &epi) {
  if (!epi.init)
    return vector::LoadOp::create(b, l, rowType, output,
                                  ValueRange{t, cols.first});
  if (epi.fillValue)
    return vector::BroadcastOp::create(b, l, rowType, epi.fillValue);
  if (!epi.rope)
    return vector::LoadOp::create(b, l, rowType, epi.bias, cols.first);
  int64_t half = rowType.getDimSize(0) / 2;
  auto halfType = VectorType::get({half}, rowType.getElementType());
  Value sums = arith::ConstantOp::create(b, l, rowType,
                                         b.getZeroAttr(rowType));
  for (auto [k, start] :
       llvm::enumerate(SmallVector<Value>{cols.first, cols.second}))
    sums = vector::InsertStridedSliceOp::create(
        b, l, vector::LoadOp::create(b, l, halfType, epi.bias, start), sums,
        ArrayRef<int64_t>{int64_t(k) * half}, ArrayRef<int64_t>{1});
  return sums;
}

/// Stores a finished row of sums: to the output, or with RoPE each half of
/// each pair rotated into the RoPE's output [t, h, half, q width / 2].
void storeSums(OpBuilder &b, Location l, Value sums, Value output, Value t,
               const PanelColumns &cols, PackedEpilogue epi) {
  if (!epi.rope) {
    vector::StoreOp::create(b, l, sums, output, ValueRange{t, cols.first});
    return;
  }
  int64_t half = cast<VectorType>(sums.getType()).getDimSize(0) / 2;
  Value halves[2];
  for (int64_t k = 0; k < 2; ++k)
    halves[k] = vector::ExtractStridedSliceOp::create(
        b, l, sums, ArrayRef<int64_t>{k * half}, ArrayRef<int64_t>{half},
        ArrayRef<int64_t>{1});
  Value out = epi.rope.getDpsInitOperand(0)->get();
  DenseMap<OpOperand *, Value> tables;
  for (int64_t k = 0; k < 2; ++k) {
    Value rotated = emitRopeHalf(
        b, l, epi.rope, k, half, [&](OpOperand *input) -> Value {
          AffineMap map = epi.rope.getMatchingIndexingMap(input);
          if (input->get() == epi.view.getResult())
            return halves[cast<AffineConstantExpr>(map.getResult(2))
                              .getValue()];
          Value &table = tables[input];
          if (!table)
            table = vector::LoadOp::create(
                b, l,
                VectorType::get({half}, getElementTypeOrSelf(
                                            input->get().getType())),
                input->get(), ValueRange{t, cols.pairOffset});
          return table;
        });
    Value at = arith::ConstantIndexOp::create(b, l, k);
    vector::StoreOp::create(b, l, rotated, out,
                            ValueRange{t, cols.head, at, cols.pairOffset});
  }
}

/// The prefetches of the next panel's rows go to L1 (prefetcht0): into L2
/// (prefetcht1) they gained nothing on an AMD EPYC (Zen 4).
constexpr int64_t kPanelPrefetchLocality = 3;

/// The next panel's weight rows, which a panel's token blocks prefetch
/// while they compute: packing read them from memory with the FMAs idle (a
/// quarter of Qwen2.5-7B's projections at 64 tokens; prefetched, its
/// prefill was 1.15x faster at 48 tokens, 1.10x at 64, 1.08x at 96; with
/// bf16 pairs 1.09x at 48, 1.06x at 64). The next panel is the same
/// thread's next block of columns (the threads take contiguous ranges of
/// blocks); rows past the weight's last are clamped.
struct NextPanel {
  PanelColumns cols;
  bool halves = false;
  /// The weight's last row, its 64-byte lines per row and the last of them.
  Value lastRow, rowLines, lastLine;
  int64_t lineElements = 0;
};

/// The panel after the one at columns `n0` of the packed projection `p`
/// (`columns` x `depth`).
NextPanel nextPanel(OpBuilder &b, Location l, const PackedProjection &p,
                    const PackedEpilogue &epi, Value n0, Value columns,
                    Value depth) {
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  auto type = cast<MemRefType>(p.weight->get().getType());
  NextPanel next;
  next.cols = panelColumns(
      b, l, arith::AddIOp::create(b, l, n0, index(p.width)), p.width, epi);
  next.halves = bool(epi.rope);
  next.lastRow = arith::SubIOp::create(b, l, columns, index(1));
  next.lineElements = 64 / (type.getElementTypeBitWidth() / 8);
  next.rowLines =
      arith::CeilDivUIOp::create(b, l, depth, index(next.lineElements));
  next.lastLine = arith::SubIOp::create(b, l, next.rowLines, index(1));
  return next;
}

/// Prefetches line `line` of `next`'s rows taken in panel order (`width`
/// rows of whole 64-byte lines): a line past the last prefetches the last
/// again.
void prefetchPanelLine(OpBuilder &b, Location l, Value weight,
                       const NextPanel &next, Value line, int64_t width) {
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  Value r = arith::DivUIOp::create(b, l, line, next.rowLines);
  Value inRow = arith::RemUIOp::create(b, l, line, next.rowLines);
  Value past =
      arith::CmpIOp::create(b, l, arith::CmpIPredicate::uge, r, index(width));
  r = arith::SelectOp::create(b, l, past, index(width - 1), r);
  inRow = arith::SelectOp::create(b, l, past, next.lastLine, inRow);
  Value row = arith::AddIOp::create(b, l, next.cols.first, r);
  if (next.halves) {
    Value half = index(width / 2);
    Value second =
        arith::CmpIOp::create(b, l, arith::CmpIPredicate::uge, r, half);
    row = arith::SelectOp::create(
        b, l, second,
        arith::AddIOp::create(b, l, next.cols.second,
                              arith::SubIOp::create(b, l, r, half)),
        row);
  }
  row = arith::MinUIOp::create(b, l, row, next.lastRow);
  memref::PrefetchOp::create(
      b, l, weight,
      ValueRange{row,
                 arith::MulIOp::create(b, l, inRow, index(next.lineElements))},
      /*isWrite=*/false, kPanelPrefetchLocality, /*isDataCache=*/true);
}

/// The depth loop of a block of rows `ts` against a packed f32 (or the
/// weight's type) `panel` [E, width]: per e, the panel's row is loaded once
/// and each row's x[t, e] broadcast (emitRowPayload), each row's sums a
/// vector iter_arg started from `inits`. `eachStep`, when given, is called
/// at the top of each step with e. Returns each row's finished sums.
SmallVector<Value>
panelSums(OpBuilder &b, Location l, linalg::GenericOp op,
          const PackedProjection &p, Value panel, ArrayRef<Value> ts,
          ValueRange inits, Value depth,
          function_ref<void(OpBuilder &, Location, Value)> eachStep) {
  // The weight's element, or f32 for a narrower weight that the payload
  // only widens (packPanel widened it).
  auto rowType = VectorType::get(
      {p.width}, cast<MemRefType>(panel.getType()).getElementType());
  Value zero = arith::ConstantIndexOp::create(b, l, 0);
  auto loop = scf::ForOp::create(
      b, l, zero, depth, arith::ConstantIndexOp::create(b, l, 1), inits,
      [&](OpBuilder &fb, Location fl, Value e, ValueRange sums) {
        if (eachStep)
          eachStep(fb, fl, e);
        Value w =
            vector::LoadOp::create(fb, fl, rowType, panel, ValueRange{e, zero});
        SmallVector<Value> next;
        for (auto [t, sum] : llvm::zip(ts, sums))
          next.push_back(
              emitRowPayload(fb, fl, op, p.width, sum, [&](OpOperand *in) {
                if (in == p.weight)
                  return w;
                return memref::LoadOp::create(fb, fl, in->get(),
                                              ValueRange{t, e})
                    .getResult();
              }));
        scf::YieldOp::create(fb, fl, next);
      });
  return SmallVector<Value>(loop.getResults());
}

/// Runs the blocks of kAmxRows tokens from `from` to `to` (a multiple of
/// kAmxRows apart) against a `panel` of bf16 pairs as AMX tile products
/// (amxPanelSums), each row starting from `init` and going to `finish`.
void emitAmxTokenBlocks(
    OpBuilder &b, Location l, Value panel, Value pairs, int64_t depth,
    int64_t width, Value staging, Value from, Value to,
    function_ref<Value(OpBuilder &, Location, Value)> init,
    function_ref<void(OpBuilder &, Location, Value, Value)> finish) {
  scf::ForOp::create(
      b, l, from, to, arith::ConstantIndexOp::create(b, l, kAmxRows),
      ValueRange{}, [&](OpBuilder &tb, Location tl, Value t0, ValueRange) {
        SmallVector<Value> inits;
        for (int64_t m = 0; m < kAmxRows; ++m)
          inits.push_back(init(tb, tl, offsetBy(tb, tl, t0, m)));
        Value steps = arith::ConstantIndexOp::create(tb, tl, depth / 32);
        for (auto [m, sums] : llvm::enumerate(amxPanelSums(
                 tb, tl, panel, pairs, t0, inits, steps, width, staging)))
          finish(tb, tl, offsetBy(tb, tl, t0, m), sums);
        scf::YieldOp::create(tb, tl);
      });
}

/// What every block of a panel's token rows shares (emitPanelRows).
struct PanelRows {
  linalg::GenericOp op;
  const PackedProjection &p;
  const PackedEpilogue &epi;
  /// The packed panel, and the input's bf16 pairs (or null).
  Value panel, pairs;
  const PanelColumns &cols;
  Value depth, output;
  VectorType sumsType;
  /// With an epilogue every row starts from the same bias vector: built
  /// once per panel, not per token.
  Value panelInit;

  /// Token `t`'s initial sums.
  Value init(OpBuilder &b, Location l, Value t) const {
    return panelInit ? panelInit
                     : initialSums(b, l, output, t, cols, sumsType, epi);
  }
};

/// Token blocks [from, to) of `rows` tokens each, as outer products
/// (pairPanelSums on bf16 pairs, else panelSums). With `prefetched`, each
/// step of e also prefetches a line of the next panel (two per step of
/// pairs): block (t0 - prefetchFrom) / rows prefetches lines from that
/// block index x E on, in panel order.
void emitTokenBlocks(OpBuilder &b, Location l, const PanelRows &pr, Value from,
                     Value to, int64_t rows, const NextPanel *prefetched,
                     Value prefetchFrom) {
  auto index = [&](OpBuilder &ib, Location il, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ib, il, v);
  };
  const PackedProjection &p = pr.p;
  scf::ForOp::create(
      b, l, from, to, index(b, l, rows), ValueRange{},
      [&](OpBuilder &tb, Location tl, Value t0, ValueRange) {
        SmallVector<Value> ts, inits;
        for (int64_t m = 0; m < rows; ++m) {
          ts.push_back(offsetBy(tb, tl, t0, m));
          inits.push_back(pr.init(tb, tl, ts.back()));
        }
        Value lineBase;
        if (prefetched)
          lineBase = arith::MulIOp::create(
              tb, tl,
              arith::DivUIOp::create(
                  tb, tl, arith::SubIOp::create(tb, tl, t0, prefetchFrom),
                  index(tb, tl, rows)),
              pr.depth);
        // `lines` lines from line lineBase + lines x `step` (a step of
        // pairs takes two elements of e).
        auto prefetchLines = [&](OpBuilder &kb, Location kl, Value step,
                                 int64_t lines) {
          Value line = arith::AddIOp::create(
              kb, kl, lineBase,
              lines == 1
                  ? step
                  : arith::MulIOp::create(kb, kl, step, index(kb, kl, lines)));
          for (int64_t i = 0; i < lines; ++i)
            prefetchPanelLine(kb, kl, p.weight->get(), *prefetched,
                              offsetBy(kb, kl, line, i), p.width);
        };
        using StepFn = function_ref<void(OpBuilder &, Location, Value)>;
        auto onePerStep = [&](OpBuilder &kb, Location kl, Value e) {
          prefetchLines(kb, kl, e, 1);
        };
        auto twoPerStep = [&](OpBuilder &kb, Location kl, Value k) {
          prefetchLines(kb, kl, k, 2);
        };
        SmallVector<Value> sums =
            pr.pairs
                ? pairPanelSums(
                      tb, tl, pr.panel, pr.pairs, ts, inits,
                      index(tb, tl, *getConstantIntValue(pr.depth) / 2),
                      p.width, lineBase ? StepFn(twoPerStep) : nullptr)
                : panelSums(tb, tl, pr.op, p, pr.panel, ts, inits, pr.depth,
                            lineBase ? StepFn(onePerStep) : nullptr);
        for (auto [t, sum] : llvm::zip(ts, sums))
          storeSums(tb, tl, sum, pr.output, t, pr.cols, pr.epi);
        scf::YieldOp::create(tb, tl);
      });
}

/// Token rows [lo, hi) as AMX tile products: whole blocks of kAmxRows, then
/// the rest ((hi - lo) mod kAmxRows) as one more block that reads rows past hi
/// (the next rows, or the zeroed rows after the last token) and stores only its
/// rows below hi. (The rest as vdpbf16ps, at half the FMA rate on an AMX
/// Xeon, made the 7B's bf16 plan 1.4-1.5x slower at 20 tokens and 1.7-1.8x
/// at 10.)
void emitAmxPanelRows(OpBuilder &b, Location l, const PanelRows &pr, Value lo,
                      Value hi) {
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  int64_t width = pr.p.width;
  Value staging = memref::AllocaOp::create(
      b, l, MemRefType::get({kAmxRows, width}, b.getF32Type()));
  Value end = rowBlockEnds(b, l, lo, hi, {kAmxRows, 1}).front();
  Value last = arith::SubIOp::create(b, l, hi, index(1));
  auto blocks = [&](Value from, Value to, bool partial) {
    emitAmxTokenBlocks(
        b, l, pr.panel, pr.pairs, *getConstantIntValue(pr.depth), width,
        staging, from, to,
        [&](OpBuilder &ib, Location il, Value t) {
          // A row past hi starts from row hi - 1's values (discarded).
          if (partial && !pr.panelInit)
            t = arith::MinUIOp::create(ib, il, t, last);
          return pr.init(ib, il, t);
        },
        [&](OpBuilder &fb, Location fl, Value t, Value sums) {
          if (!partial) {
            storeSums(fb, fl, sums, pr.output, t, pr.cols, pr.epi);
            return;
          }
          Value inside =
              arith::CmpIOp::create(fb, fl, arith::CmpIPredicate::ult, t, hi);
          scf::IfOp::create(fb, fl, inside, [&](OpBuilder &ib, Location il) {
            storeSums(ib, il, sums, pr.output, t, pr.cols, pr.epi);
            scf::YieldOp::create(ib, il);
          });
        });
  };
  blocks(lo, end, /*partial=*/false);
  // The rest: zero blocks or one.
  Value rest = arith::CeilDivUIOp::create(
      b, l, arith::SubIOp::create(b, l, hi, end), index(kAmxRows));
  blocks(end,
         arith::AddIOp::create(
             b, l, end, arith::MulIOp::create(b, l, rest, index(kAmxRows))),
         /*partial=*/true);
}

/// Token rows [lo, hi) in blocks of kPackedRows, then the rest (T mod 6)
/// as one block of 5, 4, 3, 2 or 1. (One token at a time, each loaded
/// panel row fed one broadcast: a prefill of 100 tokens took as long as one
/// of 102. As a block of 3 and one of 2 or 1, Qwen2.5-7B's f32 prefill of
/// 64 tokens was 1.02-1.04x slower, of 28 1.03x.) With `prefetched`, each
/// step of e of the first blocks of 6 also prefetches a line of the next
/// panel's rows (emitTokenBlocks). Its `width` f32 rows of E elements are
/// width E / 16 lines, covered after width / 16 blocks (4 with AVX-512's
/// 64 columns; half as many for a bf16 weight); the blocks after those run
/// without the prefetches and their address arithmetic (a division and
/// clamps per step: Qwen2.5-7B's f32 layer at 512 tokens was 1.07-1.09x
/// faster without them on an Intel Xeon).
void emitVectorPanelRows(OpBuilder &b, Location l, const PanelRows &pr,
                         Value lo, Value hi, const NextPanel *prefetched) {
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  const int64_t sizes[] = {kPackedRows, 5, 4, 3, 2, 1};
  Value from = lo;
  for (auto [rows, end] : llvm::zip(sizes, rowBlockEnds(b, l, lo, hi, sizes))) {
    if (prefetched && rows == kPackedRows) {
      Value lines =
          arith::MulIOp::create(b, l, prefetched->rowLines, index(pr.p.width));
      Value covered = arith::MinUIOp::create(
          b, l, end,
          arith::AddIOp::create(
              b, l, from,
              arith::MulIOp::create(
                  b, l, arith::CeilDivUIOp::create(b, l, lines, pr.depth),
                  index(rows))));
      emitTokenBlocks(b, l, pr, from, covered, rows, prefetched,
                      /*prefetchFrom=*/from);
      from = covered;
    }
    emitTokenBlocks(b, l, pr, from, end, rows, /*prefetched=*/nullptr, Value());
    from = end;
  }
}

/// Runs token rows [lo, hi) against a packed `panel` [E, width] of the
/// columns `cols`: blocks of tokens as outer products (per e, the panel's
/// row is loaded once, width / 16 vectors, and each token's x[t, e]
/// broadcast, each token's row of sums a vector iter_arg;
/// emitVectorPanelRows). Each output is summed in order over e, from its
/// initial value (or the epilogue's bias), and stored (or rotated by the
/// epilogue's RoPE). With `pairs` (the input's bf16 pairs) the panel holds
/// bf16 pairs and the sums are pairPanelSums'; with AMX tiles too, every
/// row runs in blocks of kAmxRows (emitAmxPanelRows), the last one
/// partial, and nothing is prefetched. With `prefetched`, the first blocks
/// of 6 tokens also prefetch the next panel (emitVectorPanelRows).
void emitPanelRows(OpBuilder &b, Location l, linalg::GenericOp op,
                   const PackedProjection &p, const PackedEpilogue &epi,
                   Value panel, Value pairs, const PanelColumns &cols,
                   Value depth, Value lo, Value hi,
                   const NextPanel *prefetched = nullptr) {
  Value output = op.getDpsInitOperand(0)->get();
  Type sumElement = op.getRegion().front().getArguments().back().getType();
  auto sumsType = VectorType::get({p.width}, sumElement);
  Value panelInit =
      epi.init ? initialSums(b, l, output, /*t=*/Value(), cols, sumsType, epi)
               : Value();
  PanelRows pr{op,   p,     epi,    panel,    pairs,
               cols, depth, output, sumsType, panelInit};
  if (pairs && p.amxTiles)
    emitAmxPanelRows(b, l, pr, lo, hi);
  else
    emitVectorPanelRows(b, l, pr, lo, hi, prefetched);
}

/// Rows per chunk of a head on which a row epilogue runs, per panel of the
/// head: the chunk's rows (48 x 64 f32 per panel, 12 KiB) are still in
/// cache when its row ops read them, and each panel is swept that many
/// rows before the next (with several panels per head, each is fetched
/// again per chunk).
constexpr int64_t kRowChunk = 48;

/// Emits the row op `row` on rows [t0, t1) of head `h`: a linalg op as its
/// tile (the TilingInterface offsets its linalg.index ops, so a payload's
/// loads stay in the row), a loop with its token and head ivs' bounds
/// clamped to them. Generics created go to `created`.
void emitRowOpOnRows(OpBuilder &b, Location l, Operation *row,
                     std::pair<unsigned, unsigned> dims, Value t0, Value t1,
                     Value h, SmallVectorImpl<linalg::GenericOp> &created) {
  if (auto loop = dyn_cast<scf::ParallelOp>(row)) {
    Value h1 = arith::AddIOp::create(b, l, h,
                                     arith::ConstantIndexOp::create(b, l, 1));
    SmallVector<Value> lbs(loop.getLowerBound()), ubs(loop.getUpperBound());
    auto clamp = [&](unsigned d, Value lo, Value hi) {
      lbs[d] = arith::MaxSIOp::create(b, l, lbs[d], lo);
      ubs[d] = arith::MinSIOp::create(b, l, ubs[d], hi);
    };
    clamp(dims.first, t0, t1);
    clamp(dims.second, h, h1);
    auto clone = cast<scf::ParallelOp>(b.clone(*loop));
    clone.getLowerBoundMutable().assign(lbs);
    clone.getUpperBoundMutable().assign(ubs);
    return;
  }
  auto tileable = cast<TilingInterface>(row);
  // (TilingInterface's getIterationDomain would build the sizes at `row`,
  // after the fused form.)
  SmallVector<Range> domain =
      cast<linalg::LinalgOp>(row).createLoopRanges(b, l);
  SmallVector<OpFoldResult> offsets, sizes;
  for (auto [d, range] : llvm::enumerate(domain)) {
    if (d == dims.second) {
      offsets.push_back(h);
      sizes.push_back(b.getIndexAttr(1));
    } else if (d == dims.first) {
      Value end = arith::MinSIOp::create(
          b, l, t1, getValueOrCreateConstantIndexOp(b, l, range.size));
      offsets.push_back(t0);
      sizes.push_back(arith::MaxSIOp::create(
                          b, l, arith::SubIOp::create(b, l, end, t0),
                          arith::ConstantIndexOp::create(b, l, 0))
                          .getResult());
    } else {
      offsets.push_back(range.offset);
      sizes.push_back(range.size);
    }
  }
  FailureOr<TilingResult> tiled =
      tileable.getTiledImplementation(b, offsets, sizes);
  assert(succeeded(tiled) && "matchRowEpilogue took an untileable op");
  for (Operation *op : tiled->tiledOps)
    if (auto generic = dyn_cast<linalg::GenericOp>(op))
      created.push_back(generic);
}

/// Packs the weight rows of `cols` into `panel`: bf16 pairs
/// (packPairPanel) or rows of e (packPanel).
void packPanelOf(OpBuilder &b, Location l, const PackedProjection &p,
                 const PackedEpilogue &epi, Value panel,
                 const PanelColumns &cols, Value depth) {
  Value weight = p.weight->get();
  if (p.bf16Pairs)
    packPairPanel(b, l, weight, panel, *getConstantIntValue(depth), cols,
                  p.width, bool(epi.rope), p.bf16Pairs->roundWeight);
  else
    packPanel(b, l, weight, panel, depth, cols, p.width, p.lanes,
              bool(epi.rope));
}

/// The packed projection with a row epilogue: every panel packed first (one
/// buffer of `panelType` panels of `panelRows` rows, in parallel), then
/// one thread per chunk of a head's rows runs the chunk against each of
/// the head's panels and then the row ops on the chunk.
void emitPackedRowChunks(IRRewriter &rewriter, Location loc,
                         linalg::GenericOp op, const LoopBounds &all,
                         const PackedProjection &p, const PackedEpilogue &epi,
                         MemRefType panelType, Value panelRows, Value pairs,
                         SmallVectorImpl<linalg::GenericOp> &created) {
  Value tokens = all.ubs[0], depth = all.ubs[2];
  auto index = [&](OpBuilder &b, Location l, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  Value zero = index(rewriter, loc, 0);
  // Panel k is rows [k E, (k + 1) E) of one buffer.
  int64_t columns = *getConstantIntValue(all.ubs[1]);
  Value packed = memref::AllocOp::create(
      rewriter, loc, panelType,
      ValueRange{arith::MulIOp::create(
          rewriter, loc, index(rewriter, loc, columns / p.width), panelRows)});
  auto panelAt = [&](OpBuilder &b, Location l, Value k) -> Value {
    Value row = arith::MulIOp::create(b, l, k, panelRows);
    return memref::SubViewOp::create(
        b, l, packed, ArrayRef<OpFoldResult>{row, b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{panelRows,
                               b.getIndexAttr(panelType.getDimSize(1))},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1)});
  };
  Value widthValue = index(rewriter, loc, p.width);
  scf::ParallelOp::create(
      rewriter, loc, ValueRange{zero}, ValueRange{all.ubs[1]},
      ValueRange{widthValue}, [&](OpBuilder &b, Location l, ValueRange n0) {
        PanelColumns cols = panelColumns(b, l, n0[0], p.width, epi);
        packPanelOf(
            b, l, p, epi,
            panelAt(b, l, arith::DivUIOp::create(b, l, n0[0], widthValue)),
            cols, depth);
        scf::ReduceOp::create(b, l);
      });
  int64_t panelsPerHead = epi.rowHeadDim / p.width;
  Value chunk = index(rewriter, loc, kRowChunk * panelsPerHead);
  scf::ParallelOp::create(
      rewriter, loc, ValueRange{zero, zero},
      ValueRange{index(rewriter, loc, epi.rowHeads), tokens},
      ValueRange{index(rewriter, loc, 1), chunk},
      [&](OpBuilder &b, Location l, ValueRange ivs) {
        Value h = ivs[0], t0 = ivs[1];
        Value t1 = arith::MinSIOp::create(
            b, l, arith::AddIOp::create(b, l, t0, chunk), tokens);
        for (int64_t j = 0; j < panelsPerHead; ++j) {
          Value k = arith::AddIOp::create(
              b, l, arith::MulIOp::create(b, l, h, index(b, l, panelsPerHead)),
              index(b, l, j));
          Value n0 = arith::MulIOp::create(b, l, k, widthValue);
          PanelColumns cols = panelColumns(b, l, n0, p.width, epi);
          emitPanelRows(b, l, op, p, epi, panelAt(b, l, k), pairs, cols, depth,
                        t0, t1);
        }
        for (auto [row, dims] : llvm::zip(epi.rowOps, epi.rowDims))
          emitRowOpOnRows(b, l, row, dims, t0, t1, h, created);
        scf::ReduceOp::create(b, l);
      });
  memref::DeallocOp::create(rewriter, loc, packed);
}

} // namespace

/// The packed form of a projection: one thread per block of `width`
/// columns packs the block's weight rows into a panel [E, width] (element
/// e of every column contiguous), then runs every token against it
/// (emitPanelRows). Packing costs E x width copies per block and call,
/// against T x E x width FMAs (Goto's GEMM packs per call too). With a row
/// epilogue, emitPackedRowChunks.
void emitPackedProjection(IRRewriter &rewriter, linalg::GenericOp op,
                          const LoopBounds &all, const PackedProjection &p,
                          const PackedEpilogue &epi,
                          SmallVectorImpl<linalg::GenericOp> &created) {
  Location loc = op.getLoc();
  Value weight = p.weight->get();
  Value tokens = all.ubs[0], depth = all.ubs[2];
  auto index = [&](OpBuilder &b, Location l, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  // A panel: [E, width] of the weight's type, or [E/2, 2 x width] bf16
  // pairs.
  bool bf16 = p.bf16Pairs.has_value();
  Type panelElement = bf16 ? rewriter.getBF16Type()
                      : onlyWidenedToF32(op, p.weight)
                          ? rewriter.getF32Type()
                          : cast<MemRefType>(weight.getType()).getElementType();
  auto panelType = MemRefType::get(
      {ShapedType::kDynamic, bf16 ? 2 * p.width : p.width}, panelElement);
  Value panelRows =
      bf16 ? index(rewriter, loc, *getConstantIntValue(depth) / 2) : depth;
  Value pairs =
      bf16 ? pairInputRows(rewriter, loc, p.input->get(), tokens,
                           *getConstantIntValue(depth), p.bf16Pairs->roundInput,
                           p.amxTiles ? kAmxRows - 1 : 0)
           : Value();
  if (epi.rowOps.empty()) {
    Value zero = index(rewriter, loc, 0);
    scf::ParallelOp::create(
        rewriter, loc, ValueRange{zero}, ValueRange{all.ubs[1]},
        ValueRange{index(rewriter, loc, p.width)},
        [&](OpBuilder &b, Location l, ValueRange n0) {
          PanelColumns cols = panelColumns(b, l, n0[0], p.width, epi);
          Value panel = memref::AllocOp::create(b, l, panelType, panelRows);
          packPanelOf(b, l, p, epi, panel, cols, depth);
          std::optional<NextPanel> next;
          if (p.prefetchNextPanel && unitInnerStride(weight))
            next = nextPanel(b, l, p, epi, n0[0], all.ubs[1], depth);
          emitPanelRows(b, l, op, p, epi, panel, pairs, cols, depth, zero,
                        tokens, next ? &*next : nullptr);
          memref::DeallocOp::create(b, l, panel);
          scf::ReduceOp::create(b, l);
        });
  } else {
    emitPackedRowChunks(rewriter, loc, op, all, p, epi, panelType, panelRows,
                        pairs, created);
  }
  if (pairs)
    memref::DeallocOp::create(rewriter, loc, pairs);
}

} // namespace rotor::host
