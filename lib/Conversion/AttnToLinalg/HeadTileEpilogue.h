//===- HeadTileEpilogue.h - Per-head ops in a GEMM's epilogue ---*- C++ -*-===//
//
// A projection that is split into heads and then rotated, Hadamard-rotated
// or block-quantized per head (the Q, K and V paths of a layer with a
// rotated, quantized KV cache) can finish in the GEMM that computes it when
// a column tile is one head: every op of the chain reads only its own head.
// This header matches such chains and emits them as workgroup phases over
// the tile's sums, so that only the chain's results reach memory.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_LIB_CONVERSION_ATTNTOLINALG_HEADTILEEPILOGUE_H
#define ROTOR_LIB_CONVERSION_ATTNTOLINALG_HEADTILEEPILOGUE_H

#include "LoweringUtils.h"

#include <optional>

namespace rotor::attn::lowering {

/// The ops after a projection that its GEMM can apply per head: the split
/// into heads, then, in this order, each optional but at least one present
/// and each the only user of the value before it, a RoPE (with a rotary
/// dim), a Hadamard rotation, a block quantization.
struct HeadEpilogueChain {
  mlir::tensor::ExpandShapeOp expand;
  RopeOp rope;
  HadamardOp hadamard;
  QuantizeOp quantize;

  /// The chain's last op, whose results the epilogue produces.
  mlir::Operation *last() const;
};

/// The chain after `linear`, or a match failure saying why there is none
/// or why its types cannot share the GEMM's accumulator buffer.
mlir::FailureOr<HeadEpilogueChain>
matchHeadEpilogue(LinearOp linear, mlir::PatternRewriter &rewriter);

/// Emits a matched chain into a GEMM whose column tiles are heads. Each op
/// computes exactly what its standalone lowering does (bit for bit): the
/// tile's sums are rounded to the projection's type, then each op's
/// results are rounded to its type, and its arithmetic is in its
/// precision's types and order.
class HeadTileEpilogue {
public:
  /// Materializes what the epilogue reads and allocates its results, where
  /// `b` is (after the chain's operands, before the workgroup loop).
  HeadTileEpilogue(mlir::ImplicitLocOpBuilder &b, LinearOp linear,
                   const HeadEpilogueChain &chain);

  /// The phases that finish rows [row0, row0 + rows) of head `head`: `sums`
  /// is the workgroup buffer [rows, D] of the GEMM's accumulate type, which
  /// they reuse for intermediate values; rows at or past `tokens` are left
  /// alone.
  void emit(mlir::ImplicitLocOpBuilder &wb, mlir::Value row0, mlir::Value head,
            mlir::Value tokens, mlir::Value sums, int64_t rows);

  /// Replaces the chain's last op by the results and erases the rest of the
  /// chain and `linear`.
  void replaceChain(mlir::ImplicitLocOpBuilder &b,
                    mlir::PatternRewriter &rewriter);

private:
  LinearOp linear;
  HeadEpilogueChain chain;
  std::optional<RopeEmitter> rope;
  mlir::Value positions;
  /// The chain's results as buffers: the last op's result, or codes and
  /// scales.
  llvm::SmallVector<mlir::Value> outputs;
};

} // namespace rotor::attn::lowering

#endif // ROTOR_LIB_CONVERSION_ATTNTOLINALG_HEADTILEEPILOGUE_H
