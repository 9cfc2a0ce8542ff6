//===- KVCacheFormat.h - The KV-cache formats rotor-import builds -*- C++ -*-===//

#ifndef ROTOR_IMPORT_KVCACHEFORMAT_H
#define ROTOR_IMPORT_KVCACHEFORMAT_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace rotor::import {

/// How a layer stores its K and V: a float cache, or block-quantized codes
/// bit-packed with an f16 scale per block (attn.pack_blocks), optionally
/// after a randomized Walsh-Hadamard rotation of each head's dims.
struct KVCacheFormat {
  /// f32, bf16, f16, q8_0, q4_0, turbo3 or turbo4.
  std::string name;
  /// Float caches: "f32", "bf16" or "f16"; empty for quantized ones.
  std::string floatType;
  /// Quantized caches: bits per code, values per block, and whether codes
  /// index the Lloyd-Max codebook (else absmax integers).
  unsigned bits = 0;
  int64_t blockSize = 0;
  bool codebook = false;
  /// The rotation's group (a power of two dividing the head dim); 0 when
  /// the cache is not rotated.
  int64_t rotationGroup = 0;

  bool quantized() const { return floatType.empty(); }
};

/// "f32, bf16, f16, q8_0, q4_0, turbo3, turbo4".
llvm::StringRef supportedKVCacheFormats();

/// The format `name` for heads of `headDim` dims. turbo3/turbo4 are always
/// rotated (group 128, or 64 for 64-dim heads, as llama.cpp's turbo cache);
/// q8_0/q4_0 are rotated when `rotate` (the same group). Errors name the
/// format and what does not fit.
llvm::Expected<KVCacheFormat> kvCacheFormat(llvm::StringRef name,
                                            int64_t headDim, bool rotate);

} // namespace rotor::import

#endif // ROTOR_IMPORT_KVCACHEFORMAT_H
