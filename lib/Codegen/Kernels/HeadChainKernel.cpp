//===- HeadChainKernel.cpp - Per-head op chains as one kernel -------------===//
//
// A chain of per-head ops (HeadTileEpilogue.h) that no GEMM finishes (after
// a decode GEMV, or on a tensor that is not a projection) would otherwise be
// a kernel per op and, for a rotation, one per butterfly stage: log2(G) + 2
// launches, each a round trip through memory. Here it is one workgroup
// kernel: a block stages a few tokens of one head into an f32 workgroup
// buffer and runs the chain's phases on it, writing only the chain's
// results. A RoPE alone keeps its own lowering, already one elementwise
// kernel.
//
//===----------------------------------------------------------------------===//

#include "HeadTileEpilogue.h"
#include "rotor/Codegen/Kernels/Kernels.h"
#include "WorkgroupKernel.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// The kernel of one chain: the chain, and the tokens of one head that a
/// workgroup stages as f32 (at most the config's rows, fewer when the call
/// has fewer).
struct HeadChainPlan {
  HeadChain chain;
  int64_t rows;
};

/// The plan for the chain at `op` with at most `maxRows` tokens per
/// workgroup, or why there is no such kernel.
FailureOr<HeadChainPlan> matchHeadChainKernel(Operation *op, int64_t maxRows,
                                              PatternRewriter &rewriter) {
  if (!isa<RopeOp, HadamardOp, QuantizeOp>(op))
    return failure();
  Type f32 = rewriter.getF32Type();
  FailureOr<HeadChain> chain = matchHeadChain(op, f32, rewriter);
  if (failed(chain))
    return failure();
  if (!chain->hadamard && !chain->quantize)
    return rewriter.notifyMatchFailure(
        op, "a RoPE alone is one elementwise kernel already");
  auto type = cast<RankedTensorType>(chain->input.getType());
  if (type.getElementType().getIntOrFloatBitWidth() > 32)
    return rewriter.notifyMatchFailure(op, "input wider than f32");
  int64_t heads = type.getDimSize(1), d = type.getDimSize(2);
  int64_t rows = type.isDynamicDim(0)
                     ? maxRows
                     : std::clamp<int64_t>(type.getDimSize(0), 1, maxRows);
  if (rows * d * bytesOf(f32) > kStaticWorkgroupBytes || heads > kMaxGridY)
    return rewriter.notifyMatchFailure(op, "head does not fit a block");
  return HeadChainPlan{*chain, rows};
}

/// The grid is row tiles x heads; each workgroup stages its rows of one
/// head and runs the chain's phases on them (HeadTileEpilogue).
struct LowerHeadChainToWorkgroupTiles : RewritePattern {
  LowerHeadChainToWorkgroupTiles(MLIRContext *ctx)
      : RewritePattern(MatchAnyOpTypeTag(), /*benefit=*/1, ctx) {}

  LogicalResult matchAndRewrite(Operation *op,
                                PatternRewriter &rewriter) const override {
    KernelConfigAttr config = getKernelConfig(op);
    if (!config || config.getStrategy() != KernelStrategy::HeadChain)
      return failure();
    FailureOr<HeadChainPlan> plan =
        matchHeadChainKernel(op, config.getRows(), rewriter);
    if (failed(plan))
      return failure();
    const HeadChain &chain = plan->chain;
    int64_t rows = plan->rows;
    auto type = cast<RankedTensorType>(chain.input.getType());
    int64_t heads = type.getDimSize(1);

    rewriter.setInsertionPoint(chain.last());
    ImplicitLocOpBuilder b(chain.last()->getLoc(), rewriter);
    Value tokens = tensor::DimOp::create(b, chain.input, 0);
    HeadTileEpilogue epilogue(b, chain, tokens, rewriter.getF32Type(),
                              /*readsInput=*/true);
    OpFoldResult rowTiles =
        type.isDynamicDim(0)
            ? OpFoldResult(
                  arith::CeilDivUIOp::create(b, tokens, indexConst(b, rows)))
            : b.getIndexAttr(llvm::divideCeil(type.getDimSize(0), rows));
    workgroupLoop(b, {rowTiles, b.getIndexAttr(heads)},
                  [&](ImplicitLocOpBuilder &wb, ValueRange ivs) {
                    Value row0 =
                        arith::MulIOp::create(wb, ivs[0], indexConst(wb, rows));
                    epilogue.emitFromInput(wb, row0, ivs[1], tokens, rows);
                  });
    epilogue.replaceChain(b, rewriter);
    return success();
  }
};

} // namespace

std::string rotor::attn::lowering::headChainObstacle(Operation *op,
                                                     int64_t rows) {
  PatternRewriter rewriter(op->getContext());
  std::string why = "not a per-head chain";
  // The match failure's reason, for the kernel-config pass's message.
  struct Listener : RewriterBase::Listener {
    std::string *why;
    void notifyMatchFailure(
        Location, function_ref<void(Diagnostic &)> reason) override {
      Diagnostic diag(UnknownLoc(), DiagnosticSeverity::Remark);
      reason(diag);
      *why = diag.str();
    }
  } listener;
  listener.why = &why;
  rewriter.setListener(&listener);
  if (succeeded(matchHeadChainKernel(op, rows, rewriter)))
    return "";
  return why;
}

void rotor::attn::lowering::populateWorkgroupHeadChainPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerHeadChainToWorkgroupTiles>(patterns.getContext());
}
