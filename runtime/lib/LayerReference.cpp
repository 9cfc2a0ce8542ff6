//===- LayerReference.cpp - fp64 reference of a bundle's layer ------------===//

#include "rotor-rt/LayerReference.h"

#include "rotor-rt/Reference.h"

#include <numeric>

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
  std::vector<double> q = project(l["q_proj"], x, e, hq * d);
  std::vector<double> k = project(l["k_proj"], x, e, hkv * d);
  std::vector<double> v = project(l["v_proj"], x, e, hkv * d);

  const nlohmann::json &rope = l["rope"];
  ref::RopeLayout layout = rope["layout"] == "interleaved"
                               ? ref::RopeLayout::Interleaved
                               : ref::RopeLayout::HalfSplit;
  ref::RopeScaling scaling;
  if (!rope["scaling"].is_null()) {
    const nlohmann::json &s = rope["scaling"];
    std::string kind = s["kind"];
    using K = ref::RopeScaling::Kind;
    scaling.kind = kind == "linear"    ? K::Linear
                   : kind == "dynamic" ? K::Dynamic
                   : kind == "yarn"    ? K::Yarn
                                       : K::Llama3;
    scaling.factor = s["factor"];
    scaling.originalMaxPositions = s.value("original_max_position_embeddings", 0);
    scaling.betaFast = s.value("beta_fast", 32.0);
    scaling.betaSlow = s.value("beta_slow", 1.0);
    scaling.attentionFactor = s.value("attention_factor", 1.0);
    scaling.truncate = s.value("truncate", true);
    scaling.lowFreqFactor = s.value("low_freq_factor", 1.0);
    scaling.highFreqFactor = s.value("high_freq_factor", 4.0);
  }
  std::vector<int64_t> positions(static_cast<size_t>(t));
  std::iota(positions.begin(), positions.end(), 0);
  int64_t r = rope["rotary_dim"];
  double theta = rope["theta"];
  q = ref::rope(q, positions, t, hq, d, layout, r, theta, scaling);
  k = ref::rope(k, positions, t, hkv, d, layout, r, theta, scaling);
  std::vector<double> o = ref::sdpa(q, k, v, t, t, hq, hkv, d, d,
                                    /*causal=*/true, std::nullopt,
                                    l["scale"].get<double>());
  return project(l["o_proj"], o, hq * d, e);
}

} // namespace rotor::rt
