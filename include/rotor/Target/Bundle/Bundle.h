//===- Bundle.h - rotor-aot's kernel bundles --------------------*- C++ -*-===//
//
// A bundle is a directory:
//   manifest.json       format version, each other file's size and SHA-256,
//                       entry points with their named
//                       arguments, shapes and dtypes, the KV cache geometry,
//                       and (for a standard attention layer) its description
//                       for the runtime's fp64 reference;
//   host.so             the entry points compiled for the host CPU, each
//                       callable as `void rotor_<name>(void **args)`, and
//                       `rotor_bundle_abi`, their signatures as JSON;
//   weights.safetensors exactly the weights the entry points read;
//   kernels/            for --target=cuda: each kernel's PTX, and its cubin
//                       when the CUDA toolkit's ptxas is present.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_TARGET_BUNDLE_BUNDLE_H
#define ROTOR_TARGET_BUNDLE_BUNDLE_H

#include "rotor/Pipelines/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace rotor {

/// The bundle format this compiler writes and the runtime accepts.
constexpr int kBundleFormatVersion = 3;

struct BundleOptions {
  std::string outputDir;
  /// The safetensors archive that holds the parameters' values.
  std::optional<std::string> paramsPath;
  /// How the module is compiled (see compileModule). Its target is "host";
  /// "cuda": the entry points stay host code that launches NVVM kernels,
  /// and the bundle also carries each kernel's PTX (and cubin when ptxas is
  /// found); or "gpu-emulation": host code whose GPU kernels run as OpenMP
  /// thread teams (a host bundle, for checking the GPU's kernels).
  PipelineOptions pipeline;
  /// Run attn-fold-kv-rotation first (rotate Q instead of inverse-rotating
  /// every K/V block read from a rotated cache), writing its report to
  /// `foldKVRotationReport` when that is not empty ("-": stderr).
  bool foldKVRotation = true;
  std::string foldKVRotationReport;
  /// Run attn-narrow-rounded-weights last: a weight that every use rounds
  /// to one narrower compute type is stored in that type (the same bits).
  bool narrowRoundedWeights = true;
  /// Run attn-split-rope-bias first: K's bias leaves the cache and SDPA
  /// adds q·RoPE(b_k, p) to each score.
  bool splitRopeBias = false;
  /// attn-select-precision first, when `precision` is not empty: "auto"
  /// (the cheapest plan whose predicted error meets `precisionTarget`) or a
  /// named plan; its report goes to `precisionReport` ("-": stderr).
  std::string precision;
  double precisionTarget = 1e-2;
  std::string precisionReport;
  double precisionInputRms = 0;
  std::string precisionCalibration;
  /// The CPU the host code is for: `native` or an LLVM CPU name.
  std::string hostCpu = "native";
  /// Called with a one-line description of each compilation stage.
  std::function<void(llvm::StringRef)> progress;
};

/// The manifest's description of `module`'s entry points (prefill and
/// decode, with the fixed argument convention the runtime expects) and of
/// its layer. Fails with a message naming the function or argument that
/// breaks the convention.
llvm::Expected<llvm::json::Object> describeEntryPoints(mlir::ModuleOp module);

/// Makes layer `layer`'s entry points (`@layerN_prefill`, `@layerN_decode`,
/// as rotor-import names them) the module's `@prefill` and `@decode`, and
/// erases the other layers' entry points. Without `layer` the module's only
/// layer is taken. A module that already has `@prefill` is left as it is
/// (and `layer` must then be absent or equal its `attn.layer`).
llvm::Error selectLayer(mlir::ModuleOp module, std::optional<int64_t> layer);

/// A weight the bundle stores transformed: `source` (an archive tensor) with
/// each step applied in turn: a permutation along `dim` (attn.permute's
/// semantics) or a Hadamard rotation of `dim`'s groups (attn.hadamard's,
/// computed in f64).
struct DerivedWeight {
  struct Step {
    enum class Kind { Permute, Hadamard } kind = Kind::Permute;
    int64_t dim = 0;
    std::vector<int64_t> permutation;
    int64_t group = 0;
    std::vector<int32_t> s1, s2;
    bool inverse = false;
    bool operator==(const Step &) const = default;
  };
  std::string source;
  std::vector<Step> steps;
  /// Whether a step computes new values (then the bytes come out as F64).
  bool computes() const;
};

/// Replaces every attn.permute and attn.hadamard of an attn.param by a param
/// of a derived name (`<source>.permuted`, `<source>.rotated`), recorded in
/// `derived`, so that they happen once, when the weights are written, not
/// on every step.
void foldDerivedWeights(mlir::ModuleOp module,
                        llvm::StringMap<DerivedWeight> &derived);

/// `bytes` (a row-major tensor of `shape` and safetensors `dtype`) with
/// `weight`'s steps applied: the same dtype when every step permutes, F64
/// when one rotates (rounded once, to the kernels' type, by the caller).
std::vector<uint8_t> applyDerivedWeight(llvm::StringRef bytes,
                                        llvm::ArrayRef<int64_t> shape,
                                        llvm::StringRef dtype,
                                        const DerivedWeight &weight);

/// Compiles `module` (attn IR) and writes the bundle. The module is lowered
/// in place. The bundle is built in a temporary sibling directory and
/// renamed over `outputDir` only when complete: a failure leaves no partial
/// bundle and an existing bundle untouched. An existing `outputDir` must be
/// an empty directory or a bundle.
llvm::Error writeBundle(mlir::ModuleOp module, const BundleOptions &options);

/// The CPU host code is compiled for: a name LLVM knows (it tunes the
/// schedule) and the instruction-set extensions the code may use, which the
/// manifest records and the runtime checks before loading host.so.
struct HostCpu {
  std::string name;
  std::vector<std::string> features;
};

/// `native` (this machine's CPU and extensions) or an LLVM CPU name
/// (x86-64-v2, x86-64-v3, znver3, ...): its extensions among those the
/// runtime can check. An unknown name is an error that says so.
llvm::Expected<HostCpu> resolveHostCpu(llvm::StringRef requested);

/// Translates the LLVM-dialect `module` to a shared library at `path`, with
/// a packed `rotor_<name>(void **)` wrapper for every `_mlir_ciface_<name>`
/// and the constant string `rotor_bundle_abi` holding `abi` (the entry
/// points' signatures as JSON, which the runtime checks), for `cpu`;
/// linked against the OpenMP runtime with `openMP`.
llvm::Error emitHostLibrary(mlir::ModuleOp module, llvm::StringRef path,
                            llvm::StringRef abi, const HostCpu &cpu,
                            bool openMP = false);

/// Checks the options that do not depend on the module (target, GPU chip
/// and format, toolkit, output directory) before anything is written.
llvm::Error validateBundleOptions(const BundleOptions &options);

} // namespace rotor

#endif // ROTOR_TARGET_BUNDLE_BUNDLE_H
