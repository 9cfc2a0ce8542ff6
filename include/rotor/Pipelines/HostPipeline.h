//===- HostPipeline.h - attn IR to LLVM IR for the host CPU -----*- C++ -*-===//

#ifndef ROTOR_PIPELINES_HOSTPIPELINE_H
#define ROTOR_PIPELINES_HOSTPIPELINE_H

#include "mlir/Pass/PassManager.h"

#include <string>

namespace rotor {

struct HostPipelineOptions {
  /// Keys per tile of SDPA's online-softmax loop.
  int64_t kvTileSize = 64;
  /// Decode SDPA as split-KV attention (see convert-attn-to-linalg). Off
  /// for the host, which runs loops on one thread: there the tiled loop is
  /// faster (25.6 vs 33.1 ms per step at 16k keys, Qwen2.5-0.5B shapes);
  /// the GPU pipeline turns it on, since it replaces a dozen launches per
  /// KV tile by a fixed handful.
  bool splitKVDecode = false;
  /// Prefill SDPA as workgroup-tiled attention (see convert-attn-to-linalg).
  /// Off for the host, where its phases run one after another and it only
  /// serves to check the GPU kernels' arithmetic; on in the GPU pipeline.
  bool workgroupTiledSdpa = false;
  /// Prefill projections as workgroup-tiled GEMMs (see
  /// convert-attn-to-linalg); off for the host, on in the GPU pipeline.
  bool workgroupTiledLinear = false;
  /// Rotate Q/K in the projections' epilogue (see convert-attn-to-linalg).
  bool fuseRopeEpilogue = true;
  /// Compile RoPE whose layout disagrees with its weights' row order (a
  /// warning instead of an error; see attn-check-rope-layout).
  bool allowRopeLayoutMismatch = false;
  /// The GPU the workgroup kernels are configured for, and their threads
  /// per workgroup (see rotor-select-kernel-config).
  std::string chip = "sm_90";
  int64_t threads = 128;
};

/// Appends the passes shared by the host and GPU paths, from attn IR to the
/// loop-level form: outlined params, linalg, bufferized with deallocations,
/// caches updated in place, and `scf.parallel` loops over memrefs.
void buildLoopLevelPipeline(mlir::OpPassManager &pm,
                            const HostPipelineOptions &options = {});

/// Appends the passes that take attn IR to the LLVM dialect for the host:
/// outline params, lower attn to linalg, one-shot bufferize (function
/// boundaries included), insert deallocations, lower linalg to parallel
/// loops (scf.parallel; the host runs them sequentially for now),
/// emulate bf16/f16 arithmetic in f32 with exact rounding, and convert
/// everything to LLVM. Public functions get a C interface. The upstream
/// passes are looked up by name: the caller must have registered them
/// (`mlir::registerAllPasses()` and `rotor::registerRotorConversionPasses()`,
/// `rotor::registerRotorCodegenPasses()`).
void buildHostPipeline(mlir::OpPassManager &pm,
                       const HostPipelineOptions &options = {});

/// Appends the host's lowering of the loop-level form to the LLVM dialect
/// (the second half of buildHostPipeline): bf16/f16 emulation, then every
/// dialect to LLVM, OpenMP ops included with `openMP`.
void buildHostLlvmLowering(mlir::OpPassManager &pm, bool openMP = false);

/// Appends the lowering of host code (loops, memrefs, arith, math, func)
/// to the LLVM dialect shared by the host and the GPU pipelines' host side;
/// `firstToLlvm` converts what only that side has (vector ops, or GPU
/// launches), OpenMP ops are converted with `openMP`.
void addHostCodeToLlvm(mlir::OpPassManager &pm,
                       std::unique_ptr<mlir::Pass> firstToLlvm,
                       bool openMP = false);

/// Appends the exact bf16/f16 emulation in f32 that the host and the GPU
/// kernels share.
void addExactSmallFloatEmulation(mlir::OpPassManager &pm);

/// Registers `rotor-host-pipeline` with the pass registry.
void registerHostPipeline();

} // namespace rotor

#endif // ROTOR_PIPELINES_HOSTPIPELINE_H
