//===- SdpaExecutionTest.cpp - attn.sdpa run on the host ------------------===//
//
// Scaled dot-product attention with GQA, causal masks and given positions:
// the loop-level form, split-KV decode, and the GPU's workgroup-tiled prefill
// and decode kernels, also over a quantized KV cache, against the fp64
// reference and against each other.
//
//===----------------------------------------------------------------------===//

#include "HostExecutionFixture.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

namespace rotor::unittest {
namespace {

struct SdpaCase {
  int64_t tq, tk, hq, hkv, d;
  bool causal, withPositions;
};

TEST_F(HostExecutionTest, SdpaGqaCausalAndLong) {
  std::vector<SdpaCase> cases = {
      {7, 7, 2, 2, 64, true, false},     // GQA ratio 1, odd T
      {9, 9, 14, 2, 64, true, false},    // ratio 7 (Qwen2.5-0.5B)
      {6, 6, 8, 4, 256, false, false},   // ratio 2, no mask, D = 256
      {5, 300, 4, 2, 128, true, true},   // queries at given positions
      {1, 4096, 14, 2, 64, true, false}, // decode over a 4096-long cache
      {33, 33, 4, 2, 64, true, false},   // several tiles of prefill
  };
  for (const SdpaCase &c : cases) {
    std::string posArg = c.withPositions ? ", %p: tensor<?xi32>" : "";
    std::string posUse = c.withPositions ? "positions(%p)" : "";
    std::string posType = c.withPositions ? ", tensor<?xi32>" : "";
    compile(llvm::formatv(R"mlir(
      func.func @f(%q: tensor<?x{0}x{2}xf32>, %k: tensor<?x{1}x{2}xf32>, %v: tensor<?x{1}x{2}xf32>{3})
          -> tensor<?x{0}x{2}xf32> {
        %o = attn.sdpa %q, %k, %v {4} {5} precision <compute = f32, accumulate = f32>
            : tensor<?x{0}x{2}xf32>, tensor<?x{1}x{2}xf32>, tensor<?x{1}x{2}xf32>{6} -> tensor<?x{0}x{2}xf32>
        return %o : tensor<?x{0}x{2}xf32>
      })mlir", c.hq, c.hkv, c.d, posArg, posUse, c.causal ? "causal" : "",
                          posType).str());
    Vec q = randomVec(c.tq * c.hq * c.d, 1.0), k = randomVec(c.tk * c.hkv * c.d, 1.0),
        v = randomVec(c.tk * c.hkv * c.d, 1.0);
    std::optional<std::vector<int64_t>> positions;
    std::vector<Arg> args = {tensorArg(Elem::F32, {c.tq, c.hq, c.d}, q),
                             tensorArg(Elem::F32, {c.tk, c.hkv, c.d}, k),
                             tensorArg(Elem::F32, {c.tk, c.hkv, c.d}, v)};
    if (c.withPositions) {
      positions = randomPositions(c.tq, c.tk);
      args.push_back(tensorArg(Elem::I32, {c.tq}, toDouble(*positions)));
    }
    Vec o = call("f", args, {Elem::F32}, {3})[0];
    expectClose(o,
                ref::sdpa(q, k, v, c.tq, c.tk, c.hq, c.hkv, c.d, c.d, c.causal,
                          positions),
                1e-5,
                llvm::formatv("sdpa Tq={0} Tk={1} Hq={2} Hkv={3} D={4}", c.tq,
                              c.tk, c.hq, c.hkv, c.d)
                    .str());
  }
}

// Decode SDPA (one query row) as split-KV attention: every KV tile at once,
// then a combine; and as the GPU's workgroup-tiled decode kernel. KV lengths around the tile size (the last tile is partial
// and its keys are read through a clamped index), GQA, a query position
// that masks trailing keys, no mask, tiles of 7 and 64 keys, bf16.
TEST_F(HostExecutionTest, SdpaDecodeSplitKV) {
  struct Case {
    int64_t tk, hq, hkv, d, tile;
    bool causal, withPositions, bf16;
  };
  std::vector<Case> cases = {
      {1, 2, 2, 64, 64, true, false, false},     // one key
      {63, 14, 2, 64, 64, true, false, false},   // one partial tile
      {64, 14, 2, 64, 64, true, false, false},   // one full tile
      {65, 14, 2, 64, 64, true, false, false},   // a full and a 1-key tile
      {300, 8, 4, 128, 7, true, true, false},    // position masks the tail
      {300, 4, 1, 32, 64, false, false, false},  // no mask
      {4096, 28, 4, 128, 64, true, false, false}, // Qwen2.5-7B heads
      {200, 14, 2, 64, 64, true, false, true},   // bf16 storage and compute
  };
  for (const Case &c : cases) {
    std::string elem = c.bf16 ? "bf16" : "f32";
    std::string posArg = c.withPositions ? ", %p: tensor<1xi32>" : "";
    std::string posUse = c.withPositions ? "positions(%p)" : "";
    std::string posType = c.withPositions ? ", tensor<1xi32>" : "";
    std::string source = llvm::formatv(R"mlir(
      func.func @f(%q: tensor<1x{0}x{2}x{7}>, %k: tensor<?x{1}x{2}x{7}>, %v: tensor<?x{1}x{2}x{7}>{3})
          -> tensor<1x{0}x{2}x{7}> {
        %o = attn.sdpa %q, %k, %v {4} {5} precision <compute = {7}, accumulate = f32>
            : tensor<1x{0}x{2}x{7}>, tensor<?x{1}x{2}x{7}>, tensor<?x{1}x{2}x{7}>{6} -> tensor<1x{0}x{2}x{7}>
        return %o : tensor<1x{0}x{2}x{7}>
      })mlir", c.hq, c.hkv, c.d, posArg, posUse, c.causal ? "causal" : "",
                          posType, elem).str();
    rotor::PipelineOptions options;
    options.splitKVDecode = true;
    options.kvTileSize = c.tile;
    compile(source, options);
    Elem e = c.bf16 ? Elem::BF16 : Elem::F32;
    auto round = [&](Vec x) {
      if (c.bf16)
        for (double &y : x)
          y = fromBF16(toBF16(y));
      return x;
    };
    Vec q = round(randomVec(c.hq * c.d, 1.0)),
        k = round(randomVec(c.tk * c.hkv * c.d, 1.0)),
        v = round(randomVec(c.tk * c.hkv * c.d, 1.0));
    std::optional<std::vector<int64_t>> positions;
    std::vector<Arg> args = {tensorArg(e, {1, c.hq, c.d}, q),
                             tensorArg(e, {c.tk, c.hkv, c.d}, k),
                             tensorArg(e, {c.tk, c.hkv, c.d}, v)};
    if (c.withPositions) {
      positions = std::vector<int64_t>{c.tk / 2};
      args.push_back(tensorArg(Elem::I32, {1}, toDouble(*positions)));
    }
    Vec split = call("f", args, {e}, {3})[0];
    std::string what = llvm::formatv("split-KV sdpa Tk={0} Hq={1} Hkv={2} D={3} "
                                     "tile={4}{5}",
                                     c.tk, c.hq, c.hkv, c.d, c.tile,
                                     c.bf16 ? " bf16" : "")
                           .str();
    expectClose(split,
                ref::sdpa(q, k, v, 1, c.tk, c.hq, c.hkv, c.d, c.d, c.causal,
                          positions),
                c.bf16 ? 1.6e-2 : 1e-5, what);
    // The tiled loop computes the same thing.
    options.splitKVDecode = false;
    compile(source, options);
    Vec tiled = call("f", args, {e}, {3})[0];
    expectClose(split, tiled, c.bf16 ? 1.6e-2 : 1e-5, what + " vs tiled");
    // And so does the GPU's decode kernel: workgroups of one KV head's GQA
    // rows, the KV length split across workgroups, then a combine.
    options.workgroupTiledSdpa = true;
    compile(source, options);
    Vec grouped = call("f", args, {e}, {3})[0];
    expectClose(grouped,
                ref::sdpa(q, k, v, 1, c.tk, c.hq, c.hkv, c.d, c.d, c.causal,
                          positions),
                c.bf16 ? 1.6e-2 : 1e-5, what + " workgroup-tiled");
  }
}

// Prefill SDPA as workgroup-tiled attention, the GPU pipeline's kernel,
// run on the host (its thread phases one after another): several query
// tiles and KV tiles with partial last ones, GQA, given positions, no mask,
// an empty KV, head dims that pick smaller tiles (256) or rule out vector
// loads (10), bf16, and a K whose rows are not 16-byte aligned (a view at
// an odd offset, which takes the scalar loads). Checked against the fp64
// reference and against the loop-level form.
TEST_F(HostExecutionTest, SdpaWorkgroupTiledPrefill) {
  struct Case {
    int64_t tq, tk, hq, hkv, d;
    bool causal, withPositions, bf16, offsetK;
  };
  std::vector<Case> cases = {
      {7, 7, 2, 2, 64, true, false, false, false},     // one partial tile
      {100, 100, 14, 2, 64, true, false, false, false}, // 4 tiles, GQA 7
      {64, 64, 4, 4, 128, true, false, false, false},   // exact tiles
      {5, 300, 8, 4, 128, true, true, false, false},    // given positions
      {40, 70, 4, 2, 128, false, false, false, false},  // no mask
      {3, 0, 2, 1, 64, false, false, false, false},     // empty KV
      {33, 33, 4, 2, 256, true, false, false, false},   // D = 256
      {20, 20, 2, 1, 10, true, false, false, false},    // D = 10: scalar
      {50, 50, 14, 2, 64, true, false, true, false},    // bf16
      {45, 45, 4, 2, 64, true, false, false, true},     // unaligned K rows
  };
  for (const Case &c : cases) {
    std::string elem = c.bf16 ? "bf16" : "f32";
    std::string posArg = c.withPositions ? ", %p: tensor<?xi32>" : "";
    std::string posUse = c.withPositions ? "positions(%p)" : "";
    std::string posType = c.withPositions ? ", tensor<?xi32>" : "";
    // With offsetK, K arrives with one extra leading element per row and is
    // viewed from element 1: every row starts 4 bytes past alignment.
    std::string kArg = c.offsetK
                           ? llvm::formatv("%kbig: tensor<?x{0}x{1}x{2}>",
                                           c.hkv, c.d + 1, elem)
                                 .str()
                           : llvm::formatv("%k: tensor<?x{0}x{1}x{2}>", c.hkv,
                                           c.d, elem)
                                 .str();
    std::string kView =
        c.offsetK
            ? llvm::formatv(R"mlir(
        %c0 = arith.constant 0 : index
        %tk = tensor.dim %kbig, %c0 : tensor<?x{0}x{1}x{2}>
        %k = tensor.extract_slice %kbig[0, 0, 1] [%tk, {0}, {3}] [1, 1, 1]
            : tensor<?x{0}x{1}x{2}> to tensor<?x{0}x{3}x{2}>)mlir",
                          c.hkv, c.d + 1, elem, c.d)
                  .str()
            : "";
    std::string source = llvm::formatv(R"mlir(
      func.func @f(%q: tensor<?x{0}x{2}x{7}>, {8}, %v: tensor<?x{1}x{2}x{7}>{3})
          -> tensor<?x{0}x{2}x{7}> {{{9}
        %o = attn.sdpa %q, %k, %v {4} {5} precision <compute = {7}, accumulate = f32>
            : tensor<?x{0}x{2}x{7}>, tensor<?x{1}x{2}x{7}>, tensor<?x{1}x{2}x{7}>{6} -> tensor<?x{0}x{2}x{7}>
        return %o : tensor<?x{0}x{2}x{7}>
      })mlir", c.hq, c.hkv, c.d, posArg, posUse, c.causal ? "causal" : "",
                          posType, elem, kArg, kView).str();
    rotor::PipelineOptions options;
    options.workgroupTiledSdpa = true;
    compile(source, options);
    Elem e = c.bf16 ? Elem::BF16 : Elem::F32;
    auto round = [&](Vec x) {
      if (c.bf16)
        for (double &y : x)
          y = fromBF16(toBF16(y));
      return x;
    };
    Vec q = round(randomVec(c.tq * c.hq * c.d, 1.0)),
        k = round(randomVec(c.tk * c.hkv * c.d, 1.0)),
        v = round(randomVec(c.tk * c.hkv * c.d, 1.0));
    Vec kPassed = k;
    int64_t kWidth = c.d;
    if (c.offsetK) {
      kWidth = c.d + 1;
      kPassed.assign(c.tk * c.hkv * kWidth, 1e30); // never read
      for (int64_t r = 0; r < c.tk * c.hkv; ++r)
        for (int64_t x = 0; x < c.d; ++x)
          kPassed[r * kWidth + 1 + x] = k[r * c.d + x];
    }
    std::optional<std::vector<int64_t>> positions;
    std::vector<Arg> args = {tensorArg(e, {c.tq, c.hq, c.d}, q),
                             tensorArg(e, {c.tk, c.hkv, kWidth}, kPassed),
                             tensorArg(e, {c.tk, c.hkv, c.d}, v)};
    if (c.withPositions) {
      positions = randomPositions(c.tq, c.tk);
      args.push_back(tensorArg(Elem::I32, {c.tq}, toDouble(*positions)));
    }
    Vec tiled = call("f", args, {e}, {3})[0];
    std::string what =
        llvm::formatv("workgroup-tiled sdpa Tq={0} Tk={1} Hq={2} Hkv={3} D={4}"
                      "{5}{6}",
                      c.tq, c.tk, c.hq, c.hkv, c.d, c.bf16 ? " bf16" : "",
                      c.offsetK ? " unaligned K" : "")
            .str();
    expectClose(tiled,
                ref::sdpa(q, k, v, c.tq, c.tk, c.hq, c.hkv, c.d, c.d, c.causal,
                          positions),
                c.bf16 ? 1.6e-2 : 1e-5, what);
    options.workgroupTiledSdpa = false;
    compile(source, options);
    Vec loops = call("f", args, {e}, {3})[0];
    expectClose(tiled, loops, c.bf16 ? 1.6e-2 : 1e-5, what + " vs loop-level");
  }
}

// The workgroup SDPA over a quantized KV cache reads the codes and scales
// and dequantizes each K/V tile while staging it, so the dequantized cache
// never reaches memory. Bit-exact against the same kernel reading K and V
// dequantized apart (@apart also returns them, so there they are not
// fused), and, staged from a packed cache's bytes (@packed: each code and
// scale unpacked while staging), bit-exact against both; within 1e-5 of
// the fp64 reference on those values, for
// prefill and a split decode step, absmax and codebook formats, f16 and f32
// scales, f32 and bf16 values.
TEST_F(HostExecutionTest, SdpaDequantizesQuantizedKVWhileStaging) {
  struct Case {
    const char *tq; // "?" or static
    int64_t t, tk, hq, hkv, d;
    unsigned bits;
    int64_t block;
    const char *scheme, *scaleType, *elem;
  };
  std::vector<Case> cases = {
      {"?", 40, 40, 4, 2, 64, 4, 32, "absmax", "f16", "f32"},
      {"1", 1, 300, 8, 2, 128, 3, 64, "codebook", "f32", "f32"},
      {"?", 17, 50, 14, 2, 64, 8, 16, "absmax", "f32", "bf16"},
  };
  for (const Case &c : cases) {
    std::string format =
        llvm::formatv("<bits = {0}, block_size = {1}, scheme = {2}, "
                      "scale_type = {3}>",
                      c.bits, c.block, c.scheme, c.scaleType)
            .str();
    std::string qType =
        llvm::formatv("tensor<{0}x{1}x{2}x{3}>", c.tq, c.hq, c.d, c.elem).str();
    std::string kvType =
        llvm::formatv("tensor<?x{0}x{1}x{2}>", c.hkv, c.d, c.elem).str();
    std::string codesType =
        llvm::formatv("tensor<?x{0}x{1}xi8>", c.hkv, c.d).str();
    std::string scalesType = llvm::formatv("tensor<?x{0}x{1}x{2}>", c.hkv,
                                           c.d / c.block, c.scaleType)
                                 .str();
    std::string body = llvm::formatv(R"mlir(
        %k = attn.dequantize %kc, %ks format({0}) precision <compute = f32, accumulate = f32>
            : {1}, {2} -> {3}
        %v = attn.dequantize %vc, %vs format({0}) precision <compute = f32, accumulate = f32>
            : {1}, {2} -> {3}
        %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
            : {4}, {3}, {3} -> {4})mlir",
                                     format, codesType, scalesType, kvType,
                                     qType)
                           .str();
    std::string args =
        llvm::formatv("%q: {0}, %kc: {1}, %ks: {2}, %vc: {1}, %vs: {2}", qType,
                      codesType, scalesType)
            .str();
    // The same K and V packed into a cache's bytes (@pack): @packed stages
    // its tiles from the bytes, unpacking each code and scale on the way.
    int64_t scaleBytes = std::string(c.scaleType) == "f16" ? 2 : 4;
    int64_t rowBytes = (c.d / c.block) * (scaleBytes + c.block * c.bits / 8);
    std::string bytesType =
        llvm::formatv("tensor<?x{0}x{1}xi8>", c.hkv, rowBytes).str();
    std::string packed = llvm::formatv(R"mlir(
      func.func @pack(%c: {1}, %s: {2}) -> {3} {{
        %b = attn.pack_blocks %c, %s format({0}) : {1}, {2} -> {3}
        return %b : {3}
      }
      func.func @packed(%q: {4}, %kb: {3}, %vb: {3}) -> {4} {{
        %kc, %ks = attn.unpack_blocks %kb format({0}) : {3} -> {1}, {2}
        %vc, %vs = attn.unpack_blocks %vb format({0}) : {3} -> {1}, {2}
        {5}
        return %o : {4}
      })mlir",
                                       format, codesType, scalesType,
                                       bytesType, qType, body)
                             .str();
    rotor::PipelineOptions options;
    options.workgroupTiledSdpa = true;
    compile(llvm::formatv(R"mlir(
      func.func @fused({0}) -> {1} {{{2}
        return %o : {1}
      }
      func.func @apart({0}) -> ({1}, {3}, {3}) {{{2}
        return %o, %k, %v : {1}, {3}, {3}
      }
      {4})mlir",
                          args, qType, body, kvType, packed)
                .str(),
            options);
    Elem e = std::string(c.elem) == "bf16" ? Elem::BF16 : Elem::F32;
    Elem scaleElem = std::string(c.scaleType) == "f16" ? Elem::F16 : Elem::F32;
    auto codes = [&] {
      Vec x(c.tk * c.hkv * c.d);
      int64_t levels = int64_t(1) << c.bits;
      for (double &v : x)
        v = std::string(c.scheme) == "absmax"
                ? double(int64_t(rng() % (levels - 1)) - (levels / 2 - 1))
                : double(rng() % levels);
      return x;
    };
    auto scales = [&] {
      Vec x = randomVec(c.tk * c.hkv * (c.d / c.block), 0.5);
      for (double &v : x)
        v = std::abs(v) + 0.01;
      return x;
    };
    Vec q = randomVec(c.t * c.hq * c.d, 1.0);
    Vec kc = codes(), ks = scales(), vc = codes(), vs = scales();
    auto argsFor = [&] {
      return std::vector<Arg>{
          tensorArg(e, {c.t, c.hq, c.d}, q),
          tensorArg(Elem::I8, {c.tk, c.hkv, c.d}, kc),
          tensorArg(scaleElem, {c.tk, c.hkv, c.d / c.block}, ks),
          tensorArg(Elem::I8, {c.tk, c.hkv, c.d}, vc),
          tensorArg(scaleElem, {c.tk, c.hkv, c.d / c.block}, vs)};
    };
    std::vector<Arg> fusedArgs = argsFor(), apartArgs = argsFor();
    Vec fused = call("fused", fusedArgs, {e}, {3})[0];
    std::vector<Vec> apart = call("apart", apartArgs, {e, e, e}, {3, 3, 3});
    std::string what = llvm::formatv("Tq={0} Tk={1} {2}", c.t, c.tk, format);
    ASSERT_EQ(fused.size(), apart[0].size());
    for (size_t i = 0; i < fused.size(); ++i)
      ASSERT_EQ(fused[i], apart[0][i])
          << what << ": element " << i << ", seed " << seed;
    auto pack = [&](const Vec &codes, const Vec &scales) {
      std::vector<Arg> packArgs = {
          tensorArg(Elem::I8, {c.tk, c.hkv, c.d}, codes),
          tensorArg(scaleElem, {c.tk, c.hkv, c.d / c.block}, scales)};
      return call("pack", packArgs, {Elem::I8}, {3})[0];
    };
    std::vector<Arg> packedArgs = {
        tensorArg(e, {c.t, c.hq, c.d}, q),
        tensorArg(Elem::I8, {c.tk, c.hkv, rowBytes}, pack(kc, ks)),
        tensorArg(Elem::I8, {c.tk, c.hkv, rowBytes}, pack(vc, vs))};
    Vec fromBytes = call("packed", packedArgs, {e}, {3})[0];
    ASSERT_EQ(fromBytes.size(), fused.size());
    for (size_t i = 0; i < fused.size(); ++i)
      ASSERT_EQ(fromBytes[i], fused[i])
          << what << ", staged from the packed bytes: element " << i
          << ", seed " << seed;
    Vec qRounded = q;
    if (e == Elem::BF16)
      for (double &x : qRounded)
        x = fromBF16(toBF16(x));
    expectClose(fused,
                ref::sdpa(qRounded, apart[1], apart[2], c.t, c.tk, c.hq, c.hkv,
                          c.d, c.d, /*causal=*/true, std::nullopt),
                e == Elem::BF16 ? 1.6e-2 : 1e-5, what);
  }
}

} // namespace
} // namespace rotor::unittest

namespace rotor::unittest {
namespace {

/// attn.sdpa's key-bias term: q · RoPE(b, j) added to every score equals
/// attention over keys k + RoPE(b, j) (fp64 reference), for both pair
/// layouts, partial rotary, a YaRN attention factor, GQA, prefill and a
/// decode row, with a bias of Qwen2.5's size (|b| up to 171); on the host
/// and in the GPU pipeline's kernels run as thread teams.
TEST_F(HostExecutionTest, SdpaKeyBiasTermEqualsBiasedKeys) {
  struct Case {
    const char *layout;
    int64_t rotary;
    const char *scaling;
    ref::RopeLayout refLayout;
    ref::RopeScaling refScaling;
  };
  ref::RopeScaling yarn;
  yarn.kind = ref::RopeScaling::Kind::Yarn;
  yarn.factor = 4;
  yarn.originalMaxPositions = 32;
  yarn.attentionFactor = 1.2;
  // Three tiles of 64 keys: the term at every tile's first key and after.
  const int64_t hq = 6, hkv = 2, d = 64, tk = 150;
  // The loop form, the split-KV decode form (host), and the GPU pipeline's
  // kernels (split-KV for the decode row) run as thread teams.
  enum class Lowering { Loops, SplitKV, Gpu };
  for (Lowering lowering : {Lowering::Loops, Lowering::SplitKV, Lowering::Gpu})
    // Half-split with R = D (the loop form's per-pair step tables), with
    // R = D/2 (per-pair, the dims past R zero), interleaved partial, and
    // half-split with 12 pairs (per-dim tables) and YaRN.
    for (Case c : {Case{"half_split", 64, "", ref::RopeLayout::HalfSplit, {}},
                   Case{"half_split", 32, "", ref::RopeLayout::HalfSplit, {}},
                   Case{"interleaved", 16, "", ref::RopeLayout::Interleaved, {}},
                   Case{"half_split", 24,
                        ", scaling = #attn.yarn_scaling<factor = 4.0, "
                        "original_max_position_embeddings = 32, beta_fast = 32.0, "
                        "beta_slow = 1.0, attention_factor = 1.2, truncate = true>",
                        ref::RopeLayout::HalfSplit, yarn}}) {
      for (int64_t tq : {tk, int64_t(1)}) {
        // Split-KV is for a decode row; the GPU kernels once per layout,
        // to keep the test short.
        if ((lowering == Lowering::SplitKV && tq != 1) ||
            (lowering == Lowering::Gpu && c.scaling[0]))
          continue;
        std::string qShape = tq == 1 ? "1" : "?";
        std::string source = llvm::formatv(R"mlir(
          func.func @f(%q: tensor<{0}x{1}x{2}xf32>, %k: tensor<?x{3}x{2}xf32>,
                       %v: tensor<?x{3}x{2}xf32>, %b: tensor<{3}x{2}xf32>) -> tensor<{0}x{1}x{2}xf32> {
            %o = attn.sdpa %q, %k, %v
                key_bias(%b : tensor<{3}x{2}xf32> rope(<layout = {4}, rotary_dim = {5}, theta = 1.0e+04{6}>))
                causal precision <compute = f32, accumulate = f32>
                : tensor<{0}x{1}x{2}xf32>, tensor<?x{3}x{2}xf32>, tensor<?x{3}x{2}xf32> -> tensor<{0}x{1}x{2}xf32>
            return %o : tensor<{0}x{1}x{2}xf32>
          })mlir", qShape, hq, d, hkv, c.layout, c.rotary, c.scaling).str();
        rotor::PipelineOptions options;
        if (lowering == Lowering::SplitKV)
          options.splitKVDecode = true;
        if (lowering == Lowering::Gpu)
          compileEmulatingGpu(source);
        else
          compile(source, options);
        // Keys of ~1 next to a bias of up to 171: the term dominates.
        Vec q = randomVec(tq * hq * d, 0.3), k = randomVec(tk * hkv * d, 1.0);
        Vec v = randomVec(tk * hkv * d, 1.0), b = randomVec(hkv * d, 20.0);
        b[3] = 171.0;
        std::vector<Arg> args = {tensorArg(Elem::F32, {tq, hq, d}, q),
                                 tensorArg(Elem::F32, {tk, hkv, d}, k),
                                 tensorArg(Elem::F32, {tk, hkv, d}, v),
                                 tensorArg(Elem::F32, {hkv, d}, b)};
        Vec out = call("f", args, {Elem::F32}, {3})[0];
        // The reference: RoPE(b) at every key position, added to the keys.
        Vec rows(tk * hkv * d);
        std::vector<int64_t> positions(tk);
        for (int64_t j = 0; j < tk; ++j) {
          positions[j] = j;
          std::copy(b.begin(), b.end(), rows.begin() + j * hkv * d);
        }
        Vec rotated = ref::rope(rows, positions, tk, hkv, d, c.refLayout,
                                c.rotary, 1e4, c.refScaling);
        Vec biased(k);
        for (size_t i = 0; i < biased.size(); ++i)
          biased[i] += rotated[i];
        Vec expected = ref::sdpa(q, biased, v, tq, tk, hq, hkv, d, d, true,
                                 std::nullopt);
        const char *name = lowering == Lowering::Gpu       ? "gpu-emulation "
                           : lowering == Lowering::SplitKV ? "split-kv "
                                                           : "loops ";
        expectClose(out, expected, 2e-5,
                    std::string(name) + c.layout +
                        " R " + std::to_string(c.rotary) + " Tq " +
                        std::to_string(tq));
      }
    }
}

} // namespace
} // namespace rotor::unittest
