//===- LowerReductionsToRegisterLoops.cpp - Vectorizable reduction loops --===//
//
// convert-linalg-to-parallel-loops keeps a reduction's partial sum in the
// output buffer: every step loads and stores it, and since LLVM cannot prove
// that buffer distinct from the inputs, the sum never becomes a register and
// the loop is never vectorized. Here a reduction generic becomes an
// scf.parallel over its parallel dims whose body carries the sum through
// scf.for iter_args, with the accumulating add marked reassociable: LLVM's
// loop vectorizer then splits it into SIMD-lane partial sums (a fixed order,
// so the result depends on the target's vector width, never on threads).
// A weight too large for the cache (streamed) is summed in chunks along the
// reduction, each chunk's sums as explicit vector loops that prefetch the
// next chunk while they compute (emitVectorDotLoops).
// A projection with enough tokens instead runs packed (PackedProjection.cpp:
// outer products on a panel of the weight, each output summed in order,
// with its epilogues): a token's bits then depend on whether its call had
// enough tokens to pack (packedMinRows). A prefill block's tile of scores (many
// rows) runs as the same outer products on a panel of its keys transposed in
// registers (with its online softmax's scale, mask and row max applied to each
// row in registers: ScoresEpilogue.cpp), and its P·V on V's rows, each score or
// output summed in order; a decode step's (few rows) in blocks of keys whose
// lane partial sums a shuffle tree reduces together (the scores' forms and the
// row panels: ScoresForms.cpp). A row max or min keeps lane partial results
// (exact).
//
//===----------------------------------------------------------------------===//

#include "RegisterLoops.h"
#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/AMX/AMXDialect.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/LoopLikeInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/TilingInterface.h"

namespace rotor {
#define GEN_PASS_DEF_LOWERREDUCTIONSTOREGISTERLOOPS
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;
using namespace rotor::host;

namespace rotor::host {

/// The indices `map` selects from the loop ivs.
SmallVector<Value> applyMap(OpBuilder &b, Location loc, AffineMap map,
                            ValueRange ivs) {
  SmallVector<Value> indices;
  for (AffineExpr e : map.getResults()) {
    if (auto dim = dyn_cast<AffineDimExpr>(e)) {
      indices.push_back(ivs[dim.getPosition()]);
      continue;
    }
    indices.push_back(affine::AffineApplyOp::create(
        b, loc, AffineMap::get(map.getNumDims(), 0, e), ivs));
  }
  return indices;
}

/// Whether `value`'s memref is contiguous along its last axis.
bool unitInnerStride(Value value) {
  auto type = cast<MemRefType>(value.getType());
  SmallVector<int64_t> strides;
  int64_t offset;
  return succeeded(type.getStridesAndOffset(strides, offset)) &&
         !strides.empty() && strides.back() == 1;
}

/// Whether `op`'s payload is pure elementwise arithmetic on scalars, one
/// result per op (so that it applies to whole vectors); with `indices`,
/// linalg.index and scalar constants too.
bool elementwisePayload(linalg::GenericOp op, bool indices) {
  return llvm::all_of(
      op.getRegion().front().without_terminator(), [&](Operation &inner) {
        if (indices && isa<linalg::IndexOp>(inner))
          return true;
        if (indices && isa<arith::ConstantOp>(inner))
          return inner.getResult(0).getType().isIntOrIndexOrFloat();
        return inner.getNumResults() == 1 && inner.getNumRegions() == 0 &&
               inner.hasTrait<OpTrait::Elementwise>() && isPure(&inner) &&
               llvm::all_of(inner.getOperandTypes(), [](Type t) {
                 return t.isIntOrIndexOrFloat();
               });
      });
}

/// The payload of `op` on rows of `width` elements: block arguments and
/// results as vectors, values from outside (and elements read once)
/// broadcast. `inputValue` gives each memref input's value at the current
/// step, a row or an element; `acc` is the running row; `indexRow` each
/// linalg.index's row (or element). With `contractSum`, the product and
/// the add of the sum contract to an FMA (no reassoc: each element is
/// summed in order).
Value emitRowPayload(OpBuilder &nb, Location l, linalg::GenericOp op,
                     int64_t width, Value acc,
                     function_ref<Value(OpOperand *)> inputValue,
                     function_ref<Value(unsigned)> indexRow,
                     bool contractSum) {
  Block &body = op.getRegion().front();
  auto rowType = [&](Type element) {
    return VectorType::get({width}, element);
  };
  IRMapping rows;
  auto asRow = [&](Value v) -> Value {
    if (Value mapped = rows.lookupOrNull(v))
      return mapped;
    if (isa<VectorType>(v.getType()))
      return v;
    return vector::BroadcastOp::create(nb, l, rowType(v.getType()), v);
  };
  for (OpOperand *input : op.getDpsInputOperands()) {
    Value arg = body.getArgument(input->getOperandNumber());
    Value src = input->get();
    rows.map(arg, asRow(isa<MemRefType>(src.getType()) ? inputValue(input)
                                                         : src));
  }
  rows.map(body.getArguments().back(), acc);
  for (Operation &scalar : body.without_terminator()) {
    Value row;
    if (auto index = dyn_cast<linalg::IndexOp>(scalar)) {
      row = asRow(indexRow(index.getDim()));
    } else if (isa<arith::ConstantOp>(scalar)) {
      row = asRow(nb.clone(scalar)->getResult(0));
    } else if (isa<arith::ExtFOp>(scalar) &&
               getElementTypeOrSelf(asRow(scalar.getOperand(0))) ==
                   scalar.getResult(0).getType()) {
      // An input the caller gave already widened (emitKeyBlockScores'
      // panel): extf is exact, so the widened row is its result.
      row = asRow(scalar.getOperand(0));
    } else {
      SmallVector<Value> operands =
          llvm::map_to_vector(scalar.getOperands(), asRow);
      OperationState state(l, scalar.getName().getStringRef(), operands,
                           TypeRange{rowType(scalar.getResult(0).getType())},
                           scalar.getAttrs());
      row = nb.create(state)->getResult(0);
    }
    rows.map(scalar.getResult(0), row);
  }
  Value sum = asRow(body.getTerminator()->getOperand(0));
  auto add = sum.getDefiningOp<arith::AddFOp>();
  if (contractSum && add && (add.getLhs() == acc || add.getRhs() == acc)) {
    add.setFastmath(arith::FastMathFlags::contract);
    Value other = add.getLhs() == acc ? add.getRhs() : add.getLhs();
    if (auto mul = other.getDefiningOp<arith::MulFOp>())
      mul.setFastmath(arith::FastMathFlags::contract);
  }
  return sum;
}

/// The generics this lowering takes: buffers, one output indexed by exactly
/// the parallel dims, and every reduction dim after every parallel one (the
/// loop order linalg gives them).
bool isRegisterReduction(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInits() != 1)
    return false;
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  unsigned parallel = 0;
  while (parallel < iterators.size() &&
         iterators[parallel] == utils::IteratorType::parallel)
    ++parallel;
  // A full reduction (no parallel dim) has no loop to carry the sum in.
  if (parallel == 0 || parallel == iterators.size())
    return false;
  for (unsigned i = parallel; i < iterators.size(); ++i)
    if (iterators[i] != utils::IteratorType::reduction)
      return false;
  AffineMap out = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  if (out.getNumResults() != parallel || !out.isProjectedPermutation())
    return false;
  llvm::SmallBitVector seen(iterators.size());
  for (AffineExpr e : out.getResults())
    seen.set(cast<AffineDimExpr>(e).getPosition());
  return seen.find_first_unset() == int(parallel);
}

/// How a reduction generic is best lowered for the host's SIMD units.
enum class ReductionForm {
  /// linalg's own lowering (convert-linalg-to-parallel-loops).
  Default,
  /// The sum in a register, the contiguous reduction dim vectorized.
  Register,
  /// The reduction loops outside the output's contiguous dim, which is
  /// vectorized: the sum stays in memory, each element summed in order.
  ContiguousOutput,
};

/// The dim that indexes the contiguous (last) axis of `map`'s operand.
std::optional<unsigned> contiguousDim(AffineMap map) {
  if (map.getNumResults() == 0)
    return std::nullopt;
  if (auto dim = dyn_cast<AffineDimExpr>(map.getResults().back()))
    return dim.getPosition();
  return std::nullopt;
}

/// Register when the inputs are read contiguously along the innermost
/// reduction dim (a dot product); ContiguousOutput when one is read with a
/// stride along it but contiguously along the output's contiguous dim (a
/// row of P·V: the register form would gather); else Default.
ReductionForm chooseForm(linalg::GenericOp op) {
  unsigned innermost = op.getNumLoops() - 1;
  std::optional<unsigned> outDim =
      contiguousDim(op.getMatchingIndexingMap(op.getDpsInitOperand(0)));
  bool alongReduction = false, stridedReduction = false, alongOutput = false;
  for (OpOperand *input : op.getDpsInputOperands()) {
    if (!isa<MemRefType>(input->get().getType()))
      continue;
    AffineMap map = op.getMatchingIndexingMap(input);
    std::optional<unsigned> dim = contiguousDim(map);
    if (dim == innermost)
      alongReduction = true;
    else if (map.isFunctionOfDim(innermost))
      stridedReduction = true;
    if (dim && dim == outDim)
      alongOutput = true;
  }
  if (stridedReduction && alongOutput && op.getNumParallelLoops() > 1)
    return ReductionForm::ContiguousOutput;
  if (alongReduction)
    return ReductionForm::Register;
  return ReductionForm::Default;
}

/// The register block of a projection: rows (tokens) x columns (outputs);
/// with 32 vector registers (AVX-512), kWideJamColumns columns.
/// (A jam of 5 rows x 4 columns measured no faster.)
constexpr int64_t kJamRows = 4, kJamColumns = 2, kWideJamColumns = 4;
/// Keys per register block of a score tile (one query row, four keys).
constexpr int64_t kJamKeys = 4;
/// Columns per thread's block of a projection (even: whole column pairs).
constexpr int64_t kColumnBlock = 32;

/// Reduction elements per chunk of a streamed weight in the dot-product
/// form: 8 KiB of each f32 row, so that a block's 32 weight rows (256 KiB)
/// and the rows of up to 23 tokens (184 KiB) stay in a 1 MiB L2 together,
/// whatever the depth, while each row's piece is long enough for the
/// prefetchers. With chunks of 256 (the rows' pieces 1 KiB, the block's
/// chunk in L1) a prefill was 1.13-1.24x slower on Qwen2.5-7B's weights at
/// 4 to 20 tokens and 1.15-1.31x on a Llama-70B-sized layer's (8192 deep);
/// unchunked, the 70B-sized layer's rows at 23 tokens no longer fit (1.05x
/// slower).
constexpr int64_t kReductionChunk = 2048;

/// Reduction elements per chunk of a streamed weight in the explicit
/// vector loops (emitVectorDotLoops), which prefetch the next chunk's rows
/// while they sum this one's: 4 KiB of each f32 row, so that the block's
/// chunk and the next (128 KiB each) and the tokens' rows stay in L2
/// together. On a Llama-70B-sized layer (8192 deep) chunks of 1024 made
/// a prefill of 8 to 23 tokens 1.10-1.20x faster than chunks of 2048 with
/// the same prefetches, and chunks of 512 1.10x slower again; Qwen2.5-7B's
/// 3584-deep weights ran the same with any of the three.
constexpr int64_t kPrefetchedChunk = 1024;

/// The locality of the prefetches of a streamed weight's next chunk: a
/// block's chunk (128 KiB) is for L2, not L1.
constexpr int32_t kChunkPrefetchLocality = 2;

/// The most prefetches a step of a ragged last chunk issues for the next
/// block's first chunk (NextChunk::lastPrefetches).
constexpr int64_t kMaxLastPrefetches = 4;

/// The most bytes of rows that fewRows takes (a third of a 48 KiB L1).
constexpr int64_t kFewRowsBytes = 16 << 10;

/// The payload at `ivs` with the running sum `acc`: inputs loaded,
/// linalg.index replaced by the ivs; returns the new sum. An add of the sum
/// and a product may reassociate and contract (the vectorizer's lane sums
/// and FMAs).
Value emitPayload(OpBuilder &b, Location loc, linalg::GenericOp op,
                  ValueRange ivs, Value acc, bool reassociate) {
  Block &body = op.getRegion().front();
  IRMapping mapping;
  for (OpOperand *input : op.getDpsInputOperands()) {
    Value arg = body.getArgument(input->getOperandNumber());
    if (!isa<MemRefType>(input->get().getType())) {
      mapping.map(arg, input->get());
      continue;
    }
    mapping.map(arg, memref::LoadOp::create(
                         b, loc, input->get(),
                         applyMap(b, loc, op.getMatchingIndexingMap(input),
                                  ivs)));
  }
  BlockArgument accArg = body.getArguments().back();
  mapping.map(accArg, acc);
  for (Operation &inner : body.without_terminator()) {
    if (auto index = dyn_cast<linalg::IndexOp>(inner)) {
      mapping.map(index.getResult(), ivs[index.getDim()]);
      continue;
    }
    b.clone(inner, mapping);
  }
  Value yielded = body.getTerminator()->getOperand(0);
  Value sum = mapping.lookup(yielded);
  auto add = sum.getDefiningOp<arith::AddFOp>();
  if (add && (add.getLhs() == acc || add.getRhs() == acc)) {
    auto flags = arith::FastMathFlags::contract;
    if (reassociate)
      flags = flags | arith::FastMathFlags::reassoc;
    add.setFastmath(flags);
    Value other = add.getLhs() == acc ? add.getRhs() : add.getLhs();
    if (auto mul = other.getDefiningOp<arith::MulFOp>())
      mul.setFastmath(arith::FastMathFlags::contract);
  }
  return sum;
}

LoopBounds loopBounds(IRRewriter &rewriter, linalg::GenericOp op) {
  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  LoopBounds bounds;
  for (Range range : cast<linalg::LinalgOp>(op.getOperation())
                         .createLoopRanges(rewriter, loc)) {
    auto value = [&](OpFoldResult v) {
      return getValueOrCreateConstantIndexOp(rewriter, loc, v);
    };
    bounds.lbs.push_back(value(range.offset));
    bounds.ubs.push_back(value(range.size));
    bounds.steps.push_back(value(range.stride));
  }
  return bounds;
}

/// The register form over parallel ranges [lbs, ubs) stepping by `jam`:
/// each iteration sums the prod(jam) outputs at iv + offset, offset < jam,
/// in one reduction loop nest carrying all their sums. With jam 4 x 2 on a
/// projection, each loaded weight vector feeds four rows and each input
/// vector two, where one output per loop loads two vectors per FMA.
void emitRegisterLoops(OpBuilder &rb, Location loc, linalg::GenericOp op,
                       const LoopBounds &all, ArrayRef<Value> lbs,
                       ArrayRef<Value> ubs, ArrayRef<int64_t> jam) {
  unsigned parallel = lbs.size(), loops = op.getNumLoops();
  SmallVector<Value> steps;
  for (int64_t j : jam)
    steps.push_back(arith::ConstantIndexOp::create(rb, loc, j));
  // Every offset vector below `jam`, the last dim fastest.
  SmallVector<SmallVector<int64_t>> offsets = {{}};
  for (int64_t j : jam) {
    SmallVector<SmallVector<int64_t>> next;
    for (const SmallVector<int64_t> &o : offsets)
      for (int64_t k = 0; k < j; ++k) {
        next.push_back(o);
        next.back().push_back(k);
      }
    offsets = std::move(next);
  }
  Value output = op.getDpsInitOperand(0)->get();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  scf::ParallelOp::create(
      rb, loc, lbs, ubs, steps,
      [&](OpBuilder &b, Location l, ValueRange parallelIvs) {
        SmallVector<SmallVector<Value>> ivs;
        SmallVector<SmallVector<Value>> outIndices;
        SmallVector<Value> inits;
        for (const SmallVector<int64_t> &o : offsets) {
          SmallVector<Value> at;
          for (unsigned d = 0; d < parallel; ++d)
            at.push_back(o[d] == 0 ? parallelIvs[d]
                                   : arith::AddIOp::create(
                                         b, l, parallelIvs[d],
                                         arith::ConstantIndexOp::create(
                                             b, l, o[d])));
          ivs.push_back(at);
          outIndices.push_back(applyMap(b, l, outMap, at));
          inits.push_back(
              memref::LoadOp::create(b, l, output, outIndices.back()));
        }
        // One scf.for per reduction dim, every sum carried through each.
        std::function<SmallVector<Value>(OpBuilder &, unsigned, ValueRange)>
            reduce = [&](OpBuilder &nb, unsigned dim,
                         ValueRange accs) -> SmallVector<Value> {
          if (dim == loops) {
            SmallVector<Value> sums;
            for (auto [at, acc] : llvm::zip(ivs, accs))
              sums.push_back(
                  emitPayload(nb, l, op, at, acc, /*reassociate=*/true));
            return sums;
          }
          auto loop = scf::ForOp::create(
              nb, l, all.lbs[dim], all.ubs[dim], all.steps[dim], accs,
              [&](OpBuilder &fb, Location, Value iv, ValueRange args) {
                for (SmallVector<Value> &at : ivs)
                  at.push_back(iv);
                SmallVector<Value> next = reduce(fb, dim + 1, args);
                for (SmallVector<Value> &at : ivs)
                  at.pop_back();
                scf::YieldOp::create(fb, l, next);
              });
          return SmallVector<Value>(loop.getResults());
        };
        SmallVector<Value> sums = reduce(b, parallel, inits);
        for (auto [sum, indices] : llvm::zip(sums, outIndices))
          memref::StoreOp::create(b, l, sum, output, indices);
        scf::ReduceOp::create(b, l);
      });
}

/// The `type` vector of `memref` starting at `indices` when `vector`, else
/// the element there.
Value loadVectorOrElement(OpBuilder &b, Location l, Value memref,
                          ValueRange indices, VectorType type, bool vector) {
  if (vector)
    return vector::LoadOp::create(b, l, type, memref, indices);
  return memref::LoadOp::create(b, l, memref, indices);
}

/// Whether `map` reads operand `value` at the same element whatever dims
/// `dims` are: every index that depends on one of them is on an axis of
/// static size 1 (a GQA group's heads reading their one KV head through
/// `h floordiv group`), so in bounds it is 0.
bool sameAlongDims(AffineMap map, Value value, ArrayRef<unsigned> dims) {
  auto type = cast<MemRefType>(value.getType());
  for (auto [axis, e] : llvm::enumerate(map.getResults()))
    if (type.getDimSize(axis) != 1 &&
        llvm::any_of(dims, [&](unsigned d) { return e.isFunctionOfDim(d); }))
      return false;
  return true;
}

/// The payload of `op` on rows of `width` elements (emitRowPayload) at each
/// of `positions` (the loop ivs of one sum each), with running rows `accs`:
/// an input read along dim `along` is loaded as a row, any other as an
/// element; an input that reads the same element whatever dim `jammed`
/// (where the positions differ) is loaded once for all of them. `load`,
/// when given, gives an input's row at a position (its index and ivs) in
/// place of the loaded one (null: load it).
SmallVector<Value> emitSharedRowPayloads(OpBuilder &b, Location l,
                                         linalg::GenericOp op, int64_t width,
                                         ArrayRef<SmallVector<Value>> positions,
                                         ValueRange accs, unsigned jammed,
                                         unsigned along, RowLoad load) {
  Block &body = op.getRegion().front();
  DenseMap<OpOperand *, Value> shared;
  SmallVector<Value> sums;
  for (auto [position, at, acc] : llvm::enumerate(positions, accs))
    sums.push_back(
        emitRowPayload(b, l, op, width, acc, [&](OpOperand *input) -> Value {
          if (Value given = load ? load(b, l, input, position, at) : Value())
            return given;
          AffineMap map = op.getMatchingIndexingMap(input);
          bool perPosition = !sameAlongDims(map, input->get(), {jammed});
          if (Value v = perPosition ? Value() : shared.lookup(input))
            return v;
          Type element = body.getArgument(input->getOperandNumber()).getType();
          Value v = loadVectorOrElement(
              b, l, input->get(), applyMap(b, l, map, at),
              VectorType::get({width}, element), map.isFunctionOfDim(along));
          if (!perPosition)
            shared[input] = v;
          return v;
        }));
  return sums;
}

bool onlyWidenedToF32(linalg::GenericOp op, OpOperand *input) {
  BlockArgument arg =
      op.getRegion().front().getArgument(input->getOperandNumber());
  auto narrow = dyn_cast<FloatType>(arg.getType());
  if (!narrow || narrow.getWidth() >= 32 || !arg.hasOneUse())
    return false;
  auto widen = dyn_cast<arith::ExtFOp>(*arg.getUsers().begin());
  return widen && widen.getType().isF32();
}

/// f32 lanes of one SIMD register: 16 with AVX-512 (the x86 ISA with 32
/// registers), else 8 (AVX2).
int64_t f32Lanes(int64_t vectorRegisters) {
  return vectorRegisters >= 32 ? 16 : 8;
}

/// Whether the rows that `dims` (static extents) index, `rowElements`
/// elements of `op`'s sum type each, fit in kFewRowsBytes: a decode step's
/// heads, which then stay in L1 while a loop around them streams another
/// input from memory.
bool fewRows(linalg::GenericOp op, const LoopBounds &all,
             ArrayRef<unsigned> dims, int64_t rowElements) {
  Type sum = op.getRegion().front().getArguments().back().getType();
  if (!sum.isIntOrFloat())
    return false;
  int64_t bytes = rowElements * int64_t(sum.getIntOrFloatBitWidth() / 8);
  for (unsigned dim : dims) {
    std::optional<int64_t> lb = getConstantIntValue(all.lbs[dim]),
                           ub = getConstantIntValue(all.ubs[dim]),
                           step = getConstantIntValue(all.steps[dim]);
    if (!lb || !ub || step != 1)
      return false;
    bytes *= std::max<int64_t>(*ub - *lb, 0);
  }
  return bytes <= kFewRowsBytes;
}

} // namespace rotor::host

namespace {

/// The vector combining kind of a reduction that `lanes`-wide partial
/// results may compute: one reduction dim, static step 1, the payload
/// `maximumf` or `minimumf` of the one f32 or f64 input (read contiguously
/// along that dim) and the running value. As IEEE operations both are
/// associative and commutative, so the grouping cannot change the value;
/// the bits can differ from the in-order loop only in the sign of a zero
/// result and a NaN's payload (the host expands scalar `maximumf` to
/// compare-and-select, which keeps the first of +0 and -0 it meets; the
/// lanes' combination is IEEE's). A softmax, exp(x - max), sees neither.
/// (LLVM runs the in-order loop one element at a time: x86 has no IEEE
/// maximum instruction, and the expansion is not vectorized as a
/// reduction.)
std::optional<vector::CombiningKind> laneReductionKind(linalg::GenericOp op,
                                                        const LoopBounds &all) {
  unsigned parallel = op.getNumParallelLoops();
  if (op.getNumLoops() != parallel + 1 || op.getNumDpsInputs() != 1 ||
      getConstantIntValue(all.steps[parallel]) != 1)
    return std::nullopt;
  OpOperand *input = op.getDpsInputOperand(0);
  if (!isa<MemRefType>(input->get().getType()) ||
      contiguousDim(op.getMatchingIndexingMap(input)) != parallel ||
      !unitInnerStride(input->get()) ||
      llvm::any_of(op.getMatchingIndexingMap(input).getResults().drop_back(),
                   [&](AffineExpr e) { return e.isFunctionOfDim(parallel); }))
    return std::nullopt;
  Block &body = op.getRegion().front();
  if (!llvm::hasSingleElement(body.without_terminator()))
    return std::nullopt;
  Operation &combine = body.front();
  if (combine.getNumOperands() != 2 || combine.getNumResults() != 1 ||
      body.getTerminator()->getOperand(0) != combine.getResult(0) ||
      !llvm::is_contained(combine.getOperands(), body.getArgument(0)) ||
      !llvm::is_contained(combine.getOperands(), body.getArgument(1)) ||
      !(body.getArgument(0).getType().isF32() ||
        body.getArgument(0).getType().isF64()) ||
      body.getArgument(0).getType() != body.getArgument(1).getType())
    return std::nullopt;
  if (isa<arith::MaximumFOp>(combine))
    return vector::CombiningKind::MAXIMUMF;
  if (isa<arith::MinimumFOp>(combine))
    return vector::CombiningKind::MINIMUMF;
  return std::nullopt;
}

/// An exact lane reduction (laneReductionKind): per output, a vector of
/// `lanes` partial results through the whole vectors of the reduction dim,
/// combined across lanes (vector.reduction), then the rest one element at a
/// time.
void emitLaneReduction(IRRewriter &rewriter, linalg::GenericOp op,
                       const LoopBounds &all, vector::CombiningKind kind,
                       int64_t lanes) {
  Location loc = op.getLoc();
  unsigned parallel = op.getNumParallelLoops(), red = parallel;
  Value output = op.getDpsInitOperand(0)->get();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  OpOperand *input = op.getDpsInputOperand(0);
  AffineMap inMap = op.getMatchingIndexingMap(input);
  Type element = op.getRegion().front().getArgument(0).getType();
  auto vectorType = VectorType::get({lanes}, element);
  Operation &combine = op.getRegion().front().front();
  auto combined = [&](OpBuilder &b, Location l, Value x, Value y) {
    OperationState state(l, combine.getName().getStringRef(), {x, y},
                         TypeRange{x.getType()}, combine.getAttrs());
    return b.create(state)->getResult(0);
  };
  SmallVector<Value> lbs(ArrayRef(all.lbs).take_front(parallel)),
      ubs(ArrayRef(all.ubs).take_front(parallel)),
      steps(ArrayRef(all.steps).take_front(parallel));
  scf::ParallelOp::create(
      rewriter, loc, lbs, ubs, steps,
      [&](OpBuilder &b, Location l, ValueRange parallelIvs) {
        SmallVector<Value> ivs(parallelIvs);
        SmallVector<Value> outIndices = applyMap(b, l, outMap, ivs);
        Value init = memref::LoadOp::create(b, l, output, outIndices);
        Value lb = all.lbs[red], ub = all.ubs[red];
        Value step = arith::ConstantIndexOp::create(b, l, lanes);
        Value split = arith::SubIOp::create(
            b, l, ub,
            arith::RemUIOp::create(b, l, arith::SubIOp::create(b, l, ub, lb),
                                   step));
        auto vectors = scf::ForOp::create(
            b, l, lb, split, step,
            ValueRange{vector::BroadcastOp::create(b, l, vectorType, init)},
            [&](OpBuilder &fb, Location fl, Value j, ValueRange acc) {
              ivs.push_back(j);
              Value x = vector::LoadOp::create(fb, fl, vectorType,
                                               input->get(),
                                               applyMap(fb, fl, inMap, ivs));
              ivs.pop_back();
              scf::YieldOp::create(fb, fl, combined(fb, fl, x, acc[0]));
            });
        Value across = vector::ReductionOp::create(b, l, kind,
                                                   vectors.getResult(0));
        auto rest = scf::ForOp::create(
            b, l, split, ub, arith::ConstantIndexOp::create(b, l, 1),
            ValueRange{across},
            [&](OpBuilder &fb, Location fl, Value j, ValueRange acc) {
              ivs.push_back(j);
              Value x = memref::LoadOp::create(fb, fl, input->get(),
                                               applyMap(fb, fl, inMap, ivs));
              ivs.pop_back();
              scf::YieldOp::create(fb, fl, combined(fb, fl, x, acc[0]));
            });
        memref::StoreOp::create(b, l, rest.getResult(0), output, outIndices);
        scf::ReduceOp::create(b, l);
      });
}

/// The columns a jam of the projection form of emitRegisterForm covers,
/// when `op` takes that form: two parallel dims (tokens from 0, a static
/// count of columns that the jam divides) and one reduction.
std::optional<int64_t> projectionJamColumns(linalg::GenericOp op,
                                            const LoopBounds &all,
                                            int64_t vectorRegisters) {
  if (op.getNumParallelLoops() != 2 || op.getNumLoops() != 3 ||
      getConstantIntValue(all.lbs[0]) != 0)
    return std::nullopt;
  std::optional<int64_t> columns = getConstantIntValue(all.ubs[1]);
  if (!columns)
    return std::nullopt;
  // Sixteen sums fit 32 registers (AVX-512), not 16 (AVX2: they spill).
  int64_t jam = vectorRegisters >= 32 && *columns % kWideJamColumns == 0
                    ? kWideJamColumns
                    : kJamColumns;
  if (*columns % jam != 0)
    return std::nullopt;
  return jam;
}

/// Whether `op` takes the bf16 pair form of the packed scores in
/// emitRegisterForm (with `bf16Dot`): that form rounds its operands as it
/// makes their pairs, so nothing is hoisted for it.
bool takesPairScores(linalg::GenericOp op, const LoopBounds &all,
                     int64_t vectorRegisters, bool bf16Dot) {
  if (!bf16Dot || laneReductionKind(op, all) ||
      projectionJamColumns(op, all, vectorRegisters))
    return false;
  OpOperand *keys = packedScoresKeys(op, all, f32Lanes(vectorRegisters));
  return keys &&
         pairScoresQuery(op, all, keys, packedScoresWidth(vectorRegisters));
}

/// Where a streamed weight's chunk prefetches the next chunk while its
/// tokens are summed: the same rows' next chunk, or after the rows' last
/// chunk the first chunk of the next block of kColumnBlock columns (the
/// same thread's next block: the threads take contiguous ranges of
/// blocks). In chunks of 2048 the dot-product form read each chunk's
/// weight rows from memory with the FMAs idle, then computed on them from
/// cache with the memory idle (Qwen2.5-7B's projections at 16 tokens ran
/// at half the FMA peak).
struct NextChunk {
  OpOperand *weight = nullptr;
  /// Added to a weight row and to a reduction index to give the next
  /// chunk's.
  Value rowShift, elementShift;
  /// The weight's last row and reduction index (the clamps).
  Value lastRow, lastElement;
  /// Whether this chunk is its rows' last, and how many prefetches (of
  /// `lanes` elements on) each step then issues: a ragged last chunk (depth
  /// mod the chunk) is shorter than the next block's first chunk, which one
  /// a step covered only part of (Qwen2.5-7B's 3584 = 3 x 1024 + 512: half;
  /// two a step made its prefill 1.06x faster at 4 tokens, 1.08x at 8,
  /// 1.11x at 16). At most kMaxLastPrefetches (a last chunk of 256 or more
  /// is covered whole).
  Value last;
  int64_t lastPrefetches = 1;
  /// The number of kJamRows-row token blocks: token block b prefetches the
  /// rows b, b + blocks, ... of each group of jammed columns, so that the
  /// blocks together prefetch every row once.
  Value tokenBlocks;
};

/// The weight of a projection `op` (the input read along the columns and
/// the reduction, not the tokens) when every memref input is read
/// contiguously along the reduction and the payload is an elementwise sum
/// (acc + f(inputs)), so that explicit vector loops can take it; or null.
OpOperand *vectorDotWeight(linalg::GenericOp op) {
  if (!elementwisePayload(op, /*indices=*/false))
    return nullptr;
  Block &body = op.getRegion().front();
  BlockArgument acc = body.getArguments().back();
  auto add = body.getTerminator()->getOperand(0).getDefiningOp<arith::AddFOp>();
  if (!add || !acc.getType().isF32() || !acc.hasOneUse() ||
      (add.getLhs() != acc && add.getRhs() != acc))
    return nullptr;
  OpOperand *weight = nullptr;
  for (OpOperand *input : op.getDpsInputOperands()) {
    if (!isa<MemRefType>(input->get().getType()))
      continue;
    AffineMap map = op.getMatchingIndexingMap(input);
    if (contiguousDim(map) != 2u || !unitInnerStride(input->get()) ||
        llvm::any_of(map.getResults().drop_back(),
                     [](AffineExpr e) { return e.isFunctionOfDim(2); }))
      return nullptr;
    if (!map.isFunctionOfDim(0) && map.isFunctionOfDim(1))
      weight = input;
  }
  return weight;
}

/// The weight rows a token block of the dot-product form prefetches
/// (NextChunk): per jammed column k, whether it prefetches one and which
/// (clamped to the weight's last row).
SmallVector<std::pair<Value, Value>>
chunkPrefetchRows(OpBuilder &b, Location l, const NextChunk &next, Value token,
                  Value column, Value firstToken, ArrayRef<Value> steps,
                  int64_t columns) {
  Value block = arith::DivUIOp::create(
      b, l, arith::SubIOp::create(b, l, token, firstToken), steps[0]);
  SmallVector<std::pair<Value, Value>> slots;
  for (int64_t k = 0; k < columns; ++k) {
    Value c = arith::AddIOp::create(
        b, l, block,
        arith::MulIOp::create(b, l, next.tokenBlocks,
                              arith::ConstantIndexOp::create(b, l, k)));
    Value row = arith::AddIOp::create(
        b, l, arith::AddIOp::create(b, l, column, c), next.rowShift);
    slots.push_back(
        {arith::CmpIOp::create(b, l, arith::CmpIPredicate::ult, c, steps[1]),
         arith::MinUIOp::create(b, l, row, next.lastRow)});
  }
  return slots;
}

/// A step at element `e` of the chunk from `e0` prefetches element e +
/// shift of `slots`' rows' next chunk or, in the rows' last chunk, elements
/// [r x p, (r + lanes) x p) of the next block's first chunk (r = e - e0,
/// p = lastPrefetches), at the block's first token `token`.
void emitChunkPrefetches(OpBuilder &b, Location l, linalg::GenericOp op,
                         const NextChunk &next,
                         ArrayRef<std::pair<Value, Value>> slots, Value token,
                         Value e, Value e0, int64_t lanes) {
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  Value ahead = arith::AddIOp::create(b, l, e, next.elementShift);
  if (next.lastPrefetches > 1) {
    Value rel = arith::SubIOp::create(b, l, e, e0);
    ahead = arith::SelectOp::create(
        b, l, next.last,
        arith::MulIOp::create(b, l, rel, index(next.lastPrefetches)), ahead);
  }
  AffineMap map = op.getMatchingIndexingMap(next.weight);
  for (int64_t k = 0; k < next.lastPrefetches; ++k) {
    Value element = arith::MinUIOp::create(
        b, l, k ? arith::AddIOp::create(b, l, ahead, index(k * lanes)) : ahead,
        next.lastElement);
    for (auto [whether, row] : slots) {
      Value cond =
          k ? arith::AndIOp::create(b, l, whether, next.last) : whether;
      auto prefetch = scf::IfOp::create(b, l, cond);
      OpBuilder tb = prefetch.getThenBodyBuilder();
      memref::PrefetchOp::create(tb, l, next.weight->get(),
                                 applyMap(tb, l, map, {token, row, element}),
                                 /*isWrite=*/false, kChunkPrefetchLocality,
                                 /*isDataCache=*/true);
    }
  }
}

/// One `lanes`-wide step at element `e` of the dot-product form: each
/// output's (at `ivs`, jam offsets `offsets`) lane partial sums `accs`
/// plus the payload of its rows (each input's row loaded once per step).
SmallVector<Value> emitDotStep(OpBuilder &b, Location l, linalg::GenericOp op,
                               ArrayRef<SmallVector<Value>> ivs,
                               ArrayRef<std::pair<int64_t, int64_t>> offsets,
                               ValueRange accs, Value e, int64_t lanes) {
  DenseMap<std::tuple<OpOperand *, int64_t, int64_t>, Value> rows;
  SmallVector<Value> sums;
  for (auto [pos, acc] : llvm::zip(ivs, accs)) {
    auto [r, c] = offsets[sums.size()];
    SmallVector<Value> step = {pos[0], pos[1], e};
    sums.push_back(emitRowPayload(
        b, l, op, lanes, acc,
        [&](OpOperand *input) -> Value {
          AffineMap map = op.getMatchingIndexingMap(input);
          auto key = std::make_tuple(input, map.isFunctionOfDim(0) ? r : -1,
                                     map.isFunctionOfDim(1) ? c : -1);
          Value &row = rows[key];
          if (!row) {
            Type element = op.getRegion()
                               .front()
                               .getArgument(input->getOperandNumber())
                               .getType();
            row =
                vector::LoadOp::create(b, l, VectorType::get({lanes}, element),
                                       input->get(), applyMap(b, l, map, step));
          }
          return row;
        },
        [](unsigned) -> Value { return {}; },
        /*contractSum=*/true));
  }
  return sums;
}

/// The dot-product form's outputs [lbs, ubs), `jam` (rows x columns) a
/// loop, over the reduction range of `chunk` as explicit `lanes`-wide
/// vector loops (vectorDotWeight): each output's lane partial sums, reduced
/// (a fixed shuffle tree) and added to the output's value, then the last
/// (range mod lanes) elements in order. With `next`, each step of a block
/// of kJamRows tokens prefetches a line of the next chunk's weight rows
/// (NextChunk), so that reading the next chunk overlaps this one's FMAs.
void emitVectorDotLoops(OpBuilder &rb, Location loc, linalg::GenericOp op,
                        const LoopBounds &chunk, ArrayRef<Value> lbs,
                        ArrayRef<Value> ubs, ArrayRef<int64_t> jam,
                        int64_t lanes, const NextChunk *next) {
  auto index = [&](OpBuilder &b, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  SmallVector<Value> steps = {index(rb, jam[0]), index(rb, jam[1])};
  Value output = op.getDpsInitOperand(0)->get();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  auto rowType = VectorType::get({lanes}, rb.getF32Type());
  scf::ParallelOp::create(
      rb, loc, lbs, ubs, steps, [&](OpBuilder &b, Location l, ValueRange at) {
        // Each output's ivs (row-major over the jam) and its value.
        SmallVector<SmallVector<Value>> ivs;
        SmallVector<std::pair<int64_t, int64_t>> offsets;
        SmallVector<Value> inits;
        for (int64_t r = 0; r < jam[0]; ++r)
          for (int64_t c = 0; c < jam[1]; ++c) {
            ivs.push_back(
                {r ? arith::AddIOp::create(b, l, at[0], index(b, r)) : at[0],
                 c ? arith::AddIOp::create(b, l, at[1], index(b, c)) : at[1]});
            offsets.push_back({r, c});
            inits.push_back(memref::LoadOp::create(
                b, l, output, applyMap(b, l, outMap, ivs.back())));
          }
        Value e0 = chunk.lbs[2], e1 = chunk.ubs[2];
        Value vecEnd = arith::SubIOp::create(
            b, l, e1,
            arith::RemUIOp::create(b, l, arith::SubIOp::create(b, l, e1, e0),
                                   index(b, lanes)));
        SmallVector<std::pair<Value, Value>> slots;
        if (next)
          slots = chunkPrefetchRows(b, l, *next, at[0], at[1], lbs[0], steps,
                                    jam[1]);
        Value zero = arith::ConstantOp::create(
            b, l, DenseElementsAttr::get(rowType, b.getF32FloatAttr(0)));
        SmallVector<Value> zeros(inits.size(), zero);
        auto loop = scf::ForOp::create(
            b, l, e0, vecEnd, index(b, lanes), zeros,
            [&](OpBuilder &fb, Location fl, Value e, ValueRange accs) {
              SmallVector<Value> sums =
                  emitDotStep(fb, fl, op, ivs, offsets, accs, e, lanes);
              if (next)
                emitChunkPrefetches(fb, fl, op, *next, slots, ivs[0][0], e, e0,
                                    lanes);
              scf::YieldOp::create(fb, fl, sums);
            });
        // Lane partial sums to one (reassociable: a shuffle tree), onto
        // the output's value; then the rest in order.
        SmallVector<Value> sums;
        for (auto [acc, init] : llvm::zip(loop.getResults(), inits)) {
          Value lanesSum = vector::ReductionOp::create(
              b, l, vector::CombiningKind::ADD, acc, Value(),
              arith::FastMathFlags::reassoc);
          sums.push_back(arith::AddFOp::create(b, l, init, lanesSum));
        }
        auto tail = scf::ForOp::create(
            b, l, vecEnd, e1, index(b, 1), sums,
            [&](OpBuilder &fb, Location fl, Value e, ValueRange accs) {
              SmallVector<Value> next;
              for (auto [pos, acc] : llvm::zip(ivs, accs))
                next.push_back(emitPayload(fb, fl, op, {pos[0], pos[1], e}, acc,
                                           /*reassociate=*/false));
              scf::YieldOp::create(fb, fl, next);
            });
        for (auto [sum, pos] : llvm::zip(tail.getResults(), ivs))
          memref::StoreOp::create(b, l, sum, output,
                                  applyMap(b, l, outMap, pos));
        scf::ReduceOp::create(b, l);
      });
}

/// The next chunk of the chunk [e0, nextE0) (`chunkElements` long) of a
/// `columns` x `depth` weight, for its block of kColumnBlock columns; its
/// tokenBlocks is left to the caller.
NextChunk nextChunk(OpBuilder &b, Location l, OpOperand *weight, Value e0,
                    Value nextE0, int64_t chunkElements, int64_t columns,
                    int64_t depth) {
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  NextChunk next;
  next.weight = weight;
  Value rowsLast = arith::CmpIOp::create(b, l, arith::CmpIPredicate::uge,
                                         nextE0, index(depth));
  next.rowShift =
      arith::SelectOp::create(b, l, rowsLast, index(kColumnBlock), index(0));
  next.elementShift = arith::SelectOp::create(
      b, l, rowsLast, arith::SubIOp::create(b, l, index(0), e0),
      index(chunkElements));
  next.lastRow = index(columns - 1);
  next.lastElement = index(depth - 1);
  next.last = rowsLast;
  if (int64_t rest = depth % chunkElements)
    next.lastPrefetches = std::min<int64_t>(
        llvm::divideCeil(chunkElements, rest), kMaxLastPrefetches);
  return next;
}

/// The dot-product form of a projection: an scf.parallel over blocks of
/// kColumnBlock columns, in each of which the tokens are jammed 4 rows x
/// `jamColumns` (2, or 4 with 32 vector registers), the last T mod 4 rows
/// as a pair and a row against as many columns (a static count under 4, a
/// decode step: each row against `jamColumns` columns, unchunked). A weight too
/// large for the cache has its reduction in chunks inside the block (the
/// partial sums kept in the output), so that the block's chunk of weight rows
/// stays in L2 across all tokens: chunks of kPrefetchedChunk as explicit vector
/// loops that prefetch the next chunk (emitVectorDotLoops), or of
/// kReductionChunk for a payload those loops do not take.
void emitDotProductProjection(IRRewriter &rewriter, linalg::GenericOp op,
                              const LoopBounds &all, int64_t jamColumns,
                              int64_t vectorRegisters) {
  Location loc = op.getLoc();
  SmallVector<Value> lbs(ArrayRef(all.lbs).take_front(2)),
      ubs(ArrayRef(all.ubs).take_front(2));
  std::optional<int64_t> columns = getConstantIntValue(all.ubs[1]);
  // A weight that stays in cache anyway (the example layer's 3.2 MiB) is
  // read whole (unchunked it was 1.25x faster than in chunks of 256).
  std::optional<int64_t> depth = getConstantIntValue(all.ubs[2]);
  // A decode step's few tokens (static, fewer than a row jam) reuse no
  // weight row from cache: each output then sums its whole row, jamColumns
  // rows at a time, as that many streams. Chunked, the block's 32 rows
  // were 32 interleaved streams of pieces (chunks of 256, 1 KiB pieces:
  // Qwen2.5-7B's decode at 1k keys 1.4x slower on an AMD EPYC); one row at
  // a time, one stream, was 1.05-1.2x slower than four on an Intel Xeon
  // (the 7B's decode at 1k keys, one and two threads; the same bits).
  std::optional<int64_t> tokenCount = getConstantIntValue(all.ubs[0]);
  bool fewTokens = tokenCount && *tokenCount < kJamRows;
  // Jams of kJamRows rows, then the last T mod 4 as a pair and a row, each
  // against the jam's columns (also a dynamic count's 1 to 3 rows): one
  // output at a time they loaded two vectors per FMA and took 2.7x a
  // jammed row's time (the example layer at 15 tokens: 0.76 ms, at 12:
  // 0.46). A decode step's few rows go one at a time.
  SmallVector<int64_t> rowJams = {kJamRows, 1};
  if (!fewTokens)
    rowJams.insert(rowJams.begin() + 1, 2);
  SmallVector<Value> rowEnds =
      rowBlockEnds(rewriter, loc, lbs[0], ubs[0], rowJams);
  bool streamed = !fewTokens && depth && streamedWeight(*columns, *depth) &&
                  getConstantIntValue(all.lbs[2]) == 0;
  // A streamed weight's sums run as explicit vector loops that prefetch the
  // next chunk (NextChunk) where the payload allows, else as the scalar
  // loops LLVM vectorizes.
  OpOperand *vectorDot = streamed ? vectorDotWeight(op) : nullptr;
  int64_t chunkElements = vectorDot ? kPrefetchedChunk : kReductionChunk;
  bool chunked = streamed && *depth > chunkElements;
  if (!chunked)
    vectorDot = nullptr;
  int64_t lanes = f32Lanes(vectorRegisters);
  // One thread per block of kColumnBlock columns; in it, every block of
  // tokens against every column pair of the block: the block's weight rows
  // (of one reduction chunk) are reused from cache by all tokens, and each
  // token block's rows by all the block's columns.
  Value blockStep = arith::ConstantIndexOp::create(rewriter, loc, kColumnBlock);
  scf::ParallelOp::create(
      rewriter, loc, ValueRange{lbs[1]}, ValueRange{ubs[1]},
      ValueRange{blockStep}, [&](OpBuilder &b, Location l, ValueRange n0) {
        Value n1 = arith::MinSIOp::create(
            b, l, arith::AddIOp::create(b, l, n0[0], blockStep), ubs[1]);
        auto emitBlock = [&](OpBuilder &cb, const LoopBounds &chunk,
                             const NextChunk *next) {
          Value from = lbs[0];
          for (auto [rows, to] : llvm::zip(rowJams, rowEnds)) {
            SmallVector<int64_t> jam = {rows, jamColumns};
            if (vectorDot)
              emitVectorDotLoops(cb, l, op, chunk, {from, n0[0]}, {to, n1}, jam,
                                 lanes, rows == kJamRows ? next : nullptr);
            else
              emitRegisterLoops(cb, l, op, chunk, {from, n0[0]}, {to, n1}, jam);
            from = to;
          }
        };
        if (!chunked) {
          emitBlock(b, all, nullptr);
        } else {
          Value step = arith::ConstantIndexOp::create(b, l, chunkElements);
          scf::ForOp::create(
              b, l, all.lbs[2], all.ubs[2], step, ValueRange{},
              [&](OpBuilder &fb, Location fl, Value e0, ValueRange) {
                LoopBounds chunk = all;
                Value nextE0 = arith::AddIOp::create(fb, fl, e0, step);
                chunk.lbs[2] = e0;
                chunk.ubs[2] =
                    arith::MinSIOp::create(fb, fl, nextE0, all.ubs[2]);
                // Only the explicit vector loops prefetch.
                std::optional<NextChunk> next;
                if (vectorDot) {
                  next = nextChunk(fb, fl, vectorDot, e0, nextE0, chunkElements,
                                   *columns, *depth);
                  next->tokenBlocks = arith::DivUIOp::create(
                      fb, fl, arith::SubIOp::create(fb, fl, rowEnds[0], lbs[0]),
                      arith::ConstantIndexOp::create(fb, fl, kJamRows));
                }
                emitBlock(fb, chunk, next ? &*next : nullptr);
                scf::YieldOp::create(fb, fl);
              });
        }
        scf::ReduceOp::create(b, l);
      });
}

/// Register form: scf.parallel over the parallel dims, the sum carried
/// through one scf.for per reduction dim. A projection (two parallel dims,
/// one reduction, a static column count that the jam divides) takes the
/// dot-product form (emitDotProductProjection).
/// A tile of scores with many rows runs packed (emitPackedScores, with
/// `scores` fused and emitted at its row max's place: returns true), one
/// with few rows in key blocks (emitKeyBlockScores).
bool emitRegisterForm(IRRewriter &rewriter, linalg::GenericOp op,
                      const LoopBounds &all, const HostIsa &cpu,
                      const ScoresEpilogue *scores = nullptr) {
  int64_t vectorRegisters = cpu.vectorRegisters;
  if (std::optional<vector::CombiningKind> kind = laneReductionKind(op, all)) {
    Type element = op.getRegion().front().getArgument(0).getType();
    int64_t lanes = f32Lanes(vectorRegisters) * 32 /
                    int64_t(element.getIntOrFloatBitWidth());
    emitLaneReduction(rewriter, op, all, *kind, std::max<int64_t>(lanes, 1));
    return false;
  }
  Location loc = op.getLoc();
  unsigned parallel = op.getNumParallelLoops();
  SmallVector<Value> lbs(ArrayRef(all.lbs).take_front(parallel)),
      ubs(ArrayRef(all.ubs).take_front(parallel));
  SmallVector<int64_t> single(parallel, 1);
  std::optional<int64_t> projectionJam =
      projectionJamColumns(op, all, vectorRegisters);
  bool projection = projectionJam.has_value();
  if (OpOperand *keys = projection ? nullptr
                                    : packedScoresKeys(
                                          op, all, f32Lanes(vectorRegisters))) {
    if (scores)
      rewriter.setInsertionPoint(scores->rowMax);
    int64_t width = packedScoresWidth(vectorRegisters);
    if (OpOperand *query =
            cpu.bf16Dot ? pairScoresQuery(op, all, keys, width) : nullptr)
      emitPairScores(rewriter, op, all, query, keys, width,
                     f32Lanes(vectorRegisters), scores, cpu.amxTiles);
    else
      emitPackedScores(rewriter, op, all, keys, width,
                       f32Lanes(vectorRegisters), scores);
    return scores != nullptr;
  }
  if (!projection && isKeyBlockScores(op, all, f32Lanes(vectorRegisters))) {
    emitKeyBlockScores(rewriter, op, all, f32Lanes(vectorRegisters));
    return false;
  }
  if (!projection) {
    // Scores q·k over a tile of keys: the last parallel dim (the key) is
    // jammed kJamKeys wide when some input does not depend on it (the
    // query row, loaded once for kJamKeys keys), giving LLVM independent
    // sums to overlap instead of one FMA chain per score; its remainder
    // goes one output at a time.
    unsigned last = parallel - 1;
    bool reused = parallel >= 2 && llvm::any_of(
        op.getDpsInputOperands(), [&](OpOperand *input) {
          return isa<MemRefType>(input->get().getType()) &&
                 !op.getMatchingIndexingMap(input).isFunctionOfDim(last);
        });
    if (!reused) {
      emitRegisterLoops(rewriter, loc, op, all, lbs, ubs, single);
      return false;
    }
    Value extent = arith::SubIOp::create(rewriter, loc, ubs[last], lbs[last]);
    Value split = arith::SubIOp::create(
        rewriter, loc, ubs[last],
        arith::RemUIOp::create(
            rewriter, loc, extent,
            arith::ConstantIndexOp::create(rewriter, loc, kJamKeys)));
    SmallVector<int64_t> jam(single);
    jam[last] = kJamKeys;
    SmallVector<Value> mainUbs(ubs), restLbs(lbs);
    mainUbs[last] = split;
    restLbs[last] = split;
    emitRegisterLoops(rewriter, loc, op, all, lbs, mainUbs, jam);
    emitRegisterLoops(rewriter, loc, op, all, restLbs, ubs, single);
    return false;
  }
  emitDotProductProjection(rewriter, op, all, *projectionJam, vectorRegisters);
  return false;
}

/// The parallel dims other than `inner` (the output's contiguous dim), and
/// their bounds: the scf.parallel of the ContiguousOutput and
/// RowInRegisters forms.
struct OuterLoops {
  SmallVector<unsigned> dims;
  SmallVector<Value> lbs, ubs, steps;
};

OuterLoops outerParallelLoops(linalg::GenericOp op, const LoopBounds &all,
                              unsigned inner) {
  OuterLoops outer;
  for (unsigned i = 0, e = op.getNumParallelLoops(); i < e; ++i) {
    if (i == inner)
      continue;
    outer.dims.push_back(i);
    outer.lbs.push_back(all.lbs[i]);
    outer.ubs.push_back(all.ubs[i]);
    outer.steps.push_back(all.steps[i]);
  }
  return outer;
}

/// ContiguousOutput form: scf.parallel over the other parallel dims, then
/// the reduction dims in order, then the output's contiguous dim innermost,
/// loading and storing each output element (LLVM vectorizes that loop
/// behind a run-time overlap check).
void lowerToContiguousOutputLoops(IRRewriter &rewriter, linalg::GenericOp op,
                                  const LoopBounds &all) {
  Location loc = op.getLoc();
  unsigned loops = op.getNumLoops();
  Value output = op.getDpsInitOperand(0)->get();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  unsigned inner = *contiguousDim(outMap);
  unsigned parallel = op.getNumParallelLoops();
  auto [outer, lbs, ubs, steps] = outerParallelLoops(op, all, inner);
  // Loop order: the outer parallel dims, the reduction dims, `inner`.
  SmallVector<unsigned> serialDims;
  for (unsigned i = parallel; i < loops; ++i)
    serialDims.push_back(i);
  serialDims.push_back(inner);
  scf::ParallelOp::create(
      rewriter, loc, lbs, ubs, steps,
      [&](OpBuilder &b, Location l, ValueRange outerIvs) {
        SmallVector<Value> ivs(loops);
        for (auto [dim, iv] : llvm::zip(outer, outerIvs))
          ivs[dim] = iv;
        OpBuilder::InsertionGuard guard(b);
        for (unsigned dim : serialDims) {
          auto loop = scf::ForOp::create(b, l, all.lbs[dim], all.ubs[dim],
                                         all.steps[dim]);
          ivs[dim] = loop.getInductionVar();
          b.setInsertionPoint(loop.getBody()->getTerminator());
        }
        SmallVector<Value> outIndices = applyMap(b, l, outMap, ivs);
        Value acc = memref::LoadOp::create(b, l, output, outIndices);
        Value sum = emitPayload(b, l, op, ivs, acc, /*reassociate=*/false);
        memref::StoreOp::create(b, l, sum, output, outIndices);
      });
  rewriter.eraseOp(op);
}

/// The widest output row the RowInRegisters form carries (128 f32: 16 AVX2
/// registers, Qwen's head dim).
constexpr int64_t kMaxRowInRegisters = 128;
/// The most rows the RowInRegisters form jams.
constexpr int64_t kMaxJamRows = 4;
/// Reduction steps per block of the RowInRegisters form inside a threaded
/// loop (16 keys of P·V: 4 KiB of V rows with D = 64).
constexpr int64_t kRowReductionBlock = 16;

/// The static size of the output's contiguous dim, when a ContiguousOutput
/// reduction can carry that whole row in registers: it starts at 0 and has
/// at most kMaxRowInRegisters elements; every input is read along it
/// contiguously or not at all; the payload is elementwise arithmetic.
std::optional<int64_t> rowInRegisters(linalg::GenericOp op,
                                      const LoopBounds &all) {
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  unsigned inner = *contiguousDim(outMap);
  std::optional<int64_t> size = getConstantIntValue(all.ubs[inner]);
  if (!size || *size < 1 || *size > kMaxRowInRegisters ||
      getConstantIntValue(all.lbs[inner]) != 0 ||
      getConstantIntValue(all.steps[inner]) != 1 ||
      !unitInnerStride(op.getDpsInitOperand(0)->get()))
    return std::nullopt;
  for (OpOperand *input : op.getDpsInputOperands()) {
    if (!isa<MemRefType>(input->get().getType()))
      continue;
    AffineMap map = op.getMatchingIndexingMap(input);
    if (!map.isFunctionOfDim(inner))
      continue;
    if (contiguousDim(map) != inner || !unitInnerStride(input->get()) ||
        llvm::any_of(map.getResults().drop_back(), [&](AffineExpr e) {
          return e.isFunctionOfDim(inner);
        }))
      return std::nullopt;
  }
  if (!elementwisePayload(op))
    return std::nullopt;
  return size;
}

/// The input of a RowInRegisters reduction (a decode step's P·V) that
/// lowerToRowInRegisterLoops widens once per block of reduction steps for
/// all its rows: read along the output's row (`inner`), with the
/// reduction `red` as its first index and nowhere else, its other axes
/// static, a float narrower than f32 that the payload only widens to f32
/// (a bf16 cache's V: per row and key it was loaded, widened and shifted
/// by each of the GQA group's heads, or by every head where a jam of rows
/// crosses KV heads).
OpOperand *widenedBlockInput(linalg::GenericOp op, unsigned red,
                             unsigned inner) {
  OpOperand *widened = nullptr;
  for (OpOperand *input : op.getDpsInputOperands()) {
    auto type = dyn_cast<MemRefType>(input->get().getType());
    AffineMap map = op.getMatchingIndexingMap(input);
    if (!type || !map.isFunctionOfDim(inner))
      continue;
    if (onlyWidenedToF32(op, input) && map.getNumResults() >= 2 &&
        map.getResult(0) == getAffineDimExpr(red, op.getContext()) &&
        llvm::none_of(map.getResults().drop_front(),
                      [&](AffineExpr e) { return e.isFunctionOfDim(red); }) &&
        llvm::none_of(type.getShape().drop_front(), ShapedType::isDynamic))
      widened = input;
  }
  return widened;
}

/// `widened`'s slice [from, to) along its first axis (at most `block`
/// long), widened to f32 into a panel on the stack [block, ...] whose row
/// k is the input's row from + k.
Value widenBlock(OpBuilder &b, Location l, linalg::GenericOp op,
                 OpOperand *widened, Value from, Value to, int64_t block) {
  auto type = cast<MemRefType>(widened->get().getType());
  SmallVector<int64_t> shape(type.getShape());
  shape.front() = block;
  Value panel = memref::AllocaOp::create(
      b, l, MemRefType::get(shape, b.getF32Type()), b.getI64IntegerAttr(64));
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  // Every row of the slice, a vector of its last axis at a time.
  SmallVector<Value> lbs(shape.size(), index(0)), ubs,
      steps(shape.size(), index(1));
  ubs.push_back(arith::SubIOp::create(b, l, to, from));
  for (int64_t size : ArrayRef(shape).drop_front())
    ubs.push_back(index(size));
  ubs.pop_back();
  lbs.pop_back();
  steps.pop_back();
  Type narrow = type.getElementType();
  scf::buildLoopNest(
      b, l, lbs, ubs, steps, [&](OpBuilder &nb, Location nl, ValueRange ivs) {
        SmallVector<Value> at(ivs);
        at.push_back(arith::ConstantIndexOp::create(nb, nl, 0));
        SmallVector<Value> source(at);
        source.front() = arith::AddIOp::create(nb, nl, from, at.front());
        Value row = vector::LoadOp::create(
            nb, nl, VectorType::get({shape.back()}, narrow), widened->get(),
            source);
        vector::StoreOp::create(
            nb, nl,
            arith::ExtFOp::create(
                nb, nl, VectorType::get({shape.back()}, nb.getF32Type()), row),
            panel, at);
      });
  return panel;
}

/// Emits a RowInRegisters reduction's rows over the reduction range given,
/// `RowLoad` giving inputs' rows in place of loads (null: load them).
using EmitRows =
    function_ref<void(OpBuilder &, Location, const LoopBounds &, RowLoad)>;

/// Few rows (fewRows: a decode step's heads) inside a threaded loop (an
/// SDPA block, whose loops here all run in order): the one reduction dim
/// goes in blocks of kRowReductionBlock outside the rows (`emitRows`), each
/// block's inputs (16 rows of V) read from memory once and reused from L1
/// by every row, so the misses spread over the tile's work; the rows are
/// loaded and stored once per block, from L1. A narrow V
/// (widenedBlockInput) is widened once per block into a panel that the
/// rows read. Each element is still summed in the same order. (Outside a
/// threaded loop the rows are the threads' work; many rows, a prefill
/// block's, would not stay in L1.)
void emitReductionBlocks(IRRewriter &rewriter, linalg::GenericOp op,
                         const LoopBounds &all, int64_t width,
                         EmitRows emitRows) {
  Location loc = op.getLoc();
  unsigned red = op.getNumParallelLoops();
  unsigned inner =
      *contiguousDim(op.getMatchingIndexingMap(op.getDpsInitOperand(0)));
  Value block =
      arith::ConstantIndexOp::create(rewriter, loc, kRowReductionBlock);
  OpOperand *widened = widenedBlockInput(op, red, inner);
  scf::ForOp::create(
      rewriter, loc, all.lbs[red], all.ubs[red], block, ValueRange{},
      [&](OpBuilder &fb, Location fl, Value r0, ValueRange) {
        LoopBounds blockBounds = all;
        blockBounds.lbs[red] = r0;
        blockBounds.ubs[red] = arith::MinSIOp::create(
            fb, fl, arith::AddIOp::create(fb, fl, r0, block), all.ubs[red]);
        if (!widened) {
          emitRows(fb, fl, blockBounds, nullptr);
          scf::YieldOp::create(fb, fl);
          return;
        }
        Value panel = widenBlock(fb, fl, op, widened, r0, blockBounds.ubs[red],
                                 kRowReductionBlock);
        auto fromPanel = [&](OpBuilder &pb, Location pl, OpOperand *input,
                             int64_t, ArrayRef<Value> at) -> Value {
          if (input != widened)
            return Value();
          SmallVector<Value> indices =
              applyMap(pb, pl, op.getMatchingIndexingMap(input), at);
          indices.front() = arith::SubIOp::create(pb, pl, at[red], r0);
          return vector::LoadOp::create(
              pb, pl, VectorType::get({width}, pb.getF32Type()), panel,
              indices);
        };
        emitRows(fb, fl, blockBounds, fromPanel);
        scf::YieldOp::create(fb, fl);
      });
}

/// Rows of the last outer dim of the row-in-register form jammed at a time:
/// their sums are independent FMA chains (one row's chains alone wait on
/// the FMA's latency at every step), and an input that does not depend on
/// that dim is loaded once per step for all of them. Half the registers
/// hold sums (rows of `width` elements of `element`).
int64_t jammedRows(Type element, int64_t width, int64_t vectorRegisters) {
  int64_t vectorsPerRow =
      element.isIntOrFloat()
          ? llvm::divideCeil(width * int64_t(element.getIntOrFloatBitWidth()),
                             32 * f32Lanes(vectorRegisters))
          : vectorRegisters;
  return std::clamp<int64_t>(vectorRegisters / 2 / vectorsPerRow, 1,
                             kMaxJamRows);
}

/// RowInRegisters form: as ContiguousOutput, but the output row of `width`
/// elements is a vector iter_arg of the reduction loops, loaded and stored
/// once; each step loads the inputs' rows (or broadcasts an element read
/// once per step) and applies the payload to whole vectors. Each element is
/// still summed in order (no reassoc): bit-identical to ContiguousOutput.
void lowerToRowInRegisterLoops(IRRewriter &rewriter, linalg::GenericOp op,
                               const LoopBounds &all, int64_t width,
                               int64_t vectorRegisters) {
  Location loc = op.getLoc();
  unsigned loops = op.getNumLoops(), parallel = op.getNumParallelLoops();
  Value output = op.getDpsInitOperand(0)->get();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  unsigned inner = *contiguousDim(outMap);
  Block &body = op.getRegion().front();
  auto rowType = [&](Type element) {
    return VectorType::get({width}, element);
  };
  auto [outer, lbs, ubs, steps] = outerParallelLoops(op, all, inner);
  Type element = body.getArguments().back().getType();
  int64_t jam = outer.empty() ? 1 : jammedRows(element, width, vectorRegisters);
  // The rows [rowLbs, rowUbs) stepping by `rowJam` on the jammed dim, over
  // the reduction range `red`; `rowLoad` gives inputs' rows in place of
  // loads (a block's widened panel).
  auto emitRows = [&](OpBuilder &rb, Location rl, const LoopBounds &red,
                      ArrayRef<Value> rowLbs, ArrayRef<Value> rowUbs,
                      int64_t rowJam, RowLoad rowLoad) {
    SmallVector<Value> rowSteps(steps);
    if (!outer.empty())
      rowSteps.back() = arith::ConstantIndexOp::create(rb, rl, rowJam);
    scf::ParallelOp::create(
        rb, rl, rowLbs, rowUbs, rowSteps,
        [&](OpBuilder &b, Location l, ValueRange outerIvs) {
          SmallVector<SmallVector<Value>> ivs;
          SmallVector<SmallVector<Value>> outIndices;
          SmallVector<Value> rows;
          for (int64_t r = 0; r < rowJam; ++r) {
            SmallVector<Value> at(loops);
            for (auto [dim, iv] : llvm::zip(outer, outerIvs))
              at[dim] = iv;
            if (r > 0)
              at[outer.back()] = arith::AddIOp::create(
                  b, l, outerIvs.back(),
                  arith::ConstantIndexOp::create(b, l, r));
            at[inner] = all.lbs[inner];
            outIndices.push_back(applyMap(b, l, outMap, at));
            rows.push_back(vector::LoadOp::create(b, l, rowType(element),
                                                  output, outIndices.back()));
            ivs.push_back(std::move(at));
          }
          std::function<SmallVector<Value>(OpBuilder &, unsigned, ValueRange)>
              reduce = [&](OpBuilder &nb, unsigned dim,
                           ValueRange accs) -> SmallVector<Value> {
            if (dim < loops) {
              auto loop = scf::ForOp::create(
                  nb, l, red.lbs[dim], red.ubs[dim], red.steps[dim], accs,
                  [&](OpBuilder &fb, Location, Value iv, ValueRange args) {
                    for (SmallVector<Value> &at : ivs)
                      at[dim] = iv;
                    scf::YieldOp::create(fb, l, reduce(fb, dim + 1, args));
                  });
              return SmallVector<Value>(loop.getResults());
            }
            // With no outer dim there is one row: nothing to share.
            unsigned jammed = outer.empty() ? inner : outer.back();
            return emitSharedRowPayloads(nb, l, op, width, ivs, accs, jammed,
                                         inner, rowLoad);
          };
          SmallVector<Value> sums = reduce(b, parallel, rows);
          for (auto [sum, indices] : llvm::zip(sums, outIndices))
            vector::StoreOp::create(b, l, sum, output, indices);
        });
  };
  // Whole groups of `jam` rows, then the rest one row at a time.
  auto emitAllRows = [&](OpBuilder &rb, Location rl, const LoopBounds &red,
                         RowLoad rowLoad) {
    if (jam == 1) {
      emitRows(rb, rl, red, lbs, ubs, 1, rowLoad);
      return;
    }
    Value lb = lbs.back(), ub = ubs.back();
    Value split = arith::SubIOp::create(
        rb, rl, ub,
        arith::RemUIOp::create(rb, rl, arith::SubIOp::create(rb, rl, ub, lb),
                               arith::ConstantIndexOp::create(rb, rl, jam)));
    SmallVector<Value> mainUbs(ubs), restLbs(lbs);
    mainUbs.back() = split;
    restLbs.back() = split;
    emitRows(rb, rl, red, lbs, mainUbs, jam, rowLoad);
    emitRows(rb, rl, red, restLbs, ubs, 1, rowLoad);
  };
  if (loops != parallel + 1 || !op->getParentOfType<scf::ParallelOp>() ||
      !fewRows(op, all, outer, width))
    emitAllRows(rewriter, loc, all, nullptr);
  else
    emitReductionBlocks(rewriter, op, all, width, emitAllRows);
  rewriter.eraseOp(op);
}

/// Rounds once, into a buffer of its own created at the rewriter's
/// insertion point, each input of `op` that its payload only rounds to a
/// narrower float and widens back (an attn op whose compute type is
/// narrower than the operand's) and that it reads more than once (a
/// parallel dim its map leaves out has more than one iteration, or an
/// unknown number); `op` then reads the rounded values as they are. The
/// same values, but a decode step's x is no longer rounded again for every
/// row of W, nor a prefill's W for every block of tokens. Not in a loop.
/// Returns the buffers, which the caller frees after the lowered form.
SmallVector<Value> hoistOperandRounding(IRRewriter &rewriter,
                                        linalg::GenericOp op) {
  SmallVector<Value> buffers;
  // In a loop the copy (and its allocation) would be made at every
  // iteration.
  if (op->getParentOfType<LoopLikeOpInterface>())
    return buffers;
  SmallVector<int64_t> extents = op.getStaticLoopRanges();
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  for (OpOperand *in : op.getDpsInputOperands()) {
    auto type = dyn_cast<MemRefType>(in->get().getType());
    BlockArgument arg = op.getMatchingBlockArgument(in);
    if (!type || !arg.hasOneUse())
      continue;
    auto trunc = dyn_cast<arith::TruncFOp>(*arg.getUsers().begin());
    if (!trunc || trunc.getRoundingmodeAttr() || !trunc->hasOneUse())
      continue;
    auto ext = dyn_cast<arith::ExtFOp>(*trunc->getUsers().begin());
    if (!ext || ext.getType() != arg.getType())
      continue;
    AffineMap map = op.getMatchingIndexingMap(in);
    bool reused = false;
    for (auto [d, iterator] : llvm::enumerate(iterators))
      reused |= iterator == utils::IteratorType::parallel &&
                !map.isFunctionOfDim(d) &&
                (ShapedType::isDynamic(extents[d]) || extents[d] > 1);
    if (!reused)
      continue;
    Location loc = op.getLoc();
    SmallVector<Value> dynamicSizes;
    for (int64_t i = 0; i < type.getRank(); ++i)
      if (type.isDynamicDim(i))
        dynamicSizes.push_back(
            memref::DimOp::create(rewriter, loc, in->get(), i));
    Value rounded = memref::AllocOp::create(
        rewriter, loc, MemRefType::get(type.getShape(), type.getElementType()),
        dynamicSizes);
    AffineMap identity = rewriter.getMultiDimIdentityMap(type.getRank());
    linalg::GenericOp::create(
        rewriter, loc, ValueRange{in->get()}, ValueRange{rounded},
        ArrayRef<AffineMap>{identity, identity},
        SmallVector<utils::IteratorType>(type.getRank(),
                                         utils::IteratorType::parallel),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value narrow =
              arith::TruncFOp::create(b, l, trunc.getType(), args[0]);
          linalg::YieldOp::create(
              b, l,
              ValueRange{arith::ExtFOp::create(b, l, ext.getType(), narrow)});
        });
    in->set(rounded);
    rewriter.replaceAllUsesWith(ext.getResult(), arg);
    rewriter.eraseOp(ext);
    rewriter.eraseOp(trunc);
    buffers.push_back(rounded);
  }
  return buffers;
}

/// A Register-form reduction: a projection with enough tokens takes the
/// packed form (behind a run-time test of T when T is dynamic), everything
/// else emitRegisterForm. A packed projection takes its epilogue (the
/// output's init, a RoPE, row ops) when it has one: the fused form is
/// emitted at the place of the last op it takes, and the dot-product form
/// behind the test of T runs them all unfused there. A tile of scores that
/// runs packed takes its epilogue `scores` when it has one; else the row
/// max of that epilogue is lowered on its own. Generics created that this
/// pass must still lower (row ops' tiles and clones, an unfused row max) go
/// to `created`.
void lowerToRegisterLoops(IRRewriter &rewriter, linalg::GenericOp op,
                          PackedEpilogue epi, const ScoresEpilogue *scores,
                          const HostIsa &cpu,
                          SmallVectorImpl<linalg::GenericOp> &created) {
  LoopBounds all = loopBounds(rewriter, op);
  std::optional<PackedProjection> packed = packedProjection(op, cpu);
  std::optional<int64_t> tokens = getConstantIntValue(all.ubs[0]);
  auto freeBuffers = [&](ArrayRef<Value> buffers) {
    for (Value buffer : buffers)
      memref::DeallocOp::create(rewriter, op.getLoc(), buffer);
  };
  if (!packed || (tokens && *tokens < packedMinRows(*packed))) {
    assert(epi.rowOps.empty() && "row ops are matched for packed forms only");
    SmallVector<Value> rounded =
        scores || takesPairScores(op, all, cpu.vectorRegisters, cpu.bf16Dot)
            ? SmallVector<Value>()
            : hoistOperandRounding(rewriter, op);
    bool fused = emitRegisterForm(rewriter, op, all, cpu, scores);
    freeBuffers(rounded);
    if (scores && fused) {
      rewriter.eraseOp(scores->rowMax);
      for (linalg::GenericOp elementwise : llvm::reverse(scores->elementwise))
        rewriter.eraseOp(elementwise);
      if (scores->init)
        rewriter.eraseOp(scores->init);
    } else if (scores) {
      created.push_back(scores->rowMax);
    }
    rewriter.eraseOp(op);
    return;
  }
  assert(!scores && "scores epilogues are matched for non-projections only");
  // Rounded at the op's place, which dominates every form's (the bf16 pair
  // form rounds its operands as it packs them).
  rewriter.setInsertionPoint(op);
  SmallVector<Value> rounded = packed->bf16Pairs
                                   ? SmallVector<Value>()
                                   : hoistOperandRounding(rewriter, op);
  Operation *group = epi.rope ? epi.rope.getOperation() : op.getOperation();
  rewriter.setInsertionPoint(epi.rowOps.empty() ? group : epi.rowOps.back());
  OpBuilder::InsertPoint afterForms = rewriter.saveInsertionPoint();
  if (tokens) {
    emitPackedProjection(rewriter, op, all, *packed, epi, created);
  } else {
    // Behind a test of T, the unfused form: the init, the projection and
    // the RoPE at the RoPE's place (the projection's output, which the fused
    // form never writes, may be reused once the RoPE has read it), the row
    // ops at the last one's.
    Location loc = op.getLoc();
    Value minRows =
        arith::ConstantIndexOp::create(rewriter, loc, packedMinRows(*packed));
    Value enough = arith::CmpIOp::create(
        rewriter, loc, arith::CmpIPredicate::uge, all.ubs[0], minRows);
    auto choice = scf::IfOp::create(rewriter, loc, enough,
                                    /*withElseRegion=*/true);
    rewriter.setInsertionPoint(choice.thenBlock()->getTerminator());
    emitPackedProjection(rewriter, op, all, *packed, epi, created);
    rewriter.setInsertionPoint(choice.elseBlock()->getTerminator());
    for (Operation *row : epi.rowOps)
      if (auto generic = dyn_cast<linalg::GenericOp>(rewriter.clone(*row)))
        created.push_back(generic);
    if (!epi.rowOps.empty()) {
      rewriter.setInsertionPoint(group);
      Value few = arith::CmpIOp::create(
          rewriter, loc, arith::CmpIPredicate::ult, all.ubs[0],
          arith::ConstantIndexOp::create(rewriter, loc,
                                         packedMinRows(*packed)));
      auto unfused = scf::IfOp::create(rewriter, loc, few,
                                       /*withElseRegion=*/false);
      rewriter.setInsertionPoint(unfused.thenBlock()->getTerminator());
    }
    if (epi.init)
      rewriter.clone(*epi.init);
    // The pair form above hoisted nothing; the dot-product form rounds as
    // the f32 one's does (the same payload, so the same bits as a CPU
    // without AVX512-BF16: LLVM's vectorization of it follows the payload).
    SmallVector<Value> fewRounded = packed->bf16Pairs
                                        ? hoistOperandRounding(rewriter, op)
                                        : SmallVector<Value>();
    emitRegisterForm(rewriter, op, all, cpu);
    freeBuffers(fewRounded);
    if (epi.rope)
      rewriter.clone(*epi.rope);
  }
  rewriter.restoreInsertionPoint(afterForms);
  freeBuffers(rounded);
  for (Operation *row : llvm::reverse(epi.rowOps))
    rewriter.eraseOp(row);
  rewriter.eraseOp(op);
  if (epi.rope)
    rewriter.eraseOp(epi.rope);
  if (epi.init)
    rewriter.eraseOp(epi.init);
}

/// Lowers a reduction generic of a form other than Default.
void lowerReduction(IRRewriter &rewriter, linalg::GenericOp op,
                    ReductionForm form, const PackedEpilogue &epi,
                    const ScoresEpilogue *scores, const HostIsa &cpu,
                    SmallVectorImpl<linalg::GenericOp> &created) {
  if (form == ReductionForm::Register) {
    lowerToRegisterLoops(rewriter, op, epi, scores, cpu, created);
    return;
  }
  assert(!scores && "scores epilogues are matched for the register form");
  LoopBounds all = loopBounds(rewriter, op);
  std::optional<int64_t> width = rowInRegisters(op, all);
  if (!width) {
    lowerToContiguousOutputLoops(rewriter, op, all);
    return;
  }
  if (std::optional<int64_t> columns =
          rowPanelColumns(op, all, *width, cpu.vectorRegisters)) {
    if (OpOperand *probs =
            cpu.bf16Dot ? pairValuesProbabilities(op, all, *width, *columns)
                        : nullptr)
      emitPairValues(rewriter, op, all, probs, *width, *columns, cpu.amxTiles);
    else
      lowerToRowPanelLoops(rewriter, op, all, *width, *columns);
  } else
    lowerToRowInRegisterLoops(rewriter, op, all, *width, cpu.vectorRegisters);
}

struct LowerReductionsToRegisterLoopsPass
    : rotor::impl::LowerReductionsToRegisterLoopsBase<
          LowerReductionsToRegisterLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<std::pair<linalg::GenericOp, ReductionForm>> reductions;
    getOperation()->walk([&](linalg::GenericOp op) {
      if (!isRegisterReduction(op))
        return;
      if (ReductionForm form = chooseForm(op); form != ReductionForm::Default)
        reductions.push_back({op, form});
    });
    // Every epilogue is matched before any is fused: a fused projection
    // emitted at its RoPE's or last row op's place may land between
    // another projection and its epilogue, where the matcher would no
    // longer see plain linalg ops.
    IRRewriter rewriter(&getContext());
    HostIsa cpu;
    cpu.vectorRegisters = vectorRegisters;
    cpu.bf16Dot = bf16DotProduct;
    cpu.amxTiles = bf16DotProduct && amxTiles;
    cpu.panelPrefetch = panelPrefetch;
    DenseMap<Operation *, PackedEpilogue> epilogues;
    DenseSet<Operation *> claimed, rowOps;
    if (packedEpilogues)
      for (auto [op, form] : reductions) {
        if (form != ReductionForm::Register)
          continue;
        std::optional<PackedProjection> packed = packedProjection(op, cpu);
        if (!packed)
          continue;
        PackedEpilogue epi = packedEpilogue(op, *packed);
        int64_t tokens = op.getStaticLoopRanges()[0];
        if ((ShapedType::isDynamic(tokens) || tokens >= packedMinRows(*packed)))
          matchRowEpilogue(op, *packed, epi);
        // An op that two epilogues would take (as a row op, or as the
        // projection, its init or its RoPE) stays with the first.
        Operation *own[] = {op, epi.init, epi.rope};
        if (llvm::any_of(own,
                         [&](Operation *it) { return claimed.contains(it); }))
          epi = PackedEpilogue();
        if (llvm::any_of(epi.rowOps,
                         [&](Operation *row) { return claimed.contains(row); }))
          epi.rowOps.clear(), epi.rowDims.clear();
        for (Operation *it :
             {op.getOperation(), epi.init, epi.rope.getOperation()})
          if (it)
            claimed.insert(it);
        claimed.insert(epi.rowOps.begin(), epi.rowOps.end());
        rowOps.insert(epi.rowOps.begin(), epi.rowOps.end());
        epilogues[op] = std::move(epi);
      }
    // A tile of scores' softmax steps (ScoresEpilogue.cpp); its row max is
    // then lowered with it, not on its own.
    DenseMap<Operation *, ScoresEpilogue> scoresEpilogues;
    DenseSet<Operation *> rowMaxes;
    if (packedEpilogues)
      for (auto [op, form] : reductions) {
        if (form != ReductionForm::Register || claimed.contains(op) ||
            packedProjection(op, cpu))
          continue;
        std::optional<ScoresEpilogue> scores = matchScoresEpilogue(op);
        if (!scores || claimed.contains(scores->rowMax) ||
            llvm::any_of(scores->elementwise, [&](linalg::GenericOp it) {
              return claimed.contains(it);
            }))
          continue;
        claimed.insert(op);
        claimed.insert(scores->rowMax);
        for (linalg::GenericOp it : scores->elementwise)
          claimed.insert(it);
        rowMaxes.insert(scores->rowMax);
        scoresEpilogues[op] = std::move(*scores);
      }
    SmallVector<linalg::GenericOp> created;
    for (auto [op, form] : reductions) {
      if (rowOps.contains(op) || rowMaxes.contains(op))
        continue;
      auto scores = scoresEpilogues.find(op);
      lowerReduction(rewriter, op, form, epilogues.lookup(op),
                     scores == scoresEpilogues.end() ? nullptr
                                                     : &scores->second,
                     cpu, created);
    }
    // The row ops' tiles and clones (a cache's scale is a reduction).
    while (!created.empty()) {
      linalg::GenericOp op = created.pop_back_val();
      if (!isRegisterReduction(op))
        continue;
      if (ReductionForm form = chooseForm(op); form != ReductionForm::Default)
        lowerReduction(rewriter, op, form, PackedEpilogue(), nullptr, cpu,
                       created);
    }
  }
};

} // namespace
