//===- BundleWriter.cpp - rotor-aot's bundle directory --------------------===//

#include "rotor-rt/Sha256.h"
#include "rotor/Import/Checkpoint.h"
#include "rotor/Support/Safetensors.h"
#include "rotor/Target/Bundle/Bundle.h"

#include "rotor/Dialect/Attn/IR/AttnAttrs.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/Regex.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <cstring>
#include <set>

using namespace mlir;
using namespace rotor;
namespace json = llvm::json;

namespace {

llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// The safetensors dtype of an MLIR element type name.
std::string safetensorsDtype(StringRef mlirType) {
  return llvm::StringSwitch<std::string>(mlirType)
      .Case("f32", "F32")
      .Case("bf16", "BF16")
      .Case("f16", "F16")
      .Case("f64", "F64")
      .Case("i64", "I64")
      .Case("i32", "I32")
      .Case("i8", "I8")
      .Default("");
}

const llvm::fltSemantics *floatSemantics(StringRef dtype) {
  if (dtype == "F32")
    return &llvm::APFloat::IEEEsingle();
  if (dtype == "F64")
    return &llvm::APFloat::IEEEdouble();
  if (dtype == "F16")
    return &llvm::APFloat::IEEEhalf();
  if (dtype == "BF16")
    return &llvm::APFloat::BFloat();
  return nullptr;
}

/// Converts float tensor bytes between dtypes (round to nearest even).
std::vector<uint8_t> convertFloats(StringRef bytes, StringRef from,
                                   StringRef to) {
  const llvm::fltSemantics &src = *floatSemantics(from);
  const llvm::fltSemantics &dst = *floatSemantics(to);
  size_t inSize = safetensors::dtypeSize(from), outSize = safetensors::dtypeSize(to);
  size_t count = bytes.size() / inSize;
  std::vector<uint8_t> out(count * outSize);
  for (size_t i = 0; i < count; ++i) {
    uint64_t raw = 0;
    std::memcpy(&raw, bytes.data() + i * inSize, inSize);
    llvm::APFloat value(src, llvm::APInt(inSize * 8, raw));
    bool lost;
    value.convert(dst, llvm::APFloat::rmNearestTiesToEven, &lost);
    uint64_t bits = value.bitcastToAPInt().getZExtValue();
    std::memcpy(out.data() + i * outSize, &bits, outSize);
  }
  return out;
}

/// The weights every entry point reads, taken from the archive and
/// converted to the element type the kernels declare.
llvm::Error writeWeights(const json::Object &manifest,
                         const std::optional<std::string> &paramsPath,
                         const llvm::StringMap<DerivedWeight> &permuted,
                         StringRef outPath) {
  std::vector<safetensors::OwnedTensor> tensors;
  llvm::StringSet<> seen;
  std::optional<import::CheckpointWeights> weights;
  for (const json::Value &entry : *manifest.getArray("entry_points")) {
    const json::Object &e = *entry.getAsObject();
    StringRef entryName = *e.getString("name");
    for (const json::Value &arg : *e.getArray("arguments")) {
      const json::Object &a = *arg.getAsObject();
      if (*a.getString("kind") != "param")
        continue;
      StringRef name = *a.getString("name");
      if (!seen.insert(name).second)
        continue;
      if (!paramsPath)
        return fail("@" + entryName + " reads parameter '" + name +
                    "'; give the weights with --params (a .safetensors file, "
                    "or a checkpoint directory or index)");
      if (!weights) {
        auto opened = import::CheckpointWeights::open(*paramsPath);
        if (!opened)
          return opened.takeError();
        weights = std::move(*opened);
      }
      // A permuted weight reads its source tensor.
      auto derived = permuted.find(name);
      StringRef source =
          derived == permuted.end() ? name : StringRef(derived->second.source);
      std::string file;
      llvm::Expected<const safetensors::TensorView *> found =
          weights->lookup(source, &file);
      if (!found)
        return fail(llvm::toString(found.takeError()) + " (read by @" +
                    entryName + ")");
      const safetensors::TensorView *view = *found;
      std::vector<int64_t> shape;
      for (const json::Value &d : *a.getArray("shape"))
        shape.push_back(*d.getAsInteger());
      if (view->shape != shape) {
        std::string have, want;
        llvm::raw_string_ostream h(have), w(want);
        llvm::interleaveComma(view->shape, h);
        llvm::interleaveComma(shape, w);
        return fail(file + ": tensor '" + source + "' has shape [" +
                    h.str() + "] but the kernels read [" + w.str() + "]");
      }
      if (!safetensors::dtypeSize(view->dtype))
        return fail(file + ": tensor '" + source + "' has dtype " +
                    view->dtype + ", which rotor cannot read");
      llvm::StringRef bytes = view->bytes;
      std::string sourceDtype = view->dtype;
      std::vector<uint8_t> derivedBytes;
      if (derived != permuted.end()) {
        if (derived->second.computes() && !floatSemantics(sourceDtype))
          return fail(file + ": tensor '" + source + "' is " + sourceDtype +
                      "; only a float weight can be rotated");
        derivedBytes =
            applyDerivedWeight(bytes, shape, sourceDtype, derived->second);
        if (derived->second.computes())
          sourceDtype = "F64";
        bytes = llvm::StringRef(
            reinterpret_cast<const char *>(derivedBytes.data()),
            derivedBytes.size());
      }
      std::string dtype = safetensorsDtype(*a.getString("dtype"));
      safetensors::OwnedTensor tensor{name.str(), dtype, shape, {}};
      if (sourceDtype == dtype) {
        tensor.bytes.assign(bytes.begin(), bytes.end());
      } else if (floatSemantics(sourceDtype) && floatSemantics(dtype)) {
        tensor.bytes = convertFloats(bytes, sourceDtype, dtype);
      } else {
        return fail(file + ": tensor '" + source + "' is " + view->dtype +
                    " but the kernels read " + dtype);
      }
      tensors.push_back(std::move(tensor));
    }
  }
  return safetensors::write(outPath, tensors);
}

/// Writes each kernel's PTX (and cubin, when ptxas is found) under `dir`
/// and describes them for the manifest.
llvm::Expected<json::Object> writeKernels(ModuleOp module, StringRef dir,
                                          const PipelineOptions &gpu) {
  // `dir` is inside the fresh staging directory of this compile.
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return fail(dir + ": cannot create: " + ec.message());
  llvm::ErrorOr<std::string> ptxas = llvm::sys::findProgramByName(
      "ptxas", {gpu.toolkit.empty() ? std::string(ROTOR_CUDA_TOOLKIT_BIN)
                                    : gpu.toolkit.getValue() + "/bin"});
  json::Array list;
  for (auto binary : module.getOps<gpu::BinaryOp>()) {
    for (Attribute attr : binary.getObjects()) {
      auto object = cast<gpu::ObjectAttr>(attr);
      std::string name = binary.getSymName().str();
      llvm::SmallString<256> ptxPath(dir);
      llvm::sys::path::append(ptxPath, name + ".ptx");
      std::error_code ec;
      llvm::raw_fd_ostream out(ptxPath, ec);
      if (ec)
        return fail(ptxPath + ": " + ec.message());
      StringRef ptx = object.getObject().getValue();
      // Math functions become libdevice calls; without the toolkit's
      // libdevice they stay unresolved and the driver would reject the PTX.
      if (size_t at = ptx.find(".extern .func"); at != StringRef::npos) {
        StringRef rest = ptx.substr(at);
        size_t nv = rest.find("__nv_");
        StringRef callee = nv == StringRef::npos
                               ? StringRef("an external function")
                               : rest.substr(nv, rest.find('(', nv) - nv);
        return fail("kernel " + name + " calls " + callee +
                    ", which only the CUDA toolkit's libdevice provides: pass "
                    "--cuda-toolkit DIR (none was found when Rotor was built)");
      }
      out << ptx;
      out.close();
      // Workgroup kernels (rotor-map-workgroup-loops-to-gpu) declare their
      // shared buffers statically; the PTX is the authority on their size.
      int64_t sharedBytes = 0;
      static const llvm::Regex shared(
          "\\.shared \\.align [0-9]+ \\.b8 [A-Za-z0-9_$]+\\[([0-9]+)\\]");
      for (StringRef rest = ptx; !rest.empty();) {
        SmallVector<StringRef> match;
        if (!shared.match(rest, &match))
          break;
        sharedBytes += std::stoll(match[1].str());
        rest = rest.substr(match[0].data() - rest.data() + match[0].size());
      }
      json::Object kernel{
          {"module", name},
          {"ptx", ("kernels/" + name + ".ptx")},
          {"block", json::Array{gpu.blockSize.getValue(), 1, 1}},
          {"shared_bytes", sharedBytes},
          {"grid", sharedBytes
                       ? "one block per (row tile, KV head, KV split) of the "
                         "workgroup-tiled SDPA, computed by the host code at "
                         "each launch"
                       : "ceil(iterations / block), computed by the host "
                         "code at each launch"}};
      if (ptxas) {
        std::string cubin = (dir + "/" + name + ".cubin").str();
        std::string arch = "-arch=" + gpu.chip;
        std::string in = std::string(ptxPath);
        llvm::SmallVector<StringRef> argv = {*ptxas, arch, "-o", cubin, in};
        std::string message;
        if (llvm::sys::ExecuteAndWait(*ptxas, argv, std::nullopt, {}, 0, 0,
                                      &message) != 0)
          return fail("ptxas rejected " + ptxPath + ": " + message);
        kernel["cubin"] = "kernels/" + name + ".cubin";
      }
      list.push_back(std::move(kernel));
    }
  }
  return json::Object{{"chip", gpu.chip},
                      {"loads", "the host library embeds the PTX and the "
                                "driver compiles it for the GPU at hand"},
                      {"kernels", std::move(list)}};
}

/// Whether `dir` holds a bundle: a manifest.json that rotor-aot wrote.
bool isBundle(StringRef dir) {
  llvm::SmallString<256> manifest(dir);
  llvm::sys::path::append(manifest, "manifest.json");
  if (!llvm::sys::fs::is_regular_file(manifest))
    return false;
  auto buffer = llvm::MemoryBuffer::getFile(manifest);
  if (!buffer)
    return false;
  llvm::Expected<json::Value> parsed = json::parse((*buffer)->getBuffer());
  if (!parsed) {
    llvm::consumeError(parsed.takeError());
    return false;
  }
  const json::Object *object = parsed->getAsObject();
  return object && object->getInteger("format_version") &&
         object->getArray("entry_points");
}

bool isEmptyDirectory(StringRef dir) {
  std::error_code ec;
  llvm::sys::fs::directory_iterator it(dir, ec);
  return !ec && it == llvm::sys::fs::directory_iterator();
}

/// Every file under `dir` (relative, '/'-separated) except the manifest,
/// with its size and SHA-256, so the runtime can tell a damaged or
/// replaced file before it maps or loads it.
llvm::Expected<json::Object> describeFiles(StringRef dir) {
  json::Object files;
  std::error_code ec;
  for (llvm::sys::fs::recursive_directory_iterator it(dir, ec), end;
       it != end && !ec; it.increment(ec)) {
    if (it->type() != llvm::sys::fs::file_type::regular_file)
      continue;
    StringRef path = it->path();
    std::string relative =
        llvm::sys::path::convert_to_slash(path.drop_front(dir.size() + 1));
    if (relative == "manifest.json")
      continue;
    auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                              /*RequiresNullTerminator=*/false);
    if (!buffer)
      return fail(path + ": cannot read back: " + buffer.getError().message());
    llvm::StringRef bytes = (*buffer)->getBuffer();
    // The runtime's SHA-256, which checks it (llvm::SHA256 keeps the length
    // in 32 bits, its bit count wrapping from 512 MiB on: a 70B layer's
    // f32 weights).
    files[relative] = json::Object{
        {"bytes", int64_t(bytes.size())},
        {"sha256", rotor::rt::sha256Hex(bytes.data(), bytes.size())}};
  }
  if (ec)
    return fail(dir + ": cannot list: " + ec.message());
  return files;
}

/// The entry points' signatures as the host library records them.
std::string abiOf(const json::Object &manifest) {
  json::Array entries;
  for (const json::Value &entry : *manifest.getArray("entry_points")) {
    const json::Object &e = *entry.getAsObject();
    entries.push_back(json::Object{{"name", *e.get("name")},
                                   {"symbol", *e.get("symbol")},
                                   {"arguments", *e.get("arguments")},
                                   {"results", *e.get("results")}});
  }
  return llvm::formatv("{0}", json::Value(json::Object{
                                  {"abi_version", 1},
                                  {"entry_points", std::move(entries)}}))
      .str();
}

/// A directory that is removed when this goes out of scope, unless kept.
struct StagingDirectory {
  std::string path;
  bool keep = false;
  ~StagingDirectory() {
    if (!keep && !path.empty())
      llvm::sys::fs::remove_directories(path);
  }
};

/// Replaces `target` (absent, empty or a bundle) by `staging`. The old
/// bundle is moved aside first and put back if the new one cannot take
/// its place.
llvm::Error replaceDirectory(StringRef staging, StringRef target) {
  if (!llvm::sys::fs::exists(target)) {
    if (std::error_code ec = llvm::sys::fs::rename(staging, target))
      return fail(target + ": cannot create: " + ec.message());
    return llvm::Error::success();
  }
  llvm::SmallString<256> aside;
  llvm::sys::fs::createUniquePath(target + ".old-%%%%%%", aside,
                                  /*MakeAbsolute=*/false);
  if (std::error_code ec = llvm::sys::fs::rename(target, aside))
    return fail(target + ": cannot replace: " + ec.message());
  if (std::error_code ec = llvm::sys::fs::rename(staging, target)) {
    llvm::sys::fs::rename(aside, target);
    return fail(target + ": cannot replace: " + ec.message());
  }
  llvm::sys::fs::remove_directories(aside);
  return llvm::Error::success();
}

/// `-o` as an absolute path without trailing separators or dots, so that
/// its sibling staging directory is next to it.
std::string normalizedOutput(StringRef outputDir) {
  llvm::SmallString<256> path(outputDir);
  llvm::sys::fs::make_absolute(path);
  llvm::sys::path::remove_dots(path, /*remove_dot_dot=*/true);
  while (path.size() > 1 && llvm::sys::path::is_separator(path.back()))
    path.pop_back();
  return std::string(path);
}

/// Whether a packed projection's software prefetch of its next panel pays
/// on `cpu` (an LLVM CPU name): on an AMD EPYC (Zen 4) it made 48-96-token
/// prefills 1.08-1.15x faster, on an Intel Xeon (Sapphire Rapids class)
/// 48-128-token ones 1.07-1.16x slower (its hardware prefetchers follow
/// the weight rows; the prefetches only take L1 and issue slots). Intel
/// CPUs, named by LLVM after their cores, go without; AMD's, the generic
/// x86-64 levels and other architectures keep it (as before this was
/// tuned).
bool prefetchesNextPanel(llvm::StringRef cpu) {
  if (!llvm::Triple(llvm::sys::getProcessTriple()).isX86())
    return true;
  static constexpr llvm::StringLiteral kKeep[] = {
      "znver",  "bdver",   "btver",     "amdfam", "k8",
      "athlon", "opteron", "barcelona", "x86-64", "generic"};
  return llvm::any_of(
      kKeep, [&](llvm::StringRef prefix) { return cpu.starts_with(prefix); });
}

/// The pipeline's options (`pipeline`) from `options`, with the host code's
/// register blocking and instructions following the CPU it is compiled for.
void configurePipeline(PipelineOptions &pipeline, const BundleOptions &options,
                       const HostCpu &hostCpu) {
  pipeline.copyOptionValuesFrom(options.pipeline);
  auto has = [&](StringRef feature) {
    return llvm::is_contained(hostCpu.features, feature);
  };
  pipeline.hostVectorRegisters = has("avx512f") ? 32 : 16;
  pipeline.hostFma = has("fma");
  pipeline.hostBf16Dot = has("avx512bf16");
  pipeline.hostAmxBf16 = has("amx-tile") && has("amx-bf16");
  pipeline.hostPanelPrefetch = prefetchesNextPanel(hostCpu.name);
}

/// The compute types narrower than f32 that the module's ops use (their
/// `precision`): they set rotor-run's default tolerance as narrow storage
/// types do.
json::Array narrowComputeTypes(ModuleOp module) {
  std::set<std::string> narrow;
  module.walk([&](Operation *op) {
    for (NamedAttribute attr : op->getAttrs())
      if (auto precision = dyn_cast<attn::PrecisionAttr>(attr.getValue())) {
        if (precision.getCompute().isBF16())
          narrow.insert("bf16");
        else if (precision.getCompute().isF16())
          narrow.insert("f16");
      }
  });
  json::Array types;
  for (const std::string &type : narrow)
    types.push_back(type);
  return types;
}

} // namespace

llvm::Error rotor::validateBundleOptions(const BundleOptions &options) {
  const PipelineOptions &pipeline = options.pipeline;
  if (llvm::Error err = pipeline.validate(pipeline.isGpu()))
    return err;
  if (pipeline.target == "cuda") {
    // Kernels need the toolkit's libdevice for their math functions.
    llvm::SmallString<256> libdevice(pipeline.toolkit);
    llvm::sys::path::append(libdevice, "nvvm", "libdevice");
    if (pipeline.toolkit.empty() || !llvm::sys::fs::is_directory(libdevice))
      return fail("--target=cuda needs the CUDA toolkit's libdevice, and '" +
                  pipeline.toolkit +
                  "' has no nvvm/libdevice: pass --cuda-toolkit DIR");
  }
  if (llvm::Expected<HostCpu> cpu = resolveHostCpu(options.hostCpu); !cpu)
    return cpu.takeError();
  if (options.outputDir.empty())
    return fail("no output directory given (-o)");
  std::string out = normalizedOutput(options.outputDir);
  if (llvm::sys::fs::exists(out)) {
    if (!llvm::sys::fs::is_directory(out))
      return fail(options.outputDir + ": exists and is not a directory; "
                                      "a bundle is a directory");
    if (!isEmptyDirectory(out) && !isBundle(out))
      return fail(options.outputDir +
                  ": is not empty and not a Rotor bundle (no manifest.json "
                  "written by rotor-aot); refusing to replace it");
  }
  return llvm::Error::success();
}

/// The graph passes the options ask for, before the weights are written:
/// precision selection, the K-bias split, KV-rotation folding, weights
/// stored as their projections round them, and the RoPE layout check.
static llvm::Error runGraphPasses(ModuleOp module,
                                  const BundleOptions &options) {
  MLIRContext *ctx = module.getContext();
  PassManager pm(ctx);
  if (!options.precision.empty()) {
    attn::AttnSelectPrecisionOptions select;
    select.plan = options.precision;
    select.target = options.precisionTarget;
    select.report = options.precisionReport;
    select.inputRms = options.precisionInputRms;
    select.calibration = options.precisionCalibration;
    select.weights = options.paramsPath.value_or("");
    pm.addPass(attn::createAttnSelectPrecision(select));
  }
  if (options.splitRopeBias) {
    pm.addPass(attn::createAttnSplitRopeBias());
  } else if (options.precision.empty()) {
    // Say where a split would keep K's bias out of a narrow cache.
    attn::AttnSplitRopeBiasOptions suggest;
    suggest.suggestOnly = true;
    pm.addPass(attn::createAttnSplitRopeBias(suggest));
  }
  if (options.foldKVRotation) {
    attn::AttnFoldKVRotationOptions fold;
    fold.report = options.foldKVRotationReport;
    pm.addPass(attn::createAttnFoldKVRotation(fold));
  }
  if (options.narrowRoundedWeights)
    pm.addPass(attn::createAttnNarrowRoundedWeights());
  attn::AttnCheckRopeLayoutOptions check;
  check.allowMismatch = options.pipeline.allowRopeLayoutMismatch;
  pm.addPass(attn::createAttnCheckRopeLayout(check));
  if (failed(pm.run(module)))
    return fail("selecting precisions, checking RoPE layouts, splitting "
                "the K bias, folding KV rotations or narrowing weights "
                "failed");
  return llvm::Error::success();
}

/// Caches updated in place have left the entry points' results (see
/// rotor-drop-argument-results): the manifest's entry points list what
/// remains, and say how each updates its caches (kv_cache_update).
static llvm::Error recordCacheUpdates(ModuleOp module, json::Object &manifest) {
  for (json::Value &entry : *manifest.getArray("entry_points")) {
    json::Object &e = *entry.getAsObject();
    auto func = module.lookupSymbol<LLVM::LLVMFuncOp>(*e.getString("name"));
    if (!func)
      return fail("lowering lost entry point @" + *e.getString("name"));
    auto resultType =
        dyn_cast<LLVM::LLVMStructType>(func.getFunctionType().getReturnType());
    // One memref result is a descriptor {ptr, ptr, i64, ...}; several are a
    // struct of descriptors.
    size_t count = !resultType ? 0
                   : isa<LLVM::LLVMPointerType>(resultType.getBody()[0])
                       ? 1
                       : resultType.getBody().size();
    json::Array &results = *e.getArray("results");
    if (count != 1 && count != results.size())
      return fail("@" + *e.getString("name") + " returns " +
                  llvm::Twine(count) +
                  " buffers after lowering; expected 1 or " +
                  llvm::Twine(results.size()));
    while (results.size() > count)
      results.erase(results.end() - 1);
    e["kv_cache_update"] = count == 1 ? "in_place" : "returned";
  }
  return llvm::Error::success();
}

/// The manifest has the parameter names and cache formats now; LLVM would
/// warn about an argument attribute it does not know.
static void dropManifestArgAttrs(ModuleOp module) {
  module.walk([](LLVM::LLVMFuncOp func) {
    for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
      for (StringRef name : {"attn.param", "attn.kv_format", "attn.kv_block",
                             "attn.kv_rotation", "attn.input_norm_gain"})
        func.removeArgAttr(i, StringAttr::get(func.getContext(), name));
  });
}

/// Writes `manifest` to `path`, two spaces of indent.
static llvm::Error writeManifest(const std::string &path,
                                 json::Object manifest) {
  std::error_code ec;
  llvm::raw_fd_ostream out(path, ec);
  if (ec)
    return fail(path + ": " + ec.message());
  out << llvm::formatv("{0:2}", json::Value(std::move(manifest))) << "\n";
  out.close();
  if (out.has_error())
    return fail(path + ": " + out.error().message());
  return llvm::Error::success();
}

/// The manifest's record of the build: the host CPU and its features, the
/// captures, the format version, the target and lowering, and the names of
/// the library and the weights.
static void recordBuild(ModuleOp module, json::Object &manifest,
                        const HostCpu &hostCpu,
                        const PipelineOptions &pipeline) {
  bool cuda = pipeline.target == "cuda";
  json::Array features;
  for (const std::string &feature : hostCpu.features)
    features.push_back(feature);
  manifest["host_cpu"] =
      json::Object{{"name", hostCpu.name}, {"features", std::move(features)}};

  if (auto tags = module->getAttrOfType<ArrayAttr>("attn.captures")) {
    json::Array list;
    for (Attribute tag : tags)
      list.push_back(cast<StringAttr>(tag).getValue());
    manifest["captures"] = std::move(list);
  }
  manifest["format_version"] = kBundleFormatVersion;
  // An emulation bundle is host code; the manifest says how it was built.
  manifest["target"] = cuda ? "cuda" : "host";
  manifest["lowering"] = pipeline.target.getValue();
  manifest["host_library"] = "host.so";
  manifest["weights"] = "weights.safetensors";
}

llvm::Error rotor::writeBundle(ModuleOp module, const BundleOptions &options) {
  auto progress = [&](StringRef stage) {
    if (options.progress)
      options.progress(stage);
  };
  MLIRContext *ctx = module.getContext();
  if (llvm::Error err = validateBundleOptions(options))
    return err;

  progress("outlining parameters");
  if (llvm::Error err = runGraphPasses(module, options))
    return err;
  llvm::StringMap<DerivedWeight> permuted;
  foldDerivedWeights(module, permuted);
  {
    PassManager pm(ctx);
    pm.addPass(attn::createAttnOutlineParams());
    if (failed(pm.run(module)))
      return fail("outlining parameters failed");
  }
  llvm::Expected<json::Object> manifest = describeEntryPoints(module);
  if (!manifest)
    return manifest.takeError();
  (*manifest)["compute_types"] = narrowComputeTypes(module);

  // Everything is written into a fresh sibling of the output, which takes
  // its place only once the bundle is complete.
  std::string outputDir = normalizedOutput(options.outputDir);
  StagingDirectory staging;
  {
    llvm::SmallString<256> path;
    llvm::sys::fs::createUniquePath(outputDir + ".partial-%%%%%%", path,
                                    /*MakeAbsolute=*/false);
    if (std::error_code ec = llvm::sys::fs::create_directory(path))
      return fail(path + ": cannot create: " + ec.message());
    staging.path = std::string(path);
  }
  auto inBundle = [&](StringRef file) {
    llvm::SmallString<256> p(staging.path);
    llvm::sys::path::append(p, file);
    return std::string(p);
  };

  progress("writing weights");
  if (llvm::Error err = writeWeights(*manifest, options.paramsPath, permuted,
                                     inBundle("weights.safetensors")))
    return err;

  llvm::Expected<HostCpu> hostCpu = resolveHostCpu(options.hostCpu);
  if (!hostCpu)
    return hostCpu.takeError();
  PipelineOptions pipeline;
  configurePipeline(pipeline, options, *hostCpu);
  bool cuda = pipeline.target == "cuda";
  progress(cuda ? "lowering to NVVM kernels (" + pipeline.chip + ")"
           : pipeline.target == "gpu-emulation"
               ? std::string("lowering to GPU kernels emulated on the host")
               : std::string("lowering to host code"));
  if (llvm::Error err = compileModule(module, pipeline))
    return err;
  if (cuda) {
    progress("writing kernels");
    llvm::Expected<json::Object> kernels =
        writeKernels(module, inBundle("kernels"), pipeline);
    if (!kernels)
      return kernels.takeError();
    // Absent (old bundles) or true: the runtime waits after every launch.
    auto reads =
        module->getAttrOfType<BoolAttr>("rotor.host_reads_device_memory");
    (*kernels)["host_reads_device_memory"] = !reads || reads.getValue();
    (*manifest)["gpu"] = std::move(*kernels);
  }
  if (llvm::Error err = recordCacheUpdates(module, *manifest))
    return err;
  dropManifestArgAttrs(module);
  progress("generating the host library");
  if (llvm::Error err =
          emitHostLibrary(module, inBundle("host.so"), abiOf(*manifest),
                          *hostCpu, /*openMP=*/!cuda))
    return err;
  recordBuild(module, *manifest, *hostCpu, pipeline);
  llvm::Expected<json::Object> files = describeFiles(staging.path);
  if (!files)
    return files.takeError();
  (*manifest)["files"] = std::move(*files);
  if (llvm::Error err =
          writeManifest(inBundle("manifest.json"), std::move(*manifest)))
    return err;
  if (llvm::Error err = replaceDirectory(staging.path, outputDir))
    return err;
  staging.keep = true;
  return llvm::Error::success();
}
