//===- HFConfig.cpp - The attention of a Hugging Face config.json ---------===//
//
// The defaults and resolution rules follow transformers' configuration
// classes and modeling_rope_utils.py (as of transformers 5): a missing key
// takes the value the family's config class would give it.
//
//===----------------------------------------------------------------------===//

#include "rotor/Import/HFConfig.h"

#include "rotor/Support/JsonNesting.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

#include <cmath>
#include <cstdio>
#include <tuple>

using namespace llvm;
using namespace rotor::import;

namespace {

struct Family {
  StringRef modelType;
  /// q/k/v (and o) bias: fixed, or read from `attention_bias`/`use_qkv_bias`.
  enum class Bias { QKVOnly, FromAttentionBias, FromUseQkvBias, All, None };
  Bias bias;
  bool qkNorm;
  StringRef outputProjName;
  /// The key of the norm epsilon, and its default.
  StringRef epsKey;
  double epsDefault;
  int64_t maxPositionsDefault;
  /// The config class's defaults for keys that are absent (an explicit
  /// null means "derive it", as the classes do): num_key_value_heads (0:
  /// num_attention_heads), head_dim (0: hidden_size / num_attention_heads),
  /// partial_rotary_factor.
  int64_t kvHeadsDefault;
  int64_t headDimDefault;
  double partialRotaryDefault;
  /// How the family declares sliding windows.
  enum class Window { None, Mistral, Qwen };
  Window window;
  /// Qwen3-Next: an output gate from q_proj, zero-centred q/k norms, and
  /// linear-attention layers between the full-attention ones.
  bool qwen3Next = false;
};

constexpr Family kFamilies[] = {
    {"qwen2", Family::Bias::QKVOnly, false, "o_proj", "rms_norm_eps", 1e-6,
     32768, 32, 0, 1.0, Family::Window::Qwen},
    {"llama", Family::Bias::FromAttentionBias, false, "o_proj", "rms_norm_eps",
     1e-6, 2048, 0, 0, 1.0, Family::Window::None},
    {"mistral", Family::Bias::None, false, "o_proj", "rms_norm_eps", 1e-6,
     4096 * 32, 8, 0, 1.0, Family::Window::Mistral},
    {"qwen3", Family::Bias::FromAttentionBias, true, "o_proj", "rms_norm_eps",
     1e-6, 32768, 32, 128, 1.0, Family::Window::Qwen},
    {"stablelm", Family::Bias::FromUseQkvBias, false, "o_proj",
     "layer_norm_eps", 1e-5, 4096, 32, 0, 0.25, Family::Window::None},
    {"phi", Family::Bias::All, false, "dense", "layer_norm_eps", 1e-5, 2048, 0,
     0, 0.5, Family::Window::None},
    {"qwen3_next", Family::Bias::FromAttentionBias, true, "o_proj",
     "rms_norm_eps", 1e-6, 32768, 2, 256, 0.25, Family::Window::None,
     /*qwen3Next=*/true},
};

/// A number as messages print it.
std::string show(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", v);
  return text;
}

class ConfigReader {
public:
  ConfigReader(const json::Object &root, StringRef path)
      : root(root), path(path) {}

  Error fail(const Twine &message) const {
    return createStringError(inconvertibleErrorCode(), path + ": " + message);
  }

  /// An integer key: absent gives `fallback` (or an error when there is
  /// none); present must be an integer >= `min`.
  Expected<int64_t> integer(const json::Object &obj, StringRef key,
                            std::optional<int64_t> fallback, int64_t min,
                            StringRef where = "") const {
    const json::Value *v = obj.get(key);
    if (!v || v->kind() == json::Value::Null) {
      if (fallback)
        return *fallback;
      return fail("missing '" + where + key + "'");
    }
    std::optional<int64_t> i = v->getAsInteger();
    if (!i)
      return fail("'" + where + key + "' must be an integer");
    if (*i < min)
      return fail("'" + where + key + "' is " + Twine(*i) +
                  ", must be at least " + Twine(min));
    return *i;
  }

  Expected<double> number(const json::Object &obj, StringRef key,
                          std::optional<double> fallback,
                          StringRef where = "") const {
    const json::Value *v = obj.get(key);
    if (!v || v->kind() == json::Value::Null) {
      if (fallback)
        return *fallback;
      return fail("missing '" + where + key + "'");
    }
    std::optional<double> d = v->getAsNumber();
    if (!d || !std::isfinite(*d))
      return fail("'" + where + key + "' must be a finite number");
    return *d;
  }

  Expected<bool> boolean(const json::Object &obj, StringRef key,
                         bool fallback, StringRef where = "") const {
    const json::Value *v = obj.get(key);
    if (!v || v->kind() == json::Value::Null)
      return fallback;
    std::optional<bool> b = v->getAsBoolean();
    if (!b)
      return fail("'" + where + key + "' must be true or false");
    return *b;
  }

  const json::Object &root;
  StringRef path;
};

#define ROTOR_TRY(var, expr)                                                   \
  auto var##OrErr = (expr);                                                    \
  if (!var##OrErr)                                                             \
    return var##OrErr.takeError();                                             \
  auto var = *var##OrErr;

/// YaRN's parameters of the RoPE block `rope`, whose factor `s` holds.
Error resolveYarn(const ConfigReader &r, const json::Object &rope,
                  StringRef where, RopeScalingConfig &s) {
  double factor = s.factor;
  // `beta_fast or 32`: HF also replaces an explicit 0 by the default.
  ROTOR_TRY(betaFast, r.number(rope, "beta_fast", 32.0, where));
  ROTOR_TRY(betaSlow, r.number(rope, "beta_slow", 1.0, where));
  s.betaFast = betaFast ? betaFast : 32.0;
  s.betaSlow = betaSlow ? betaSlow : 1.0;
  // The YaRN ramp divides by the distance between the two betas' dims and
  // takes the log of each; a negative beta has no meaning there.
  if (s.betaFast < 0 || s.betaSlow < 0)
    return r.fail(
        "'" + where + (s.betaFast < 0 ? "beta_fast" : "beta_slow") +
        "' must be positive, got " +
        llvm::formatv("{0}", s.betaFast < 0 ? s.betaFast : s.betaSlow).str());
  ROTOR_TRY(truncate, r.boolean(rope, "truncate", true, where));
  s.truncate = truncate;
  auto mscaleOf = [](double scale, double mscale) {
    return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
  };
  const json::Value *af = rope.get("attention_factor");
  if (af && af->kind() != json::Value::Null) {
    ROTOR_TRY(attentionFactor,
              r.number(rope, "attention_factor", std::nullopt, where));
    s.attentionFactor = attentionFactor;
  } else {
    ROTOR_TRY(mscale, r.number(rope, "mscale", 0.0, where));
    ROTOR_TRY(mscaleAllDim, r.number(rope, "mscale_all_dim", 0.0, where));
    s.attentionFactor =
        mscale != 0.0 && mscaleAllDim != 0.0
            ? mscaleOf(factor, mscale) / mscaleOf(factor, mscaleAllDim)
            : mscaleOf(factor, 1.0);
  }
  if (s.attentionFactor <= 0.0)
    return r.fail("'" + where + "attention_factor' must be positive");
  return Error::success();
}

/// Resolves the RoPE block `rope` (the `rope_scaling` object, or
/// `rope_parameters`) the way modeling_rope_utils.py does.
Error resolveScaling(const ConfigReader &r, const json::Object &rope,
                     StringRef where, AttentionConfig &c) {
  std::optional<StringRef> type = rope.getString("rope_type");
  if (!type)
    type = rope.getString("type");
  if (!type) {
    if (rope.get("rope_type") || rope.get("type"))
      return r.fail("'" + where + "rope_type' must be a string");
    // transformers 5 allows one RoPE block per layer type (Gemma-style);
    // none of the supported families uses that.
    return r.fail("'" + where.drop_back() +
                  "' has no 'rope_type' (per-layer-type RoPE parameters are "
                  "not supported)");
  }
  using K = RopeScalingConfig::Kind;
  std::optional<K> kind = StringSwitch<std::optional<K>>(*type)
                              .Case("default", K::None)
                              .Case("linear", K::Linear)
                              .Case("dynamic", K::Dynamic)
                              .Case("yarn", K::Yarn)
                              .Case("llama3", K::Llama3)
                              .Default(std::nullopt);
  if (!kind)
    return r.fail("unsupported RoPE type '" + *type + "' in '" + where +
                  "rope_type' (supported: default, linear, dynamic, yarn, "
                  "llama3)");
  RopeScalingConfig &s = c.scaling;
  s.kind = *kind;
  if (*kind == K::None)
    return Error::success();

  ROTOR_TRY(factor, r.number(rope, "factor", std::nullopt, where));
  if (factor < 1.0)
    return r.fail("'" + where + "factor' is " + show(factor) +
                  ", must be at least 1");
  s.factor = factor;
  // A top-level original_max_position_embeddings wins over the block's
  // (transformers 5's standardization); yarn falls back to
  // max_position_embeddings, llama3 requires one.
  const json::Value *topOriginal = r.root.get("original_max_position_embeddings");
  if (topOriginal && topOriginal->kind() != json::Value::Null) {
    ROTOR_TRY(original, r.integer(r.root, "original_max_position_embeddings",
                                  std::nullopt, 1));
    s.originalMaxPositionEmbeddings = original;
  } else {
    ROTOR_TRY(original, r.integer(rope, "original_max_position_embeddings",
                                  *kind == K::Llama3
                                      ? std::nullopt
                                      : std::optional(c.maxPositionEmbeddings),
                                  1, where));
    s.originalMaxPositionEmbeddings = original;
  }
  // transformers' dynamic NTK scales against config.max_position_embeddings
  // and ignores the block's original_max_position_embeddings.
  if (*kind == K::Dynamic)
    s.originalMaxPositionEmbeddings = c.maxPositionEmbeddings;

  if (*kind == K::Yarn)
    if (Error err = resolveYarn(r, rope, where, s))
      return err;
  if (*kind == K::Llama3) {
    ROTOR_TRY(low, r.number(rope, "low_freq_factor", std::nullopt, where));
    ROTOR_TRY(high, r.number(rope, "high_freq_factor", std::nullopt, where));
    if (!(low > 0.0 && low < high))
      return r.fail("'" + where + "low_freq_factor' and 'high_freq_factor' "
                    "must satisfy 0 < low < high");
    s.lowFreqFactor = low;
    s.highFreqFactor = high;
  }
  return Error::success();
}

/// The family `model_type` names; fills in what the family fixes.
Expected<const Family *> resolveFamily(const ConfigReader &r,
                                       AttentionConfig &c) {
  std::optional<StringRef> modelType = r.root.getString("model_type");
  if (!modelType)
    return r.fail("missing 'model_type' (a string; supported: " +
                  supportedModelTypes() + ")");
  const Family *family = nullptr;
  for (const Family &f : kFamilies)
    if (f.modelType == *modelType)
      family = &f;
  if (!family)
    return r.fail("unsupported model_type '" + *modelType +
                  "' (supported: " + supportedModelTypes() + ")");
  c.modelType = modelType->str();
  c.outputProjName = family->outputProjName.str();
  c.qkNorm = family->qkNorm;
  c.outputGate = c.zeroCentredNorm = family->qwen3Next;
  return family;
}

/// The attention geometry: sizes, head counts, layers, head_dim.
Error resolveGeometry(const ConfigReader &r, const Family &family,
                      AttentionConfig &c) {
  const json::Object &root = r.root;
  ROTOR_TRY(hidden, r.integer(root, "hidden_size", std::nullopt, 1));
  ROTOR_TRY(heads, r.integer(root, "num_attention_heads", std::nullopt, 1));
  // Absent: the config class's default; null: num_attention_heads.
  int64_t kvHeadsDefault = family.kvHeadsDefault;
  if (!kvHeadsDefault || root.get("num_key_value_heads"))
    kvHeadsDefault = heads;
  ROTOR_TRY(kvHeads, r.integer(root, "num_key_value_heads", kvHeadsDefault, 1));
  ROTOR_TRY(layers, r.integer(root, "num_hidden_layers", std::nullopt, 1));
  ROTOR_TRY(maxPositions, r.integer(root, "max_position_embeddings",
                                    family.maxPositionsDefault, 1));
  // Bounds far above any real model, so that sizes and their products stay
  // representable and a corrupt config cannot make the importer allocate
  // per-layer state for 10^18 layers.
  constexpr int64_t kMaxDim = int64_t(1) << 20, kMaxLayers = 100000;
  for (auto [key, value, max] :
       {std::tuple{"hidden_size", hidden, kMaxDim},
        std::tuple{"num_attention_heads", heads, kMaxDim},
        std::tuple{"num_key_value_heads", kvHeads, kMaxDim},
        std::tuple{"num_hidden_layers", layers, kMaxLayers}})
    if (value > max)
      return r.fail("'" + StringRef(key) + "' is " + Twine(value) +
                    ", more than the " + Twine(max) + " rotor-import accepts");
  if (heads % kvHeads)
    return r.fail("num_attention_heads (" + Twine(heads) +
                  ") is not a multiple of num_key_value_heads (" +
                  Twine(kvHeads) + ")");
  const json::Value *headDimValue = root.get("head_dim");
  if (!headDimValue && family.headDimDefault) {
    c.headDim = family.headDimDefault;
  } else if (!headDimValue || headDimValue->kind() == json::Value::Null) {
    if (hidden % heads)
      return r.fail("hidden_size (" + Twine(hidden) +
                    ") is not a multiple of num_attention_heads (" +
                    Twine(heads) + ") and there is no 'head_dim'");
    c.headDim = hidden / heads;
  } else {
    ROTOR_TRY(headDim, r.integer(root, "head_dim", std::nullopt, 1));
    if (headDim > kMaxDim)
      return r.fail("'head_dim' is " + Twine(headDim) + ", more than the " +
                    Twine(kMaxDim) + " rotor-import accepts");
    c.headDim = headDim;
  }
  c.hiddenSize = hidden;
  c.numHeads = heads;
  c.numKVHeads = kvHeads;
  c.numLayers = layers;
  c.maxPositionEmbeddings = maxPositions;
  return Error::success();
}

/// The norm epsilon, which projections carry a bias, and the Q/K LayerNorm
/// that is not supported.
Error resolveNormAndBiases(const ConfigReader &r, const Family &family,
                           AttentionConfig &c) {
  const json::Object &root = r.root;
  ROTOR_TRY(eps, r.number(root, family.epsKey, family.epsDefault));
  if (eps <= 0.0)
    return r.fail("'" + family.epsKey + "' must be positive");
  c.normEpsilon = eps;

  switch (family.bias) {
  case Family::Bias::QKVOnly:
    c.qkvBias = true;
    break;
  case Family::Bias::All:
    c.qkvBias = c.outputBias = true;
    break;
  case Family::Bias::None:
    break;
  case Family::Bias::FromAttentionBias: {
    ROTOR_TRY(bias, r.boolean(root, "attention_bias", false));
    c.qkvBias = c.outputBias = bias;
    break;
  }
  case Family::Bias::FromUseQkvBias: {
    ROTOR_TRY(bias, r.boolean(root, "use_qkv_bias", false));
    c.qkvBias = bias;
    break;
  }
  }
  if (c.modelType == "stablelm" || c.modelType == "phi") {
    ROTOR_TRY(qkLayerNorm, r.boolean(root, "qk_layernorm", false));
    if (qkLayerNorm)
      return r.fail("'qk_layernorm': true (a per-head LayerNorm of Q and K) is "
                    "not supported");
  }
  return Error::success();
}

/// RoPE: theta, the rotary dim and the scaling. transformers 5 turns a
/// non-null legacy `rope_scaling` into `rope_parameters` (it wins over one
/// given as well); either block may hold rope_theta and
/// partial_rotary_factor, which fall back to the top-level keys. A top-level
/// partial_rotary_factor wins.
Error resolveRope(const ConfigReader &r, const Family &family,
                  AttentionConfig &c) {
  const json::Object &root = r.root;
  const json::Object *block = nullptr;
  StringRef where;
  for (StringRef key : {"rope_scaling", "rope_parameters"}) {
    const json::Value *v = root.get(key);
    if (!v || v->kind() == json::Value::Null)
      continue;
    block = v->getAsObject();
    if (!block)
      return r.fail("'" + key + "' must be an object or null");
    where = key == "rope_scaling" ? "rope_scaling." : "rope_parameters.";
    break;
  }
  ROTOR_TRY(topTheta, r.number(root, "rope_theta", 10000.0));
  c.ropeTheta = topTheta;
  double partial = family.partialRotaryDefault;
  if (block) {
    ROTOR_TRY(theta, r.number(*block, "rope_theta", topTheta, where));
    c.ropeTheta = theta;
    ROTOR_TRY(p, r.number(*block, "partial_rotary_factor", partial, where));
    partial = p;
    if (Error err = resolveScaling(r, *block, where, c))
      return err;
  }
  {
    ROTOR_TRY(p, r.number(root, "partial_rotary_factor", partial));
    partial = p;
  }
  if (c.ropeTheta <= 1.0)
    return r.fail("'rope_theta' is " + show(c.ropeTheta) +
                  ", must be greater than 1");
  if (!(partial > 0.0 && partial <= 1.0))
    return r.fail("'partial_rotary_factor' is " + show(partial) +
                  ", must lie in (0, 1]");
  // int(head_dim * partial_rotary_factor), as HF computes it.
  c.rotaryDim = int64_t(double(c.headDim) * partial);
  if (root.get("rotary_dim"))
    c.notes.push_back("'rotary_dim' is ignored, as transformers' " +
                      c.modelType + " ignores it; the rotary dim is " +
                      std::to_string(c.rotaryDim) +
                      " (head_dim x partial_rotary_factor)");
  if (c.rotaryDim % 2 || c.rotaryDim > c.headDim || c.rotaryDim < 2)
    return r.fail("the rotary dim is " + Twine(c.rotaryDim) + " (head_dim " +
                  Twine(c.headDim) +
                  "); it must be even, at least 2 and at most head_dim");
  return Error::success();
}

/// Sliding windows, per layer, as the config classes resolve them.
Error resolveSlidingWindows(const ConfigReader &r, const Family &family,
                            AttentionConfig &c) {
  const json::Object &root = r.root;
  int64_t layers = c.numLayers;
  c.slidingWindows.assign(layers, std::nullopt);
  if (family.window == Family::Window::Mistral) {
    // Absent: 4096; null: none.
    const json::Value *v = root.get("sliding_window");
    if (!v || v->kind() != json::Value::Null) {
      ROTOR_TRY(window, r.integer(root, "sliding_window", int64_t(4096), 1));
      c.slidingWindows.assign(layers, window);
    }
    return Error::success();
  }
  if (family.window != Family::Window::Qwen)
    return Error::success();
  // sliding_window counts only with use_sliding_window; layer_types (or,
  // without it, max_window_layers) says which layers use it.
  ROTOR_TRY(use, r.boolean(root, "use_sliding_window", false));
  std::optional<int64_t> window;
  if (use) {
    ROTOR_TRY(w, r.integer(root, "sliding_window", int64_t(4096), 1));
    window = w;
  }
  if (const json::Value *present = root.get("layer_types");
      present && present->kind() != json::Value::Null && !present->getAsArray())
    return r.fail("'layer_types' must be a list of \"full_attention\" and "
                  "\"sliding_attention\", one per layer");
  if (const json::Array *types = root.getArray("layer_types")) {
    if (int64_t(types->size()) != layers)
      return r.fail("'layer_types' has " + Twine(types->size()) +
                    " entries for " + Twine(layers) + " layers");
    for (int64_t i = 0; i < layers; ++i) {
      std::optional<StringRef> type = (*types)[i].getAsString();
      if (!type || (*type != "full_attention" && *type != "sliding_attention"))
        return r.fail("'layer_types' entry " + Twine(i) +
                      " must be \"full_attention\" or \"sliding_attention\"");
      if (*type == "sliding_attention")
        c.slidingWindows[i] = window;
    }
  } else if (window) {
    ROTOR_TRY(firstSliding,
              r.integer(root, "max_window_layers", int64_t(28), 0));
    for (int64_t i = firstSliding; i < layers; ++i)
      c.slidingWindows[i] = window;
  }
  return Error::success();
}

/// Qwen3-Next's layer kinds: `layer_types` ("linear_attention" or
/// "full_attention" per layer) or, without it, a full-attention layer every
/// `full_attention_interval` (4) layers, as Qwen3NextConfig derives them.
Error resolveLayerKinds(const ConfigReader &r, const Family &family,
                        AttentionConfig &c) {
  c.linearAttention.assign(c.numLayers, false);
  if (!family.qwen3Next)
    return Error::success();
  const json::Object &root = r.root;
  if (const json::Value *present = root.get("layer_types");
      present && present->kind() != json::Value::Null && !present->getAsArray())
    return r.fail("'layer_types' must be a list of \"linear_attention\" and "
                  "\"full_attention\", one per layer");
  if (const json::Array *types = root.getArray("layer_types")) {
    if (int64_t(types->size()) != c.numLayers)
      return r.fail("'layer_types' has " + Twine(types->size()) +
                    " entries for " + Twine(c.numLayers) + " layers");
    for (int64_t i = 0; i < c.numLayers; ++i) {
      std::optional<StringRef> type = (*types)[i].getAsString();
      if (!type || (*type != "full_attention" && *type != "linear_attention"))
        return r.fail("'layer_types' entry " + Twine(i) +
                      " must be \"full_attention\" or \"linear_attention\"");
      c.linearAttention[i] = *type == "linear_attention";
    }
    return Error::success();
  }
  ROTOR_TRY(interval,
            r.integer(root, "full_attention_interval", int64_t(4), 1));
  for (int64_t i = 0; i < c.numLayers; ++i)
    c.linearAttention[i] = (i + 1) % interval != 0;
  return Error::success();
}

} // namespace

StringRef rotor::import::supportedModelTypes() {
  return "qwen2, llama, mistral, qwen3, stablelm, phi, qwen3_next";
}

Expected<AttentionConfig> rotor::import::parseHFConfig(StringRef text,
                                                       StringRef path) {
  if (jsonNestingDepth(text) > kMaxJsonNesting)
    return createStringError(inconvertibleErrorCode(),
                             path + ": nests JSON deeper than " +
                                 Twine(kMaxJsonNesting) + " levels");
  Expected<json::Value> parsed = json::parse(text);
  if (!parsed)
    return createStringError(inconvertibleErrorCode(),
                             path + ": not valid JSON: " +
                                 toString(parsed.takeError()));
  const json::Object *root = parsed->getAsObject();
  if (!root)
    return createStringError(inconvertibleErrorCode(),
                             path + ": not a JSON object");
  ConfigReader r(*root, path);

  AttentionConfig c;
  ROTOR_TRY(family, resolveFamily(r, c));
  if (Error err = resolveGeometry(r, *family, c))
    return std::move(err);
  if (Error err = resolveNormAndBiases(r, *family, c))
    return std::move(err);
  if (Error err = resolveRope(r, *family, c))
    return std::move(err);
  if (Error err = resolveSlidingWindows(r, *family, c))
    return std::move(err);
  if (Error err = resolveLayerKinds(r, *family, c))
    return std::move(err);

  if (std::optional<StringRef> dtype = root->getString("torch_dtype"))
    c.torchDtype = dtype->str();
  else if (std::optional<StringRef> dtype = root->getString("dtype"))
    c.torchDtype = dtype->str();
  return c;
}
