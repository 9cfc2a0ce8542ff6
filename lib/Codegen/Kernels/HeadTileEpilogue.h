//===- HeadTileEpilogue.h - Per-head ops in a GEMM's epilogue ---*- C++ -*-===//
//
// A tensor split into heads and then rotated (RoPE), Hadamard-rotated or
// block-quantized per head (the Q, K and V paths of a layer with a rotated,
// quantized KV cache) can be finished by one workgroup per head and row
// tile: every op of the chain reads only its own head. This header matches
// such chains and emits them as workgroup phases over a buffer of the
// head's rows, so that only the chain's results reach memory: in the
// epilogue of the GEMM that computes a projection (one head per column
// tile), or as a kernel of its own after a GEMV.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_LIB_CODEGEN_KERNELS_HEADTILEEPILOGUE_H
#define ROTOR_LIB_CODEGEN_KERNELS_HEADTILEEPILOGUE_H

#include "rotor/Dialect/Attn/Utils/OpArithmetic.h"
#include "rotor/Dialect/Attn/Utils/OpChains.h"

#include <optional>

namespace rotor::attn::lowering {

/// Ops applied per head to a [T, H, D] tensor `input`: in this order,
/// each optional but at least one present and each the only user of the
/// value before it, a RoPE (with a rotary dim), a Hadamard rotation, a block
/// quantization.
struct HeadChain {
  mlir::Value input;
  RopeOp rope;
  HadamardOp hadamard;
  QuantizeOp quantize;

  /// The chain's first and last ops (the last's results are the chain's).
  mlir::Operation *first() const;
  mlir::Operation *last() const;
};

/// The chain that starts at `first` (a RoPE, rotation or quantization),
/// whose intermediate values a buffer of `bufferType` holds exactly, or a
/// match failure saying why there is none.
mlir::FailureOr<HeadChain> matchHeadChain(mlir::Operation *first,
                                          mlir::Type bufferType,
                                          mlir::PatternRewriter &rewriter);

/// A projection split into heads that feed a chain: what its GEMM can
/// finish in its epilogue, with intermediates in its accumulate type.
struct ProjectionHeadChain {
  mlir::tensor::ExpandShapeOp expand;
  HeadChain chain;
};
mlir::FailureOr<ProjectionHeadChain>
matchProjectionHeadChain(LinearOp linear, mlir::PatternRewriter &rewriter);

/// Emits a matched chain as workgroup phases over a buffer [rows, D] of one
/// head's rows. Each op computes exactly what its standalone lowering does
/// (bit for bit): the buffer's values are read as the chain's input type,
/// each op's results are rounded to its type, and its arithmetic is in its
/// precision's types and order.
class HeadTileEpilogue {
public:
  /// Materializes what the epilogue reads and allocates its results, where
  /// `b` is (after the chain's operands, before the workgroup loop).
  /// `tokens` is the chain's token count (an index), `bufferType` the
  /// element type of the buffers `emit` is given, `readsInput` whether
  /// `emitFromInput` will be used.
  HeadTileEpilogue(mlir::ImplicitLocOpBuilder &b, const HeadChain &chain,
                   mlir::Value tokens, mlir::Type bufferType, bool readsInput);

  /// The phases that finish rows [row0, row0 + rows) of head `head`:
  /// `buffer` [rows, D] holds the chain's input (exactly, or rounding to the
  /// input type; a GEMM's sums), and the phases reuse it for intermediate
  /// values; rows at or past `tokens` are left alone.
  void emit(mlir::ImplicitLocOpBuilder &wb, mlir::Value row0, mlir::Value head,
            mlir::Value tokens, mlir::Value buffer, int64_t rows);

  /// A phase that stages rows [row0, row0 + rows) of head `head` of the
  /// chain's input into a new workgroup buffer of `bufferType` (which must
  /// hold the input exactly), then `emit` on it.
  void emitFromInput(mlir::ImplicitLocOpBuilder &wb, mlir::Value row0,
                     mlir::Value head, mlir::Value tokens, int64_t rows);

  /// Replaces the chain's last op by the results and erases the rest of the
  /// chain.
  void replaceChain(mlir::ImplicitLocOpBuilder &b,
                    mlir::PatternRewriter &rewriter);

private:
  HeadChain chain;
  mlir::Type bufferType;
  std::optional<RopeEmitter> rope;
  mlir::Value positions, input;
  /// The chain's results as buffers: the last op's result, or codes and
  /// scales.
  llvm::SmallVector<mlir::Value> outputs;
};

} // namespace rotor::attn::lowering

#endif // ROTOR_LIB_CODEGEN_KERNELS_HEADTILEEPILOGUE_H
