//===- GpuPipeline.cpp - attn IR to NVVM kernels and host code ------------===//

#include "rotor/Pipelines/GpuPipeline.h"

#include "rotor/Codegen/Passes.h"
#include "rotor/Conversion/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/Regex.h"

using namespace mlir;

llvm::Error rotor::GpuPipelineOptions::validate() const {
  auto fail = [](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  };
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
    return fail("GPU block size " + llvm::Twine(blockSize) +
                " is not a multiple of 32 between 32 and 1024");
  if (loops.kvTileSize < 1)
    return fail("KV tile size " + llvm::Twine(loops.kvTileSize) +
                " must be at least 1");
  return llvm::Error::success();
}

namespace {
/// The loop-level form with its parallel loops mapped to gpu.launch ops,
/// shared by the GPU pipeline and its host emulation.
void buildGpuMapping(OpPassManager &pm,
                     const rotor::GpuPipelineOptions &options) {
  // The fused projection + RoPE loop allocates per-head temporaries inside
  // its parallel body, which would become allocations inside kernels; the
  // GPU path keeps the ops apart until it has kernels of its own for them.
  rotor::HostPipelineOptions loops = options.loops;
  loops.fuseRopeEpilogue = false;
  loops.chip = options.chip;
  loops.threads = options.blockSize;
  rotor::buildLoopLevelPipeline(pm, loops);
  // Workgroup kernels (block-mapped loops) become launches; each other
  // parallel loop becomes a 1-D grid of blocks of `blockSize` threads.
  OpPassManager &funcs = pm.nest<func::FuncOp>();
  funcs.addPass(rotor::createMapWorkgroupLoopsToGpu({options.blockSize}));
  funcs.addPass(rotor::createTileParallelLoopsForGpu({options.blockSize}));
  funcs.addPass(mlir::createGpuMapParallelLoopsPass());
  funcs.addPass(mlir::createConvertParallelLoopToGpuPass());
}
} // namespace

void rotor::buildGpuPipeline(OpPassManager &pm,
                             const GpuPipelineOptions &options) {
  buildGpuMapping(pm, options);
  // Constants and dims go into the kernels (outlining no longer sinks
  // them), so that loop bounds and strides are known to the NVVM side.
  // Constant tables become globals of the kernel modules.
  pm.addPass(mlir::createGpuLaunchSinkIndexComputationsPass());
  pm.addPass(createSinkConstantTablesIntoLaunches());
  pm.addPass(mlir::createGpuKernelOutliningPass());
  pm.addPass(createAlignWorkgroupBuffers());
  pm.addPass(createHostAllocsToGpu());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(createMarkHostDeviceMemoryAccess());
  mlir::GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.features = "+ptx80";
  pm.addPass(mlir::createGpuNVVMAttachTarget(target));
  // Kernels: the same exact bf16/f16 emulation as the host.
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  addExactSmallFloatEmulation(kernels);
  kernels.addPass(mlir::createConvertGpuOpsToNVVMOps());
  addHostCodeToLlvm(pm, mlir::createGpuToLLVMConversionPass());
  mlir::GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = options.format;
  binary.toolkitPath = options.toolkit;
  pm.addPass(mlir::createGpuModuleToBinaryPass(binary));
}

void rotor::buildGpuEmulationPipeline(OpPassManager &pm,
                                      const GpuPipelineOptions &options) {
  buildGpuMapping(pm, options);
  pm.addPass(createEmulateGpuLaunchesOnHost());
  pm.addPass(mlir::createCanonicalizerPass());
  buildHostLlvmLowering(pm, /*openMP=*/true);
}

namespace {
struct GpuPipelineCLOptions : public PassPipelineOptions<GpuPipelineCLOptions> {
  Option<std::string> chip{*this, "chip", llvm::cl::desc("NVVM target chip"),
                           llvm::cl::init("sm_90")};
  Option<std::string> format{*this, "format",
                             llvm::cl::desc("isa (PTX) or bin (cubin)"),
                             llvm::cl::init("isa")};
  Option<std::string> toolkit{
      *this, "toolkit",
      llvm::cl::desc(
          "CUDA toolkit path (default: the one found at build time)"),
      llvm::cl::init(ROTOR_CUDA_TOOLKIT)};
  Option<int64_t> kvTileSize{*this, "kv-tile-size",
                             llvm::cl::desc("Keys per SDPA tile"),
                             llvm::cl::init(64)};
  Option<bool> splitKVDecode{
      *this, "split-kv-decode",
      llvm::cl::desc("Decode SDPA as split-KV attention"),
      llvm::cl::init(true)};
  Option<bool> workgroupTiledSdpa{
      *this, "workgroup-tiled-sdpa",
      llvm::cl::desc("Prefill SDPA as workgroup-tiled attention"),
      llvm::cl::init(true)};
  Option<bool> workgroupTiledLinear{
      *this, "workgroup-tiled-linear",
      llvm::cl::desc("Prefill projections as workgroup-tiled GEMMs"),
      llvm::cl::init(true)};
};
rotor::GpuPipelineOptions optionsFrom(const GpuPipelineCLOptions &cl) {
  rotor::GpuPipelineOptions options;
  options.chip = cl.chip;
  options.format = cl.format;
  options.toolkit = cl.toolkit;
  options.loops.kvTileSize = cl.kvTileSize;
  options.loops.splitKVDecode = cl.splitKVDecode;
  options.loops.workgroupTiledSdpa = cl.workgroupTiledSdpa;
  options.loops.workgroupTiledLinear = cl.workgroupTiledLinear;
  return options;
}
} // namespace

namespace {
/// Registers a pipeline whose options are checked before it is built: an
/// invalid chip or format is an error of the command line, not of a pass.
void registerValidatedGpuPipeline(
    StringRef name, StringRef description,
    void (*build)(OpPassManager &, const rotor::GpuPipelineOptions &)) {
  registerPassPipeline(
      name, description,
      [build, name](OpPassManager &pm, StringRef text,
                    function_ref<LogicalResult(const Twine &)> errorHandler) {
        GpuPipelineCLOptions cl;
        if (failed(cl.parseFromString(text)))
          return failure();
        rotor::GpuPipelineOptions options = optionsFrom(cl);
        if (llvm::Error err = options.validate())
          return errorHandler(name + ": " + llvm::toString(std::move(err)));
        build(pm, options);
        return success();
      },
      [](function_ref<void(const detail::PassOptions &)> handler) {
        handler(GpuPipelineCLOptions());
      });
}
} // namespace

void rotor::registerGpuPipeline() {
  registerValidatedGpuPipeline(
      "rotor-gpu-pipeline",
      "Lower attn IR to NVVM kernels and host code that launches them",
      buildGpuPipeline);
  registerValidatedGpuPipeline(
      "rotor-gpu-emulation-pipeline",
      "Lower attn IR as for the GPU, then run its launches on the host as "
      "OpenMP thread teams (for tests)",
      buildGpuEmulationPipeline);
}
