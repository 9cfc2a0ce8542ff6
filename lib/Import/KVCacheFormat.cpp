//===- KVCacheFormat.cpp - The KV-cache formats rotor-import builds -------===//

#include "rotor/Import/KVCacheFormat.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/Twine.h"

using namespace rotor::import;

namespace {
llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}
} // namespace

llvm::StringRef rotor::import::supportedKVCacheFormats() {
  return "f32, bf16, f16, q8_0, q4_0, turbo3, turbo4";
}

llvm::Expected<KVCacheFormat>
rotor::import::kvCacheFormat(llvm::StringRef name, int64_t headDim,
                             bool rotate) {
  KVCacheFormat f;
  f.name = name.str();
  if (name == "f32" || name == "bf16" || name == "f16") {
    if (rotate)
      return fail("--kv-rotation-seed: a rotation is for a quantized "
                  "--kv-cache (q8_0, q4_0, turbo3, turbo4), not " + name);
    f.floatType = name.str();
    return f;
  }
  struct Quantized {
    unsigned bits;
    bool codebook, turbo;
  };
  std::optional<Quantized> q =
      llvm::StringSwitch<std::optional<Quantized>>(name)
          .Case("q8_0", Quantized{8, false, false})
          .Case("q4_0", Quantized{4, false, false})
          .Case("turbo3", Quantized{3, true, true})
          .Case("turbo4", Quantized{4, true, true})
          .Default(std::nullopt);
  if (!q)
    return fail("--kv-cache: unknown format '" + name + "'; expected one of " +
                supportedKVCacheFormats());
  f.bits = q->bits;
  f.codebook = q->codebook;
  int64_t group = headDim == 64 ? 64 : 128;
  if (q->turbo || rotate) {
    if (headDim % group != 0)
      return fail("--kv-cache " + name + ": the rotation group of " +
                  llvm::Twine(group) + " (64 for 64-dim heads) does not "
                  "divide the head dim " + llvm::Twine(headDim));
    f.rotationGroup = group;
  }
  // The turbo formats keep one scale (the group's RMS) per rotation group;
  // q8_0/q4_0 one absmax scale per 32 values.
  f.blockSize = q->turbo ? group : 32;
  if (headDim % f.blockSize != 0)
    return fail("--kv-cache " + name + ": blocks of " +
                llvm::Twine(f.blockSize) + " values do not divide the head "
                "dim " + llvm::Twine(headDim));
  return f;
}
