//===- LayerReference.cpp - fp64 reference of a bundle's layer ------------===//

#include "rotor-rt/LayerReference.h"

#include "rotor-rt/Reference.h"

#include <cmath>
#include <numeric>
#include <tuple>

namespace rotor::rt {

namespace ref = rotor::reference;

namespace {

using Vec = std::vector<double>;

Error malformed(const std::string &what) {
  return Error::failure("manifest.json: the layer description is malformed: " +
                        what);
}

/// Whether the layer description `l` has every key the reference reads,
/// each of its JSON type.
bool hasLayerKeys(const nlohmann::json &l) {
  auto isInt = [&](const char *key) {
    return l.contains(key) && l[key].is_number_integer();
  };
  auto isProj = [&](const char *key) {
    return l.contains(key) && l[key].is_object() && l[key].contains("weight") &&
           l[key]["weight"].is_string() && l[key].contains("bias") &&
           (l[key]["bias"].is_null() || l[key]["bias"].is_string());
  };
  return l.is_object() && isInt("hidden") && isInt("q_heads") &&
         isInt("kv_heads") && isInt("head_dim") && l.contains("scale") &&
         l["scale"].is_number() && isProj("q_proj") && isProj("k_proj") &&
         isProj("v_proj") && isProj("o_proj") && l.contains("rope") &&
         l["rope"].is_object() && l["rope"].contains("rotary_dim") &&
         l["rope"]["rotary_dim"].is_number_integer() &&
         l["rope"].contains("theta") && l["rope"]["theta"].is_number() &&
         l["rope"].contains("layout") && l["rope"]["layout"].is_string() &&
         l["rope"].contains("scaling") &&
         (l["rope"]["scaling"].is_null() ||
          (l["rope"]["scaling"].is_object() &&
           l["rope"]["scaling"].contains("kind") &&
           l["rope"]["scaling"]["kind"].is_string() &&
           l["rope"]["scaling"].contains("factor") &&
           l["rope"]["scaling"]["factor"].is_number()));
}

/// Every weight and bias the projections name is among the bundle's weights.
Error checkProjectionNames(const Bundle &bundle, const nlohmann::json &l) {
  for (const char *proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
    for (const char *part : {"weight", "bias"})
      if (l[proj][part].is_string() &&
          !bundle.hasWeight(l[proj][part].get<std::string>()))
        return Error::failure("manifest.json: the layer's " +
                              std::string(proj) + " " + part + " '" +
                              l[proj][part].get<std::string>() +
                              "' is not among the weights");
  return Error::success();
}

/// The layer's sizes, scale and RoPE layout, checked against each other, the
/// entry points and the projections' weights.
struct LayerGeometry {
  /// hidden, q_heads, kv_heads, head_dim, rotary_dim.
  int64_t e, hq, hkv, d, rotary;
  /// The widths of the Q and of the K and V projections.
  int64_t qWidth, kvWidth;
  double scale;
  ref::RopeLayout layout;
};

Result<LayerGeometry> readGeometry(const Bundle &bundle,
                                   const nlohmann::json &l) {
  LayerGeometry g;
  g.e = l["hidden"];
  g.hq = l["q_heads"];
  g.hkv = l["kv_heads"];
  g.d = l["head_dim"];
  g.rotary = l["rope"]["rotary_dim"];
  std::string layoutName = l["rope"]["layout"];
  if (g.e != bundle.hiddenSize() || g.hq < 1 || g.hkv < 1 || g.d < 1 ||
      g.hq % g.hkv)
    return malformed("hidden, q_heads, kv_heads and head_dim do not fit the "
                     "entry points");
  if (g.rotary < 0 || g.rotary % 2 || g.rotary > g.d)
    return malformed("rotary_dim must be even and at most head_dim");
  // The projections' widths are compared with the weights' shapes below;
  // first they must be computable.
  if (__builtin_mul_overflow(g.hq, g.d, &g.qWidth) ||
      __builtin_mul_overflow(g.hkv, g.d, &g.kvWidth))
    return malformed("q_heads or kv_heads times head_dim overflows");
  g.scale = l["scale"].get<double>();
  if (!std::isfinite(g.scale))
    return malformed("scale must be finite");
  if (layoutName != "half_split" && layoutName != "interleaved")
    return malformed("unknown RoPE layout '" + layoutName + "'");
  g.layout = layoutName == "interleaved" ? ref::RopeLayout::Interleaved
                                         : ref::RopeLayout::HalfSplit;
  auto shapeIs = [&](const nlohmann::json &name, std::vector<int64_t> shape) {
    return name.is_null() ||
           bundle.weight(name.get<std::string>()).shape == shape;
  };
  int64_t e = g.e, qWidth = g.qWidth, kvWidth = g.kvWidth;
  if (!shapeIs(l["q_proj"]["weight"], {qWidth, e}) ||
      !shapeIs(l["q_proj"]["bias"], {qWidth}) ||
      !shapeIs(l["k_proj"]["weight"], {kvWidth, e}) ||
      !shapeIs(l["k_proj"]["bias"], {kvWidth}) ||
      !shapeIs(l["v_proj"]["weight"], {kvWidth, e}) ||
      !shapeIs(l["v_proj"]["bias"], {kvWidth}) ||
      !shapeIs(l["o_proj"]["weight"], {e, qWidth}) ||
      !shapeIs(l["o_proj"]["bias"], {e}))
    return malformed("a projection's weights do not have its shape");
  return g;
}

Vec weight(const Bundle &bundle, const nlohmann::json &name) {
  return bundle.weight(name.get<std::string>()).toDoubles();
}

/// x [t, in] through the projection `proj` (weight [out, in], optional
/// bias [out]).
Vec project(const Bundle &bundle, const nlohmann::json &proj, const Vec &x,
            int64_t t, int64_t in, int64_t out) {
  Vec b;
  if (!proj["bias"].is_null())
    b = weight(bundle, proj["bias"]);
  return ref::linear(x, weight(bundle, proj["weight"]), b, t, in, out);
}

/// The optional per-head RMS norms of Q and K (Qwen3's q_norm/k_norm).
Error normalizeQK(const Bundle &bundle, const nlohmann::json &l,
                  const LayerGeometry &g, int64_t t, Vec &q, Vec &k) {
  for (auto [key, vec, heads] :
       {std::tuple{"q_norm", &q, g.hq}, std::tuple{"k_norm", &k, g.hkv}}) {
    if (!l.contains(key) || l[key].is_null())
      continue;
    const nlohmann::json &n = l[key];
    if (!n.is_object() || !n.contains("weight") || !n["weight"].is_string() ||
        !n.contains("epsilon") || !n["epsilon"].is_number() ||
        !(n["epsilon"].get<double>() > 0) ||
        !std::isfinite(n["epsilon"].get<double>()))
      return malformed(std::string(key) +
                       " needs a weight and a positive epsilon");
    std::string name = n["weight"];
    if (!bundle.hasWeight(name) ||
        bundle.weight(name).shape != std::vector<int64_t>{g.d})
      return malformed(std::string(key) + " weight '" + name +
                       "' is not a weight of shape [head_dim]");
    *vec = ref::rmsNorm(*vec, weight(bundle, n["weight"]), t * heads, g.d,
                        n["epsilon"].get<double>());
  }
  return Error::success();
}

/// The RoPE scaling block `s` (an object with a string kind and a numeric
/// factor), each parameter checked for the kind that reads it.
Result<ref::RopeScaling> readRopeScaling(const nlohmann::json &s) {
  ref::RopeScaling scaling;
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
      (!positive(scaling.lowFreqFactor) || !positive(scaling.highFreqFactor) ||
       scaling.lowFreqFactor == scaling.highFreqFactor))
    return malformed("llama3's low_freq_factor and high_freq_factor must "
                     "be finite, positive and different");
  return scaling;
}

/// RoPE, as the description `rope` gives it, of q [t, hq, d] and
/// k [t, hkv, d] at positions 0..t-1.
Error applyRope(const nlohmann::json &rope, const LayerGeometry &g, int64_t t,
                Vec &q, Vec &k) {
  ref::RopeScaling scaling;
  if (!rope["scaling"].is_null()) {
    Result<ref::RopeScaling> read = readRopeScaling(rope["scaling"]);
    if (!read)
      return Error::failure(read.error());
    scaling = *read;
  }
  std::vector<int64_t> positions(static_cast<size_t>(t));
  std::iota(positions.begin(), positions.end(), 0);
  int64_t r = g.rotary;
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
  q = ref::rope(q, positions, t, g.hq, g.d, g.layout, r, theta, scaling);
  k = ref::rope(k, positions, t, g.hkv, g.d, g.layout, r, theta, scaling);
  return Error::success();
}

/// The layer's KV rotation (`kv_rotation`: group, s1, s2 and where it is
/// applied), or none. The reference applies it at exactly those places and
/// keeps the cache exact, so that it is the layer without the cache's
/// rounding.
struct KVRotation {
  int64_t group = 0;
  std::vector<int> s1, s2;
  nlohmann::json applied;

  /// `x` (rows of `d` dims) rotated where `place` says, if it does.
  void apply(const char *place, Vec &x) const {
    if (!group || applied[place].is_null())
      return;
    x = ref::hadamard(x, group, s1, s2, applied[place] == "inverse");
  }
};

Result<KVRotation> readKVRotation(const nlohmann::json &l, int64_t d) {
  KVRotation r;
  if (!l.contains("kv_rotation") || l["kv_rotation"].is_null())
    return r;
  const nlohmann::json &j = l["kv_rotation"];
  auto signs = [&](const char *key, std::vector<int> &out) {
    if (!j.contains(key) || !j[key].is_array())
      return false;
    for (const nlohmann::json &v : j[key]) {
      if (!v.is_number_integer() || (v != 1 && v != -1))
        return false;
      out.push_back(v.get<int>());
    }
    return true;
  };
  if (!j.is_object() || !j.contains("group") ||
      !j["group"].is_number_integer() || !signs("s1", r.s1) ||
      !signs("s2", r.s2) || !j.contains("applied") ||
      !j["applied"].is_object())
    return malformed("kv_rotation needs group, s1, s2 and applied");
  r.group = j["group"];
  if (r.group < 1 || (r.group & (r.group - 1)) || d % r.group != 0 ||
      int64_t(r.s1.size()) != r.group || int64_t(r.s2.size()) != r.group)
    return malformed("kv_rotation's group must be a power of two dividing "
                     "head_dim, with that many signs");
  r.applied = j["applied"];
  for (const char *place : {"q", "k_write", "k_read", "v_write", "v_read",
                            "output"})
    if (!r.applied.contains(place) ||
        !(r.applied[place].is_null() || r.applied[place] == "forward" ||
          r.applied[place] == "inverse"))
      return malformed(std::string("kv_rotation.applied.") + place +
                       " must be null, \"forward\" or \"inverse\"");
  return r;
}

} // namespace

Result<std::vector<double>> referenceLayer(const Bundle &bundle,
                                           const Tensor &hidden) {
  using R = Result<std::vector<double>>;
  const nlohmann::json &m = bundle.manifest();
  if (!m.contains("layer"))
    return R::failure("the bundle's manifest describes no standard attention "
                      "layer, so there is no reference for it");
  const nlohmann::json &l = m["layer"];
  if (!hasLayerKeys(l))
    return R::failure("manifest.json: the layer description is malformed");
  if (Error err = checkProjectionNames(bundle, l))
    return err;
  Result<LayerGeometry> geometry = readGeometry(bundle, l);
  if (!geometry)
    return R::failure(geometry.error());
  const LayerGeometry &g = *geometry;

  int64_t t = hidden.shape[0];
  Vec x = hidden.toDoubles();
  Vec q = project(bundle, l["q_proj"], x, t, g.e, g.qWidth);
  Vec k = project(bundle, l["k_proj"], x, t, g.e, g.kvWidth);
  Vec v = project(bundle, l["v_proj"], x, t, g.e, g.kvWidth);
  if (Error err = normalizeQK(bundle, l, g, t, q, k))
    return err;
  if (Error err = applyRope(l["rope"], g, t, q, k))
    return err;
  Result<KVRotation> rotation = readKVRotation(l, g.d);
  if (!rotation)
    return R::failure(rotation.error());
  rotation->apply("q", q);
  rotation->apply("k_write", k);
  rotation->apply("k_read", k);
  rotation->apply("v_write", v);
  rotation->apply("v_read", v);
  Vec o = ref::sdpa(q, k, v, t, t, g.hq, g.hkv, g.d, g.d, /*causal=*/true,
                    std::nullopt, g.scale);
  rotation->apply("output", o);
  return project(bundle, l["o_proj"], o, t, g.hq * g.d, g.e);
}

} // namespace rotor::rt
