//===- Pipelines.cpp - Options, compileModule and registration ------------===//

#include "rotor/Pipelines/Pipelines.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/Regex.h"

using namespace mlir;
using namespace rotor;

const char *rotor::defaultCudaToolkit() { return ROTOR_CUDA_TOOLKIT; }

bool PipelineOptions::isGpu() const { return target != "host"; }

// GPU targets build every kernel family by default; the host builds none
// (its loops run one after another, where they only serve to check the
// GPU kernels' arithmetic) but fuses the RoPE into the projection.
bool PipelineOptions::useSplitKVDecode(bool gpu) const {
  return splitKVDecode.hasValue() ? bool(splitKVDecode) : gpu;
}
bool PipelineOptions::useWorkgroupTiledSdpa(bool gpu) const {
  return workgroupTiledSdpa.hasValue() ? bool(workgroupTiledSdpa) : gpu;
}
bool PipelineOptions::useWorkgroupTiledLinear(bool gpu) const {
  return workgroupTiledLinear.hasValue() ? bool(workgroupTiledLinear) : gpu;
}
bool PipelineOptions::useFuseRopeEpilogue(bool gpu) const {
  // Off by default on the host too: the plain projection, register-blocked
  // (rotor-lower-reductions-to-register-loops), plus a separate RoPE pass
  // measured faster than the per-head fused epilogue (bench/host: 1.2x on
  // the example layer's prefill, 2x on Qwen2.5-7B's).
  return fuseRopeEpilogue.hasValue() && bool(fuseRopeEpilogue);
}

// The host's prefill runs each key tile's softmax steps per row of the
// packed scores (a row max, a correction, a rescale of the output block),
// which 128 keys amortize over twice the keys of 64 (bench/host: 1.03-1.05x
// on the example layer's prefill, decode unchanged). A GPU's loop form
// keeps the tile its kernels were sized for.
int64_t PipelineOptions::useKvTileSize(bool gpu) const {
  return kvTileSize.hasValue() ? int64_t(kvTileSize) : gpu ? 64 : 128;
}

llvm::Error PipelineOptions::validate(bool gpu) const {
  auto fail = [](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  };
  if (target != "host" && target != "cuda" && target != "gpu-emulation")
    return fail("unknown target '" + target +
                "' (host, cuda or gpu-emulation)");
  if (useKvTileSize(gpu) < 1)
    return fail("kv-tile-size must be at least 1, got " +
                llvm::Twine(kvTileSize.getValue()));
  if (hostSdpaKeySplit < 0)
    return fail("host-sdpa-key-split must be at least 0, got " +
                llvm::Twine(hostSdpaKeySplit.getValue()));
  // sm_NN with an optional architecture-specific suffix (sm_90a, sm_100f).
  static const llvm::Regex chipPattern("^sm_[1-9][0-9]+[af]?$");
  if (!chipPattern.match(chip))
    return fail("GPU chip '" + chip +
                "' is not an NVVM chip name of the form sm_NN or sm_NNa "
                "(e.g. sm_90, sm_90a)");
  if (format != "isa" && format != "bin")
    return fail("GPU kernel format '" + format +
                "' is not isa (PTX) or bin (cubin)");
  if (blockSize < 32 || blockSize > 1024 || blockSize % 32)
    return fail("GPU block size " + llvm::Twine(blockSize.getValue()) +
                " is not a multiple of 32 between 32 and 1024");
  if (gpu && useFuseRopeEpilogue(gpu))
    return fail("fuse-rope-epilogue is not available for GPU targets: its "
                "per-head temporaries would be allocations inside kernels "
                "(the GEMM/GEMV kernels fuse the RoPE instead)");
  return llvm::Error::success();
}

llvm::Error rotor::compileModule(ModuleOp module,
                                 const PipelineOptions &options) {
  bool gpu = options.isGpu();
  if (llvm::Error err = options.validate(gpu))
    return err;
  PassManager pm(module.getContext());
  if (options.target == "cuda")
    buildGpuPipeline(pm, options);
  else if (options.target == "gpu-emulation")
    buildGpuEmulationPipeline(pm, options);
  else
    buildHostPipeline(pm, options);
  if (failed(pm.run(module)))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "lowering for target " + options.target + " failed");
  return llvm::Error::success();
}

namespace {
/// Registers a pipeline whose options are checked before it is built: an
/// invalid chip or format is an error of the command line, not of a pass.
void registerValidatedPipeline(
    StringRef name, StringRef description, bool gpu,
    void (*build)(OpPassManager &, const PipelineOptions &)) {
  registerPassPipeline(
      name, description,
      [=](OpPassManager &pm, StringRef text,
          function_ref<LogicalResult(const Twine &)> errorHandler) {
        PipelineOptions options;
        if (failed(options.parseFromString(text)))
          return failure();
        if (llvm::Error err = options.validate(gpu))
          return errorHandler(name + ": " + llvm::toString(std::move(err)));
        build(pm, options);
        return success();
      },
      [](function_ref<void(const detail::PassOptions &)> handler) {
        handler(PipelineOptions());
      });
}
} // namespace

void rotor::registerPipelines() {
  registerValidatedPipeline(
      "rotor-host-pipeline",
      "Lower attn IR to the LLVM dialect for the host CPU", /*gpu=*/false,
      buildHostPipeline);
  registerValidatedPipeline(
      "rotor-gpu-pipeline",
      "Lower attn IR to NVVM kernels and host code that launches them",
      /*gpu=*/true, buildGpuPipeline);
  registerValidatedPipeline(
      "rotor-gpu-emulation-pipeline",
      "Lower attn IR as for the GPU, then run its launches on the host as "
      "OpenMP thread teams (for tests)",
      /*gpu=*/true, buildGpuEmulationPipeline);
}
