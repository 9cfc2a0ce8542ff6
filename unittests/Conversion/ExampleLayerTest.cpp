//===- ExampleLayerTest.cpp - The bundled layer run on the host -----------===//
//
// The bundled Qwen2.5-0.5B attention layer, lowered with the host pipeline:
// prefill and decode steps agree with each other and with the fp64
// reference composition of its ops.
//
//===----------------------------------------------------------------------===//

#include "HostExecutionFixture.h"

#include "llvm/Support/MemoryBuffer.h"

#include <numeric>
#include <utility>

namespace rotor::unittest {
namespace {

/// The bundled Qwen2.5-0.5B layer: prefill of T tokens followed by N decode
/// steps equals prefill of T + N tokens, and both match the reference
/// composition of the layer's ops.
TEST_F(HostExecutionTest, ExampleLayerPrefillThenDecodeEqualsLongerPrefill) {
  auto buffer = llvm::MemoryBuffer::getFile(ROTOR_SOURCE_DIR
                                            "/examples/qwen2.5-0.5b-attention.mlir");
  ASSERT_TRUE(bool(buffer));
  compile((*buffer)->getBuffer().str());
  const int64_t e = 896, hq = 14, hkv = 2, d = 64, cap = 4096;
  const int64_t t = 6, steps = 3, total = t + steps;
  // Qwen2.5-like magnitudes: large K bias, moderate Q bias.
  Vec wq = randomVec(e * e, 0.03), bq = randomVec(e, 3.0);
  Vec wk = randomVec(hkv * d * e, 0.03), bk = randomVec(hkv * d, 20.0);
  Vec wv = randomVec(hkv * d * e, 0.03), bv = randomVec(hkv * d, 0.2);
  Vec wo = randomVec(e * e, 0.03);
  Vec hidden = randomVec(total * e, 1.0);
  std::vector<int64_t> positions(total);
  std::iota(positions.begin(), positions.end(), 0);
  auto weights = [&](std::vector<Arg> &args) {
    args.push_back(tensorArg(Elem::F32, {e, e}, wq));
    args.push_back(tensorArg(Elem::F32, {e}, bq));
    args.push_back(tensorArg(Elem::F32, {hkv * d, e}, wk));
    args.push_back(tensorArg(Elem::F32, {hkv * d}, bk));
    args.push_back(tensorArg(Elem::F32, {hkv * d, e}, wv));
    args.push_back(tensorArg(Elem::F32, {hkv * d}, bv));
    args.push_back(tensorArg(Elem::F32, {e, e}, wo));
  };
  Vec emptyCache(cap * hkv * d, 0.0);
  auto prefill = [&](int64_t n) {
    std::vector<Arg> args = {
        tensorArg(Elem::F32, {n, e}, Vec(hidden.begin(), hidden.begin() + n * e)),
        tensorArg(Elem::I32, {n}, toDouble({positions.begin(), positions.begin() + n})),
        tensorArg(Elem::F32, {cap, hkv, d}, emptyCache),
        tensorArg(Elem::F32, {cap, hkv, d}, emptyCache)};
    weights(args);
    // The caches are updated in place: only the output is returned.
    Vec out = call("prefill", args, {Elem::F32}, {2})[0];
    auto cache = [&](int i) {
      Buffer &b = *args[i].buffer;
      Vec v(b.bytes.size() / 4);
      for (size_t j = 0; j < v.size(); ++j)
        v[j] = load(Elem::F32, b.bytes.data() + 4 * j);
      return v;
    };
    return std::vector<Vec>{out, cache(2), cache(3)};
  };

  std::vector<Vec> full = prefill(total);
  std::vector<Vec> part = prefill(t);
  Vec kCache = part[1], vCache = part[2];
  Vec stepwise(part[0]);
  for (int64_t s = 0; s < steps; ++s) {
    int64_t p = t + s;
    std::vector<Arg> args = {
        tensorArg(Elem::F32, {1, e}, Vec(hidden.begin() + p * e, hidden.begin() + (p + 1) * e)),
        tensorArg(Elem::I32, {1}, Vec{double(p)}),
        tensorArg(Elem::F32, {cap, hkv, d}, kCache),
        tensorArg(Elem::F32, {cap, hkv, d}, vCache), indexArg(p)};
    weights(args);
    Vec out = call("decode", args, {Elem::F32}, {2})[0];
    stepwise.insert(stepwise.end(), out.begin(), out.end());
    for (auto [i, cache] : {std::pair(2, &kCache), std::pair(3, &vCache)}) {
      Buffer &b = *args[i].buffer;
      for (size_t j = 0; j < cache->size(); ++j)
        (*cache)[j] = load(Elem::F32, b.bytes.data() + 4 * j);
    }
  }
  expectClose(stepwise, full[0], 1e-5, "prefill + decode vs prefill");
  // The caches hold the same keys and values either way.
  expectClose(kCache, full[1], 1e-5, "K cache");
  expectClose(vCache, full[2], 1e-5, "V cache");

  // The reference composition of the layer.
  Vec q = ref::linear(hidden, wq, bq, total, e, e);
  Vec k = ref::linear(hidden, wk, bk, total, e, hkv * d);
  Vec v = ref::linear(hidden, wv, bv, total, e, hkv * d);
  q = ref::rope(q, positions, total, hq, d, ref::RopeLayout::HalfSplit, d, 1e6);
  k = ref::rope(k, positions, total, hkv, d, ref::RopeLayout::HalfSplit, d, 1e6);
  Vec o = ref::sdpa(q, k, v, total, total, hq, hkv, d, d, /*causal=*/true,
                    std::nullopt);
  Vec expected = ref::linear(o, wo, {}, total, e, e);
  // With a K bias of 20 the scaled scores reach ~60, so f32 rounding of a
  // score (6e-8 relative, over a 64-term dot product) moves softmax weights
  // by up to ~3e-5; the layer is held to 5e-5, the ops alone to 1e-5.
  expectClose(full[0], expected, 5e-5, "layer vs fp64 reference");
}

} // namespace
} // namespace rotor::unittest
