//===- rotor-checkpoint-fuzzer.cpp - libFuzzer target of checkpoint readers ===//
//
// Feeds arbitrary bytes to the readers that see untrusted checkpoint files,
// chosen by the first byte modulo 3: the safetensors archive parser (0), the
// config.json reader (1) and the shard index reader (2). Either must reject bad input with an error, never
// crash; what they accept must satisfy the invariants the importer and
// rotor-aot rely on, checked here.
//
//===----------------------------------------------------------------------===//

#include "rotor/Import/Checkpoint.h"
#include "rotor/Import/HFConfig.h"
#include "rotor/Support/Safetensors.h"

#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <cstdlib>

using namespace rotor;

static void check(bool invariant) {
  if (!invariant)
    std::abort();
}

static void fuzzSafetensors(llvm::StringRef bytes) {
  auto archive = safetensors::Archive::parse(
      "fuzz.safetensors",
      llvm::MemoryBuffer::getMemBuffer(bytes, "fuzz", /*RequiresNullTerminator=*/false));
  if (!archive) {
    llvm::consumeError(archive.takeError());
    return;
  }
  for (llvm::StringRef name : archive->names()) {
    const safetensors::TensorView *view = archive->lookup(name);
    check(view != nullptr);
    uint64_t count = 1;
    for (int64_t d : view->shape) {
      check(d >= 0);
      count *= uint64_t(d);
    }
    if (size_t size = safetensors::dtypeSize(view->dtype))
      check(count * size == view->bytes.size());
    check(view->bytes.begin() >= bytes.begin() &&
          view->bytes.end() <= bytes.end());
  }
}

static void fuzzConfig(llvm::StringRef text) {
  auto config = import::parseHFConfig(text, "config.json");
  if (!config) {
    llvm::consumeError(config.takeError());
    return;
  }
  const import::AttentionConfig &c = *config;
  check(c.hiddenSize > 0 && c.numHeads > 0 && c.numKVHeads > 0 &&
        c.headDim > 0 && c.numLayers > 0);
  check(c.numHeads % c.numKVHeads == 0);
  check(c.rotaryDim >= 2 && c.rotaryDim % 2 == 0 && c.rotaryDim <= c.headDim);
  check(c.ropeTheta > 1.0 && c.normEpsilon > 0.0);
  check(int64_t(c.slidingWindows.size()) == c.numLayers);
  check(c.scaling.factor >= 1.0);
}

static void fuzzIndex(llvm::StringRef text) {
  auto weights = import::CheckpointWeights::fromIndex(
      "/nonexistent/model.safetensors.index.json", text);
  if (!weights) {
    llvm::consumeError(weights.takeError());
    return;
  }
  check(weights->numShards() >= 1);
  // Shards are not there: every lookup must fail cleanly.
  auto view = weights->lookup("model.layers.0.self_attn.q_proj.weight");
  if (view)
    std::abort();
  llvm::consumeError(view.takeError());
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  llvm::StringRef body(reinterpret_cast<const char *>(data) + 1, size - 1);
  switch (data[0] % 3) {
  case 0:
    fuzzSafetensors(body);
    break;
  case 1:
    fuzzConfig(body);
    break;
  default:
    fuzzIndex(body);
    break;
  }
  return 0;
}
