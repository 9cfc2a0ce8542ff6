//===- Bundle.h - Open a kernel bundle and run it ---------------*- C++ -*-===//

#ifndef ROTOR_RT_BUNDLE_H
#define ROTOR_RT_BUNDLE_H

#include "rotor-rt/Tensor.h"

#include <memory>
#include <random>
#include <nlohmann/json.hpp>

namespace rotor::rt {

/// The format version of bundles this runtime runs. Version 2 records each
/// file's size and SHA-256 in the manifest, and host.so's entry points'
/// signatures in its `rotor_bundle_abi` string; version 3 the CPU
/// extensions the host code uses (`host_cpu`) and a thread-count setter.
constexpr int kBundleFormatVersion = 3;

/// One argument or result of an entry point, from the manifest.
struct Slot {
  std::string name;
  std::string kind; ///< input, kv_cache, cache_len, param, output
  DType dtype = DType::F32;
  std::vector<int64_t> shape; ///< -1 for a dynamic dim
};

struct EntryPoint {
  std::string name;
  void (*function)(void **) = nullptr;
  std::vector<Slot> arguments, results;
};

/// Where a bundle's code runs: its entry points are host code that either
/// computes everything itself or launches CUDA kernels.
enum class Target { Host, Cuda };

/// A validated bundle: manifest, loaded weights and host library. Every
/// file is checked against the size and SHA-256 the manifest records before
/// it is read, and host.so's own record of its entry points against the
/// manifest's before any is called.
class Bundle {
public:
  ~Bundle();
  static Result<std::unique_ptr<Bundle>> open(const std::string &dir);

  /// The path of every file of the bundle: the manifest and those it lists.
  const std::vector<std::string> &files() const { return filePaths; }
  Target target() const { return bundleTarget; }
  /// For CUDA bundles: the weight in managed memory, uploaded once.
  void *deviceWeight(const std::string &name) const {
    return deviceWeights.at(name);
  }

  const nlohmann::json &manifest() const { return manifestJson; }
  /// How many threads the host code's parallel loops use from now on;
  /// false when the library has no setter.
  bool setThreads(int threads) const;
  const EntryPoint &prefill() const { return entries[0]; }
  const EntryPoint &decode() const { return entries[1]; }
  const Tensor &weight(const std::string &name) const {
    return weights.at(name);
  }
  bool hasWeight(const std::string &name) const {
    return weights.count(name) != 0;
  }
  int64_t hiddenSize() const { return prefill().arguments[0].shape[1]; }
  DType hiddenDtype() const { return prefill().arguments[0].dtype; }
  DType positionsDtype() const { return prefill().arguments[1].dtype; }
  const Slot &kCacheSlot() const { return prefill().arguments[2]; }
  const Slot &vCacheSlot() const { return prefill().arguments[3]; }

private:
  Bundle() = default;
  std::string dir;
  std::vector<std::string> filePaths;
  nlohmann::json manifestJson;
  void *library = nullptr;
  EntryPoint entries[2];
  std::map<std::string, Tensor> weights;
  Target bundleTarget = Target::Host;
  std::map<std::string, void *> deviceWeights;
};

/// A KV cache and the steps run so far on one bundle.
class Session {
public:
  explicit Session(const Bundle &bundle);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  /// Runs prefill on hidden_states [T, hidden] at positions 0..T-1 into the
  /// empty cache; returns the output [T, hidden].
  Result<Tensor> prefill(const Tensor &hidden);
  /// Runs one decode step on hidden_states [1, hidden] at position
  /// length(); returns the output [1, hidden].
  Result<Tensor> decode(const Tensor &hidden);
  /// As prefill(hidden) and decode(hidden), into `output`, whose bytes are
  /// reused where their capacity suffices: a caller that keeps one output
  /// between calls pays no fresh memory for it (from libc, a large output
  /// is mapped afresh and faults in a page per 4 KiB on every call: ~1,800
  /// for the example layer's prefill at T = 2048). On error, `output` is
  /// empty. `output` must be another tensor than `hidden`.
  Error prefill(const Tensor &hidden, Tensor &output);
  Error decode(const Tensor &hidden, Tensor &output);
  int64_t length() const { return cached; }
  /// Drops the cached tokens from position `length` on (0 <= length <=
  /// length()), as transformers' DynamicCache.crop: their rows are cleared,
  /// so the cache is as a session that had decoded only the first `length`
  /// tokens left it, and the next step decodes at position `length` (a
  /// rejected speculative draft, a rewound turn, a benchmark's repeat).
  Error truncate(int64_t length);
  /// Benchmarking only: fills the first `length` cache rows with random
  /// keys and values of unit scale, as if that many tokens were cached.
  Result<int64_t> fillSynthetic(int64_t length, uint64_t seed);

private:
  Error run(const EntryPoint &entry, const Tensor &hidden, Tensor &output);
  /// Packed cache rows (i8): each block a scale of 1 and random codes.
  Error fillPackedBlocks(Tensor &rows, std::mt19937_64 &rng) const;
  /// The bytes of a cache the entry points read: host memory, or managed
  /// memory for CUDA bundles.
  uint8_t *cacheData(int which);
  const Bundle &bundle;
  Tensor kCache, vCache;
  void *deviceCaches[2] = {nullptr, nullptr};
  /// Why the caches could not be set up; every call then fails with it.
  Error allocationError = Error::success();
  int64_t cached = 0;
};

} // namespace rotor::rt

#endif // ROTOR_RT_BUNDLE_H
