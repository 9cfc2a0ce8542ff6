//===- ScoresEpilogue.h - A packed tile of scores' row epilogue -*- C++ -*-===//
//
// Shared by rotor-lower-reductions-to-register-loops
// (LowerReductionsToRegisterLoops.cpp: the packed form of a prefill
// block's scores) and the epilogue it applies to each row of scores while
// they are in registers (ScoresEpilogue.cpp: the softmax's scale, causal
// mask and running row max).
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_LIB_CODEGEN_HOST_SCORESEPILOGUE_H
#define ROTOR_LIB_CODEGEN_HOST_SCORESEPILOGUE_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"

#include <optional>

namespace rotor::host {

/// What an online softmax does to a tile of scores s[.., j] right after
/// computing it, in the ops that follow the scores' generic: elementwise
/// generics that rewrite s in place (the scale, the causal mask), then the
/// row max m[..] = max(m[..], max_j s[.., j]) into a running buffer. The
/// packed form of the scores applies them to each row of sums in registers
/// before storing it, instead of one pass over the tile each; it is
/// emitted at the row max's place. The sums start from the value of the
/// scores' fill when one initializes them (the tile is all written).
struct ScoresEpilogue {
  /// The linalg.fill of the scores, the last op before them to touch them.
  mlir::linalg::FillOp init;
  /// In order; each reads and writes the scores at the same element, and
  /// reads its other inputs at an index that does not depend on the key.
  llvm::SmallVector<mlir::linalg::GenericOp> elementwise;
  /// The row max over the key (a maximumf of the score and the running
  /// value), into a buffer the scores' ops never touch.
  mlir::linalg::GenericOp rowMax;
};

/// The epilogue of the tile of scores `scores` (its key the last parallel
/// dim, its output indexed by exactly the parallel dims) when the ops
/// after it, up to a row max of its output, are that epilogue and ops that
/// commute with it: pure ops, allocations, and ops that write only buffers
/// allocated after `scores` (the running max's copy) and touch neither the
/// scores nor what the epilogue reads.
std::optional<ScoresEpilogue>
matchScoresEpilogue(mlir::linalg::GenericOp scores);

/// Applies `epi` to one row of scores `sums` (`width` elements, the keys
/// from at[key] on, the lanes past `mask` not keys; no mask: all are)
/// whose loop position `at` gives every parallel dim: returns the row to
/// store, after the elementwise ops, and folds its max into the running
/// max (by a tree over vectors of `lanes`, the CPU's f32 lanes).
mlir::Value emitScoresEpilogueRow(mlir::OpBuilder &b, mlir::Location l,
                                  const ScoresEpilogue &epi,
                                  llvm::ArrayRef<mlir::Value> at, unsigned key,
                                  int64_t width, int64_t lanes,
                                  mlir::Value sums, mlir::Value mask);

} // namespace rotor::host

#endif // ROTOR_LIB_CODEGEN_HOST_SCORESEPILOGUE_H
