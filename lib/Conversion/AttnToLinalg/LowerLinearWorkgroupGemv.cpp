//===- LowerLinearWorkgroupGemv.cpp - Decode attn.linear as a GEMV kernel -===//
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
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "WorkgroupKernel.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// Outputs per workgroup, lanes per output (a warp).
constexpr int64_t kOutputs = 4, kLanes = 32;
/// Tokens up to this (static) count are decode-shaped; the GEMM takes more.
constexpr int64_t kMaxTokens = 15;

struct LowerLinearToWorkgroupGemv : OpRewritePattern<LinearOp> {
  LowerLinearToWorkgroupGemv(MLIRContext *ctx)
      : OpRewritePattern(ctx, /*benefit=*/2) {}

  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    auto xType = cast<RankedTensorType>(op.getInput().getType());
    auto wType = cast<RankedTensorType>(op.getWeight().getType());
    auto resultType = cast<RankedTensorType>(op.getType());
    if (xType.isDynamicDim(0) || xType.getDimSize(0) > kMaxTokens ||
        xType.getDimSize(0) < 1)
      return rewriter.notifyMatchFailure(op, "not decode-shaped");
    if (wType.isDynamicDim(0) || wType.isDynamicDim(1))
      return rewriter.notifyMatchFailure(op, "dynamic weight shape");
    Type compute = op.getPrecision().getCompute();
    Type acc = op.getPrecision().getAccumulate();
    Type storage = resultType.getElementType();
    Type wElem = wType.getElementType();
    const int64_t tokens = xType.getDimSize(0);
    const int64_t n = wType.getDimSize(0), e = wType.getDimSize(1);
    // Elements per lane load: 16 bytes where W rows are whole vectors.
    int64_t vw = 16 / bytesOf(wElem);
    if (e % vw)
      vw = 1;
    const int64_t chunks = llvm::divideCeil(e, kLanes * vw);

    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto idx = [&](OpBuilder &bb, Location loc, int64_t v) -> Value {
      return arith::ConstantIndexOp::create(bb, loc, v);
    };
    Value x = readOnlyBuffer(b, op.getInput()),
          w = readOnlyBuffer(b, op.getWeight());
    Value bias = op.getBias() ? readOnlyBuffer(b, op.getBias()) : Value();
    Value y = memref::AllocOp::create(
        b, MemRefType::get(resultType.getShape(), storage));

    // W rows 16-byte aligned, decided once on the host.
    Value aligned = vw > 1 ? rowsAligned16(b, w, vw) : Value();

    workgroupLoop(
        b, {b.getIndexAttr(llvm::divideCeil(n, kOutputs))},
        [&](ImplicitLocOpBuilder &wb, ValueRange ivs) {
          Location loc = wb.getLoc();
          Value col0 =
              arith::MulIOp::create(wb, ivs[0], idx(wb, wb.getLoc(), kOutputs));
          Value partial = memref::AllocaOp::create(
              wb, MemRefType::get({tokens, kOutputs, kLanes}, acc));

          // Each lane's partial sums of its slices of one W row.
          threadPhase(
              wb, loc, kOutputs * kLanes,
              [&](ImplicitLocOpBuilder &ib, Value it) {
                auto ci = [&](int64_t v) { return idx(ib, ib.getLoc(), v); };
                Value r = arith::DivUIOp::create(ib, it, ci(kLanes));
                Value lane = arith::RemUIOp::create(ib, it, ci(kLanes));
                Value col = arith::AddIOp::create(ib, col0, r);
                Value zero = floatConst(ib, ib.getLoc(), acc, 0.0);
                SmallVector<Value> zeros(tokens, zero);
                Value exists = arith::CmpIOp::create(
                    ib, arith::CmpIPredicate::ult, col, ci(n));
                auto sums = scf::IfOp::create(
                    ib, exists,
                    [&](OpBuilder &tb, Location tl) {
                      auto loop = scf::ForOp::create(
                          tb, tl, idx(tb, tl, 0), idx(tb, tl, chunks),
                          idx(tb, tl, 1), zeros,
                          [&](OpBuilder &fb, Location fl, Value c,
                              ValueRange s) {
                            Value e0 = arith::MulIOp::create(
                                fb, fl,
                                arith::AddIOp::create(
                                    fb, fl,
                                    arith::MulIOp::create(fb, fl, c,
                                                          idx(fb, fl, kLanes)),
                                    lane),
                                idx(fb, fl, vw));
                            Value inside = arith::CmpIOp::create(
                                fb, fl, arith::CmpIPredicate::ult, e0,
                                idx(fb, fl, e));
                            // The vw weights at e0, as vectors or scalars.
                            auto accumulate = [&](OpBuilder &ab, Location al,
                                                  ArrayRef<Value> weights) {
                              SmallVector<Value> next(s.begin(), s.end());
                              for (int64_t m = 0; m < vw; ++m) {
                                Value em = arith::AddIOp::create(
                                    ab, al, e0, idx(ab, al, m));
                                for (int64_t t = 0; t < tokens; ++t) {
                                  Value xv = memref::LoadOp::create(
                                      ab, al, x,
                                      ValueRange{idx(ab, al, t), em});
                                  next[t] = multiplyAccumulate(
                                      ab, al, next[t], xv,
                                      fromCarrier(ab, al, weights[m], wElem),
                                      compute, acc);
                                }
                              }
                              scf::YieldOp::create(ab, al, next);
                            };
                            auto scalarWeights = [&](OpBuilder &vb,
                                                     Location vl) {
                              SmallVector<Value> weights;
                              for (int64_t m = 0; m < vw; ++m)
                                weights.push_back(toCarrier(
                                    vb, vl,
                                    memref::LoadOp::create(
                                        vb, vl, w,
                                        ValueRange{col, arith::AddIOp::create(
                                                            vb, vl, e0,
                                                            idx(vb, vl, m))})));
                              return weights;
                            };
                            auto step = scf::IfOp::create(
                                fb, fl, inside,
                                [&](OpBuilder &sb, Location sl) {
                                  if (vw == 1) {
                                    accumulate(sb, sl, scalarWeights(sb, sl));
                                    return;
                                  }
                                  auto loads = scf::IfOp::create(
                                      sb, sl, aligned,
                                      [&](OpBuilder &vb, Location vl) {
                                        accumulate(vb, vl,
                                                   loadAlignedVector(
                                                       vb, vl, w,
                                                       ValueRange{col, e0},
                                                       vw));
                                      },
                                      [&](OpBuilder &vb, Location vl) {
                                        accumulate(vb, vl,
                                                   scalarWeights(vb, vl));
                                      });
                                  scf::YieldOp::create(sb, sl,
                                                       loads.getResults());
                                },
                                [&](OpBuilder &sb, Location sl) {
                                  scf::YieldOp::create(sb, sl, s);
                                });
                            scf::YieldOp::create(fb, fl, step.getResults());
                          });
                      scf::YieldOp::create(tb, tl, loop.getResults());
                    },
                    [&](OpBuilder &tb, Location tl) {
                      scf::YieldOp::create(tb, tl, zeros);
                    });
                for (int64_t t = 0; t < tokens; ++t)
                  memref::StoreOp::create(ib, sums.getResult(t), partial,
                                          ValueRange{ci(t), r, lane});
              });

          // Bias plus the lanes' sums in lane order, rounded once.
          threadPhase(
              wb, loc, tokens * kOutputs,
              [&](ImplicitLocOpBuilder &ib, Value it) {
                auto ci = [&](int64_t v) { return idx(ib, ib.getLoc(), v); };
                Value t = arith::DivUIOp::create(ib, it, ci(kOutputs));
                Value r = arith::RemUIOp::create(ib, it, ci(kOutputs));
                Value col = arith::AddIOp::create(ib, col0, r);
                Value exists = arith::CmpIOp::create(
                    ib, arith::CmpIPredicate::ult, col, ci(n));
                scf::IfOp::create(ib, exists, [&](OpBuilder &tb, Location tl) {
                  Value sum = floatConst(tb, tl, acc, 0.0);
                  auto loop = scf::ForOp::create(
                      tb, tl, idx(tb, tl, 0), idx(tb, tl, kLanes),
                      idx(tb, tl, 1), ValueRange{sum},
                      [&](OpBuilder &fb, Location fl, Value l, ValueRange s) {
                        Value p = memref::LoadOp::create(fb, fl, partial,
                                                         ValueRange{t, r, l});
                        scf::YieldOp::create(
                            fb, fl,
                            ValueRange{arith::AddFOp::create(fb, fl, s[0], p)});
                      });
                  sum = loop.getResult(0);
                  if (bias)
                    sum = arith::AddFOp::create(
                        tb, tl,
                        castFloat(tb, tl,
                                  memref::LoadOp::create(tb, tl, bias,
                                                         ValueRange{col}),
                                  acc),
                        sum);
                  memref::StoreOp::create(tb, tl,
                                          castFloat(tb, tl, sum, storage), y,
                                          ValueRange{t, col});
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

} // namespace

void rotor::attn::lowering::populateWorkgroupGemvPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerLinearToWorkgroupGemv>(patterns.getContext());
}
