//===- HostPipeline.cpp - attn IR to LLVM IR for the host CPU -------------===//

#include "rotor/Pipelines/Pipelines.h"

#include "rotor/Codegen/Passes.h"
#include "rotor/Conversion/Passes.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace {
/// Queries per block of the host's flash-style prefill.
constexpr int64_t kHostSdpaQueryBlock = 32;

/// How kernels are configured for the target (rotor-select-kernel-config).
rotor::SelectKernelConfigOptions
kernelConfigOptions(const rotor::PipelineOptions &options, bool gpu) {
  rotor::SelectKernelConfigOptions config;
  config.chip = options.chip;
  config.threads = options.blockSize;
  config.kvTileSize = options.useKvTileSize(gpu);
  config.splitKVDecode = options.useSplitKVDecode(gpu);
  config.workgroupTiledSdpa = options.useWorkgroupTiledSdpa(gpu);
  config.workgroupTiledLinear = options.useWorkgroupTiledLinear(gpu);
  return config;
}

/// What rotor-convert-attn-to-linalg emits for the target.
rotor::ConvertAttnToLinalgOptions
attnToLinalgOptions(const rotor::PipelineOptions &options, bool gpu) {
  // rotor-select-kernel-config runs first and gives every SDPA a config, so
  // the conversion's own SDPA options do not apply.
  rotor::ConvertAttnToLinalgOptions lowering;
  // Never on a GPU target, whose kernels cannot allocate per head; validate()
  // reports asking for it, this keeps direct C++ callers safe.
  lowering.fuseRopeEpilogue = !gpu && options.useFuseRopeEpilogue(gpu);
  // Flash-style prefill on the host: blocks of 32 queries keep each block's
  // running state and scores in L1/L2 and skip causal tiles past the
  // diagonal (bench/host: 2.5-3x on prefill). The GPU's loop form is mapped
  // whole.
  if (!gpu)
    lowering.sdpaQueryBlock = kHostSdpaQueryBlock;
  // A decode step's keys in ranges, so that a KV head's keys run on several
  // threads (flash-decoding); a range of 2048 keys of a 128-dim f32 head is
  // 1 MiB of K and V, long enough to stream.
  if (!gpu)
    lowering.sdpaKeySplit = options.hostSdpaKeySplit;
  // Rounded probabilities as bf16 where P·V can run on their pairs.
  if (!gpu)
    lowering.narrowProbabilities =
        options.hostBf16Dot && options.hostVectorRegisters >= 32;
  // RoPE's cos and sin once per token and pair, not per element.
  if (!gpu)
    lowering.ropeCosSinTable = true;
  // A rotation (a rotated KV cache's, or Q's once folded) in one pass over
  // memory, in the host's f32 lanes; exact, like the stage generics.
  if (!gpu)
    lowering.hadamardLanes = options.hostVectorRegisters >= 32 ? 16 : 8;
  return lowering;
}
} // namespace

void rotor::buildLoopLevelPipeline(OpPassManager &pm,
                                   const PipelineOptions &options, bool gpu) {
  attn::AttnCheckRopeLayoutOptions check;
  check.allowMismatch = options.allowRopeLayoutMismatch;
  pm.addPass(createCheckDimIndices());
  pm.addPass(createCheckSliceStrides());
  pm.addPass(createCheckStaticSizes());
  pm.addPass(attn::createAttnCheckRopeLayout(check));
  pm.addPass(attn::createAttnOutlineParams());
  // Folds index arithmetic into constants, so that the verifier (which runs
  // after every pass) sees a cache offset or length that only folding makes
  // constant: one past the capacity is then an error, not a write out of
  // bounds at run time.
  pm.addPass(mlir::createCanonicalizerPass());
  SelectKernelConfigOptions config = kernelConfigOptions(options, gpu);
  ConvertAttnToLinalgOptions lowering = attnToLinalgOptions(options, gpu);
  pm.addPass(createSelectKernelConfig(config));
  pm.addPass(createLowerWorkgroupKernels());
  pm.addPass(createConvertAttnToLinalg(lowering));
  // Elementwise arith on tensors (the casts into and out of a bf16 or f16
  // KV cache that rotor-import writes around f32 activations).
  pm.addPass(mlir::createConvertElementwiseToLinalgPass());
  pm.addPass(createExportEntryPoints());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
  // A quantized cache's unpacking and dequantization run per key tile of
  // decode's SDPA, not as whole-cache passes before it.
  if (!gpu)
    pm.addPass(createFuseProducersIntoTileSlices());
  // An elementwise result that is only appended to a KV cache (the decode K
  // RoPE) is computed in the cache's rows: no append copy.
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.allowReturnAllocsFromLoops = true;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // Results that are their arguments updated in place (the KV caches) leave
  // the signature: the caller already holds them.
  pm.addPass(createDropArgumentResults());
  // On the host, scf.parallel before deallocation: upstream's
  // ownership-based deallocation frees what an scf.parallel body owns at
  // its end (the flash-style blocks' running state, results of an scf.for
  // in the body), but leaves an scf.forall body alone. The GPU's kernels
  // allocate nothing per iteration but workgroup buffers, which must not
  // get heap deallocations.
  if (!gpu)
    pm.addPass(mlir::createForallToParallelLoopPass());
  bufferization::buildBufferDeallocationPipeline(pm);
  pm.addPass(mlir::createConvertBufferizationToMemRefPass());
  if (gpu)
    pm.addPass(mlir::createForallToParallelLoopPass());
  pm.addPass(createMemrefCopyToLinalg());
  // Exact, so not tied to vectorize-reductions.
  if (!gpu) {
    VectorizeBlockDecodingOptions blockDecoding;
    blockDecoding.vectorRegisters = options.hostVectorRegisters;
    pm.addPass(createVectorizeBlockDecoding(blockDecoding));
  }
  // The GPU's kernels keep linalg's order of every sum, so that its
  // emulation agrees with the loop-level definition bit for bit.
  if (!gpu && options.vectorizeReductions) {
    LowerReductionsToRegisterLoopsOptions registerLoops;
    registerLoops.vectorRegisters = options.hostVectorRegisters;
    registerLoops.packedEpilogues = options.hostPackedEpilogues;
    registerLoops.bf16DotProduct =
        options.hostBf16Dot && options.hostVectorRegisters >= 32;
    registerLoops.amxTiles = options.hostAmxBf16;
    registerLoops.panelPrefetch = options.hostPanelPrefetch;
    pm.addPass(createLowerReductionsToRegisterLoops(registerLoops));
    ApproximateExpForSimdOptions exp;
    exp.fma = options.hostFma;
    pm.addPass(createApproximateExpForSimd(exp));
  }
  // A decode step's attention prefetches its next tile of the KV cache.
  if (!gpu)
    pm.addPass(createPrefetchNextKeyTile());
  pm.addPass(mlir::createConvertLinalgToParallelLoopsPass());
  // The invariant the runtime relies on: weights are never written.
  pm.addPass(createCheckParamsReadOnly());
}

void rotor::addHostCodeToLlvm(OpPassManager &pm,
                              std::unique_ptr<Pass> firstToLlvm, bool openMP,
                              bool amxTiles) {
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(mlir::createLowerAffinePass());
  pm.addPass(mlir::createSCFToControlFlowPass());
  addExactSmallFloatEmulation(pm);
  pm.addPass(std::move(firstToLlvm));
  pm.addPass(mlir::createConvertMathToLLVMPass());
  pm.addPass(mlir::createConvertMathToLibmPass());
  pm.addPass(mlir::createFinalizeMemRefToLLVMConversionPass());
  // A loop that carries AMX tiles branches with them: cf-to-llvm's type
  // converter does not know the tile type, convert-to-llvm's takes AMX's;
  // before the OpenMP conversion, which needs its regions' blocks converted.
  if (amxTiles) {
    ConvertToLLVMPassOptions toLlvm;
    toLlvm.filterDialects = {"amx", "cf"};
    pm.addPass(mlir::createConvertToLLVMPass(toLlvm));
  }
  if (openMP)
    pm.addPass(mlir::createConvertOpenMPToLLVMPass());
  pm.addPass(mlir::createArithToLLVMConversionPass());
  pm.addPass(mlir::createConvertIndexToLLVMPass());
  pm.addPass(mlir::createConvertControlFlowToLLVMPass());
  pm.addPass(mlir::createConvertFuncToLLVMPass());
  pm.addPass(mlir::createReconcileUnrealizedCastsPass());
}

void rotor::buildHostLlvmLowering(OpPassManager &pm, bool openMP,
                                  bool threadedLoops, bool amxTiles) {
  // Workgroup buffers are the host's stack memory.
  pm.addPass(createDropGpuAddressSpaces());
  // Before scf-to-cf: a loop body's allocas live for one iteration (after
  // canonicalization, also those of an emulated GPU block's alloca_scope).
  pm.addPass(createScopeParallelLoopAllocas());
  if (threadedLoops) {
    pm.addPass(createChooseThreadedLoops());
    pm.addPass(mlir::createConvertSCFToOpenMPPass());
    pm.addPass(createInlineAllocaScopes());
  }
  // The host's prefill projections may use AVX512-BF16 dot products and
  // AMX tiles.
  ConvertVectorToLLVMPassOptions vectorToLlvm;
  vectorToLlvm.x86Vector = true;
  vectorToLlvm.amx = amxTiles;
  addHostCodeToLlvm(pm, mlir::createConvertVectorToLLVMPass(vectorToLlvm),
                    openMP || threadedLoops, amxTiles);
}

void rotor::addExactSmallFloatEmulation(OpPassManager &pm) {
  // bf16/f16 arithmetic in f32 with exact round-to-nearest-even, the same
  // numbers a GPU gives (DESIGN.md); math functions of bf16/f16 are
  // evaluated in f32 and rounded once.
  math::MathExtendToSupportedTypesOptions extend;
  extend.targetTypeStr = "f32";
  pm.addPass(math::createMathExtendToSupportedTypes(extend));
  arith::ArithEmulateUnsupportedFloatsOptions emulate;
  emulate.sourceTypeStrs = {"bf16", "f16"};
  emulate.targetTypeStr = "f32";
  pm.addPass(arith::createArithEmulateUnsupportedFloats(emulate));
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addPass(arith::createArithExpandOpsPass(expand));
}

void rotor::buildHostPipeline(OpPassManager &pm,
                              const PipelineOptions &options) {
  buildLoopLevelPipeline(pm, options, /*gpu=*/false);
  buildHostLlvmLowering(pm, /*openMP=*/false, /*threadedLoops=*/true,
                        options.hostAmxBf16 && options.hostBf16Dot);
}
