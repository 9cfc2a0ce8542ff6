//===- OpChains.h - Chains of attn ops that lowerings fuse -----*- C++ -*-===//
//
// Matchers for producer/consumer chains that a lowering or a kernel
// computes as one (a projection whose heads feed a RoPE), shared by the
// loop-level projection+RoPE lowering and the GEMV that rotates in its
// epilogue.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_DIALECT_ATTN_UTILS_OPCHAINS_H
#define ROTOR_DIALECT_ATTN_UTILS_OPCHAINS_H

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace rotor::attn::lowering {

/// A projection whose only use is its split into heads, whose only use is a
/// RoPE with a rotary dim (the Q and K paths): what an epilogue can fuse.
struct ProjectionIntoRope {
  mlir::tensor::ExpandShapeOp expand;
  RopeOp rope;
};
mlir::FailureOr<ProjectionIntoRope>
matchProjectionIntoRope(LinearOp linear, mlir::PatternRewriter &rewriter);

} // namespace rotor::attn::lowering

#endif // ROTOR_DIALECT_ATTN_UTILS_OPCHAINS_H
