//===- RegisterLoops.h - Shared by the register-loop forms ------*- C++ -*-===//
//
// What rotor-lower-reductions-to-register-loops (LowerReductionsToRegister-
// Loops.cpp) and its forms for tiles of attention scores (ScoresForms.cpp)
// and for a prefill block's P·V (ValuesForms.cpp) share: the loop helpers
// of the register forms, and the forms the lowering chooses among.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_LIB_CODEGEN_HOST_REGISTERLOOPS_H
#define ROTOR_LIB_CODEGEN_HOST_REGISTERLOOPS_H

#include "PackedProjection.h"
#include "ScoresEpilogue.h"

#include "mlir/IR/PatternMatch.h"

namespace rotor::host {

//===----------------------------------------------------------------------===//
// Loop helpers (LowerReductionsToRegisterLoops.cpp)
//===----------------------------------------------------------------------===//

/// The dim that indexes the contiguous (last) axis of `map`'s operand.
std::optional<unsigned> contiguousDim(mlir::AffineMap map);

/// The register form's loops over the parallel ivs [lbs, ubs), `jam`
/// outputs a loop per parallel dim, each sum carried through the reduction
/// loops.
void emitRegisterLoops(mlir::OpBuilder &rb, mlir::Location loc,
                       mlir::linalg::GenericOp op, const LoopBounds &all,
                       llvm::ArrayRef<mlir::Value> lbs,
                       llvm::ArrayRef<mlir::Value> ubs,
                       llvm::ArrayRef<int64_t> jam);

/// Whether `map` reads operand `value` at the same element whatever dims
/// `dims` are (an index that depends on them is on an axis of size 1).
bool sameAlongDims(mlir::AffineMap map, mlir::Value value,
                   llvm::ArrayRef<unsigned> dims);

/// An input's row given in place of the loaded one, at a position (its
/// index and ivs); null: load it.
using RowLoad = llvm::function_ref<mlir::Value(
    mlir::OpBuilder &, mlir::Location, mlir::OpOperand *, int64_t,
    llvm::ArrayRef<mlir::Value>)>;

/// The payload of `op` on rows of `width` elements at each of `positions`,
/// with running rows `accs`; an input read along `along` is loaded as a
/// row, an input the same whatever dim `jammed` once for all positions.
llvm::SmallVector<mlir::Value>
emitSharedRowPayloads(mlir::OpBuilder &b, mlir::Location l,
                      mlir::linalg::GenericOp op, int64_t width,
                      llvm::ArrayRef<llvm::SmallVector<mlir::Value>> positions,
                      mlir::ValueRange accs, unsigned jammed, unsigned along,
                      RowLoad load = nullptr);

/// Whether `op`'s payload reads `input` only to widen it to f32 from a
/// narrower float (arith.extf: exact), so a caller may give it widened.
bool onlyWidenedToF32(mlir::linalg::GenericOp op, mlir::OpOperand *input);

/// f32 lanes of one SIMD register: 16 with 32 registers (AVX-512), else 8.
int64_t f32Lanes(int64_t vectorRegisters);

/// Whether the rows that `dims` index, `rowElements` sums each, fit in L1
/// with room to spare (a decode step's heads).
bool fewRows(mlir::linalg::GenericOp op, const LoopBounds &all,
             llvm::ArrayRef<unsigned> dims, int64_t rowElements);

//===----------------------------------------------------------------------===//
// Tiles of scores and row panels (ScoresForms.cpp)
//===----------------------------------------------------------------------===//

/// Whether `op` is a tile of scores s[.., j] += f(a[.., e], k[j, .., e])
/// that the key-block form takes (`lanes` keys a block).
bool isKeyBlockScores(mlir::linalg::GenericOp op, const LoopBounds &all,
                      int64_t lanes);

/// The key-block form: per block of `lanes` keys, each key's lane partial
/// sums reduced together by a shuffle tree.
void emitKeyBlockScores(mlir::IRRewriter &rewriter, mlir::linalg::GenericOp op,
                        const LoopBounds &all, int64_t lanes);

/// An outer-product tile's rows, columns and reduction: the row dims (the
/// parallel dims but the column, linearized with the last fastest), their
/// extents and count, the column dim and the one reduction dim.
struct RowPanelTile {
  llvm::SmallVector<unsigned> rowDims;
  llvm::SmallVector<mlir::OpFoldResult> extents;
  mlir::Value rows;
  /// The rows that whole blocks of kPackedRows cover.
  mlir::Value blockedRows;
  unsigned column, reduction;
};

RowPanelTile rowPanelTile(mlir::OpBuilder &b, mlir::Location l,
                          const LoopBounds &all, unsigned column,
                          unsigned reduction);
/// The loop ivs of `tile`'s row `r` (its linear index): the row dims'
/// positions, every other dim at its lower bound.
llvm::SmallVector<mlir::Value> rowPosition(mlir::OpBuilder &b, mlir::Location l,
                                           const LoopBounds &all,
                                           const RowPanelTile &tile,
                                           mlir::Value r);

/// What a row panel's sums start from and what is stored, when not the
/// output's values and the sums themselves.
struct RowPanelEnds {
  /// The scalar every sum starts from (the output's fill, fused).
  mlir::Value init;
  /// Maps each row of sums (at its parallel dims' position) to the row
  /// stored.
  llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                 llvm::ArrayRef<mlir::Value>, mlir::Value)>
      store;
  /// Replaces the reduction loop: the finished sums of the block's rows
  /// (their linear indices in the tile) from their initial rows.
  llvm::function_ref<llvm::SmallVector<mlir::Value>(
      mlir::OpBuilder &, mlir::Location, llvm::ArrayRef<mlir::Value>,
      mlir::ValueRange)>
      sums;
  /// With `sums`: the rows first run in blocks of this many (AMX's 16),
  /// before the kPackedRows blocks and single rows of the rest.
  int64_t firstBlock = 0;
};

/// Every row of `tile` against the panel of `width` columns at `c0`:
/// kPackedRows at a time, then the rest one at a time; `columnRow` gives
/// the input read along the columns at a step's ivs.
void emitRowPanel(mlir::OpBuilder &b, mlir::Location l,
                  mlir::linalg::GenericOp op, const LoopBounds &all,
                  const RowPanelTile &tile, mlir::Value c0, int64_t width,
                  mlir::Value mask,
                  llvm::function_ref<mlir::Value(
                      mlir::OpBuilder &, mlir::Location, mlir::OpOperand *,
                      llvm::ArrayRef<mlir::Value>)>
                      columnRow,
                  const RowPanelEnds *ends = nullptr);

/// The key input of a tile of scores that the packed form takes (many
/// rows sharing one packed copy of the keys), or null.
mlir::OpOperand *packedScoresKeys(mlir::linalg::GenericOp op,
                                  const LoopBounds &all, int64_t lanes);

/// The packed form: blocks of `width` keys packed transposed, the rows
/// kPackedRows at a time as outer products; `scores` fused when given.
void emitPackedScores(mlir::IRRewriter &rewriter, mlir::linalg::GenericOp op,
                      const LoopBounds &all, mlir::OpOperand *keys,
                      int64_t width, int64_t lanes,
                      const ScoresEpilogue *scores);

/// The query input when the packed scores can take the bf16 pair form
/// (AVX512-BF16 dot products), or null.
mlir::OpOperand *pairScoresQuery(mlir::linalg::GenericOp op,
                                 const LoopBounds &all, mlir::OpOperand *keys,
                                 int64_t width);

/// The packed scores as bf16 pair dot products; with `amxTiles`, blocks of
/// 16 query rows as AMX tile products.
void emitPairScores(mlir::IRRewriter &rewriter, mlir::linalg::GenericOp op,
                    const LoopBounds &all, mlir::OpOperand *query,
                    mlir::OpOperand *keys, int64_t width, int64_t lanes,
                    const ScoresEpilogue *scores, bool amxTiles = false);

/// Keys per block of the packed scores.
int64_t packedScoresWidth(int64_t vectorRegisters);

//===----------------------------------------------------------------------===//
// A prefill block's P·V (ValuesForms.cpp)
//===----------------------------------------------------------------------===//

/// The columns per block when a RowInRegisters reduction with output rows
/// `width` wide takes the RowPanel form (many rows sharing V's rows).
std::optional<int64_t> rowPanelColumns(mlir::linalg::GenericOp op,
                                       const LoopBounds &all, int64_t width,
                                       int64_t vectorRegisters);
/// The RowPanel form: blocks of kPackedRows rows as outer products on V's
/// rows, `columns` at a time.
void lowerToRowPanelLoops(mlir::IRRewriter &rewriter,
                          mlir::linalg::GenericOp op, const LoopBounds &all,
                          int64_t width, int64_t columns);
/// The probabilities input when the RowPanel form can run on bf16 pairs
/// of keys (AVX512-BF16 dot products), or null.
mlir::OpOperand *pairValuesProbabilities(mlir::linalg::GenericOp op,
                                         const LoopBounds &all, int64_t width,
                                         int64_t columns);
/// The RowPanel form as bf16 pair dot products; with `amxTiles`, blocks of
/// 16 rows as AMX tile products.
void emitPairValues(mlir::IRRewriter &rewriter, mlir::linalg::GenericOp op,
                    const LoopBounds &all, mlir::OpOperand *probs,
                    int64_t width, int64_t columns, bool amxTiles = false);

} // namespace rotor::host

#endif // ROTOR_LIB_CODEGEN_HOST_REGISTERLOOPS_H
