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
// A projection with enough tokens instead runs packed (outer products on a
// panel of the weight, each output summed in order): a token's bits then
// depend on whether its call had 16 tokens or more. A tile of scores runs
// in blocks of keys whose lane partial sums a shuffle tree reduces
// together; a row max or min keeps lane partial results (exact).
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/TilingInterface.h"

namespace rotor {
#define GEN_PASS_DEF_LOWERREDUCTIONSTOREGISTERLOOPS
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

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
constexpr int64_t kJamRows = 4, kJamColumns = 2, kWideJamColumns = 4;
/// Keys per register block of a score tile (one query row, four keys).
constexpr int64_t kJamKeys = 4;
/// Reduction elements per chunk of a projection: 256 f32 of each of a
/// thread's weight rows and of every token row (1 KiB each).
constexpr int64_t kReductionChunk = 256;
/// Weights up to this size (as f32) are not chunked: they stay in cache.
constexpr int64_t kCachedWeightBytes = int64_t(8) << 20;
/// Columns per thread's block of a projection (even: whole column pairs);
/// 32 weight rows of a 256-element chunk are 32 KiB, an L1.
constexpr int64_t kColumnBlock = 32;

/// The most bytes of rows that fewRows takes (a third of a 48 KiB L1).
constexpr int64_t kFewRowsBytes = 16 << 10;
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

/// Each loop dim's lower bound, upper bound and step, created before `op`.
struct LoopBounds {
  SmallVector<Value> lbs, ubs, steps;
};

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

/// Whether `value`'s memref is contiguous along its last axis.
bool unitInnerStride(Value value) {
  auto type = cast<MemRefType>(value.getType());
  SmallVector<int64_t> strides;
  int64_t offset;
  return succeeded(type.getStridesAndOffset(strides, offset)) &&
         !strides.empty() && strides.back() == 1;
}

/// Whether `op`'s payload is pure elementwise arithmetic, one result per op
/// (so that it applies to whole vectors).
bool elementwisePayload(linalg::GenericOp op) {
  return llvm::all_of(
      op.getRegion().front().without_terminator(), [](Operation &inner) {
        return inner.getNumResults() == 1 && inner.getNumRegions() == 0 &&
               inner.hasTrait<OpTrait::Elementwise>() && isPure(&inner);
      });
}

/// The payload of `op` on rows of `width` elements: block arguments and
/// results as vectors, values from outside (and elements read once)
/// broadcast. `inputValue` gives each memref input's value at the current
/// step, a row or an element; `acc` is the running row. The product and
/// the add of the sum contract to an FMA (no reassoc: each element is
/// summed in order).
Value emitRowPayload(OpBuilder &nb, Location l, linalg::GenericOp op,
                     int64_t width, Value acc,
                     function_ref<Value(OpOperand *)> inputValue) {
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
    SmallVector<Value> operands =
        llvm::map_to_vector(scalar.getOperands(), asRow);
    OperationState state(l, scalar.getName().getStringRef(), operands,
                         TypeRange{rowType(scalar.getResult(0).getType())},
                         scalar.getAttrs());
    rows.map(scalar.getResult(0), nb.create(state)->getResult(0));
  }
  Value sum = asRow(body.getTerminator()->getOperand(0));
  auto add = sum.getDefiningOp<arith::AddFOp>();
  if (add && (add.getLhs() == acc || add.getRhs() == acc)) {
    add.setFastmath(arith::FastMathFlags::contract);
    Value other = add.getLhs() == acc ? add.getRhs() : add.getLhs();
    if (auto mul = other.getDefiningOp<arith::MulFOp>())
      mul.setFastmath(arith::FastMathFlags::contract);
  }
  return sum;
}

/// The `type` vector of `memref` starting at `indices` when `vector`, else
/// the element there.
Value loadVectorOrElement(OpBuilder &b, Location l, Value memref,
                          ValueRange indices, VectorType type, bool vector) {
  if (vector)
    return vector::LoadOp::create(b, l, type, memref, indices);
  return memref::LoadOp::create(b, l, memref, indices);
}

/// The payload of `op` on rows of `width` elements (emitRowPayload) at each
/// of `positions` (the loop ivs of one sum each), with running rows `accs`:
/// an input read along dim `along` is loaded as a row, any other as an
/// element; an input that does not depend on dim `jammed` (where the
/// positions differ) is loaded once for all of them.
SmallVector<Value> emitSharedRowPayloads(OpBuilder &b, Location l,
                                         linalg::GenericOp op, int64_t width,
                                         ArrayRef<SmallVector<Value>> positions,
                                         ValueRange accs, unsigned jammed,
                                         unsigned along) {
  Block &body = op.getRegion().front();
  DenseMap<OpOperand *, Value> shared;
  SmallVector<Value> sums;
  for (auto [at, acc] : llvm::zip(positions, accs))
    sums.push_back(
        emitRowPayload(b, l, op, width, acc, [&](OpOperand *input) -> Value {
          AffineMap map = op.getMatchingIndexingMap(input);
          bool perPosition = map.isFunctionOfDim(jammed);
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
  if (!depth || *depth % lanes != 0 ||
      getConstantIntValue(all.lbs[red]) != 0 ||
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
      Value x = vector::ShuffleOp::create(b, l, partials[p], partials[p + 1],
                                          low);
      Value y = vector::ShuffleOp::create(b, l, partials[p], partials[p + 1],
                                          high);
      next.push_back(arith::AddFOp::create(b, l, x, y));
    }
    partials = std::move(next);
  }
  return partials.front();
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
  Value output = op.getDpsInitOperand(0)->get();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  auto vectorOf = [&](Type element) {
    return VectorType::get({lanes}, element);
  };
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
  Type f32 = rewriter.getF32Type();
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
  scf::ParallelOp::create(
      rewriter, loc, ordered(lbs), ordered(mainUbs), ordered(steps),
      [&](OpBuilder &b, Location l, ValueRange orderedIvs) {
        SmallVector<Value> blockIvs(orderedIvs);
        if (keysOutermost) {
          blockIvs.assign(orderedIvs.begin() + 1, orderedIvs.end());
          blockIvs.push_back(orderedIvs.front());
        }
        // The ivs of each key of the block, the reduction's appended below.
        SmallVector<SmallVector<Value>> ivs;
        for (int64_t r = 0; r < lanes; ++r) {
          ivs.emplace_back(blockIvs);
          if (r > 0)
            ivs.back()[key] =
                arith::AddIOp::create(b, l, blockIvs[key], index(b, l, r));
        }
        Value zero = arith::ConstantOp::create(
            b, l, DenseElementsAttr::get(vectorOf(f32), 0.0f));
        auto loop = scf::ForOp::create(
            b, l, all.lbs[red], all.ubs[red], index(b, l, lanes),
            SmallVector<Value>(lanes, zero),
            [&](OpBuilder &fb, Location fl, Value e0, ValueRange sums) {
              SmallVector<SmallVector<Value>> at(ivs);
              for (SmallVector<Value> &keyIvs : at)
                keyIvs.push_back(e0);
              scf::YieldOp::create(
                  fb, fl,
                  emitSharedRowPayloads(fb, fl, op, lanes, at, sums, key, red));
            });
        Value scores =
            sumLanesOfEach(b, l, SmallVector<Value>(loop.getResults()));
        SmallVector<Value> outIndices = applyMap(b, l, outMap, ivs.front());
        Value init =
            vector::LoadOp::create(b, l, vectorOf(f32), output, outIndices);
        vector::StoreOp::create(b, l, arith::AddFOp::create(b, l, init, scores),
                                output, outIndices);
        scf::ReduceOp::create(b, l);
      });
  emitRegisterLoops(rewriter, loc, op, all, restLbs, ubs,
                    SmallVector<int64_t>(parallel, 1));
}

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

/// Register form: scf.parallel over the parallel dims, the sum carried
/// through one scf.for per reduction dim. A projection (two parallel dims,
/// one reduction, an even static column count) runs as an scf.parallel
/// over blocks of kColumnBlock columns, in each of which the tokens are
/// jammed 4 rows x 2 columns (the last T mod 4 rows one output at a time);
/// a weight too large for the cache has its reduction in chunks of
/// kReductionChunk inside the block (the partial sums kept in the output),
/// so that the block's chunk of weight rows stays in L1 across all tokens.
void emitRegisterForm(IRRewriter &rewriter, linalg::GenericOp op,
                      const LoopBounds &all, int64_t vectorRegisters) {
  if (std::optional<vector::CombiningKind> kind = laneReductionKind(op, all)) {
    Type element = op.getRegion().front().getArgument(0).getType();
    int64_t lanes = f32Lanes(vectorRegisters) * 32 /
                    int64_t(element.getIntOrFloatBitWidth());
    emitLaneReduction(rewriter, op, all, *kind, std::max<int64_t>(lanes, 1));
    return;
  }
  Location loc = op.getLoc();
  unsigned parallel = op.getNumParallelLoops(), loops = op.getNumLoops();
  SmallVector<Value> lbs(ArrayRef(all.lbs).take_front(parallel)),
      ubs(ArrayRef(all.ubs).take_front(parallel));
  SmallVector<int64_t> single(parallel, 1);
  std::optional<int64_t> columns = getConstantIntValue(all.ubs[1 % loops]);
  // Sixteen sums fit 32 registers (AVX-512), not 16 (AVX2: they spill).
  int64_t jamColumns = vectorRegisters >= 32 && columns &&
                               *columns % kWideJamColumns == 0
                           ? kWideJamColumns
                           : kJamColumns;
  bool projection = parallel == 2 && loops == 3 && columns &&
                    *columns % jamColumns == 0 &&
                    getConstantIntValue(all.lbs[0]) == 0;
  if (!projection && isKeyBlockScores(op, all, f32Lanes(vectorRegisters))) {
    emitKeyBlockScores(rewriter, op, all, f32Lanes(vectorRegisters));
    return;
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
      return;
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
    return;
  }
  Value rows = all.ubs[0];
  Value main = arith::SubIOp::create(
      rewriter, loc, rows,
      arith::RemUIOp::create(
          rewriter, loc, rows,
          arith::ConstantIndexOp::create(rewriter, loc, kJamRows)));
  // A weight that stays in cache anyway (the example layer's 3.2 MiB) is
  // faster unchunked (measured 1.25x).
  std::optional<int64_t> depth = getConstantIntValue(all.ubs[2]);
  // A decode step's few tokens (static, fewer than a row jam) reuse no
  // weight row from cache: each output then sums its whole row, the rows
  // read in order as one stream. Chunked, the block's 32 rows were 32
  // interleaved streams of 1 KiB pieces (measured on an AMD EPYC, Qwen2.5-
  // 7B's decode at 1k keys: 1.4x slower).
  std::optional<int64_t> tokenCount = getConstantIntValue(all.ubs[0]);
  bool fewTokens = tokenCount && *tokenCount < kJamRows;
  bool chunked = !fewTokens && depth && *depth > kReductionChunk &&
                 *columns * *depth * 4 > kCachedWeightBytes &&
                 getConstantIntValue(all.lbs[2]) == 0;
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
        auto emitBlock = [&](OpBuilder &cb, const LoopBounds &chunk) {
          emitRegisterLoops(cb, l, op, chunk, {lbs[0], n0[0]}, {main, n1},
                            {kJamRows, jamColumns});
          emitRegisterLoops(cb, l, op, chunk, {main, n0[0]}, {ubs[0], n1},
                            single);
        };
        if (!chunked) {
          emitBlock(b, all);
        } else {
          Value step = arith::ConstantIndexOp::create(b, l, kReductionChunk);
          scf::ForOp::create(
              b, l, all.lbs[2], all.ubs[2], step, ValueRange{},
              [&](OpBuilder &fb, Location fl, Value e0, ValueRange) {
                LoopBounds chunk = all;
                chunk.lbs[2] = e0;
                chunk.ubs[2] = arith::MinSIOp::create(
                    fb, fl, arith::AddIOp::create(fb, fl, e0, step),
                    all.ubs[2]);
                emitBlock(fb, chunk);
                scf::YieldOp::create(fb, fl);
              });
        }
        scf::ReduceOp::create(b, l);
      });
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
  // Rows of the last outer dim jammed `jam` at a time: their sums are
  // independent FMA chains (one row's chains alone wait on the FMA's
  // latency at every step), and an input that does not depend on that dim
  // is loaded once per step for all of them. Half the registers hold sums.
  int64_t vectorsPerRow =
      element.isIntOrFloat()
          ? llvm::divideCeil(width * int64_t(element.getIntOrFloatBitWidth()),
                             32 * f32Lanes(vectorRegisters))
          : vectorRegisters;
  int64_t jam = outer.empty()
                    ? 1
                    : std::clamp<int64_t>(
                          vectorRegisters / 2 / vectorsPerRow, 1, kMaxJamRows);
  // The rows [rowLbs, rowUbs) stepping by `rowJam` on the jammed dim, over
  // the reduction range `red`.
  auto emitRows = [&](OpBuilder &rb, Location rl, const LoopBounds &red,
                      ArrayRef<Value> rowLbs, ArrayRef<Value> rowUbs,
                      int64_t rowJam) {
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
                                         inner);
          };
          SmallVector<Value> sums = reduce(b, parallel, rows);
          for (auto [sum, indices] : llvm::zip(sums, outIndices))
            vector::StoreOp::create(b, l, sum, output, indices);
        });
  };
  // Whole groups of `jam` rows, then the rest one row at a time.
  auto emitAllRows = [&](OpBuilder &rb, Location rl, const LoopBounds &red) {
    if (jam == 1) {
      emitRows(rb, rl, red, lbs, ubs, 1);
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
    emitRows(rb, rl, red, lbs, mainUbs, jam);
    emitRows(rb, rl, red, restLbs, ubs, 1);
  };
  // Few rows (fewRows: a decode step's heads) inside a threaded loop (an
  // SDPA block, whose loops here all run in order): one reduction dim goes
  // in blocks of kRowReductionBlock outside the rows, each block's inputs
  // (16 rows of V) read from memory once and reused from L1 by every row,
  // so the misses spread over the tile's work; the rows are loaded and
  // stored once per block, from L1. Each element is still summed in the
  // same order. (Outside a threaded loop the rows are the threads' work;
  // many rows, a prefill block's, would not stay in L1.)
  if (loops != parallel + 1 || !op->getParentOfType<scf::ParallelOp>() ||
      !fewRows(op, all, outer, width)) {
    emitAllRows(rewriter, loc, all);
  } else {
    unsigned red = parallel;
    Value block = arith::ConstantIndexOp::create(rewriter, loc,
                                                 kRowReductionBlock);
    scf::ForOp::create(
        rewriter, loc, all.lbs[red], all.ubs[red], block, ValueRange{},
        [&](OpBuilder &fb, Location fl, Value r0, ValueRange) {
          LoopBounds blockBounds = all;
          blockBounds.lbs[red] = r0;
          blockBounds.ubs[red] = arith::MinSIOp::create(
              fb, fl, arith::AddIOp::create(fb, fl, r0, block), all.ubs[red]);
          emitAllRows(fb, fl, blockBounds);
          scf::YieldOp::create(fb, fl);
        });
  }
  rewriter.eraseOp(op);
}

//===----------------------------------------------------------------------===//
// Packed projections
//===----------------------------------------------------------------------===//

/// Tokens per register block of a packed projection, and the fewest tokens
/// for which packing pays (below, the dot-product form runs).
constexpr int64_t kPackedRows = 6, kPackedMinRows = 16;

/// A projection y[t, n] += x[t, e] * W[n, e] that the packed form takes.
struct PackedProjection {
  OpOperand *input = nullptr, *weight = nullptr;
  /// Columns per block: four vectors with 32 registers (AVX-512: 6 x 4
  /// sums, 4 weight vectors), two with 16 (AVX2: 6 x 2 and 2).
  int64_t width = 0;
};

std::optional<PackedProjection>
packedProjection(linalg::GenericOp op, int64_t vectorRegisters) {
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
  p.width = vectorRegisters >= 32 ? 64 : 16;
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
  return p;
}

//===----------------------------------------------------------------------===//
// Packed projection epilogues
//===----------------------------------------------------------------------===//

/// What a packed projection does besides summing: the value its sums start
/// from (the bias a generic broadcasts into the output, or a fill's
/// constant) and a half-split RoPE that reads only its output. The packed
/// form then starts the sums from the bias in registers and applies RoPE to
/// each block of rows before storing it, instead of a fill pass over the
/// output before and a RoPE pass over it after.
struct PackedEpilogue {
  /// The op that initializes the output: y[t, n] = bias[n] (a generic) or a
  /// linalg.fill. Null: the sums start from the output as it is.
  Operation *init = nullptr;
  /// The 1-D bias of a generic `init`, or the scalar of a fill.
  Value bias, fillValue;
  /// The RoPE generic z[t, h, p, i] = f(y[t, h, 0, i], y[t, h, 1, i],
  /// tables[t, i]..., p) over the output viewed as [T, H, 2, D/2].
  linalg::GenericOp rope;
  memref::ExpandShapeOp view;
  int64_t headDim = 0;
  /// Ops after the projection (and its RoPE) that compute each row (token,
  /// head) of what they write from the same rows of the projection's heads
  /// alone: a cache's rotation, quantization and bit-packing. The fused
  /// form runs them on each chunk of a head's rows right after computing
  /// it, while the rows are in cache, and is emitted at the last one's
  /// place. Their rows: `rowHeads` heads of `rowHeadDim` columns.
  SmallVector<Operation *> rowOps;
  /// Each row op's token and head dims (loop dims, or ivs of a loop).
  SmallVector<std::pair<unsigned, unsigned>> rowDims;
  int64_t rowHeads = 0, rowHeadDim = 0;
};

/// The buffer `value` views (through view-like ops), or `value` itself.
Value rootBuffer(Value value) {
  while (auto view = value.getDefiningOp<ViewLikeOpInterface>())
    value = view.getViewSource();
  return value;
}

/// Whether `from` may move down to `to` (one block) past the ops between:
/// each has no memory effects, is an allocation, one of `skip`, or a linalg op that writes
/// only buffers allocated in the same block, none of them one of `readOnly`
/// (by root buffer), and has none of `untouched` as an operand.
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

/// Copies the weight rows of a panel's columns into `panel` [E, width]:
/// element e of every column contiguous; in two halves with RoPE. Each
/// weight row is read whole, in order (one stream from memory at a time),
/// and written down a column of the panel, which stays in cache: read
/// element e of every row in turn, the panel's 64 rows were 64 interleaved
/// streams that the prefetchers did not follow (Qwen2.5-7B's weights
/// packed at 2.4 GB/s on an AMD EPYC).
void packPanel(OpBuilder &b, Location l, Value weight, Value panel,
               Value depth, const PanelColumns &cols, int64_t width,
               bool halves) {
  Value zero = arith::ConstantIndexOp::create(b, l, 0),
        one = arith::ConstantIndexOp::create(b, l, 1),
        halfWidth = arith::ConstantIndexOp::create(b, l, width / 2),
        fullWidth = arith::ConstantIndexOp::create(b, l, width);
  SmallVector<Value> starts = {cols.first};
  if (halves)
    starts.push_back(cols.second);
  for (auto [slot, start] : llvm::enumerate(starts))
    scf::ForOp::create(
        b, l, zero, halves ? halfWidth : fullWidth, one, ValueRange{},
        [&, start = start, slot = slot](OpBuilder &cb, Location cl, Value c,
                                         ValueRange) {
          Value n = arith::AddIOp::create(cb, cl, start, c);
          Value at = slot == 0
                         ? c
                         : arith::AddIOp::create(cb, cl, c, halfWidth);
          scf::ForOp::create(
              cb, cl, zero, depth, one, ValueRange{},
              [&](OpBuilder &eb, Location el, Value e, ValueRange) {
                Value w = memref::LoadOp::create(eb, el, weight,
                                                 ValueRange{n, e});
                memref::StoreOp::create(eb, el, w, panel, ValueRange{e, at});
                scf::YieldOp::create(eb, el);
              });
          scf::YieldOp::create(cb, cl);
        });
}

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

/// Runs token rows [lo, hi) against a packed `panel` [E, width] of the
/// columns `cols`: blocks of kPackedRows tokens as outer products (per e,
/// the panel's row is loaded once, width / 16 vectors, and each token's
/// x[t, e] broadcast, each token's row of sums a vector iter_arg), then the
/// rest one token at a time. Each output is summed in order over e, from
/// its initial value (or the epilogue's bias), and stored (or rotated by
/// the epilogue's RoPE).
void emitPanelRows(OpBuilder &b, Location l, linalg::GenericOp op,
                   const PackedProjection &p, const PackedEpilogue &epi,
                   Value panel, const PanelColumns &cols, Value depth,
                   Value lo, Value hi) {
  Value output = op.getDpsInitOperand(0)->get();
  Type weightElement = cast<MemRefType>(p.weight->get().getType())
                           .getElementType();
  Type sumElement = op.getRegion().front().getArguments().back().getType();
  auto index = [&](OpBuilder &ib, Location il, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ib, il, v);
  };
  auto rowType = [&](Type element) {
    return VectorType::get({p.width}, element);
  };
  Value zero = index(b, l, 0), one = index(b, l, 1);
  // With an epilogue every row starts from the same bias vector: built
  // once per panel, not per token.
  Value panelInit = epi.init ? initialSums(b, l, output, /*t=*/Value(), cols,
                                           rowType(sumElement), epi)
                             : Value();
  // Token blocks [from, to) of `rows` tokens each.
  auto tokenBlocks = [&](Value from, Value to, int64_t rows) {
    scf::ForOp::create(
        b, l, from, to, index(b, l, rows), ValueRange{},
        [&](OpBuilder &tb, Location tl, Value t0, ValueRange) {
          SmallVector<Value> ts, inits;
          for (int64_t m = 0; m < rows; ++m) {
            ts.push_back(m == 0 ? t0
                                : arith::AddIOp::create(tb, tl, t0,
                                                        index(tb, tl, m)));
            inits.push_back(panelInit
                                ? panelInit
                                : initialSums(tb, tl, output, ts.back(), cols,
                                              rowType(sumElement), epi));
          }
          auto loop = scf::ForOp::create(
              tb, tl, zero, depth, one, inits,
              [&](OpBuilder &fb, Location fl, Value e, ValueRange sums) {
                Value w = vector::LoadOp::create(
                    fb, fl, rowType(weightElement), panel,
                    ValueRange{e, zero});
                SmallVector<Value> next;
                for (auto [t, sum] : llvm::zip(ts, sums))
                  next.push_back(emitRowPayload(
                      fb, fl, op, p.width, sum, [&](OpOperand *in) {
                        if (in == p.weight)
                          return w;
                        return memref::LoadOp::create(fb, fl, in->get(),
                                                      ValueRange{t, e})
                            .getResult();
                      }));
                scf::YieldOp::create(fb, fl, next);
              });
          for (auto [t, sum] : llvm::zip(ts, loop.getResults()))
            storeSums(tb, tl, sum, output, t, cols, epi);
          scf::YieldOp::create(tb, tl);
        });
  };
  Value span = isConstantIntValue(lo, 0) ? hi
                                          : arith::SubIOp::create(b, l, hi, lo);
  Value main = arith::SubIOp::create(
      b, l, hi, arith::RemUIOp::create(b, l, span, index(b, l, kPackedRows)));
  tokenBlocks(lo, main, kPackedRows);
  tokenBlocks(main, hi, 1);
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
  Value one = arith::ConstantIndexOp::create(b, l, 1);
  Value h1 = arith::AddIOp::create(b, l, h, one);
  if (auto loop = dyn_cast<scf::ParallelOp>(row)) {
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

/// The packed form of a projection: one thread per block of `width`
/// columns packs the block's weight rows into a panel [E, width] (element
/// e of every column contiguous), then runs every token against it
/// (emitPanelRows). Packing costs E x width copies per block and call,
/// against T x E x width FMAs (Goto's GEMM packs per call too).
///
/// With a row epilogue, every panel is packed first (one buffer, in
/// parallel), then one thread per chunk of a head's rows runs the chunk
/// against each of the head's panels and then the row ops on the chunk.
void emitPackedProjection(IRRewriter &rewriter, linalg::GenericOp op,
                          const LoopBounds &all, const PackedProjection &p,
                          const PackedEpilogue &epi,
                          SmallVectorImpl<linalg::GenericOp> &created) {
  Location loc = op.getLoc();
  Value weight = p.weight->get();
  Type weightElement = cast<MemRefType>(weight.getType()).getElementType();
  Value tokens = all.ubs[0], depth = all.ubs[2];
  auto index = [&](OpBuilder &b, Location l, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, l, v);
  };
  auto panelType = MemRefType::get({ShapedType::kDynamic, p.width},
                                   weightElement);
  Value zero = index(rewriter, loc, 0);
  if (epi.rowOps.empty()) {
    scf::ParallelOp::create(
        rewriter, loc, ValueRange{zero}, ValueRange{all.ubs[1]},
        ValueRange{index(rewriter, loc, p.width)},
        [&](OpBuilder &b, Location l, ValueRange n0) {
          PanelColumns cols = panelColumns(b, l, n0[0], p.width, epi);
          Value panel = memref::AllocOp::create(b, l, panelType, depth);
          packPanel(b, l, weight, panel, depth, cols, p.width,
                    bool(epi.rope));
          emitPanelRows(b, l, op, p, epi, panel, cols, depth, zero, tokens);
          memref::DeallocOp::create(b, l, panel);
          scf::ReduceOp::create(b, l);
        });
    return;
  }
  // Panel k is rows [k E, (k + 1) E) of one buffer.
  int64_t columns = *getConstantIntValue(all.ubs[1]);
  Value packed = memref::AllocOp::create(
      rewriter, loc, panelType,
      ValueRange{arith::MulIOp::create(
          rewriter, loc, index(rewriter, loc, columns / p.width), depth)});
  auto panelAt = [&](OpBuilder &b, Location l, Value k) -> Value {
    Value row = arith::MulIOp::create(b, l, k, depth);
    return memref::SubViewOp::create(
        b, l, packed, ArrayRef<OpFoldResult>{row, b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{depth, b.getIndexAttr(p.width)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1)});
  };
  Value widthValue = index(rewriter, loc, p.width);
  scf::ParallelOp::create(
      rewriter, loc, ValueRange{zero}, ValueRange{all.ubs[1]},
      ValueRange{widthValue}, [&](OpBuilder &b, Location l, ValueRange n0) {
        PanelColumns cols = panelColumns(b, l, n0[0], p.width, epi);
        packPanel(b, l, weight,
                  panelAt(b, l, arith::DivUIOp::create(b, l, n0[0],
                                                       widthValue)),
                  depth, cols, p.width, bool(epi.rope));
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
          emitPanelRows(b, l, op, p, epi, panelAt(b, l, k), cols, depth, t0,
                        t1);
        }
        for (auto [row, dims] : llvm::zip(epi.rowOps, epi.rowDims))
          emitRowOpOnRows(b, l, row, dims, t0, t1, h, created);
        scf::ReduceOp::create(b, l);
      });
  memref::DeallocOp::create(rewriter, loc, packed);
}

/// A Register-form reduction: a projection with enough tokens takes the
/// packed form (behind a run-time test of T when T is dynamic), everything
/// else emitRegisterForm. A packed projection takes its epilogue (the
/// output's init, a RoPE, row ops) when it has one: the fused form is
/// emitted at the place of the last op it takes, and the dot-product form
/// behind the test of T runs them all unfused there. Generics created that
/// this pass must still lower (row ops' tiles and clones) go to `created`.
void lowerToRegisterLoops(IRRewriter &rewriter, linalg::GenericOp op,
                          PackedEpilogue epi, int64_t vectorRegisters,
                          SmallVectorImpl<linalg::GenericOp> &created) {
  LoopBounds all = loopBounds(rewriter, op);
  std::optional<PackedProjection> packed =
      packedProjection(op, vectorRegisters);
  std::optional<int64_t> tokens = getConstantIntValue(all.ubs[0]);
  if (!packed || (tokens && *tokens < kPackedMinRows)) {
    assert(epi.rowOps.empty() && "row ops are matched for packed forms only");
    emitRegisterForm(rewriter, op, all, vectorRegisters);
    rewriter.eraseOp(op);
    return;
  }
  Operation *group = epi.rope ? epi.rope.getOperation() : op.getOperation();
  rewriter.setInsertionPoint(epi.rowOps.empty() ? group : epi.rowOps.back());
  if (tokens) {
    emitPackedProjection(rewriter, op, all, *packed, epi, created);
  } else {
    // Behind a test of T, the unfused form: the init, the projection and
    // the RoPE at the RoPE's place (the projection's output, which the fused
    // form never writes, may be reused once the RoPE has read it), the row
    // ops at the last one's.
    Location loc = op.getLoc();
    Value minRows =
        arith::ConstantIndexOp::create(rewriter, loc, kPackedMinRows);
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
          arith::ConstantIndexOp::create(rewriter, loc, kPackedMinRows));
      auto unfused = scf::IfOp::create(rewriter, loc, few,
                                       /*withElseRegion=*/false);
      rewriter.setInsertionPoint(unfused.thenBlock()->getTerminator());
    }
    if (epi.init)
      rewriter.clone(*epi.init);
    emitRegisterForm(rewriter, op, all, vectorRegisters);
    if (epi.rope)
      rewriter.clone(*epi.rope);
  }
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
                    int64_t vectorRegisters,
                    SmallVectorImpl<linalg::GenericOp> &created) {
  if (form == ReductionForm::Register) {
    lowerToRegisterLoops(rewriter, op, epi, vectorRegisters, created);
    return;
  }
  LoopBounds all = loopBounds(rewriter, op);
  if (std::optional<int64_t> width = rowInRegisters(op, all))
    lowerToRowInRegisterLoops(rewriter, op, all, *width, vectorRegisters);
  else
    lowerToContiguousOutputLoops(rewriter, op, all);
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
    DenseMap<Operation *, PackedEpilogue> epilogues;
    DenseSet<Operation *> claimed, rowOps;
    if (packedEpilogues)
      for (auto [op, form] : reductions) {
        if (form != ReductionForm::Register)
          continue;
        std::optional<PackedProjection> packed =
            packedProjection(op, vectorRegisters);
        if (!packed)
          continue;
        PackedEpilogue epi = packedEpilogue(op, *packed);
        int64_t tokens = op.getStaticLoopRanges()[0];
        if ((ShapedType::isDynamic(tokens) || tokens >= kPackedMinRows))
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
    SmallVector<linalg::GenericOp> created;
    for (auto [op, form] : reductions)
      if (!rowOps.contains(op))
        lowerReduction(rewriter, op, form, epilogues.lookup(op),
                       vectorRegisters, created);
    // The row ops' tiles and clones (a cache's scale is a reduction).
    while (!created.empty()) {
      linalg::GenericOp op = created.pop_back_val();
      if (!isRegisterReduction(op))
        continue;
      if (ReductionForm form = chooseForm(op); form != ReductionForm::Default)
        lowerReduction(rewriter, op, form, PackedEpilogue(), vectorRegisters,
                       created);
    }
  }
};

} // namespace
