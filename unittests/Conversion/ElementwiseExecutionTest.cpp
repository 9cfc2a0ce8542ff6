//===- ElementwiseExecutionTest.cpp - RoPE, rotations, norms, gates -------===//
//
// The ops that act on each token's heads alone: RoPE in every layout and
// scaling, the Hadamard rotation, RMS norm and the output gate, in f32 and
// with bf16 storage and compute, against the fp64 reference.
//
//===----------------------------------------------------------------------===//

#include "HostExecutionFixture.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

namespace rotor::unittest {
namespace {

struct RopeCase {
  const char *layout;
  int64_t d, r;
  const char *scalingIR;
  ref::RopeScaling scaling;
};

TEST_F(HostExecutionTest, RopeEveryLayoutPartialRotaryAndScaling) {
  using K = ref::RopeScaling::Kind;
  ref::RopeScaling none, linear, dynamic, yarn, llama3;
  linear.kind = K::Linear;
  linear.factor = 4;
  dynamic.kind = K::Dynamic;
  dynamic.factor = 2;
  dynamic.originalMaxPositions = 1024;
  yarn.kind = K::Yarn;
  yarn.factor = 4;
  yarn.originalMaxPositions = 1024;
  yarn.attentionFactor = 1.1386;
  llama3.kind = K::Llama3;
  llama3.factor = 8;
  llama3.lowFreqFactor = 1;
  llama3.highFreqFactor = 4;
  llama3.originalMaxPositions = 512;
  std::vector<RopeCase> cases = {
      {"half_split", 64, 64, "", none},
      {"interleaved", 64, 64, "", none},
      {"half_split", 128, 64, "", none},
      {"interleaved", 256, 128, "", none},
      {"half_split", 64, 32,
       "scaling(#attn.linear_scaling<factor = 4.0>)", linear},
      {"interleaved", 128, 128,
       "scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 1024>)",
       dynamic},
      {"half_split", 128, 128,
       "scaling(#attn.yarn_scaling<factor = 4.0, original_max_position_embeddings = 1024, "
       "beta_fast = 32.0, beta_slow = 1.0, attention_factor = 1.1386, truncate = true>)",
       yarn},
      {"half_split", 64, 64,
       "scaling(#attn.llama3_scaling<factor = 8.0, low_freq_factor = 1.0, "
       "high_freq_factor = 4.0, original_max_position_embeddings = 512>)",
       llama3},
  };
  for (const RopeCase &c : cases) {
    const int64_t t = 9, h = 3;
    double theta = 1e6;
    compile(llvm::formatv(R"mlir(
      func.func @f(%x: tensor<?x{0}x{1}xf32>, %p: tensor<?xi32>) -> tensor<?x{0}x{1}xf32> {
        %y = attn.rope {2} %x, %p rotary_dim({3}) theta(1.0e+06) {4}
            precision <compute = f32, accumulate = f32> : tensor<?x{0}x{1}xf32>, tensor<?xi32>
        return %y : tensor<?x{0}x{1}xf32>
      })mlir", h, c.d, c.layout, c.r, c.scalingIR).str());
    Vec x = randomVec(t * h * c.d, 30.0); // biased Q/K reach tens
    std::vector<int64_t> pos = randomPositions(t, 4096);
    std::vector<Arg> args = {tensorArg(Elem::F32, {t, h, c.d}, x),
                             tensorArg(Elem::I32, {t}, toDouble(pos))};
    Vec y = call("f", args, {Elem::F32}, {3})[0];
    ref::RopeLayout layout = std::string(c.layout) == "half_split"
                                 ? ref::RopeLayout::HalfSplit
                                 : ref::RopeLayout::Interleaved;
    expectClose(y, ref::rope(x, pos, t, h, c.d, layout, c.r, theta, c.scaling),
                1e-5,
                llvm::formatv("rope {0} D={1} R={2} {3}", c.layout, c.d, c.r,
                              c.scalingIR)
                    .str());
  }
}

/// The host rotates each row's groups in SIMD vectors (8 lanes with 16
/// registers, 16 with 32); the GPU's form is one generic per butterfly
/// stage. Both against the fp64 transform, and the vector forms bit for bit
/// against the stages, in f32 and with a bf16 tensor.
TEST_F(HostExecutionTest, HadamardForwardAndInverse) {
  for (int64_t g : {8, 32, 64, 128, 256}) {
    for (bool inverse : {false, true}) {
      std::vector<int> s1(g), s2(g);
      for (int &s : s1)
        s = rng() % 2 ? 1 : -1;
      for (int &s : s2)
        s = rng() % 2 ? 1 : -1;
      auto list = [](const std::vector<int> &s) {
        return llvm::join(llvm::map_range(s, [](int v) { return std::to_string(v); }),
                          ", ");
      };
      const int64_t rows = 3, heads = 2, dim = 2 * g;
      std::string what = "hadamard G=" + std::to_string(g) +
                         (inverse ? " inverse" : "");
      std::string source = llvm::formatv(R"mlir(
        func.func @f(%x: tensor<?x{0}x{1}xf32>) -> tensor<?x{0}x{1}xf32> {
          %y = attn.hadamard %x rotation(<group = {2}, s1 = [{3}], s2 = [{4}]>) {5}
              precision <compute = f32, accumulate = f32> : tensor<?x{0}x{1}xf32>
          return %y : tensor<?x{0}x{1}xf32>
        }
        func.func @h(%x: tensor<?x{0}x{1}xbf16>) -> tensor<?x{0}x{1}xbf16> {
          %y = attn.hadamard %x rotation(<group = {2}, s1 = [{3}], s2 = [{4}]>) {5}
              precision <compute = f32, accumulate = f32> : tensor<?x{0}x{1}xbf16>
          return %y : tensor<?x{0}x{1}xbf16>
        })mlir", heads, dim, g, list(s1), list(s2), inverse ? "inverse" : "").str();
      Vec x = randomVec(rows * heads * dim, 3.0);
      x[5] = 400; // an outlier, what rotations are for
      Vec xb = randomBF16Vec(rows * heads * dim, 3.0);
      auto run = [&](const char *name, Elem elem, const Vec &in) {
        std::vector<Arg> args = {tensorArg(elem, {rows, heads, dim}, in)};
        return call(name, args, {elem}, {3})[0];
      };
      compileEmulatingGpu(source);
      Vec stages = run("f", Elem::F32, x), stagesBF16 = run("h", Elem::BF16, xb);
      expectClose(stages, ref::hadamard(x, g, s1, s2, inverse), 1e-5,
                  what + ", stages");
      for (int64_t registers : {16, 32}) {
        rotor::PipelineOptions options;
        options.hostVectorRegisters = registers;
        compile(source, options);
        std::string form = what + ", host " + std::to_string(registers) +
                           " registers";
        Vec y = run("f", Elem::F32, x);
        expectClose(y, ref::hadamard(x, g, s1, s2, inverse), 1e-5, form);
        EXPECT_EQ(y, stages) << form << ": not the stages' bits, seed " << seed;
        EXPECT_EQ(run("h", Elem::BF16, xb), stagesBF16)
            << form << ", bf16: not the stages' bits, seed " << seed;
      }
    }
  }
}

TEST_F(HostExecutionTest, RmsNormAndOutputGate) {
  const int64_t t = 5, h = 4, d = 128;
  compile(llvm::formatv(R"mlir(
    func.func @norm(%x: tensor<?x{0}x{1}xf32>, %w: tensor<{1}xf32>) -> tensor<?x{0}x{1}xf32> {
      %y = attn.rms_norm %x, %w epsilon(1.0e-06) precision <compute = f32, accumulate = f32>
          : tensor<?x{0}x{1}xf32>, tensor<{1}xf32>
      return %y : tensor<?x{0}x{1}xf32>
    }
    func.func @gate(%x: tensor<?x{0}x{1}xf32>, %g: tensor<?x{0}x{1}xf32>) -> tensor<?x{0}x{1}xf32> {
      %y = attn.output_gate %x, %g precision <compute = f32, accumulate = f32>
          : tensor<?x{0}x{1}xf32>, tensor<?x{0}x{1}xf32>
      return %y : tensor<?x{0}x{1}xf32>
    })mlir", h, d).str());
  Vec x = randomVec(t * h * d, 5.0), w = randomVec(d, 1.0),
      g = randomVec(t * h * d, 3.0);
  std::vector<Arg> normArgs = {tensorArg(Elem::F32, {t, h, d}, x),
                               tensorArg(Elem::F32, {d}, w)};
  expectClose(call("norm", normArgs, {Elem::F32}, {3})[0],
              ref::rmsNorm(x, w, t * h, d, 1e-6), 1e-5, "rms_norm");
  std::vector<Arg> gateArgs = {tensorArg(Elem::F32, {t, h, d}, x),
                               tensorArg(Elem::F32, {t, h, d}, g)};
  expectClose(call("gate", gateArgs, {Elem::F32}, {3})[0],
              ref::outputGate(x, g), 1e-5, "output_gate");
}

TEST_F(HostExecutionTest, BF16StorageAndCompute) {
  // bf16 in, bf16 arithmetic, bf16 out: the result is within a few bf16
  // steps (2^-8 relative) of the exact value.
  const int64_t t = 7, h = 2, d = 64;
  compile(llvm::formatv(R"mlir(
    func.func @gate(%x: tensor<?x{0}x{1}xbf16>, %g: tensor<?x{0}x{1}xbf16>) -> tensor<?x{0}x{1}xbf16> {
      %y = attn.output_gate %x, %g precision <compute = bf16, accumulate = bf16>
          : tensor<?x{0}x{1}xbf16>, tensor<?x{0}x{1}xbf16>
      return %y : tensor<?x{0}x{1}xbf16>
    }
    func.func @norm(%x: tensor<?x{0}x{1}xbf16>, %w: tensor<{1}xbf16>) -> tensor<?x{0}x{1}xbf16> {
      %y = attn.rms_norm %x, %w epsilon(1.0e-06) precision <compute = bf16, accumulate = f32>
          : tensor<?x{0}x{1}xbf16>, tensor<{1}xbf16>
      return %y : tensor<?x{0}x{1}xbf16>
    }
    func.func @rope(%x: tensor<?x{0}x{1}xbf16>, %p: tensor<?xi32>) -> tensor<?x{0}x{1}xbf16> {
      %y = attn.rope half_split %x, %p rotary_dim({1}) theta(1.0e+06)
          precision <compute = bf16, accumulate = bf16> : tensor<?x{0}x{1}xbf16>, tensor<?xi32>
      return %y : tensor<?x{0}x{1}xbf16>
    })mlir", h, d).str());
  Vec x = randomBF16Vec(t * h * d, 2.0), g = randomBF16Vec(t * h * d, 2.0),
      w = randomBF16Vec(d, 1.0);
  std::vector<Arg> gateArgs = {tensorArg(Elem::BF16, {t, h, d}, x),
                               tensorArg(Elem::BF16, {t, h, d}, g)};
  expectClose(call("gate", gateArgs, {Elem::BF16}, {3})[0],
              ref::outputGate(x, g), 1.6e-2, "bf16 output_gate");
  std::vector<Arg> normArgs = {tensorArg(Elem::BF16, {t, h, d}, x),
                               tensorArg(Elem::BF16, {d}, w)};
  expectClose(call("norm", normArgs, {Elem::BF16}, {3})[0],
              ref::rmsNorm(x, w, t * h, d, 1e-6), 1.6e-2, "bf16 rms_norm");
  std::vector<int64_t> pos = randomPositions(t, 4096);
  std::vector<Arg> ropeArgs = {tensorArg(Elem::BF16, {t, h, d}, x),
                               tensorArg(Elem::I32, {t}, toDouble(pos))};
  expectClose(call("rope", ropeArgs, {Elem::BF16}, {3})[0],
              ref::rope(x, pos, t, h, d, ref::RopeLayout::HalfSplit, d, 1e6),
              1.6e-2, "bf16 rope");
}

// The host's vectorizable exp2 (rotor-approximate-exp-for-simd) against
// std::exp2 in double: within 4 f32 ulp over the normal range, within two
// of the smallest subnormal below it, 0 for -inf (a masked score) and far
// below, +inf from 128 up, NaN kept.
TEST_F(HostExecutionTest, HostExp2WithinUlpsOfExact) {
  compile(R"mlir(
    func.func @f(%x: tensor<?xf32>) -> tensor<?xf32> {
      %c0 = arith.constant 0 : index
      %n = tensor.dim %x, %c0 : tensor<?xf32>
      %e = tensor.empty(%n) : tensor<?xf32>
      %y = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>],
                           iterator_types = ["parallel"]}
          ins(%x : tensor<?xf32>) outs(%e : tensor<?xf32>) {
      ^bb0(%a: f32, %b: f32):
        %r = math.exp2 %a : f32
        linalg.yield %r : f32
      } -> tensor<?xf32>
      return %y : tensor<?xf32>
    })mlir");
  Vec x;
  for (double v = -152.0; v <= 127.0; v += 0.0137)
    x.push_back(float(v));
  for (double v : {-0.5, 0.5, -1e-7, 0.0, 1e-7, 127.99, -126.99})
    x.push_back(float(v));
  const double inf = std::numeric_limits<double>::infinity();
  for (double v : {-inf, -200.0, -127.5, 128.0, 300.0, inf})
    x.push_back(v);
  std::vector<Arg> args = {tensorArg(Elem::F32, {int64_t(x.size())}, x)};
  Vec y = call("f", args, {Elem::F32}, {1})[0];
  ASSERT_EQ(y.size(), x.size());
  double worstUlps = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double exact = std::exp2(x[i]);
    if (x[i] < -126.0) {
      // Flushed: no subnormal results (they slow every FMA reading them).
      EXPECT_EQ(y[i], 0.0) << "exp2(" << x[i] << ")";
    } else if (x[i] >= 128.0) {
      EXPECT_EQ(y[i], inf) << "exp2(" << x[i] << ")";
    } else {
      // One f32 ulp of the exact value (normal range).
      double ulp = std::ldexp(1.0, std::ilogb(exact) - 23);
      worstUlps = std::max(worstUlps, std::abs(y[i] - exact) / ulp);
    }
  }
  EXPECT_LE(worstUlps, 4.0);
  std::printf("host exp2: %zu inputs, worst %.2f ulp\n", x.size(), worstUlps);

  Vec nan = {std::numeric_limits<double>::quiet_NaN()};
  std::vector<Arg> nanArgs = {tensorArg(Elem::F32, {1}, nan)};
  EXPECT_TRUE(std::isnan(call("f", nanArgs, {Elem::F32}, {1})[0][0]));
}

// RoPE's cos and sin (ropeCosSin: f64 angle reduction, then Cephes's f32
// polynomials, which vectorize where libm's cosf/sinf are scalar calls):
// the pair (1, 0) at position p with inverse frequency 1 (theta^0) turns
// into (cos p, sin p). Over 2^17 positions the worst absolute error is
// within 3e-7: the f32 rounding of the reduced angle (up to 1.2e-7 near pi)
// plus about one ulp of each polynomial.
TEST_F(HostExecutionTest, RopeCosSinWithinUlpsOfExact) {
  compile(R"mlir(
    func.func @f(%x: tensor<?x1x2xf32>, %p: tensor<?xi32>) -> tensor<?x1x2xf32> {
      %y = attn.rope interleaved %x, %p rotary_dim(2) theta(1.0e+04)
          precision <compute = f32, accumulate = f32> : tensor<?x1x2xf32>, tensor<?xi32>
      return %y : tensor<?x1x2xf32>
    })mlir");
  const int64_t t = int64_t(1) << 17;
  Vec x(2 * t, 0.0), pos(t);
  for (int64_t i = 0; i < t; ++i) {
    x[2 * i] = 1.0;
    pos[i] = double(i * 7 % (int64_t(1) << 20));
  }
  std::vector<Arg> args = {tensorArg(Elem::F32, {t, 1, 2}, x),
                           tensorArg(Elem::I32, {t}, pos)};
  Vec y = call("f", args, {Elem::F32}, {3})[0];
  ASSERT_EQ(y.size(), x.size());
  double worst = 0;
  for (int64_t i = 0; i < t; ++i) {
    worst = std::max(worst, std::abs(y[2 * i] - std::cos(pos[i])));
    worst = std::max(worst, std::abs(y[2 * i + 1] - std::sin(pos[i])));
  }
  EXPECT_LE(worst, 3e-7);
  std::printf("rope cos/sin: %lld positions, worst absolute error %.3g\n",
              (long long)t, worst);
}

} // namespace
} // namespace rotor::unittest
