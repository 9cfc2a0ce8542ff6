//===- LinearExecutionTest.cpp - attn.linear run on the host --------------===//
//
// attn.linear in its loop-level form and as the GPU's workgroup-tiled GEMM
// and GEMV kernels (their thread phases run one after another), against the
// fp64 reference and, for the GEMM, bit for bit against the loop-level form.
//
//===----------------------------------------------------------------------===//

#include "HostExecutionFixture.h"

#include "llvm/Support/FormatVariadic.h"

namespace rotor::unittest {
namespace {

TEST_F(HostExecutionTest, LinearWithBiasF32) {
  for (int64_t t : {1, 7}) {
    const int64_t e = 96, n = 40;
    compile(llvm::formatv(R"mlir(
      func.func @f(%x: tensor<?x{0}xf32>, %w: tensor<{1}x{0}xf32>, %b: tensor<{1}xf32>) -> tensor<?x{1}xf32> {
        %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
            : tensor<?x{0}xf32>, tensor<{1}x{0}xf32>, tensor<{1}xf32> -> tensor<?x{1}xf32>
        return %y : tensor<?x{1}xf32>
      })mlir", e, n).str());
    Vec x = randomVec(t * e, 1.0), w = randomVec(n * e, 0.1),
        b = randomVec(n, 20.0);
    std::vector<Arg> args = {tensorArg(Elem::F32, {t, e}, x),
                             tensorArg(Elem::F32, {n, e}, w),
                             tensorArg(Elem::F32, {n}, b)};
    Vec y = call("f", args, {Elem::F32}, {2})[0];
    expectClose(y, ref::linear(x, w, b, t, e, n), 1e-5, "linear T=" + std::to_string(t));
  }
}

TEST_F(HostExecutionTest, LinearBF16OperandsAccumulateInF32) {
  const int64_t t = 5, e = 128, n = 24;
  compile(llvm::formatv(R"mlir(
    func.func @f(%x: tensor<?x{0}xbf16>, %w: tensor<{1}x{0}xbf16>) -> tensor<?x{1}xf32> {
      %y = attn.linear %x, %w precision <compute = bf16, accumulate = f32>
          : tensor<?x{0}xbf16>, tensor<{1}x{0}xbf16> -> tensor<?x{1}xf32>
      return %y : tensor<?x{1}xf32>
    })mlir", e, n).str());
  Vec x = randomBF16Vec(t * e, 1.0), w = randomBF16Vec(n * e, 0.1);
  std::vector<Arg> args = {tensorArg(Elem::BF16, {t, e}, x),
                           tensorArg(Elem::BF16, {n, e}, w)};
  Vec y = call("f", args, {Elem::F32}, {2})[0];
  // Products of bf16 values are exact in f32; only the f32 sum rounds.
  expectClose(y, ref::linear(x, w, {}, t, e, n), 1e-5, "bf16 linear");
}

// Projections as the GPU's workgroup-tiled GEMM, run on the host: token
// counts around the 64-row tile, output and reduction dims that are not
// multiples of the 64-column tile or 32-wide slice, a reduction dim that is
// not whole 16-byte vectors (scalar loads), an input whose rows are not
// aligned (a column slice: scalar loads too), bias or none, bf16. The sum
// is formed in LowerLinear's order, so the loop-level form agrees exactly.
TEST_F(HostExecutionTest, LinearWorkgroupTiled) {
  struct Case {
    int64_t t, e, n;
    bool bias, bf16, offsetX;
  };
  std::vector<Case> cases = {
      {1, 96, 40, true, false, false},   // one token (dynamic T)
      {64, 64, 64, true, false, false},  // one exact tile
      {100, 70, 96, true, false, false}, // partial tiles and slice
      {130, 10, 33, false, false, false}, // e = 10: scalar loads
      {40, 896, 128, true, false, false}, // Qwen2.5-0.5B's hidden size
      {70, 128, 72, true, true, false},   // bf16
      {50, 64, 40, true, false, true},    // unaligned input rows
  };
  for (const Case &c : cases) {
    std::string elem = c.bf16 ? "bf16" : "f32";
    std::string compute = c.bf16 ? "bf16" : "f32";
    int64_t xWidth = c.offsetX ? c.e + 1 : c.e;
    std::string xView =
        c.offsetX
            ? llvm::formatv(R"mlir(
        %c0 = arith.constant 0 : index
        %rows = tensor.dim %xbig, %c0 : tensor<?x{0}x{1}>
        %x = tensor.extract_slice %xbig[0, 1] [%rows, {2}] [1, 1]
            : tensor<?x{0}x{1}> to tensor<?x{2}x{1}>)mlir",
                          xWidth, elem, c.e)
                  .str()
            : "";
    std::string xArg = llvm::formatv("{0}: tensor<?x{1}x{2}>",
                                     c.offsetX ? "%xbig" : "%x", xWidth, elem)
                           .str();
    std::string biasArg =
        c.bias ? llvm::formatv(", %b: tensor<{0}x{1}>", c.n, elem).str() : "";
    std::string biasUse = c.bias ? ", %b" : "";
    std::string biasType =
        c.bias ? llvm::formatv(", tensor<{0}x{1}>", c.n, elem).str() : "";
    std::string source = llvm::formatv(R"mlir(
      func.func @f({0}, %w: tensor<{2}x{3}x{4}>{5}) -> tensor<?x{2}xf32> {{{1}
        %y = attn.linear %x, %w{6} precision <compute = {7}, accumulate = f32>
            : tensor<?x{3}x{4}>, tensor<{2}x{3}x{4}>{8} -> tensor<?x{2}xf32>
        return %y : tensor<?x{2}xf32>
      })mlir", xArg, xView, c.n, c.e, elem, biasArg, biasUse, compute,
                                       biasType).str();
    rotor::PipelineOptions options;
    options.workgroupTiledLinear = true;
    compile(source, options);
    Elem el = c.bf16 ? Elem::BF16 : Elem::F32;
    auto round = [&](Vec v) {
      if (c.bf16)
        for (double &y : v)
          y = fromBF16(toBF16(y));
      return v;
    };
    Vec x = round(randomVec(c.t * c.e, 1.0)), w = round(randomVec(c.n * c.e, 0.1)),
        b = round(randomVec(c.n, 20.0));
    Vec xPassed = x;
    if (c.offsetX) {
      xPassed.assign(c.t * xWidth, 1e30); // never read
      for (int64_t r = 0; r < c.t; ++r)
        for (int64_t k = 0; k < c.e; ++k)
          xPassed[r * xWidth + 1 + k] = x[r * c.e + k];
    }
    std::vector<Arg> args = {tensorArg(el, {c.t, xWidth}, xPassed),
                             tensorArg(el, {c.n, c.e}, w)};
    if (c.bias)
      args.push_back(tensorArg(el, {c.n}, b));
    Vec tiled = call("f", args, {Elem::F32}, {2})[0];
    std::string what = llvm::formatv("workgroup-tiled linear T={0} E={1} N={2}"
                                     "{3}{4}{5}",
                                     c.t, c.e, c.n, c.bias ? " bias" : "",
                                     c.bf16 ? " bf16" : "",
                                     c.offsetX ? " unaligned x" : "")
                           .str();
    expectClose(tiled, ref::linear(x, w, c.bias ? b : Vec{}, c.t, c.e, c.n),
                1e-5, what);
    // The loop-level form in linalg's order (the host's SIMD lane sums
    // are another order).
    options.workgroupTiledLinear = false;
    options.vectorizeReductions = false;
    compile(source, options);
    Vec loops = call("f", args, {Elem::F32}, {2})[0];
    EXPECT_EQ(tiled, loops) << what << ": differs from the loop-level form";
  }
}

// Decode-shaped projections as the GPU's GEMV kernel, run on the host: one
// to 15 static tokens, a reduction dim that is not whole vectors (scalar
// loads), an output dim that is not a multiple of 4, a W whose rows are not
// aligned (a column slice: scalar loads of the same elements in the same
// order), bias or none, bf16.
TEST_F(HostExecutionTest, LinearWorkgroupGemv) {
  struct Case {
    int64_t t, e, n;
    bool bias, bf16, offsetW;
  };
  std::vector<Case> cases = {
      {1, 896, 128, true, false, false},  // Qwen2.5-0.5B's q_proj slice
      {3, 70, 33, true, false, false},    // e = 70: scalar loads
      {15, 256, 40, false, false, false}, // the most tokens it takes
      {1, 128, 72, true, true, false},    // bf16: 8 per load
      {2, 200, 24, true, false, true},    // unaligned W rows
  };
  for (const Case &c : cases) {
    std::string elem = c.bf16 ? "bf16" : "f32";
    int64_t wWidth = c.offsetW ? c.e + 1 : c.e;
    std::string wView =
        c.offsetW ? llvm::formatv(R"mlir(
        %w = tensor.extract_slice %wbig[0, 1] [{0}, {1}] [1, 1]
            : tensor<{0}x{2}x{3}> to tensor<{0}x{1}x{3}>)mlir",
                                  c.n, c.e, wWidth, elem)
                        .str()
                  : "";
    std::string wArg = llvm::formatv("{0}: tensor<{1}x{2}x{3}>",
                                     c.offsetW ? "%wbig" : "%w", c.n, wWidth,
                                     elem)
                           .str();
    std::string biasArg =
        c.bias ? llvm::formatv(", %b: tensor<{0}x{1}>", c.n, elem).str() : "";
    std::string source = llvm::formatv(R"mlir(
      func.func @f(%x: tensor<{0}x{1}x{2}>, {3}{4}) -> tensor<{0}x{5}xf32> {{{6}
        %y = attn.linear %x, %w{7} precision <compute = {2}, accumulate = f32>
            : tensor<{0}x{1}x{2}>, tensor<{5}x{1}x{2}>{8} -> tensor<{0}x{5}xf32>
        return %y : tensor<{0}x{5}xf32>
      })mlir", c.t, c.e, elem, wArg, biasArg, c.n, wView, c.bias ? ", %b" : "",
                                       c.bias ? llvm::formatv(", tensor<{0}x{1}>", c.n, elem).str() : "").str();
    rotor::PipelineOptions options;
    options.workgroupTiledLinear = true;
    compile(source, options);
    Elem el = c.bf16 ? Elem::BF16 : Elem::F32;
    auto round = [&](Vec v) {
      if (c.bf16)
        for (double &y : v)
          y = fromBF16(toBF16(y));
      return v;
    };
    Vec x = round(randomVec(c.t * c.e, 1.0)), w = round(randomVec(c.n * c.e, 0.1)),
        b = round(randomVec(c.n, 20.0));
    Vec wPassed = w;
    if (c.offsetW) {
      wPassed.assign(c.n * wWidth, 1e30); // never read
      for (int64_t r = 0; r < c.n; ++r)
        for (int64_t k = 0; k < c.e; ++k)
          wPassed[r * wWidth + 1 + k] = w[r * c.e + k];
    }
    std::vector<Arg> args = {tensorArg(el, {c.t, c.e}, x),
                             tensorArg(el, {c.n, wWidth}, wPassed)};
    if (c.bias)
      args.push_back(tensorArg(el, {c.n}, b));
    Vec gemv = call("f", args, {Elem::F32}, {2})[0];
    std::string what = llvm::formatv("workgroup GEMV T={0} E={1} N={2}{3}{4}{5}",
                                     c.t, c.e, c.n, c.bias ? " bias" : "",
                                     c.bf16 ? " bf16" : "",
                                     c.offsetW ? " unaligned W" : "")
                           .str();
    expectClose(gemv, ref::linear(x, w, c.bias ? b : Vec{}, c.t, c.e, c.n),
                1e-5, what);
  }
}

} // namespace
} // namespace rotor::unittest
