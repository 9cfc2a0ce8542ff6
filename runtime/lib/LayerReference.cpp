//===- LayerReference.cpp - fp64 reference of a bundle's layer ------------===//

#include "rotor-rt/LayerReference.h"

#include "rotor-rt/Reference.h"

#include <cmath>
#include <numeric>
#include <tuple>

namespace rotor::rt {

namespace ref = rotor::reference;

Result<std::vector<double>> referenceLayer(const Bundle &bundle,
                                           const Tensor &hidden) {
  using R = Result<std::vector<double>>;
  const nlohmann::json &m = bundle.manifest();
  if (!m.contains("layer"))
    return R::failure("the bundle's manifest describes no standard attention "
                      "layer, so there is no reference for it");
  const nlohmann::json &l = m["layer"];
  auto isInt = [&](const char *key) {
    return l.contains(key) && l[key].is_number_integer();
  };
  auto isProj = [&](const char *key) {
    return l.contains(key) && l[key].is_object() &&
           l[key].contains("weight") && l[key]["weight"].is_string() &&
           l[key].contains("bias") &&
           (l[key]["bias"].is_null() || l[key]["bias"].is_string());
  };
  if (!l.is_object() || !isInt("hidden") || !isInt("q_heads") ||
      !isInt("kv_heads") || !isInt("head_dim") || !l.contains("scale") ||
      !l["scale"].is_number() || !isProj("q_proj") || !isProj("k_proj") ||
      !isProj("v_proj") || !isProj("o_proj") || !l.contains("rope") ||
      !l["rope"].is_object() || !l["rope"].contains("rotary_dim") ||
      !l["rope"]["rotary_dim"].is_number_integer() ||
      !l["rope"].contains("theta") || !l["rope"]["theta"].is_number() ||
      !l["rope"].contains("layout") || !l["rope"]["layout"].is_string() ||
      !l["rope"].contains("scaling") ||
      !(l["rope"]["scaling"].is_null() ||
        (l["rope"]["scaling"].is_object() &&
         l["rope"]["scaling"].contains("kind") &&
         l["rope"]["scaling"]["kind"].is_string() &&
         l["rope"]["scaling"].contains("factor") &&
         l["rope"]["scaling"]["factor"].is_number())))
    return R::failure("manifest.json: the layer description is malformed");
  for (const char *proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
    for (const char *part : {"weight", "bias"})
      if (l[proj][part].is_string() &&
          !bundle.hasWeight(l[proj][part].get<std::string>()))
        return R::failure("manifest.json: the layer's " + std::string(proj) +
                          " " + part + " '" + l[proj][part].get<std::string>() +
                          "' is not among the weights");
  int64_t e = l["hidden"], hq = l["q_heads"], hkv = l["kv_heads"],
          d = l["head_dim"];
  int64_t t = hidden.shape[0];
  const nlohmann::json &ropeDesc = l["rope"];
  int64_t rotary = ropeDesc["rotary_dim"];
  std::string layoutName = ropeDesc["layout"];
  auto malformed = [&](const std::string &what) {
    return R::failure("manifest.json: the layer description is malformed: " +
                      what);
  };
  if (e != bundle.hiddenSize() || hq < 1 || hkv < 1 || d < 1 || hq % hkv)
    return malformed("hidden, q_heads, kv_heads and head_dim do not fit the "
                     "entry points");
  if (rotary < 0 || rotary % 2 || rotary > d)
    return malformed("rotary_dim must be even and at most head_dim");
  // The projections' widths are compared with the weights' shapes below;
  // first they must be computable.
  int64_t qWidth, kvWidth;
  if (__builtin_mul_overflow(hq, d, &qWidth) ||
      __builtin_mul_overflow(hkv, d, &kvWidth))
    return malformed("q_heads or kv_heads times head_dim overflows");
  if (!std::isfinite(l["scale"].get<double>()))
    return malformed("scale must be finite");
  if (layoutName != "half_split" && layoutName != "interleaved")
    return malformed("unknown RoPE layout '" + layoutName + "'");
  auto shapeIs = [&](const nlohmann::json &name,
                     std::vector<int64_t> shape) {
    return name.is_null() || bundle.weight(name.get<std::string>()).shape == shape;
  };
  if (!shapeIs(l["q_proj"]["weight"], {qWidth, e}) ||
      !shapeIs(l["q_proj"]["bias"], {qWidth}) ||
      !shapeIs(l["k_proj"]["weight"], {kvWidth, e}) ||
      !shapeIs(l["k_proj"]["bias"], {kvWidth}) ||
      !shapeIs(l["v_proj"]["weight"], {kvWidth, e}) ||
      !shapeIs(l["v_proj"]["bias"], {kvWidth}) ||
      !shapeIs(l["o_proj"]["weight"], {e, qWidth}) ||
      !shapeIs(l["o_proj"]["bias"], {e}))
    return malformed("a projection's weights do not have its shape");
  auto weight = [&](const nlohmann::json &name) {
    return bundle.weight(name.get<std::string>()).toDoubles();
  };
  auto project = [&](const nlohmann::json &proj, const std::vector<double> &x,
                     int64_t in, int64_t out) {
    std::vector<double> b;
    if (!proj["bias"].is_null())
      b = weight(proj["bias"]);
    return ref::linear(x, weight(proj["weight"]), b, t, in, out);
  };
  std::vector<double> x = hidden.toDoubles();
  std::vector<double> q = project(l["q_proj"], x, e, qWidth);
  std::vector<double> k = project(l["k_proj"], x, e, kvWidth);
  std::vector<double> v = project(l["v_proj"], x, e, kvWidth);
  // Optional per-head RMS norms of Q and K (Qwen3's q_norm/k_norm).
  for (auto [key, vec, heads] :
       {std::tuple{"q_norm", &q, hq}, std::tuple{"k_norm", &k, hkv}}) {
    if (!l.contains(key) || l[key].is_null())
      continue;
    const nlohmann::json &n = l[key];
    if (!n.is_object() || !n.contains("weight") || !n["weight"].is_string() ||
        !n.contains("epsilon") || !n["epsilon"].is_number() ||
        !(n["epsilon"].get<double>() > 0) ||
        !std::isfinite(n["epsilon"].get<double>()))
      return malformed(std::string(key) + " needs a weight and a positive epsilon");
    std::string name = n["weight"];
    if (!bundle.hasWeight(name) ||
        bundle.weight(name).shape != std::vector<int64_t>{d})
      return malformed(std::string(key) + " weight '" + name +
                       "' is not a weight of shape [head_dim]");
    *vec = ref::rmsNorm(*vec, weight(n["weight"]), t * heads, d,
                        n["epsilon"].get<double>());
  }

  const nlohmann::json &rope = l["rope"];
  ref::RopeLayout layout = layoutName == "interleaved"
                               ? ref::RopeLayout::Interleaved
                               : ref::RopeLayout::HalfSplit;
  ref::RopeScaling scaling;
  if (!rope["scaling"].is_null()) {
    const nlohmann::json &s = rope["scaling"];
    std::string kind = s["kind"];
    using K = ref::RopeScaling::Kind;
    if (kind != "linear" && kind != "dynamic" && kind != "yarn" &&
        kind != "llama3")
      return malformed("unknown RoPE scaling '" + kind + "'");
    scaling.kind = kind == "linear"    ? K::Linear
                   : kind == "dynamic" ? K::Dynamic
                   : kind == "yarn"    ? K::Yarn
                                       : K::Llama3;
    bool typesOk = true;
    auto number = [&](const char *key, double fallback) {
      if (!s.contains(key))
        return fallback;
      typesOk &= s[key].is_number();
      return s[key].is_number() ? s[key].get<double>() : fallback;
    };
    scaling.factor = s["factor"];
    // A whole number of positions, converted only once it fits.
    double originalMax = number("original_max_position_embeddings", 0);
    bool needsOriginalMax = scaling.kind != K::Linear;
    if (!(originalMax >= (needsOriginalMax ? 1 : 0) && originalMax <= 1e15 &&
          originalMax == std::floor(originalMax)))
      return malformed("original_max_position_embeddings must be a whole "
                       "number from 1 to 1e15 for " +
                       kind + " RoPE scaling");
    scaling.originalMaxPositions = int64_t(originalMax);
    scaling.betaFast = number("beta_fast", 32.0);
    scaling.betaSlow = number("beta_slow", 1.0);
    scaling.attentionFactor = number("attention_factor", 1.0);
    scaling.lowFreqFactor = number("low_freq_factor", 1.0);
    scaling.highFreqFactor = number("high_freq_factor", 4.0);
    if (s.contains("truncate")) {
      typesOk &= s["truncate"].is_boolean();
      scaling.truncate = s["truncate"].is_boolean() && s["truncate"].get<bool>();
    }
    if (!typesOk)
      return malformed("a RoPE scaling parameter has the wrong type");
    auto positive = [](double v) { return std::isfinite(v) && v > 0; };
    if (!positive(scaling.factor))
      return malformed("the RoPE scaling factor must be finite and positive");
    if (scaling.kind == K::Yarn &&
        (!positive(scaling.betaFast) || !positive(scaling.betaSlow) ||
         !std::isfinite(scaling.attentionFactor)))
      return malformed("YaRN's beta_fast and beta_slow must be finite and "
                       "positive, and its attention_factor finite");
    if (scaling.kind == K::Llama3 &&
        (!positive(scaling.lowFreqFactor) ||
         !positive(scaling.highFreqFactor) ||
         scaling.lowFreqFactor == scaling.highFreqFactor))
      return malformed("llama3's low_freq_factor and high_freq_factor must "
                       "be finite, positive and different");
  }
  std::vector<int64_t> positions(static_cast<size_t>(t));
  std::iota(positions.begin(), positions.end(), 0);
  int64_t r = rope["rotary_dim"];
  double theta = rope["theta"];
  if (!std::isfinite(theta) || !(theta > 0))
    return malformed("RoPE theta must be finite and positive");
  // A tiny theta (or a scaling) can make frequencies overflow to infinity,
  // which would make every rotated value NaN.
  for (double f : ref::ropeInverseFrequencies(r, theta, scaling, t - 1))
    if (!std::isfinite(f))
      return malformed("RoPE theta " + nlohmann::json(theta).dump() +
                       " (with its scaling) gives frequencies that are not "
                       "finite");
  q = ref::rope(q, positions, t, hq, d, layout, r, theta, scaling);
  k = ref::rope(k, positions, t, hkv, d, layout, r, theta, scaling);
  std::vector<double> o = ref::sdpa(q, k, v, t, t, hq, hkv, d, d,
                                    /*causal=*/true, std::nullopt,
                                    l["scale"].get<double>());
  return project(l["o_proj"], o, hq * d, e);
}

} // namespace rotor::rt
