//===- PrecisionModel.h - Value ranges and rounding error of a layer ------===//
//
// What attn-select-precision decides from: the values an attention layer's
// tensors take (from its weights and a declared or calibrated input) and a
// first-order model of how each rounding (storage or compute) reaches the
// layer's output. Each rounding site contributes independently, u^2/3 times
// its sensitivity, so a plan's error variance is a sum of per-site terms
// computed once: every plan is priced without re-running anything.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_DIALECT_ATTN_TRANSFORMS_PRECISIONMODEL_H
#define ROTOR_DIALECT_ATTN_TRANSFORMS_PRECISIONMODEL_H

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace rotor::attn::precision {

/// A float storage or compute type the model prices.
enum class Storage { F32, F16, BF16 };

llvm::StringRef storageName(Storage s);
std::optional<Storage> parseStorage(llvm::StringRef name);
mlir::FloatType storageType(mlir::MLIRContext *ctx, Storage s);
/// Unit roundoff: 2^-24 (f32), 2^-11 (f16), 2^-8 (bf16).
double unitRoundoff(Storage s);
/// Bytes per element.
int64_t storageBytes(Storage s);
/// The largest finite value.
double storageMax(Storage s);

/// The layer's projections, in the order plans index them.
enum Projection { QProj = 0, KProj = 1, VProj = 2, OProj = 3 };
llvm::StringRef projectionName(Projection p);

/// One choice of every storage and compute type the model knows. A
/// projection's type is its weights' storage and its compute type (the
/// input is rounded to it); accumulation is f32 everywhere.
struct Plan {
  std::array<Storage, 4> weights{Storage::F32, Storage::F32, Storage::F32,
                                 Storage::F32};
  Storage biases = Storage::F32;
  /// Q, K and V as the projections write them, before norms and RoPE.
  Storage projectionOutputs = Storage::F32;
  Storage ropeCompute = Storage::F32;
  /// Q as SDPA reads it, and the two caches.
  Storage query = Storage::F32;
  Storage keyCache = Storage::F32;
  Storage valueCache = Storage::F32;
  /// K's bias out of the cache, as SDPA's score term (attn-split-rope-bias).
  bool splitKeyBias = false;
  Storage sdpaCompute = Storage::F32;
  /// SDPA's output as o_proj reads it, and the layer's output.
  Storage attentionOutput = Storage::F32;
  Storage layerOutput = Storage::F32;

  /// The plans the report compares with: f32, bf16 (everything),
  /// rope-f32 (bf16 but RoPE computed in f32), q-f32 (f32 with bf16
  /// caches). Empty for an unknown name.
  static std::optional<Plan> named(llvm::StringRef name);
  /// A named plan with overrides, comma-separated: `rope-f32,kv=f32`,
  /// `q-f32,split`. Keys: weights, q, kv, sdpa (a type each), split.
  static llvm::Expected<Plan> parse(llvm::StringRef spec);
  /// One line: "weights q/k/v/o bf16/bf16/bf16/f32, Q f32, K cache bf16 +
  /// bias split, ...".
  std::string describe() const;
};

/// Where a layer's input values come from.
struct InputModel {
  /// Each input row's RMS (0: unknown). Inputs after the layer's RMS norm
  /// (the importer's `attn.input_norm_gain`) need none.
  double rms = 0;
  /// The checkpoint tensor of the RMS norm's gain g the input has been
  /// through, if any: then x = g ⊙ x̂ with |x̂| = sqrt(hidden) · rms (rms
  /// 1 unless given).
  std::string normGain;
  /// Calibration rows [T, hidden] and their positions, when given.
  std::vector<double> rows;
  std::vector<int64_t> positions;
  /// How many tokens the model evaluates (subsampled over the context).
  int64_t samples = 96;
};

/// The worst-case magnitude a stored tensor may reach, from the weights and
/// the input's norm (Cauchy-Schwarz: b_i ± |x|·|W_i ⊙ g|; RoPE and norms
/// keep pair norms; SDPA's output is a convex combination of V's rows).
struct Ranges {
  double queryBiasMax = 0, keyBiasMax = 0;
  double query = 0, key = 0, keyWithoutBias = 0, value = 0;
};

/// One rounding site's share of a plan's error.
struct SiteShare {
  std::string site;
  double variance;
};

/// A plan's predicted error at the layer's output.
struct Estimate {
  /// Predicted max |out - exact| / max |exact| (a high-probability bound
  /// under the first-order model: lambda standard deviations).
  double maxRelativeError = 0;
  /// Predicted 1 - PCC.
  double pccLoss = 0;
  std::vector<SiteShare> shares;
  /// The site with the largest share.
  std::string dominantSite;
};

/// Cost of a plan, compared lexicographically.
struct Cost {
  int64_t kvBytesPerToken = 0;
  int64_t weightBytes = 0;
  double compute = 0;
  bool operator<(const Cost &o) const;
};

/// A layer's ops as the model reads them (one entry point of the layer).
struct LayerOps {
  SdpaOp sdpa;
  std::array<LinearOp, 4> projections;
  RmsNormOp queryNorm, keyNorm;
  RopeOp queryRope, keyRope;
  /// The layer input (the Q/K/V projections' input), a block argument.
  mlir::BlockArgument input;
  /// Where the chain is not one the model knows: the op, and why.
  mlir::Operation *unknownOp = nullptr;
  std::string unknownReason;
};

/// Matches the layer around `sdpa`: x -> linear -> [rms_norm] -> rope ->
/// [cache] -> sdpa -> linear, with V's linear, in any order.
LayerOps matchLayer(SdpaOp sdpa);

class LayerModel {
public:
  /// Reads the weights the layer names from `weightsPath` and evaluates the
  /// layer on `input`'s tokens over a context of `contextLength`. Errors
  /// name the op or the tensor.
  static llvm::Expected<LayerModel> build(LayerOps ops,
                                          llvm::StringRef weightsPath,
                                          const InputModel &input,
                                          int64_t contextLength);

  Estimate estimate(const Plan &plan) const;
  Cost cost(const Plan &plan) const;
  const Ranges &ranges() const { return valueRanges; }
  /// Whether a type can store a site's values without overflow.
  bool fits(Storage s, double range) const { return range < storageMax(s); }
  bool hasKeyBias() const { return keyBias; }
  int64_t contextLength() const { return context; }

  /// Per-site unit sensitivities: output variance [S, hidden] per unit of
  /// injected rounding variance (r = 1).
  struct Sensitivities;

private:
  Ranges valueRanges;
  bool keyBias = false;
  int64_t context = 0;
  int64_t hidden = 0, qHeads = 0, kvHeads = 0, headDim = 0, tokens = 0;
  std::array<int64_t, 4> projectionRows{}, projectionCols{};
  /// max |out| and sum (out - mean)^2 of the exact output.
  double outputMax = 0, outputSquares = 0;
  double lambda = 0;
  /// Unit sensitivities, each [tokens * hidden].
  std::vector<std::pair<std::string, std::vector<double>>> units;
  llvm::StringMap<double> unitSums;
  const std::vector<double> &unit(llvm::StringRef name) const;
};

} // namespace rotor::attn::precision

#endif // ROTOR_DIALECT_ATTN_TRANSFORMS_PRECISIONMODEL_H
