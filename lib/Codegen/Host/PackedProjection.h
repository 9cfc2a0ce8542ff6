//===- PackedProjection.h - The host's packed projections -------*- C++ -*-===//
//
// Shared by rotor-lower-reductions-to-register-loops
// (LowerReductionsToRegisterLoops.cpp: which reductions take which loop
// form) and its packed prefill projection with its epilogues
// (PackedProjection.cpp: the bias, a half-split RoPE in registers, and the
// row ops run on each chunk of a head's rows).
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_LIB_CODEGEN_HOST_PACKEDPROJECTION_H
#define ROTOR_LIB_CODEGEN_HOST_PACKEDPROJECTION_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"

#include <optional>
#include <utility>

namespace rotor::host {

/// Each loop dim's lower bound, upper bound and step, created before `op`.
struct LoopBounds {
  llvm::SmallVector<mlir::Value> lbs, ubs, steps;
};

/// What the host CPU offers the register forms (the pass's options, from
/// the bundle's target features).
struct HostIsa {
  /// SIMD registers: 16 (AVX2) or 32 (AVX-512).
  int64_t vectorRegisters = 16;
  /// AVX512-BF16's vdpbf16ps: the bf16 pair forms.
  bool bf16Dot = false;
  /// AMX-BF16's tile products: the pair forms' blocks of 16 rows
  /// (only with bf16Dot).
  bool amxTiles = false;
  /// Whether software prefetches of a packed projection's next panel pay
  /// (a tuning: the CPU's hardware prefetchers may follow the rows).
  bool panelPrefetch = true;
};

/// The indices `map` selects from the loop ivs.
llvm::SmallVector<mlir::Value> applyMap(mlir::OpBuilder &b, mlir::Location loc,
                                        mlir::AffineMap map,
                                        mlir::ValueRange ivs);

/// Whether `value`'s memref is contiguous along its last axis.
bool unitInnerStride(mlir::Value value);

/// Whether `op`'s payload is pure elementwise arithmetic on scalars, one
/// result per op (so that it applies to whole vectors); with `indices`,
/// linalg.index and scalar constants too.
bool elementwisePayload(mlir::linalg::GenericOp op, bool indices = false);

/// The payload of `op` on rows of `width` elements: block arguments and
/// results as vectors, values from outside (and elements read once)
/// broadcast. `inputValue` gives each memref input's value at the current
/// step, a row or an element; `acc` is the running row; `indexRow` each
/// linalg.index's row (or element; only needed when the payload has one).
/// With `contractSum`, the product and the add of the sum contract to an
/// FMA (no reassoc: each element is summed in order).
mlir::Value emitRowPayload(
    mlir::OpBuilder &nb, mlir::Location l, mlir::linalg::GenericOp op,
    int64_t width, mlir::Value acc,
    llvm::function_ref<mlir::Value(mlir::OpOperand *)> inputValue,
    llvm::function_ref<mlir::Value(unsigned)> indexRow = nullptr,
    bool contractSum = true);

/// Tokens per register block of a packed projection.
constexpr int64_t kPackedRows = 6;

/// Elements per vector of the bf16 pair forms' packing: 32 bf16, one zmm.
constexpr int64_t kPairRun = 32;

/// A projection whose payload is sum + ext(bf16(x)) * ext(bf16(W)) in f32
/// (compute bf16, accumulate f32), run with AVX512-BF16 dot products on
/// bf16 pairs (see rotor-lower-reductions-to-register-loops).
struct BF16Pairs {
  /// Whether x and W are f32, rounded to bf16 on packing (else bf16).
  bool roundInput = false, roundWeight = false;
};

/// A projection y[t, n] += x[t, e] * W[n, e] that the packed form takes.
struct PackedProjection {
  mlir::OpOperand *input = nullptr, *weight = nullptr;
  /// Columns per block: four vectors with 32 registers (AVX-512: 6 x 4
  /// sums, 4 weight vectors), two with 16 (AVX2: 6 x 2 and 2).
  int64_t width = 0;
  /// f32 lanes of one vector register (f32Lanes): 16 with AVX-512, 8 with
  /// AVX2; the panels are packed in blocks of lanes x lanes.
  int64_t lanes = 0;
  /// Set when the projection runs on bf16 pairs.
  std::optional<BF16Pairs> bf16Pairs;
  /// Whether the first token blocks prefetch the next panel's weight
  /// rows (HostIsa::panelPrefetch; not with AMX tiles).
  bool prefetchNextPanel = true;
  /// With bf16 pairs: every token runs as AMX tile products (tdpbf16ps)
  /// on the same panels and pairs, in blocks of kAmxRows, the last one
  /// partial (the pairs padded with zeroed rows).
  bool amxTiles = false;
};

/// Tokens per AMX block: a tile's 16 rows.
constexpr int64_t kAmxRows = 16;

/// Weights up to this size (as f32) stay in cache across a projection's
/// tokens; larger ones are streamed from memory on every call.
constexpr int64_t kCachedWeightBytes = int64_t(8) << 20;

/// Whether a (static) weight of `columns` x `depth` is streamed: larger
/// than kCachedWeightBytes as f32.
inline bool streamedWeight(int64_t columns, int64_t depth) {
  return columns * depth * 4 > kCachedWeightBytes;
}

/// Whether the weight of `p` is streamed; never one of a dynamic shape.
inline bool streamedWeight(const PackedProjection &p) {
  auto type = llvm::cast<mlir::MemRefType>(p.weight->get().getType());
  return type.hasStaticShape() &&
         streamedWeight(type.getDimSize(0), type.getDimSize(1));
}

/// The bytes of a packed panel beyond which it overflows the L2 of the
/// machines measured (1 MiB on a Zen 4) and the packed form loses more
/// tokens to the dot-product form on a streamed weight.
constexpr int64_t kPanelL2Bytes = int64_t(1) << 20;

/// The fewest tokens for which the packed form pays (below, the
/// dot-product form runs), measured on an AMD EPYC (Zen 4). In f32,
/// packing the panels costs a copy of the weight per call, which the
/// dot-product form's jammed rows (4 tokens x 4 columns with AVX-512, x 2
/// with AVX2; the last T mod 4 rows in a pair and a row) outrun up to 48
/// tokens on a weight in cache (the example layer: 0.62 ms against 0.85 at
/// 16 tokens, 1.68 against 1.77 at 44, even at 48; AVX2 alike). On a
/// streamed weight both forms prefetch (the packed form its next panel,
/// the dot-product form its next chunk) and the packed form wins from 20
/// tokens (Qwen2.5-7B's, 3584 deep: 13.7 ms dot-product against 15.4
/// packed at 16 tokens, 16.1 against 15.6 at 20, 18.9 against 17.5 at
/// 23, 18.1 against 16.4 at 24), or from 33 where its 64-column panels
/// overflow L2 (a Llama-70B-sized layer, 8192 deep, 2 MiB panels: 88.7
/// against 103.1 at 23, 109.7 against 124.9 at 32, 146.9 against 136.3
/// at 36, 157.8 against 149.3 at 40). On bf16
/// pairs, two products per instruction, one register block (the bf16 plan
/// at 6 tokens: 0.22 ms packed, 0.33 ms not; at 4: 0.25 and 0.17). A CPU
/// without AVX512-BF16 takes the f32 counts (its packed form on bf16
/// weights ran 3x slower than the dot-product form at 6 to 15 tokens):
/// from 6 tokens up to them, bundles for the two CPUs sum in different
/// orders (the packed forms in order, the dot-product form reassociated)
/// and their bits differ.
inline int64_t packedMinRows(const PackedProjection &p) {
  if (p.bf16Pairs)
    return kPackedRows;
  if (!streamedWeight(p))
    return 48;
  // The panel's bytes as f32 (a weight the payload only widens is packed
  // into an f32 panel; a narrower panel is overstated).
  auto type = llvm::cast<mlir::MemRefType>(p.weight->get().getType());
  return p.width * type.getDimSize(1) * 4 > kPanelL2Bytes ? 33 : 20;
}

/// What a packed projection does besides summing: the value its sums start
/// from (the bias a generic broadcasts into the output, or a fill's
/// constant) and a half-split RoPE that reads only its output. The packed
/// form then starts the sums from the bias in registers and applies RoPE to
/// each block of rows before storing it, instead of a fill pass over the
/// output before and a RoPE pass over it after.
struct PackedEpilogue {
  /// The op that initializes the output: y[t, n] = bias[n] (a generic) or a
  /// linalg.fill. Null: the sums start from the output as it is.
  mlir::Operation *init = nullptr;
  /// The 1-D bias of a generic `init`, or the scalar of a fill.
  mlir::Value bias, fillValue;
  /// The RoPE generic z[t, h, p, i] = f(y[t, h, 0, i], y[t, h, 1, i],
  /// tables[t, i]..., p) over the output viewed as [T, H, 2, D/2].
  mlir::linalg::GenericOp rope;
  mlir::memref::ExpandShapeOp view;
  int64_t headDim = 0;
  /// Ops after the projection (and its RoPE) that compute each row (token,
  /// head) of what they write from the same rows of the projection's heads
  /// alone: a cache's rotation, quantization and bit-packing. The fused
  /// form runs them on each chunk of a head's rows right after computing
  /// it, while the rows are in cache, and is emitted at the last one's
  /// place. Their rows: `rowHeads` heads of `rowHeadDim` columns.
  llvm::SmallVector<mlir::Operation *> rowOps;
  /// Each row op's token and head dims (loop dims, or ivs of a loop).
  llvm::SmallVector<std::pair<unsigned, unsigned>> rowDims;
  int64_t rowHeads = 0, rowHeadDim = 0;
};

/// Whether `op`'s payload is a dot product's step on bf16 operands and
/// nothing else: sum + ext(bf16(a)) * ext(bf16(b)) in f32, `a` read through
/// `lhs` and `b` through `rhs`, each f32 rounded to nearest even
/// (roundInput for `lhs`, roundWeight for `rhs`) or bf16.
std::optional<BF16Pairs> bf16ProductOperands(mlir::linalg::GenericOp op,
                                             mlir::OpOperand *lhs,
                                             mlir::OpOperand *rhs);

/// The columns of the square matrix whose rows are `rows` (`rows.size()`
/// vectors of as many lanes, a power of two), transposed in registers by
/// two-source shuffles (ScoresForms.cpp).
llvm::SmallVector<mlir::Value>
transposeLanes(mlir::OpBuilder &b, mlir::Location l,
               llvm::SmallVector<mlir::Value> rows);

/// kPairRun elements of `source` from `at` (its last index the one that
/// advances) as bf16 (rounded to nearest even from f32 when `round`), each
/// pair swapped: vdpbf16ps adds a pair's odd element's product first, so
/// element e goes to the odd slot and the sum takes e in order. With
/// `mask`, the elements it leaves out are not read and are zero.
mlir::Value swappedPairRun(mlir::OpBuilder &b, mlir::Location l,
                           mlir::Value source, mlir::ValueRange at, bool round,
                           mlir::Value mask = {});

/// The ends of the blocks of `sizes` rows (descending, the last 1) that
/// split rows [lo, hi): as many whole blocks of sizes[0] as fit, then of
/// each later size as many as fit in the rest, so ends.back() is `hi`
/// (with 6, 3, 2, 1 or 4, 2, 1: at most one block of each later size).
/// Every block of a size covers rows inside [lo, hi) whatever the sizes.
llvm::SmallVector<mlir::Value> rowBlockEnds(mlir::OpBuilder &b,
                                            mlir::Location l, mlir::Value lo,
                                            mlir::Value hi,
                                            llvm::ArrayRef<int64_t> sizes);

/// `base + i`: `base` itself for 0 (no add of a zero constant).
mlir::Value offsetBy(mlir::OpBuilder &b, mlir::Location l, mlir::Value base,
                     int64_t i);

/// Stores `runs`, kPairRun / 2 swappedPairRuns of as many rows (weight rows,
/// keys) from element `e0`, into a panel of bf16 pairs transposed: pair p
/// of run i at [e0 / 2 + p, slot + 2 i]. A pair is 32 bits, so the 16 x 16
/// pairs are transposed in registers as i32 lanes (transposeLanes), and
/// each panel row is one store of 16 pairs.
void storeTransposedPairRuns(mlir::OpBuilder &b, mlir::Location l,
                             llvm::ArrayRef<mlir::Value> runs,
                             mlir::Value panel, mlir::Value e0,
                             mlir::Value slot);

/// The depth loop of a block of rows against a panel of bf16 pairs
/// [depth / 2, 2 x width], `pairSteps` pairs of e (an index; depth / 2 or
/// fewer): per pair of e, the panel's row is loaded once
/// (width / 16 vectors of 16 pairs) and each row's pair broadcast from
/// `pairs` [rows, depth] (swappedPairRun's order) at row `ts[i]`, one
/// vdpbf16ps per vector of sums, started from `inits` (a `width` row
/// each). Returns each row's finished sums. `eachStep`, when given, is
/// called at the top of each step with its pair index.
llvm::SmallVector<mlir::Value> pairPanelSums(
    mlir::OpBuilder &b, mlir::Location l, mlir::Value panel, mlir::Value pairs,
    llvm::ArrayRef<mlir::Value> ts, mlir::ValueRange inits,
    mlir::Value pairSteps, int64_t width,
    llvm::function_ref<void(mlir::OpBuilder &, mlir::Location, mlir::Value)>
        eachStep = nullptr);

/// The sums of rows [r0, r0 + kAmxRows) of `pairs` [rows, depth] (bf16
/// pairs, swappedPairRun's order) against a `panel` of bf16 pairs
/// [depth / 2, 2 x width], `steps` (an index) = depth / 32, as AMX tile
/// products: width / 16 tiles of 16 x
/// 16 f32 sums, started from `inits` (kAmxRows rows of `width`) through
/// `staging` (kAmxRows x width f32: tiles load and store only memory), or
/// as zeroed tiles when every init is a splat of +0.0, one
/// tdpbf16ps per sum tile and 32 elements of e (the rows' pairs a tile of 16
/// x 32, the panel's 16 pair rows x 16 columns: AMX's operand layouts, pairs
/// swapped alike in both), carried by the depth loop. Returns each row's
/// finished sums. One core's tdpbf16ps does 3.6 TFLOP/s on this session's
/// Xeon against 0.12 for vdpbf16ps (machine_limits); AMX sums a tile
/// product's pairs in its own order, not e's, so the rows differ from
/// pairPanelSums' in the last bits.
llvm::SmallVector<mlir::Value>
amxPanelSums(mlir::OpBuilder &b, mlir::Location l, mlir::Value panel,
             mlir::Value pairs, mlir::Value r0, mlir::ValueRange inits,
             mlir::Value steps, int64_t width, mlir::Value staging);

/// The packed form of `op` when it takes it (its width from the ISA's
/// vector registers), on bf16 pairs when the CPU has AVX512-BF16
/// (`cpu.bf16Dot`) and the payload rounds both operands to bf16; those
/// pairs as AMX tile products, in blocks of 16 tokens (the last one
/// partial), when it has AMX-BF16 too (`cpu.amxTiles`).
std::optional<PackedProjection> packedProjection(mlir::linalg::GenericOp op,
                                                 const HostIsa &cpu);

/// The epilogue a packed projection `op` can take: its output's init, and a
/// RoPE when the output feeds nothing else and every op between the
/// projection and the RoPE leaves the buffers they use alone (the fused
/// projection is emitted at the RoPE's place).
PackedEpilogue packedEpilogue(mlir::linalg::GenericOp op,
                              const PackedProjection &p);

/// Adds to `epi` the row ops after `op` (and its RoPE) that it can run on
/// each chunk of a head's rows (PackedEpilogue::rowOps), when there are.
void matchRowEpilogue(mlir::linalg::GenericOp op, const PackedProjection &p,
                      PackedEpilogue &epi);

/// Emits the packed form of `op` with its epilogue at the rewriter's
/// insertion point; generics created that the pass must still lower (row
/// ops' tiles) go to `created`.
void emitPackedProjection(
    mlir::IRRewriter &rewriter, mlir::linalg::GenericOp op,
    const LoopBounds &all, const PackedProjection &p, const PackedEpilogue &epi,
    llvm::SmallVectorImpl<mlir::linalg::GenericOp> &created);

} // namespace rotor::host

#endif // ROTOR_LIB_CODEGEN_HOST_PACKEDPROJECTION_H
