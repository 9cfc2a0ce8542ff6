//===- QuantizationExecutionTest.cpp - attn.quantize, attn.dequantize -----===//
//
// Block quantization of a KV cache, absmax and codebook: every scale is the
// block's statistic, every code the nearest level, and dequantization
// rebuilds the values from them.
//
//===----------------------------------------------------------------------===//

#include "HostExecutionFixture.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>

namespace rotor::unittest {
namespace {

TEST_F(HostExecutionTest, QuantizeAbsmaxAndCodebook) {
  struct Case { const char *scheme; unsigned bits; };
  for (Case c : {Case{"absmax", 4}, Case{"absmax", 8}, Case{"codebook", 2},
                 Case{"codebook", 3}, Case{"codebook", 4}}) {
    const int64_t rows = 6, dim = 128, block = 32;
    std::string format = llvm::formatv(
        "<bits = {0}, block_size = {1}, scheme = {2}, scale_type = f32>",
        c.bits, block, c.scheme);
    compile(llvm::formatv(R"mlir(
      func.func @q(%x: tensor<?x{0}xf32>) -> (tensor<?x{0}xi8>, tensor<?x{1}xf32>) {
        %c, %s = attn.quantize %x format({2}) precision <compute = f32, accumulate = f32> : tensor<?x{0}xf32>
        return %c, %s : tensor<?x{0}xi8>, tensor<?x{1}xf32>
      }
      func.func @d(%c: tensor<?x{0}xi8>, %s: tensor<?x{1}xf32>) -> tensor<?x{0}xf32> {
        %x = attn.dequantize %c, %s format({2}) precision <compute = f32, accumulate = f32>
            : tensor<?x{0}xi8>, tensor<?x{1}xf32> -> tensor<?x{0}xf32>
        return %x : tensor<?x{0}xf32>
      })mlir", dim, dim / block, format).str());
    Vec x = randomVec(rows * dim, 2.0);
    for (int64_t i = 0; i < block; ++i)
      x[2 * dim + i] = 0; // an all-zero block: scale 0, codes 0
    std::vector<Arg> args = {tensorArg(Elem::F32, {rows, dim}, x)};
    std::vector<Vec> out = call("q", args, {Elem::I8, Elem::F32}, {2, 2});
    const Vec &codes = out[0], &scales = out[1];

    bool absmax = std::string(c.scheme) == "absmax";
    double qmax = double((1 << (c.bits - 1)) - 1);
    Vec centroids = absmax ? Vec{} : ref::lloydMaxCentroids(c.bits);
    Vec expectedRecon(x.size());
    std::string what = std::string(c.scheme) + " " + std::to_string(c.bits);
    for (int64_t blk = 0; blk < rows * dim / block; ++blk) {
      double stat = 0;
      for (int64_t i = 0; i < block; ++i) {
        double v = x[blk * block + i];
        stat = absmax ? std::max(stat, std::abs(v)) : stat + v * v;
      }
      double expectedScale = absmax ? stat / qmax : std::sqrt(stat / block);
      ASSERT_NEAR(scales[blk], expectedScale, 1e-6 * (1 + expectedScale))
          << what << " block " << blk << ", seed " << seed;
      double s = scales[blk];
      for (int64_t i = 0; i < block; ++i) {
        double v = x[blk * block + i], code = codes[blk * block + i];
        double ratio = s == 0 ? 0 : v / s;
        if (absmax) {
          // The nearest level, within f32 rounding of the ratio.
          ASSERT_LE(std::abs(code), qmax) << what;
          ASSERT_LE(std::abs(ratio - code), 0.5 + 1e-5) << what << ", seed " << seed;
          expectedRecon[blk * block + i] = s * code;
        } else {
          ASSERT_GE(code, 0) << what;
          ASSERT_LT(code, double(centroids.size())) << what;
          double mine = std::abs(ratio - centroids[size_t(code)]);
          for (double other : centroids)
            ASSERT_LE(mine, std::abs(ratio - other) + 1e-5)
                << what << ": code " << code << " is not the nearest centroid of "
                << ratio << ", seed " << seed;
          expectedRecon[blk * block + i] = s * centroids[size_t(code)];
        }
      }
    }
    std::vector<Arg> dargs = {tensorArg(Elem::I8, {rows, dim}, codes),
                              tensorArg(Elem::F32, {rows, dim / block}, scales)};
    expectClose(call("d", dargs, {Elem::F32}, {2})[0], expectedRecon, 1e-6,
                "dequantize " + what);
  }
}

} // namespace
} // namespace rotor::unittest
