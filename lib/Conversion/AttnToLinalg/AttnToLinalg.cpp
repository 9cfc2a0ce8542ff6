//===- AttnToLinalg.cpp - The convert-attn-to-linalg pass -----------------===//
//
// The pass wrapper: the patterns are in Lower*.cpp, exported by
// rotor/Conversion/AttnToLinalg/AttnToLinalg.h. Every op lowers to
// linalg.generic/linalg.fill loop nests, tensor slices and scf loops.
//
//===----------------------------------------------------------------------===//

#include "rotor/Conversion/AttnToLinalg/AttnToLinalg.h"

#include "rotor/Conversion/Passes.h"
#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
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
    if (sdpaKeySplit < 0 || (sdpaKeySplit > 0 && sdpaQueryBlock < 1)) {
      getOperation().emitError()
          << "convert-attn-to-linalg: sdpa-key-split must be >= 0, and > 0 "
             "only with sdpa-query-block > 0; got "
          << sdpaKeySplit.getValue() << " with sdpa-query-block "
          << sdpaQueryBlock.getValue();
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
      // Kernels this pass does not build, or cannot build as recorded.
      if (KernelConfigAttr config = getKernelConfig(op)) {
        KernelStrategy strategy = config.getStrategy();
        if (strategy != KernelStrategy::Loops &&
            strategy != KernelStrategy::SplitKV) {
          op->emitOpError() << "has the workgroup kernel " << config
                            << ", which rotor-lower-workgroup-kernels builds "
                               "(run it first)";
          return WalkResult::interrupt();
        }
        auto sdpa = dyn_cast<SdpaOp>(op);
        if (strategy == KernelStrategy::SplitKV &&
            (!sdpa || cast<RankedTensorType>(sdpa.getQuery().getType())
                              .getDimSize(0) != 1)) {
          op->emitOpError() << "has the kernel " << config
                            << ", which needs an attn.sdpa with one query row";
          return WalkResult::interrupt();
        }

      }
      return WalkResult::advance();
    });
    if (unsupported.wasInterrupted())
      return signalPassFailure();

    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    lowering::populateLinearLoweringPatterns(patterns);
    if (fuseRopeEpilogue)
      lowering::populateRopeEpilogueFusionPatterns(patterns);
    lowering::populateNormAndGateLoweringPatterns(patterns);
    lowering::populateDataMovementLoweringPatterns(patterns);
    lowering::populateRopeLoweringPatterns(patterns, ropeCosSinTable);
    lowering::populateHadamardLoweringPatterns(patterns, hadamardLanes);
    lowering::populateQuantizationLoweringPatterns(patterns);
    lowering::populateBlockPackingLoweringPatterns(patterns);
    lowering::populateSdpaLoweringPatterns(patterns, kvTileSize, sdpaQueryBlock,
                                           sdpaKeySplit, narrowProbabilities);
    lowering::populateSplitKVDecodeSdpaPatterns(patterns, kvTileSize,
                                                splitKVDecode);
    lowering::populateCaptureLoweringPatterns(patterns);

    ConversionTarget target(*ctx);
    target.addIllegalDialect<AttnDialect>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
