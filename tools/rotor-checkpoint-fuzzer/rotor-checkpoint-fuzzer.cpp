//===- rotor-checkpoint-fuzzer.cpp - libFuzzer target of checkpoint readers ===//
//
// Feeds arbitrary bytes to the readers that see untrusted checkpoint files:
// the safetensors archive parser (first byte even) and the config.json
// reader (first byte odd). Either must reject bad input with an error, never
// crash; what they accept must satisfy the invariants the importer and
// rotor-aot rely on, checked here.
//
//===----------------------------------------------------------------------===//

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
    check(count * safetensors::dtypeSize(view->dtype) == view->bytes.size());
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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  llvm::StringRef body(reinterpret_cast<const char *>(data) + 1, size - 1);
  if (data[0] & 1)
    fuzzConfig(body);
  else
    fuzzSafetensors(body);
  return 0;
}
