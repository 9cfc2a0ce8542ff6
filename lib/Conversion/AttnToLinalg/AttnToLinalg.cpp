//===- AttnToLinalg.cpp - The convert-attn-to-linalg pass -----------------===//

#include "LoweringUtils.h"

#include "rotor/Conversion/Passes.h"
#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Transforms/DialectConversion.h"

namespace rotor {
#define GEN_PASS_DEF_CONVERTATTNTOLINALG
#include "rotor/Conversion/Passes.h.inc"
} // namespace rotor

using namespace mlir;
using namespace rotor;
using namespace rotor::attn;

namespace {

struct ConvertAttnToLinalgPass
    : rotor::impl::ConvertAttnToLinalgBase<ConvertAttnToLinalgPass> {
  using Base::Base;

  void runOnOperation() override {
    if (kvTileSize < 1) {
      getOperation().emitError() << "convert-attn-to-linalg: kv-tile-size must "
                                    "be >= 1, got "
                                 << kvTileSize.getValue();
      return signalPassFailure();
    }
    // Name what cannot be lowered rather than leaving it to the generic
    // "failed to legalize" message.
    WalkResult unsupported = getOperation().walk([](Operation *op) {
      if (auto param = dyn_cast<ParamOp>(op)) {
        param.emitOpError("must be outlined into a function argument "
                          "(attn-outline-params) before lowering");
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (unsupported.wasInterrupted())
      return signalPassFailure();

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

    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    lowering::populateLinearLoweringPatterns(patterns);
    if (fuseRopeEpilogue)
      lowering::populateRopeEpilogueFusionPatterns(patterns);
    lowering::populateNormAndGateLoweringPatterns(patterns);
    lowering::populateDataMovementLoweringPatterns(patterns);
    lowering::populateRopeLoweringPatterns(patterns);
    lowering::populateHadamardLoweringPatterns(patterns);
    lowering::populateQuantizationLoweringPatterns(patterns);
    lowering::populateSdpaLoweringPatterns(patterns, kvTileSize);
    if (workgroupTiledLinear) {
      lowering::populateWorkgroupTiledLinearPatterns(patterns);
      lowering::populateWorkgroupGemvPatterns(patterns);
      lowering::populateWorkgroupHeadChainPatterns(patterns);
    }
    if (workgroupTiledSdpa)
      lowering::populateWorkgroupTiledSdpaPatterns(patterns);
    if (splitKVDecode)
      lowering::populateSplitKVDecodeSdpaPatterns(patterns, kvTileSize);
    lowering::populateCaptureLoweringPatterns(patterns);

    ConversionTarget target(*ctx);
    target.addIllegalDialect<AttnDialect>();
    // A dequantization that only a workgroup SDPA reads is read there, from
    // its codes and scales (LowerSdpaWorkgroupTiled): it must not be
    // lowered on its own first; that pattern erases it.
    if (workgroupTiledSdpa) {
      llvm::DenseSet<Operation *> readBySdpa;
      getOperation().walk([&](SdpaOp op) {
        if (!lowering::workgroupTiledSdpaObstacle(op).empty())
          return;
        for (Value kv : {op.getKey(), op.getValue()})
          if (Operation *dequant = lowering::dequantizationReadBySdpa(kv))
            readBySdpa.insert(dequant);
      });
      target.addDynamicallyLegalOp<DequantizeOp>([readBySdpa](DequantizeOp op) {
        return readBySdpa.contains(op.getOperation());
      });
    }
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
