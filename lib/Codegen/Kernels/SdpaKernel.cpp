//===- SdpaKernel.cpp - attn.sdpa as a workgroup-tiled kernel -------------===//
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
// The code reads in that order: SdpaPlan holds what the op's config and
// shapes fix and the host values (operands, KV splits, partials);
// SdpaWorkgroup one workgroup's buffers; each phase is a function
// (initializeRows, causalBound, then per KV tile stageKV, computeScores,
// updateRowStatistics, stageKV, accumulateOutput; writeRows; and on the
// host combineSplits).
//
// K or V produced by an attn.dequantize that only the SDPA reads is staged
// from the quantized codes and scales and dequantized on the way into the
// tile (KVSource): the dequantized cache is never written. When the codes
// and scales are an attn.unpack_blocks only that dequantization reads, the
// tile is staged from the packed bytes, each code and scale unpacked on
// the way: no unpacking pass over the cache either.
//
// A key bias (attn-split-rope-bias) is added to K while it is staged, from
// RoPE(b, j) [Tk, Hkv, D] formed once per call before the grid: the K/V
// tile then holds the accumulate type, and the scores read K unrounded.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Kernels/Kernels.h"
#include "WorkgroupKernel.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/IR/RopeFrequencies.h"
#include "rotor/Dialect/Attn/Utils/OpArithmetic.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
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
  Type acc = op.getPrecision().getAccumulate();
  // With a key bias the tile holds K + RoPE(b, j) in the accumulate type.
  Type storage = op.getKeyBias() ? acc : kType.getElementType();
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
rotor::attn::lowering::largestWorkgroupSdpaTiles(SdpaOp op, int64_t bytes) {
  // BQ = BK = B, except that BQ is at most the call's rows (rounded up to a
  // power of two, at least 2) when it has only that many, as decode has.
  std::optional<int64_t> rows = staticRows(op);
  for (int64_t keys : {64, 32, 16, 8}) {
    int64_t bq = keys;
    if (rows)
      bq = std::min<int64_t>(
          keys, std::max<int64_t>(2, llvm::PowerOf2Ceil(uint64_t(*rows))));
    if (workgroupBytes(op, {bq, keys}) <= std::min(bytes, kStaticWorkgroupBytes))
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
  /// When the codes and scales are an unpacking only this dequantization
  /// reads: `data` is the packed bytes, each code and scale unpacked while
  /// staging (3 bits per element read instead of 8 for turbo3, and no
  /// unpacking kernel over the whole cache before the SDPA).
  UnpackBlocksOp unpack;
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
    src.table = codebookTable(b, dequant.getFormat());
    auto unpack = dequant.getCodes().getDefiningOp<UnpackBlocksOp>();
    if (unpack && unpack.getScales() == dequant.getScales() &&
        unpack.getFormat() == dequant.getFormat() &&
        unpack.getCodes().hasOneUse() && unpack.getScales().hasOneUse()) {
      src.unpack = unpack;
      src.data = readOnlyBuffer(b, unpack.getBytes());
      return src; // bytes, one at a time
    }
    values = dequant.getCodes();
    src.scales = readOnlyBuffer(b, dequant.getScales());
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

/// The kernel of one attn.sdpa: first what its shapes and #attn.kernel
/// config fix (types, sizes, tiles), then the host values that every phase
/// reads, set by emitOperands and emitSplits (the host code, before the
/// grid).
struct SdpaPlan {
  SdpaPlan(SdpaOp op, SdpaTiles tiles, int64_t targetWorkgroups)
      : op(op), resultType(cast<RankedTensorType>(op.getType())),
        compute(op.getPrecision().getCompute()),
        acc(op.getPrecision().getAccumulate()),
        storage(resultType.getElementType()),
        kvStorage(getElementTypeOrSelf(op.getKey().getType())),
        tileStorage(op.getKeyBias() ? acc : kvStorage),
        hq(cast<RankedTensorType>(op.getQuery().getType()).getDimSize(1)),
        hkv(cast<RankedTensorType>(op.getKey().getType()).getDimSize(1)),
        d(cast<RankedTensorType>(op.getQuery().getType()).getDimSize(2)),
        dv(cast<RankedTensorType>(op.getValue().getType()).getDimSize(2)),
        group(hq / hkv), rowTile(tiles.rows), keyTile(tiles.keys),
        targetWorkgroups(targetWorkgroups), kvWidth(std::max(d, dv) + 1),
        scoreWidth(keyTile + 1),
        scale2(op.getEffectiveScale() * std::numbers::log2e),
        causal(op.getCausal()) {}

  SdpaOp op;
  RankedTensorType resultType;
  Type compute, acc, storage, kvStorage;
  /// The K/V tile's element type: the cache's, or the accumulate type when
  /// K's bias is added while staging.
  Type tileStorage;
  int64_t hq, hkv, d, dv;
  /// Query heads per KV head.
  int64_t group;
  /// Rows per workgroup (BQ) and keys per KV tile (BK).
  int64_t rowTile, keyTile;
  /// The KV length splits when row tiles x KV heads are fewer than this.
  int64_t targetWorkgroups;
  /// Row lengths of the K/V tile and of the scores, padded by one element
  /// so that the threads of a warp reading one column hit distinct banks.
  int64_t kvWidth, scoreWidth;
  /// The softmax scale times log2(e): scores live in the exp2 domain.
  double scale2;
  bool causal;

  /// The operands as buffers, the query and key counts, the output.
  Value q, positions, tq, tk, out;
  /// RoPE(b, j) [Tk, Hkv, D] in the accumulate type, with a key bias.
  Value keyBiasRows;
  KVSource k, v;
  /// Rows (tq * group) and row tiles (grid.x).
  Value rowCount, rowTiles;
  /// KV splits (grid.z), keys per split, and whether there is more than
  /// one.
  Value splits, chunk, split;
  /// Each split's partial max and sum [splits][Tq][Hq] and output
  /// [splits][Tq][Hq][Dv]; empty without a split.
  Value partMax, partSum, partOut;

  /// Row t * group + g is query t, query head kvHead * group + g, so that
  /// the group's query heads share every K/V tile.
  Value queryOf(OpBuilder &b, Location loc, Value row) const {
    return arith::DivUIOp::create(b, loc, row, indexConst(b, loc, group));
  }
  Value headOf(OpBuilder &b, Location loc, Value kvHead, Value row) const {
    return arith::AddIOp::create(
        b, loc,
        arith::MulIOp::create(b, loc, kvHead, indexConst(b, loc, group)),
        arith::RemUIOp::create(b, loc, row, indexConst(b, loc, group)));
  }
};

/// One workgroup: its place in the grid and its buffers.
struct SdpaWorkgroup {
  Value kvHead, splitIndex;
  /// The first of its rows.
  Value row0;
  /// The staged K or V tile [BK][kvWidth] (carriers), the scores, then
  /// probabilities [BQ][scoreWidth], the output accumulator [BQ][Dv], and
  /// per row: the running max and sum, the last tile's rescale and the
  /// query position.
  Value kvTile, scores, outAcc, rowMax, rowSum, rowScale, rowPos;
  /// Keys below it can be visible to some row (causalBound).
  Value bound;
};

/// Host code: the operands as buffers, the output, the rows.
/// RoPE(b_g, j)[d] for every key row j (its position), KV head g and dim
/// d, in the accumulate type: per pair (a, c), b_a cos - b_c sin and
/// b_c cos + b_a sin of the angle j·inv_freq, formed and reduced to
/// [-pi, pi] in f64 as attn.rope does; 0 past the rotary dim (the softmax
/// cancels the constant it would add).
Value rotatedKeyBias(ImplicitLocOpBuilder &b, const SdpaPlan &p) {
  SdpaOp op = p.op;
  RopeParamsAttr rope = op.getKeyBiasRopeAttr();
  int64_t r = rope.getRotaryDim();
  bool halfSplit = rope.getLayout() == RopeLayout::HalfSplit;
  // The verifier admits only static scalings.
  SmallVector<double> freqs = *getStaticInverseFrequencies(
      r, rope.getTheta().convertToDouble(), rope.getScaling());
  double factor = getRopeAttentionFactor(rope.getScaling());
  Value invFreq = arith::ConstantOp::create(
      b, DenseElementsAttr::get(RankedTensorType::get({r / 2}, b.getF64Type()),
                                ArrayRef<double>(freqs)));
  Value bias = op.getKeyBias();
  Value tk = tensor::DimOp::create(b, op.getKey(), 0);
  auto type = RankedTensorType::get({ShapedType::kDynamic, p.hkv, p.d}, p.acc);
  Value init = tensor::EmptyOp::create(b, type, ValueRange{tk});
  AffineMap id3 = b.getMultiDimIdentityMap(3);
  Type acc = p.acc, f64 = b.getF64Type();
  return linalg::GenericOp::create(
             b, TypeRange{type}, ValueRange{}, ValueRange{init},
             ArrayRef<AffineMap>{id3},
             SmallVector<utils::IteratorType>(3, utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location loc, ValueRange) {
               auto idx = [&](int64_t v) {
                 return arith::ConstantIndexOp::create(nb, loc, v).getResult();
               };
               Value j = linalg::IndexOp::create(nb, loc, 0);
               Value g = linalg::IndexOp::create(nb, loc, 1);
               Value d = linalg::IndexOp::create(nb, loc, 2);
               Value inRotary = arith::CmpIOp::create(
                   nb, loc, arith::CmpIPredicate::ult, d, idx(r));
               Value dim = arith::SelectOp::create(nb, loc, inRotary, d, idx(0));
               Value first, i, partner;
               if (halfSplit) {
                 first = arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::ult,
                                               dim, idx(r / 2));
                 Value low = arith::SubIOp::create(nb, loc, dim, idx(r / 2));
                 i = arith::SelectOp::create(nb, loc, first, dim, low);
                 partner = arith::SelectOp::create(
                     nb, loc, first,
                     arith::AddIOp::create(nb, loc, dim, idx(r / 2)), low);
               } else {
                 first = arith::CmpIOp::create(
                     nb, loc, arith::CmpIPredicate::eq,
                     arith::AndIOp::create(nb, loc, dim, idx(1)), idx(0));
                 i = arith::ShRUIOp::create(nb, loc, dim, idx(1));
                 partner = arith::XOrIOp::create(nb, loc, dim, idx(1));
               }
               Value pos = arith::SIToFPOp::create(
                   nb, loc, f64,
                   arith::IndexCastOp::create(nb, loc, nb.getI64Type(), j));
               Value freq =
                   tensor::ExtractOp::create(nb, loc, invFreq, ValueRange{i});
               Value phi = castFloat(
                   nb, loc, reducedRopeAngle(nb, loc, pos, freq), acc);
               Value scale = floatConst(nb, loc, acc, factor);
               Value cosv = arith::MulFOp::create(
                   nb, loc, math::CosOp::create(nb, loc, phi), scale);
               Value sinv = arith::MulFOp::create(
                   nb, loc, math::SinOp::create(nb, loc, phi), scale);
               auto load = [&](Value at) {
                 return castFloat(
                     nb, loc,
                     tensor::ExtractOp::create(nb, loc, bias, ValueRange{g, at}),
                     acc);
               };
               Value self = load(dim), other = load(partner);
               auto mul = [&](Value x, Value y) {
                 return arith::MulFOp::create(nb, loc, x, y).getResult();
               };
               Value turned = arith::SelectOp::create(
                   nb, loc, first,
                   arith::SubFOp::create(nb, loc, mul(self, cosv), mul(other, sinv)),
                   arith::AddFOp::create(nb, loc, mul(self, cosv), mul(other, sinv)));
               linalg::YieldOp::create(
                   nb, loc,
                   ValueRange{arith::SelectOp::create(
                       nb, loc, inRotary, turned, floatConst(nb, loc, acc, 0.0))});
             })
      .getResult(0);
}

void emitOperands(ImplicitLocOpBuilder &b, SdpaPlan &p) {
  p.q = readOnlyBuffer(b, p.op.getQuery());
  p.k = kvSource(b, p.op.getKey());
  p.v = kvSource(b, p.op.getValue());
  p.positions =
      p.op.getPositions() ? readOnlyBuffer(b, p.op.getPositions()) : Value();
  p.tq = memref::DimOp::create(b, p.q, 0);
  p.tk = memref::DimOp::create(b, p.k.data, 0);
  p.out = memref::AllocOp::create(
      b, MemRefType::get(p.resultType.getShape(), p.storage),
      p.resultType.isDynamicDim(0) ? ValueRange{p.tq} : ValueRange{});
  p.rowCount = arith::MulIOp::create(b, p.tq, indexConst(b, p.group));
  p.rowTiles =
      arith::CeilDivUIOp::create(b, p.rowCount, indexConst(b, p.rowTile));
  if (p.op.getKeyBias())
    p.keyBiasRows = readOnlyBuffer(b, rotatedKeyBias(b, p));
}

/// Host code: the KV length splits into `splits` chunks of whole KV tiles,
/// each a workgroup of its own (flash-decoding), when there are fewer than
/// `targetWorkgroups` row tiles x KV heads. Each then leaves its rows'
/// partial max, sum and output in global memory for one combine.
void emitSplits(ImplicitLocOpBuilder &b, SdpaPlan &p) {
  auto c = [&](int64_t n) { return indexConst(b, n); };
  Value keyTiles = arith::CeilDivUIOp::create(b, p.tk, c(p.keyTile));
  Value wanted = arith::MaxUIOp::create(
      b, c(1),
      arith::DivUIOp::create(
          b, c(p.targetWorkgroups),
          arith::MulIOp::create(b, arith::MaxUIOp::create(b, p.rowTiles, c(1)),
                                c(p.hkv))));
  Value splitsWanted = arith::MaxUIOp::create(
      b, c(1), arith::MinUIOp::create(b, keyTiles, wanted));
  Value tilesPerSplit = arith::MaxUIOp::create(
      b, c(1), arith::CeilDivUIOp::create(b, keyTiles, splitsWanted));
  p.splits = arith::MaxUIOp::create(
      b, c(1), arith::CeilDivUIOp::create(b, keyTiles, tilesPerSplit));
  p.chunk = arith::MulIOp::create(b, tilesPerSplit, c(p.keyTile));
  p.split = arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, p.splits, c(1));
  Value partialCount = arith::SelectOp::create(b, p.split, p.splits, c(0));
  int64_t dyn = ShapedType::kDynamic;
  p.partMax =
      memref::AllocOp::create(b, MemRefType::get({dyn, dyn, p.hq}, p.acc),
                              ValueRange{partialCount, p.tq});
  p.partSum =
      memref::AllocOp::create(b, MemRefType::get({dyn, dyn, p.hq}, p.acc),
                              ValueRange{partialCount, p.tq});
  p.partOut =
      memref::AllocOp::create(b, MemRefType::get({dyn, dyn, p.hq, p.dv}, p.acc),
                              ValueRange{partialCount, p.tq});
}

/// The workgroup at grid point `ivs` and its buffers.
SdpaWorkgroup allocateWorkgroup(ImplicitLocOpBuilder &w, const SdpaPlan &p,
                                ValueRange ivs) {
  SdpaWorkgroup wg;
  wg.kvHead = ivs[1];
  wg.splitIndex = ivs[2];
  wg.row0 = arith::MulIOp::create(w, ivs[0], indexConst(w, p.rowTile));
  auto buffer = [&](ArrayRef<int64_t> shape, Type type) -> Value {
    return workgroupBuffer(w, shape, type);
  };
  wg.kvTile = buffer({p.keyTile, p.kvWidth}, carrierType(p.tileStorage));
  wg.scores = buffer({p.rowTile, p.scoreWidth}, p.acc);
  wg.outAcc = buffer({p.rowTile, p.dv}, p.acc);
  wg.rowMax = buffer({p.rowTile}, p.acc);
  wg.rowSum = buffer({p.rowTile}, p.acc);
  wg.rowScale = buffer({p.rowTile}, p.acc);
  wg.rowPos = buffer({p.rowTile}, w.getI64Type());
  return wg;
}

/// Positions of the workgroup's rows (none past the last query: INT64_MIN
/// masks every key), empty max, sum and output.
void initializeRows(ImplicitLocOpBuilder &w, const SdpaPlan &p,
                    const SdpaWorkgroup &wg) {
  Type i64 = w.getI64Type();
  double negInf = -std::numeric_limits<double>::infinity();
  threadPhase(w, w.getLoc(), p.rowTile, [&](ImplicitLocOpBuilder &ib, Value i) {
    Value row = arith::AddIOp::create(ib, wg.row0, i);
    Value inRange =
        arith::CmpIOp::create(ib, arith::CmpIPredicate::ult, row, p.rowCount);
    auto pos = scf::IfOp::create(
        ib, inRange,
        [&](OpBuilder &tb, Location tl) {
          Value t = p.queryOf(tb, tl, row);
          Value position;
          if (p.positions) {
            position =
                memref::LoadOp::create(tb, tl, p.positions, ValueRange{t});
            if (position.getType() != i64)
              position = arith::ExtSIOp::create(tb, tl, i64, position);
          } else {
            position = arith::IndexCastOp::create(
                tb, tl, i64,
                arith::AddIOp::create(
                    tb, tl, arith::SubIOp::create(tb, tl, p.tk, p.tq), t));
          }
          scf::YieldOp::create(tb, tl, position);
        },
        [&](OpBuilder &tb, Location tl) {
          scf::YieldOp::create(
              tb, tl,
              ValueRange{arith::ConstantOp::create(
                  tb, tl,
                  tb.getI64IntegerAttr(std::numeric_limits<int64_t>::min()))});
        });
    memref::StoreOp::create(ib, pos.getResult(0), wg.rowPos, i);
    memref::StoreOp::create(ib, floatConst(ib, ib.getLoc(), p.acc, negInf),
                            wg.rowMax, i);
    memref::StoreOp::create(ib, floatConst(ib, ib.getLoc(), p.acc, 0.0),
                            wg.rowSum, i);
  });
  threadPhase(
      w, w.getLoc(), p.rowTile * p.dv, [&](ImplicitLocOpBuilder &ib, Value e) {
        Value i = arith::DivUIOp::create(ib, e, indexConst(ib, p.dv));
        Value col = arith::RemUIOp::create(ib, e, indexConst(ib, p.dv));
        memref::StoreOp::create(ib, floatConst(ib, ib.getLoc(), p.acc, 0.0),
                                wg.outAcc, ValueRange{i, col});
      });
}

/// Keys j < bound can be visible to some row of the workgroup: all of them,
/// or with causal masking those up to the largest row position. The same
/// value in every thread, so the KV loop is uniform.
Value causalBound(ImplicitLocOpBuilder &w, const SdpaPlan &p,
                  const SdpaWorkgroup &wg) {
  if (!p.causal)
    return p.tk;
  auto c = [&](int64_t n) { return indexConst(w, n); };
  Value lowest = arith::ConstantOp::create(
      w, w.getI64IntegerAttr(std::numeric_limits<int64_t>::min()));
  auto maxLoop = scf::ForOp::create(
      w, c(0), c(p.rowTile), c(1), ValueRange{lowest},
      [&](OpBuilder &lb, Location ll, Value i, ValueRange carried) {
        Value position =
            memref::LoadOp::create(lb, ll, wg.rowPos, ValueRange{i});
        scf::YieldOp::create(
            lb, ll,
            ValueRange{arith::MaxSIOp::create(lb, ll, position, carried[0])});
      });
  Value maxPos = maxLoop.getResult(0);
  // INT64_MIN + 1 would not overflow, but a row past the end has no key:
  // clamp at 0 before adding.
  Value visible = arith::AddIOp::create(
      w,
      arith::MaxSIOp::create(
          w, maxPos, arith::ConstantOp::create(w, w.getI64IntegerAttr(-1))),
      arith::ConstantOp::create(w, w.getI64IntegerAttr(1)));
  return arith::MinSIOp::create(
      w, arith::IndexCastOp::create(w, w.getIndexType(), visible), p.tk);
}

/// Stages rows [j0, j0 + BK) of K or V (head kvHead) into kvTile; rows past
/// the bound are zeros, so that a masked key contributes exactly 0 * 0. A
/// dequantized operand is staged from its codes, each element dequantized
/// with its block's scale as it is stored.
void stageKV(OpBuilder &b, Location loc, const SdpaPlan &p,
             const SdpaWorkgroup &wg, const KVSource &src, Value j0,
             bool keys) {
  int64_t cols = keys ? p.d : p.dv;
  DequantizeOp dequant = src.dequant;
  bool addBias = keys && p.keyBiasRows;
  auto ci = [](OpBuilder &cb, Location cl, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(cb, cl, v);
  };
  // Element e of a packed row: block e / B, bit (e mod B) * bits of the
  // block's codes, which follow its scale.
  auto packedBit = [&](OpBuilder &sb, Location sl, Value e) {
    KVBlockFormatAttr format = dequant.getFormat();
    Value blk = arith::DivUIOp::create(sb, sl, e,
                                       ci(sb, sl, format.getBlockSize()));
    Value bit = arith::MulIOp::create(
        sb, sl,
        arith::RemUIOp::create(sb, sl, e, ci(sb, sl, format.getBlockSize())),
        ci(sb, sl, format.getBits()));
    int64_t scaleBytes = format.getScaleType().getWidth() / 8;
    Value byteIndex = arith::AddIOp::create(
        sb, sl,
        arith::MulIOp::create(sb, sl, blk,
                              ci(sb, sl, packedBlockBytes(format))),
        arith::AddIOp::create(sb, sl, ci(sb, sl, scaleBytes),
                              arith::DivUIOp::create(sb, sl, bit,
                                                     ci(sb, sl, 8))));
    return std::make_tuple(blk, byteIndex,
                           arith::RemUIOp::create(sb, sl, bit, ci(sb, sl, 8))
                               .getResult());
  };
  auto dequantize = [&](OpBuilder &sb, Location sl, Value code, Value j,
                        Value e) -> Value {
    KVBlockFormatAttr format = dequant.getFormat();
    Value row = arith::AddIOp::create(sb, sl, j0, j);
    Value scale;
    if (src.unpack) {
      // `code` is the first byte the code spans; unpackCode reads it again
      // (the same address) with the second.
      auto byteAt = [&](Value column) -> Value {
        return memref::LoadOp::create(sb, sl, src.data,
                                      ValueRange{row, wg.kvHead, column});
      };
      auto [blk, byteIndex, shift] = packedBit(sb, sl, e);
      int64_t lastByte =
          cast<MemRefType>(src.data.getType()).getDimSize(2) - 1;
      code = unpackCode(sb, sl, byteAt, byteIndex, shift, format, lastByte);
      scale = unpackScale(sb, sl, byteAt, blk, format);
    } else {
      Value block = arith::DivUIOp::create(sb, sl, e,
                                           ci(sb, sl, format.getBlockSize()));
      scale = memref::LoadOp::create(sb, sl, src.scales,
                                     ValueRange{row, wg.kvHead, block});
    }
    return dequantizeElement(sb, sl, format, src.table, code, scale,
                             dequant.getPrecision().getCompute(), p.kvStorage);
  };
  // The element as the tile holds it: K + RoPE(b, j) in the accumulate
  // type (K rounded to the compute type first, as the scores would), or
  // the value itself widened to the tile's type.
  auto convert = [&](OpBuilder &sb, Location sl, Value x, Value j,
                     Value e) -> Value {
    Value value = dequant ? dequantize(sb, sl, x, j, e)
                          : fromCarrier(sb, sl, x, p.kvStorage);
    if (!addBias)
      return castFloat(sb, sl, value, p.tileStorage);
    Value key = castFloat(sb, sl, castFloat(sb, sl, value, p.compute), p.acc);
    Value rb = memref::LoadOp::create(
        sb, sl, p.keyBiasRows,
        ValueRange{arith::AddIOp::create(sb, sl, j0, j), wg.kvHead, e});
    return arith::AddFOp::create(sb, sl, key, rb);
  };
  bool converts = dequant || addBias || p.tileStorage != p.kvStorage;
  stageTile(
      b, loc, src.data, wg.kvTile, p.keyTile, cols, src.vectorWidth,
      src.aligned,
      [&](OpBuilder &sb, Location sl, Value j, Value e) {
        Value column = e;
        if (src.unpack)
          column = std::get<1>(packedBit(sb, sl, e));
        return SmallVector<Value>{arith::AddIOp::create(sb, sl, j0, j),
                                  wg.kvHead, column};
      },
      [&](OpBuilder &sb, Location sl, Value j, Value) -> Value {
        return arith::CmpIOp::create(sb, sl, arith::CmpIPredicate::ult,
                                     arith::AddIOp::create(sb, sl, j0, j),
                                     wg.bound);
      },
      converts
          ? function_ref<Value(OpBuilder &, Location, Value, Value, Value)>(
                convert)
          : nullptr,
      p.tileStorage);
}

/// Scores of the KV tile at j0, scaled into the exp2 domain, -inf where a
/// key is past the bound or, causal, past the row's position. Thread
/// (ib, jb) owns rows ib*2 + r and keys jb + n * (BK / 4) (a 2x4 register
/// micro-tile), so a warp reads distinct K rows.
void computeScores(OpBuilder &b, Location loc, const SdpaPlan &p,
                   const SdpaWorkgroup &wg, Value j0) {
  Type i64 = b.getI64Type();
  double negInf = -std::numeric_limits<double>::infinity();
  int64_t keyGroups = p.keyTile / kMicroCols;
  threadPhase(
      b, loc, (p.rowTile / kMicroRows) * keyGroups,
      [&](ImplicitLocOpBuilder &ib, Value it) {
        auto ci = [&](int64_t n) { return indexConst(ib, n); };
        MicroTile tile = microTile(ib, it, keyGroups, kMicroRows, kMicroCols);
        ArrayRef<Value> rows = tile.rows, keys = tile.cols;
        Value lastRow = arith::SubIOp::create(ib, p.rowCount, ci(1));
        SmallVector<Value> qRows, qHeads;
        for (Value i : rows) {
          // A row past the last reads the last one; its scores are masked.
          Value row = arith::MinUIOp::create(
              ib, arith::AddIOp::create(ib, wg.row0, i), lastRow);
          qRows.push_back(p.queryOf(ib, ib.getLoc(), row));
          qHeads.push_back(p.headOf(ib, ib.getLoc(), wg.kvHead, row));
        }
        SmallVector<Value> zeros(kMicroRows * kMicroCols,
                                 floatConst(ib, ib.getLoc(), p.acc, 0.0));
        auto dot = scf::ForOp::create(
            ib, ci(0), ci(p.d), ci(1), zeros,
            [&](OpBuilder &db, Location dl, Value e, ValueRange sums) {
              SmallVector<Value> qs, ks, next;
              for (auto [t, h] : llvm::zip(qRows, qHeads))
                qs.push_back(
                    memref::LoadOp::create(db, dl, p.q, ValueRange{t, h, e}));
              for (Value j : keys)
                ks.push_back(fromCarrier(
                    db, dl,
                    memref::LoadOp::create(db, dl, wg.kvTile, ValueRange{j, e}),
                    p.tileStorage));
              // Biased keys are in the accumulate type, already rounded to
              // the compute type before the bias was added.
              Type keyCompute = p.keyBiasRows ? p.acc : p.compute;
              for (int64_t r = 0; r < kMicroRows; ++r)
                for (int64_t n = 0; n < kMicroCols; ++n) {
                  Value x = castFloat(
                      db, dl, castFloat(db, dl, qs[r], p.compute), p.acc);
                  Value y = castFloat(
                      db, dl, castFloat(db, dl, ks[n], keyCompute), p.acc);
                  next.push_back(arith::AddFOp::create(
                      db, dl, sums[r * kMicroCols + n],
                      arith::MulFOp::create(db, dl, x, y)));
                }
              scf::YieldOp::create(db, dl, next);
            });
        Value j0i64 = arith::IndexCastOp::create(ib, i64, j0);
        Value bound64 = arith::IndexCastOp::create(ib, i64, wg.bound);
        for (int64_t r = 0; r < kMicroRows; ++r) {
          Value pos = memref::LoadOp::create(ib, wg.rowPos, rows[r]);
          for (int64_t n = 0; n < kMicroCols; ++n) {
            Value s = arith::MulFOp::create(
                ib, dot.getResult(r * kMicroCols + n),
                floatConst(ib, ib.getLoc(), p.acc, p.scale2));
            Value key = arith::AddIOp::create(
                ib, j0i64, arith::IndexCastOp::create(ib, i64, keys[n]));
            Value hidden = arith::CmpIOp::create(ib, arith::CmpIPredicate::sge,
                                                 key, bound64);
            if (p.causal)
              hidden = arith::OrIOp::create(
                  ib, hidden,
                  arith::CmpIOp::create(ib, arith::CmpIPredicate::sgt, key,
                                        pos));
            s = arith::SelectOp::create(
                ib, hidden, floatConst(ib, ib.getLoc(), p.acc, negInf), s);
            memref::StoreOp::create(ib, s, wg.scores,
                                    ValueRange{rows[r], keys[n]});
          }
        }
      });
}

/// The online softmax, one thread per row: the new max, probabilities in
/// place of the scores, the rescaled sum, and the rescale of the output
/// (applied by accumulateOutput).
void updateRowStatistics(OpBuilder &b, Location loc, const SdpaPlan &p,
                         const SdpaWorkgroup &wg) {
  threadPhase(b, loc, p.rowTile, [&](ImplicitLocOpBuilder &ib, Value i) {
    auto ci = [&](int64_t n) { return indexConst(ib, n); };
    Value mOld = memref::LoadOp::create(ib, wg.rowMax, i);
    auto maxLoop = scf::ForOp::create(
        ib, ci(0), ci(p.keyTile), ci(1), ValueRange{mOld},
        [&](OpBuilder &mb, Location ml, Value j, ValueRange m) {
          Value s = memref::LoadOp::create(mb, ml, wg.scores, ValueRange{i, j});
          scf::YieldOp::create(
              mb, ml, ValueRange{arith::MaximumFOp::create(mb, ml, s, m[0])});
        });
    Value mNew = maxLoop.getResult(0);
    Value shift = finiteMax(ib, ib.getLoc(), mNew, p.acc);
    Value alpha =
        math::Exp2Op::create(ib, arith::SubFOp::create(ib, mOld, shift));
    Value lScaled = arith::MulFOp::create(
        ib, memref::LoadOp::create(ib, wg.rowSum, i), alpha);
    auto sumLoop = scf::ForOp::create(
        ib, ci(0), ci(p.keyTile), ci(1), ValueRange{lScaled},
        [&](OpBuilder &sb, Location sl, Value j, ValueRange l) {
          Value s = memref::LoadOp::create(sb, sl, wg.scores, ValueRange{i, j});
          Value prob = math::Exp2Op::create(
              sb, sl, arith::SubFOp::create(sb, sl, s, shift));
          memref::StoreOp::create(sb, sl, prob, wg.scores, ValueRange{i, j});
          scf::YieldOp::create(
              sb, sl, ValueRange{arith::AddFOp::create(sb, sl, prob, l[0])});
        });
    memref::StoreOp::create(ib, mNew, wg.rowMax, i);
    memref::StoreOp::create(ib, sumLoop.getResult(0), wg.rowSum, i);
    memref::StoreOp::create(ib, alpha, wg.rowScale, i);
  });
}

/// P·V: the output accumulator, rescaled, plus the probabilities times the
/// staged V tile. Thread (ib, eb) owns rows ib*2 + r and columns
/// eb + n * (Dv / 4), so a warp reads consecutive V columns.
void accumulateOutput(OpBuilder &b, Location loc, const SdpaPlan &p,
                      const SdpaWorkgroup &wg) {
  int64_t microCols = p.dv % kMicroCols ? 1 : kMicroCols;
  int64_t colGroups = p.dv / microCols;
  threadPhase(
      b, loc, (p.rowTile / kMicroRows) * colGroups,
      [&](ImplicitLocOpBuilder &ib, Value it) {
        auto ci = [&](int64_t n) { return indexConst(ib, n); };
        MicroTile tile = microTile(ib, it, colGroups, kMicroRows, microCols);
        ArrayRef<Value> rows = tile.rows, cols = tile.cols;
        SmallVector<Value> init;
        for (Value i : rows) {
          Value alpha = memref::LoadOp::create(ib, wg.rowScale, i);
          for (Value e : cols)
            init.push_back(arith::MulFOp::create(
                ib, memref::LoadOp::create(ib, wg.outAcc, ValueRange{i, e}),
                alpha));
        }
        auto accLoop = scf::ForOp::create(
            ib, ci(0), ci(p.keyTile), ci(1), init,
            [&](OpBuilder &ab, Location al, Value j, ValueRange sums) {
              SmallVector<Value> ps, ys, next;
              for (Value i : rows)
                ps.push_back(probabilityForValues(
                    ab, al,
                    memref::LoadOp::create(ab, al, wg.scores, ValueRange{i, j}),
                    p.op));
              for (Value e : cols)
                ys.push_back(castFloat(
                    ab, al,
                    castFloat(
                        ab, al,
                        fromCarrier(ab, al,
                                    memref::LoadOp::create(ab, al, wg.kvTile,
                                                           ValueRange{j, e}),
                                    p.tileStorage),
                        p.compute),
                    p.acc));
              for (size_t r = 0; r < rows.size(); ++r)
                for (size_t n = 0; n < cols.size(); ++n)
                  next.push_back(arith::AddFOp::create(
                      ab, al, sums[r * cols.size() + n],
                      arith::MulFOp::create(ab, al, ps[r], ys[n])));
              scf::YieldOp::create(ab, al, next);
            });
        for (size_t r = 0; r < rows.size(); ++r)
          for (size_t n = 0; n < cols.size(); ++n)
            memref::StoreOp::create(ib, accLoop.getResult(r * cols.size() + n),
                                    wg.outAcc, ValueRange{rows[r], cols[n]});
      });
}

/// The workgroup's KV tiles: those of its split's chunk below the bound,
/// in order, each staged as K, scored, folded into the row statistics,
/// staged as V (into the same buffer) and accumulated.
void walkKVTiles(ImplicitLocOpBuilder &w, const SdpaPlan &p,
                 const SdpaWorkgroup &wg) {
  Value chunkStart = arith::MulIOp::create(w, wg.splitIndex, p.chunk);
  Value chunkEnd = arith::MinUIOp::create(
      w, wg.bound, arith::AddIOp::create(w, chunkStart, p.chunk));
  scf::ForOp::create(w, chunkStart, chunkEnd, indexConst(w, p.keyTile),
                     ValueRange{},
                     [&](OpBuilder &lb, Location ll, Value j0, ValueRange) {
                       stageKV(lb, ll, p, wg, p.k, j0, /*keys=*/true);
                       computeScores(lb, ll, p, wg, j0);
                       updateRowStatistics(lb, ll, p, wg);
                       stageKV(lb, ll, p, wg, p.v, j0, /*keys=*/false);
                       accumulateOutput(lb, ll, p, wg);
                       scf::YieldOp::create(lb, ll);
                     });
}

/// Normalizes and writes the rows that exist or, split, leaves their
/// partials for the combine.
void writeRows(ImplicitLocOpBuilder &w, const SdpaPlan &p,
               const SdpaWorkgroup &wg) {
  threadPhase(
      w, w.getLoc(), p.rowTile * p.dv, [&](ImplicitLocOpBuilder &ib, Value it) {
        auto ci = [&](int64_t n) { return indexConst(ib, n); };
        Value i = arith::DivUIOp::create(ib, it, ci(p.dv));
        Value e = arith::RemUIOp::create(ib, it, ci(p.dv));
        Value row = arith::AddIOp::create(ib, wg.row0, i);
        Value inRange = arith::CmpIOp::create(ib, arith::CmpIPredicate::ult,
                                              row, p.rowCount);
        scf::IfOp::create(ib, inRange, [&](OpBuilder &tb, Location tl) {
          Value t = p.queryOf(tb, tl, row),
                head = p.headOf(tb, tl, wg.kvHead, row);
          Value o = memref::LoadOp::create(tb, tl, wg.outAcc, ValueRange{i, e});
          Value l = memref::LoadOp::create(tb, tl, wg.rowSum, ValueRange{i});
          scf::IfOp::create(
              tb, tl, p.split,
              [&](OpBuilder &pb, Location pl) {
                memref::StoreOp::create(pb, pl, o, p.partOut,
                                        ValueRange{wg.splitIndex, t, head, e});
                Value first = arith::CmpIOp::create(
                    pb, pl, arith::CmpIPredicate::eq, e, indexConst(pb, pl, 0));
                scf::IfOp::create(
                    pb, pl, first, [&](OpBuilder &fb, Location fl) {
                      memref::StoreOp::create(
                          fb, fl,
                          memref::LoadOp::create(fb, fl, wg.rowMax,
                                                 ValueRange{i}),
                          p.partMax, ValueRange{wg.splitIndex, t, head});
                      memref::StoreOp::create(
                          fb, fl, l, p.partSum,
                          ValueRange{wg.splitIndex, t, head});
                      scf::YieldOp::create(fb, fl);
                    });
                scf::YieldOp::create(pb, pl);
              },
              [&](OpBuilder &nb, Location nl) {
                memref::StoreOp::create(
                    nb, nl, normalizedElement(nb, nl, o, l, p.acc, p.storage),
                    p.out, ValueRange{t, head, e});
                scf::YieldOp::create(nb, nl);
              });
          scf::YieldOp::create(tb, tl);
        });
      });
}

/// Host code after the grid: when split, combines the splits' partials,
/// each rescaled to the largest max (the exp2 domain, as in the tiles),
/// summed in split order, then normalized. Not one definition with the
/// split-KV loop form's combine (LowerSdpaSplitKV.cpp): that one weighs a
/// split by exp2(finiteMax(m_s) - finiteMax(M)), this one by
/// exp2(m_s - finiteMax(M)), which is 0 for a split that saw no key.
void combineSplits(ImplicitLocOpBuilder &b, const SdpaPlan &p) {
  double negInf = -std::numeric_limits<double>::infinity();
  scf::IfOp::create(b, p.split, [&](OpBuilder &cb, Location cl) {
    scf::ForallOp::create(
        cb, cl,
        ArrayRef<OpFoldResult>{p.tq, cb.getIndexAttr(p.hq),
                               cb.getIndexAttr(p.dv)},
        ValueRange{}, std::nullopt,
        [&](OpBuilder &fb, Location fl, ValueRange ivs) {
          ImplicitLocOpBuilder ib(fl, fb);
          Value t = ivs[0], h = ivs[1], e = ivs[2];
          auto ci = [&](int64_t n) { return indexConst(ib, n); };
          auto maxLoop = scf::ForOp::create(
              ib, ci(0), p.splits, ci(1),
              ValueRange{floatConst(ib, ib.getLoc(), p.acc, negInf)},
              [&](OpBuilder &lb, Location ll, Value s, ValueRange m) {
                Value ms = memref::LoadOp::create(lb, ll, p.partMax,
                                                  ValueRange{s, t, h});
                scf::YieldOp::create(
                    lb, ll,
                    ValueRange{arith::MaximumFOp::create(lb, ll, ms, m[0])});
              });
          Value shift = finiteMax(ib, ib.getLoc(), maxLoop.getResult(0), p.acc);
          Value zero = floatConst(ib, ib.getLoc(), p.acc, 0.0);
          auto sumLoop = scf::ForOp::create(
              ib, ci(0), p.splits, ci(1), ValueRange{zero, zero},
              [&](OpBuilder &lb, Location ll, Value s, ValueRange sums) {
                auto load = [&](Value buffer, ValueRange indices) -> Value {
                  return memref::LoadOp::create(lb, ll, buffer, indices);
                };
                Value weight = math::Exp2Op::create(
                    lb, ll,
                    arith::SubFOp::create(
                        lb, ll, load(p.partMax, ValueRange{s, t, h}), shift));
                Value l = arith::AddFOp::create(
                    lb, ll, sums[0],
                    arith::MulFOp::create(
                        lb, ll, load(p.partSum, ValueRange{s, t, h}), weight));
                Value o = arith::AddFOp::create(
                    lb, ll, sums[1],
                    arith::MulFOp::create(
                        lb, ll, load(p.partOut, ValueRange{s, t, h, e}),
                        weight));
                scf::YieldOp::create(lb, ll, ValueRange{l, o});
              });
          memref::StoreOp::create(
              ib,
              normalizedElement(ib, ib.getLoc(), sumLoop.getResult(1),
                                sumLoop.getResult(0), p.acc, p.storage),
              p.out, ValueRange{t, h, e});
          scf::InParallelOp::create(ib);
        });
    scf::YieldOp::create(cb, cl);
  });
}

struct LowerSdpaToWorkgroupTiles : OpRewritePattern<SdpaOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(SdpaOp op,
                                PatternRewriter &rewriter) const override {
    KernelConfigAttr config = getKernelConfig(op);
    if (!config || config.getStrategy() != KernelStrategy::WorkgroupTiled)
      return failure();
    SdpaTiles tiles{config.getRows(), config.getKeys()};
    if (std::string why = workgroupSdpaObstacle(op, tiles); !why.empty())
      return rewriter.notifyMatchFailure(op, why);

    SdpaPlan p(op, tiles, config.getWorkgroups());
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    emitOperands(b, p);
    emitSplits(b, p);
    workgroupLoop(b, {p.rowTiles, b.getIndexAttr(p.hkv), p.splits},
                  [&](ImplicitLocOpBuilder &w, ValueRange ivs) {
                    SdpaWorkgroup wg = allocateWorkgroup(w, p, ivs);
                    initializeRows(w, p, wg);
                    wg.bound = causalBound(w, p, wg);
                    walkKVTiles(w, p, wg);
                    writeRows(w, p, wg);
                  });
    combineSplits(b, p);

    rewriter.replaceOp(op, bufferization::ToTensorOp::create(
                               b, p.resultType, p.out, /*restrict=*/true,
                               /*writable=*/true));
    // The dequantizations read here have no other reader, nor have the
    // unpackings staged from their bytes.
    for (const KVSource *src : {&p.k, &p.v}) {
      if (src->dequant)
        rewriter.eraseOp(src->dequant);
      if (src->unpack)
        rewriter.eraseOp(src->unpack);
    }
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateWorkgroupTiledSdpaPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerSdpaToWorkgroupTiles>(patterns.getContext());
}
