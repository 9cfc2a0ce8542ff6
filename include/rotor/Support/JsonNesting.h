//===- JsonNesting.h - Bounding JSON nesting before parsing -----*- C++ -*-===//
//
// llvm::json::parse recurses once per nesting level, so a file of 50,000
// '[' overflows the stack. Checkpoint files are untrusted input: their JSON
// (config.json, safetensors headers, shard indexes) is measured first.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_SUPPORT_JSONNESTING_H
#define ROTOR_SUPPORT_JSONNESTING_H

#include "llvm/ADT/StringRef.h"

namespace rotor {

/// Deeper nesting than any checkpoint file needs.
constexpr unsigned kMaxJsonNesting = 64;

/// The deepest nesting of arrays and objects in `text` (brackets inside
/// strings do not count), stopping early once it exceeds `limit`.
unsigned jsonNestingDepth(llvm::StringRef text,
                          unsigned limit = kMaxJsonNesting);

} // namespace rotor

#endif // ROTOR_SUPPORT_JSONNESTING_H
