//===- GemvKernel.cpp - Decode attn.linear as a GEMV kernel ---------------===//
//
// A decode step projects a handful of tokens: reading W once is the whole
// cost. One thread per output (the loop-level form) gives a 3584-wide
// projection 3584 threads, 28 blocks on a 132-SM GPU, each thread walking
// its own W row. Here a workgroup owns 4 outputs and its 128 threads split
// each W row between 32 lanes: lane l reads 16 bytes at element
// (c * 32 + l) * vw of chunk c, so a warp reads 512 contiguous bytes of one
// row per step, and the lanes' partial sums meet in workgroup memory, added
// in lane order to the widened bias. The form is the workgroup-tiled
// kernels' (block-mapped scf.forall, allocas, thread phases); the host runs
// it too.
//
// The order of the sum differs from LowerLinear's (per lane, then across
// lanes, bias last), as any parallel reduction's does; each lane's order is
// fixed, whether its loads are vectors or scalars.
//
// A Q or K projection that only feeds a RoPE maps its outputs to
// workgroups by RoPE pairs instead (two pairs of one head each), so that
// the last phase can rotate each pair from the sums it just formed.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Kernels/Kernels.h"
#include "WorkgroupKernel.h"

#include "rotor/Dialect/Attn/Utils/OpChains.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// Outputs per workgroup, lanes per output (a warp).
constexpr int64_t kOutputs = GemvGeometry::outputs,
                  kLanes = GemvGeometry::lanes;
/// Whether `op`'s config names this GEMV (whose geometry is fixed) and its
/// shapes allow it.
LogicalResult matchGemv(LinearOp op, PatternRewriter &rewriter) {
  KernelConfigAttr config = getKernelConfig(op);
  if (!config || config.getStrategy() != KernelStrategy::Gemv)
    return failure();
  if (std::string why = gemvObstacle(op, config); !why.empty())
    return rewriter.notifyMatchFailure(op, why);
  return success();
}

/// The output column that output `r` (of kOutputs) of workgroup `block`
/// computes.
using ColumnOf =
    function_ref<Value(OpBuilder &, Location, Value block, Value r)>;
/// The last phases of a workgroup, given its index and `sumOf(b, loc, t, r)`,
/// the bias plus the lanes' sums of output r for token t (in the accumulate
/// type, lanes in order).
using GemvEpilogue = function_ref<void(
    ImplicitLocOpBuilder &wb, Value block,
    function_ref<Value(OpBuilder &, Location, Value, Value)> sumOf)>;

/// The GEMV of one projection: what the shapes fix, how outputs map to
/// workgroups, then the host values (set by emitOperands).
struct GemvPlan {
  GemvPlan(LinearOp op, ColumnOf columnOf)
      : op(op), compute(op.getPrecision().getCompute()),
        acc(op.getPrecision().getAccumulate()),
        wElem(getElementTypeOrSelf(op.getWeight().getType())),
        tokens(cast<RankedTensorType>(op.getInput().getType()).getDimSize(0)),
        n(cast<RankedTensorType>(op.getWeight().getType()).getDimSize(0)),
        e(cast<RankedTensorType>(op.getWeight().getType()).getDimSize(1)),
        vw(e % (16 / bytesOf(wElem)) ? 1 : 16 / bytesOf(wElem)),
        chunks(llvm::divideCeil(e, kLanes * vw)), columnOf(columnOf) {}

  LinearOp op;
  Type compute, acc, wElem;
  /// Tokens (static), outputs per token, the reduction length.
  int64_t tokens, n, e;
  /// Elements per lane load (16 bytes where W rows are whole vectors), and
  /// the lane loads per W row.
  int64_t vw, chunks;
  ColumnOf columnOf;

  /// The operands as buffers, and whether W rows are 16-byte aligned
  /// (decided once on the host; null when vw is 1).
  Value x, w, bias, aligned;
};

/// Host code: the operands as buffers, the alignment test.
void emitOperands(ImplicitLocOpBuilder &b, GemvPlan &p) {
  p.x = readOnlyBuffer(b, p.op.getInput());
  p.w = readOnlyBuffer(b, p.op.getWeight());
  p.bias = p.op.getBias() ? readOnlyBuffer(b, p.op.getBias()) : Value();
  p.aligned = p.vw > 1 ? rowsAligned16(b, p.w, p.vw) : Value();
}

/// One lane's step c along W row `col`: the sums `s` (one per token) plus
/// the vw weights at element e0 = (c * 32 + lane) * vw times x, as one
/// vector load where aligned, else scalar loads; `s` past the row's end.
ValueRange laneStep(OpBuilder &fb, Location fl, const GemvPlan &p, Value col,
                    Value lane, Value c, ValueRange s) {
  Value e0 = arith::MulIOp::create(
      fb, fl,
      arith::AddIOp::create(
          fb, fl, arith::MulIOp::create(fb, fl, c, indexConst(fb, fl, kLanes)),
          lane),
      indexConst(fb, fl, p.vw));
  Value inside = arith::CmpIOp::create(fb, fl, arith::CmpIPredicate::ult, e0,
                                       indexConst(fb, fl, p.e));
  auto accumulate = [&](OpBuilder &ab, Location al, ArrayRef<Value> weights) {
    SmallVector<Value> next(s.begin(), s.end());
    for (int64_t m = 0; m < p.vw; ++m) {
      Value em = arith::AddIOp::create(ab, al, e0, indexConst(ab, al, m));
      for (int64_t t = 0; t < p.tokens; ++t) {
        Value xv = memref::LoadOp::create(
            ab, al, p.x, ValueRange{indexConst(ab, al, t), em});
        next[t] = multiplyAccumulate(ab, al, next[t], xv,
                                     fromCarrier(ab, al, weights[m], p.wElem),
                                     p.compute, p.acc);
      }
    }
    scf::YieldOp::create(ab, al, next);
  };
  auto scalarWeights = [&](OpBuilder &vb, Location vl) {
    SmallVector<Value> weights;
    for (int64_t m = 0; m < p.vw; ++m)
      weights.push_back(toCarrier(
          vb, vl,
          memref::LoadOp::create(
              vb, vl, p.w,
              ValueRange{col, arith::AddIOp::create(vb, vl, e0,
                                                    indexConst(vb, vl, m))})));
    return weights;
  };
  auto step = scf::IfOp::create(
      fb, fl, inside,
      [&](OpBuilder &sb, Location sl) {
        if (p.vw == 1) {
          accumulate(sb, sl, scalarWeights(sb, sl));
          return;
        }
        auto loads = scf::IfOp::create(
            sb, sl, p.aligned,
            [&](OpBuilder &vb, Location vl) {
              accumulate(
                  vb, vl,
                  loadAlignedVector(vb, vl, p.w, ValueRange{col, e0}, p.vw));
            },
            [&](OpBuilder &vb, Location vl) {
              accumulate(vb, vl, scalarWeights(vb, vl));
            });
        scf::YieldOp::create(sb, sl, loads.getResults());
      },
      [&](OpBuilder &sb, Location sl) { scf::YieldOp::create(sb, sl, s); });
  return step.getResults();
}

/// Each lane's partial sums of its slices of one W row, per token, into
/// `partial` [tokens][kOutputs][kLanes]: thread (r, lane) for output r.
void sumLaneSlices(ImplicitLocOpBuilder &wb, const GemvPlan &p, Value block,
                   Value partial) {
  threadPhase(
      wb, wb.getLoc(), kOutputs * kLanes,
      [&](ImplicitLocOpBuilder &ib, Value it) {
        Value r = arith::DivUIOp::create(ib, it, indexConst(ib, kLanes));
        Value lane = arith::RemUIOp::create(ib, it, indexConst(ib, kLanes));
        Value col = p.columnOf(ib, ib.getLoc(), block, r);
        Value zero = floatConst(ib, ib.getLoc(), p.acc, 0.0);
        SmallVector<Value> zeros(p.tokens, zero);
        Value exists = arith::CmpIOp::create(ib, arith::CmpIPredicate::ult, col,
                                             indexConst(ib, p.n));
        auto sums = scf::IfOp::create(
            ib, exists,
            [&](OpBuilder &tb, Location tl) {
              auto loop = scf::ForOp::create(
                  tb, tl, indexConst(tb, tl, 0), indexConst(tb, tl, p.chunks),
                  indexConst(tb, tl, 1), zeros,
                  [&](OpBuilder &fb, Location fl, Value c, ValueRange s) {
                    scf::YieldOp::create(fb, fl,
                                         laneStep(fb, fl, p, col, lane, c, s));
                  });
              scf::YieldOp::create(tb, tl, loop.getResults());
            },
            [&](OpBuilder &tb, Location tl) {
              scf::YieldOp::create(tb, tl, zeros);
            });
        for (int64_t t = 0; t < p.tokens; ++t)
          memref::StoreOp::create(ib, sums.getResult(t), partial,
                                  ValueRange{indexConst(ib, t), r, lane});
      });
}

/// Output r of token t: the bias plus the lanes' sums, lanes in order.
Value laneTotal(OpBuilder &tb, Location tl, const GemvPlan &p, Value block,
                Value partial, Value t, Value r) {
  Value sum = floatConst(tb, tl, p.acc, 0.0);
  auto loop = scf::ForOp::create(
      tb, tl, indexConst(tb, tl, 0), indexConst(tb, tl, kLanes),
      indexConst(tb, tl, 1), ValueRange{sum},
      [&](OpBuilder &fb, Location fl, Value l, ValueRange s) {
        Value part =
            memref::LoadOp::create(fb, fl, partial, ValueRange{t, r, l});
        scf::YieldOp::create(
            fb, fl, ValueRange{arith::AddFOp::create(fb, fl, s[0], part)});
      });
  sum = loop.getResult(0);
  if (p.bias)
    sum = arith::AddFOp::create(
        tb, tl,
        castFloat(tb, tl,
                  memref::LoadOp::create(
                      tb, tl, p.bias, ValueRange{p.columnOf(tb, tl, block, r)}),
                  p.acc),
        sum);
  return sum;
}

/// The GEMV kernel of `op` over `blocks` workgroups of kOutputs outputs.
void emitWorkgroupGemv(ImplicitLocOpBuilder &b, LinearOp op, int64_t blocks,
                       ColumnOf columnOf, GemvEpilogue epilogue) {
  GemvPlan p(op, columnOf);
  emitOperands(b, p);
  workgroupLoop(b, {b.getIndexAttr(blocks)},
                [&](ImplicitLocOpBuilder &wb, ValueRange ivs) {
                  Value block = ivs[0];
                  Value partial = workgroupBuffer(
                      wb, {p.tokens, kOutputs, kLanes}, p.acc);
                  sumLaneSlices(wb, p, block, partial);
                  epilogue(wb, block,
                           [&](OpBuilder &tb, Location tl, Value t, Value r) {
                             return laneTotal(tb, tl, p, block, partial, t, r);
                           });
                });
}

struct LowerLinearToWorkgroupGemv : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    if (failed(matchGemv(op, rewriter)))
      return failure();
    auto resultType = cast<RankedTensorType>(op.getType());
    Type storage = resultType.getElementType();
    const int64_t tokens = resultType.getDimSize(0);
    const int64_t n = resultType.getDimSize(1);
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value y = memref::AllocOp::create(
        b, MemRefType::get(resultType.getShape(), storage));
    auto columnOf = [](OpBuilder &cb, Location cl, Value block, Value r) {
      return arith::AddIOp::create(
                 cb, cl,
                 arith::MulIOp::create(
                     cb, cl, block,
                     arith::ConstantIndexOp::create(cb, cl, kOutputs)),
                 r)
          .getResult();
    };
    emitWorkgroupGemv(
        b, op, llvm::divideCeil(n, kOutputs), columnOf,
        [&](ImplicitLocOpBuilder &wb, Value block, auto sumOf) {
          // Each output that exists, rounded once.
          threadPhase(
              wb, wb.getLoc(), tokens * kOutputs,
              [&](ImplicitLocOpBuilder &ib, Value it) {
                Value count = arith::ConstantIndexOp::create(ib, kOutputs);
                Value t = arith::DivUIOp::create(ib, it, count);
                Value r = arith::RemUIOp::create(ib, it, count);
                Value col = columnOf(ib, ib.getLoc(), block, r);
                Value exists = arith::CmpIOp::create(
                    ib, arith::CmpIPredicate::ult, col,
                    arith::ConstantIndexOp::create(ib, n));
                scf::IfOp::create(ib, exists, [&](OpBuilder &tb, Location tl) {
                  memref::StoreOp::create(
                      tb, tl, castFloat(tb, tl, sumOf(tb, tl, t, r), storage),
                      y, ValueRange{t, col});
                  scf::YieldOp::create(tb, tl);
                });
              });
        });
    rewriter.replaceOp(op, bufferization::ToTensorOp::create(
                               b, resultType, y, /*restrict=*/true,
                               /*writable=*/true));
    return success();
  }
};

/// How the RoPE GEMV maps outputs to workgroups: workgroup `block` is head
/// block / (D/4), pairs 2 (block % (D/4)) + p for its outputs 2p (first of
/// the pair) and 2p + 1 (second), so that one thread can rotate a pair
/// from the sums it just formed.
struct RopePairs {
  RopeEmitter &emitter;
  int64_t d;

  Value headOf(OpBuilder &b, Location loc, Value block) const {
    return arith::DivUIOp::create(b, loc, block, indexConst(b, loc, d / 4));
  }
  Value pairOf(OpBuilder &b, Location loc, Value block, Value p) const {
    return arith::AddIOp::create(
        b, loc,
        arith::MulIOp::create(
            b, loc,
            arith::RemUIOp::create(b, loc, block, indexConst(b, loc, d / 4)),
            indexConst(b, loc, 2)),
        p);
  }
  /// The projection's column of output `out` of workgroup `block`.
  Value columnOf(OpBuilder &b, Location loc, Value block, Value out) const {
    Value p = arith::DivUIOp::create(b, loc, out, indexConst(b, loc, 2));
    auto [ja, jb] = emitter.pairDims(b, loc, pairOf(b, loc, block, p));
    Value second = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::ne,
        arith::RemUIOp::create(b, loc, out, indexConst(b, loc, 2)),
        indexConst(b, loc, 0));
    Value j = arith::SelectOp::create(b, loc, second, jb, ja);
    return arith::AddIOp::create(b, loc,
                                 arith::MulIOp::create(b, loc,
                                                       headOf(b, loc, block),
                                                       indexConst(b, loc, d)),
                                 j);
  }
};

/// The RoPE GEMV's last phase, one thread per (token, pair): both sums
/// rounded to the projection's type `storage`, then both rotated and
/// written to `out`.
void rotatePairs(ImplicitLocOpBuilder &wb, const RopePairs &pairs, Value block,
                 function_ref<Value(OpBuilder &, Location, Value, Value)> sumOf,
                 int64_t tokens, Type storage, Value positions, Value out) {
  RopeEmitter &emitter = pairs.emitter;
  threadPhase(
      wb, wb.getLoc(), tokens * 2, [&](ImplicitLocOpBuilder &ib, Value it) {
        Location l = ib.getLoc();
        Value t = arith::DivUIOp::create(ib, it, indexConst(ib, l, 2));
        Value p = arith::RemUIOp::create(ib, it, indexConst(ib, l, 2));
        auto [ja, jb] = emitter.pairDims(ib, l, pairs.pairOf(ib, l, block, p));
        Value first = arith::MulIOp::create(ib, p, indexConst(ib, l, 2));
        Value second = arith::AddIOp::create(ib, first, indexConst(ib, l, 1));
        Value va = castFloat(ib, l, sumOf(ib, l, t, first), storage);
        Value vb = castFloat(ib, l, sumOf(ib, l, t, second), storage);
        auto partner = [&](Value dim) -> Value {
          Value isA =
              arith::CmpIOp::create(ib, l, arith::CmpIPredicate::eq, dim, ja);
          return arith::SelectOp::create(ib, l, isA, va, vb);
        };
        Value position = memref::LoadOp::create(ib, positions, t);
        Value ra = emitter.emit(ib, l, ja, va, partner, position);
        Value rb = emitter.emit(ib, l, jb, vb, partner, position);
        Value head = pairs.headOf(ib, l, block);
        memref::StoreOp::create(ib, ra, out, ValueRange{t, head, ja});
        memref::StoreOp::create(ib, rb, out, ValueRange{t, head, jb});
      });
}

/// rope(expand_shape(linear(x, W, b))) of a decode step where the
/// projection feeds only the RoPE (the Q and K paths): the GEMV with each
/// workgroup's 4 outputs two RoPE pairs of one head (RopePairs), whose last
/// phase rounds each pair to the projection's type and rotates it. The
/// RoPE kernel and the unrotated projection's round trip through memory
/// are gone; the arithmetic is the GEMV's and the RoPE's, bit for bit.
struct LowerLinearWithRopeToWorkgroupGemv : OpRewritePattern<LinearOp> {
  LowerLinearWithRopeToWorkgroupGemv(MLIRContext *ctx)
      // Preferred over the plain GEMV.
      : OpRewritePattern(ctx, /*benefit=*/2) {}

  LogicalResult matchAndRewrite(LinearOp linear,
                                PatternRewriter &rewriter) const override {
    if (failed(matchGemv(linear, rewriter)))
      return failure();
    FailureOr<ProjectionIntoRope> chain =
        matchProjectionIntoRope(linear, rewriter);
    if (failed(chain))
      return failure();
    auto [expand, rope] = *chain;
    auto resultType = cast<RankedTensorType>(rope.getType());
    const int64_t tokens = resultType.getDimSize(0);
    const int64_t heads = resultType.getDimSize(1),
                  d = resultType.getDimSize(2);
    // Two pairs per workgroup.
    if (ShapedType::isDynamic(heads) || d % 4)
      return rewriter.notifyMatchFailure(linear,
                                         "head dim not a multiple of 4");

    rewriter.setInsertionPoint(rope);
    ImplicitLocOpBuilder b(rope.getLoc(), rewriter);
    RopeEmitter emitter(b, rope);
    Value positions = readOnlyBuffer(b, rope.getPositions());
    Value out = memref::AllocOp::create(
        b, MemRefType::get(resultType.getShape(), resultType.getElementType()));
    Type storage = cast<RankedTensorType>(linear.getType()).getElementType();
    RopePairs pairs{emitter, d};
    emitWorkgroupGemv(
        b, linear, heads * (d / 4),
        [&](OpBuilder &cb, Location cl, Value block, Value r) {
          return pairs.columnOf(cb, cl, block, r);
        },
        [&](ImplicitLocOpBuilder &wb, Value block, auto sumOf) {
          rotatePairs(wb, pairs, block, sumOf, tokens, storage, positions, out);
        });
    rewriter.replaceOp(rope, bufferization::ToTensorOp::create(
                                 b, resultType, out, /*restrict=*/true,
                                 /*writable=*/true));
    rewriter.eraseOp(expand);
    rewriter.eraseOp(linear);
    return success();
  }
};

} // namespace

std::string rotor::attn::lowering::gemvObstacle(LinearOp op,
                                                KernelConfigAttr config) {
  if (config && (config.getCols() != kOutputs ||
                 config.getThreads() != kOutputs * kLanes))
    return "the GEMV has 4 outputs per workgroup of 128 threads only";
  auto xType = cast<RankedTensorType>(op.getInput().getType());
  auto wType = cast<RankedTensorType>(op.getWeight().getType());
  if (xType.isDynamicDim(0) || xType.getDimSize(0) > GemvGeometry::maxTokens ||
      xType.getDimSize(0) < 1)
    return "not decode-shaped (1 to 15 static tokens)";
  if (wType.isDynamicDim(0) || wType.isDynamicDim(1))
    return "dynamic weight shape";
  return "";
}

void rotor::attn::lowering::populateWorkgroupGemvPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerLinearToWorkgroupGemv, LowerLinearWithRopeToWorkgroupGemv>(
      patterns.getContext());
}
