//===- SelectKernelConfig.cpp - The rotor-select-kernel-config pass -------===//
//
// The heuristics that choose each op's kernel, in one place: the kernels
// say what they can build (Codegen/Kernels/Kernels.h), the target says
// what the GPU is (Config/TargetDescription.h), and this pass records the
// choice on the op.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Config/TargetDescription.h"
#include "rotor/Codegen/Kernels/Kernels.h"
#include "rotor/Codegen/Passes.h"

#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Regex.h"

namespace rotor {
#define GEN_PASS_DEF_SELECTKERNELCONFIG
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;
using namespace rotor;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

struct SelectKernelConfigPass
    : rotor::impl::SelectKernelConfigBase<SelectKernelConfigPass> {
  using Base::Base;

  void runOnOperation() override {
    if (kvTileSize < 1) {
      getOperation().emitError()
          << "rotor-select-kernel-config: kv-tile-size must be >= 1, got "
          << kvTileSize.getValue();
      return signalPassFailure();
    }
    // The options must make valid attributes (#attn.kernel's verifier).
    static const llvm::Regex chipPattern("^sm_[1-9][0-9]+[af]?$");
    if (!chipPattern.match(chip)) {
      getOperation().emitError()
          << "rotor-select-kernel-config: chip '" << chip
          << "' is not an NVVM chip name of the form sm_NN or sm_NNa";
      return signalPassFailure();
    }
    if (threads < 32 || threads > 1024 || threads % 32) {
      getOperation().emitError()
          << "rotor-select-kernel-config: threads must be a multiple of 32 "
             "between 32 and 1024, got "
          << threads.getValue();
      return signalPassFailure();
    }
    target = TargetDescription::forChip(chip);
    target.threadsPerWorkgroup = threads;
    getOperation().walk([&](Operation *op) {
      if (op->hasAttr(kKernelConfigAttrName))
        return; // Forced by the IR's author.
      KernelConfigAttr config =
          llvm::TypeSwitch<Operation *, KernelConfigAttr>(op)
              .Case([&](SdpaOp sdpa) { return selectSdpa(sdpa); })
              .Case([&](LinearOp linear) { return selectLinear(linear); })
              .Case<RopeOp, HadamardOp, QuantizeOp>(
                  [&](Operation *first) { return selectHeadChain(first); })
              .Default([](Operation *) { return KernelConfigAttr(); });
      if (config)
        op->setAttr(kKernelConfigAttrName, config);
    });
  }

private:
  KernelConfigAttr get(KernelStrategy strategy, int64_t rows = 0,
                       int64_t keys = 0, int64_t cols = 0, int64_t threads = 0,
                       int64_t workgroups = 0) {
    return KernelConfigAttr::get(&getContext(), strategy, rows, keys, cols,
                                 threads, workgroups);
  }

  KernelConfigAttr selectSdpa(SdpaOp op) {
    if (workgroupTiledSdpa) {
      // Where the workgroup kernel was asked for and cannot be, say so: the
      // loop-level form it falls back to is far slower on a GPU.
      if (std::string why = workgroupSdpaObstacle(op); !why.empty()) {
        op.emitWarning() << "lowered to the loop-level form, not a "
                            "workgroup-tiled kernel: "
                         << why;
      } else {
        std::optional<SdpaTiles> tiles =
            largestWorkgroupSdpaTiles(op, target.workgroupMemoryBytes);
        if (!tiles) {
          op.emitWarning() << "lowered to the loop-level form, not a "
                              "workgroup-tiled kernel: no tile fits the "
                           << target.workgroupMemoryBytes
                           << " bytes of shared memory of " << target.chip;
          return get(KernelStrategy::Loops, 0, kvTileSize);
        }
        return get(KernelStrategy::WorkgroupTiled, tiles->rows, tiles->keys,
                   /*cols=*/0, target.threadsPerWorkgroup,
                   target.targetWorkgroups());
      }
    }
    auto qType = cast<RankedTensorType>(op.getQuery().getType());
    if (splitKVDecode && !qType.isDynamicDim(0) && qType.getDimSize(0) == 1)
      return get(KernelStrategy::SplitKV, 0, kvTileSize);
    return get(KernelStrategy::Loops, 0, kvTileSize);
  }

  KernelConfigAttr selectLinear(LinearOp op) {
    if (workgroupTiledLinear) {
      if (gemvObstacle(op).empty())
        return get(KernelStrategy::Gemv, 0, 0, GemvGeometry::outputs,
                   GemvGeometry::threads);
      if (gemmObstacle(op).empty())
        return get(KernelStrategy::Gemm, GemmGeometry::rows, 0,
                   GemmGeometry::cols, GemmGeometry::threads);
    }
    return get(KernelStrategy::Loops);
  }

  /// Every op that can start a head-chain kernel gets one: when a kernel
  /// that computes an earlier op takes part of the chain (a GEMV its RoPE),
  /// the rest still starts a kernel of its own.
  KernelConfigAttr selectHeadChain(Operation *first) {
    if (!workgroupTiledLinear || !headChainObstacle(first).empty())
      return {};
    return get(KernelStrategy::HeadChain, HeadChainGeometry::rows, 0, 0,
               target.threadsPerWorkgroup);
  }

  TargetDescription target;
};

} // namespace
