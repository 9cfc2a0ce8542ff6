//===- LowerSdpaWorkgroupTiled.cpp - attn.sdpa as workgroup-tiled kernels -===//
//
// The loop-level SDPA (LowerSdpa.cpp) is a sequence of whole-tensor loop
// nests per KV tile; mapped one thread per output element, every score is
// a 128-long dot product read straight from global memory, and each tile is
// a dozen launches. This lowering writes SDPA the way FlashAttention-2 runs
// on a GPU instead: one workgroup per (row tile, KV head) keeps its rows'
// running max m, sum l and output accumulator in workgroup memory while it
// walks the KV tiles, and each KV tile is staged once into workgroup memory
// and reused by every row of the workgroup. A row is a (query, query head)
// pair of the KV head's GQA group, numbered t * group + g, so the group's
// query heads share every K/V load (7x fewer for Qwen2.5's 28/4 heads).
//
// The form is still loops, so the host runs it too (and the host tests
// check its numbers): an `scf.forall` mapped to `#gpu.block`s whose body
// allocates the workgroup buffers (`memref.alloca` in an alloca scope) and
// runs a fixed sequence of `scf.forall`s mapped to `#gpu.thread<x>`, each a
// phase that all threads finish before the next starts (a barrier on the
// GPU, plain sequence on the host). `rotor-map-workgroup-loops-to-gpu`
// turns the block loop into a `gpu.launch`, the allocas into workgroup
// attributions and each phase into a block-strided loop and a barrier.
//
// Per KV tile of B keys: load K (vector loads when aligned), scores as 2x4
// register micro-tiles, row max / exp2 / sum (one thread per row), load V
// into the same buffer, output update as 2x4 micro-tiles. Row strides of
// the K/V and score buffers are padded by one element so that threads of a
// warp reading one column hit distinct banks. The arithmetic, its types and
// the order of every reduction are those of LowerSdpa; only the tile size
// differs (B, chosen to fit 48 KiB of static workgroup memory).
//
// K or V produced by an attn.dequantize that only the SDPA reads is staged
// from the quantized codes and scales and dequantized on the way into the
// tile (KVSource): the dequantized cache is never written.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Kernels/Kernels.h"
#include "WorkgroupKernel.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"

#include <limits>
#include <numbers>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// Register micro-tile of the score and output phases: rows x columns.
constexpr int64_t kMicroRows = 2, kMicroCols = 4;

/// Bytes of the workgroup buffers: K/V [BK][max(D, Dv) + 1], scores
/// [BQ][BK + 1], output [BQ][Dv], m/l/alpha [BQ], positions [BQ].
int64_t workgroupBytes(SdpaOp op, SdpaTiles tiles) {
  auto qType = cast<RankedTensorType>(op.getQuery().getType());
  auto kType = cast<RankedTensorType>(op.getKey().getType());
  auto vType = cast<RankedTensorType>(op.getValue().getType());
  int64_t d = qType.getDimSize(2), dv = vType.getDimSize(2);
  Type storage = kType.getElementType(), acc = op.getPrecision().getAccumulate();
  return tiles.keys * (std::max(d, dv) + 1) * bytesOf(storage) +
         tiles.rows * (tiles.keys + 1) * bytesOf(acc) +
         tiles.rows * dv * bytesOf(acc) + 3 * tiles.rows * bytesOf(acc) +
         tiles.rows * 8;
}

/// The static row count ((query, query head) pairs per KV head), if any.
std::optional<int64_t> staticRows(SdpaOp op) {
  auto qType = cast<RankedTensorType>(op.getQuery().getType());
  auto kType = cast<RankedTensorType>(op.getKey().getType());
  if (qType.isDynamicDim(0))
    return std::nullopt;
  return qType.getDimSize(0) * (qType.getDimSize(1) / kType.getDimSize(1));
}

} // namespace

DequantizeOp rotor::attn::lowering::dequantizationReadBySdpa(Value kv) {
  auto dequant = kv.getDefiningOp<DequantizeOp>();
  return dequant && dequant->hasOneUse() ? dequant : DequantizeOp();
}

std::optional<SdpaTiles>
rotor::attn::lowering::largestWorkgroupSdpaTiles(SdpaOp op) {
  // BQ = BK = B, except that BQ is at most the call's rows (rounded up to a
  // power of two, at least 2) when it has only that many, as decode has.
  std::optional<int64_t> rows = staticRows(op);
  for (int64_t keys : {64, 32, 16, 8}) {
    int64_t bq = keys;
    if (rows)
      bq = std::min<int64_t>(
          keys, std::max<int64_t>(2, llvm::PowerOf2Ceil(uint64_t(*rows))));
    if (workgroupBytes(op, {bq, keys}) <= kStaticWorkgroupBytes)
      return SdpaTiles{bq, keys};
  }
  return std::nullopt;
}

std::string rotor::attn::lowering::workgroupSdpaObstacle(SdpaOp op) {
  auto kType = cast<RankedTensorType>(op.getKey().getType());
  auto vType = cast<RankedTensorType>(op.getValue().getType());
  if (vType.getElementType() != kType.getElementType())
    return "K and V have different element types";
  if (kType.getDimSize(1) > kMaxGridY)
    return "more than 65535 KV heads (grid.y)";
  if (!largestWorkgroupSdpaTiles(op)) {
    auto qType = cast<RankedTensorType>(op.getQuery().getType());
    return "head dims " + std::to_string(qType.getDimSize(2)) + "/" +
           std::to_string(vType.getDimSize(2)) +
           " leave no tile within 48 KiB of shared memory";
  }
  return "";
}

std::string rotor::attn::lowering::workgroupSdpaObstacle(SdpaOp op,
                                                         SdpaTiles tiles) {
  if (std::string why = workgroupSdpaObstacle(op); !why.empty())
    return why;
  if (tiles.rows < kMicroRows || tiles.rows % kMicroRows)
    return "rows " + std::to_string(tiles.rows) + " is not a multiple of " +
           std::to_string(kMicroRows);
  if (tiles.keys < kMicroCols || tiles.keys % kMicroCols)
    return "keys " + std::to_string(tiles.keys) + " is not a multiple of " +
           std::to_string(kMicroCols);
  if (int64_t bytes = workgroupBytes(op, tiles); bytes > kStaticWorkgroupBytes)
    return "tiles of " + std::to_string(tiles.rows) + " rows and " +
           std::to_string(tiles.keys) + " keys need " + std::to_string(bytes) +
           " bytes of shared memory, more than 48 KiB";
  return "";
}

namespace {

/// Where the tiles of K or V come from: the operand's values or, when the
/// operand is a dequantization only the SDPA reads, its codes and scales
/// (dequantized while staging, so that the dequantized cache never exists
/// in memory: 1 byte per element is read instead of 2 or 4).
struct KVSource {
  Value data;
  DequantizeOp dequant;
  Value scales, table;
  /// Elements per 16-byte vector load of `data`, or 1.
  int64_t vectorWidth = 1;
  /// Whether `data`'s rows are 16-byte aligned (null when vectorWidth is 1).
  Value aligned;
};

KVSource kvSource(ImplicitLocOpBuilder &b, Value operand) {
  KVSource src;
  Value values = operand;
  if (DequantizeOp dequant = dequantizationReadBySdpa(operand)) {
    src.dequant = dequant;
    values = dequant.getCodes();
    src.scales = readOnlyBuffer(b, dequant.getScales());
    src.table = codebookTable(b, dequant.getFormat());
  }
  src.data = readOnlyBuffer(b, values);
  auto type = cast<MemRefType>(src.data.getType());
  // 16-byte loads when a row is whole vectors and rows are aligned: the
  // latter decided once, on the host.
  int64_t width = 16 / bytesOf(type.getElementType());
  if (type.getDimSize(2) % width == 0) {
    src.vectorWidth = width;
    src.aligned = rowsAligned16(b, src.data, width);
  }
  return src;
}

struct LowerSdpaToWorkgroupTiles : OpRewritePattern<SdpaOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(SdpaOp op,
                                PatternRewriter &rewriter) const override {
    auto qType = cast<RankedTensorType>(op.getQuery().getType());
    auto kType = cast<RankedTensorType>(op.getKey().getType());
    auto vType = cast<RankedTensorType>(op.getValue().getType());
    auto resultType = cast<RankedTensorType>(op.getType());
    Type compute = op.getPrecision().getCompute();
    Type acc = op.getPrecision().getAccumulate();
    Type storage = resultType.getElementType();
    Type kvStorage = kType.getElementType();
    int64_t hq = qType.getDimSize(1), hkv = kType.getDimSize(1);
    int64_t d = qType.getDimSize(2), dv = vType.getDimSize(2);
    KernelConfigAttr config = getKernelConfig(op);
    if (!config || config.getStrategy() != KernelStrategy::WorkgroupTiled)
      return failure();
    SdpaTiles tiles{config.getRows(), config.getKeys()};
    if (std::string why = workgroupSdpaObstacle(op, tiles); !why.empty())
      return rewriter.notifyMatchFailure(op, why);
    const int64_t group = hq / hkv;
    const int64_t rowTile = tiles.rows, keyTile = tiles.keys;
    const int64_t targetWorkgroups = config.getWorkgroups();
    const int64_t width = std::max(d, dv) + 1; // padded K/V row
    const int64_t sWidth = keyTile + 1;        // padded score row

    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Type i64 = b.getI64Type();
    double scale2 = op.getEffectiveScale() * std::numbers::log2e;
    double negInf = -std::numeric_limits<double>::infinity();
    auto idx = [&](OpBuilder &bb, Location loc, int64_t n) -> Value {
      return arith::ConstantIndexOp::create(bb, loc, n);
    };

    Value q = readOnlyBuffer(b, op.getQuery());
    KVSource k = kvSource(b, op.getKey()), v = kvSource(b, op.getValue());
    Value positions =
        op.getPositions() ? readOnlyBuffer(b, op.getPositions()) : Value();
    Value tq = memref::DimOp::create(b, q, 0);
    Value tk = memref::DimOp::create(b, k.data, 0);
    Value out = memref::AllocOp::create(
        b, MemRefType::get(resultType.getShape(), storage),
        resultType.isDynamicDim(0) ? ValueRange{tq} : ValueRange{});
    // Rows t * group + g: query t, query head kvHead * group + g.
    Value rowCount = arith::MulIOp::create(b, tq, idx(b, b.getLoc(), group));
    Value rowTiles =
        arith::CeilDivUIOp::create(b, rowCount, idx(b, b.getLoc(), rowTile));

    // The KV length splits into `splits` chunks of whole KV tiles, each a
    // workgroup of its own (flash-decoding), when there are fewer than
    // `targetWorkgroups` row tiles x KV heads. Each then leaves its rows'
    // partial max, sum and output in global memory for one combine.
    auto ci0 = [&](int64_t n) { return idx(b, b.getLoc(), n); };
    Value keyTiles = arith::CeilDivUIOp::create(b, tk, ci0(keyTile));
    Value wanted = arith::MaxUIOp::create(
        b, ci0(1),
        arith::DivUIOp::create(
            b, ci0(targetWorkgroups),
            arith::MulIOp::create(
                b, arith::MaxUIOp::create(b, rowTiles, ci0(1)), ci0(hkv))));
    Value splitsWanted = arith::MaxUIOp::create(
        b, ci0(1), arith::MinUIOp::create(b, keyTiles, wanted));
    Value tilesPerSplit = arith::MaxUIOp::create(
        b, ci0(1), arith::CeilDivUIOp::create(b, keyTiles, splitsWanted));
    Value splits = arith::MaxUIOp::create(
        b, ci0(1), arith::CeilDivUIOp::create(b, keyTiles, tilesPerSplit));
    Value chunk = arith::MulIOp::create(b, tilesPerSplit, ci0(keyTile));
    Value split =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, splits, ci0(1));
    // Partials, [splits][Tq][Hq] and [splits][Tq][Hq][Dv]; empty without a
    // split.
    Value partialCount = arith::SelectOp::create(b, split, splits, ci0(0));
    int64_t dyn = ShapedType::kDynamic;
    Value partMax = memref::AllocOp::create(
        b, MemRefType::get({dyn, dyn, hq}, acc), ValueRange{partialCount, tq});
    Value partSum = memref::AllocOp::create(
        b, MemRefType::get({dyn, dyn, hq}, acc), ValueRange{partialCount, tq});
    Value partOut =
        memref::AllocOp::create(b, MemRefType::get({dyn, dyn, hq, dv}, acc),
                                ValueRange{partialCount, tq});

    workgroupLoop(
        b, {rowTiles, b.getIndexAttr(hkv), splits},
        [&](ImplicitLocOpBuilder &w, ValueRange ivs) {
          Location loc = w.getLoc();
          auto c = [&](int64_t n) { return idx(w, w.getLoc(), n); };
          Value kvHead = ivs[1], splitIndex = ivs[2];
          Value row0 = arith::MulIOp::create(w, ivs[0], c(rowTile));
          // The query and query head of a row.
          auto queryOf = [&](OpBuilder &qb, Location ql, Value row) {
            return arith::DivUIOp::create(qb, ql, row, idx(qb, ql, group))
                .getResult();
          };
          auto headOf = [&](OpBuilder &qb, Location ql, Value row) {
            return arith::AddIOp::create(
                       qb, ql,
                       arith::MulIOp::create(qb, ql, kvHead,
                                             idx(qb, ql, group)),
                       arith::RemUIOp::create(qb, ql, row, idx(qb, ql, group)))
                .getResult();
          };
          auto workgroupBuffer = [&](ArrayRef<int64_t> shape,
                                     Type type) -> Value {
            return memref::AllocaOp::create(w, MemRefType::get(shape, type));
          };
          Value kvTile =
              workgroupBuffer({keyTile, width}, carrierType(kvStorage));
          Value scores = workgroupBuffer({rowTile, sWidth}, acc);
          Value outAcc = workgroupBuffer({rowTile, dv}, acc);
          Value rowMax = workgroupBuffer({rowTile}, acc),
                rowSum = workgroupBuffer({rowTile}, acc),
                rowScale = workgroupBuffer({rowTile}, acc);
          Value rowPos = workgroupBuffer({rowTile}, i64);

          // Positions of the workgroup's rows (none past the last query:
          // INT64_MIN masks every key), empty max, sum and output.
          threadPhase(w, loc, rowTile, [&](ImplicitLocOpBuilder &ib, Value i) {
            Value row = arith::AddIOp::create(ib, row0, i);
            Value inRange = arith::CmpIOp::create(ib, arith::CmpIPredicate::ult,
                                                  row, rowCount);
            auto pos = scf::IfOp::create(
                ib, inRange,
                [&](OpBuilder &tb, Location tl) {
                  Value t = queryOf(tb, tl, row);
                  Value p;
                  if (positions) {
                    p = memref::LoadOp::create(tb, tl, positions,
                                               ValueRange{t});
                    if (p.getType() != i64)
                      p = arith::ExtSIOp::create(tb, tl, i64, p);
                  } else {
                    p = arith::IndexCastOp::create(
                        tb, tl, i64,
                        arith::AddIOp::create(
                            tb, tl, arith::SubIOp::create(tb, tl, tk, tq), t));
                  }
                  scf::YieldOp::create(tb, tl, p);
                },
                [&](OpBuilder &tb, Location tl) {
                  scf::YieldOp::create(
                      tb, tl,
                      ValueRange{arith::ConstantOp::create(
                          tb, tl,
                          tb.getI64IntegerAttr(
                              std::numeric_limits<int64_t>::min()))});
                });
            memref::StoreOp::create(ib, pos.getResult(0), rowPos, i);
            memref::StoreOp::create(
                ib, floatConst(ib, ib.getLoc(), acc, negInf), rowMax, i);
            memref::StoreOp::create(ib, floatConst(ib, ib.getLoc(), acc, 0.0),
                                    rowSum, i);
          });
          threadPhase(
              w, loc, rowTile * dv, [&](ImplicitLocOpBuilder &ib, Value e) {
                Value i =
                    arith::DivUIOp::create(ib, e, idx(ib, ib.getLoc(), dv));
                Value col =
                    arith::RemUIOp::create(ib, e, idx(ib, ib.getLoc(), dv));
                memref::StoreOp::create(ib,
                                        floatConst(ib, ib.getLoc(), acc, 0.0),
                                        outAcc, ValueRange{i, col});
              });

          // Keys j < bound can be visible to some row of the workgroup; the
          // same value in every thread, so the KV loop is uniform.
          Value bound = tk;
          if (op.getCausal()) {
            Value lowest = arith::ConstantOp::create(
                w, w.getI64IntegerAttr(std::numeric_limits<int64_t>::min()));
            auto maxLoop = scf::ForOp::create(
                w, c(0), c(rowTile), c(1), ValueRange{lowest},
                [&](OpBuilder &lb, Location ll, Value i, ValueRange carried) {
                  Value p =
                      memref::LoadOp::create(lb, ll, rowPos, ValueRange{i});
                  scf::YieldOp::create(lb, ll,
                                       ValueRange{arith::MaxSIOp::create(
                                           lb, ll, p, carried[0])});
                });
            Value maxPos = maxLoop.getResult(0);
            // INT64_MIN + 1 would not overflow, but a row past the end has
            // no key: clamp at 0 before adding.
            Value visible = arith::AddIOp::create(
                w,
                arith::MaxSIOp::create(
                    w, maxPos,
                    arith::ConstantOp::create(w, w.getI64IntegerAttr(-1))),
                arith::ConstantOp::create(w, w.getI64IntegerAttr(1)));
            bound = arith::MinSIOp::create(
                w, arith::IndexCastOp::create(w, w.getIndexType(), visible),
                tk);
          }

          // Stage rows [j0, j0 + tile) of K or V (head kvHead, `cols`
          // elements) into kvTile; rows past `bound` are zeros, so that a
          // masked key contributes exactly 0 * 0.
          // A dequantized operand is staged from its codes, each element
          // dequantized with its block's scale as it is stored.
          auto stage = [&](OpBuilder &ob2, Location l2, KVSource &src,
                           Value j0) {
            int64_t cols = cast<MemRefType>(src.data.getType()).getDimSize(2);
            auto dequantize = [&](OpBuilder &sb, Location sl, Value code,
                                  Value j, Value e) -> Value {
              KVBlockFormatAttr format = src.dequant.getFormat();
              Value block =
                  arith::DivUIOp::create(sb, sl, e,
                                         arith::ConstantIndexOp::create(
                                             sb, sl, format.getBlockSize()));
              Value scale = memref::LoadOp::create(
                  sb, sl, src.scales,
                  ValueRange{arith::AddIOp::create(sb, sl, j0, j), kvHead,
                             block});
              return dequantizeElement(sb, sl, format, src.table, code, scale,
                                       src.dequant.getPrecision().getCompute(),
                                       kvStorage);
            };
            stageTile(
                ob2, l2, src.data, kvTile, keyTile, cols, src.vectorWidth,
                src.aligned,
                [&](OpBuilder &sb, Location sl, Value j, Value e) {
                  return SmallVector<Value>{
                      arith::AddIOp::create(sb, sl, j0, j), kvHead, e};
                },
                [&](OpBuilder &sb, Location sl, Value j, Value) -> Value {
                  return arith::CmpIOp::create(
                      sb, sl, arith::CmpIPredicate::ult,
                      arith::AddIOp::create(sb, sl, j0, j), bound);
                },
                src.dequant ? function_ref<Value(OpBuilder &, Location, Value,
                                                 Value, Value)>(dequantize)
                            : nullptr,
                kvStorage);
          };

          bool causal = op.getCausal();
          Value chunkStart = arith::MulIOp::create(w, splitIndex, chunk);
          Value chunkEnd = arith::MinUIOp::create(
              w, bound, arith::AddIOp::create(w, chunkStart, chunk));
          scf::ForOp::create(
              w, chunkStart, chunkEnd, c(keyTile), ValueRange{},
              [&](OpBuilder &lb, Location ll, Value j0, ValueRange) {
                // Scores: thread (ib, jb) owns rows ib*2 + r and keys
                // jb + n * (tile / 4), so a warp reads distinct K rows.
                stage(lb, ll, k, j0);
                int64_t keyGroups = keyTile / kMicroCols;
                threadPhase(
                    lb, ll, (rowTile / kMicroRows) * keyGroups,
                    [&](ImplicitLocOpBuilder &ib, Value it) {
                      auto ci = [&](int64_t n) {
                        return idx(ib, ib.getLoc(), n);
                      };
                      MicroTile tile =
                          microTile(ib, it, keyGroups, kMicroRows, kMicroCols);
                      ArrayRef<Value> rows = tile.rows, keys = tile.cols;
                      Value lastRow =
                          arith::SubIOp::create(ib, rowCount, ci(1));
                      SmallVector<Value> qRows, qHeads;
                      for (Value i : rows) {
                        // A row past the last reads the last one; its scores
                        // are masked.
                        Value row = arith::MinUIOp::create(
                            ib, arith::AddIOp::create(ib, row0, i), lastRow);
                        qRows.push_back(queryOf(ib, ib.getLoc(), row));
                        qHeads.push_back(headOf(ib, ib.getLoc(), row));
                      }
                      SmallVector<Value> zeros(
                          kMicroRows * kMicroCols,
                          floatConst(ib, ib.getLoc(), acc, 0.0));
                      auto dot = scf::ForOp::create(
                          ib, ci(0), ci(d), ci(1), zeros,
                          [&](OpBuilder &db, Location dl, Value e,
                              ValueRange sums) {
                            SmallVector<Value> qs, ks, next;
                            for (auto [t, h] : llvm::zip(qRows, qHeads))
                              qs.push_back(memref::LoadOp::create(
                                  db, dl, q, ValueRange{t, h, e}));
                            for (Value j : keys)
                              ks.push_back(fromCarrier(
                                  db, dl,
                                  memref::LoadOp::create(db, dl, kvTile,
                                                         ValueRange{j, e}),
                                  kvStorage));
                            for (int64_t r = 0; r < kMicroRows; ++r)
                              for (int64_t n = 0; n < kMicroCols; ++n)
                                next.push_back(multiplyAccumulate(
                                    db, dl, sums[r * kMicroCols + n], qs[r],
                                    ks[n], compute, acc));
                            scf::YieldOp::create(db, dl, next);
                          });
                      Value j0i64 = arith::IndexCastOp::create(ib, i64, j0);
                      Value bound64 =
                          arith::IndexCastOp::create(ib, i64, bound);
                      for (int64_t r = 0; r < kMicroRows; ++r) {
                        Value pos = memref::LoadOp::create(ib, rowPos, rows[r]);
                        for (int64_t n = 0; n < kMicroCols; ++n) {
                          Value s = arith::MulFOp::create(
                              ib, dot.getResult(r * kMicroCols + n),
                              floatConst(ib, ib.getLoc(), acc, scale2));
                          Value key = arith::AddIOp::create(
                              ib, j0i64,
                              arith::IndexCastOp::create(ib, i64, keys[n]));
                          Value hidden = arith::CmpIOp::create(
                              ib, arith::CmpIPredicate::sge, key, bound64);
                          if (causal)
                            hidden = arith::OrIOp::create(
                                ib, hidden,
                                arith::CmpIOp::create(
                                    ib, arith::CmpIPredicate::sgt, key, pos));
                          s = arith::SelectOp::create(
                              ib, hidden,
                              floatConst(ib, ib.getLoc(), acc, negInf), s);
                          memref::StoreOp::create(ib, s, scores,
                                                  ValueRange{rows[r], keys[n]});
                        }
                      }
                    });

                // Row statistics: new max, probabilities in place of the
                // scores, rescaled sum, and the rescale of the output.
                threadPhase(
                    lb, ll, rowTile, [&](ImplicitLocOpBuilder &ib, Value i) {
                      auto ci = [&](int64_t n) {
                        return idx(ib, ib.getLoc(), n);
                      };
                      Value mOld = memref::LoadOp::create(ib, rowMax, i);
                      auto maxLoop = scf::ForOp::create(
                          ib, ci(0), ci(keyTile), ci(1), ValueRange{mOld},
                          [&](OpBuilder &mb, Location ml, Value j,
                              ValueRange m) {
                            Value s = memref::LoadOp::create(mb, ml, scores,
                                                             ValueRange{i, j});
                            scf::YieldOp::create(
                                mb, ml,
                                ValueRange{arith::MaximumFOp::create(mb, ml, s,
                                                                     m[0])});
                          });
                      Value mNew = maxLoop.getResult(0);
                      Value shift = finiteMax(ib, ib.getLoc(), mNew, acc);
                      Value alpha = math::Exp2Op::create(
                          ib, arith::SubFOp::create(ib, mOld, shift));
                      Value lScaled = arith::MulFOp::create(
                          ib, memref::LoadOp::create(ib, rowSum, i), alpha);
                      auto sumLoop = scf::ForOp::create(
                          ib, ci(0), ci(keyTile), ci(1), ValueRange{lScaled},
                          [&](OpBuilder &sb, Location sl, Value j,
                              ValueRange l) {
                            Value s = memref::LoadOp::create(sb, sl, scores,
                                                             ValueRange{i, j});
                            Value p = math::Exp2Op::create(
                                sb, sl,
                                arith::SubFOp::create(sb, sl, s, shift));
                            memref::StoreOp::create(sb, sl, p, scores,
                                                    ValueRange{i, j});
                            scf::YieldOp::create(
                                sb, sl,
                                ValueRange{
                                    arith::AddFOp::create(sb, sl, p, l[0])});
                          });
                      memref::StoreOp::create(ib, mNew, rowMax, i);
                      memref::StoreOp::create(ib, sumLoop.getResult(0), rowSum,
                                              i);
                      memref::StoreOp::create(ib, alpha, rowScale, i);
                    });

                // Output: thread (ib, eb) owns rows ib*2 + r and columns
                // eb + n * (Dv / 4), so a warp reads consecutive V columns.
                stage(lb, ll, v, j0);
                int64_t microCols = dv % kMicroCols ? 1 : kMicroCols;
                int64_t colGroups = dv / microCols;
                threadPhase(
                    lb, ll, (rowTile / kMicroRows) * colGroups,
                    [&](ImplicitLocOpBuilder &ib, Value it) {
                      auto ci = [&](int64_t n) {
                        return idx(ib, ib.getLoc(), n);
                      };
                      MicroTile tile =
                          microTile(ib, it, colGroups, kMicroRows, microCols);
                      ArrayRef<Value> rows = tile.rows, cols = tile.cols;
                      SmallVector<Value> init;
                      for (Value i : rows) {
                        Value alpha = memref::LoadOp::create(ib, rowScale, i);
                        for (Value e : cols)
                          init.push_back(arith::MulFOp::create(
                              ib,
                              memref::LoadOp::create(ib, outAcc,
                                                     ValueRange{i, e}),
                              alpha));
                      }
                      auto accLoop = scf::ForOp::create(
                          ib, ci(0), ci(keyTile), ci(1), init,
                          [&](OpBuilder &ab, Location al, Value j,
                              ValueRange sums) {
                            SmallVector<Value> ps, ys, next;
                            for (Value i : rows)
                              ps.push_back(memref::LoadOp::create(
                                  ab, al, scores, ValueRange{i, j}));
                            for (Value e : cols)
                              ys.push_back(castFloat(
                                  ab, al,
                                  castFloat(ab, al,
                                            fromCarrier(ab, al,
                                                        memref::LoadOp::create(
                                                            ab, al, kvTile,
                                                            ValueRange{j, e}),
                                                        kvStorage),
                                            compute),
                                  acc));
                            for (size_t r = 0; r < rows.size(); ++r)
                              for (size_t n = 0; n < cols.size(); ++n)
                                next.push_back(arith::AddFOp::create(
                                    ab, al, sums[r * cols.size() + n],
                                    arith::MulFOp::create(ab, al, ps[r],
                                                          ys[n])));
                            scf::YieldOp::create(ab, al, next);
                          });
                      for (size_t r = 0; r < rows.size(); ++r)
                        for (size_t n = 0; n < cols.size(); ++n)
                          memref::StoreOp::create(
                              ib, accLoop.getResult(r * cols.size() + n),
                              outAcc, ValueRange{rows[r], cols[n]});
                    });
                scf::YieldOp::create(lb, ll);
              });

          // Normalize and write the rows that exist, or, split, leave
          // their partials for the combine.
          threadPhase(
              w, loc, rowTile * dv, [&](ImplicitLocOpBuilder &ib, Value it) {
                auto ci = [&](int64_t n) { return idx(ib, ib.getLoc(), n); };
                Value i = arith::DivUIOp::create(ib, it, ci(dv));
                Value e = arith::RemUIOp::create(ib, it, ci(dv));
                Value row = arith::AddIOp::create(ib, row0, i);
                Value inRange = arith::CmpIOp::create(
                    ib, arith::CmpIPredicate::ult, row, rowCount);
                scf::IfOp::create(ib, inRange, [&](OpBuilder &tb, Location tl) {
                  Value t = queryOf(tb, tl, row), head = headOf(tb, tl, row);
                  Value o =
                      memref::LoadOp::create(tb, tl, outAcc, ValueRange{i, e});
                  Value l =
                      memref::LoadOp::create(tb, tl, rowSum, ValueRange{i});
                  scf::IfOp::create(
                      tb, tl, split,
                      [&](OpBuilder &pb, Location pl) {
                        memref::StoreOp::create(
                            pb, pl, o, partOut,
                            ValueRange{splitIndex, t, head, e});
                        Value first = arith::CmpIOp::create(
                            pb, pl, arith::CmpIPredicate::eq, e,
                            idx(pb, pl, 0));
                        scf::IfOp::create(
                            pb, pl, first, [&](OpBuilder &fb, Location fl) {
                              memref::StoreOp::create(
                                  fb, fl,
                                  memref::LoadOp::create(fb, fl, rowMax,
                                                         ValueRange{i}),
                                  partMax, ValueRange{splitIndex, t, head});
                              memref::StoreOp::create(
                                  fb, fl, l, partSum,
                                  ValueRange{splitIndex, t, head});
                              scf::YieldOp::create(fb, fl);
                            });
                        scf::YieldOp::create(pb, pl);
                      },
                      [&](OpBuilder &nb, Location nl) {
                        memref::StoreOp::create(
                            nb, nl,
                            normalizedElement(nb, nl, o, l, acc, storage), out,
                            ValueRange{t, head, e});
                        scf::YieldOp::create(nb, nl);
                      });
                  scf::YieldOp::create(tb, tl);
                });
              });
        });

    // Combine the splits: each rescaled to the largest max (the exp2
    // domain, as in the tiles), summed in split order, then normalized.
    scf::IfOp::create(b, split, [&](OpBuilder &cb, Location cl) {
      scf::ForallOp::create(
          cb, cl,
          ArrayRef<OpFoldResult>{tq, cb.getIndexAttr(hq), cb.getIndexAttr(dv)},
          ValueRange{}, std::nullopt,
          [&](OpBuilder &fb, Location fl, ValueRange ivs) {
            ImplicitLocOpBuilder ib(fl, fb);
            Value t = ivs[0], h = ivs[1], e = ivs[2];
            auto ci = [&](int64_t n) { return idx(ib, ib.getLoc(), n); };
            auto maxLoop = scf::ForOp::create(
                ib, ci(0), splits, ci(1),
                ValueRange{floatConst(ib, ib.getLoc(), acc, negInf)},
                [&](OpBuilder &lb, Location ll, Value sIdx, ValueRange m) {
                  Value ms = memref::LoadOp::create(lb, ll, partMax,
                                                    ValueRange{sIdx, t, h});
                  scf::YieldOp::create(
                      lb, ll,
                      ValueRange{arith::MaximumFOp::create(lb, ll, ms, m[0])});
                });
            Value shift = finiteMax(ib, ib.getLoc(), maxLoop.getResult(0), acc);
            Value zero = floatConst(ib, ib.getLoc(), acc, 0.0);
            auto sumLoop = scf::ForOp::create(
                ib, ci(0), splits, ci(1), ValueRange{zero, zero},
                [&](OpBuilder &lb, Location ll, Value sIdx, ValueRange sums) {
                  Value weight = math::Exp2Op::create(
                      lb, ll,
                      arith::SubFOp::create(
                          lb, ll,
                          memref::LoadOp::create(lb, ll, partMax,
                                                 ValueRange{sIdx, t, h}),
                          shift));
                  Value l = arith::AddFOp::create(
                      lb, ll, sums[0],
                      arith::MulFOp::create(
                          lb, ll,
                          memref::LoadOp::create(lb, ll, partSum,
                                                 ValueRange{sIdx, t, h}),
                          weight));
                  Value o = arith::AddFOp::create(
                      lb, ll, sums[1],
                      arith::MulFOp::create(
                          lb, ll,
                          memref::LoadOp::create(lb, ll, partOut,
                                                 ValueRange{sIdx, t, h, e}),
                          weight));
                  scf::YieldOp::create(lb, ll, ValueRange{l, o});
                });
            memref::StoreOp::create(
                ib,
                normalizedElement(ib, ib.getLoc(), sumLoop.getResult(1),
                                  sumLoop.getResult(0), acc, storage),
                out, ValueRange{t, h, e});
            scf::InParallelOp::create(ib);
          });
      scf::YieldOp::create(cb, cl);
    });

    Value result = bufferization::ToTensorOp::create(
        b, resultType, out, /*restrict=*/true, /*writable=*/true);
    rewriter.replaceOp(op, result);
    // The dequantizations read here have no other reader.
    for (KVSource *src : {&k, &v})
      if (src->dequant)
        rewriter.eraseOp(src->dequant);
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateWorkgroupTiledSdpaPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerSdpaToWorkgroupTiles>(patterns.getContext());
}
