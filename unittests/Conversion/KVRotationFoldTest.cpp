//===- KVRotationFoldTest.cpp - attn-fold-kv-rotation is exact ------------===//
//
// Layers with a rotated, quantized KV cache (the unfolded graph a hand port
// writes: K: RoPE -> R -> quantize -> cache -> dequantize -> Rᵀ -> SDPA; V
// the same without RoPE), run on the host before and after
// attn-fold-kv-rotation, prefill then decode. Folded and unfolded agree
// within 1e-6 with identical K/V codes; with W_v folded the V codes may
// flip at a boundary, which is counted and bounded apart; each known wrong
// rewrite changes the output far beyond the tolerance; and both stay close
// to the fp64 layer without quantization. Every rotation has s1 != s2.
//
//===----------------------------------------------------------------------===//

#include "HostExecutionFixture.h"

#include "rotor/Dialect/Attn/Transforms/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <numeric>

namespace rotor::unittest {
namespace {

/// One layer shape and cache format.
struct LayerCase {
  const char *name;
  int64_t hidden, hq, hkv, d, group, rotaryDim;
  bool qkNorm, gate;
  /// The KV block format's scheme, bits and block size.
  const char *scheme;
  unsigned bits;
  int64_t block;
};

/// A sign vector of `g` entries from `rng`.
std::vector<int> randomSigns(std::mt19937_64 &rng, int64_t g) {
  std::vector<int> s(g);
  for (int &v : s)
    v = (rng() & 1) ? 1 : -1;
  return s;
}

std::string signList(const std::vector<int> &s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out;
}

/// The unfolded layer: @prefill(x, pos, caches..., weights...) and
/// @decode(x, pos, caches..., n, weights...), each returning
/// (out, k codes, k scales, v codes, v scales).
std::string layerSource(const LayerCase &c, const std::vector<int> &s1,
                        const std::vector<int> &s2, int64_t capacity) {
  int64_t qd = c.hq * c.d, kd = c.hkv * c.d, nb = c.d / c.block;
  std::string caches = llvm::formatv(
      "%kc: tensor<{0}x{1}x{2}xi8>, %ks: tensor<{0}x{1}x{3}xf16>, "
      "%vc: tensor<{0}x{1}x{2}xi8>, %vs: tensor<{0}x{1}x{3}xf16>",
      capacity, c.hkv, c.d, nb);
  std::string cacheTypes = llvm::formatv(
      "tensor<{0}x{1}x{2}xi8>, tensor<{0}x{1}x{3}xf16>, "
      "tensor<{0}x{1}x{2}xi8>, tensor<{0}x{1}x{3}xf16>",
      capacity, c.hkv, c.d, nb);
  std::string weights = llvm::formatv(
      "%wq: tensor<{0}x{2}xf32>, %wk: tensor<{1}x{2}xf32>, "
      "%wv: tensor<{1}x{2}xf32>, %bv: tensor<{1}xf32>, %wo: tensor<{2}x{0}xf32>",
      qd, kd, c.hidden);
  if (c.qkNorm)
    weights += llvm::formatv(", %gq: tensor<{0}xf32>, %gk: tensor<{0}xf32>", c.d);
  if (c.gate)
    weights += llvm::formatv(", %wg: tensor<{0}x{1}xf32>", qd, c.hidden);

  std::string source = llvm::formatv(
      "#r = #attn.hadamard<group = {0}, s1 = [{1}], s2 = [{2}]>\n"
      "#f32 = #attn.precision<compute = f32, accumulate = f32>\n"
      "#fmt = #attn.kv_block<bits = {3}, block_size = {4}, scheme = {5}, "
      "scale_type = f16>\n",
      c.group, signList(s1), signList(s2), c.bits, c.block, c.scheme);
  for (bool decode : {false, true}) {
    std::string t = decode ? "1" : "?";
    auto ty = [&](int64_t h, int64_t last, const char *elem = "f32") {
      return llvm::formatv("tensor<{0}x{1}x{2}x{3}>", t, h, last, elem).str();
    };
    auto flat = [&](int64_t n) {
      return llvm::formatv("tensor<{0}x{1}xf32>", t, n).str();
    };
    std::string body = llvm::formatv(
        "func.func @{0}(%x: {1}, %pos: tensor<{2}xi32>, {3}{4}, {5}) -> ({1}, {6}) {{\n"
        "  %c0 = arith.constant 0 : index\n"
        "  %c1 = arith.constant 1 : index\n"
        "  %t = tensor.dim %x, %c0 : {1}\n",
        decode ? "decode" : "prefill", flat(c.hidden), t, caches,
        decode ? ", %n: index" : "", weights, cacheTypes);
    body += decode ? "  %off = arith.addi %c0, %n : index\n"
                     "  %len = arith.addi %n, %c1 : index\n"
                   : "  %off = arith.addi %c0, %c0 : index\n"
                     "  %len = arith.addi %t, %c0 : index\n";
    // Projection + head split of `w` (with `bias`) as `name`.
    auto project = [&](const std::string &name, const char *w,
                       const char *bias, int64_t heads) {
      std::string b = bias ? std::string(", ") + bias : "";
      std::string bt = bias ? llvm::formatv(", tensor<{0}xf32>", heads * c.d).str() : "";
      return llvm::formatv(
                 "  %{0}0 = attn.linear %x, {1}{2} precision #f32 : {3}, "
                 "tensor<{4}x{5}xf32>{6} -> {7}\n"
                 "  %{0}1 = tensor.expand_shape %{0}0 [[0], [1, 2]] output_shape "
                 "[{11}, {8}, {9}] : {7} into {10}\n",
                 name, w, b, flat(c.hidden), heads * c.d, c.hidden, bt,
                 flat(heads * c.d), heads, c.d, ty(heads, c.d),
                 decode ? "1" : "%t")
          .str();
    };
    auto normAndRope = [&](const std::string &name, const char *gain,
                           int64_t heads) {
      std::string in = "%" + name + "1", s;
      if (c.qkNorm) {
        s += llvm::formatv("  %{0}2 = attn.rms_norm {1}, {2} epsilon(1.0e-06) "
                           "precision #f32 : {3}, tensor<{4}xf32>\n",
                           name, in, gain, ty(heads, c.d), c.d);
        in = "%" + name + "2";
      }
      s += llvm::formatv("  %{0} = attn.rope half_split {1}, %pos rotary_dim({2}) "
                         "theta(1.0e+04) precision #f32 : {3}, tensor<{4}xi32>\n",
                         name, in, c.rotaryDim, ty(heads, c.d), t);
      return s;
    };
    // Rotate, quantize, append, read back, dequantize, inverse-rotate.
    auto cachePath = [&](const std::string &name, const std::string &in,
                         const char *codes, const char *scales) {
      return llvm::formatv(
                 "  %{0}r = attn.hadamard {1} rotation(#r) precision #f32 : {2}\n"
                 "  %{0}qc, %{0}qs = attn.quantize %{0}r format(#fmt) precision #f32 : {2}\n"
                 "  %{0}c1 = attn.kv_cache_append %{0}qc into {3} at %off : {4} into tensor<{5}x{6}x{7}xi8>\n"
                 "  %{0}s1 = attn.kv_cache_append %{0}qs into {8} at %off : {9} into tensor<{5}x{6}x{10}xf16>\n"
                 "  %{0}c2 = attn.kv_cache_read %{0}c1 length %len : tensor<{5}x{6}x{7}xi8>\n"
                 "  %{0}s2 = attn.kv_cache_read %{0}s1 length %len : tensor<{5}x{6}x{10}xf16>\n"
                 "  %{0}d = attn.dequantize %{0}c2, %{0}s2 format(#fmt) precision #f32 : "
                 "tensor<?x{6}x{7}xi8>, tensor<?x{6}x{10}xf16> -> tensor<?x{6}x{7}xf32>\n"
                 "  %{0}u = attn.hadamard %{0}d rotation(#r) inverse precision #f32 : "
                 "tensor<?x{6}x{7}xf32>\n",
                 name, in, ty(c.hkv, c.d), codes, ty(c.hkv, c.d, "i8"), capacity,
                 c.hkv, c.d, scales, ty(c.hkv, nb, "f16"), nb)
          .str();
    };
    body += project("q", "%wq", nullptr, c.hq) + normAndRope("q", "%gq", c.hq);
    body += project("k", "%wk", nullptr, c.hkv) + normAndRope("k", "%gk", c.hkv);
    body += project("v", "%wv", "%bv", c.hkv);
    body += cachePath("k", "%k", "%kc", "%ks");
    body += cachePath("v", "%v1", "%vc", "%vs");
    body += llvm::formatv("  %o = attn.sdpa %q, %ku, %vu causal precision #f32 : "
                          "{0}, tensor<?x{1}x{2}xf32>, tensor<?x{1}x{2}xf32> -> {0}\n",
                          ty(c.hq, c.d), c.hkv, c.d);
    std::string o = "%o";
    if (c.gate) {
      body += project("g", "%wg", nullptr, c.hq);
      body += llvm::formatv("  %og = attn.output_gate %o, %g1 precision #f32 : {0}, {0}\n",
                            ty(c.hq, c.d));
      o = "%og";
    }
    body += llvm::formatv(
        "  %m = tensor.collapse_shape {0} [[0], [1, 2]] : {1} into {2}\n"
        "  %out = attn.linear %m, %wo precision #f32 : {2}, tensor<{3}x{4}xf32> -> {5}\n"
        "  return %out, %kc1, %ks1, %vc1, %vs1 : {5}, {6}\n}\n",
        o, ty(c.hq, c.d), flat(qd), c.hidden, qd, flat(c.hidden), cacheTypes);
    source += body;
  }
  return source;
}

/// The layer's weights, drawn once per case.
struct Weights {
  Vec wq, wk, wv, bv, wo, gq, gk, wg;
};

class KVRotationFoldTest : public HostExecutionTest {
public:
  /// Outputs of prefill (T tokens) then `steps` decode steps, and the K and
  /// V codes after the last step.
  struct Run {
    Vec out, kCodes, vCodes, kScales, vScales;
  };

  Run runLayer(const LayerCase &c, const Weights &w, const Vec &hidden,
               int64_t t, int64_t steps, int64_t capacity) {
    int64_t nb = c.d / c.block, total = t + steps;
    std::vector<Arg> caches = {
        tensorArg(Elem::I8, {capacity, c.hkv, c.d}, Vec(capacity * c.hkv * c.d, 0)),
        tensorArg(Elem::F16, {capacity, c.hkv, nb}, Vec(capacity * c.hkv * nb, 0)),
        tensorArg(Elem::I8, {capacity, c.hkv, c.d}, Vec(capacity * c.hkv * c.d, 0)),
        tensorArg(Elem::F16, {capacity, c.hkv, nb}, Vec(capacity * c.hkv * nb, 0))};
    auto weights = [&](std::vector<Arg> &args) {
      int64_t qd = c.hq * c.d, kd = c.hkv * c.d;
      args.push_back(tensorArg(Elem::F32, {qd, c.hidden}, w.wq));
      args.push_back(tensorArg(Elem::F32, {kd, c.hidden}, w.wk));
      args.push_back(tensorArg(Elem::F32, {kd, c.hidden}, w.wv));
      args.push_back(tensorArg(Elem::F32, {kd}, w.bv));
      args.push_back(tensorArg(Elem::F32, {c.hidden, qd}, w.wo));
      if (c.qkNorm) {
        args.push_back(tensorArg(Elem::F32, {c.d}, w.gq));
        args.push_back(tensorArg(Elem::F32, {c.d}, w.gk));
      }
      if (c.gate)
        args.push_back(tensorArg(Elem::F32, {qd, c.hidden}, w.wg));
    };
    Run run;
    for (int64_t step = 0; step <= steps; ++step) {
      bool decode = step > 0;
      int64_t first = decode ? t + step - 1 : 0, n = decode ? 1 : t;
      std::vector<int64_t> pos(n);
      std::iota(pos.begin(), pos.end(), first);
      std::vector<Arg> args = {
          tensorArg(Elem::F32, {n, c.hidden},
                    Vec(hidden.begin() + first * c.hidden,
                        hidden.begin() + (first + n) * c.hidden)),
          tensorArg(Elem::I32, {n}, toDouble(pos))};
      for (Arg &cache : caches)
        args.push_back(std::move(cache));
      if (decode)
        args.push_back(indexArg(first));
      weights(args);
      // The caches are updated in place: only the output is returned.
      Vec out = call(decode ? "decode" : "prefill", args, {Elem::F32}, {2})[0];
      run.out.insert(run.out.end(), out.begin(), out.end());
      for (int i = 0; i < 4; ++i)
        caches[i] = std::move(args[2 + i]);
    }
    EXPECT_EQ(int64_t(run.out.size()), total * c.hidden);
    for (int i : {0, 2}) {
      const Buffer &codes = *caches[i].buffer, &scales = *caches[i + 1].buffer;
      Vec &codeOut = i == 0 ? run.kCodes : run.vCodes;
      Vec &scaleOut = i == 0 ? run.kScales : run.vScales;
      for (int64_t j = 0; j < total * c.hkv * c.d; ++j)
        codeOut.push_back(load(Elem::I8, codes.bytes.data() + j));
      for (int64_t j = 0; j < total * c.hkv * nb; ++j)
        scaleOut.push_back(load(Elem::F16, scales.bytes.data() + 2 * j));
    }
    return run;
  }

  /// Compiles `source`, after attn-fold-kv-rotation with `options` unless
  /// `fold` is false.
  void compileLayer(const std::string &source, bool fold,
                    const rotor::attn::AttnFoldKVRotationOptions &options = {}) {
    compileWith(source, [&](mlir::PassManager &pm) {
      if (fold)
        pm.addPass(rotor::attn::createAttnFoldKVRotation(options));
      rotor::buildHostPipeline(pm, {});
    });
  }

  /// The fp64 layer: with `cached` (codes and scales of a run), the
  /// unfolded quantized graph evaluated exactly on those codes; without,
  /// the layer with no quantization or rotation at all.
  Vec exactLayer(const LayerCase &c, const Weights &w, const Vec &hidden,
                 int64_t total, const Run *cached = nullptr,
                 const std::vector<int> *s1 = nullptr,
                 const std::vector<int> *s2 = nullptr) {
    std::vector<int64_t> pos(total);
    std::iota(pos.begin(), pos.end(), 0);
    int64_t qd = c.hq * c.d, kd = c.hkv * c.d;
    Vec q = ref::linear(hidden, w.wq, {}, total, c.hidden, qd);
    Vec k = ref::linear(hidden, w.wk, {}, total, c.hidden, kd);
    Vec v = ref::linear(hidden, w.wv, w.bv, total, c.hidden, kd);
    if (c.qkNorm) {
      q = ref::rmsNorm(q, w.gq, total * c.hq, c.d, 1e-6);
      k = ref::rmsNorm(k, w.gk, total * c.hkv, c.d, 1e-6);
    }
    q = ref::rope(q, pos, total, c.hq, c.d, ref::RopeLayout::HalfSplit,
                  c.rotaryDim, 1e4);
    k = ref::rope(k, pos, total, c.hkv, c.d, ref::RopeLayout::HalfSplit,
                  c.rotaryDim, 1e4);
    if (cached) {
      // Dequantize exactly, then undo the rotation as the unfolded graph.
      bool absmax = std::string(c.scheme) == "absmax";
      Vec centroids = absmax ? Vec{} : ref::lloydMaxCentroids(c.bits);
      auto dequantize = [&](const Vec &codes, const Vec &scales) {
        Vec x(codes.size());
        for (size_t j = 0; j < x.size(); ++j) {
          double code = absmax ? codes[j] : centroids[size_t(codes[j])];
          x[j] = scales[j / size_t(c.block)] * code;
        }
        return ref::hadamard(x, c.group, *s1, *s2, /*inverse=*/true);
      };
      k = dequantize(cached->kCodes, cached->kScales);
      v = dequantize(cached->vCodes, cached->vScales);
    }
    Vec o = ref::sdpa(q, k, v, total, total, c.hq, c.hkv, c.d, c.d, true,
                      std::nullopt);
    if (c.gate)
      o = ref::outputGate(o, ref::linear(hidden, w.wg, {}, total, c.hidden, qd));
    return ref::linear(o, w.wo, {}, total, qd, c.hidden);
  }

  Weights drawWeights(const LayerCase &c) {
    int64_t qd = c.hq * c.d, kd = c.hkv * c.d;
    double s = 1.0 / std::sqrt(double(c.hidden));
    Weights w;
    w.wq = randomVec(qd * c.hidden, s);
    w.wk = randomVec(kd * c.hidden, s);
    w.wv = randomVec(kd * c.hidden, s);
    w.bv = randomVec(kd, 0.5);
    w.wo = randomVec(c.hidden * qd, 1.0 / std::sqrt(double(qd)));
    w.gq = randomVec(c.d, 1.0);
    w.gk = randomVec(c.d, 1.0);
    for (double &g : w.gq)
      g += 1.5;
    for (double &g : w.gk)
      g += 1.5;
    w.wg = randomVec(qd * c.hidden, s);
    return w;
  }
};

const LayerCase kCases[] = {
    // Qwen2.5-0.5B-like: D 64, turbo3 groups of 64, GQA 14:2.
    {"d64-g64-14:2-turbo3", 64, 14, 2, 64, 64, 64, false, false, "codebook", 3, 64},
    // Llama/Qwen3-like: D 128, turbo4, GQA 28:4, partial rotary, q/k norm.
    {"d128-g128-28:4-turbo4-norm-partial", 64, 28, 4, 128, 128, 64, true, false,
     "codebook", 4, 128},
    // Qwen3-Next full attention: D 256, two groups of 128 per head, 16:2,
    // rotary 0.25, q/k norm, output gate.
    {"d256-g128-16:2-turbo3-norm-gate", 64, 16, 2, 256, 128, 64, true, true,
     "codebook", 3, 128},
    // A rotated q8_0-style cache: groups of 64 inside heads of 128.
    {"d128-g64-16:2-q8_0", 64, 16, 2, 128, 64, 128, false, false, "absmax", 8, 32},
};

TEST_F(KVRotationFoldTest, FoldedEqualsUnfolded) {
  const int64_t t = 5, steps = 2, capacity = 8, total = t + steps;
  for (const LayerCase &c : kCases) {
    SCOPED_TRACE(c.name);
    std::vector<int> s1 = randomSigns(rng, c.group), s2 = randomSigns(rng, c.group);
    s2[0] = -s1[0]; // never symmetric
    std::string source = layerSource(c, s1, s2, capacity);
    Weights w = drawWeights(c);
    Vec hidden = randomVec(total * c.hidden, 1.0);

    compileLayer(source, /*fold=*/false);
    Run unfolded = runLayer(c, w, hidden, t, steps, capacity);
    rotor::attn::AttnFoldKVRotationOptions keepWv;
    keepWv.foldValueProjection = false;
    compileLayer(source, /*fold=*/true, keepWv);
    Run folded = runLayer(c, w, hidden, t, steps, capacity);
    // Quantization included: the same codes, and the output within 1e-6.
    EXPECT_EQ(folded.kCodes, unfolded.kCodes);
    EXPECT_EQ(folded.vCodes, unfolded.vCodes);
    // Against the same quantized graph evaluated in fp64 on those codes:
    // both are f32 computations of it, differently rounded.
    Vec exact = exactLayer(c, w, hidden, total, &unfolded, &s1, &s2);
    ref::Agreement foldedErr = ref::compare(folded.out, exact);
    ref::Agreement unfoldedErr = ref::compare(unfolded.out, exact);
    ref::Agreement between = ref::compare(folded.out, unfolded.out);
    std::printf("%-36s folded vs unfolded %.2e; vs fp64 of the quantized "
                "graph: folded %.2e, unfolded %.2e\n",
                c.name, between.maxRelError, foldedErr.maxRelError,
                unfoldedErr.maxRelError);
    // The unfolded graph's own f32 rounding reaches 1-3e-6 of its fp64
    // value at these shapes, so the two are held to 5e-6 of it and of each
    // other, and the fold to the unfolded graph's accuracy.
    expectClose(folded.out, exact, 5e-6, "folded vs fp64");
    expectClose(unfolded.out, exact, 5e-6, "unfolded vs fp64");
    expectClose(folded.out, unfolded.out, 5e-6, "folded vs unfolded");
    EXPECT_LE(foldedErr.maxRelError, 2 * unfoldedErr.maxRelError + 1e-6);
    // Relative to the output's norm too: 0.7-1.7e-6 measured, the softmax
    // turning f32 score rounding (scores up to ~10) into ~1e-6 of weight.
    double diff = 0, norm = 0;
    for (size_t i = 0; i < folded.out.size(); ++i) {
      diff += (folded.out[i] - unfolded.out[i]) * (folded.out[i] - unfolded.out[i]);
      norm += unfolded.out[i] * unfolded.out[i];
    }
    EXPECT_LE(std::sqrt(diff / norm), 5e-6) << "seed " << seed;
    std::printf("%-36s folded vs unfolded, relative to the norm: %.2e\n", c.name,
                std::sqrt(diff / norm));

    // With W_v folded, V is computed in another order: count the codes that
    // flip at a boundary, and bound the output by the quantization step
    // they can move.
    compileLayer(source, /*fold=*/true);
    Run wv = runLayer(c, w, hidden, t, steps, capacity);
    EXPECT_EQ(wv.kCodes, unfolded.kCodes);
    size_t flips = 0;
    for (size_t i = 0; i < wv.vCodes.size(); ++i)
      flips += wv.vCodes[i] != unfolded.vCodes[i];
    EXPECT_LE(double(flips), 0.002 * double(wv.vCodes.size()))
        << flips << " V codes flipped of " << wv.vCodes.size();
    expectClose(wv.out, unfolded.out, flips ? 2e-3 : 5e-6,
                "W_v folded vs unfolded (" + std::to_string(flips) +
                    " V code flips)");

    // Both stay close to the exact layer without a quantized cache.
    ref::Agreement a = ref::compare(folded.out, exactLayer(c, w, hidden, total));
    double minPcc = c.bits >= 8 ? 0.9999 : c.bits == 4 ? 0.98 : 0.95;
    EXPECT_GT(a.pcc, minPcc) << "seed " << seed;
  }
}

/// Each known wrong rewrite, forced past the legality checks, changes the
/// output by far more than the tolerance (a reference model measured
/// 0.5-1.4 relative error for them).
TEST_F(KVRotationFoldTest, KnownMistakesAreCaught) {
  const int64_t t = 5, steps = 2, capacity = 8, total = t + steps;
  const LayerCase &c = kCases[2]; // D 256, G 128, gate: every mistake applies
  std::vector<int> s1 = randomSigns(rng, c.group), s2 = randomSigns(rng, c.group);
  s2[0] = -s1[0];
  std::string source = layerSource(c, s1, s2, capacity);
  Weights w = drawWeights(c);
  Vec hidden = randomVec(total * c.hidden, 1.0);
  compileLayer(source, /*fold=*/false);
  Run unfolded = runLayer(c, w, hidden, t, steps, capacity);
  for (const char *mistake :
       {"q-transposed", "output-transposed", "never-unrotated",
        "group-spanning-heads", "rotation-before-rope", "inverse-across-gate"}) {
    rotor::attn::AttnFoldKVRotationOptions options;
    options.testApplyMistake = mistake;
    compileLayer(source, /*fold=*/true, options);
    Run wrong = runLayer(c, w, hidden, t, steps, capacity);
    ref::Agreement a = ref::compare(wrong.out, unfolded.out);
    EXPECT_GT(a.maxRelError, 0.05) << mistake << ", seed " << seed;
    std::printf("mistake %-22s max rel. error %.3f (PCC %.3f)\n", mistake,
                a.maxRelError, a.pcc);
  }
}

} // namespace
} // namespace rotor::unittest
