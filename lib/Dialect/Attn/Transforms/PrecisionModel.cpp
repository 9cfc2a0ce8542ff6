//===- PrecisionModel.cpp - Value ranges and rounding error of a layer ----===//
//
// The layer is evaluated in f64 on sampled tokens (synthetic rows of the
// declared input norm, or calibration rows) at positions spread over the
// context. Each rounding site then injects its unit variance (the squared
// values it rounds) and the model carries variances, not values, to the
// output: through projections as W^2, through a norm by its gain over the
// row's RMS, through RoPE by cos^2/sin^2, and through SDPA by the softmax's
// first-order response. Errors that differ per key (a cache's rounding)
// add incoherently over keys, sum p_j^2 ...; Q's error is shared by every
// key of a query, so it is bounded coherently (Cauchy-Schwarz over the
// keys' spread). The output variance of a plan is the sum of every site's
// unit response times its type's u^2/3.
//
//===----------------------------------------------------------------------===//

#include "rotor/Dialect/Attn/Transforms/PrecisionModel.h"

#include "rotor/Dialect/Attn/IR/RopeFrequencies.h"
#include "rotor/Import/Checkpoint.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::precision;

//===----------------------------------------------------------------------===//
// Types and plans
//===----------------------------------------------------------------------===//

StringRef precision::storageName(Storage s) {
  switch (s) {
  case Storage::F32:
    return "f32";
  case Storage::F16:
    return "f16";
  case Storage::BF16:
    return "bf16";
  }
  llvm_unreachable("storage");
}

std::optional<Storage> precision::parseStorage(StringRef name) {
  return llvm::StringSwitch<std::optional<Storage>>(name)
      .Case("f32", Storage::F32)
      .Case("f16", Storage::F16)
      .Case("bf16", Storage::BF16)
      .Default(std::nullopt);
}

FloatType precision::storageType(MLIRContext *ctx, Storage s) {
  switch (s) {
  case Storage::F32:
    return Float32Type::get(ctx);
  case Storage::F16:
    return Float16Type::get(ctx);
  case Storage::BF16:
    return BFloat16Type::get(ctx);
  }
  llvm_unreachable("storage");
}

double precision::unitRoundoff(Storage s) {
  switch (s) {
  case Storage::F32:
    return std::ldexp(1.0, -24);
  case Storage::F16:
    return std::ldexp(1.0, -11);
  case Storage::BF16:
    return std::ldexp(1.0, -8);
  }
  llvm_unreachable("storage");
}

int64_t precision::storageBytes(Storage s) { return s == Storage::F32 ? 4 : 2; }

double precision::storageMax(Storage s) {
  return s == Storage::F16 ? 65504.0 : 3.0e38;
}

StringRef precision::projectionName(Projection p) {
  static const char *names[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
  return names[p];
}

/// The variance of a round-to-nearest error, uniform within +-u relative.
static double roundingVariance(Storage s) {
  double u = unitRoundoff(s);
  return u * u / 3;
}

std::optional<Plan> Plan::named(StringRef name) {
  Plan plan;
  Storage b = Storage::BF16;
  if (name == "f32")
    return plan;
  if (name == "q-f32") {
    plan.keyCache = plan.valueCache = b;
    return plan;
  }
  if (name != "bf16" && name != "rope-f32")
    return std::nullopt;
  plan.weights = {b, b, b, b};
  plan.biases = plan.projectionOutputs = plan.query = b;
  plan.keyCache = plan.valueCache = plan.sdpaCompute = b;
  plan.attentionOutput = plan.layerOutput = b;
  plan.ropeCompute = name == "bf16" ? b : Storage::F32;
  return plan;
}

llvm::Expected<Plan> Plan::parse(StringRef spec) {
  auto fail = [&](const Twine &why) {
    return llvm::createStringError("precision plan '" + spec + "': " + why);
  };
  SmallVector<StringRef> parts;
  spec.split(parts, ',');
  std::optional<Plan> plan = named(parts.front().trim());
  if (!plan)
    return fail("'" + parts.front() +
                "' is not a plan (f32, bf16, rope-f32, q-f32)");
  for (StringRef part : llvm::drop_begin(parts)) {
    auto [key, value] = part.trim().split('=');
    if (key == "split" && value.empty()) {
      plan->splitKeyBias = true;
      continue;
    }
    std::optional<Storage> type = parseStorage(value);
    if (!type)
      return fail("'" + part + "': expected split or KEY=f32|f16|bf16");
    if (key == "weights")
      plan->weights = {*type, *type, *type, *type};
    else if (key == "q")
      plan->query = *type;
    else if (key == "kv")
      plan->keyCache = plan->valueCache = *type;
    else if (key == "sdpa")
      plan->sdpaCompute = *type;
    else
      return fail("unknown key '" + key + "' (weights, q, kv, sdpa, split)");
  }
  return *plan;
}

std::string Plan::describe() const {
  auto n = [](Storage s) { return storageName(s).str(); };
  return llvm::formatv("weights q/k/v/o {0}/{1}/{2}/{3}, biases {4}, "
                       "projection outputs {5}, RoPE in {6}, Q {7}, K cache "
                       "{8}{9}, V cache {10}, SDPA in {11}, attention output "
                       "{12}, layer output {13}",
                       n(weights[0]), n(weights[1]), n(weights[2]),
                       n(weights[3]), n(biases), n(projectionOutputs),
                       n(ropeCompute), n(query), n(keyCache),
                       splitKeyBias ? " + bias split" : "", n(valueCache),
                       n(sdpaCompute), n(attentionOutput), n(layerOutput))
      .str();
}

bool Cost::operator<(const Cost &o) const {
  if (kvBytesPerToken != o.kvBytesPerToken)
    return kvBytesPerToken < o.kvBytesPerToken;
  if (weightBytes != o.weightBytes)
    return weightBytes < o.weightBytes;
  return compute < o.compute;
}

//===----------------------------------------------------------------------===//
// Matching the layer
//===----------------------------------------------------------------------===//

namespace {

/// Follows `v` back through what only moves or stores values (captures,
/// head splits, casts, caches) and the norm and RoPE of Q/K, recording
/// them in `ops`, to the projection.
LinearOp projectionBehind(Value v, LayerOps &ops, bool keys) {
  v = traceKVCacheWrite(v).source;
  while (Operation *def = v.getDefiningOp()) {
    if (auto capture = dyn_cast<CaptureOp>(def)) {
      v = capture.getInput();
    } else if (auto expand = dyn_cast<tensor::ExpandShapeOp>(def)) {
      v = expand.getSrc();
    } else if (auto rope = dyn_cast<RopeOp>(def)) {
      (keys ? ops.keyRope : ops.queryRope) = rope;
      v = rope.getInput();
    } else if (auto norm = dyn_cast<RmsNormOp>(def)) {
      (keys ? ops.keyNorm : ops.queryNorm) = norm;
      v = norm.getInput();
    } else if (isa<arith::ExtFOp, arith::TruncFOp>(def)) {
      v = def->getOperand(0);
    } else if (auto linear = dyn_cast<LinearOp>(def)) {
      return linear;
    } else {
      ops.unknownOp = def;
      ops.unknownReason = "the error model does not cover '" +
                          def->getName().getStringRef().str() +
                          "' between a projection and SDPA";
      return nullptr;
    }
    v = traceKVCacheWrite(v).source;
  }
  return nullptr;
}

} // namespace

LayerOps precision::matchLayer(SdpaOp sdpa) {
  LayerOps ops;
  ops.sdpa = sdpa;
  auto unknown = [&](Operation *op, const Twine &why) {
    if (!ops.unknownOp) {
      ops.unknownOp = op;
      ops.unknownReason = why.str();
    }
    return ops;
  };
  ops.projections[QProj] = projectionBehind(sdpa.getQuery(), ops, false);
  ops.projections[KProj] = projectionBehind(sdpa.getKey(), ops, true);
  LayerOps ignored;
  ops.projections[VProj] = projectionBehind(sdpa.getValue(), ignored, true);
  if (ignored.queryRope || ignored.keyRope || ignored.keyNorm)
    return unknown(sdpa, "V passes through a norm or RoPE");
  if (ignored.unknownOp)
    return unknown(ignored.unknownOp, ignored.unknownReason);
  if (ops.unknownOp)
    return ops;
  for (int p = QProj; p <= VProj; ++p)
    if (!ops.projections[p])
      return unknown(sdpa, "Q, K or V was written by another call (a cache "
                           "filled elsewhere), not by a projection here");
  if (!ops.queryRope || !ops.keyRope)
    return unknown(sdpa, "Q or K has no RoPE");
  Value x = ops.projections[QProj].getInput();
  if (ops.projections[KProj].getInput() != x ||
      ops.projections[VProj].getInput() != x || !isa<BlockArgument>(x))
    return unknown(ops.projections[QProj],
                   "Q, K and V do not project the same entry-point argument");
  ops.input = cast<BlockArgument>(x);
  // SDPA -> [collapse] -> o_proj.
  Value out = sdpa.getResult();
  while (out.hasOneUse()) {
    Operation *user = *out.getUsers().begin();
    if (auto linear = dyn_cast<LinearOp>(user)) {
      ops.projections[OProj] = linear;
      break;
    }
    if (!isa<tensor::CollapseShapeOp, CaptureOp>(user))
      return unknown(user, "the error model does not cover '" +
                               user->getName().getStringRef() +
                               "' between SDPA and the output projection");
    out = user->getResult(0);
  }
  if (!ops.projections[OProj])
    return unknown(sdpa, "SDPA's output does not reach one output projection");
  if (ops.sdpa.getKeyBias())
    return unknown(sdpa, "the K bias is already split (run "
                         "attn-select-precision before attn-split-rope-bias)");
  return ops;
}

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

namespace {

struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> data;
  double at(int64_t r, int64_t c) const { return data[r * cols + c]; }
};

llvm::Error failAt(Operation *op, const Twine &message) {
  std::string loc;
  llvm::raw_string_ostream os(loc);
  op->getLoc().print(os);
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 loc + ": " + message);
}

double halfToDouble(uint16_t bits, bool bf16) {
  if (bf16) {
    uint32_t w = uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &w, 4);
    return f;
  }
  return llvm::APFloat(llvm::APFloat::IEEEhalf(), llvm::APInt(16, bits))
      .convertToDouble();
}

/// The elements of an F32, BF16 or F16 tensor as doubles (empty for any
/// other dtype).
std::vector<double> floatValues(const rotor::safetensors::TensorView &t) {
  size_t size = t.dtype == "F32" ? 4 : (t.dtype == "BF16" || t.dtype == "F16") ? 2 : 0;
  std::vector<double> out;
  if (!size)
    return out;
  out.resize(t.bytes.size() / size);
  for (size_t i = 0; i < out.size(); ++i) {
    const char *p = t.bytes.data() + i * size;
    if (size == 4) {
      float f;
      std::memcpy(&f, p, 4);
      out[i] = f;
    } else {
      uint16_t bits;
      std::memcpy(&bits, p, 2);
      out[i] = halfToDouble(bits, t.dtype == "BF16");
    }
  }
  return out;
}

/// `v` rounded to bf16 (to nearest, ties to even, through f32).
double roundToBF16(double v) {
  float f = float(v);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7fff + ((bits >> 16) & 1);
  bits &= 0xffff0000u;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// The values of `v` (an attn.param, or a row permutation of one) from the
/// checkpoint, in the IR's row order.
llvm::Expected<Matrix> loadValues(Value v, rotor::import::CheckpointWeights &w) {
  Operation *def = v.getDefiningOp();
  if (auto permute = dyn_cast_or_null<PermuteOp>(def)) {
    llvm::Expected<Matrix> inner = loadValues(permute.getInput(), w);
    if (!inner)
      return inner.takeError();
    if (permute.getDim() != 0)
      return failAt(def, "attn-select-precision: only row permutations of "
                         "weights are modelled");
    Matrix out = *inner;
    ArrayRef<int64_t> perm = permute.getPermutation();
    for (int64_t r = 0; r < out.rows; ++r)
      std::copy_n(inner->data.begin() + perm[r] * out.cols, out.cols,
                  out.data.begin() + r * out.cols);
    return out;
  }
  auto param = dyn_cast_or_null<ParamOp>(def);
  if (!param)
    return failAt(def ? def : v.getParentBlock()->getParentOp(),
                  "attn-select-precision: the error model reads weights from "
                  "attn.param (or a permutation of one); this value is "
                  "computed");
  llvm::Expected<const rotor::safetensors::TensorView *> view =
      w.lookup(param.getName());
  if (!view)
    return view.takeError();
  const auto &t = **view;
  Matrix m;
  m.rows = t.shape.empty() ? 1 : t.shape[0];
  m.cols = t.shape.size() > 1 ? t.shape[1] : 1;
  m.data = floatValues(t);
  if (m.data.empty())
    return failAt(param, "attn-select-precision: weight '" + param.getName() +
                             "' has dtype " + t.dtype +
                             " (expected F32, BF16 or F16)");
  for (double v : m.data)
    if (!std::isfinite(v))
      return failAt(param, "attn-select-precision: weight '" +
                               param.getName() + "' has a non-finite value");
  return m;
}

/// A deterministic standard normal stream (splitmix64 and Box-Muller), so
/// that the model's samples are the same on every machine.
class Normal {
public:
  explicit Normal(uint64_t seed) : state(seed) {}
  double next() {
    double u1 = (double(bits() >> 11) + 0.5) * 0x1.0p-53;
    double u2 = double(bits() >> 11) * 0x1.0p-53;
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }

private:
  uint64_t bits() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t state;
};

} // namespace

//===----------------------------------------------------------------------===//
// Evaluating the layer
//===----------------------------------------------------------------------===//

namespace {

/// The projection's input dimension, output dimension, and gain/RoPE of the
/// head stage it feeds.
struct HeadPath {
  RmsNormOp norm;
  Matrix normGain;
  RopeOp rope;
  SmallVector<double> invFreq;
  double attentionFactor = 1;
  int64_t heads = 0;
};

/// The layer's exact values on the sampled tokens, and the variance
/// propagation from each stage to the output.
class Evaluation {
public:
  int64_t S = 0, hidden = 0, hq = 0, hkv = 0, d = 0;
  double scale = 1;
  std::vector<int64_t> pos;
  Matrix x;
  std::array<Matrix, 4> w, b;
  std::array<HeadPath, 2> paths; // Q, K
  // Exact values: projection outputs [S, rows] and sum W^2 x^2.
  std::array<std::vector<double>, 4> y, z2;
  /// The sum of the squared partial sums of each projection output's dot
  /// product, in order: the variance of its f32 accumulation per r32.
  std::array<std::vector<double>, 4> partials;
  // 1/RMS of each (token, head) row a norm divides by.
  std::array<std::vector<double>, 2> normScale;
  // SDPA's inputs [S, H, D], K without its bias, the RoPE compute units.
  std::vector<double> qIn, kIn, kNoBias, vIn;
  std::array<std::vector<double>, 2> ropeUnit, angleUnit;
  // p[(t * hq + h) * S + s] for s <= t; SDPA's output [S, hq*d]; the
  // layer's output [S, hidden].
  std::vector<double> probs, o, out;
  /// W_o squared elementwise and transposed, on first use.
  mutable std::vector<double> outputSquared;

  double keyWeight(int64_t s, int64_t t) const {
    return s == t ? 1.0 : double(pos[s + 1] - pos[s]);
  }
  void project(int p, const std::vector<double> &in, int64_t cols);
  void headStage(int path, std::vector<double> &v, bool withRoundingUnit);
  void rotateRows(const HeadPath &hp, std::vector<double> &v,
                  std::vector<double> &unit, std::vector<double> &angles) const;
  std::vector<double> headVariance(int path, std::vector<double> e) const;
  void attend();
  enum class SdpaTerm { Inputs, QKProducts, Scores, Probabilities };
  std::vector<double> sdpaVariance(const std::vector<double> *eq,
                                   const std::vector<double> *ek,
                                   const std::vector<double> *ev,
                                   SdpaTerm term = SdpaTerm::Inputs) const;
  std::vector<double> outputVariance(const std::vector<double> &eo) const;
  // Deterministic shifts (a bias rounded once is the same error for every
  // token): carried linearly, not as variances.
  std::vector<double> headShift(int path, std::vector<double> dy) const;
  std::vector<double> sdpaShift(const std::vector<double> *dq,
                                const std::vector<double> *dk) const;
  std::vector<double> outputShift(const std::vector<double> &dout) const;
  /// The keys a query's sensitivity is priced over (see sdpaVariance).
  struct Key {
    int64_t s;
    double p, weight;
  };
  void pricedKeys(int64_t t, int64_t h, std::vector<Key> &keys,
                  std::vector<double> &ot) const;
};

void Evaluation::project(int p, const std::vector<double> &in, int64_t cols) {
  const Matrix &m = w[p];
  y[p].assign(S * m.rows, 0);
  z2[p].assign(S * m.rows, 0);
  partials[p].assign(S * m.rows, 0);
  for (int64_t t = 0; t < S; ++t)
    for (int64_t i = 0; i < m.rows; ++i) {
      double acc = b[p].data.empty() ? 0 : b[p].data[i], sq = 0, part = 0;
      const double *row = &m.data[i * cols];
      const double *xt = &in[t * cols];
      for (int64_t j = 0; j < cols; ++j) {
        double prod = row[j] * xt[j];
        acc += prod;
        sq += prod * prod;
        // Each addition of the f32 sum rounds its partial sum.
        part += acc * acc;
      }
      y[p][t * m.rows + i] = acc;
      z2[p][t * m.rows + i] = sq;
      partials[p][t * m.rows + i] = part;
    }
}

/// Pairs (a, c) of a RoPE layout over `r` rotary dims.
static std::pair<int64_t, int64_t> ropePair(RopeOp rope, int64_t i) {
  int64_t r = rope.getRotaryDim();
  if (rope.getLayout() == RopeLayout::HalfSplit)
    return {i, i + r / 2};
  return {2 * i, 2 * i + 1};
}

/// RoPE of every (token, head) row of `v` at its sample's position, in
/// place, with the units of RoPE's compute rounding and of its angle's
/// rounding for each element.
void Evaluation::rotateRows(const HeadPath &hp, std::vector<double> &v,
                            std::vector<double> &unit,
                            std::vector<double> &angles) const {
  RopeOp rope = hp.rope;
  int64_t pairs = int64_t(rope.getRotaryDim()) / 2;
  for (int64_t t = 0; t < S; ++t)
    for (int64_t h = 0; h < hp.heads; ++h) {
      double *row = &v[(t * hp.heads + h) * d];
      double *u = &unit[(t * hp.heads + h) * d];
      double *au = &angles[(t * hp.heads + h) * d];
      for (int64_t i = 0; i < pairs; ++i) {
        auto [a, c] = ropePair(rope, i);
        double angle = double(pos[t]) * hp.invFreq[i];
        double cs = std::cos(angle) * hp.attentionFactor,
               sn = std::sin(angle) * hp.attentionFactor;
        double xa = row[a], xc = row[c];
        row[a] = xa * cs - xc * sn;
        row[c] = xc * cs + xa * sn;
        // Operands and cos/sin rounded to the compute type; the angle is
        // formed in f64 and reduced to [-pi, pi] before its f32 cos/sin
        // (RopeEmitter), so its error, u·|phi| radians, does not grow with
        // the position.
        u[a] = 2 * (xa * xa * cs * cs + xc * xc * sn * sn);
        u[c] = 2 * (xc * xc * cs * cs + xa * xa * sn * sn);
        double reduced = std::remainder(angle, 2 * M_PI);
        au[a] = reduced * reduced * row[c] * row[c];
        au[c] = reduced * reduced * row[a] * row[a];
      }
    }
}

/// Norm and RoPE of one head stage, in place, recording the norm's scale and
/// the unit of RoPE's compute rounding (operands and cos/sin rounded).
void Evaluation::headStage(int path, std::vector<double> &v,
                           bool withRoundingUnit) {
  HeadPath &hp = paths[path];
  if (hp.norm) {
    double eps = hp.norm.getEpsilon().convertToDouble();
    normScale[path].assign(S * hp.heads, 0);
    for (int64_t row = 0; row < S * hp.heads; ++row) {
      double ss = 0;
      for (int64_t k = 0; k < d; ++k)
        ss += v[row * d + k] * v[row * d + k];
      double inv = 1 / std::sqrt(ss / d + eps);
      normScale[path][row] = inv;
      for (int64_t k = 0; k < d; ++k)
        v[row * d + k] *= inv * hp.normGain.data[k];
    }
  }
  std::vector<double> unit(v.size(), 0), angles(v.size(), 0);
  rotateRows(hp, v, unit, angles);
  if (withRoundingUnit) {
    ropeUnit[path] = std::move(unit);
    angleUnit[path] = std::move(angles);
  }
}

/// A variance at a projection's output, carried through its norm and RoPE.
std::vector<double> Evaluation::headVariance(int path,
                                             std::vector<double> e) const {
  const HeadPath &hp = paths[path];
  if (hp.norm)
    for (int64_t row = 0; row < S * hp.heads; ++row)
      for (int64_t k = 0; k < d; ++k) {
        double f = normScale[path][row] * hp.normGain.data[k];
        e[row * d + k] *= f * f;
      }
  RopeOp rope = hp.rope;
  int64_t pairs = int64_t(rope.getRotaryDim()) / 2;
  double af2 = hp.attentionFactor * hp.attentionFactor;
  for (int64_t t = 0; t < S; ++t)
    for (int64_t h = 0; h < hp.heads; ++h) {
      double *row = &e[(t * hp.heads + h) * d];
      for (int64_t i = 0; i < pairs; ++i) {
        auto [a, c] = ropePair(rope, i);
        double angle = double(pos[t]) * hp.invFreq[i];
        double c2 = std::cos(angle) * std::cos(angle), s2 = 1 - c2;
        double ea = row[a], ec = row[c];
        row[a] = af2 * (c2 * ea + s2 * ec);
        row[c] = af2 * (c2 * ec + s2 * ea);
      }
    }
  return e;
}

/// The exact attention: probabilities (keys weighted by the positions each
/// sample stands for), SDPA's output and the layer's output.
void Evaluation::attend() {
  int64_t group = hq / hkv;
  probs.assign(S * hq * S, 0);
  o.assign(S * hq * d, 0);
  std::vector<double> score(S);
  for (int64_t t = 0; t < S; ++t)
    for (int64_t h = 0; h < hq; ++h) {
      int64_t g = h / group;
      const double *q = &qIn[(t * hq + h) * d];
      double mx = -INFINITY;
      for (int64_t s = 0; s <= t; ++s) {
        const double *k = &kIn[(s * hkv + g) * d];
        double dot = 0;
        for (int64_t i = 0; i < d; ++i)
          dot += q[i] * k[i];
        score[s] = dot * scale;
        mx = std::max(mx, score[s]);
      }
      double z = 0;
      double *p = &probs[(t * hq + h) * S];
      for (int64_t s = 0; s <= t; ++s) {
        p[s] = keyWeight(s, t) * std::exp(score[s] - mx);
        z += p[s];
      }
      double *ot = &o[(t * hq + h) * d];
      for (int64_t s = 0; s <= t; ++s) {
        p[s] /= z;
        const double *v = &vIn[(s * hkv + g) * d];
        for (int64_t i = 0; i < d; ++i)
          ot[i] += p[s] * v[i];
      }
    }
  project(OProj, o, hq * d);
  out = y[OProj];
}

/// The variance of SDPA's output [S, hq*d] from variances of its inputs, to
/// first order in the softmax: a key's score error moves its probability,
/// dp_j = p_j (ds_j - sum p ds), so do = sum_j p_j ds_j (v_j - o). Errors of
/// different keys are independent (sum p_j^2 / w_j over a sample standing
/// for w_j keys); Q's error is shared by all keys of a query and bounded by
/// Cauchy-Schwarz over the keys' spread under p.
std::vector<double> Evaluation::sdpaVariance(const std::vector<double> *eq,
                                             const std::vector<double> *ek,
                                             const std::vector<double> *ev,
                                             SdpaTerm term) const {
  int64_t group = hq / hkv;
  std::vector<double> var(S * hq * d, 0), spreadV(d), meanK(d), spreadK(d);
  std::vector<double> ot(d);
  std::vector<Key> keys;
  for (int64_t t = 0; t < S; ++t)
    for (int64_t h = 0; h < hq; ++h) {
      int64_t g = h / group;
      const double *q = &qIn[(t * hq + h) * d];
      double *vt = &var[(t * hq + h) * d];
      pricedKeys(t, h, keys, ot);
      if (eq) {
        std::fill(spreadV.begin(), spreadV.end(), 0);
        std::fill(meanK.begin(), meanK.end(), 0);
        std::fill(spreadK.begin(), spreadK.end(), 0);
        for (const Key &key : keys)
          for (int64_t i = 0; i < d; ++i)
            meanK[i] += key.p * kIn[(key.s * hkv + g) * d + i];
        for (const Key &key : keys)
          for (int64_t i = 0; i < d; ++i) {
            double dk = kIn[(key.s * hkv + g) * d + i] - meanK[i];
            double dv = vIn[(key.s * hkv + g) * d + i] - ot[i];
            spreadK[i] += key.p * dk * dk;
            spreadV[i] += key.p * dv * dv;
          }
        double a = 0;
        for (int64_t i = 0; i < d; ++i)
          a += (*eq)[(t * hq + h) * d + i] * spreadK[i];
        for (int64_t i = 0; i < d; ++i)
          vt[i] += scale * scale * a * spreadV[i];
      }
      for (const Key &key : keys) {
        int64_t s = key.s;
        double pw = key.p * key.p / key.weight;
        const double *v = &vIn[(s * hkv + g) * d];
        if (ek || term == SdpaTerm::QKProducts || term == SdpaTerm::Scores) {
          const double *k = &kIn[(s * hkv + g) * d];
          double c = 0, dot = 0, part = 0;
          for (int64_t i = 0; i < d; ++i) {
            c += q[i] * q[i] *
                 (ek ? (*ek)[(s * hkv + g) * d + i] : k[i] * k[i]);
            dot += q[i] * k[i];
            part += dot * dot;
          }
          // The q·k sum in f32: each addition rounds its partial sum.
          if (term == SdpaTerm::QKProducts)
            c = part;
          // A score is rounded a few times after its sum (the scale, the
          // log2(e) of exp2, the running max): each an error of u·|s|.
          if (term == SdpaTerm::Scores)
            c = 3 * dot * dot;
          c *= pw * scale * scale;
          for (int64_t i = 0; i < d; ++i)
            vt[i] += c * (v[i] - ot[i]) * (v[i] - ot[i]);
        }
        if (ev)
          for (int64_t i = 0; i < d; ++i)
            vt[i] += pw * (*ev)[(s * hkv + g) * d + i];
        if (term == SdpaTerm::Probabilities)
          for (int64_t i = 0; i < d; ++i)
            vt[i] += pw * v[i] * v[i];
      }
    }
  return var;
}

/// A query one key dominates is priced as a tie between its two strongest
/// keys: among many queries some are split so, and a tie is where a score's
/// error moves the output most. Otherwise every key with its probability
/// and the positions it stands for. `ot` is the priced output.
void Evaluation::pricedKeys(int64_t t, int64_t h, std::vector<Key> &keys,
                            std::vector<double> &ot) const {
  const double *p = &probs[(t * hq + h) * S];
  int64_t g = h / (hq / hkv);
  keys.clear();
  int64_t top = 0, second = -1;
  for (int64_t s = 1; s <= t; ++s)
    if (p[s] > p[top])
      top = s;
  for (int64_t s = 0; s <= t; ++s)
    if (s != top && (second < 0 || p[s] > p[second]))
      second = s;
  if (p[top] >= 0.5 && second >= 0) {
    keys = {{top, 0.5, 1.0}, {second, 0.5, 1.0}};
  } else {
    for (int64_t s = 0; s <= t; ++s)
      keys.push_back({s, p[s], keyWeight(s, t)});
  }
  std::fill(ot.begin(), ot.end(), 0);
  for (const Key &key : keys)
    for (int64_t i = 0; i < d; ++i)
      ot[i] += key.p * vIn[(key.s * hkv + g) * d + i];
}

std::vector<double> Evaluation::headShift(int path,
                                          std::vector<double> dy) const {
  const HeadPath &hp = paths[path];
  if (hp.norm)
    for (int64_t row = 0; row < S * hp.heads; ++row)
      for (int64_t k = 0; k < d; ++k)
        dy[row * d + k] *= normScale[path][row] * hp.normGain.data[k];
  // A shift is carried through RoPE as values are: the same rotation.
  std::vector<double> unit(dy.size()), angles(dy.size());
  rotateRows(hp, dy, unit, angles);
  return dy;
}

/// SDPA's output shift from shifts of Q or K, to first order:
/// do = sum_j p_j (ds_j - sum p ds) (v_j - o).
std::vector<double> Evaluation::sdpaShift(const std::vector<double> *dq,
                                          const std::vector<double> *dk) const {
  int64_t group = hq / hkv;
  std::vector<double> shift(S * hq * d, 0), ot(d);
  std::vector<Key> keys;
  std::vector<double> ds;
  for (int64_t t = 0; t < S; ++t)
    for (int64_t h = 0; h < hq; ++h) {
      int64_t g = h / group;
      pricedKeys(t, h, keys, ot);
      const double *q = &qIn[(t * hq + h) * d];
      ds.assign(keys.size(), 0);
      double mean = 0;
      for (size_t j = 0; j < keys.size(); ++j) {
        const double *k = &kIn[(keys[j].s * hkv + g) * d];
        double v = 0;
        for (int64_t i = 0; i < d; ++i) {
          if (dq)
            v += (*dq)[(t * hq + h) * d + i] * k[i];
          if (dk)
            v += q[i] * (*dk)[(keys[j].s * hkv + g) * d + i];
        }
        ds[j] = v * scale;
        mean += keys[j].p * ds[j];
      }
      double *out = &shift[(t * hq + h) * d];
      for (size_t j = 0; j < keys.size(); ++j) {
        const double *v = &vIn[(keys[j].s * hkv + g) * d];
        for (int64_t i = 0; i < d; ++i)
          out[i] += keys[j].p * (ds[j] - mean) * (v[i] - ot[i]);
      }
    }
  return shift;
}

std::vector<double> Evaluation::outputShift(const std::vector<double> &dout) const {
  const Matrix &m = w[OProj];
  std::vector<double> shift(S * hidden, 0);
  for (int64_t t = 0; t < S; ++t)
    for (int64_t c = 0; c < hidden; ++c) {
      double acc = 0;
      for (int64_t k = 0; k < m.cols; ++k)
        acc += m.data[c * m.cols + k] * dout[t * m.cols + k];
      shift[t * hidden + c] = acc;
    }
  return shift;
}

/// A variance at o_proj's input carried to the layer's output.
std::vector<double> Evaluation::outputVariance(
    const std::vector<double> &eo) const {
  int64_t cols = w[OProj].cols;
  if (outputSquared.empty()) {
    // Transposed, [cols, hidden], so that the update below is a vector
    // axpy per input dim.
    outputSquared.resize(cols * hidden);
    for (int64_t c = 0; c < hidden; ++c)
      for (int64_t k = 0; k < cols; ++k) {
        double v = w[OProj].data[c * cols + k];
        outputSquared[k * hidden + c] = v * v;
      }
  }
  std::vector<double> var(S * hidden, 0);
  for (int64_t t = 0; t < S; ++t) {
    double *out = &var[t * hidden];
    for (int64_t k = 0; k < cols; ++k) {
      double e = eo[t * cols + k];
      if (e == 0)
        continue;
      const double *row = &outputSquared[k * hidden];
      for (int64_t c = 0; c < hidden; ++c)
        out[c] += row[c] * e;
    }
  }
  return var;
}

} // namespace

//===----------------------------------------------------------------------===//
// LayerModel
//===----------------------------------------------------------------------===//

namespace {

/// Sample positions: the first 8 (few keys, the least averaging), then
/// spread evenly to the end of the context.
std::vector<int64_t> samplePositions(int64_t context, int64_t samples) {
  std::vector<int64_t> pos;
  int64_t head = std::min<int64_t>({8, context, samples});
  for (int64_t i = 0; i < head; ++i)
    pos.push_back(i);
  int64_t rest = std::min(samples, context) - head;
  for (int64_t i = 1; i <= rest; ++i)
    pos.push_back(head - 1 + (context - head) * i / rest);
  pos.erase(std::unique(pos.begin(), pos.end()), pos.end());
  return pos;
}

double rowNorm(const Matrix &m, int64_t r, const Matrix *gain) {
  double ss = 0;
  for (int64_t c = 0; c < m.cols; ++c) {
    double v = m.at(r, c) * (gain ? gain->data[c] : 1.0);
    ss += v * v;
  }
  return std::sqrt(ss);
}

} // namespace

const std::vector<double> &LayerModel::unit(StringRef name) const {
  for (const auto &[n, v] : units)
    if (n == name)
      return v;
  static const std::vector<double> none;
  return none;
}

namespace {

/// The layer's shapes, weights, norm gains and RoPE frequencies.
llvm::Error loadLayer(LayerOps &ops, rotor::import::CheckpointWeights &weights,
                      Evaluation &ev) {
  auto qType = cast<RankedTensorType>(ops.sdpa.getQuery().getType());
  auto kType = cast<RankedTensorType>(ops.sdpa.getKey().getType());
  ev.hq = qType.getDimSize(1);
  ev.hkv = kType.getDimSize(1);
  ev.d = qType.getDimSize(2);
  ev.scale = ops.sdpa.getEffectiveScale();
  ev.hidden = ops.projections[OProj].getType().getDimSize(1);
  for (int p = QProj; p <= OProj; ++p) {
    LinearOp linear = ops.projections[p];
    llvm::Expected<Matrix> m = loadValues(linear.getWeight(), weights);
    if (!m)
      return m.takeError();
    ev.w[p] = std::move(*m);
    if (Value bias = linear.getBias()) {
      llvm::Expected<Matrix> bv = loadValues(bias, weights);
      if (!bv)
        return bv.takeError();
      ev.b[p] = std::move(*bv);
    }
  }
  std::array<RmsNormOp, 2> norms{ops.queryNorm, ops.keyNorm};
  std::array<RopeOp, 2> ropes{ops.queryRope, ops.keyRope};
  for (int path = 0; path < 2; ++path) {
    HeadPath &hp = ev.paths[path];
    hp.heads = path == 0 ? ev.hq : ev.hkv;
    hp.norm = norms[path];
    hp.rope = ropes[path];
    if (hp.norm) {
      llvm::Expected<Matrix> g = loadValues(hp.norm.getWeight(), weights);
      if (!g)
        return g.takeError();
      hp.normGain = std::move(*g);
    }
    std::optional<SmallVector<double>> freq =
        getStaticInverseFrequencies(hp.rope);
    if (!freq)
      return failAt(hp.rope, "attn-select-precision: dynamic NTK scaling's "
                             "frequencies depend on the call; the error "
                             "model needs static ones");
    hp.invFreq = *freq;
    hp.attentionFactor = getRopeAttentionFactor(hp.rope);
  }
  return llvm::Error::success();
}

/// The tokens the layer is evaluated on: calibration rows at their
/// positions, or rows of the declared norm (times the input norm's gain)
/// over the context. `inputNorm` is the largest input row norm.
llvm::Error sampleTokens(LayerOps &ops, const InputModel &input,
                         rotor::import::CheckpointWeights &weights,
                         Evaluation &ev, int64_t &contextLength, Matrix &gain,
                         bool &haveGain, double &inputNorm) {
  haveGain = !input.normGain.empty();
  if (haveGain) {
    llvm::Expected<const rotor::safetensors::TensorView *> view =
        weights.lookup(input.normGain);
    if (!view)
      return view.takeError();
    gain.rows = ev.hidden;
    gain.cols = 1;
    const auto &t = **view;
    gain.data = floatValues(t);
    if (gain.data.empty())
      return llvm::createStringError("attn-select-precision: the input norm's "
                                     "gain '" + input.normGain +
                                     "' is not a float tensor");
    if (int64_t(gain.data.size()) != ev.hidden)
      return llvm::createStringError(
          "attn-select-precision: the input norm's gain '" + input.normGain +
          "' does not have " + std::to_string(ev.hidden) + " elements");
  }
  double rms = input.rms > 0 ? input.rms : 1.0;
  inputNorm = std::sqrt(double(ev.hidden)) * rms;
  if (!input.rows.empty()) {
    int64_t total = input.rows.size() / ev.hidden;
    int64_t take = std::min<int64_t>(total, input.samples);
    inputNorm = 0;
    for (int64_t i = 0; i < take; ++i) {
      int64_t r = total * i / take;
      ev.pos.push_back(input.positions.empty() ? r : input.positions[r]);
      ev.x.data.insert(ev.x.data.end(), input.rows.begin() + r * ev.hidden,
                       input.rows.begin() + (r + 1) * ev.hidden);
    }
    for (int64_t r = 0; r < total; ++r) {
      double ss = 0;
      for (int64_t c = 0; c < ev.hidden; ++c)
        ss += input.rows[r * ev.hidden + c] * input.rows[r * ev.hidden + c];
      inputNorm = std::max(inputNorm, std::sqrt(ss));
    }
    haveGain = false; // the rows are the values: the gain is in them
    contextLength = ev.pos.back() + 1;
  } else {
    ev.pos = samplePositions(contextLength, input.samples);
    Normal normal(0x5eed0000ull + uint64_t(ev.hidden));
    for (size_t t = 0; t < ev.pos.size(); ++t) {
      std::vector<double> row(ev.hidden);
      double ss = 0;
      for (double &v : row) {
        v = normal.next();
        ss += v * v;
      }
      double f = inputNorm / std::sqrt(ss);
      for (int64_t c = 0; c < ev.hidden; ++c)
        row[c] *= f * (haveGain ? gain.data[c] : 1.0);
      ev.x.data.insert(ev.x.data.end(), row.begin(), row.end());
    }
  }
  ev.S = ev.pos.size();
  ev.x.rows = ev.S;
  ev.x.cols = ev.hidden;
  for (size_t t = 1; t < ev.pos.size(); ++t)
    if (ev.pos[t] <= ev.pos[t - 1])
      return llvm::createStringError(
          "attn-select-precision: calibration positions must increase");
  for (int p = QProj; p <= VProj; ++p)
    if (ev.w[p].cols != ev.hidden)
      return failAt(ops.projections[p], "attn-select-precision: the weight "
                                        "does not match the input's width");
  return llvm::Error::success();
}

/// Worst-case magnitudes (Cauchy-Schwarz over the input's norm).
Ranges worstCaseRanges(Evaluation &ev, const Matrix *gain, double inputNorm) {
  Ranges r;
  auto bound = [&](int p, int64_t i, bool withBias) {
    double reach = inputNorm * rowNorm(ev.w[p], i, gain);
    double bias = ev.b[p].data.empty() ? 0 : std::abs(ev.b[p].data[i]);
    return reach + (withBias ? bias : 0);
  };
  auto headRange = [&](int p, HeadPath &hp, bool withBias) {
    double best = 0;
    for (int64_t h = 0; h < hp.heads; ++h) {
      std::vector<double> ch(ev.d);
      for (int64_t k = 0; k < ev.d; ++k)
        ch[k] = hp.norm ? std::abs(hp.normGain.data[k]) * std::sqrt(ev.d)
                        : bound(p, h * ev.d + k, withBias);
      for (int64_t i = 0; i < int64_t(hp.rope.getRotaryDim()) / 2; ++i) {
        auto [a, c] = ropePair(hp.rope, i);
        double pair = std::hypot(ch[a], ch[c]) * hp.attentionFactor;
        ch[a] = ch[c] = pair;
      }
      best = std::max(best, *std::max_element(ch.begin(), ch.end()));
    }
    return best;
  };
  for (int p : {QProj, KProj})
    for (double v : ev.b[p].data)
      (p == QProj ? r.queryBiasMax : r.keyBiasMax) =
          std::max(p == QProj ? r.queryBiasMax : r.keyBiasMax, std::abs(v));
  r.query = headRange(QProj, ev.paths[0], true);
  r.key = headRange(KProj, ev.paths[1], true);
  r.keyWithoutBias = headRange(KProj, ev.paths[1], false);
  for (int64_t i = 0; i < ev.w[VProj].rows; ++i)
    r.value = std::max(r.value, bound(VProj, i, true));
  return r;
}

/// The layer's exact values on the sampled tokens.
void evaluateExactly(Evaluation &ev, bool keyNorm) {
  for (int p = QProj; p <= VProj; ++p)
    ev.project(p, ev.x.data, ev.hidden);
  ev.qIn = ev.y[QProj];
  ev.headStage(0, ev.qIn, true);
  ev.kIn = ev.y[KProj];
  ev.headStage(1, ev.kIn, true);
  if (!ev.b[KProj].data.empty() && !keyNorm) {
    ev.kNoBias = ev.y[KProj];
    int64_t rows = ev.w[KProj].rows;
    for (int64_t t = 0; t < ev.S; ++t)
      for (int64_t i = 0; i < rows; ++i)
        ev.kNoBias[t * rows + i] -= ev.b[KProj].data[i];
    ev.headStage(1, ev.kNoBias, false);
  }
  ev.vIn = ev.y[VProj];
  ev.attend();
}

/// Every rounding site's unit response at the output [S, hidden].
void unitResponses(
    Evaluation &ev,
    std::vector<std::pair<std::string, std::vector<double>>> &units,
    llvm::StringMap<double> &sums) {
  auto add = [&](StringRef name, std::vector<double> v) {
    double sum = 0;
    for (double e : v)
      sum += e;
    sums[name] = sum;
    units.emplace_back(name.str(), std::move(v));
  };
  auto square = [](std::vector<double> v) {
    for (double &e : v)
      e *= e;
    return v;
  };
  auto throughSdpa = [&](int p, const std::vector<double> &e) {
    if (p == QProj)
      return ev.outputVariance(ev.sdpaVariance(&e, nullptr, nullptr));
    if (p == KProj)
      return ev.outputVariance(ev.sdpaVariance(nullptr, &e, nullptr));
    return ev.outputVariance(ev.sdpaVariance(nullptr, nullptr, &e));
  };
  auto fromProjection = [&](int p, std::vector<double> e) {
    if (p != VProj)
      e = ev.headVariance(p, std::move(e));
    return throughSdpa(p, e);
  };
  for (int p = QProj; p <= VProj; ++p) {
    StringRef n = projectionName(Projection(p));
    add((n + ".proj").str(), fromProjection(p, ev.z2[p]));
    add((n + ".acc").str(), fromProjection(p, ev.partials[p]));
    add((n + ".out").str(), fromProjection(p, square(ev.y[p])));
    if (!ev.b[p].data.empty()) {
      // The bias's bf16 rounding, known exactly: the same shift for every
      // token, carried as a shift (the only narrower type plans give it).
      std::vector<double> shift(ev.y[p].size());
      int64_t rows = ev.w[p].rows;
      for (size_t i = 0; i < shift.size(); ++i)
        shift[i] = roundToBF16(ev.b[p].data[i % rows]) - ev.b[p].data[i % rows];
      std::vector<double> dout;
      if (p == VProj) {
        // Probabilities sum to 1: SDPA passes V's shift through.
        dout.assign(ev.S * ev.hq * ev.d, 0);
        for (int64_t t = 0; t < ev.S; ++t)
          for (int64_t h = 0; h < ev.hq; ++h)
            for (int64_t i = 0; i < ev.d; ++i)
              dout[(t * ev.hq + h) * ev.d + i] =
                  shift[(t * ev.hkv + h / (ev.hq / ev.hkv)) * ev.d + i];
      } else {
        std::vector<double> head = ev.headShift(p, std::move(shift));
        dout = p == QProj ? ev.sdpaShift(&head, nullptr)
                          : ev.sdpaShift(nullptr, &head);
      }
      add((n + ".bias").str(), square(ev.outputShift(dout)));
    }
  }
  if (!ev.b[KProj].data.empty()) {
    std::vector<double> y = ev.y[KProj];
    int64_t rows = ev.w[KProj].rows;
    for (size_t i = 0; i < y.size(); ++i)
      y[i] -= ev.b[KProj].data[i % rows];
    add("k_proj.out.split", fromProjection(KProj, square(y)));
  }
  add("q.rope", throughSdpa(QProj, ev.ropeUnit[0]));
  add("k.rope", throughSdpa(KProj, ev.ropeUnit[1]));
  add("q.store", throughSdpa(QProj, square(ev.qIn)));
  add("k.cache", throughSdpa(KProj, square(ev.kIn)));
  if (!ev.kNoBias.empty())
    add("k.cache.split", throughSdpa(KProj, square(ev.kNoBias)));
  add("v.cache", throughSdpa(VProj, square(ev.vIn)));
  add("sdpa.qk", ev.outputVariance(ev.sdpaVariance(
                     nullptr, nullptr, nullptr, Evaluation::SdpaTerm::QKProducts)));
  add("q.angle", throughSdpa(QProj, ev.angleUnit[0]));
  add("k.angle", throughSdpa(KProj, ev.angleUnit[1]));
  add("sdpa.score", ev.outputVariance(ev.sdpaVariance(
                        nullptr, nullptr, nullptr, Evaluation::SdpaTerm::Scores)));
  add("sdpa.p", ev.outputVariance(ev.sdpaVariance(
                    nullptr, nullptr, nullptr, Evaluation::SdpaTerm::Probabilities)));
  std::vector<double> acc = square(ev.o);
  for (int64_t t = 0; t < ev.S; ++t)
    for (int64_t i = 0; i < ev.hq * ev.d; ++i)
      acc[t * ev.hq * ev.d + i] *= double(ev.pos[t] + 1) / 3;
  add("sdpa.acc", ev.outputVariance(acc));
  add("attn.out", ev.outputVariance(square(ev.o)));
  add("o_proj.proj", ev.z2[OProj]);
  add("o_proj.acc", ev.partials[OProj]);
  if (!ev.b[OProj].data.empty()) {
    std::vector<double> shift(ev.out.size());
    for (size_t i = 0; i < shift.size(); ++i) {
      double b = ev.b[OProj].data[i % ev.hidden];
      shift[i] = roundToBF16(b) - b;
    }
    add("o_proj.bias", square(shift));
  }
  add("out", square(ev.out));
}

} // namespace

llvm::Expected<LayerModel> LayerModel::build(LayerOps ops,
                                             StringRef weightsPath,
                                             const InputModel &input,
                                             int64_t contextLength) {
  llvm::Expected<rotor::import::CheckpointWeights> weights =
      rotor::import::CheckpointWeights::open(weightsPath);
  if (!weights)
    return weights.takeError();
  Evaluation ev;
  if (llvm::Error err = loadLayer(ops, *weights, ev))
    return std::move(err);
  Matrix gain;
  bool haveGain = false;
  double inputNorm = 0;
  if (llvm::Error err = sampleTokens(ops, input, *weights, ev, contextLength,
                                     gain, haveGain, inputNorm))
    return std::move(err);
  LayerModel model;
  model.valueRanges = worstCaseRanges(ev, haveGain ? &gain : nullptr, inputNorm);
  model.keyBias = llvm::any_of(ev.b[KProj].data, [](double v) { return v != 0; });
  evaluateExactly(ev, bool(ops.keyNorm));
  unitResponses(ev, model.units, model.unitSums);

  model.context = contextLength;
  model.hidden = ev.hidden;
  model.qHeads = ev.hq;
  model.kvHeads = ev.hkv;
  model.headDim = ev.d;
  model.tokens = ev.S;
  for (int p = QProj; p <= OProj; ++p) {
    model.projectionRows[p] = ev.w[p].rows;
    model.projectionCols[p] = ev.w[p].cols;
  }
  double mean = 0;
  for (double v : ev.out) {
    model.outputMax = std::max(model.outputMax, std::abs(v));
    mean += v;
  }
  mean /= ev.out.size();
  for (double v : ev.out)
    model.outputSquares += (v - mean) * (v - mean);
  // The largest of N Gaussian errors is about sqrt(2 ln N) deviations.
  model.lambda = std::sqrt(2 * std::log(double(contextLength * ev.hidden)));
  return model;
}

Estimate LayerModel::estimate(const Plan &plan) const {
  double r32 = roundingVariance(Storage::F32);
  auto r = [](Storage s) { return roundingVariance(s); };
  // A value rounded to a storage type and again to a compute type is
  // rounded once, to the coarser.
  auto coarser = [&](Storage a, Storage b) { return std::max(r(a), r(b)); };
  SmallVector<std::pair<std::string, double>> terms;
  for (int p = QProj; p <= VProj; ++p) {
    std::string n = projectionName(Projection(p)).str();
    // Input and weights rounded to the compute type, and the f32
    // accumulation over the row.
    terms.push_back({n + ".proj", 2 * r(plan.weights[p])});
    terms.push_back({n + ".acc", r32});
    terms.push_back({p == KProj && plan.splitKeyBias ? n + ".out.split"
                                                     : n + ".out",
                     r(plan.projectionOutputs)});
    // Bias units are the bf16 rounding's own shift (f32 biases are exact).
    terms.push_back({n + ".bias", plan.biases == Storage::F32 ? 0.0 : 1.0});
  }
  terms.push_back({"q.rope", r(plan.ropeCompute)});
  terms.push_back({"k.rope", r(plan.ropeCompute)});
  terms.push_back({"q.store", coarser(plan.query, plan.sdpaCompute)});
  terms.push_back({plan.splitKeyBias ? "k.cache.split" : "k.cache",
                   coarser(plan.keyCache, plan.sdpaCompute)});
  terms.push_back({"v.cache", coarser(plan.valueCache, plan.sdpaCompute)});
  terms.push_back({"q.angle", r32});
  terms.push_back({"k.angle", r32});
  terms.push_back({"sdpa.qk", r32});
  terms.push_back({"sdpa.score", r32});
  terms.push_back({"sdpa.p", r(plan.sdpaCompute)});
  terms.push_back({"sdpa.acc", r32});
  terms.push_back({"attn.out", r(plan.attentionOutput)});
  terms.push_back({"o_proj.proj", 2 * r(plan.weights[OProj])});
  terms.push_back({"o_proj.acc", r32});
  terms.push_back({"o_proj.bias", plan.biases == Storage::F32 ? 0.0 : 1.0});
  terms.push_back({"out", r(plan.layerOutput)});

  Estimate est;
  std::vector<double> total(tokens * hidden, 0);
  double best = -1;
  for (auto &[name, coefficient] : terms) {
    const std::vector<double> &u = unit(name);
    if (u.empty() || coefficient == 0)
      continue;
    for (size_t i = 0; i < u.size(); ++i)
      total[i] += coefficient * u[i];
    double sum = coefficient * unitSums.lookup(name);
    est.shares.push_back({name, sum / u.size()});
    if (sum > best) {
      best = sum;
      est.dominantSite = name;
    }
  }
  double worst = 0, mean = 0;
  for (double v : total) {
    worst = std::max(worst, v);
    mean += v;
  }
  est.maxRelativeError =
      outputMax > 0 ? lambda * std::sqrt(worst) / outputMax : 0;
  est.pccLoss = outputSquares > 0 ? 0.5 * mean / outputSquares : 0;
  return est;
}

Cost LayerModel::cost(const Plan &plan) const {
  Cost c;
  c.kvBytesPerToken = kvHeads * headDim *
                      (storageBytes(plan.keyCache) + storageBytes(plan.valueCache));
  double perKey = double(qHeads) * headDim * context;
  for (int p = QProj; p <= OProj; ++p) {
    int64_t elements = projectionRows[p] * projectionCols[p];
    c.weightBytes += elements * storageBytes(plan.weights[p]);
    c.compute += double(elements) * (plan.weights[p] == Storage::F32 ? 2 : 1);
  }
  // q·k and p·v over the context; the split's term is another q·k over the
  // rotary dims.
  c.compute += 2 * perKey * (plan.sdpaCompute == Storage::F32 ? 2 : 1);
  if (plan.splitKeyBias)
    c.compute += perKey;
  // Ties (same bytes, same arithmetic) go to the narrower intermediate,
  // and to bf16 over f16 (no overflow to fear).
  for (Storage s : {plan.query, plan.keyCache, plan.valueCache})
    c.compute += s == Storage::F32 ? 1e-3 : s == Storage::F16 ? 1e-6 : 0;
  return c;
}
