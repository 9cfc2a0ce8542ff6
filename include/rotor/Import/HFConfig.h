//===- HFConfig.h - The attention of a Hugging Face config.json -*- C++ -*-===//
//
// What rotor-import needs from a checkpoint's config.json: the attention
// geometry, the RoPE (theta, rotary dim, scaling resolved the way
// transformers' modeling_rope_utils.py resolves it) and the family's
// projection names and biases. Both config forms are read: `rope_theta` +
// `rope_scaling` (with `rope_type` or the older `type`) and the newer
// `rope_parameters`.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_IMPORT_HFCONFIG_H
#define ROTOR_IMPORT_HFCONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rotor::import {

/// A RoPE scaling with every parameter resolved (HF defaults applied).
struct RopeScalingConfig {
  enum class Kind { None, Linear, Dynamic, Yarn, Llama3 };
  Kind kind = Kind::None;
  double factor = 1.0;
  int64_t originalMaxPositionEmbeddings = 0;
  // yarn
  double betaFast = 32.0, betaSlow = 1.0, attentionFactor = 1.0;
  bool truncate = true;
  // llama3
  double lowFreqFactor = 1.0, highFreqFactor = 4.0;
};

/// The attention sublayer of one model family as its config describes it.
struct AttentionConfig {
  /// `model_type`: qwen2, llama, mistral, qwen3, stablelm, phi or
  /// qwen3_next.
  std::string modelType;
  int64_t hiddenSize = 0;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  /// R: the leading dims of each head that RoPE rotates.
  int64_t rotaryDim = 0;
  int64_t numLayers = 0;
  int64_t maxPositionEmbeddings = 0;
  double ropeTheta = 10000.0;
  RopeScalingConfig scaling;
  /// Which projections carry a bias.
  bool qkvBias = false, outputBias = false;
  /// Qwen3's per-head RMS norms of Q and K before RoPE, and their epsilon.
  bool qkNorm = false;
  /// Qwen3-Next: the norms' gain is 1 + w (zero-centred weights), and
  /// q_proj yields each head's query and then its gate, the attention
  /// output being multiplied by sigmoid(gate) before o_proj.
  bool zeroCentredNorm = false, outputGate = false;
  /// Per layer: whether it is a linear-attention (Gated DeltaNet) layer,
  /// which rotor does not compile.
  std::vector<bool> linearAttention;
  double normEpsilon = 1e-6;
  /// The output projection's name under self_attn (`o_proj`, phi: `dense`).
  std::string outputProjName = "o_proj";
  /// Per layer: the sliding window that layer attends through, if any.
  std::vector<std::optional<int64_t>> slidingWindows;
  /// `torch_dtype` (or `dtype`), informational.
  std::string torchDtype;
  /// What the reader ignored or chose that a user should know (one line
  /// each).
  std::vector<std::string> notes;
};

/// The model types rotor-import knows, for messages.
llvm::StringRef supportedModelTypes();

/// Parses config.json's `text`; errors start with `path` and name the key.
llvm::Expected<AttentionConfig> parseHFConfig(llvm::StringRef text,
                                              llvm::StringRef path);

} // namespace rotor::import

#endif // ROTOR_IMPORT_HFCONFIG_H
