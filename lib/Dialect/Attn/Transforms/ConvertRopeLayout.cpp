//===- ConvertRopeLayout.cpp - RoPE layout conversion by row permutation --===//

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"
#include "rotor/Dialect/Attn/Transforms/RopeLayout.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace rotor::attn {
#define GEN_PASS_DEF_ATTNCONVERTROPELAYOUT
#include "rotor/Dialect/Attn/Transforms/Passes.h.inc"
} // namespace rotor::attn

using namespace mlir;
using namespace rotor::attn;

SmallVector<int64_t> rotor::attn::ropeHeadPermutation(RopeLayout from,
                                                      int64_t d, int64_t r) {
  SmallVector<int64_t> perm(d);
  for (int64_t j = 0; j < d; ++j)
    perm[j] = j;
  for (int64_t i = 0; i < r / 2; ++i) {
    if (from == RopeLayout::HalfSplit) { // to interleaved
      perm[2 * i] = i;
      perm[2 * i + 1] = i + r / 2;
    } else { // to half-split
      perm[i] = 2 * i;
      perm[i + r / 2] = 2 * i + 1;
    }
  }
  return perm;
}

SmallVector<int64_t> rotor::attn::ropeRowPermutation(RopeLayout from,
                                                     int64_t heads, int64_t d,
                                                     int64_t r) {
  SmallVector<int64_t> head = ropeHeadPermutation(from, d, r);
  SmallVector<int64_t> rows;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j : head)
      rows.push_back(h * d + j);
  return rows;
}

namespace {

/// What a converted RoPE rewrites: the projection's weight and bias, and the
/// optional per-head norm's weight.
struct RopeSource {
  RopeOp rope;
  LinearOp linear;
  RmsNormOp norm; // may be null
};

FailureOr<RopeSource> findSource(RopeOp rope, std::string &why) {
  RopeSource src{rope, {}, {}};
  Value v = rope.getInput();
  if (auto norm = v.getDefiningOp<RmsNormOp>()) {
    src.norm = norm;
    v = norm.getInput();
  }
  auto expand = v.getDefiningOp<tensor::ExpandShapeOp>();
  if (!expand || expand.getReassociationIndices() !=
                     SmallVector<ReassociationIndices>{{0}, {1, 2}}) {
    why = "its input is not a projection split into heads";
    return failure();
  }
  src.linear = expand.getSrc().getDefiningOp<LinearOp>();
  if (!src.linear) {
    why = "its heads do not come from an attn.linear";
    return failure();
  }
  return src;
}

/// Whether `v` reaches only SDPA queries/keys, through the ops that carry
/// keys unchanged (cache append/read, captures). An updated KV cache may
/// also be returned: it is the state the next step reads, converted alike.
bool reachesOnlyScores(Value v, bool &asQuery, bool &asKey,
                       bool isCache = false) {
  for (OpOperand &use : v.getUses()) {
    Operation *user = use.getOwner();
    if (isCache && isa<func::ReturnOp>(user))
      continue;
    if (auto sdpa = dyn_cast<SdpaOp>(user)) {
      if (use.get() == sdpa.getQuery() && use.getOperandNumber() == 0)
        asQuery = true;
      else if (use.getOperandNumber() == 1)
        asKey = true;
      else
        return false;
    } else if (isa<KVCacheAppendOp, KVCacheReadOp, CaptureOp>(user)) {
      if (isa<KVCacheAppendOp>(user) &&
          use.get() != cast<KVCacheAppendOp>(user).getUpdate())
        continue; // the cache operand itself: already permuted keys
      if (!reachesOnlyScores(user->getResult(0), asQuery, asKey,
                             isa<KVCacheAppendOp>(user)))
        return false;
    } else {
      return false;
    }
  }
  return true;
}

/// Permutes dim 0 of `value` (a parameter of `rows` rows) by `perm`.
Value permuteRows(OpBuilder &b, Location loc, Value value,
                  ArrayRef<int64_t> perm) {
  return PermuteOp::create(b, loc, value, b.getI64IntegerAttr(0),
                           b.getDenseI64ArrayAttr(perm))
      .getResult();
}

struct AttnConvertRopeLayoutPass
    : rotor::attn::impl::AttnConvertRopeLayoutBase<AttnConvertRopeLayoutPass> {
  using Base::Base;

  void runOnOperation() override {
    std::optional<RopeLayout> target = symbolizeRopeLayout(to);
    if (!target) {
      getOperation().emitError()
          << "attn-convert-rope-layout: 'to' must be half_split or "
             "interleaved, got '"
          << to << "'";
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>())
      convert(func, *target);
  }

  void convert(func::FuncOp func, RopeLayout target) {
    SmallVector<RopeSource> sources;
    bool query = false, key = false;
    std::string why;
    WalkResult walk = func.walk([&](RopeOp rope) {
      if (rope.getLayout() == target || rope.getRotaryDim() == 0)
        return WalkResult::advance();
      FailureOr<RopeSource> src = findSource(rope, why);
      if (failed(src)) {
        why = "a RoPE's " + why;
        return WalkResult::interrupt();
      }
      if (!reachesOnlyScores(rope.getResult(), query, key)) {
        why = "a RoPE's result is used by something other than attention "
              "scores, which would see the permuted order";
        return WalkResult::interrupt();
      }
      sources.push_back(*src);
      return WalkResult::advance();
    });
    if (sources.empty() && !walk.wasInterrupted())
      return;
    if (!walk.wasInterrupted() && !(query && key))
      why = "only the queries' or only the keys' RoPE would be converted";
    if (walk.wasInterrupted() || !(query && key)) {
      func.emitRemark() << "attn-convert-rope-layout left @"
                        << func.getSymName() << " alone: " << why;
      return;
    }

    OpBuilder b(func.getContext());
    for (RopeSource &src : sources) {
      RopeOp rope = src.rope;
      auto type = cast<RankedTensorType>(rope.getInput().getType());
      int64_t heads = type.getDimSize(1), d = type.getDimSize(2);
      SmallVector<int64_t> head =
          ropeHeadPermutation(rope.getLayout(), d, rope.getRotaryDim());
      SmallVector<int64_t> rows =
          ropeRowPermutation(rope.getLayout(), heads, d, rope.getRotaryDim());

      LinearOp linear = src.linear;
      b.setInsertionPoint(linear);
      Location loc = linear.getLoc();
      linear.getWeightMutable().assign(
          permuteRows(b, loc, linear.getWeight(), rows));
      if (Value bias = linear.getBias())
        linear.getBiasMutable().assign(permuteRows(b, loc, bias, rows));
      if (RmsNormOp norm = src.norm) {
        b.setInsertionPoint(norm);
        norm.getWeightMutable().assign(
            permuteRows(b, norm.getLoc(), norm.getWeight(), head));
      }
      rope.setLayout(target);
    }
  }
};

} // namespace
