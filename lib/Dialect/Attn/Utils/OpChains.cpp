//===- OpChains.cpp - Chains of attn ops that lowerings fuse --------------===//

#include "rotor/Dialect/Attn/Utils/OpChains.h"

using namespace mlir;

namespace rotor::attn::lowering {

FailureOr<ProjectionIntoRope>
matchProjectionIntoRope(LinearOp linear, PatternRewriter &rewriter) {
  if (!linear->hasOneUse())
    return rewriter.notifyMatchFailure(linear, "projection has other users");
  auto expand = dyn_cast<tensor::ExpandShapeOp>(*linear->user_begin());
  if (!expand || !expand->hasOneUse() ||
      expand.getReassociationIndices() !=
          SmallVector<ReassociationIndices>{{0}, {1, 2}})
    return rewriter.notifyMatchFailure(linear, "not split into heads");
  auto rope = dyn_cast<RopeOp>(*expand->user_begin());
  if (!rope || rope.getInput() != expand.getResult() ||
      rope.getRotaryDim() == 0)
    return rewriter.notifyMatchFailure(linear, "heads do not feed a RoPE");
  return ProjectionIntoRope{expand, rope};
}

} // namespace rotor::attn::lowering
