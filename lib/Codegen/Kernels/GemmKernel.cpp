//===- LowerLinearWorkgroupTiled.cpp - attn.linear as a tiled GEMM kernel -===//
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
// (see LowerSdpaWorkgroupTiled.cpp): block-mapped scf.forall, allocas,
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
// are LowerLinearWorkgroupGemv's.
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
constexpr int64_t kTileRows = GemmGeometry::rows, kTileCols = GemmGeometry::cols,
                  kSlice = 32;
/// Register micro-tile of each of the 128 threads.
constexpr int64_t kMicroRows = 4, kMicroCols = 8;
constexpr int64_t kThreads = GemmGeometry::threads;
static_assert(kThreads * kMicroRows * kMicroCols == kTileRows * kTileCols);

/// The phases that finish a tile once its sums are complete, given the
/// tile's first row (token) and column, the token count and the workgroup
/// buffer `sums` [tileRows, tileCols] (accumulate type).
using TileEpilogue = function_ref<void(ImplicitLocOpBuilder &wb, Value row0,
                                       Value col0, Value tokens, Value sums)>;

/// The GEMM kernel of `op` with tiles of `tileRows` x `tileCols` outputs
/// ((tileRows / 4) x (tileCols / 8) = 128 micro-tiles), finished by
/// `epilogue`.
void emitWorkgroupGemm(ImplicitLocOpBuilder &b, LinearOp op, int64_t tileRows,
                       int64_t tileCols, TileEpilogue epilogue) {
  auto xType = cast<RankedTensorType>(op.getInput().getType());
  auto wType = cast<RankedTensorType>(op.getWeight().getType());
  Type compute = op.getPrecision().getCompute();
  Type acc = op.getPrecision().getAccumulate();
  Type xElem = xType.getElementType(), wElem = wType.getElementType();
  const int64_t n = wType.getDimSize(0), e = wType.getDimSize(1);
  const int64_t colTiles = llvm::divideCeil(n, tileCols);
  auto idx = [&](OpBuilder &bb, Location loc, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(bb, loc, v);
  };
  auto ci0 = [&](int64_t v) { return idx(b, b.getLoc(), v); };
  Value x = readOnlyBuffer(b, op.getInput()),
        w = readOnlyBuffer(b, op.getWeight());
  Value bias = op.getBias() ? readOnlyBuffer(b, op.getBias()) : Value();
  Value tokens = memref::DimOp::create(b, x, 0);
  Value rowTiles = arith::CeilDivUIOp::create(b, tokens, ci0(tileRows));

  // 16-byte loads of a slice row, where rows are whole vectors and both
  // operands' rows start 16-byte aligned (decided once, on the host).
  auto vectorWidthOf = [&](Type elem) {
    int64_t vw = 16 / bytesOf(elem);
    return (e % vw || kSlice % vw) ? int64_t(1) : vw;
  };
  int64_t xWidth = vectorWidthOf(xElem), wWidth = vectorWidthOf(wElem);
  Value aligned = arith::ConstantOp::create(b, b.getBoolAttr(true));
  for (auto [src, vw] : {std::pair{x, xWidth}, std::pair{w, wWidth}})
    if (vw > 1)
      aligned = arith::AndIOp::create(b, aligned, rowsAligned16(b, src, vw));

  workgroupLoop(
      b, {rowTiles, b.getIndexAttr(colTiles)},
      [&](ImplicitLocOpBuilder &wb, ValueRange ivs) {
        Location loc = wb.getLoc();
        auto c = [&](int64_t v) { return idx(wb, wb.getLoc(), v); };
        Value row0 = arith::MulIOp::create(wb, ivs[0], c(tileRows));
        Value col0 = arith::MulIOp::create(wb, ivs[1], c(tileCols));
        Value xs = memref::AllocaOp::create(
            wb, MemRefType::get({tileRows, kSlice + 1}, carrierType(xElem)));
        Value ws = memref::AllocaOp::create(
            wb, MemRefType::get({tileCols, kSlice + 1}, carrierType(wElem)));
        Value sums = memref::AllocaOp::create(
            wb, MemRefType::get({tileRows, tileCols}, acc));

        // Sums start at the bias, widened exactly (or 0).
        threadPhase(
            wb, loc, tileRows * tileCols,
            [&](ImplicitLocOpBuilder &ib, Value it) {
              auto ci = [&](int64_t v) { return idx(ib, ib.getLoc(), v); };
              Value i = arith::DivUIOp::create(ib, it, ci(tileCols));
              Value j = arith::RemUIOp::create(ib, it, ci(tileCols));
              Value init = floatConst(ib, ib.getLoc(), acc, 0.0);
              if (bias) {
                Value col = arith::AddIOp::create(ib, col0, j);
                Value inRange = arith::CmpIOp::create(
                    ib, arith::CmpIPredicate::ult, col, ci(n));
                auto read = scf::IfOp::create(
                    ib, inRange,
                    [&](OpBuilder &tb, Location tl) {
                      Value v =
                          memref::LoadOp::create(tb, tl, bias, ValueRange{col});
                      scf::YieldOp::create(tb, tl, castFloat(tb, tl, v, acc));
                    },
                    [&](OpBuilder &tb, Location tl) {
                      scf::YieldOp::create(tb, tl,
                                           floatConst(tb, tl, acc, 0.0));
                    });
                init = read.getResult(0);
              }
              memref::StoreOp::create(ib, init, sums, ValueRange{i, j});
            });

        // Stage rows [first, first + count) x slice [k0, k0 + kSlice) of
        // `src` (`limit` rows) into `dst`, zeros past the edges (a vector is
        // whole or absent: e is a multiple of vw).
        auto stage = [&](OpBuilder &sb0, Location sl0, Value src, Value dst,
                         Value first, int64_t count, Value limit, Value k0,
                         int64_t vw) {
          stageTile(
              sb0, sl0, src, dst, count, kSlice, vw, vw > 1 ? aligned : Value(),
              [&](OpBuilder &ib, Location il, Value r, Value kk) {
                return SmallVector<Value>{
                    arith::AddIOp::create(ib, il, first, r),
                    arith::AddIOp::create(ib, il, k0, kk)};
              },
              [&](OpBuilder &ib, Location il, Value r, Value kk) -> Value {
                return arith::AndIOp::create(
                    ib, il,
                    arith::CmpIOp::create(
                        ib, il, arith::CmpIPredicate::ult,
                        arith::AddIOp::create(ib, il, first, r), limit),
                    arith::CmpIOp::create(ib, il, arith::CmpIPredicate::ult,
                                          arith::AddIOp::create(ib, il, k0, kk),
                                          idx(ib, il, e)));
              });
        };

        scf::ForOp::create(
            wb, c(0), c(e), c(kSlice), ValueRange{},
            [&](OpBuilder &lb, Location ll, Value k0, ValueRange) {
              stage(lb, ll, x, xs, row0, tileRows, tokens, k0, xWidth);
              stage(lb, ll, w, ws, col0, tileCols, idx(lb, ll, n), k0, wWidth);
              // Thread (ib, jb): rows ib*4 + r, columns jb + c*8.
              int64_t colGroups = tileCols / kMicroCols;
              threadPhase(
                  lb, ll, kThreads, [&](ImplicitLocOpBuilder &ib, Value it) {
                    auto ci = [&](int64_t v) {
                      return idx(ib, ib.getLoc(), v);
                    };
                    MicroTile tile =
                        microTile(ib, it, colGroups, kMicroRows, kMicroCols);
                    ArrayRef<Value> rows = tile.rows, cols = tile.cols;
                    SmallVector<Value> init;
                    for (Value i : rows)
                      for (Value j : cols)
                        init.push_back(
                            memref::LoadOp::create(ib, sums, ValueRange{i, j}));
                    // The slice's last columns past e are zeros: stop at e.
                    Value kEnd = arith::MinUIOp::create(
                        ib, ci(kSlice), arith::SubIOp::create(ib, ci(e), k0));
                    auto loop = scf::ForOp::create(
                        ib, ci(0), kEnd, ci(1), init,
                        [&](OpBuilder &fb, Location fl, Value kk,
                            ValueRange s) {
                          SmallVector<Value> xv, wv, next;
                          for (Value i : rows)
                            xv.push_back(
                                fromCarrier(fb, fl,
                                            memref::LoadOp::create(
                                                fb, fl, xs, ValueRange{i, kk}),
                                            xElem));
                          for (Value j : cols)
                            wv.push_back(
                                fromCarrier(fb, fl,
                                            memref::LoadOp::create(
                                                fb, fl, ws, ValueRange{j, kk}),
                                            wElem));
                          for (int64_t r = 0; r < kMicroRows; ++r)
                            for (int64_t m = 0; m < kMicroCols; ++m)
                              next.push_back(multiplyAccumulate(
                                  fb, fl, s[r * kMicroCols + m], xv[r], wv[m],
                                  compute, acc));
                          scf::YieldOp::create(fb, fl, next);
                        });
                    for (int64_t r = 0; r < kMicroRows; ++r)
                      for (int64_t m = 0; m < kMicroCols; ++m)
                        memref::StoreOp::create(
                            ib, loop.getResult(r * kMicroCols + m), sums,
                            ValueRange{rows[r], cols[m]});
                  });
              scf::YieldOp::create(lb, ll);
            });

        epilogue(wb, row0, col0, tokens, sums);
      });
}

/// The checks every workgroup GEMM needs: `op`'s config names this GEMM
/// (whose geometry is fixed) and the shapes allow it.
LogicalResult matchGemm(LinearOp op, PatternRewriter &rewriter) {
  KernelConfigAttr config = getKernelConfig(op);
  if (!config || config.getStrategy() != KernelStrategy::Gemm)
    return failure();
  if (config.getRows() != kTileRows || config.getCols() != kTileCols ||
      config.getThreads() != kThreads)
    return rewriter.notifyMatchFailure(
        op, "the GEMM has 64x64 output tiles for 128 threads only");
  if (std::string why = gemmObstacle(op); !why.empty())
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
    if (headsType.getDimSize(1) > 65535)
      return rewriter.notifyMatchFailure(linear, "more heads than grid.y");
    int64_t rows = kThreads * kMicroRows * kMicroCols / d;
    auto xType = cast<RankedTensorType>(linear.getInput().getType());
    auto wType = cast<RankedTensorType>(linear.getWeight().getType());
    Type acc = linear.getPrecision().getAccumulate();
    int64_t bytes = rows * d * bytesOf(acc) +
                    (rows * bytesOf(carrierType(xType.getElementType())) +
                     d * bytesOf(carrierType(wType.getElementType()))) *
                        (kSlice + 1);
    if (rows % kMicroRows || bytes > 48 * 1024)
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

std::string rotor::attn::lowering::gemmObstacle(LinearOp op) {
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
