//===- GpuPipeline.h - attn IR to NVVM kernels and host code ----*- C++ -*-===//

#ifndef ROTOR_PIPELINES_GPUPIPELINE_H
#define ROTOR_PIPELINES_GPUPIPELINE_H

#include "rotor/Pipelines/HostPipeline.h"

#include "llvm/Support/Error.h"

#include <string>

namespace rotor {

struct GpuPipelineOptions {
  /// The loop-level form; decode SDPA is split-KV and prefill SDPA
  /// workgroup-tiled by default here.
  HostPipelineOptions loops = [] {
    HostPipelineOptions o;
    o.splitKVDecode = true;
    o.workgroupTiledSdpa = true;
    o.workgroupTiledLinear = true;
    return o;
  }();
  /// The NVVM target chip, e.g. sm_90 or sm_80.
  std::string chip = "sm_90";
  /// `isa` (PTX, no toolkit needed) or `bin` (cubin through ptxas).
  std::string format = "isa";
  /// The CUDA toolkit, for ptxas and libdevice. Without libdevice, kernels
  /// that use math functions are rejected when the bundle is written.
  std::string toolkit;
  /// Threads per block along the innermost parallel dim.
  int64_t blockSize = 128;

  /// Checks the chip name, format, block size and tile size; the error
  /// names the value that is wrong.
  llvm::Error validate() const;
};

/// Appends the passes that take attn IR to the LLVM dialect with its
/// kernels serialized: the loop-level form, parallel loops tiled (the tile
/// is a block of threads), mapped to blocks and threads and outlined to
/// gpu.func kernels, host buffers in managed memory, kernels converted to
/// NVVM and serialized with gpu-module-to-binary. The host side launches
/// them through the mgpu* entry points, which the runtime provides.
void buildGpuPipeline(mlir::OpPassManager &pm,
                      const GpuPipelineOptions &options = {});

/// Appends the passes that run the GPU pipeline's mapped form on the host,
/// for tests: the same loop-level form and mapping to gpu.launch ops, then
/// each launch as a loop over blocks of OpenMP thread teams
/// (rotor-emulate-gpu-launches-on-host) and the host's LLVM lowering. The
/// result calls the OpenMP runtime (libomp).
void buildGpuEmulationPipeline(mlir::OpPassManager &pm,
                               const GpuPipelineOptions &options = {});

/// Registers `rotor-gpu-pipeline` with the pass registry.
void registerGpuPipeline();

} // namespace rotor

#endif // ROTOR_PIPELINES_GPUPIPELINE_H
