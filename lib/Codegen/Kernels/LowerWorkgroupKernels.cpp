//===- LowerWorkgroupKernels.cpp - The rotor-lower-workgroup-kernels pass -===//

#include "Kernels.h"

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

namespace {

struct LowerWorkgroupKernelsPass
    : rotor::impl::LowerWorkgroupKernelsBase<LowerWorkgroupKernelsPass> {
  using Base::Base;

  void runOnOperation() override {
    // Where the workgroup kernel was asked for and cannot be, say so: the
    // loop-level form it falls back to is far slower on a GPU.
    if (workgroupTiledSdpa)
      getOperation().walk([](SdpaOp op) {
        if (std::string why = lowering::workgroupTiledSdpaObstacle(op);
            !why.empty())
          op.emitWarning() << "lowered to the loop-level form, not a "
                              "workgroup-tiled kernel: "
                           << why;
      });

    RewritePatternSet patterns(&getContext());
    if (workgroupTiledLinear) {
      lowering::populateWorkgroupTiledLinearPatterns(patterns);
      lowering::populateWorkgroupGemvPatterns(patterns);
      lowering::populateWorkgroupHeadChainPatterns(patterns);
    }
    if (workgroupTiledSdpa)
      lowering::populateWorkgroupTiledSdpaPatterns(patterns);
    // In program order, as the conversion that follows visits ops: a
    // projection is matched before the RoPE/rotation chain that reads it,
    // so that its GEMM can take the chain into its epilogue.
    GreedyRewriteConfig config;
    config.setUseTopDownTraversal(true);
    config.enableFolding(false);
    config.enableConstantCSE(false);
    config.setRegionSimplificationLevel(GreedySimplifyRegionLevel::Disabled);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     config)))
      signalPassFailure();
  }
};

} // namespace
