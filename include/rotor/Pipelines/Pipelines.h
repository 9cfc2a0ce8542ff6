//===- Pipelines.h - attn IR to host code and GPU kernels -------*- C++ -*-===//
//
// Rotor's pipelines, built with typed pass calls from one options struct
// that rotor-opt registers as-is (`rotor-host-pipeline`,
// `rotor-gpu-pipeline`, `rotor-gpu-emulation-pipeline`) and rotor-aot fills
// from its flags; compileModule runs the one a target names.
//
//   loop level   attn checks, outline params, rotor-select-kernel-config,
//                rotor-lower-workgroup-kernels, convert-attn-to-linalg,
//                bufferize, deallocate, scf.parallel loops
//   host         + bf16/f16 emulation, LLVM dialect
//   GPU          + workgroup loops -> gpu.launch, other loops -> grids,
//                  outlining, NVVM, PTX/cubin, host side to LLVM
//   emulation    the GPU mapping, launches run on the host as OpenMP teams
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_PIPELINES_PIPELINES_H
#define ROTOR_PIPELINES_PIPELINES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "llvm/Support/Error.h"

#include <string>

namespace rotor {

/// The CUDA toolkit found when Rotor was built ("" when none was).
const char *defaultCudaToolkit();

/// Every option of every pipeline. An option that depends on the target
/// (host or GPU) and was not given takes that target's default; `resolve`
/// says which value a pipeline uses.
struct PipelineOptions : mlir::PassPipelineOptions<PipelineOptions> {
  Option<std::string> target{
      *this, "target",
      llvm::cl::desc("What compileModule and rotor-aot build (each "
                     "registered pipeline is one target): host (CPU code), cuda "
                     "(NVVM kernels and the host code that launches them) "
                     "or gpu-emulation (the GPU's kernels run on the host as "
                     "OpenMP thread teams, to check their arithmetic)"),
      llvm::cl::init("host")};
  Option<int64_t> kvTileSize{
      *this, "kv-tile-size",
      llvm::cl::desc("Keys per tile of the loop-level SDPA forms (default: "
                     "128 for the host, 64 for GPU targets)")};
  Option<bool> splitKVDecode{
      *this, "split-kv-decode",
      llvm::cl::desc("Decode SDPA as split-KV attention (flash-decoding); "
                     "default: off for the host, on for GPU targets"),
      llvm::cl::init(false)};
  Option<bool> workgroupTiledSdpa{
      *this, "workgroup-tiled-sdpa",
      llvm::cl::desc("SDPA as workgroup-tiled kernels; default: off for the "
                     "host, on for GPU targets"),
      llvm::cl::init(false)};
  Option<bool> workgroupTiledLinear{
      *this, "workgroup-tiled-linear",
      llvm::cl::desc("Projections as workgroup GEMM/GEMV kernels, per-head "
                     "chains as kernels; default: off for the host, on for "
                     "GPU targets"),
      llvm::cl::init(false)};
  Option<bool> fuseRopeEpilogue{
      *this, "fuse-rope-epilogue",
      llvm::cl::desc("Rotate Q/K in the loop-level projection's epilogue "
                     "(host only; default off: the register-blocked "
                     "projection plus a RoPE pass is faster there); GPU "
                     "targets cannot (its per-head temporaries would be "
                     "allocations in kernels)"),
      llvm::cl::init(false)};
  Option<bool> vectorizeReductions{
      *this, "vectorize-reductions",
      llvm::cl::desc("Host only: sums keep their partial sum in a register "
                     "and may be split across SIMD lanes "
                     "(rotor-lower-reductions-to-register-loops); off keeps "
                     "linalg's sequential order, the definition the GPU's "
                     "kernels are checked against bit for bit"),
      llvm::cl::init(true)};
  Option<int64_t> hostVectorRegisters{
      *this, "host-vector-registers",
      llvm::cl::desc("Host only: SIMD registers of the CPU the code is for "
                     "(16 with AVX2, 32 with AVX-512; rotor-aot sets it from "
                     "--host-cpu); 32 register-blocks a projection 4 tokens "
                     "x 4 columns instead of 4 x 2"),
      llvm::cl::init(16)};
  Option<bool> hostFma{
      *this, "host-fma",
      llvm::cl::desc("Host only: the CPU has fused multiply-add (rotor-aot "
                     "sets it from --host-cpu); the softmax's exp2 "
                     "polynomial then uses explicit FMAs, else separate "
                     "multiplies and adds"),
      llvm::cl::init(true)};
  Option<bool> hostBf16Dot{
      *this, "host-bf16-dot",
      llvm::cl::desc("Host only: the CPU has AVX512-BF16 (rotor-aot sets "
                     "it from --host-cpu); a prefill projection with bf16 "
                     "compute and f32 accumulation then runs as vdpbf16ps "
                     "on bf16 pairs, same bits as the FMA form but for "
                     "denormals"),
      llvm::cl::init(false)};
  Option<bool> hostPanelPrefetch{
      *this, "host-panel-prefetch",
      llvm::cl::desc("Host only: a packed prefill projection's first token "
                     "blocks prefetch the next panel's weight rows "
                     "(rotor-aot turns it off for Intel CPUs, whose "
                     "hardware prefetchers follow the rows)"),
      llvm::cl::init(true)};
  Option<bool> hostAmxBf16{
      *this, "host-amx-bf16",
      llvm::cl::desc("Host only: the CPU has AMX-BF16 and AMX tiles "
                     "(rotor-aot sets it from --host-cpu); with "
                     "host-bf16-dot, the bf16 pair forms (prefill "
                     "projections, a prefill block's scores and P·V) run "
                     "their blocks of 16 rows as AMX tile products"),
      llvm::cl::init(false)};
  Option<int64_t> hostSdpaKeySplit{
      *this, "host-sdpa-key-split",
      llvm::cl::desc("Host only: a decode step's SDPA runs over ranges of "
                     "the KV cache on the threads and then combines them; a "
                     "range holds this many keys' worth of one KV head, "
                     "taken as N / Hkv keys of every KV head (0: one range "
                     "per KV head, so no more threads than KV heads)"),
      llvm::cl::init(2048)};
  Option<bool> hostPackedEpilogues{
      *this, "host-packed-epilogues",
      llvm::cl::desc("Host only: a packed projection (a prefill of enough "
                     "tokens: 48 in f32, 24 for a weight over 8 MiB, 6 on "
                     "bf16 pairs) starts its sums from the bias, applies a "
                     "half-split RoPE to its rows in registers and runs the "
                     "row-local ops after it (a KV cache's rotation, "
                     "quantization and packing) on each chunk of a head's "
                     "rows; a prefill block's packed scores start from "
                     "their fill and are scaled, masked and reduced to their "
                     "row max in registers, instead of separate passes over "
                     "memory"),
      llvm::cl::init(true)};
  Option<bool> allowRopeLayoutMismatch{
      *this, "allow-rope-layout-mismatch",
      llvm::cl::desc("A RoPE layout that disagrees with its weights' row "
                     "order is a warning, not an error"),
      llvm::cl::init(false)};
  Option<std::string> chip{
      *this, "chip",
      llvm::cl::desc("The GPU kernels are configured and compiled for "
                     "(sm_NN[a|f])"),
      llvm::cl::init("sm_90")};
  Option<std::string> format{
      *this, "format", llvm::cl::desc("isa (PTX) or bin (cubin via ptxas)"),
      llvm::cl::init("isa")};
  Option<std::string> toolkit{
      *this, "toolkit",
      llvm::cl::desc("CUDA toolkit for libdevice and ptxas (default: the one "
                     "found at build time)"),
      llvm::cl::init(defaultCudaToolkit())};
  Option<int64_t> blockSize{
      *this, "block-size",
      llvm::cl::desc("Threads per GPU block: of each mapped loop and of the "
                     "SDPA and head-chain kernels"),
      llvm::cl::init(128)};

  /// Whether `target` is a GPU target (cuda, gpu-emulation).
  bool isGpu() const;
  /// The target-dependent options' values for a GPU target (`gpu`) or the
  /// host: as given, else that target's default.
  bool useSplitKVDecode(bool gpu) const;
  bool useWorkgroupTiledSdpa(bool gpu) const;
  bool useWorkgroupTiledLinear(bool gpu) const;
  bool useFuseRopeEpilogue(bool gpu) const;
  int64_t useKvTileSize(bool gpu) const;

  /// Checks every value (target, chip, format, sizes) and the combinations
  /// the pipelines cannot build for `gpu`; the error names the option.
  llvm::Error validate(bool gpu) const;
};

/// Appends the passes from attn IR to the loop-level form shared by every
/// target (`gpu` picks the target-dependent defaults): checked inputs,
/// outlined params, recorded and built kernels, linalg, bufferized with
/// deallocations, caches updated in place, `scf.parallel` loops over
/// memrefs, and the check that no code writes a parameter.
void buildLoopLevelPipeline(mlir::OpPassManager &pm,
                            const PipelineOptions &options, bool gpu);

/// attn IR to the LLVM dialect for the host: the loop-level form, exact
/// bf16/f16 emulation in f32, everything to LLVM; public functions get a C
/// interface.
void buildHostPipeline(mlir::OpPassManager &pm,
                       const PipelineOptions &options = {});

/// attn IR to NVVM kernels (PTX or cubin in gpu.binary ops) and host code
/// that launches them.
void buildGpuPipeline(mlir::OpPassManager &pm,
                      const PipelineOptions &options = {});

/// attn IR lowered as for the GPU, whose launches then run on the host as
/// OpenMP thread teams: the GPU's kernels, checkable on any machine.
void buildGpuEmulationPipeline(mlir::OpPassManager &pm,
                               const PipelineOptions &options = {});

/// The pipeline `options.target` names, run on `module` after validating
/// the options; the error names the option or the failed stage.
llvm::Error compileModule(mlir::ModuleOp module,
                          const PipelineOptions &options);

/// The host's lowering of the loop-level form to the LLVM dialect (the
/// second half of buildHostPipeline), OpenMP ops included with `openMP`;
/// with `threadedLoops` the outermost parallel loops worth it become
/// OpenMP worksharing loops (rotor-choose-threaded-loops); `amxTiles`
/// lowers AMX tiles, loop-carried ones too.
void buildHostLlvmLowering(mlir::OpPassManager &pm, bool openMP = false,
                           bool threadedLoops = false, bool amxTiles = false);

/// The lowering of host code (loops, memrefs, arith, math, func) to the
/// LLVM dialect shared by the host and the GPU pipelines' host side;
/// `firstToLlvm` converts what only that side has (vector ops, or GPU
/// launches); with `amxTiles`, branches carrying AMX tiles too.
void addHostCodeToLlvm(mlir::OpPassManager &pm,
                       std::unique_ptr<mlir::Pass> firstToLlvm,
                       bool openMP = false, bool amxTiles = false);

/// The exact bf16/f16 emulation in f32 that the host and the GPU kernels
/// share.
void addExactSmallFloatEmulation(mlir::OpPassManager &pm);

/// Registers the three pipelines with the pass registry, each with
/// PipelineOptions validated before it is built.
void registerPipelines();

} // namespace rotor

#endif // ROTOR_PIPELINES_PIPELINES_H
