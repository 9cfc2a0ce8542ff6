//===- LowerWorkgroupKernels.cpp - The rotor-lower-workgroup-kernels pass -===//

#include "rotor/Codegen/Kernels/Kernels.h"

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace rotor {
#define GEN_PASS_DEF_LOWERWORKGROUPKERNELS
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;
using namespace rotor;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

struct LowerWorkgroupKernelsPass
    : rotor::impl::LowerWorkgroupKernelsBase<LowerWorkgroupKernelsPass> {
  using Base::Base;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateWorkgroupTiledLinearPatterns(patterns);
    populateWorkgroupGemvPatterns(patterns);
    populateWorkgroupHeadChainPatterns(patterns);
    populateWorkgroupTiledSdpaPatterns(patterns);
    // In program order, as the conversion that follows visits ops: a
    // projection is built before the RoPE/rotation chain that reads it, so
    // that its GEMM can take the chain into its epilogue.
    GreedyRewriteConfig config;
    config.setUseTopDownTraversal(true);
    config.enableFolding(false);
    config.enableConstantCSE(false);
    config.setRegionSimplificationLevel(GreedySimplifyRegionLevel::Disabled);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     config))) {
      getOperation().emitError("rotor-lower-workgroup-kernels: building the "
                               "kernels did not converge");
      return signalPassFailure();
    }

    // A recorded workgroup kernel that was not built is an error, never a
    // silent fallback to the loop-level form.
    WalkResult unbuilt = getOperation().walk([](Operation *op) {
      KernelConfigAttr config = getKernelConfig(op);
      if (!config || config.getStrategy() == KernelStrategy::Loops ||
          config.getStrategy() == KernelStrategy::SplitKV)
        return WalkResult::advance();
      op->emitOpError() << "cannot be built as its kernel " << config << ": "
                        << whyNotBuilt(op, config);
      return WalkResult::interrupt();
    });
    if (unbuilt.wasInterrupted())
      signalPassFailure();
  }

  static std::string whyNotBuilt(Operation *op, KernelConfigAttr config) {
    std::string why;
    switch (config.getStrategy()) {
    case KernelStrategy::WorkgroupTiled:
      if (auto sdpa = dyn_cast<SdpaOp>(op))
        why = workgroupSdpaObstacle(sdpa, {config.getRows(), config.getKeys()});
      break;
    case KernelStrategy::Gemm:
      if (auto linear = dyn_cast<LinearOp>(op))
        why = gemmObstacle(linear, config);
      break;
    case KernelStrategy::Gemv:
      if (auto linear = dyn_cast<LinearOp>(op))
        why = gemvObstacle(linear, config);
      break;
    case KernelStrategy::HeadChain:
      why = headChainObstacle(op, config.getRows());
      break;
    default:
      break;
    }
    return why.empty() ? "the kernel does not apply to this op" : why;
  }
};

} // namespace

