//===- GemmKernel.cpp - attn.linear as a tiled GEMM kernel ----------------===//
//
// The loop-level projection (LowerLinear.cpp) maps one thread to each
// output and reads its whole row of x and of W from global memory. Here a
// workgroup computes a 64x64 tile of outputs: each 32-wide slice of the
// reduction dim is staged once into workgroup memory (x rows and W rows,
// 16-byte loads where aligned) and read from there by the 128 threads,
// each of which owns a 4x8 register micro-tile (its rows contiguous, its
// columns strided by 8 so that a warp reads 8 distinct W rows, padded by
// one element, from distinct banks). Partial sums live in a workgroup
// accumulator between slices. The form is the workgroup-tiled SDPA's
// (see SdpaKernel.cpp): block-mapped scf.forall, allocas,
// thread phases; the host runs it too.
//
// The arithmetic is LowerLinear's, element for element: the sum starts at
// the widened bias and adds x[t, e] * W[n, e] for e = 0, 1, ... in order;
// positions past the edges of x or W are staged as zeros and add +0. No
// tensor cores yet: products are scalar FMAs of the accumulate type.
//
// A projection followed per head by RoPE, a Hadamard rotation and/or a
// block quantization is the same GEMM with one head per column tile and
// that chain in its epilogue (HeadTileEpilogue.h).
//
// Decode-shaped projections (up to 15 static tokens) are GEMVs, bound by
// reading W once, where a 64-row tile would waste most of its rows: they
// are GemvKernel.cpp's.
//
//===----------------------------------------------------------------------===//

#include "HeadTileEpilogue.h"
#include "rotor/Codegen/Kernels/Kernels.h"
#include "WorkgroupKernel.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// Output rows (tokens) and columns per workgroup, reduction slice.
constexpr int64_t kTileRows = GemmGeometry::rows,
                  kTileCols = GemmGeometry::cols, kSlice = 32;
/// Register micro-tile of each of the 128 threads.
constexpr int64_t kMicroRows = 4, kMicroCols = 8;
constexpr int64_t kThreads = GemmGeometry::threads;
static_assert(kThreads * kMicroRows * kMicroCols == kTileRows * kTileCols);

/// The phases that finish a tile once its sums are complete, given the
/// tile's first row (token) and column, the token count and the workgroup
/// buffer `sums` [tileRows, tileCols] (accumulate type).
using TileEpilogue = function_ref<void(ImplicitLocOpBuilder &wb, Value row0,
                                       Value col0, Value tokens, Value sums)>;

/// The GEMM of one projection with `tileRows` x `tileCols` output tiles:
/// first what the shapes fix, then the host values every phase reads (set
/// by emitOperands).
struct GemmPlan {
  GemmPlan(LinearOp op, int64_t tileRows, int64_t tileCols)
      : op(op), compute(op.getPrecision().getCompute()),
        acc(op.getPrecision().getAccumulate()),
        xElem(getElementTypeOrSelf(op.getInput().getType())),
        wElem(getElementTypeOrSelf(op.getWeight().getType())),
        n(cast<RankedTensorType>(op.getWeight().getType()).getDimSize(0)),
        e(cast<RankedTensorType>(op.getWeight().getType()).getDimSize(1)),
        tileRows(tileRows), tileCols(tileCols),
        colTiles(llvm::divideCeil(n, tileCols)), xWidth(vectorWidthOf(xElem)),
        wWidth(vectorWidthOf(wElem)) {}

  /// Elements per 16-byte load of a slice row: vectors only where rows are
  /// whole vectors (a vector is then whole or past the edge).
  int64_t vectorWidthOf(Type elem) const {
    int64_t vw = 16 / bytesOf(elem);
    return (e % vw || kSlice % vw) ? int64_t(1) : vw;
  }

  LinearOp op;
  Type compute, acc, xElem, wElem;
  /// Outputs per token and the reduction length.
  int64_t n, e;
  int64_t tileRows, tileCols, colTiles;
  /// Elements per load of an x and a W slice row.
  int64_t xWidth, wWidth;

  /// The operands as buffers, the token count, row tiles (grid.x), and
  /// whether both operands' rows start 16-byte aligned (decided once, on
  /// the host).
  Value x, w, bias, tokens, rowTiles, aligned;
};

/// One workgroup: its first output row and column and its buffers, the
/// staged x and W slices (rows padded by one element against bank
/// conflicts) and the sums [tileRows][tileCols].
struct GemmWorkgroup {
  Value row0, col0, xs, ws, sums;
};

/// Host code: the operands as buffers, the row tiles, the alignment test.
void emitOperands(ImplicitLocOpBuilder &b, GemmPlan &p) {
  p.x = readOnlyBuffer(b, p.op.getInput());
  p.w = readOnlyBuffer(b, p.op.getWeight());
  p.bias = p.op.getBias() ? readOnlyBuffer(b, p.op.getBias()) : Value();
  p.tokens = memref::DimOp::create(b, p.x, 0);
  p.rowTiles =
      arith::CeilDivUIOp::create(b, p.tokens, indexConst(b, p.tileRows));
  p.aligned = arith::ConstantOp::create(b, b.getBoolAttr(true));
  for (auto [src, vw] : {std::pair{p.x, p.xWidth}, std::pair{p.w, p.wWidth}})
    if (vw > 1)
      p.aligned =
          arith::AndIOp::create(b, p.aligned, rowsAligned16(b, src, vw));
}

GemmWorkgroup allocateWorkgroup(ImplicitLocOpBuilder &wb, const GemmPlan &p,
                                ValueRange ivs) {
  GemmWorkgroup wg;
  wg.row0 = arith::MulIOp::create(wb, ivs[0], indexConst(wb, p.tileRows));
  wg.col0 = arith::MulIOp::create(wb, ivs[1], indexConst(wb, p.tileCols));
  wg.xs = workgroupBuffer(wb, {p.tileRows, kSlice + 1}, carrierType(p.xElem));
  wg.ws = workgroupBuffer(wb, {p.tileCols, kSlice + 1}, carrierType(p.wElem));
  wg.sums = workgroupBuffer(wb, {p.tileRows, p.tileCols}, p.acc);
  return wg;
}

/// Sums start at the bias, widened exactly (or 0).
void initializeSums(ImplicitLocOpBuilder &wb, const GemmPlan &p,
                    const GemmWorkgroup &wg) {
  threadPhase(
      wb, wb.getLoc(), p.tileRows * p.tileCols,
      [&](ImplicitLocOpBuilder &ib, Value it) {
        Value i = arith::DivUIOp::create(ib, it, indexConst(ib, p.tileCols));
        Value j = arith::RemUIOp::create(ib, it, indexConst(ib, p.tileCols));
        Value init = floatConst(ib, ib.getLoc(), p.acc, 0.0);
        if (p.bias) {
          Value col = arith::AddIOp::create(ib, wg.col0, j);
          Value inRange = arith::CmpIOp::create(ib, arith::CmpIPredicate::ult,
                                                col, indexConst(ib, p.n));
          auto read = scf::IfOp::create(
              ib, inRange,
              [&](OpBuilder &tb, Location tl) {
                Value v =
                    memref::LoadOp::create(tb, tl, p.bias, ValueRange{col});
                scf::YieldOp::create(tb, tl, castFloat(tb, tl, v, p.acc));
              },
              [&](OpBuilder &tb, Location tl) {
                scf::YieldOp::create(tb, tl, floatConst(tb, tl, p.acc, 0.0));
              });
          init = read.getResult(0);
        }
        memref::StoreOp::create(ib, init, wg.sums, ValueRange{i, j});
      });
}

/// Stages rows [first, first + count) x slice [k0, k0 + kSlice) of `src`
/// (`limit` rows) into `dst`, zeros past the edges (a vector is whole or
/// absent: e is a multiple of vw).
void stageSlice(OpBuilder &b, Location loc, const GemmPlan &p, Value src,
                Value dst, Value first, int64_t count, Value limit, Value k0,
                int64_t vw) {
  stageTile(
      b, loc, src, dst, count, kSlice, vw, vw > 1 ? p.aligned : Value(),
      [&](OpBuilder &ib, Location il, Value r, Value kk) {
        return SmallVector<Value>{arith::AddIOp::create(ib, il, first, r),
                                  arith::AddIOp::create(ib, il, k0, kk)};
      },
      [&](OpBuilder &ib, Location il, Value r, Value kk) -> Value {
        return arith::AndIOp::create(
            ib, il,
            arith::CmpIOp::create(ib, il, arith::CmpIPredicate::ult,
                                  arith::AddIOp::create(ib, il, first, r),
                                  limit),
            arith::CmpIOp::create(ib, il, arith::CmpIPredicate::ult,
                                  arith::AddIOp::create(ib, il, k0, kk),
                                  indexConst(ib, il, p.e)));
      });
}

/// Adds the staged slice at k0 into the sums. Thread (ib, jb) owns a 4x8
/// register micro-tile: rows ib*4 + r, columns jb + c*8.
void accumulateSlice(OpBuilder &b, Location loc, const GemmPlan &p,
                     const GemmWorkgroup &wg, Value k0) {
  int64_t colGroups = p.tileCols / kMicroCols;
  threadPhase(b, loc, kThreads, [&](ImplicitLocOpBuilder &ib, Value it) {
    auto ci = [&](int64_t v) { return indexConst(ib, v); };
    MicroTile tile = microTile(ib, it, colGroups, kMicroRows, kMicroCols);
    ArrayRef<Value> rows = tile.rows, cols = tile.cols;
    SmallVector<Value> init;
    for (Value i : rows)
      for (Value j : cols)
        init.push_back(memref::LoadOp::create(ib, wg.sums, ValueRange{i, j}));
    // The slice's last columns past e are zeros: stop at e.
    Value kEnd = arith::MinUIOp::create(ib, ci(kSlice),
                                        arith::SubIOp::create(ib, ci(p.e), k0));
    auto loop = scf::ForOp::create(
        ib, ci(0), kEnd, ci(1), init,
        [&](OpBuilder &fb, Location fl, Value kk, ValueRange s) {
          auto load = [&](Value buffer, Value i, Type elem) {
            return fromCarrier(
                fb, fl,
                memref::LoadOp::create(fb, fl, buffer, ValueRange{i, kk}),
                elem);
          };
          SmallVector<Value> xv, wv, next;
          for (Value i : rows)
            xv.push_back(load(wg.xs, i, p.xElem));
          for (Value j : cols)
            wv.push_back(load(wg.ws, j, p.wElem));
          for (int64_t r = 0; r < kMicroRows; ++r)
            for (int64_t m = 0; m < kMicroCols; ++m)
              next.push_back(multiplyAccumulate(fb, fl, s[r * kMicroCols + m],
                                                xv[r], wv[m], p.compute,
                                                p.acc));
          scf::YieldOp::create(fb, fl, next);
        });
    for (int64_t r = 0; r < kMicroRows; ++r)
      for (int64_t m = 0; m < kMicroCols; ++m)
        memref::StoreOp::create(ib, loop.getResult(r * kMicroCols + m), wg.sums,
                                ValueRange{rows[r], cols[m]});
  });
}

/// The reduction dim in slices of kSlice, in order: each x and W slice
/// staged once, then accumulated by every thread.
void walkSlices(ImplicitLocOpBuilder &wb, const GemmPlan &p,
                const GemmWorkgroup &wg) {
  auto c = [&](int64_t v) { return indexConst(wb, v); };
  scf::ForOp::create(wb, c(0), c(p.e), c(kSlice), ValueRange{},
                     [&](OpBuilder &lb, Location ll, Value k0, ValueRange) {
                       stageSlice(lb, ll, p, p.x, wg.xs, wg.row0, p.tileRows,
                                  p.tokens, k0, p.xWidth);
                       stageSlice(lb, ll, p, p.w, wg.ws, wg.col0, p.tileCols,
                                  indexConst(lb, ll, p.n), k0, p.wWidth);
                       accumulateSlice(lb, ll, p, wg, k0);
                       scf::YieldOp::create(lb, ll);
                     });
}

/// The GEMM kernel of `op` with tiles of `tileRows` x `tileCols` outputs
/// ((tileRows / 4) x (tileCols / 8) = 128 micro-tiles), finished by
/// `epilogue`.
void emitWorkgroupGemm(ImplicitLocOpBuilder &b, LinearOp op, int64_t tileRows,
                       int64_t tileCols, TileEpilogue epilogue) {
  GemmPlan p(op, tileRows, tileCols);
  emitOperands(b, p);
  workgroupLoop(b, {p.rowTiles, b.getIndexAttr(p.colTiles)},
                [&](ImplicitLocOpBuilder &wb, ValueRange ivs) {
                  GemmWorkgroup wg = allocateWorkgroup(wb, p, ivs);
                  initializeSums(wb, p, wg);
                  walkSlices(wb, p, wg);
                  epilogue(wb, wg.row0, wg.col0, p.tokens, wg.sums);
                });
}

/// The checks every workgroup GEMM needs: `op`'s config names this GEMM
/// (whose geometry is fixed) and the shapes allow it.
LogicalResult matchGemm(LinearOp op, PatternRewriter &rewriter) {
  KernelConfigAttr config = getKernelConfig(op);
  if (!config || config.getStrategy() != KernelStrategy::Gemm)
    return failure();
  if (std::string why = gemmObstacle(op, config); !why.empty())
    return rewriter.notifyMatchFailure(op, why);
  return success();
}

struct LowerLinearToWorkgroupTiles : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    if (failed(matchGemm(op, rewriter)))
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto resultType = cast<RankedTensorType>(op.getType());
    Type storage = resultType.getElementType();
    Value tokens = tensor::DimOp::create(b, op.getInput(), 0);
    Value y = memref::AllocOp::create(
        b, MemRefType::get(resultType.getShape(), storage),
        resultType.isDynamicDim(0) ? ValueRange{tokens} : ValueRange{});
    // One rounding to the result type, for each output that exists.
    int64_t n = resultType.getDimSize(1);
    emitWorkgroupGemm(
        b, op, kTileRows, kTileCols,
        [&](ImplicitLocOpBuilder &wb, Value row0, Value col0, Value tokens,
            Value sums) {
          threadPhase(
              wb, wb.getLoc(), kTileRows * kTileCols,
              [&](ImplicitLocOpBuilder &ib, Value it) {
                auto ci = [&](int64_t v) {
                  return arith::ConstantIndexOp::create(ib, v).getResult();
                };
                Value i = arith::DivUIOp::create(ib, it, ci(kTileCols));
                Value j = arith::RemUIOp::create(ib, it, ci(kTileCols));
                Value t = arith::AddIOp::create(ib, row0, i);
                Value col = arith::AddIOp::create(ib, col0, j);
                Value inside = arith::AndIOp::create(
                    ib,
                    arith::CmpIOp::create(ib, arith::CmpIPredicate::ult, t,
                                          tokens),
                    arith::CmpIOp::create(ib, arith::CmpIPredicate::ult, col,
                                          ci(n)));
                scf::IfOp::create(ib, inside, [&](OpBuilder &tb, Location tl) {
                  Value s =
                      memref::LoadOp::create(tb, tl, sums, ValueRange{i, j});
                  memref::StoreOp::create(tb, tl, castFloat(tb, tl, s, storage),
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

/// A projection split into heads and then rotated (RoPE), Hadamard-rotated
/// and/or block-quantized per head (HeadTileEpilogue.h): the GEMM with one
/// head per column tile, whose epilogue applies the chain to the tile's
/// sums; neither the projection nor any intermediate reaches memory. The
/// arithmetic is the unfused ops'.
struct LowerLinearWithHeadEpilogueToWorkgroupTiles
    : OpRewritePattern<LinearOp> {
  LowerLinearWithHeadEpilogueToWorkgroupTiles(MLIRContext *ctx)
      // Preferred over the plain GEMM.
      : OpRewritePattern(ctx, /*benefit=*/2) {}

  LogicalResult matchAndRewrite(LinearOp linear,
                                PatternRewriter &rewriter) const override {
    if (failed(matchGemm(linear, rewriter)))
      return failure();
    FailureOr<ProjectionHeadChain> matched =
        matchProjectionHeadChain(linear, rewriter);
    if (failed(matched))
      return failure();
    const HeadChain &chain = matched->chain;
    auto headsType = cast<RankedTensorType>(chain.input.getType());
    int64_t d = headsType.getDimSize(2);
    // A column tile is one head: d columns, as many rows as keep 128
    // micro-tiles.
    if (d % kMicroCols || kThreads * kMicroRows * kMicroCols % d)
      return rewriter.notifyMatchFailure(linear, "head dim does not tile");
    if (headsType.getDimSize(1) > kMaxGridY)
      return rewriter.notifyMatchFailure(linear, "more heads than grid.y");
    int64_t rows = kThreads * kMicroRows * kMicroCols / d;
    auto xType = cast<RankedTensorType>(linear.getInput().getType());
    auto wType = cast<RankedTensorType>(linear.getWeight().getType());
    Type acc = linear.getPrecision().getAccumulate();
    int64_t bytes = rows * d * bytesOf(acc) +
                    (rows * bytesOf(carrierType(xType.getElementType())) +
                     d * bytesOf(carrierType(wType.getElementType()))) *
                        (kSlice + 1);
    if (rows % kMicroRows || bytes > kStaticWorkgroupBytes)
      return rewriter.notifyMatchFailure(linear, "tile would not fit");

    rewriter.setInsertionPoint(chain.last());
    ImplicitLocOpBuilder b(chain.last()->getLoc(), rewriter);
    HeadTileEpilogue epilogue(
        b, chain, tensor::DimOp::create(b, linear.getInput(), 0), acc,
        /*readsInput=*/false);
    emitWorkgroupGemm(b, linear, rows, d,
                      [&](ImplicitLocOpBuilder &wb, Value row0, Value col0,
                          Value tokens, Value sums) {
                        // A tile is a head: its first column is head * d.
                        Value head = arith::DivUIOp::create(
                            wb, col0, arith::ConstantIndexOp::create(wb, d));
                        epilogue.emit(wb, row0, head, tokens, sums, rows);
                      });
    epilogue.replaceChain(b, rewriter);
    rewriter.eraseOp(matched->expand);
    rewriter.eraseOp(linear);
    return success();
  }
};

} // namespace

std::string rotor::attn::lowering::gemmObstacle(LinearOp op,
                                                KernelConfigAttr config) {
  if (config && (config.getRows() != kTileRows ||
                 config.getCols() != kTileCols ||
                 config.getThreads() != kThreads))
    return "the GEMM has 64x64 output tiles for 128 threads only";
  auto xType = cast<RankedTensorType>(op.getInput().getType());
  auto wType = cast<RankedTensorType>(op.getWeight().getType());
  if (!xType.isDynamicDim(0) && xType.getDimSize(0) < GemmGeometry::minRows)
    return "decode-shaped (a GEMV)";
  if (wType.isDynamicDim(0) || wType.isDynamicDim(1))
    return "dynamic weight shape";
  if (llvm::divideCeil(wType.getDimSize(0), kTileCols) > kMaxGridY)
    return "more column tiles than grid.y";
  return "";
}

void rotor::attn::lowering::populateWorkgroupTiledLinearPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerLinearToWorkgroupTiles,
               LowerLinearWithHeadEpilogueToWorkgroupTiles>(
      patterns.getContext());
}
