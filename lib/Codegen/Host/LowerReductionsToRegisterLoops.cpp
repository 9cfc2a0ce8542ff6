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
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"

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

/// Register form: scf.parallel over the parallel dims, the sum carried
/// through one scf.for per reduction dim.
void lowerToRegisterLoops(IRRewriter &rewriter, linalg::GenericOp op) {
  Location loc = op.getLoc();
  LoopBounds all = loopBounds(rewriter, op);
  unsigned parallel = op.getNumParallelLoops(), loops = op.getNumLoops();
  SmallVector<Value> lbs(ArrayRef(all.lbs).take_front(parallel)),
      ubs(ArrayRef(all.ubs).take_front(parallel)),
      steps(ArrayRef(all.steps).take_front(parallel));
  Value output = op.getDpsInitOperand(0)->get();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  scf::ParallelOp::create(
      rewriter, loc, lbs, ubs, steps,
      [&](OpBuilder &b, Location l, ValueRange parallelIvs) {
        SmallVector<Value> ivs(parallelIvs);
        SmallVector<Value> outIndices = applyMap(b, l, outMap, ivs);
        Value init = memref::LoadOp::create(b, l, output, outIndices);
        // One scf.for per reduction dim, the sum carried through each.
        std::function<Value(OpBuilder &, unsigned, Value)> reduce =
            [&](OpBuilder &nb, unsigned dim, Value acc) -> Value {
          if (dim == loops)
            return emitPayload(nb, l, op, ivs, acc, /*reassociate=*/true);
          auto loop = scf::ForOp::create(
              nb, l, all.lbs[dim], all.ubs[dim], all.steps[dim], ValueRange{acc},
              [&](OpBuilder &fb, Location, Value iv, ValueRange args) {
                ivs.push_back(iv);
                Value next = reduce(fb, dim + 1, args[0]);
                ivs.pop_back();
                scf::YieldOp::create(fb, l, next);
              });
          return loop.getResult(0);
        };
        Value sum = reduce(b, parallel, init);
        memref::StoreOp::create(b, l, sum, output, outIndices);
        scf::ReduceOp::create(b, l);
      });
  rewriter.eraseOp(op);
}

/// ContiguousOutput form: scf.parallel over the other parallel dims, then
/// the reduction dims in order, then the output's contiguous dim innermost,
/// loading and storing each output element (LLVM vectorizes that loop
/// behind a run-time overlap check).
void lowerToContiguousOutputLoops(IRRewriter &rewriter, linalg::GenericOp op) {
  Location loc = op.getLoc();
  LoopBounds all = loopBounds(rewriter, op);
  unsigned loops = op.getNumLoops();
  Value output = op.getDpsInitOperand(0)->get();
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  unsigned inner = *contiguousDim(outMap);
  unsigned parallel = op.getNumParallelLoops();
  SmallVector<unsigned> outer;
  SmallVector<Value> lbs, ubs, steps;
  for (unsigned i = 0; i < parallel; ++i) {
    if (i == inner)
      continue;
    outer.push_back(i);
    lbs.push_back(all.lbs[i]);
    ubs.push_back(all.ubs[i]);
    steps.push_back(all.steps[i]);
  }
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

struct LowerReductionsToRegisterLoopsPass
    : rotor::impl::LowerReductionsToRegisterLoopsBase<
          LowerReductionsToRegisterLoopsPass> {
  void runOnOperation() override {
    SmallVector<std::pair<linalg::GenericOp, ReductionForm>> reductions;
    getOperation()->walk([&](linalg::GenericOp op) {
      if (!isRegisterReduction(op))
        return;
      if (ReductionForm form = chooseForm(op); form != ReductionForm::Default)
        reductions.push_back({op, form});
    });
    IRRewriter rewriter(&getContext());
    for (auto [op, form] : reductions) {
      if (form == ReductionForm::Register)
        lowerToRegisterLoops(rewriter, op);
      else
        lowerToContiguousOutputLoops(rewriter, op);
    }
  }
};

} // namespace
