//===- EpilogueFusionTest.cpp - Ops fused into kernels, bit-exact ---------===//
//
// A projection's RoPE, rotation and quantization fused into its epilogue
// (loop level, the GPU's GEMM and GEMV) or into a kernel of their own, on
// the host: bit for bit what the same ops lowered apart compute.
//
//===----------------------------------------------------------------------===//

#include "HostExecutionFixture.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <set>

namespace rotor::unittest {
namespace {

/// Rotating Q/K in the projection's epilogue changes where values live, not
/// the arithmetic: the fused and unfused lowerings agree bit for bit.
TEST_F(HostExecutionTest, RopeEpilogueFusionIsBitExact) {
  const int64_t t = 5, e = 64, h = 4, d = 16;
  std::string source = llvm::formatv(R"mlir(
    func.func @f(%x: tensor<?x{0}xf32>, %w: tensor<{1}x{0}xbf16>, %b: tensor<{1}xf32>,
                 %p: tensor<?xi32>) -> tensor<?x{2}x{3}xbf16> {
      %c0 = arith.constant 0 : index
      %n = tensor.dim %x, %c0 : tensor<?x{0}xf32>
      %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
          : tensor<?x{0}xf32>, tensor<{1}x{0}xbf16>, tensor<{1}xf32> -> tensor<?x{1}xbf16>
      %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, {2}, {3}]
          : tensor<?x{1}xbf16> into tensor<?x{2}x{3}xbf16>
      %r = attn.rope interleaved %y3, %p rotary_dim(12) theta(1.0e+04)
          precision <compute = f32, accumulate = f32> : tensor<?x{2}x{3}xbf16>, tensor<?xi32>
      return %r : tensor<?x{2}x{3}xbf16>
    })mlir", e, h * d, h, d).str();
  Vec x = randomVec(t * e, 1.0), w = randomBF16Vec(h * d * e, 0.2),
      b = randomVec(h * d, 20.0);
  std::vector<int64_t> pos = randomPositions(t, 4096);
  auto run = [&](bool fuse) {
    rotor::PipelineOptions options;
    options.fuseRopeEpilogue = fuse;
    compile(source, options);
    std::vector<Arg> args = {tensorArg(Elem::F32, {t, e}, x),
                             tensorArg(Elem::BF16, {h * d, e}, w),
                             tensorArg(Elem::F32, {h * d}, b),
                             tensorArg(Elem::I32, {t}, toDouble(pos))};
    return call("f", args, {Elem::BF16}, {3})[0];
  };
  Vec fused = run(true), separate = run(false);
  ASSERT_EQ(fused.size(), separate.size());
  for (size_t i = 0; i < fused.size(); ++i)
    ASSERT_EQ(fused[i], separate[i]) << "element " << i << ", seed " << seed;
}

// The GPU's GEMM with the RoPE in its epilogue (one head per column tile):
// bit-exact against the projection and the RoPE lowered apart, for head
// dims 64 and 128, both layouts, partial rotary, bf16 weights and output,
// dynamic NTK scaling, and a token count that leaves partial tiles.
TEST_F(HostExecutionTest, RopeInWorkgroupGemmEpilogueIsBitExact) {
  struct Case {
    int64_t t, e, h, d, rotary;
    const char *layout, *scaling;
  };
  std::vector<Case> cases = {
      {70, 96, 3, 64, 64, "half_split", ""},
      {40, 64, 2, 128, 128, "interleaved", ""},
      {33, 64, 2, 128, 64, "half_split",
       "scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 64>)"},
  };
  for (const Case &c : cases) {
    std::string source = llvm::formatv(R"mlir(
      func.func @f(%x: tensor<?x{0}xf32>, %w: tensor<{1}x{0}xbf16>, %b: tensor<{1}xf32>,
                   %p: tensor<?xi32>) -> tensor<?x{2}x{3}xbf16> {
        %c0 = arith.constant 0 : index
        %n = tensor.dim %x, %c0 : tensor<?x{0}xf32>
        %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
            : tensor<?x{0}xf32>, tensor<{1}x{0}xbf16>, tensor<{1}xf32> -> tensor<?x{1}xbf16>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, {2}, {3}]
            : tensor<?x{1}xbf16> into tensor<?x{2}x{3}xbf16>
        %r = attn.rope {4} %y3, %p rotary_dim({5}) theta(1.0e+04) {6}
            precision <compute = f32, accumulate = f32> : tensor<?x{2}x{3}xbf16>, tensor<?xi32>
        return %r : tensor<?x{2}x{3}xbf16>
      })mlir", c.e, c.h * c.d, c.h, c.d, c.layout, c.rotary, c.scaling).str();
    Vec x = randomVec(c.t * c.e, 1.0), w = randomBF16Vec(c.h * c.d * c.e, 0.2),
        b = randomVec(c.h * c.d, 20.0);
    std::vector<int64_t> pos = randomPositions(c.t, 4096);
    auto run = [&](bool workgroup) {
      rotor::PipelineOptions options;
      options.fuseRopeEpilogue = false;
      options.workgroupTiledLinear = workgroup;
      compile(source, options);
      std::vector<Arg> args = {tensorArg(Elem::F32, {c.t, c.e}, x),
                               tensorArg(Elem::BF16, {c.h * c.d, c.e}, w),
                               tensorArg(Elem::F32, {c.h * c.d}, b),
                               tensorArg(Elem::I32, {c.t}, toDouble(pos))};
      return call("f", args, {Elem::BF16}, {3})[0];
    };
    Vec fused = run(true), separate = run(false);
    ASSERT_EQ(fused.size(), separate.size());
    for (size_t i = 0; i < fused.size(); ++i)
      ASSERT_EQ(fused[i], separate[i])
          << c.layout << " D=" << c.d << " element " << i << ", seed " << seed;
  }
}

// A decode GEMV with the RoPE in its epilogue (each workgroup two RoPE
// pairs of one head): bit-exact against the same GEMV followed by the RoPE
// kernel (@apart, where the projection has a second user and so is not
// fused), for both layouts, partial rotary, bf16, one and three tokens.
TEST_F(HostExecutionTest, RopeInWorkgroupGemvEpilogueIsBitExact) {
  struct Case {
    int64_t t, e, h, d, rotary;
    const char *layout, *type;
  };
  std::vector<Case> cases = {{1, 96, 3, 64, 64, "half_split", "f32"},
                             {3, 64, 2, 128, 64, "half_split", "bf16"},
                             {1, 64, 4, 128, 128, "interleaved", "f32"},
                             {2, 80, 2, 64, 32, "interleaved", "bf16"}};
  for (const Case &c : cases) {
    std::string source = llvm::formatv(R"mlir(
      func.func @fused(%x: tensor<{0}x{1}xf32>, %w: tensor<{2}x{1}xf32>, %b: tensor<{2}xf32>,
                       %p: tensor<{0}xi32>) -> tensor<{0}x{3}x{4}x{5}> {
        %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
            : tensor<{0}x{1}xf32>, tensor<{2}x{1}xf32>, tensor<{2}xf32> -> tensor<{0}x{2}x{5}>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [{0}, {3}, {4}]
            : tensor<{0}x{2}x{5}> into tensor<{0}x{3}x{4}x{5}>
        %r = attn.rope {6} %y3, %p rotary_dim({7}) theta(1.0e+04)
            precision <compute = f32, accumulate = f32> : tensor<{0}x{3}x{4}x{5}>, tensor<{0}xi32>
        return %r : tensor<{0}x{3}x{4}x{5}>
      }
      func.func @apart(%x: tensor<{0}x{1}xf32>, %w: tensor<{2}x{1}xf32>, %b: tensor<{2}xf32>,
                       %p: tensor<{0}xi32>) -> (tensor<{0}x{3}x{4}x{5}>, tensor<{0}x{2}x{5}>) {
        %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
            : tensor<{0}x{1}xf32>, tensor<{2}x{1}xf32>, tensor<{2}xf32> -> tensor<{0}x{2}x{5}>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [{0}, {3}, {4}]
            : tensor<{0}x{2}x{5}> into tensor<{0}x{3}x{4}x{5}>
        %r = attn.rope {6} %y3, %p rotary_dim({7}) theta(1.0e+04)
            precision <compute = f32, accumulate = f32> : tensor<{0}x{3}x{4}x{5}>, tensor<{0}xi32>
        return %r, %y : tensor<{0}x{3}x{4}x{5}>, tensor<{0}x{2}x{5}>
      })mlir", c.t, c.e, c.h * c.d, c.h, c.d, c.type, c.layout, c.rotary).str();
    rotor::PipelineOptions options;
    options.fuseRopeEpilogue = false;
    options.workgroupTiledLinear = true;
    compile(source, options);
    Elem type = std::string(c.type) == "bf16" ? Elem::BF16 : Elem::F32;
    Vec x = randomVec(c.t * c.e, 1.0), w = randomVec(c.h * c.d * c.e, 0.2),
        b = randomVec(c.h * c.d, 20.0);
    std::vector<int64_t> pos = randomPositions(c.t, 30000);
    auto args = [&] {
      return std::vector<Arg>{tensorArg(Elem::F32, {c.t, c.e}, x),
                              tensorArg(Elem::F32, {c.h * c.d, c.e}, w),
                              tensorArg(Elem::F32, {c.h * c.d}, b),
                              tensorArg(Elem::I32, {c.t}, toDouble(pos))};
    };
    std::vector<Arg> fusedArgs = args(), apartArgs = args();
    Vec fused = call("fused", fusedArgs, {type}, {3})[0];
    Vec apart = call("apart", apartArgs, {type, type}, {3, 2})[0];
    ASSERT_EQ(fused.size(), apart.size());
    for (size_t i = 0; i < fused.size(); ++i)
      ASSERT_EQ(fused[i], apart[i]) << c.layout << " D=" << c.d << " R="
                                    << c.rotary << " " << c.type
                                    << ": element " << i << ", seed " << seed;
  }
}

/// One chain of HeadChainInWorkgroupKernelsIsBitExact.
struct HeadChainCase {
  bool projected;       // the chain's input is a GEMM's (else an argument)
  const char *tokens;   // "?" or the static token count
  int64_t t, e, h, d;
  const char *rope;     // "" or "<layout> rotary_dim(R)"
  int64_t group;        // 0: no rotation
  bool inverse;
  const char *quantize; // "" or a KV block format
  int64_t block;
  const char *type;     // the chain's input (and RoPE's) type
};

/// The Q, K and V paths, in a GEMM's epilogue or as a kernel of their own.
std::vector<HeadChainCase> headChainCases() {
  return {
    // Q: RoPE then the rotation, into bf16.
    {true, "?", 37, 64, 3, 64, "half_split %p rotary_dim(32)", 32, false,
     "", 0, "bf16"},
    // K: RoPE, the inverse rotation, 4-bit absmax codes with f16 scales.
    {true, "?", 40, 96, 2, 128, "interleaved %p rotary_dim(128)", 128, true,
     "<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>", 32,
     "f32"},
    // V: the rotation and 3-bit codebook codes.
    {true, "?", 19, 64, 2, 128, "", 64, false,
     "<bits = 3, block_size = 64, scheme = codebook, scale_type = f32>", 64,
     "bf16"},
    // V without a rotation: 8-bit absmax codes alone.
    {true, "?", 70, 64, 3, 64, "", 0, false,
     "<bits = 8, block_size = 16, scheme = absmax, scale_type = f32>", 16,
     "f32"},
    // K with RoPE straight into codes.
    {true, "?", 33, 64, 2, 64, "half_split %p rotary_dim(64)", 0, false,
     "<bits = 4, block_size = 64, scheme = absmax, scale_type = f16>", 64,
     "bf16"},
    // Decode-shaped K (one token): the chain kernel after the GEMV.
    {false, "1", 1, 0, 4, 128, "half_split %p rotary_dim(128)", 128, false,
     "<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>", 32,
     "f32"},
    // A few static tokens of Q: RoPE and the inverse rotation into bf16.
    {false, "5", 5, 0, 3, 64, "interleaved %p rotary_dim(48)", 64, true, "",
     0, "bf16"},
    // Dynamic tokens, several row tiles: rotation and codebook codes.
    {false, "?", 19, 0, 2, 128, "", 32, false,
     "<bits = 2, block_size = 32, scheme = codebook, scale_type = f32>", 32,
     "bf16"},
  };
}

/// Hadamard signs as attn.hadamard lists them.
std::string signList(const std::vector<int> &s) {
  return llvm::join(
      llvm::map_range(s, [](int v) { return std::to_string(v); }), ", ");
}

/// Whether the chain's quantization stores f16 scales (else f32).
bool hasF16Scales(const HeadChainCase &c) {
  return std::string(c.quantize).find("f16>") != std::string::npos;
}

/// The function @f that computes chain `c`, on the projection that feeds it
/// or on its argument %y3. The rotation's random signs come from `rng`.
std::string headChainSource(const HeadChainCase &c, std::mt19937_64 &rng) {
  std::string heads =
      llvm::formatv("tensor<{0}x{1}x{2}x{3}>", c.tokens, c.h, c.d, c.type)
          .str();
  std::string posType = llvm::formatv("tensor<{0}xi32>", c.tokens).str();
  std::string body, value = "%y3", results = heads;
  if (*c.rope) {
    body += llvm::formatv("%r = attn.rope {0} theta(1.0e+04) precision "
                          "<compute = f32, accumulate = f32> : {1}, {2}\n",
                          c.rope, heads, posType)
                .str();
    body.replace(body.find("%p"), 2, "%y3, %p");
    value = "%r";
  }
  if (c.group) {
    std::vector<int> s1(c.group), s2(c.group);
    for (int &v : s1)
      v = rng() % 2 ? 1 : -1;
    for (int &v : s2)
      v = rng() % 2 ? 1 : -1;
    body += llvm::formatv("%hr = attn.hadamard {0} rotation(<group = {1}, "
                          "s1 = [{2}], s2 = [{3}]>) {4} precision <compute "
                          "= f32, accumulate = f32> : {5}\n",
                          value, c.group, signList(s1), signList(s2),
                          c.inverse ? "inverse" : "", heads)
                .str();
    value = "%hr";
  }
  std::string ret = value;
  std::string scaleType = hasF16Scales(c) ? "f16" : "f32";
  if (*c.quantize) {
    body += llvm::formatv("%codes, %scales = attn.quantize {0} format({1}) "
                          "precision <compute = f32, accumulate = f32> : {2}\n",
                          value, c.quantize, heads)
                .str();
    ret = "%codes, %scales";
    results =
        llvm::formatv("tensor<{0}x{1}x{2}xi8>, tensor<{0}x{1}x{3}x{4}>",
                      c.tokens, c.h, c.d, c.d / c.block, scaleType)
            .str();
  }
  std::string source;
  if (c.projected)
    source = llvm::formatv(R"mlir(
      func.func @f(%x: tensor<?x{0}xf32>, %w: tensor<{1}x{0}xbf16>, %b: tensor<{1}xf32>,
                   %p: tensor<?xi32>) -> ({2}) {
        %c0 = arith.constant 0 : index
        %n = tensor.dim %x, %c0 : tensor<?x{0}xf32>
        %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
            : tensor<?x{0}xf32>, tensor<{1}x{0}xbf16>, tensor<{1}xf32> -> tensor<?x{1}x{3}>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, {4}, {5}]
            : tensor<?x{1}x{3}> into {6}
        {7}
        return {8} : {2}
      })mlir", c.e, c.h * c.d, results, c.type, c.h, c.d, heads, body, ret).str();
  else
    source = llvm::formatv(R"mlir(
      func.func @f(%y3: {0}, %p: {1}) -> ({2}) {
        {3}
        return {4} : {2}
      })mlir", heads, posType, results, body, ret).str();
  return source;
}

// A per-head chain (the Q, K and V paths of a rotated, quantized KV cache:
// RoPE, then a Hadamard rotation, then a block quantization, each optional)
// as the GPU runs it: in the epilogue of the GEMM that projects it, or, on a
// tensor no GEMM computes (after a decode GEMV), as one workgroup kernel of
// its own. Bit-exact against the ops lowered apart: rotated values, codes
// and scales, for forward and inverse rotations with random signs, absmax
// and codebook formats, f16 and f32 scales, bf16 intermediates, static and
// dynamic token counts.
TEST_F(HostExecutionTest, HeadChainInWorkgroupKernelsIsBitExact) {
  for (const HeadChainCase &c : headChainCases()) {
    std::string source = headChainSource(c, rng);
    Elem type = std::string(c.type) == "bf16" ? Elem::BF16 : Elem::F32;
    Vec x = randomVec(c.t * c.e, 1.0), w = randomBF16Vec(c.h * c.d * c.e, 0.2),
        b = randomVec(c.h * c.d, 20.0);
    Vec y = randomVec(c.t * c.h * c.d, 30.0);
    std::vector<int64_t> pos = randomPositions(c.t, 4096);
    auto run = [&](bool workgroup) {
      rotor::PipelineOptions options;
      options.fuseRopeEpilogue = false;
      options.workgroupTiledLinear = workgroup;
      compile(source, options);
      std::vector<Arg> args;
      if (c.projected)
        args = {tensorArg(Elem::F32, {c.t, c.e}, x),
                tensorArg(Elem::BF16, {c.h * c.d, c.e}, w),
                tensorArg(Elem::F32, {c.h * c.d}, b)};
      else
        args = {tensorArg(type, {c.t, c.h, c.d}, y)};
      args.push_back(tensorArg(Elem::I32, {c.t}, toDouble(pos)));
      if (!*c.quantize)
        return call("f", args, {type}, {3});
      return call("f", args,
                  {Elem::I8, hasF16Scales(c) ? Elem::F16 : Elem::F32},
                  {3, 3});
    };
    std::vector<Vec> fused = run(true), separate = run(false);
    std::string what = std::string(c.projected ? "GEMM epilogue " : "kernel ") +
                       c.rope + " G=" + std::to_string(c.group) + " " +
                       c.quantize;
    ASSERT_EQ(fused.size(), separate.size());
    for (size_t r = 0; r < fused.size(); ++r) {
      ASSERT_EQ(fused[r].size(), separate[r].size());
      for (size_t i = 0; i < fused[r].size(); ++i)
        ASSERT_EQ(fused[r][i], separate[r][i])
            << what << ": result " << r << " element " << i << ", seed "
            << seed;
    }
    // Codes that are all equal would make the comparison vacuous.
    if (*c.quantize)
      EXPECT_GT(std::set<double>(fused[0].begin(), fused[0].end()).size(),
                size_t(3))
          << what;
  }
}

} // namespace
} // namespace rotor::unittest
