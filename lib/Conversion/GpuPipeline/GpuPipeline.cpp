//===- GpuPipeline.cpp - attn IR to NVVM kernels and host code ------------===//

#include "rotor/Conversion/GpuPipeline/GpuPipeline.h"

#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;

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
  rotor::buildLoopLevelPipeline(pm, loops);
  std::string mapping = llvm::formatv(
      // Workgroup kernels (block-mapped loops) become launches; each other
      // parallel loop becomes a 1-D grid of blocks of `blockSize` threads.
      "func.func(rotor-map-workgroup-loops-to-gpu{{block-size={0}}),"
      "func.func(rotor-tile-parallel-loops-for-gpu{{block-size={0}}),"
      "func.func(gpu-map-parallel-loops),"
      "func.func(convert-parallel-loops-to-gpu)",
      options.blockSize);
  if (failed(parsePassPipeline(mapping, pm, llvm::errs())))
    llvm::report_fatal_error("rotor: the GPU mapping does not parse");
}
} // namespace

void rotor::buildGpuPipeline(OpPassManager &pm,
                             const GpuPipelineOptions &options) {
  buildGpuMapping(pm, options);
  std::string toolkit =
      options.toolkit.empty() ? "" : " toolkit=" + options.toolkit;
  std::string upstream = llvm::formatv(
      // Constants and dims go into the kernels (outlining no longer sinks
      // them), so that loop bounds and strides are known to the NVVM side.
      // Constant tables become globals of the kernel modules.
      "gpu-launch-sink-index-computations,"
      "rotor-sink-constant-tables-into-launches,gpu-kernel-outlining,"
      "rotor-align-workgroup-buffers,"
      "rotor-host-allocs-to-gpu,canonicalize,rotor-mark-host-device-memory-"
      "access,"
      "nvvm-attach-target{{chip={0} features=+ptx80},"
      // Kernels: the same exact bf16/f16 emulation as the host.
      "gpu.module(math-extend-to-supported-types{{target-type=f32},"
      "arith-emulate-unsupported-floats{{source-types=bf16,f16 "
      "target-type=f32},arith-expand{{include-bf16=true},"
      "convert-gpu-to-nvvm),"
      "expand-strided-metadata,lower-affine,convert-scf-to-cf,"
      "math-extend-to-supported-types{{target-type=f32},"
      "arith-emulate-unsupported-floats{{source-types=bf16,f16 "
      "target-type=f32},arith-expand{{include-bf16=true},"
      "gpu-to-llvm,convert-math-to-llvm,convert-math-to-libm,"
      "finalize-memref-to-llvm,convert-arith-to-llvm,convert-index-to-llvm,"
      "convert-cf-to-llvm,convert-func-to-llvm,reconcile-unrealized-casts,"
      "gpu-module-to-binary{{format={1}{2}}",
      options.chip, options.format, toolkit);
  if (failed(parsePassPipeline(upstream, pm, llvm::errs())))
    llvm::report_fatal_error("rotor: the GPU pipeline does not parse");
}

void rotor::buildGpuEmulationPipeline(OpPassManager &pm,
                                      const GpuPipelineOptions &options) {
  buildGpuMapping(pm, options);
  if (failed(parsePassPipeline(
          "rotor-emulate-gpu-launches-on-host,canonicalize", pm, llvm::errs())))
    llvm::report_fatal_error("rotor: the GPU emulation does not parse");
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

void rotor::registerGpuPipeline() {
  PassPipelineRegistration<GpuPipelineCLOptions>(
      "rotor-gpu-pipeline",
      "Lower attn IR to NVVM kernels and host code that launches them",
      [](OpPassManager &pm, const GpuPipelineCLOptions &cl) {
        buildGpuPipeline(pm, optionsFrom(cl));
      });
  PassPipelineRegistration<GpuPipelineCLOptions>(
      "rotor-gpu-emulation-pipeline",
      "Lower attn IR as for the GPU, then run its launches on the host as "
      "OpenMP thread teams (for tests)",
      [](OpPassManager &pm, const GpuPipelineCLOptions &cl) {
        buildGpuEmulationPipeline(pm, optionsFrom(cl));
      });
}
