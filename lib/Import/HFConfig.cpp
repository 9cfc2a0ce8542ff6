//===- HFConfig.cpp - The attention of a Hugging Face config.json ---------===//
//
// The defaults and resolution rules follow transformers' configuration
// classes and modeling_rope_utils.py (as of transformers 5): a missing key
// takes the value the family's config class would give it.
//
//===----------------------------------------------------------------------===//

#include "rotor/Import/HFConfig.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

#include <cmath>
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
};

constexpr Family kFamilies[] = {
    {"qwen2", Family::Bias::QKVOnly, false, "o_proj", "rms_norm_eps", 1e-6, 32768},
    {"llama", Family::Bias::FromAttentionBias, false, "o_proj", "rms_norm_eps", 1e-6, 2048},
    {"mistral", Family::Bias::None, false, "o_proj", "rms_norm_eps", 1e-6, 4096 * 32},
    {"qwen3", Family::Bias::FromAttentionBias, true, "o_proj", "rms_norm_eps", 1e-6, 32768},
    {"stablelm", Family::Bias::FromUseQkvBias, false, "o_proj", "layer_norm_eps", 1e-5, 4096},
    {"phi", Family::Bias::All, false, "dense", "layer_norm_eps", 1e-5, 2048},
};

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
    return r.fail("'" + where + "factor' is " + formatv("{0}", factor).str() +
                  ", must be at least 1");
  s.factor = factor;
  ROTOR_TRY(original, r.integer(rope, "original_max_position_embeddings",
                                *kind == K::Llama3
                                    ? std::nullopt
                                    : std::optional(c.maxPositionEmbeddings),
                                1, where));
  s.originalMaxPositionEmbeddings = original;
  // transformers' dynamic NTK scales against config.max_position_embeddings
  // and ignores the block's original_max_position_embeddings.
  if (*kind == K::Dynamic)
    s.originalMaxPositionEmbeddings = c.maxPositionEmbeddings;

  if (*kind == K::Yarn) {
    // `beta_fast or 32`: HF also replaces an explicit 0 by the default.
    ROTOR_TRY(betaFast, r.number(rope, "beta_fast", 32.0, where));
    ROTOR_TRY(betaSlow, r.number(rope, "beta_slow", 1.0, where));
    s.betaFast = betaFast ? betaFast : 32.0;
    s.betaSlow = betaSlow ? betaSlow : 1.0;
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
      s.attentionFactor = mscale != 0.0 && mscaleAllDim != 0.0
                              ? mscaleOf(factor, mscale) /
                                    mscaleOf(factor, mscaleAllDim)
                              : mscaleOf(factor, 1.0);
    }
    if (s.attentionFactor <= 0.0)
      return r.fail("'" + where + "attention_factor' must be positive");
  }
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

} // namespace

StringRef rotor::import::supportedModelTypes() {
  return "qwen2, llama, mistral, qwen3, stablelm, phi";
}

Expected<AttentionConfig> rotor::import::parseHFConfig(StringRef text,
                                                       StringRef path) {
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
  std::optional<StringRef> modelType = root->getString("model_type");
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

  ROTOR_TRY(hidden, r.integer(*root, "hidden_size", std::nullopt, 1));
  ROTOR_TRY(heads, r.integer(*root, "num_attention_heads", std::nullopt, 1));
  ROTOR_TRY(kvHeads, r.integer(*root, "num_key_value_heads", heads, 1));
  ROTOR_TRY(layers, r.integer(*root, "num_hidden_layers", std::nullopt, 1));
  ROTOR_TRY(maxPositions, r.integer(*root, "max_position_embeddings",
                                    family->maxPositionsDefault, 1));
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
  const json::Value *headDimValue = root->get("head_dim");
  if (!headDimValue || headDimValue->kind() == json::Value::Null) {
    if (hidden % heads)
      return r.fail("hidden_size (" + Twine(hidden) +
                    ") is not a multiple of num_attention_heads (" +
                    Twine(heads) + ") and there is no 'head_dim'");
    c.headDim = hidden / heads;
  } else {
    ROTOR_TRY(headDim, r.integer(*root, "head_dim", std::nullopt, 1));
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

  ROTOR_TRY(eps, r.number(*root, family->epsKey, family->epsDefault));
  if (eps <= 0.0)
    return r.fail("'" + family->epsKey + "' must be positive");
  c.normEpsilon = eps;

  switch (family->bias) {
  case Family::Bias::QKVOnly:
    c.qkvBias = true;
    break;
  case Family::Bias::All:
    c.qkvBias = c.outputBias = true;
    break;
  case Family::Bias::None:
    break;
  case Family::Bias::FromAttentionBias: {
    ROTOR_TRY(bias, r.boolean(*root, "attention_bias", false));
    c.qkvBias = c.outputBias = bias;
    break;
  }
  case Family::Bias::FromUseQkvBias: {
    ROTOR_TRY(bias, r.boolean(*root, "use_qkv_bias", false));
    c.qkvBias = bias;
    break;
  }
  }
  if (c.modelType == "stablelm" || c.modelType == "phi") {
    ROTOR_TRY(qkLayerNorm, r.boolean(*root, "qk_layernorm", false));
    if (qkLayerNorm)
      return r.fail("'qk_layernorm': true (a per-head LayerNorm of Q and K) is "
                    "not supported");
  }

  // RoPE: `rope_parameters` (transformers 5), else `rope_theta` +
  // `rope_scaling`; as in transformers 5, a non-null `rope_scaling` wins
  // over `rope_parameters`. partial_rotary_factor may sit in either place;
  // the top-level one wins.
  const json::Value *legacyScaling = root->get("rope_scaling");
  bool useLegacy = legacyScaling && legacyScaling->kind() != json::Value::Null;
  const json::Object *ropeParams =
      useLegacy ? nullptr : root->getObject("rope_parameters");
  if (!useLegacy && root->get("rope_parameters") && !ropeParams &&
      root->get("rope_parameters")->kind() != json::Value::Null)
    return r.fail("'rope_parameters' must be an object");
  double partial = 1.0;
  {
    ROTOR_TRY(p, r.number(*root, "partial_rotary_factor", 1.0));
    partial = p;
  }
  ROTOR_TRY(topTheta, r.number(*root, "rope_theta", 10000.0));
  if (ropeParams) {
    ROTOR_TRY(theta, r.number(*ropeParams, "rope_theta", topTheta,
                              "rope_parameters."));
    c.ropeTheta = theta;
    if (!root->get("partial_rotary_factor")) {
      ROTOR_TRY(p, r.number(*ropeParams, "partial_rotary_factor", partial,
                            "rope_parameters."));
      partial = p;
    }
    if (Error err = resolveScaling(r, *ropeParams, "rope_parameters.", c))
      return std::move(err);
  } else {
    c.ropeTheta = topTheta;
    const json::Value *scaling = root->get("rope_scaling");
    if (scaling && scaling->kind() != json::Value::Null) {
      const json::Object *obj = scaling->getAsObject();
      if (!obj)
        return r.fail("'rope_scaling' must be an object or null");
      if (Error err = resolveScaling(r, *obj, "rope_scaling.", c))
        return std::move(err);
    }
  }
  if (c.ropeTheta <= 1.0)
    return r.fail("'rope_theta' is " + formatv("{0}", c.ropeTheta).str() +
                  ", must be greater than 1");
  if (!(partial > 0.0 && partial <= 1.0))
    return r.fail("'partial_rotary_factor' is " + formatv("{0}", partial).str() +
                  ", must lie in (0, 1]");
  // int(head_dim * partial_rotary_factor), as HF computes it.
  c.rotaryDim = int64_t(double(c.headDim) * partial);
  if (root->get("rotary_dim") &&
      root->get("rotary_dim")->kind() != json::Value::Null) {
    ROTOR_TRY(rotary, r.integer(*root, "rotary_dim", std::nullopt, 0));
    c.rotaryDim = rotary;
  }
  if (c.rotaryDim % 2 || c.rotaryDim > c.headDim || c.rotaryDim < 2)
    return r.fail("the rotary dim is " + Twine(c.rotaryDim) +
                  " (head_dim " + Twine(c.headDim) +
                  "); it must be even, at least 2 and at most head_dim");

  // Sliding windows, per layer.
  c.slidingWindows.assign(layers, std::nullopt);
  if (c.modelType == "mistral") {
    ROTOR_TRY(window, r.integer(*root, "sliding_window", int64_t(0), 1));
    if (window)
      c.slidingWindows.assign(layers, window);
  } else if (c.modelType == "qwen2" || c.modelType == "qwen3") {
    if (const json::Array *types = root->getArray("layer_types")) {
      if (int64_t(types->size()) != layers)
        return r.fail("'layer_types' has " + Twine(types->size()) +
                      " entries for " + Twine(layers) + " layers");
      ROTOR_TRY(window, r.integer(*root, "sliding_window", int64_t(0), 1));
      for (int64_t i = 0; i < layers; ++i) {
        std::optional<StringRef> type = (*types)[i].getAsString();
        if (!type || (*type != "full_attention" && *type != "sliding_attention"))
          return r.fail("'layer_types' entry " + Twine(i) +
                        " must be \"full_attention\" or \"sliding_attention\"");
        if (*type == "sliding_attention") {
          if (!window)
            return r.fail("layer " + Twine(i) + " is sliding_attention but "
                          "'sliding_window' is not set");
          c.slidingWindows[i] = window;
        }
      }
    } else {
      ROTOR_TRY(use, r.boolean(*root, "use_sliding_window", false));
      if (use) {
        ROTOR_TRY(window, r.integer(*root, "sliding_window", std::nullopt, 1));
        ROTOR_TRY(firstSliding,
                  r.integer(*root, "max_window_layers", layers, 0));
        for (int64_t i = firstSliding; i < layers; ++i)
          c.slidingWindows[i] = window;
      }
    }
  }

  if (std::optional<StringRef> dtype = root->getString("torch_dtype"))
    c.torchDtype = dtype->str();
  else if (std::optional<StringRef> dtype = root->getString("dtype"))
    c.torchDtype = dtype->str();
  return c;
}
