//===- CheckRopeLayout.cpp - RoPE layout against the weights' row order ---===//

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"
#include "rotor/Dialect/Attn/Transforms/RopeLayout.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace rotor::attn {
#define GEN_PASS_DEF_ATTNCHECKROPELAYOUT
#include "rotor/Dialect/Attn/Transforms/Passes.h.inc"
} // namespace rotor::attn

using namespace mlir;
using namespace rotor::attn;

namespace {

RopeLayout other(RopeLayout layout) {
  return layout == RopeLayout::HalfSplit ? RopeLayout::Interleaved
                                         : RopeLayout::HalfSplit;
}

/// The pair order of the rows of `weight`, and the parameter it comes from:
/// a param's `rows`, turned into the other order by each permutation that
/// converts it for heads of `d` dims with `r` rotary dims. Unknown when the
/// param has no `rows` or a permutation is some other one.
std::optional<std::pair<RopeLayout, ParamOp>>
rowOrder(Value weight, int64_t heads, int64_t d, int64_t r) {
  if (auto param = weight.getDefiningOp<ParamOp>()) {
    if (std::optional<RopeLayout> rows = param.getRows())
      return std::pair(*rows, param);
    return std::nullopt;
  }
  auto permute = weight.getDefiningOp<PermuteOp>();
  if (!permute || permute.getDim() != 0)
    return std::nullopt;
  auto inner = rowOrder(permute.getInput(), heads, d, r);
  if (!inner)
    return std::nullopt;
  if (permute.getPermutation() !=
      ArrayRef<int64_t>(ropeRowPermutation(inner->first, heads, d, r)))
    return std::nullopt;
  return std::pair(other(inner->first), inner->second);
}

struct AttnCheckRopeLayoutPass
    : rotor::attn::impl::AttnCheckRopeLayoutBase<AttnCheckRopeLayoutPass> {
  using Base::Base;

  void runOnOperation() override {
    bool failedCheck = false;
    getOperation().walk([&](RopeOp rope) {
      if (rope.getRotaryDim() == 0)
        return;
      Value v = rope.getInput();
      if (auto norm = v.getDefiningOp<RmsNormOp>())
        v = norm.getInput();
      auto expand = v.getDefiningOp<tensor::ExpandShapeOp>();
      auto linear = expand ? expand.getSrc().getDefiningOp<LinearOp>() : nullptr;
      if (!linear)
        return;
      auto type = cast<RankedTensorType>(rope.getInput().getType());
      auto order = rowOrder(linear.getWeight(), type.getDimSize(1),
                            type.getDimSize(2), rope.getRotaryDim());
      if (!order || order->first == rope.getLayout())
        return;
      InFlightDiagnostic diag =
          allowMismatch ? rope.emitWarning() : rope.emitOpError();
      diag << "pairs dims as " << stringifyRopeLayout(rope.getLayout())
           << ", but the rows of its projection weight '"
           << order->second.getName() << "' are stored "
           << stringifyRopeLayout(order->first)
           << " (convert with attn-convert-rope-layout)";
      diag.attachNote(order->second.getLoc()) << "the weight is read here";
      failedCheck |= !allowMismatch;
    });
    if (failedCheck)
      signalPassFailure();
  }
};

} // namespace
