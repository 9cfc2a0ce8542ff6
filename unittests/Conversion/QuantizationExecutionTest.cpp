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
#include <cstring>

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

/// The bytes of one packed cache row, written here from the format's
/// description (attn.pack_blocks): per block the scale's bytes, then the
/// codes' low `bits` bits, LSB first.
std::vector<uint8_t> packRow(const std::vector<int> &codes,
                             const std::vector<uint32_t> &scaleBits,
                             unsigned bits, int64_t block, int scaleBytes) {
  std::vector<uint8_t> out;
  for (size_t blk = 0; blk < scaleBits.size(); ++blk) {
    for (int k = 0; k < scaleBytes; ++k)
      out.push_back(uint8_t(scaleBits[blk] >> (8 * k)));
    std::vector<uint8_t> packed(size_t(block) * bits / 8, 0);
    for (int64_t i = 0; i < block; ++i) {
      uint32_t code = uint32_t(codes[blk * block + i]) & ((1u << bits) - 1);
      for (unsigned bit = 0; bit < bits; ++bit)
        if (code >> bit & 1) {
          size_t at = size_t(i) * bits + bit;
          packed[at / 8] |= uint8_t(1u << (at % 8));
        }
    }
    out.insert(out.end(), packed.begin(), packed.end());
  }
  return out;
}

/// attn.pack_blocks writes the documented bytes (50 per 128 values at
/// 3 bits with an f16 scale), and attn.unpack_blocks gives back the codes
/// and scales, for every KV format.
TEST_F(HostExecutionTest, PackAndUnpackBlocks) {
  struct Case {
    const char *name, *scheme, *scaleType;
    unsigned bits;
    int64_t block, blockBytes;
  };
  for (Case c : {Case{"q8_0", "absmax", "f16", 8, 32, 34},
                 Case{"q4_0", "absmax", "f16", 4, 32, 18},
                 Case{"turbo3", "codebook", "f16", 3, 128, 50},
                 Case{"turbo4", "codebook", "f16", 4, 128, 66},
                 Case{"2-bit, f32 scale", "codebook", "f32", 2, 64, 20},
                 Case{"3-bit absmax, bf16 scale", "absmax", "bf16", 3, 32, 14}}) {
    SCOPED_TRACE(c.name);
    const int64_t rows = 5, dim = 256, nb = dim / c.block;
    const int64_t rowBytes = nb * c.blockBytes;
    Elem scaleElem = std::string(c.scaleType) == "f32"  ? Elem::F32
                     : std::string(c.scaleType) == "f16" ? Elem::F16
                                                          : Elem::BF16;
    int scaleBytes = scaleElem == Elem::F32 ? 4 : 2;
    std::string format = llvm::formatv(
        "<bits = {0}, block_size = {1}, scheme = {2}, scale_type = {3}>",
        c.bits, c.block, c.scheme, c.scaleType);
    compile(llvm::formatv(R"mlir(
      func.func @pack(%c: tensor<?x{0}xi8>, %s: tensor<?x{1}x{3}>) -> tensor<?x{2}xi8> {
        %b = attn.pack_blocks %c, %s format({4}) : tensor<?x{0}xi8>, tensor<?x{1}x{3}> -> tensor<?x{2}xi8>
        return %b : tensor<?x{2}xi8>
      }
      func.func @unpack(%b: tensor<?x{2}xi8>) -> (tensor<?x{0}xi8>, tensor<?x{1}x{3}>) {
        %c, %s = attn.unpack_blocks %b format({4}) : tensor<?x{2}xi8> -> tensor<?x{0}xi8>, tensor<?x{1}x{3}>
        return %c, %s : tensor<?x{0}xi8>, tensor<?x{1}x{3}>
      })mlir", dim, nb, rowBytes, c.scaleType, format).str());
    bool absmax = std::string(c.scheme) == "absmax";
    int lo = absmax ? -((1 << (c.bits - 1)) - 1) : 0;
    int hi = absmax ? (1 << (c.bits - 1)) - 1 : (1 << c.bits) - 1;
    Vec codes(rows * dim), scales = randomVec(rows * nb, 3.0);
    for (double &v : codes)
      v = lo + int(rng() % uint64_t(hi - lo + 1));
    codes[0] = lo, codes[1] = hi; // the extremes, sign bits included
    // The scales as stored (rounded to the scale type).
    Buffer scaleBuffer(scaleElem, {rows, nb}, scales);
    std::vector<uint8_t> expected;
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<int> rowCodes(codes.begin() + r * dim,
                                codes.begin() + (r + 1) * dim);
      std::vector<uint32_t> bits(nb, 0);
      for (int64_t k = 0; k < nb; ++k)
        std::memcpy(&bits[k], scaleBuffer.bytes.data() + (r * nb + k) * scaleBytes,
                    scaleBytes);
      std::vector<uint8_t> row = packRow(rowCodes, bits, c.bits, c.block, scaleBytes);
      ASSERT_EQ(int64_t(row.size()), rowBytes);
      expected.insert(expected.end(), row.begin(), row.end());
    }
    std::vector<Arg> args = {tensorArg(Elem::I8, {rows, dim}, codes),
                             Arg{scaleBuffer, 0}};
    Vec packed = call("pack", args, {Elem::I8}, {2})[0];
    ASSERT_EQ(packed.size(), expected.size());
    for (size_t i = 0; i < packed.size(); ++i)
      ASSERT_EQ(uint8_t(int8_t(packed[i])), expected[i]) << "byte " << i << ", seed " << seed;

    std::vector<Arg> unpackArgs = {tensorArg(Elem::I8, {rows, rowBytes}, packed)};
    std::vector<Vec> back = call("unpack", unpackArgs, {Elem::I8, scaleElem}, {2, 2});
    EXPECT_EQ(back[0], codes);
    for (int64_t k = 0; k < rows * nb; ++k)
      ASSERT_EQ(back[1][k], load(scaleElem, scaleBuffer.bytes.data() + k * scaleBytes));

    // dequantize(unpack_blocks) lowers to one generic that decodes each
    // value from the bytes; the host decodes it a block at a time with 8 or
    // 16 lanes (rotor-vectorize-block-decoding), the GPU's form value by
    // value. All three give f32(scale) * f32(level), rounded once.
    std::string decode = llvm::formatv(R"mlir(
      func.func @decode(%b: tensor<?x{2}xi8>) -> tensor<?x{0}xf32> {
        %c, %s = attn.unpack_blocks %b format({4}) : tensor<?x{2}xi8> -> tensor<?x{0}xi8>, tensor<?x{1}x{3}>
        %x = attn.dequantize %c, %s format({4}) precision <compute = f32, accumulate = f32>
            : tensor<?x{0}xi8>, tensor<?x{1}x{3}> -> tensor<?x{0}xf32>
        return %x : tensor<?x{0}xf32>
      })mlir", dim, nb, rowBytes, c.scaleType, format).str();
    Vec centroids = absmax ? Vec{} : ref::lloydMaxCentroids(c.bits);
    Vec expectedValues(codes.size());
    for (int64_t i = 0; i < rows * dim; ++i) {
      int64_t k = (i / dim) * nb + (i % dim) / c.block;
      float scale = float(load(scaleElem, scaleBuffer.bytes.data() + k * scaleBytes));
      float level = absmax ? float(codes[i]) : float(centroids[size_t(codes[i])]);
      expectedValues[i] = double(scale * level);
    }
    for (int64_t registers : {16, 32, 0}) {
      SCOPED_TRACE(registers ? "host, " + std::to_string(registers) + " registers"
                             : std::string("GPU emulation"));
      rotor::PipelineOptions options;
      if (registers) {
        options.hostVectorRegisters = registers;
        compile(decode, options);
      } else {
        compileEmulatingGpu(decode);
      }
      std::vector<Arg> decodeArgs = {tensorArg(Elem::I8, {rows, rowBytes}, packed)};
      Vec values = call("decode", decodeArgs, {Elem::F32}, {2})[0];
      ASSERT_EQ(values.size(), expectedValues.size());
      for (size_t i = 0; i < values.size(); ++i)
        ASSERT_EQ(values[i], expectedValues[i]) << "value " << i << ", seed " << seed;
    }
  }
}

} // namespace
} // namespace rotor::unittest
