//===- rotor-import.cpp - Hugging Face checkpoints to attn IR -------------===//
//
// rotor-import CKPT_DIR -o LAYER.mlir [--layers 0,3-5] [--dtype f32|bf16]
//              [--kv-capacity N] [--capture-qk]
//              [--kv-cache FORMAT [--kv-rotation-seed S] [--no-kv-rotation]]
//
//===----------------------------------------------------------------------===//

#include "rotor/Import/ImportLayer.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/ToolOutputFile.h"
#include "rotor/Support/Safetensors.h"
#include "mlir/IR/Verifier.h"

namespace cl = llvm::cl;
using namespace rotor::import;

/// The tool's own options: --help lists these, not LLVM's.
static cl::OptionCategory importOptions("rotor-import options");

static cl::opt<std::string> checkpointDir(cl::Positional,
                                          cl::desc("<checkpoint directory>"),
                                          cl::Required, cl::cat(importOptions));
static cl::opt<std::string> outputFile("o", cl::desc("attn IR file to write"),
                                       cl::value_desc("LAYER.mlir"),
                                       cl::Required, cl::cat(importOptions));
static cl::opt<std::string>
    layerList("layers", cl::desc("Layers to import, e.g. 0,3-5 (default: all)"),
              cl::value_desc("LIST"), cl::cat(importOptions));
static cl::opt<std::string>
    dtype("dtype",
          cl::desc("Element type of activations, weights and KV caches: "
                   "f32 (default) or bf16"),
          cl::init("f32"), cl::cat(importOptions));
static cl::opt<int64_t> kvCapacity("kv-capacity",
                                   cl::desc("Positions per KV cache (4096)"),
                                   cl::init(4096), cl::cat(importOptions));
static cl::opt<bool> captureQK(
    "capture-qk",
    cl::desc("Record post-RoPE Q and K of every layer (attn.capture, tags "
             "layerN.q and layerN.k; rotor-run --captures writes them)"),
    cl::cat(importOptions));
static cl::opt<std::string> kvCache(
    "kv-cache",
    cl::desc("KV-cache format: f32, bf16, f16, q8_0, q4_0 (absmax, blocks of "
             "32, f16 scale), turbo3, turbo4 (Walsh-Hadamard rotated, 3/4-bit "
             "Lloyd-Max codes, one f16 scale per group of 128, or 64 for "
             "64-dim heads); codes are bit-packed (default: --dtype)"),
    cl::value_desc("FORMAT"), cl::cat(importOptions));
static cl::opt<uint64_t> kvRotationSeed(
    "kv-rotation-seed",
    cl::desc("Seed of each layer's rotation (turbo3/turbo4: default 0; "
             "q8_0/q4_0: rotated only when given)"),
    cl::value_desc("S"), cl::cat(importOptions));
static cl::opt<bool> noKVRotation(
    "no-kv-rotation",
    cl::desc("Build turbo3/turbo4 without their rotation (to measure what "
             "the rotation buys)"),
    cl::cat(importOptions));
static cl::opt<bool> quiet("quiet", cl::desc("Print errors only"),
                           cl::cat(importOptions));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "rotor-import: " << message << "\n";
  return 1;
}

static const char *scalingName(RopeScalingConfig::Kind kind) {
  using K = RopeScalingConfig::Kind;
  switch (kind) {
  case K::None: return "default";
  case K::Linear: return "linear";
  case K::Dynamic: return "dynamic";
  case K::Yarn: return "yarn";
  case K::Llama3: return "llama3";
  }
  return "?";
}

/// Writes the IR to `-o` through a temporary sibling renamed over it, so a
/// failure never leaves a half-written file, and never over a file of the
/// checkpoint being read. Returns an error message, or "".
std::string writeOutput(mlir::ModuleOp module) {
  llvm::sys::fs::UniqueID outId;
  if (!llvm::sys::fs::getUniqueID(outputFile, outId)) {
    std::error_code ec;
    for (llvm::sys::fs::recursive_directory_iterator it(checkpointDir, ec), end;
         it != end && !ec; it.increment(ec)) {
      llvm::sys::fs::UniqueID inId;
      if (!llvm::sys::fs::getUniqueID(it->path(), inId) && inId == outId)
        return outputFile + ": is " + it->path() +
               " of the checkpoint being read; refusing to overwrite it";
    }
  }
  llvm::SmallString<256> temporary;
  llvm::sys::fs::createUniquePath(outputFile + ".tmp-%%%%%%", temporary,
                                  /*MakeAbsolute=*/false);
  std::error_code ec;
  {
    llvm::raw_fd_ostream out(temporary, ec, llvm::sys::fs::OF_Text);
    if (ec)
      return outputFile + ": cannot write: " + ec.message();
    module->print(out);
    out << "\n";
    out.close();
    ec = out.error();
  }
  if (!ec)
    ec = llvm::sys::fs::rename(temporary, outputFile);
  if (ec) {
    llvm::sys::fs::remove(temporary);
    return outputFile + ": cannot write: " + ec.message();
  }
  return "";
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(importOptions);
  cl::ParseCommandLineOptions(
      argc, argv,
      "Rotor importer: the attention layers of a Hugging Face checkpoint "
      "(config.json + model.safetensors or its shards) as attn IR\n");

  if (!llvm::sys::fs::is_directory(checkpointDir))
    return fail(checkpointDir + ": not a checkpoint directory");
  llvm::SmallString<256> configPath(checkpointDir);
  llvm::sys::path::append(configPath, "config.json");
  if (llvm::Error err = rotor::safetensors::requireRegularFile(configPath))
    return fail(llvm::toString(std::move(err)));
  auto configText = llvm::MemoryBuffer::getFile(configPath);
  if (!configText)
    return fail(configPath + ": cannot read: " +
                configText.getError().message());
  llvm::Expected<AttentionConfig> config =
      parseHFConfig((*configText)->getBuffer(), configPath);
  if (!config)
    return fail(llvm::toString(config.takeError()));

  ImportOptions options;
  if (!layerList.empty()) {
    auto layers = parseLayerList(layerList, config->numLayers);
    if (!layers)
      return fail(llvm::toString(layers.takeError()));
    options.layers = std::move(*layers);
  }
  options.dtype = dtype;
  options.kvCapacity = kvCapacity;
  options.kvCache = kvCache;
  if (kvRotationSeed.getNumOccurrences())
    options.kvRotationSeed = kvRotationSeed;
  options.noKVRotation = noKVRotation;
  options.captureQK = captureQK;
  // Absolute, so that rotor-aot finds it from any directory.
  llvm::SmallString<256> absolute(checkpointDir);
  if (std::error_code ec = llvm::sys::fs::make_absolute(absolute))
    return fail(checkpointDir + ": " + ec.message());
  llvm::sys::path::remove_dots(absolute, /*remove_dot_dot=*/true);
  options.checkpointPath = absolute.str().str();
  options.configPath = configPath.str().str();
  options.note = [](llvm::StringRef note) {
    if (!quiet)
      llvm::errs() << "rotor-import: note: " << note << "\n";
  };

  for (const std::string &note : config->notes)
    options.note(note);

  auto weights = CheckpointWeights::open(checkpointDir);
  if (!weights)
    return fail(llvm::toString(weights.takeError()));

  mlir::MLIRContext context;
  auto module = importAttentionLayers(&context, *config, *weights, options);
  if (!module)
    return fail(llvm::toString(module.takeError()));

  // IR that does not verify is a bug of the importer or of the config's
  // values; it is reported, never written.
  if (mlir::failed(mlir::verify(**module)))
    return fail(checkpointDir + ": the imported IR does not verify (see the "
                                "errors above)");
  if (outputFile == "-") {
    (*module)->print(llvm::outs());
    llvm::outs() << "\n";
  } else if (std::string err = writeOutput(**module); !err.empty()) {
    return fail(err);
  }

  if (!quiet) {
    const AttentionConfig &c = *config;
    size_t count = 0;
    for (auto func : (**module).getOps<mlir::func::FuncOp>())
      count += func.getSymName().ends_with("_prefill");
    llvm::errs() << "rotor-import: " << c.modelType << ", hidden "
                 << c.hiddenSize << ", " << c.numHeads << " query / "
                 << c.numKVHeads << " KV heads of " << c.headDim
                 << ", RoPE " << c.rotaryDim << " dims, theta "
                 << llvm::format("%g", c.ropeTheta) << ", "
                 << scalingName(c.scaling.kind) << " scaling"
                 << (c.qkvBias ? ", QKV bias" : "")
                 << (c.qkNorm ? ", q_norm/k_norm" : "") << ": " << count
                 << " layer(s) as " << options.dtype << ", KV cache "
                 << (kvCache.empty() ? options.dtype : kvCache)
                 << (noKVRotation ? " (unrotated)" : "") << " -> " << outputFile
                 << "\n";
  }
  return 0;
}
