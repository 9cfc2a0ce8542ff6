//===- HostPipeline.cpp - attn IR to LLVM IR for the host CPU -------------===//

#include "rotor/Conversion/HostPipeline/HostPipeline.h"

#include "rotor/Conversion/Passes.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"

#include "mlir/Pass/PassRegistry.h"

#include <string>

using namespace mlir;

void rotor::buildLoopLevelPipeline(OpPassManager &pm,
                                   const HostPipelineOptions &options) {
  attn::AttnCheckRopeLayoutOptions check;
  check.allowMismatch = options.allowRopeLayoutMismatch;
  pm.addPass(attn::createAttnCheckRopeLayout(check));
  pm.addPass(attn::createAttnOutlineParams());
  ConvertAttnToLinalgOptions lowering;
  lowering.kvTileSize = options.kvTileSize;
  lowering.fuseRopeEpilogue = options.fuseRopeEpilogue;
  lowering.splitKVDecode = options.splitKVDecode;
  lowering.workgroupTiledSdpa = options.workgroupTiledSdpa;
  lowering.workgroupTiledLinear = options.workgroupTiledLinear;
  pm.addPass(createConvertAttnToLinalg(lowering));
  pm.addPass(createExportEntryPoints());
  // The upstream part, as one textual pipeline. The bare list is parsed
  // into the module-level manager (a `builtin.module(...)` wrapper would
  // nest and silently run nothing).
  std::string upstream =
      "canonicalize,cse,"
      // An elementwise result that is only appended to a KV cache (the
      // decode K RoPE) is computed in the cache's rows: no append copy.
      "eliminate-empty-tensors,"
      "one-shot-bufferize{allow-return-allocs-from-loops "
      "bufferize-function-boundaries "
      "function-boundary-type-conversion=identity-layout-map},"
      // Results that are their arguments updated in place (the KV caches)
      // leave the signature: the caller already holds them.
      "rotor-drop-argument-results,"
      "buffer-deallocation-pipeline,convert-bufferization-to-memref,"
      "scf-forall-to-parallel,"
      "rotor-memref-copy-to-linalg,convert-linalg-to-parallel-loops";
  if (failed(parsePassPipeline(upstream, pm, llvm::errs())))
    llvm::report_fatal_error("rotor: the loop-level pipeline does not parse");
}

void rotor::buildHostLlvmLowering(OpPassManager &pm, bool openMP) {
  std::string upstream =
      std::string(
          "rotor-scope-parallel-loop-allocas,"
          "expand-strided-metadata,lower-affine,convert-scf-to-cf,"
          // bf16/f16 arithmetic in f32 with exact round-to-nearest-even, the
          // same numbers a GPU gives (DESIGN.md); math functions of bf16/f16
          // are evaluated in f32 and rounded once.
          "math-extend-to-supported-types{target-type=f32},"
          "arith-emulate-unsupported-floats{source-types=bf16,f16 "
          "target-type=f32},arith-expand{include-bf16=true},"
          "convert-vector-to-llvm,convert-math-to-llvm,convert-math-to-libm,"
          "finalize-memref-to-llvm,") +
      (openMP ? "convert-openmp-to-llvm," : "") +
      "convert-arith-to-llvm,convert-index-to-llvm,convert-cf-to-llvm,"
      "convert-func-to-llvm,reconcile-unrealized-casts";
  if (failed(parsePassPipeline(upstream, pm, llvm::errs())))
    llvm::report_fatal_error("rotor: the host lowering does not parse");
}

void rotor::buildHostPipeline(OpPassManager &pm,
                              const HostPipelineOptions &options) {
  buildLoopLevelPipeline(pm, options);
  buildHostLlvmLowering(pm);
}

namespace {
struct HostPipelineCLOptions
    : public PassPipelineOptions<HostPipelineCLOptions> {
  Option<int64_t> kvTileSize{*this, "kv-tile-size",
                             llvm::cl::desc("Keys per SDPA tile"),
                             llvm::cl::init(64)};
  Option<bool> splitKVDecode{
      *this, "split-kv-decode",
      llvm::cl::desc("Decode SDPA as split-KV attention"),
      llvm::cl::init(false)};
  Option<bool> workgroupTiledSdpa{
      *this, "workgroup-tiled-sdpa",
      llvm::cl::desc("Prefill SDPA as workgroup-tiled attention"),
      llvm::cl::init(false)};
  Option<bool> workgroupTiledLinear{
      *this, "workgroup-tiled-linear",
      llvm::cl::desc("Prefill projections as workgroup-tiled GEMMs"),
      llvm::cl::init(false)};
};
} // namespace

void rotor::registerHostPipeline() {
  PassPipelineRegistration<HostPipelineCLOptions>(
      "rotor-host-pipeline",
      "Lower attn IR to the LLVM dialect for the host CPU",
      [](OpPassManager &pm, const HostPipelineCLOptions &cl) {
        HostPipelineOptions options;
        options.kvTileSize = cl.kvTileSize;
        options.splitKVDecode = cl.splitKVDecode;
        options.workgroupTiledSdpa = cl.workgroupTiledSdpa;
        options.workgroupTiledLinear = cl.workgroupTiledLinear;
        buildHostPipeline(pm, options);
      });
}
