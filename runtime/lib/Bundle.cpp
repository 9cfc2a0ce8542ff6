//===- Bundle.cpp - Open a kernel bundle and run it -----------------------===//

#include "rotor-rt/Bundle.h"
#include "rotor-rt/HostHeap.h"

#include "rotor-rt/Cuda.h"
#include "rotor-rt/File.h"
#include "rotor-rt/HostCpu.h"
#include "rotor-rt/Sha256.h"

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>

namespace rotor::rt {

namespace {

Result<Slot> parseSlot(const nlohmann::json &j, const std::string &where) {
  using R = Result<Slot>;
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() ||
      !j.contains("kind") || !j["kind"].is_string())
    return R::failure(where + ": needs a name and a kind");
  Slot s;
  s.name = j["name"];
  s.kind = j["kind"];
  if (s.kind == "cache_len")
    return s;
  if (!j.contains("dtype") || !j["dtype"].is_string() || !j.contains("shape") ||
      !j["shape"].is_array())
    return R::failure(where + " '" + s.name + "': needs a dtype and a shape");
  std::optional<DType> dtype = parseMlirDtype(j["dtype"]);
  if (!dtype)
    return R::failure(where + " '" + s.name + "': unsupported dtype " +
                      j["dtype"].dump());
  s.dtype = *dtype;
  // Static extents multiply to at most 2^40 bytes: nothing larger is a
  // tensor of one attention layer, and the products cannot overflow.
  uint64_t bytes = dtypeSize(s.dtype);
  for (auto &d : j["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < -1 ||
        (d.get<int64_t>() >= 0 &&
         (__builtin_mul_overflow(bytes, d.get<uint64_t>(), &bytes) ||
          bytes > (uint64_t(1) << 40))))
      return R::failure(where + " '" + s.name + "': bad shape " +
                        j["shape"].dump());
    s.shape.push_back(d);
  }
  return s;
}

// Under AddressSanitizer host libraries stay mapped after dlclose, so that
// LeakSanitizer, which reports at exit, can name the generated functions
// that leaked.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ROTOR_KEEP_LIBRARIES_LOADED
#endif
#endif
#ifdef ROTOR_KEEP_LIBRARIES_LOADED
constexpr int kKeepLoaded = RTLD_NODELETE;
#else
constexpr int kKeepLoaded = 0;
#endif

/// Whether `rel` names a file inside the bundle's directory: relative, with
/// no "..", "." or empty component (and no NUL, which would end the path
/// early when it is opened).
bool isBundlePath(const std::string &rel) {
  if (rel.empty() || rel[0] == '/' || rel.find('\0') != std::string::npos)
    return false;
  for (size_t start = 0;;) {
    size_t slash = rel.find('/', start);
    std::string part = rel.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..")
      return false;
    if (slash == std::string::npos)
      return true;
    start = slash + 1;
  }
}

/// Checks each file the manifest's "files" lists against its recorded size
/// and SHA-256, before anything maps, loads or reads it: a damaged or
/// partial copy of host.so would otherwise crash inside dlopen. Appends the
/// files' paths to `paths`; a failure names the file.
Error verifyFiles(const std::string &dir, const std::string &manifest,
                  const nlohmann::json &files,
                  std::vector<std::string> &paths) {
  for (auto &[rel, entry] : files.items()) {
    std::string path = dir + "/" + rel;
    if (!isBundlePath(rel))
      return Error::failure(manifest + ": files: '" + rel +
                            "' is not a path inside the bundle");
    if (!entry.is_object() || !entry.contains("bytes") ||
        !entry["bytes"].is_number_unsigned() || !entry.contains("sha256") ||
        !entry["sha256"].is_string())
      return Error::failure(manifest + ": files: '" + rel +
                            "' needs its size in bytes and its sha256");
    std::string expected = entry["sha256"];
    if (expected.size() != 64 ||
        expected.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Error::failure(manifest + ": files: the sha256 of '" + rel +
                            "' is not 64 lowercase hex digits");
    Result<MappedFile> file = MappedFile::open(path);
    if (!file)
      return Error::failure(file.error());
    uint64_t bytes = entry["bytes"];
    if (file->size() != bytes)
      return Error::failure(path + ": " + std::to_string(file->size()) +
                            " bytes, but the manifest records " +
                            std::to_string(bytes) +
                            " (a damaged or partial copy?)");
    std::string actual = sha256Hex(file->data(), file->size());
    if (actual != expected)
      return Error::failure(path + ": SHA-256 " + actual +
                            " differs from the manifest's " + expected +
                            " (the file changed after rotor-aot wrote it)");
    paths.push_back(path);
  }
  return Error::success();
}

/// How a slot reads in an ABI mismatch: its dtype and shape.
std::string describeSlot(const Slot &s) {
  return std::string(mlirName(s.dtype)) + " " + formatShape(s.shape);
}

/// The first difference between the arguments (or results) `entry` was
/// compiled with and those the manifest lists.
Error compareSlots(const std::string &entry, const std::string &what,
                   const std::vector<Slot> &code,
                   const std::vector<Slot> &manifest) {
  for (size_t i = 0; i < std::max(code.size(), manifest.size()); ++i) {
    std::string at = entry + " " + what + " " + std::to_string(i);
    if (i >= manifest.size())
      return Error::failure(at + " '" + code[i].name +
                            "' is in the compiled code but not in the "
                            "manifest");
    if (i >= code.size())
      return Error::failure(at + " '" + manifest[i].name +
                            "' is in the manifest but not in the compiled "
                            "code");
    const Slot &c = code[i], &m = manifest[i];
    if (c.name != m.name)
      return Error::failure(at + " is '" + c.name +
                            "' in the compiled code but the " +
                            "manifest says '" + m.name + "'");
    if (c.kind != m.kind)
      return Error::failure(at + " '" + c.name + "' is a " + c.kind +
                            " in the compiled code but the manifest says " +
                            m.kind);
    if (c.kind != "cache_len" && (c.dtype != m.dtype || c.shape != m.shape))
      return Error::failure(at + " '" + c.name + "' is " + describeSlot(c) +
                            " in the compiled code but the manifest says " +
                            describeSlot(m));
  }
  return Error::success();
}

/// Compares the entry points host.so was compiled with (its
/// `rotor_bundle_abi` JSON) with the manifest's, so that a manifest edited
/// to say otherwise fails here instead of corrupting memory in the first
/// call. A failure names the first difference.
Error checkAbi(const char *abiText, const EntryPoint (&entries)[2],
               const nlohmann::json &manifestEntries) {
  // The string is the compiler's; a bound keeps a damaged one from being
  // read past the end of its mapping.
  constexpr size_t kMaxAbiBytes = size_t(1) << 24;
  size_t length = strnlen(abiText, kMaxAbiBytes);
  if (length == kMaxAbiBytes)
    return Error::failure("rotor_bundle_abi is not a string");
  nlohmann::json abi =
      nlohmann::json::parse(abiText, abiText + length, nullptr, false);
  if (abi.is_discarded() || !abi.is_object() || !abi.contains("abi_version") ||
      !abi.contains("entry_points") || !abi["entry_points"].is_array())
    return Error::failure("rotor_bundle_abi is not the JSON of an ABI");
  if (abi["abi_version"] != 1)
    return Error::failure("rotor_bundle_abi has abi_version " +
                          abi["abi_version"].dump() + "; this runtime reads 1");
  for (int i = 0; i < 2; ++i) {
    const std::string &name = entries[i].name;
    const nlohmann::json *found = nullptr;
    for (const nlohmann::json &e : abi["entry_points"])
      if (e.is_object() && e.contains("name") && e["name"] == name)
        found = &e;
    if (!found)
      return Error::failure("the compiled code has no entry point '" + name +
                            "'");
    const nlohmann::json &e = *found;
    if (!e.contains("symbol") || !e["symbol"].is_string() ||
        !e.contains("arguments") || !e["arguments"].is_array() ||
        !e.contains("results") || !e["results"].is_array())
      return Error::failure("rotor_bundle_abi: entry point '" + name +
                            "' needs a symbol, arguments and results");
    std::string symbol = manifestEntries[i]["symbol"];
    if (e["symbol"] != symbol)
      return Error::failure(
          name + " is the symbol " + e["symbol"].get<std::string>() +
          " in the compiled code but the manifest says " + symbol);
    for (const char *what : {"arguments", "results"}) {
      std::vector<Slot> code;
      for (const nlohmann::json &a : e[what]) {
        Result<Slot> slot = parseSlot(a, std::string("rotor_bundle_abi: ") +
                                             what + " of " + name);
        if (!slot)
          return Error::failure(slot.error());
        code.push_back(*slot);
      }
      bool arguments = what == std::string("arguments");
      if (Error diff = compareSlots(
              name, arguments ? "argument" : "result", code,
              arguments ? entries[i].arguments : entries[i].results))
        return diff;
    }
  }
  return Error::success();
}

/// A memref descriptor {allocated, aligned, offset, sizes, strides}.
std::vector<int64_t> describe(void *data, const std::vector<int64_t> &shape) {
  std::vector<int64_t> d(3 + 2 * shape.size());
  d[0] = d[1] = int64_t(reinterpret_cast<intptr_t>(data));
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    d[3 + i] = shape[i];
    d[3 + shape.size() + i] = stride;
    stride *= shape[i];
  }
  return d;
}

/// A failure of the manifest, named by its path.
Error badManifest(const std::string &manifestPath, const std::string &what) {
  return Error::failure(manifestPath + ": " + what);
}

/// Reads manifest.json and checks what must hold before any other file is
/// read: the format version, the target, the host library, the weights and
/// two entry points, and a "files" record that lists every file the bundle
/// uses, so that every file is checked before any is read.
Result<nlohmann::json> readManifest(const std::string &dir,
                                    const std::string &manifestPath) {
  using R = Result<nlohmann::json>;
  Result<MappedFile> manifestFile = MappedFile::open(manifestPath);
  if (!manifestFile)
    return R::failure(manifestFile.error() + " (is " + dir +
                      " a bundle written by rotor-aot?)");
  nlohmann::json m =
      nlohmann::json::parse(manifestFile->view(), nullptr, false);
  if (m.is_discarded() || !m.is_object())
    return R::failure(manifestPath + ": not valid JSON");
  auto bad = [&](const std::string &what) {
    return badManifest(manifestPath, what);
  };
  if (!m.contains("format_version") || !m["format_version"].is_number_integer())
    return bad("no format_version");
  if (m["format_version"] != kBundleFormatVersion)
    return bad("format_version " + m["format_version"].dump() +
               " is not the version this runtime runs (" +
               std::to_string(kBundleFormatVersion) +
               "): recompile the bundle with this rotor-aot");
  if (m.contains("target") && !m["target"].is_string())
    return bad("target must be a string");
  std::string target =
      m.contains("target") ? m["target"].get<std::string>() : "host";
  if (target != "host" && target != "cuda")
    return bad("target must be host or cuda, got " + target);
  for (const char *key : {"host_library", "weights"})
    if (!m.contains(key) || !m[key].is_string())
      return bad(std::string("no ") + key);
  if (!m.contains("entry_points") || !m["entry_points"].is_array() ||
      m["entry_points"].size() != 2)
    return bad("entry_points must list prefill and decode");
  if (m.contains("compute_types")) {
    const nlohmann::json &types = m["compute_types"];
    if (!types.is_array())
      return bad("compute_types must be a list");
    for (const nlohmann::json &type : types)
      if (!type.is_string() || (type != "bf16" && type != "f16"))
        return bad("compute_types lists bf16 and f16 only, got " + type.dump());
  }

  if (!m.contains("files") || !m["files"].is_object())
    return bad("no \"files\" (each file's size and SHA-256): recompile the "
               "bundle with this rotor-aot");
  const nlohmann::json &files = m["files"];
  std::vector<std::string> referenced = {m["host_library"], m["weights"]};
  if (m.contains("gpu") && m["gpu"].is_object() &&
      m["gpu"].contains("kernels") && m["gpu"]["kernels"].is_array())
    for (const nlohmann::json &k : m["gpu"]["kernels"])
      for (const char *key : {"ptx", "cubin"})
        if (k.is_object() && k.contains(key) && k[key].is_string())
          referenced.push_back(k[key]);
  for (const std::string &rel : referenced)
    if (!files.contains(rel))
      return bad("files does not list '" + rel + "', which the bundle uses");
  return m;
}

/// Reads entry point `i` (0 prefill, 1 decode) of the manifest into `entry`
/// and checks that it follows the calling convention the runtime calls.
Error parseEntryPoint(const nlohmann::json &e, int i,
                      const std::string &manifestPath, EntryPoint &entry) {
  auto bad = [&](const std::string &what) {
    return badManifest(manifestPath, what);
  };
  std::string expected = i == 0 ? "prefill" : "decode";
  if (!e.is_object() || !e.contains("name") || !e["name"].is_string() ||
      e["name"] != expected || !e.contains("symbol") ||
      !e["symbol"].is_string() || !e.contains("arguments") ||
      !e["arguments"].is_array() || !e.contains("results") ||
      !e["results"].is_array())
    return bad("entry point " + std::to_string(i) + " must be " + expected +
               " with a symbol, arguments and results");
  entry.name = expected;
  for (auto &a : e["arguments"]) {
    Result<Slot> s = parseSlot(a, "argument of " + expected);
    if (!s)
      return bad(s.error());
    entry.arguments.push_back(*s);
  }
  for (auto &r : e["results"]) {
    Result<Slot> s = parseSlot(r, "result of " + expected);
    if (!s)
      return bad(s.error());
    entry.results.push_back(*s);
  }
  size_t fixed = i == 0 ? 4 : 5;
  // Caches updated in place are not returned ("kv_cache_update":
  // "in_place"): one result, the output; otherwise output and caches.
  bool paramsOnly = true;
  for (size_t a = fixed; a < entry.arguments.size(); ++a)
    paramsOnly &= entry.arguments[a].kind == "param" &&
                  entry.arguments[a].name != "hidden_states" &&
                  entry.arguments[a].name != "positions" &&
                  entry.arguments[a].name != "k_cache" &&
                  entry.arguments[a].name != "v_cache";
  auto isFloat = [](DType t) {
    return t == DType::F32 || t == DType::BF16 || t == DType::F16;
  };
  if (entry.arguments.size() >= 2 &&
      (entry.arguments[0].kind != "input" ||
       !isFloat(entry.arguments[0].dtype) ||
       entry.arguments[0].shape.size() != 2 ||
       entry.arguments[0].shape[1] < 1 || entry.arguments[1].kind != "input" ||
       (entry.arguments[1].dtype != DType::I32 &&
        entry.arguments[1].dtype != DType::I64) ||
       entry.arguments[1].shape.size() != 1))
    return bad(expected + ": hidden_states must be a float input [T, E] "
                          "and positions an i32/i64 input [T]");
  if (!paramsOnly || entry.arguments.size() < 4 ||
      entry.arguments[2].name != "k_cache" ||
      entry.arguments[3].name != "v_cache" || entry.arguments.size() < fixed ||
      (entry.results.size() != 1 && entry.results.size() != 3) ||
      entry.arguments[0].name != "hidden_states" ||
      entry.arguments[0].shape.size() != 2 ||
      entry.arguments[1].name != "positions" ||
      entry.arguments[2].kind != "kv_cache" ||
      entry.arguments[3].kind != "kv_cache" ||
      (i == 1 && entry.arguments[4].kind != "cache_len"))
    return bad(expected +
               " does not follow the calling convention "
               "(hidden_states, positions, k_cache, v_cache" +
               std::string(i == 1 ? ", cache_len" : "") + ", params...)");
  return Error::success();
}

/// Checks that the manifest's `kv_cache` format fits the cache arguments: a
/// packed (i8) cache is rows of whole blocks of the declared bytes (scale
/// and bit-packed codes) that hold head_dim values; a float cache has no
/// block format.
Error checkKVCacheFormat(const nlohmann::json &m, const EntryPoint &prefill,
                         const std::string &manifestPath) {
  auto bad = [&](const std::string &what) {
    return badManifest(manifestPath, "kv_cache: " + what);
  };
  if (!m.contains("kv_cache") || !m["kv_cache"].is_object())
    return Error::success(); // older bundles: the entry points say it all
  const nlohmann::json &kv = m["kv_cache"];
  const Slot &cache = prefill.arguments[2];
  bool packed = cache.dtype == DType::I8;
  if (!packed) {
    if (kv.contains("block"))
      return bad("a " + std::string(mlirName(cache.dtype)) +
                 " cache has no block format, but the manifest gives one");
    return Error::success();
  }
  auto isInt = [](const nlohmann::json &j, const char *key) {
    return j.contains(key) && j[key].is_number_integer() && j[key] > 0;
  };
  if (!kv.contains("format") || !kv["format"].is_string() ||
      !kv.contains("block") || !kv["block"].is_object() ||
      !isInt(kv["block"], "bits") || !isInt(kv["block"], "block_size") ||
      !isInt(kv["block"], "bytes") || !kv["block"].contains("scale_type") ||
      !kv["block"]["scale_type"].is_string() || !isInt(kv, "head_dim"))
    return bad("an i8 (packed) cache needs its format, head_dim and block "
               "(bits, block_size, bytes, scale_type)");
  const nlohmann::json &block = kv["block"];
  int64_t bits = block["bits"], size = block["block_size"],
          bytes = block["bytes"];
  std::string scaleType = block["scale_type"];
  int64_t scaleBytes = scaleType == "f32" ? 4 : 2;
  if (bits > 8 || (size * bits) % 8 != 0 ||
      bytes != scaleBytes + size * bits / 8 ||
      (scaleType != "f32" && scaleType != "f16" && scaleType != "bf16"))
    return bad("block " + block.dump() + " is not " +
               std::to_string(scaleBytes) + " scale bytes plus " +
               std::to_string(size) + " codes of " + std::to_string(bits) +
               " bits");
  for (int c = 2; c < 4; ++c) {
    const Slot &s = prefill.arguments[c];
    if (s.shape[2] % bytes != 0 ||
        s.shape[2] / bytes * size != kv["head_dim"].get<int64_t>())
      return bad(s.name + " rows of " + std::to_string(s.shape[2]) +
                 " bytes are not the " + kv["format"].get<std::string>() +
                 " blocks (" + std::to_string(bytes) + " bytes per " +
                 std::to_string(size) + " values) of head_dim " +
                 kv["head_dim"].dump());
  }
  return Error::success();
}

/// Checks that prefill and decode share one KV cache of a static shape and
/// that each returns its output (and, unless the caches are updated in
/// place, the caches) typed like its arguments.
Error checkCacheAndResults(const EntryPoint (&entries)[2],
                           const std::string &manifestPath) {
  auto bad = [&](const std::string &what) {
    return badManifest(manifestPath, what);
  };
  for (int c = 2; c < 4; ++c) {
    const Slot &p = entries[0].arguments[c], &d = entries[1].arguments[c];
    if (p.dtype != d.dtype || p.shape != d.shape)
      return bad("prefill and decode disagree on " + p.name + ": " +
                 safetensorsName(p.dtype) + " " + formatShape(p.shape) +
                 " vs " + safetensorsName(d.dtype) + " " +
                 formatShape(d.shape));
    if (p.shape.size() != 3 || p.shape[0] < 1 || p.shape[1] < 1 ||
        p.shape[2] < 1)
      return bad(p.name +
                 " must have a static shape [capacity, heads, dim], got " +
                 formatShape(p.shape));
  }
  for (int e = 0; e < 2; ++e) {
    const std::vector<Slot> &res = entries[e].results;
    const Slot &hidden = entries[e].arguments[0];
    if (res[0].name != "output" || res[0].dtype != hidden.dtype ||
        res[0].shape.size() != 2)
      return bad(entries[e].name + "'s first result must be the output, "
                                   "typed like hidden_states");
    for (size_t r = 1; r < res.size(); ++r)
      if (res[r].name != entries[e].arguments[r + 1].name ||
          res[r].dtype != entries[e].arguments[r + 1].dtype ||
          res[r].shape != entries[e].arguments[r + 1].shape)
        return bad(entries[e].name + "'s result " + std::to_string(r) +
                   " must be " + entries[e].arguments[r + 1].name);
  }
  return Error::success();
}

/// Reads the weights file: every param of every entry point, with its
/// declared dtype and shape.
Result<std::map<std::string, Tensor>>
loadWeights(const std::string &dir, const nlohmann::json &m,
            const EntryPoint (&entries)[2]) {
  using R = Result<std::map<std::string, Tensor>>;
  std::string file = dir + "/" + m["weights"].get<std::string>();
  R weights = readSafetensors(file);
  if (!weights)
    return weights;
  for (const EntryPoint &entry : entries)
    for (const Slot &s : entry.arguments) {
      if (s.kind != "param")
        continue;
      auto it = weights->find(s.name);
      if (it == weights->end())
        return R::failure(file + ": missing weight '" + s.name + "' read by " +
                          entry.name);
      if (it->second.shape != s.shape || it->second.dtype != s.dtype)
        return R::failure(file + ": weight '" + s.name + "' is " +
                          safetensorsName(it->second.dtype) + " " +
                          formatShape(it->second.shape) + " but " + entry.name +
                          " reads " + safetensorsName(s.dtype) + " " +
                          formatShape(s.shape));
    }
  return weights;
}

/// Chooses where a CUDA bundle's kernel memory lives from whether its host
/// code reads or writes it (rotor-mark-host-device-memory-access); bundles
/// that do not say, do. If not, launches need no waits, and kernel memory
/// can be device memory that only the driver's copies touch.
Error chooseCudaMemory(const std::string &dir, const std::string &manifestPath,
                       const nlohmann::json &m) {
  bool hostReads = true;
  if (m.contains("gpu") && m["gpu"].is_object() &&
      m["gpu"].contains("host_reads_device_memory")) {
    const nlohmann::json &reads = m["gpu"]["host_reads_device_memory"];
    if (!reads.is_boolean())
      return badManifest(manifestPath,
                         "gpu.host_reads_device_memory must be true or false");
    hostReads = reads.get<bool>();
  }
  if (Error why = cuda::setDeviceMemory(!hostReads))
    return Error::failure(dir + ": " + why.message());
  cuda::setWaitAfterLaunches(hostReads);
  return Error::success();
}

/// Uploads every weight once, when the bundle opens, into `deviceWeights`
/// (which the bundle frees, also when a later upload fails).
Error uploadWeights(const std::string &dir,
                    const std::map<std::string, Tensor> &weights,
                    std::map<std::string, void *> &deviceWeights) {
  for (auto &[name, t] : weights) {
    void *ptr = cuda::allocBlock(t.bytes.size());
    if (!ptr)
      return Error::failure(dir + ": cannot allocate GPU memory for weight '" +
                            name +
                            "': " + cuda::synchronizeAndTakeError().message());
    cuda::copy(ptr, t.bytes.data(), t.bytes.size());
    deviceWeights[name] = ptr;
  }
  return Error::success();
}

/// The bytes of the bundle's file `rel`; the failure says it cannot be read.
Result<std::string> readBundleFile(const std::string &dir,
                                   const std::string &rel) {
  Result<MappedFile> file = MappedFile::open(dir + "/" + rel);
  if (!file)
    return Result<std::string>::failure(dir + "/" + rel + ": cannot read");
  return std::string(file->view());
}

/// Makes the kernel modules load from their cubins where the bundle has
/// them. Before the host library opens: its constructors load the modules.
Error registerCubins(const std::string &dir, const std::string &manifestPath,
                     const nlohmann::json &m) {
  if (!m.contains("gpu") || !m["gpu"].is_object() ||
      !m["gpu"].contains("kernels"))
    return Error::success();
  auto bad = [&](const std::string &what) {
    return badManifest(manifestPath, what);
  };
  if (!m["gpu"]["kernels"].is_array())
    return bad("gpu.kernels must be a list");
  for (const nlohmann::json &k : m["gpu"]["kernels"]) {
    if (!k.is_object() || !k.contains("ptx") || !k["ptx"].is_string())
      return bad("each of gpu.kernels needs its ptx file");
    if (!k.contains("cubin"))
      continue;
    if (!k["cubin"].is_string())
      return bad("gpu.kernels: cubin must be a file name");
    std::string ptxFile = k["ptx"], cubinFile = k["cubin"];
    Result<std::string> ptx = readBundleFile(dir, ptxFile);
    if (!ptx)
      return Error::failure(ptx.error());
    Result<std::string> cubin = readBundleFile(dir, cubinFile);
    if (!cubin)
      return Error::failure(cubin.error());
    cuda::registerCubin(*ptx, std::move(*cubin), cubinFile);
  }
  return Error::success();
}

/// Loads host.so into `library`, checks the entry points it was compiled
/// with against the manifest's, and resolves them into `entries`.
Error loadLibrary(const std::string &dir, const nlohmann::json &m,
                  void *&library, EntryPoint (&entries)[2]) {
  std::string libPath = dir + "/" + m["host_library"].get<std::string>();
  library = dlopen(libPath.c_str(), RTLD_NOW | RTLD_LOCAL | kKeepLoaded);
  if (!library)
    return Error::failure(libPath + ": cannot load: " + dlerror());
  const auto *abi =
      static_cast<const char *>(dlsym(library, "rotor_bundle_abi"));
  if (!abi)
    return Error::failure(libPath + ": no rotor_bundle_abi (the signatures of "
                                    "its entry points): recompile the bundle "
                                    "with this rotor-aot");
  if (Error diff = checkAbi(abi, entries, m["entry_points"]))
    return Error::failure(libPath + ": " + diff.message());
  // A host bundle's buffers come from the runtime's pool (HostHeap.h);
  // bundles from before rotor_set_heap keep libc's heap.
  bool cudaTarget = m.contains("target") && m["target"] == "cuda";
  if (auto *setHeap = reinterpret_cast<void (*)(void *(*)(size_t),
                                               void (*)(void *))>(
          dlsym(library, "rotor_set_heap"));
      setHeap && !cudaTarget)
    setHeap(hostHeapAllocate, hostHeapFree);
  for (int i = 0; i < 2; ++i) {
    std::string symbol = m["entry_points"][i]["symbol"];
    void *fn = dlsym(library, symbol.c_str());
    if (!fn)
      return Error::failure(libPath + ": no symbol " + symbol);
    entries[i].function = reinterpret_cast<void (*)(void **)>(fn);
  }
  return Error::success();
}

} // namespace

bool Bundle::setThreads(int threads) const {
  auto *set = reinterpret_cast<void (*)(int)>(
      dlsym(library, "rotor_set_num_threads"));
  if (!set)
    return false;
  set(threads);
  return true;
}

Bundle::~Bundle() {
  for (auto &[name, ptr] : deviceWeights)
    cuda::freeBlock(ptr);
  if (library)
    dlclose(library);
}

// The phases run in this order so that every file is checked before any is
// read, and the weights are uploaded and the cubins registered before the
// host library's constructors load the kernel modules.
Result<std::unique_ptr<Bundle>> Bundle::open(const std::string &dir) {
  using R = Result<std::unique_ptr<Bundle>>;
  std::string manifestPath = dir + "/manifest.json";
  Result<nlohmann::json> manifest = readManifest(dir, manifestPath);
  if (!manifest)
    return R::failure(manifest.error());
  nlohmann::json &m = *manifest;
  if (Error err = checkHostCpu(m, manifestPath))
    return err;
  std::unique_ptr<Bundle> b(new Bundle());
  b->filePaths.push_back(manifestPath);
  if (Error err = verifyFiles(dir, manifestPath, m["files"], b->filePaths))
    return err;
  b->dir = dir;
  bool cudaTarget = m.contains("target") && m["target"] == "cuda";
  b->bundleTarget = cudaTarget ? Target::Cuda : Target::Host;
  if (cudaTarget)
    if (Error why = cuda::initialize())
      return R::failure(dir + " holds CUDA kernels, but " + why.message());
  for (int i = 0; i < 2; ++i)
    if (Error err = parseEntryPoint(m["entry_points"][i], i, manifestPath,
                                    b->entries[i]))
      return err;
  if (Error err = checkCacheAndResults(b->entries, manifestPath))
    return err;
  if (Error err = checkKVCacheFormat(m, b->entries[0], manifestPath))
    return err;

  Result<std::map<std::string, Tensor>> weights =
      loadWeights(dir, m, b->entries);
  if (!weights)
    return R::failure(weights.error());
  b->weights = std::move(*weights);
  if (cudaTarget) {
    if (Error err = chooseCudaMemory(dir, manifestPath, m))
      return err;
    if (Error err = uploadWeights(dir, b->weights, b->deviceWeights))
      return err;
  }
  if (Error err = cuda::synchronizeAndTakeError())
    return R::failure(dir + ": uploading the weights: " + err.message());
  if (cudaTarget)
    if (Error err = registerCubins(dir, manifestPath, m))
      return err;
  if (Error err = loadLibrary(dir, m, b->library, b->entries))
    return err;
  b->manifestJson = std::move(m);
  return b;
}

Session::Session(const Bundle &bundle) : bundle(bundle) {
  auto zeros = [](const Slot &s) {
    Tensor t{s.dtype, s.shape, {}};
    t.bytes.assign(size_t(t.numel()) * dtypeSize(s.dtype), 0);
    return t;
  };
  kCache = zeros(bundle.kCacheSlot());
  vCache = zeros(bundle.vCacheSlot());
  if (bundle.target() == Target::Cuda)
    for (int i = 0; i < 2; ++i) {
      const Tensor &host = i == 0 ? kCache : vCache;
      deviceCaches[i] = cuda::allocBlock(host.bytes.size());
      if (!deviceCaches[i]) {
        allocationError = Error::failure(
            "cannot allocate the KV cache on the GPU: " +
            cuda::synchronizeAndTakeError().message());
        return;
      }
      cuda::zero(deviceCaches[i], host.bytes.size());
      if (Error err = cuda::takeError()) {
        allocationError = Error::failure(
            "cannot clear the KV cache on the GPU: " + err.message());
        return;
      }
    }
}

Session::~Session() {
  for (void *ptr : deviceCaches)
    cuda::freeBlock(ptr);
}

uint8_t *Session::cacheData(int which) {
  if (deviceCaches[which])
    return static_cast<uint8_t *>(deviceCaches[which]);
  return (which == 0 ? kCache : vCache).bytes.data();
}

Error Session::fillPackedBlocks(Tensor &rows, std::mt19937_64 &rng) const {
  // Random codes under a scale of 1 in every block: random bytes would make
  // scales that are not finite.
  const nlohmann::json &kv = bundle.manifest()["kv_cache"];
  if (!kv.contains("block") || !kv["block"].contains("bytes") ||
      !kv["block"]["bytes"].is_number_integer() ||
      !kv["block"].contains("scale_type") ||
      !kv["block"]["scale_type"].is_string())
    return Error::failure("manifest.json: an i8 KV cache needs kv_cache.block "
                          "with its bytes and scale_type");
  size_t blockBytes = kv["block"]["bytes"].get<size_t>();
  std::string scaleType = kv["block"]["scale_type"];
  uint32_t one = scaleType == "f32"    ? 0x3F800000u
                 : scaleType == "bf16" ? 0x3F80u
                                       : 0x3C00u;
  size_t scaleBytes = scaleType == "f32" ? 4 : 2;
  if (blockBytes <= scaleBytes || rows.bytes.size() % blockBytes != 0)
    return Error::failure("manifest.json: kv_cache.block.bytes " +
                          std::to_string(blockBytes) +
                          " does not fit the cache rows");
  for (size_t at = 0; at < rows.bytes.size(); at += blockBytes) {
    std::memcpy(&rows.bytes[at], &one, scaleBytes);
    for (size_t i = scaleBytes; i < blockBytes; ++i)
      rows.bytes[at + i] = uint8_t(rng());
  }
  return Error::success();
}

Result<int64_t> Session::fillSynthetic(int64_t length, uint64_t seed) {
  if (allocationError)
    return allocationError;
  int64_t capacity = kCache.shape[0];
  if (cached != 0 || length < 0 || length >= capacity)
    return Result<int64_t>::failure(
        "a synthetic cache of " + std::to_string(length) +
        " tokens needs an empty session and a cache of more rows than that (" +
        std::to_string(capacity) + ")");
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  for (Tensor *cache : {&kCache, &vCache}) {
    int64_t rowElems = cache->numel() / capacity;
    std::vector<double> values(size_t(length * rowElems));
    for (double &v : values)
      v = dist(rng);
    Tensor rows = Tensor::fromDoubles(cache->dtype, {length * rowElems}, values);
    if (cache->dtype == DType::I8)
      if (Error err = fillPackedBlocks(rows, rng); err)
        return err;
    uint8_t *dest = cacheData(cache == &kCache ? 0 : 1);
    if (bundle.target() == Target::Cuda)
      cuda::copy(dest, rows.bytes.data(), rows.bytes.size());
    else
      std::copy(rows.bytes.begin(), rows.bytes.end(), dest);
  }
  if (bundle.target() == Target::Cuda)
    if (Error err = cuda::takeError())
      return Result<int64_t>::failure("filling the KV cache on the GPU: " +
                                      err.message());
  cached = length;
  return length;
}

Error Session::truncate(int64_t length) {
  if (allocationError)
    return allocationError;
  if (length < 0 || length > cached)
    return Error::failure("truncate: the session holds " +
                          std::to_string(cached) + " tokens; cannot keep " +
                          std::to_string(length));
  for (int which = 0; which < 2; ++which) {
    const Tensor &cache = which == 0 ? kCache : vCache;
    size_t rowBytes = cache.bytes.size() / size_t(cache.shape[0]);
    uint8_t *from = cacheData(which) + size_t(length) * rowBytes;
    size_t bytes = size_t(cached - length) * rowBytes;
    if (bundle.target() == Target::Cuda)
      cuda::zero(from, bytes);
    else
      std::memset(from, 0, bytes);
  }
  if (bundle.target() == Target::Cuda)
    if (Error err = cuda::takeError())
      return Error::failure("truncate: clearing the KV cache on the GPU: " +
                            err.message());
  cached = length;
  return Error::success();
}

Result<Tensor> Session::prefill(const Tensor &hidden) {
  Tensor output;
  if (Error err = prefill(hidden, output))
    return err;
  return output;
}

Result<Tensor> Session::decode(const Tensor &hidden) {
  Tensor output;
  if (Error err = decode(hidden, output))
    return err;
  return output;
}

namespace {

/// `err`, with `output` emptied when it is a failure (the Session calls'
/// promise, whichever step failed).
Error emptiedOnFailure(Error err, Tensor &output) {
  if (err)
    output = Tensor();
  return err;
}

} // namespace

Error Session::prefill(const Tensor &hidden, Tensor &output) {
  if (allocationError)
    return emptiedOnFailure(allocationError, output);
  if (cached != 0)
    return emptiedOnFailure(
        Error::failure("prefill: the session already holds " +
                       std::to_string(cached) +
                       " tokens; prefill starts an empty cache"),
        output);
  return emptiedOnFailure(run(bundle.prefill(), hidden, output), output);
}

Error Session::decode(const Tensor &hidden, Tensor &output) {
  if (allocationError)
    return emptiedOnFailure(allocationError, output);
  if (hidden.shape.size() != 2 || hidden.shape[0] != 1)
    return emptiedOnFailure(
        Error::failure("decode: takes one token [1, hidden], got " +
                       formatShape(hidden.shape)),
        output);
  return emptiedOnFailure(run(bundle.decode(), hidden, output), output);
}

namespace {

/// Whether hidden_states `hidden` fits `entry`'s argument and, after the
/// `cached` tokens, a KV cache of `capacity` rows.
Error checkRunInput(const EntryPoint &entry, const Tensor &hidden,
                    int64_t cached, int64_t capacity) {
  const Slot &hs = entry.arguments[0];
  if (hidden.shape.size() != 2 || hidden.shape[1] != hs.shape[1])
    return Error::failure(entry.name + ": hidden_states must be [T, " +
                          std::to_string(hs.shape[1]) + "], got " +
                          formatShape(hidden.shape));
  int64_t t = hidden.shape[0];
  if (hs.shape[0] >= 0 && hs.shape[0] != t)
    return Error::failure(entry.name + ": takes " +
                          std::to_string(hs.shape[0]) + " tokens, got " +
                          std::to_string(t));
  if (t < 1 || cached + t > capacity)
    return Error::failure(entry.name + ": " + std::to_string(cached + t) +
                          " tokens do not fit the KV cache of " +
                          std::to_string(capacity));
  return Error::success();
}

/// The K and V caches an entry point reads and writes: their bytes (host
/// memory, or managed memory for CUDA bundles) and shapes.
struct CacheBuffers {
  std::array<uint8_t *, 2> data;
  std::array<const std::vector<int64_t> *, 2> shapes;
};

/// One call of an entry point through its C interface, in three phases:
/// pack the arguments, call, take the results. The inputs' copies (in the
/// host pool, or managed memory for CUDA bundles) go back when the call
/// does, on every way out, errors included.
class EntryCall {
public:
  /// The entry point may write its inputs: `hidden` and `positions` are
  /// the call's own.
  EntryCall(const Bundle &bundle, const EntryPoint &entry,
            const Tensor &hidden, Tensor positions, CacheBuffers caches,
            int64_t cacheLen)
      : bundle(bundle), entry(entry),
        cudaTarget(bundle.target() == Target::Cuda), hidden(hidden),
        positions(std::move(positions)), caches(caches), cacheLen(cacheLen) {}
  EntryCall(const EntryCall &) = delete;
  EntryCall &operator=(const EntryCall &) = delete;
  ~EntryCall() {
    for (void *ptr : staged)
      cudaTarget ? cuda::freeTemporary(ptr) : hostHeapFree(ptr);
  }

  /// Packed arguments: packed[i] points at the value of parameter i of the
  /// C interface; parameter 0 is the result struct.
  Error pack();
  /// Calls the entry point and, for CUDA bundles, waits for the GPU.
  Error invoke();
  /// The output [t, hidden] into `output` (its bytes reused where large
  /// enough), then the caches (written in place or returned as new
  /// buffers, which are copied back and freed).
  Error takeResults(int64_t t, Tensor &output);

private:
  /// Checks and takes result `r`, whose descriptor is `d`.
  Error takeResult(size_t r, const int64_t *d, Tensor &output);
  /// Whether a result's `allocated` buffer is one the entry point allocated
  /// and not yet freed, so ours to free.
  bool ownsBuffer(const uint8_t *allocated) const;

  const Bundle &bundle;
  const EntryPoint &entry;
  bool cudaTarget;
  const Tensor &hidden;
  Tensor positions;
  CacheBuffers caches;
  int64_t cacheLen;
  std::vector<std::vector<int64_t>> descriptors;
  std::vector<void *> pointers;
  std::vector<void *> packed;
  std::vector<int64_t> results;
  std::vector<void *> staged; // the inputs' copies (pool or managed memory)
  std::vector<void *> freed;  // result buffers already released
};

Error EntryCall::pack() {
  descriptors.reserve(entry.arguments.size());
  pointers.reserve(entry.arguments.size() + 1);
  size_t resultWords = 0;
  for (const Slot &r : entry.results)
    resultWords += 3 + 2 * r.shape.size();
  results.resize(resultWords);
  pointers.push_back(results.data());
  packed.push_back(&pointers.back());
  for (const Slot &s : entry.arguments) {
    if (s.kind == "cache_len") {
      packed.push_back(&cacheLen);
      continue;
    }
    void *data;
    const std::vector<int64_t> *shape;
    if (s.name == "hidden_states" || s.name == "positions") {
      const Tensor &input = s.name == "hidden_states" ? hidden : positions;
      // The call's own copy of each input, which the entry point may write;
      // on the host from the pool, whose blocks are already mapped (fresh
      // pages would fault in on every call).
      if (!cudaTarget) {
        data = hostHeapAllocate(input.bytes.size());
        if (!data)
          return Error::failure(entry.name + ": cannot allocate " +
                                std::to_string(input.bytes.size()) +
                                " bytes for " + s.name);
        std::memcpy(data, input.bytes.data(), input.bytes.size());
        staged.push_back(data);
      } else {
        data = cuda::allocTemporary(input.bytes.size());
        if (!data)
          return Error::failure(entry.name + ": cannot allocate GPU memory: " +
                                cuda::synchronizeAndTakeError().message());
        cuda::copy(data, input.bytes.data(), input.bytes.size());
        staged.push_back(data);
      }
      shape = &input.shape;
    } else if (s.name == "k_cache" || s.name == "v_cache") {
      int which = s.name == "k_cache" ? 0 : 1;
      data = caches.data[which];
      shape = caches.shapes[which];
    } else {
      const Tensor &w = bundle.weight(s.name);
      data = cudaTarget ? bundle.deviceWeight(s.name)
                        : const_cast<uint8_t *>(w.bytes.data());
      shape = &w.shape;
    }
    descriptors.push_back(describe(data, *shape));
    pointers.push_back(descriptors.back().data());
    packed.push_back(&pointers.back());
  }
  return Error::success();
}

Error EntryCall::invoke() {
  entry.function(packed.data());
  if (cudaTarget)
    if (Error err = cuda::synchronizeAndTakeError())
      return Error::failure(entry.name + " on the GPU: " + err.message());
  return Error::success();
}

Error EntryCall::takeResults(int64_t t, Tensor &output) {
  output.dtype = entry.results[0].dtype;
  output.shape = {t, entry.arguments[0].shape[1]};
  size_t at = 0;
  for (size_t r = 0; r < entry.results.size(); ++r) {
    if (Error err = takeResult(r, results.data() + at, output))
      return err;
    at += 3 + 2 * entry.results[r].shape.size();
  }
  // The driver's copies of the output and caches (synchronous).
  if (cudaTarget)
    if (Error err = cuda::takeError())
      return Error::failure(entry.name +
                            ": copying results from the GPU: " + err.message());
  return Error::success();
}

Error EntryCall::takeResult(size_t r, const int64_t *d, Tensor &output) {
  const Slot &slot = entry.results[r];
  size_t rank = slot.shape.size();
  auto *allocated = reinterpret_cast<uint8_t *>(intptr_t(d[0]));
  auto *aligned = reinterpret_cast<uint8_t *>(intptr_t(d[1]));
  size_t elem = dtypeSize(slot.dtype);
  int64_t count = 1;
  for (size_t i = 0; i < rank; ++i)
    count *= d[3 + i];
  // The generated code allocates results with identity layouts; anything
  // else would be read wrongly below.
  int64_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    if (d[3 + rank + i] != stride && d[3 + i] != 1)
      return Error::failure(entry.name + ": result " + slot.name +
                            " is not a dense row-major buffer");
    stride *= d[3 + i];
  }
  // The result must have exactly the shape the manifest promises.
  const std::vector<int64_t> &expected =
      r == 0 ? output.shape : *caches.shapes[r - 1];
  if (rank != expected.size())
    return Error::failure(entry.name + ": result " + slot.name +
                          " does not have the rank of " +
                          formatShape(expected));
  for (size_t i = 0; i < rank; ++i)
    if (d[3 + i] != expected[i])
      return Error::failure(entry.name + ": result " + slot.name +
                            " does not have the shape " +
                            formatShape(expected));
  const uint8_t *src = aligned + d[2] * int64_t(elem);
  uint8_t *dest = r == 0 ? nullptr : caches.data[r - 1];
  size_t bytes = size_t(count) * elem;
  if (r == 0 && cudaTarget) {
    output.bytes.resize(bytes);
    cuda::copy(output.bytes.data(), src, bytes);
  } else if (r == 0) {
    output.bytes.assign(src, src + bytes);
  } else if (src != dest) {
    if (cudaTarget)
      cuda::copy(dest, src, bytes);
    else
      std::memcpy(dest, src, bytes);
  }
  if (ownsBuffer(allocated)) {
    freed.push_back(allocated);
    if (cudaTarget)
      cuda::freeTemporary(allocated);
    else
      hostHeapFree(allocated);
  }
  return Error::success();
}

bool EntryCall::ownsBuffer(const uint8_t *allocated) const {
  // Buffers the entry point allocated are ours to free (with the host's
  // allocator, or in managed memory for CUDA bundles), once. Not ours: the
  // caches and inputs we passed, weights, and MLIR's 0xdeadbeef marker of a
  // constant global.
  bool ours =
      allocated != caches.data[0] && allocated != caches.data[1] &&
      allocated != reinterpret_cast<uint8_t *>(0xdeadbeef) &&
      allocated != hidden.bytes.data() && allocated != positions.bytes.data() &&
      std::find(staged.begin(), staged.end(), allocated) == staged.end() &&
      std::find(freed.begin(), freed.end(), allocated) == freed.end();
  for (const Slot &s : entry.arguments)
    if (s.kind == "param")
      ours &= allocated != (cudaTarget ? bundle.deviceWeight(s.name)
                                       : bundle.weight(s.name).bytes.data());
  return ours;
}

} // namespace

Error Session::run(const EntryPoint &entry, const Tensor &hiddenIn,
                   Tensor &output) {
  if (Error err = checkRunInput(entry, hiddenIn, cached, kCache.shape[0]))
    return err;
  int64_t t = hiddenIn.shape[0];
  std::vector<double> posValues(static_cast<size_t>(t));
  std::iota(posValues.begin(), posValues.end(), double(cached));
  // Converted only where the dtype differs: pack() copies it anyway.
  DType dtype = entry.arguments[0].dtype;
  std::optional<Tensor> converted;
  if (hiddenIn.dtype != dtype)
    converted = hiddenIn.convert(dtype);
  EntryCall call(bundle, entry, converted ? *converted : hiddenIn,
                 Tensor::fromDoubles(entry.arguments[1].dtype, {t}, posValues),
                 {{cacheData(0), cacheData(1)}, {&kCache.shape, &vCache.shape}},
                 cached);
  if (Error err = call.pack())
    return err;
  if (Error err = call.invoke())
    return err;
  if (Error err = call.takeResults(t, output))
    return err;
  cached += t;
  return Error::success();
}

} // namespace rotor::rt
