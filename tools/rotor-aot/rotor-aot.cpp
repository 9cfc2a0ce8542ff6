//===- rotor-aot.cpp - Ahead-of-time compiler to kernel bundles -----------===//
//
// rotor-aot LAYER.mlir -o OUT.rotor [--params W.safetensors|CKPT_DIR] [--layer N]
//
//===----------------------------------------------------------------------===//

#include "ConfirmPrecision.h"

#include "rotor/Codegen/Passes.h"
#include "rotor/Conversion/Passes.h"
#include "rotor/InitAllDialects.h"
#include "rotor/Target/Bundle/Bundle.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/Timer.h"

namespace cl = llvm::cl;

/// The tool's own options: --help lists these, not LLVM's.
static cl::OptionCategory aotOptions("rotor-aot options");

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<layer.mlir>"),
                                      cl::Required, cl::cat(aotOptions));
static cl::opt<std::string> outputDir("o",
                                      cl::desc("Bundle directory to write"),
                                      cl::value_desc("OUT.rotor"), cl::Required,
                                      cl::cat(aotOptions));
static cl::opt<std::string> paramsFile(
    "params",
    cl::desc("The weights: a .safetensors file, a checkpoint directory or "
             "its model.safetensors.index.json (default: the module's "
             "attn.checkpoint, which rotor-import records)"),
    cl::value_desc("PATH"), cl::cat(aotOptions));
static cl::opt<int64_t>
    layerOpt("layer",
             cl::desc("Which layer of a multi-layer module (rotor-import's "
                      "@layerN_prefill/@layerN_decode) to compile"),
             cl::init(0), cl::cat(aotOptions));
static cl::opt<int64_t>
    kvTileSize("kv-tile-size",
               cl::desc("Keys per SDPA tile of the loop-level forms "
                        "(default: 128 for the host, 64 for GPU targets)"),
               cl::cat(aotOptions));
static cl::opt<bool> splitKVDecode(
    "split-kv-decode",
    cl::desc("Decode SDPA as split-KV attention (flash-decoding) rather than "
             "a loop over KV tiles (default: on for cuda, off for host)"),
    cl::init(false), cl::cat(aotOptions));
static cl::opt<int64_t> hostSdpaKeySplit(
    "host-sdpa-key-split",
    cl::desc("Host: a decode step's attention runs over ranges of the KV "
             "cache on the threads before one combine; each range holds "
             "up to this many keys' worth of one KV head, split among all "
             "KV heads (N / Hkv keys of each), so that it is one contiguous "
             "run of the cache; the ranges (usually an even count when "
             "more than one) share the keys about equally (0: one range "
             "per KV head)"),
    cl::init(2048), cl::cat(aotOptions));
static cl::opt<bool> hostPackedEpilogues(
    "host-packed-epilogues",
    cl::desc("Host: prefill projections start from their bias, apply a "
             "half-split RoPE to their rows in registers, and run the KV "
             "cache's rotation, quantization and packing on each chunk of "
             "a head's rows while it is in cache; a prefill block's scores "
             "are scaled, masked and reduced to their row max in registers "
             "(off: separate passes over memory)"),
    cl::init(true), cl::cat(aotOptions));
static cl::opt<bool> workgroupTiledSdpa(
    "workgroup-tiled-sdpa",
    cl::desc("Prefill SDPA as workgroup-tiled attention, KV tiles staged in "
             "shared memory (default: on for cuda, off for host)"),
    cl::init(false), cl::cat(aotOptions));
static cl::opt<bool> workgroupTiledLinear(
    "workgroup-tiled-linear",
    cl::desc("Prefill projections as workgroup-tiled GEMMs, reduction slices "
             "staged in shared memory (default: on for cuda, off for host)"),
    cl::init(false), cl::cat(aotOptions));
static cl::opt<bool> quiet("quiet", cl::desc("Do not print progress"),
                           cl::cat(aotOptions));
static cl::opt<bool> allowRopeLayoutMismatch(
    "allow-rope-layout-mismatch",
    cl::desc("Compile RoPE whose layout disagrees with its weights' row "
             "order (a warning instead of an error)"),
    cl::cat(aotOptions));
static cl::opt<std::string> target(
    "target",
    cl::desc("host (default), cuda, or gpu-emulation (a host bundle whose "
             "code is the GPU's kernels run as OpenMP thread teams)"),
    cl::init("host"), cl::cat(aotOptions));
static cl::opt<std::string> hostCpu(
    "host-cpu",
    cl::desc("The CPU the host code is for: native (default: this machine's "
             "CPU and its instruction-set extensions) or an LLVM CPU name "
             "(x86-64-v2, x86-64-v3, znver3, ...). The manifest records the "
             "extensions used, and the runtime refuses a CPU without them"),
    cl::init("native"), cl::cat(aotOptions));
static cl::opt<bool> fuseRopeEpilogue(
    "fuse-rope-epilogue",
    cl::desc("Rotate Q/K in the loop-level projection's epilogue (host "
             "only; default off: the register-blocked projection plus a "
             "RoPE pass measured faster)"),
    cl::init(true), cl::cat(aotOptions));
static cl::opt<bool> foldKVRotation(
    "fold-kv-rotation",
    cl::desc("Rotate Q once instead of inverse-rotating every K/V block "
             "read from a rotated cache, folding the output's inverse into "
             "W_o (attn-fold-kv-rotation; default on; =false keeps the "
             "unfolded graph as the baseline)"),
    cl::init(true), cl::cat(aotOptions));
static cl::opt<bool> narrowRoundedWeights(
    "narrow-rounded-weights",
    cl::desc("Store a weight that every projection reading it rounds to one "
             "narrower compute type (e.g. compute = bf16 on an f32 weight) "
             "in that type, rounded once (attn-narrow-rounded-weights; "
             "default on; the results are the same bits)"),
    cl::init(true), cl::cat(aotOptions));
static cl::opt<std::string> foldKVRotationReport(
    "fold-kv-rotation-report",
    cl::desc("Write what attn-fold-kv-rotation did and did not do, per "
             "layer, to this file ('-': stderr)"),
    cl::init(""), cl::cat(aotOptions));
static cl::opt<bool> splitRopeBias(
    "split-rope-bias",
    cl::desc("Keep K's bias out of the KV cache: SDPA adds q·RoPE(b_k, p) to "
             "each score in f32 (attn-split-rope-bias)"),
    cl::init(false), cl::cat(aotOptions));
static cl::opt<std::string> precision(
    "precision",
    cl::desc("Choose each tensor's type from a rounding-error bound "
             "(attn-select-precision): 'auto' picks the cheapest plan whose "
             "predicted error meets --precision-target; f32, bf16, rope-f32 "
             "and q-f32 apply a named plan. Needs an f32 import"),
    cl::init(""), cl::cat(aotOptions));
static cl::opt<double> precisionTarget(
    "precision-target",
    cl::desc("The largest predicted max |out - exact| / max |exact| of a "
             "layer's output (--precision=auto; default 1e-2)"),
    cl::init(1e-2), cl::cat(aotOptions));
static cl::opt<std::string> precisionReport(
    "precision-report",
    cl::desc("Write attn-select-precision's decisions as JSON to this file "
             "('-': stderr)"),
    cl::init(""), cl::cat(aotOptions));
static cl::opt<double> precisionInputRms(
    "precision-input-rms",
    cl::desc("Declared RMS of each input row, for layers whose input norm "
             "the importer did not record"),
    cl::init(0), cl::cat(aotOptions));
// Fault injection for the calibration retry's test: the model overestimates
// the measured error 2-6x, so no real layer makes its first plan miss.
static cl::opt<double> precisionTestLooseFirstPlan(
    "precision-test-loose-first-plan", cl::Hidden,
    cl::desc("Testing only: choose the first plan for this multiple of "
             "--precision-target, so that calibration sees it miss"),
    cl::init(1), cl::cat(aotOptions));
static cl::opt<std::string> precisionCalibration(
    "precision-calibration",
    cl::desc("Calibration inputs (hidden_states, positions) the precision "
             "model evaluates the layer on"),
    cl::init(""), cl::cat(aotOptions));
static cl::opt<std::string> gpuChip("gpu-chip",
                                    cl::desc("NVVM chip for --target=cuda"),
                                    cl::init("sm_90"), cl::cat(aotOptions));
static cl::opt<std::string>
    cudaToolkit("cuda-toolkit",
                cl::desc("CUDA toolkit for libdevice and ptxas"),
                cl::init(ROTOR_CUDA_TOOLKIT), cl::cat(aotOptions));

/// The pipeline options from the flags: target-dependent ones only when
/// given, so that the target's defaults apply otherwise.
static void fillPipelineOptions(rotor::PipelineOptions &pipeline) {
  pipeline.target = target;
  if (kvTileSize.getNumOccurrences())
    pipeline.kvTileSize = kvTileSize;
  pipeline.chip = gpuChip;
  pipeline.toolkit = cudaToolkit;
  pipeline.allowRopeLayoutMismatch = allowRopeLayoutMismatch;
  pipeline.hostSdpaKeySplit = hostSdpaKeySplit;
  pipeline.hostPackedEpilogues = hostPackedEpilogues;
  if (splitKVDecode.getNumOccurrences())
    pipeline.splitKVDecode = splitKVDecode;
  if (workgroupTiledSdpa.getNumOccurrences())
    pipeline.workgroupTiledSdpa = workgroupTiledSdpa;
  if (workgroupTiledLinear.getNumOccurrences())
    pipeline.workgroupTiledLinear = workgroupTiledLinear;
  if (fuseRopeEpilogue.getNumOccurrences())
    pipeline.fuseRopeEpilogue = fuseRopeEpilogue;
}

/// Picks the layer of a copy of the parsed input (a calibration retry
/// compiles again, and the passes change the module they run on), finds
/// the weights and writes the bundle: 0, or the exit code after the error
/// was printed.
static int compileOnce(mlir::ModuleOp parsed, rotor::BundleOptions &options) {
  mlir::OwningOpRef<mlir::ModuleOp> module(parsed.clone());

  std::optional<int64_t> layer;
  if (layerOpt.getNumOccurrences()) {
    if (layerOpt < 0) {
      llvm::errs() << "rotor-aot: --layer must be a layer number, not "
                   << layerOpt << "\n";
      return 1;
    }
    layer = layerOpt;
  }
  if (llvm::Error err = rotor::selectLayer(*module, layer)) {
    llvm::errs() << "rotor-aot: " << inputFile << ": "
                 << llvm::toString(std::move(err)) << "\n";
    return 1;
  }

  if (!paramsFile.empty())
    options.paramsPath = paramsFile;
  else if (auto checkpoint =
               (*module)->getAttrOfType<mlir::StringAttr>("attn.checkpoint")) {
    // A relative checkpoint is relative to the module's file.
    llvm::SmallString<256> path(checkpoint.getValue());
    if (llvm::sys::path::is_relative(path)) {
      llvm::SmallString<256> base(llvm::sys::path::parent_path(inputFile));
      llvm::sys::path::append(base, path);
      path = base;
    }
    options.paramsPath = path.str().str();
  }
  if (llvm::Error err = rotor::writeBundle(*module, options)) {
    llvm::errs() << "rotor-aot: " << inputFile << ": "
                 << llvm::toString(std::move(err)) << "\n";
    return 1;
  }
  return 0;
}

/// --precision=auto with --precision-calibration: runs the bundle on the
/// calibration rows on the host and compares with the fp64 reference. A
/// plan that misses the target there is chosen again against a target
/// tightened by the miss, up to three plans; if none meets it, the bundle
/// is removed and the run fails.
static int confirmPrecision(mlir::ModuleOp parsed,
                            rotor::BundleOptions &options) {
  if (precision != "auto" || precisionCalibration.empty())
    return 0;
  // A plan calibration did not confirm leaves no bundle behind.
  auto reject = [&](const std::string &why) {
    llvm::errs() << "rotor-aot: --precision-calibration: " << why
                 << "; no bundle written\n";
    llvm::sys::fs::remove_directories(outputDir);
    return 1;
  };
  for (int attempt = 1;; ++attempt) {
    rotor::CalibrationRun run =
        rotor::runOnCalibration(outputDir, precisionCalibration);
    if (!run.error.empty())
      return reject(run.error);
    llvm::errs() << llvm::format(
        "rotor-aot: calibration: %lld tokens on the host, max relative error "
        "%.3e (PCC %.9f) against the fp64 reference, target %g",
        (long long)run.tokens, run.maxRelativeError, run.pcc,
        precisionTarget.getValue());
    if (run.maxRelativeError <= precisionTarget) {
      llvm::errs() << ": the plan is confirmed\n";
      return 0;
    }
    if (attempt == 3) {
      llvm::errs() << "\n";
      return reject("missed by three plans");
    }
    // The model's prediction scales with the error: ask it for the miss.
    options.precisionTarget *=
        0.8 * precisionTarget / run.maxRelativeError;
    llvm::errs() << llvm::format(": missed; choosing again for a predicted "
                                 "%.3e\n",
                                 options.precisionTarget);
    if (compileOnce(parsed, options))
      return reject("no plan for the tightened target");
  }
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(aotOptions);
  cl::ParseCommandLineOptions(argc, argv, "Rotor ahead-of-time compiler\n");
  mlir::registerAllPasses();
  rotor::registerRotorConversionPasses();
  rotor::registerRotorCodegenPasses();

  mlir::DialectRegistry registry;
  rotor::registerAllDialects(registry);
  rotor::registerInterfaceModels(registry);
  rotor::registerGpuSerialization(registry);
  // As in rotor-opt: convert-gpu-to-nvvm lowers the kernels' memref and
  // vector ops through these dialects' ConvertToLLVM interfaces (workgroup
  // buffers need its address-space mapping), so both tools must register
  // the same extensions to lower identically.
  mlir::registerAllExtensions(registry);
  mlir::registerBuiltinDialectTranslation(registry);
  mlir::registerLLVMDialectTranslation(registry);
  // Host code runs its parallel loops, and GPU-emulation bundles their
  // launches, as OpenMP parallel regions.
  mlir::registerOpenMPDialectTranslation(registry);
  mlir::MLIRContext context(registry);
  // Errors name the op and its location; a dump of it helps nobody.
  context.printOpOnDiagnostic(false);

  // Options are checked before anything is read or written.
  rotor::BundleOptions options;
  options.outputDir = outputDir;
  options.foldKVRotation = foldKVRotation;
  options.foldKVRotationReport = foldKVRotationReport;
  options.narrowRoundedWeights = narrowRoundedWeights;
  options.splitRopeBias = splitRopeBias;
  options.hostCpu = hostCpu;
  options.precision = precision;
  options.precisionTarget = precisionTarget * precisionTestLooseFirstPlan;
  options.precisionReport = precisionReport;
  options.precisionInputRms = precisionInputRms;
  options.precisionCalibration = precisionCalibration;
  fillPipelineOptions(options.pipeline);
  if (llvm::Error err = rotor::validateBundleOptions(options)) {
    llvm::errs() << "rotor-aot: " << llvm::toString(std::move(err)) << "\n";
    return 1;
  }

  llvm::SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  llvm::TimeRecord start = llvm::TimeRecord::getCurrentTime();
  options.progress = [&](llvm::StringRef stage) {
    if (quiet)
      return;
    double elapsed = llvm::TimeRecord::getCurrentTime().getWallTime() -
                     start.getWallTime();
    llvm::errs() << llvm::format("rotor-aot: [%6.2fs] ", elapsed) << stage
                 << "\n";
  };
  // Calibration confirms a plan by running it here, on the host.
  if (precision == "auto" && !precisionCalibration.empty() &&
      target == "cuda") {
    llvm::errs() << "rotor-aot: --precision-calibration runs the bundle on "
                    "the host: compile for --target=host (or gpu-emulation) "
                    "to confirm a plan\n";
    return 1;
  }
  mlir::OwningOpRef<mlir::ModuleOp> parsed =
      mlir::parseSourceFile<mlir::ModuleOp>(inputFile, sourceMgr, &context);
  if (!parsed)
    return 1;
  if (int rc = compileOnce(*parsed, options))
    return rc;
  if (int rc = confirmPrecision(*parsed, options))
    return rc;
  options.progress("wrote " + outputDir);
  // What the bundle's layer keeps per token, as rotor-run prints it.
  llvm::SmallString<256> manifestPath(outputDir.getValue());
  llvm::sys::path::append(manifestPath, "manifest.json");
  if (auto text = llvm::MemoryBuffer::getFile(manifestPath)) {
    llvm::Expected<llvm::json::Value> manifest =
        llvm::json::parse((*text)->getBuffer());
    if (!manifest) {
      llvm::consumeError(manifest.takeError());
    } else if (const llvm::json::Object *kv =
                   manifest->getAsObject()->getObject("kv_cache")) {
      if (std::optional<int64_t> bytes = kv->getInteger("bytes_per_token"))
        llvm::errs() << "rotor-aot: KV cache: " << *bytes
                     << " bytes per token ("
                     << kv->getString("format").value_or("?")
                     << ", K and V, scales included)\n";
    }
  }
  return 0;
}
