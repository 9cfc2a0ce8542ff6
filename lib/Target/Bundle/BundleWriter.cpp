//===- BundleWriter.cpp - rotor-aot's bundle directory --------------------===//

#include "rotor/Target/Bundle/Bundle.h"
#include "rotor/Import/Checkpoint.h"
#include "rotor/Support/Safetensors.h"

#include "rotor/Dialect/Attn/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/Regex.h"

#include <cstring>

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
                         const llvm::StringMap<PermutedWeight> &permuted,
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
      std::vector<uint8_t> permutedBytes;
      if (derived != permuted.end()) {
        permutedBytes = applyWeightPermutation(
            bytes, shape, safetensors::dtypeSize(view->dtype), derived->second);
        bytes = llvm::StringRef(
            reinterpret_cast<const char *>(permutedBytes.data()),
            permutedBytes.size());
      }
      std::string dtype = safetensorsDtype(*a.getString("dtype"));
      safetensors::OwnedTensor tensor{name.str(), dtype, shape, {}};
      if (view->dtype == dtype) {
        tensor.bytes.assign(bytes.begin(), bytes.end());
      } else if (floatSemantics(view->dtype) && floatSemantics(dtype)) {
        tensor.bytes = convertFloats(bytes, view->dtype, dtype);
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
                                          const GpuPipelineOptions &gpu) {
  // Kernels of an earlier compile into the same bundle must not linger.
  if (std::error_code ec = llvm::sys::fs::remove_directories(dir))
    return fail(dir + ": cannot clear: " + ec.message());
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return fail(dir + ": cannot create: " + ec.message());
  llvm::ErrorOr<std::string> ptxas = llvm::sys::findProgramByName(
      "ptxas", {gpu.toolkit.empty() ? std::string(ROTOR_CUDA_TOOLKIT_BIN)
                                    : gpu.toolkit + "/bin"});
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
          {"block", json::Array{gpu.blockSize, 1, 1}},
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

} // namespace

llvm::Error rotor::writeBundle(ModuleOp module, const BundleOptions &options) {
  auto progress = [&](StringRef stage) {
    if (options.progress)
      options.progress(stage);
  };
  MLIRContext *ctx = module.getContext();

  progress("outlining parameters");
  {
    PassManager pm(ctx);
    attn::AttnCheckRopeLayoutOptions check;
    check.allowMismatch = options.host.allowRopeLayoutMismatch;
    pm.addPass(attn::createAttnCheckRopeLayout(check));
    if (failed(pm.run(module)))
      return fail("checking RoPE layouts failed");
  }
  llvm::StringMap<PermutedWeight> permuted;
  foldWeightPermutations(module, permuted);
  {
    PassManager pm(ctx);
    pm.addPass(attn::createAttnOutlineParams());
    if (failed(pm.run(module)))
      return fail("outlining parameters failed");
  }
  llvm::Expected<json::Object> manifest = describeEntryPoints(module);
  if (!manifest)
    return manifest.takeError();

  if (std::error_code ec = llvm::sys::fs::create_directories(options.outputDir))
    return fail(options.outputDir + ": cannot create: " + ec.message());
  auto inBundle = [&](StringRef file) {
    llvm::SmallString<256> p(options.outputDir);
    llvm::sys::path::append(p, file);
    return std::string(p);
  };

  progress("writing weights");
  if (llvm::Error err = writeWeights(*manifest, options.paramsPath, permuted,
                                     inBundle("weights.safetensors")))
    return err;

  bool cuda = options.target == "cuda";
  if (!cuda && options.target != "host")
    return fail("unknown target '" + options.target + "' (host or cuda)");
  if (cuda) {
    // Kernels need the toolkit's libdevice for their math functions.
    llvm::SmallString<256> libdevice(options.gpu.toolkit);
    llvm::sys::path::append(libdevice, "nvvm", "libdevice");
    if (options.gpu.toolkit.empty() || !llvm::sys::fs::is_directory(libdevice))
      return fail("--target=cuda needs the CUDA toolkit's libdevice, and '" +
                  options.gpu.toolkit +
                  "' has no nvvm/libdevice: pass --cuda-toolkit DIR");
  }
  progress(cuda ? "lowering to NVVM kernels (" + options.gpu.chip + ")"
                : std::string("lowering to host code"));
  {
    PassManager pm(ctx);
    if (cuda)
      buildGpuPipeline(pm, options.gpu);
    else
      buildHostPipeline(pm, options.host);
    if (failed(pm.run(module)))
      return fail(cuda ? "lowering to NVVM kernels failed"
                       : "lowering to host code failed");
  }
  if (cuda) {
    progress("writing kernels");
    llvm::Expected<json::Object> kernels =
        writeKernels(module, inBundle("kernels"), options.gpu);
    if (!kernels)
      return kernels.takeError();
    // Absent (old bundles) or true: the runtime waits after every launch.
    auto reads =
        module->getAttrOfType<BoolAttr>("rotor.host_reads_device_memory");
    (*kernels)["host_reads_device_memory"] = !reads || reads.getValue();
    (*manifest)["gpu"] = std::move(*kernels);
  }
  // Caches updated in place have left the entry points' results (see
  // rotor-drop-argument-results); the manifest lists what remains.
  for (json::Value &entry : *manifest->getArray("entry_points")) {
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
      return fail("@" + *e.getString("name") + " returns " + llvm::Twine(count) +
                  " buffers after lowering; expected 1 or " +
                  llvm::Twine(results.size()));
    while (results.size() > count)
      results.erase(results.end() - 1);
    e["kv_cache_update"] = count == 1 ? "in_place" : "returned";
  }
  // The manifest has the parameter names now; LLVM would warn about an
  // argument attribute it does not know.
  module.walk([](LLVM::LLVMFuncOp func) {
    for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
      func.removeArgAttr(i, StringAttr::get(func.getContext(), "attn.param"));
  });
  progress("generating the host library");
  if (llvm::Error err = emitHostLibrary(module, inBundle("host.so")))
    return err;

  if (auto tags = module->getAttrOfType<ArrayAttr>("attn.captures")) {
    json::Array list;
    for (Attribute tag : tags)
      list.push_back(cast<StringAttr>(tag).getValue());
    (*manifest)["captures"] = std::move(list);
  }
  (*manifest)["format_version"] = kBundleFormatVersion;
  (*manifest)["target"] = options.target;
  (*manifest)["host_library"] = "host.so";
  (*manifest)["weights"] = "weights.safetensors";
  std::error_code ec;
  llvm::raw_fd_ostream out(inBundle("manifest.json"), ec);
  if (ec)
    return fail(inBundle("manifest.json") + ": " + ec.message());
  out << llvm::formatv("{0:2}", json::Value(std::move(*manifest))) << "\n";
  return llvm::Error::success();
}
