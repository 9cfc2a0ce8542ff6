//===- GpuEmulationTest.cpp - GPU kernels as host thread teams ------------===//
//
// The GPU pipeline's kernels, their launches emulated on the host as OpenMP
// thread teams (rotor-emulate-gpu-launches-on-host), against the same
// kernels run phase by phase: the GPU mapping's semantics without a GPU.
//
//===----------------------------------------------------------------------===//

#include "HostExecutionFixture.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

#include <unistd.h>

#include <csignal>
#include <numeric>

namespace rotor::unittest {
namespace {

// Threads that disagree on their barriers (a phase whose loop bounds come
// from workgroup memory read before it was written) deadlock: fail then,
// rather than hang.
struct Watchdog {
  Watchdog() {
    std::signal(SIGALRM, [](int) {
      const char message[] = "GpuMappedKernelsMatchPhaseByPhase: no result "
                             "after 15 minutes: the emulated GPU threads "
                             "deadlocked at a barrier not every thread "
                             "reaches\n";
      [[maybe_unused]] ssize_t n = write(2, message, sizeof(message) - 1);
      _exit(1);
    });
    alarm(900);
  }
  ~Watchdog() { alarm(0); }
};

/// One kernel, or entry point of the layer, to run both ways.
struct EmulationCase {
  std::string name, source;
  std::vector<Arg> args;
  std::vector<Elem> results;
  std::vector<size_t> ranks;
  std::string function = "f";
};

/// A fixed pattern of Hadamard signs for a group of `n`.
std::string fixedSigns(int64_t n) {
  std::vector<int> s(n);
  for (int64_t i = 0; i < n; ++i)
    s[i] = (i * 7 + 3) % 5 < 2 ? -1 : 1;
  return llvm::join(
      llvm::map_range(s, [](int v) { return std::to_string(v); }), ", ");
}

/// The workgroup SDPA for prefill (f32 and bf16) and a plain bf16 GEMM.
void addPrefillCases(HostExecutionTest &test,
                     std::vector<EmulationCase> &cases) {
  // Prefill SDPA, GQA 2, causal, a partial row tile.
  cases.push_back(
      {"prefill sdpa", R"mlir(
      func.func @f(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x64xf32>)
          -> tensor<?x4x64xf32> {
        %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
            : tensor<?x4x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x4x64xf32>
        return %o : tensor<?x4x64xf32>
      })mlir",
       {tensorArg(Elem::F32, {37, 4, 64}, test.randomVec(37 * 4 * 64, 1.0)),
        tensorArg(Elem::F32, {37, 2, 64}, test.randomVec(37 * 2 * 64, 1.0)),
        tensorArg(Elem::F32, {37, 2, 64}, test.randomVec(37 * 2 * 64, 1.0))},
       {Elem::F32},
       {3}});
  // bf16 prefill SDPA at D = 128 with partial row and key tiles.
  cases.push_back(
      {"bf16 prefill sdpa", R"mlir(
      func.func @f(%q: tensor<?x8x128xbf16>, %k: tensor<?x2x128xbf16>, %v: tensor<?x2x128xbf16>)
          -> tensor<?x8x128xbf16> {
        %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32>
            : tensor<?x8x128xbf16>, tensor<?x2x128xbf16>, tensor<?x2x128xbf16> -> tensor<?x8x128xbf16>
        return %o : tensor<?x8x128xbf16>
      })mlir",
       {tensorArg(Elem::BF16, {50, 8, 128},
                  test.randomVec(50 * 8 * 128, 1.0)),
        tensorArg(Elem::BF16, {50, 2, 128},
                  test.randomVec(50 * 2 * 128, 1.0)),
        tensorArg(Elem::BF16, {50, 2, 128},
                  test.randomVec(50 * 2 * 128, 1.0))},
       {Elem::BF16},
       {3}});
  // A plain bf16 GEMM whose columns end in a partial tile.
  cases.push_back(
      {"bf16 GEMM", R"mlir(
      func.func @f(%x: tensor<?x160xbf16>, %w: tensor<200x160xbf16>, %b: tensor<200xf32>)
          -> tensor<?x200xbf16> {
        %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
            : tensor<?x160xbf16>, tensor<200x160xbf16>, tensor<200xf32> -> tensor<?x200xbf16>
        return %y : tensor<?x200xbf16>
      })mlir",
       {tensorArg(Elem::BF16, {70, 160}, test.randomVec(70 * 160, 1.0)),
        tensorArg(Elem::BF16, {200, 160}, test.randomVec(200 * 160, 0.2)),
        tensorArg(Elem::F32, {200}, test.randomVec(200, 2.0))},
       {Elem::BF16},
       {2}});
}

/// Decode SDPA over a quantized cache, the GEMM with the K path's chain in
/// its epilogue, and the GEMV followed by the chain kernel.
void addDecodeAndChainCases(HostExecutionTest &test,
                            std::vector<EmulationCase> &cases) {
  // Decode over a 4-bit cache of 700 keys: KV splits and their combine.
  {
    const int64_t tk = 700;
    Vec codes(tk * 2 * 128), scales(tk * 2 * 4);
    for (double &c : codes)
      c = double(int64_t(test.rng() % 15) - 7);
    for (double &x : scales)
      x = 0.05 + double(test.rng() % 100) / 400.0;
    cases.push_back(
        {"decode sdpa over a quantized cache", R"mlir(
      func.func @f(%q: tensor<1x8x128xf32>, %kc: tensor<?x2x128xi8>, %ks: tensor<?x2x4xf16>,
                   %vc: tensor<?x2x128xi8>, %vs: tensor<?x2x4xf16>) -> tensor<1x8x128xf32> {
        %k = attn.dequantize %kc, %ks format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
            precision <compute = f32, accumulate = f32>
            : tensor<?x2x128xi8>, tensor<?x2x4xf16> -> tensor<?x2x128xf32>
        %v = attn.dequantize %vc, %vs format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
            precision <compute = f32, accumulate = f32>
            : tensor<?x2x128xi8>, tensor<?x2x4xf16> -> tensor<?x2x128xf32>
        %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
            : tensor<1x8x128xf32>, tensor<?x2x128xf32>, tensor<?x2x128xf32> -> tensor<1x8x128xf32>
        return %o : tensor<1x8x128xf32>
      })mlir",
         {tensorArg(Elem::F32, {1, 8, 128}, test.randomVec(8 * 128, 1.0)),
          tensorArg(Elem::I8, {tk, 2, 128}, codes),
          tensorArg(Elem::F16, {tk, 2, 4}, scales),
          tensorArg(Elem::I8, {tk, 2, 128}, codes),
          tensorArg(Elem::F16, {tk, 2, 4}, scales)},
         {Elem::F32},
         {3}});
  }
  // The K path: GEMM, RoPE, rotation, quantization in one kernel.
  cases.push_back(
      {"GEMM with RoPE, rotation and quantization",
       llvm::formatv(R"mlir(
      func.func @f(%x: tensor<?x96xf32>, %w: tensor<256x96xbf16>, %b: tensor<256xf32>,
                   %p: tensor<?xi32>) -> (tensor<?x2x128xi8>, tensor<?x2x4xf16>) {
        %c0 = arith.constant 0 : index
        %n = tensor.dim %x, %c0 : tensor<?x96xf32>
        %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
            : tensor<?x96xf32>, tensor<256x96xbf16>, tensor<256xf32> -> tensor<?x256xbf16>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, 2, 128]
            : tensor<?x256xbf16> into tensor<?x2x128xbf16>
        %r = attn.rope half_split %y3, %p rotary_dim(128) theta(1.0e+06)
            precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>, tensor<?xi32>
        %h = attn.hadamard %r rotation(<group = 128, s1 = [{0}], s2 = [{1}]>)
            precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>
        %c, %s = attn.quantize %h format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
            precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>
        return %c, %s : tensor<?x2x128xi8>, tensor<?x2x4xf16>
      })mlir",
                     fixedSigns(128), fixedSigns(128))
           .str(),
       {tensorArg(Elem::F32, {45, 96}, test.randomVec(45 * 96, 1.0)),
        tensorArg(Elem::BF16, {256, 96}, test.randomVec(256 * 96, 0.2)),
        tensorArg(Elem::F32, {256}, test.randomVec(256, 20.0)),
        tensorArg(Elem::I32, {45},
                  toDouble(test.randomPositions(45, 4096)))},
       {Elem::I8, Elem::F16},
       {3, 3}});
  // Decode: the GEMV, then the chain kernel on its heads.
  cases.push_back(
      {"GEMV then the chain kernel",
       llvm::formatv(R"mlir(
      func.func @f(%x: tensor<1x96xf32>, %w: tensor<256x96xf32>, %p: tensor<1xi32>)
          -> tensor<1x2x128xf32> {
        %y = attn.linear %x, %w precision <compute = f32, accumulate = f32>
            : tensor<1x96xf32>, tensor<256x96xf32> -> tensor<1x256xf32>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [1, 2, 128]
            : tensor<1x256xf32> into tensor<1x2x128xf32>
        %r = attn.rope interleaved %y3, %p rotary_dim(64) theta(1.0e+04)
            precision <compute = f32, accumulate = f32> : tensor<1x2x128xf32>, tensor<1xi32>
        %h = attn.hadamard %r rotation(<group = 64, s1 = [{0}], s2 = [{1}]>) inverse
            precision <compute = f32, accumulate = f32> : tensor<1x2x128xf32>
        return %h : tensor<1x2x128xf32>
      })mlir",
                     fixedSigns(64), fixedSigns(64))
           .str(),
       {tensorArg(Elem::F32, {1, 96}, test.randomVec(96, 1.0)),
        tensorArg(Elem::F32, {256, 96}, test.randomVec(256 * 96, 0.2)),
        tensorArg(Elem::I32, {1}, {1234})},
       {Elem::F32},
       {3}});
}

/// The bundled Qwen2.5-0.5B layer: a 20-token prefill, and a decode step
/// over 300 cached positions (GEMMs with RoPE epilogues, GEMVs, SDPA with
/// KV splits, cache appends, and the one-thread-per-element kernels).
void addExampleLayerCases(HostExecutionTest &test,
                          std::vector<EmulationCase> &cases) {
  auto buffer = llvm::MemoryBuffer::getFile(
      ROTOR_SOURCE_DIR "/examples/qwen2.5-0.5b-attention.mlir");
  ASSERT_TRUE(bool(buffer));
  std::string layer = (*buffer)->getBuffer().str();
  const int64_t e = 896, hkv = 2, d = 64, cap = 4096, t = 20, len = 300;
  std::vector<Arg> weights = {
      tensorArg(Elem::F32, {e, e}, test.randomVec(e * e, 0.03)),
      tensorArg(Elem::F32, {e}, test.randomVec(e, 3.0)),
      tensorArg(Elem::F32, {hkv * d, e}, test.randomVec(hkv * d * e, 0.03)),
      tensorArg(Elem::F32, {hkv * d}, test.randomVec(hkv * d, 20.0)),
      tensorArg(Elem::F32, {hkv * d, e}, test.randomVec(hkv * d * e, 0.03)),
      tensorArg(Elem::F32, {hkv * d}, test.randomVec(hkv * d, 0.2)),
      tensorArg(Elem::F32, {e, e}, test.randomVec(e * e, 0.03))};
  std::vector<int64_t> positions(t);
  std::iota(positions.begin(), positions.end(), 0);
  EmulationCase prefill{
      "example layer prefill",
      layer,
      {tensorArg(Elem::F32, {t, e}, test.randomVec(t * e, 1.0)),
       tensorArg(Elem::I32, {t}, toDouble(positions)),
       tensorArg(Elem::F32, {cap, hkv, d}, Vec(cap * hkv * d, 0.0)),
       tensorArg(Elem::F32, {cap, hkv, d}, Vec(cap * hkv * d, 0.0))},
      {Elem::F32},
      {2},
      "prefill"};
  prefill.args.insert(prefill.args.end(), weights.begin(), weights.end());
  cases.push_back(std::move(prefill));
  // Rows past `len` are never read: the cache is random everywhere.
  EmulationCase decode{
      "example layer decode",
      layer,
      {tensorArg(Elem::F32, {1, e}, test.randomVec(e, 1.0)),
       tensorArg(Elem::I32, {1}, Vec{double(len)}),
       tensorArg(Elem::F32, {cap, hkv, d},
                 test.randomVec(cap * hkv * d, 1.0)),
       tensorArg(Elem::F32, {cap, hkv, d},
                 test.randomVec(cap * hkv * d, 1.0)),
       indexArg(len)},
      {Elem::F32},
      {2},
      "decode"};
  decode.args.insert(decode.args.end(), weights.begin(), weights.end());
  cases.push_back(std::move(decode));
}

/// Runs `c` as thread teams and phase by phase, and compares the results
/// and the arguments updated in place, bit for bit.
void expectEmulationMatchesPhases(HostExecutionTest &test, EmulationCase &c) {
  rotor::PipelineOptions gpu;
  test.compileEmulatingGpu(c.source, gpu);
  // Not vacuous: the kernels did become thread teams.
  ASSERT_GT(test.emulatedBlocks, 0) << c.name;
  // Each run updates its own copy of the arguments (the KV caches in
  // place); the copies are compared too.
  std::vector<Arg> emulatedArgs = c.args, phasedArgs = c.args;
  std::vector<Vec> emulated =
      test.call(c.function, emulatedArgs, c.results, c.ranks);
  // The same kernels as the GPU's (which never fuses the loop-level
  // projection + RoPE), their phases run one after another on the host,
  // with the GPU's arithmetic (no SIMD lane sums, libm's exp2).
  rotor::PipelineOptions phasedOptions;
  phasedOptions.vectorizeReductions = false;
  phasedOptions.splitKVDecode = true;
  phasedOptions.workgroupTiledSdpa = true;
  phasedOptions.workgroupTiledLinear = true;
  phasedOptions.fuseRopeEpilogue = false;
  test.compile(c.source, phasedOptions);
  std::vector<Vec> phased =
      test.call(c.function, phasedArgs, c.results, c.ranks);
  for (size_t a = 0; a < c.args.size(); ++a)
    if (c.args[a].buffer)
      ASSERT_TRUE(emulatedArgs[a].buffer->bytes ==
                  phasedArgs[a].buffer->bytes)
          << c.name << ": argument " << a << " (updated in place)";
  ASSERT_EQ(emulated.size(), phased.size()) << c.name;
  for (size_t r = 0; r < emulated.size(); ++r) {
    ASSERT_EQ(emulated[r].size(), phased[r].size()) << c.name;
    for (size_t i = 0; i < emulated[r].size(); ++i)
      ASSERT_EQ(emulated[r][i], phased[r][i])
          << c.name << ": result " << r << " element " << i << ", seed "
          << test.seed;
  }
}

// The GPU pipeline's mapped kernels (strided thread loops, barriers,
// workgroup buffers shared by a block's threads) run as OpenMP thread
// teams on the host, against the same kernels run phase by phase: equal
// bit for bit, so the mapping adds no race and drops no barrier. Covers
// the workgroup SDPA (prefill, and decode with KV splits and a quantized
// cache), the GEMM with the per-head chain in its epilogue, the GEMV and
// the standalone chain kernel.
TEST_F(HostExecutionTest, GpuMappedKernelsMatchPhaseByPhase) {
  // Threads that disagree on their barriers deadlock (see Watchdog).
  Watchdog watchdog;
  std::vector<EmulationCase> cases;
  addPrefillCases(*this, cases);
  addDecodeAndChainCases(*this, cases);
  ASSERT_NO_FATAL_FAILURE(addExampleLayerCases(*this, cases));
  for (EmulationCase &c : cases)
    ASSERT_NO_FATAL_FAILURE(expectEmulationMatchesPhases(*this, c));
}

} // namespace
} // namespace rotor::unittest
