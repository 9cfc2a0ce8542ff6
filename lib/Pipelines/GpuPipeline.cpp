//===- GpuPipeline.cpp - attn IR to NVVM kernels and host code ------------===//

#include "rotor/Pipelines/Pipelines.h"

#include "rotor/Codegen/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace {
/// The loop-level form with its parallel loops mapped to gpu.launch ops,
/// shared by the GPU pipeline and its host emulation.
void buildGpuMapping(OpPassManager &pm,
                     const rotor::PipelineOptions &options) {
  rotor::buildLoopLevelPipeline(pm, options, /*gpu=*/true);
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
                             const PipelineOptions &options) {
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
                                      const PipelineOptions &options) {
  buildGpuMapping(pm, options);
  pm.addPass(createEmulateGpuLaunchesOnHost());
  pm.addPass(mlir::createCanonicalizerPass());
  buildHostLlvmLowering(pm, /*openMP=*/true);
}
