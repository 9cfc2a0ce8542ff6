//===- Safetensors.h - Reading and writing safetensors files ----*- C++ -*-===//
//
// The format: an 8-byte little-endian header length N, N bytes of JSON
// mapping tensor names to {dtype, shape, data_offsets} (offsets relative to
// the data that follows the header), optional "__metadata__", then the data.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_SUPPORT_SAFETENSORS_H
#define ROTOR_SUPPORT_SAFETENSORS_H

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rotor::safetensors {

/// One tensor of an archive: its dtype string ("F32", "BF16", ...), shape,
/// and bytes (a view into the archive's buffer).
struct TensorView {
  std::string dtype;
  std::vector<int64_t> shape;
  llvm::StringRef bytes;
};

/// Size in bytes of one element of `dtype`, or 0 when it is unknown. An
/// archive keeps tensors of unknown dtypes (checking only their offsets), so
/// readers must check the dtype of what they read.
size_t dtypeSize(llvm::StringRef dtype);

/// A validated, memory-mapped safetensors file.
/// Fails, naming `path`, unless it is a regular file: readers must not
/// block on a FIFO or read a device without end.
llvm::Error requireRegularFile(llvm::StringRef path);

class Archive {
public:
  /// Opens and validates `path`; every error names the file, and the tensor
  /// where one is at fault.
  static llvm::Expected<Archive> open(llvm::StringRef path);
  /// Validates the archive held in `buffer`; `path` names it in errors.
  static llvm::Expected<Archive>
  parse(llvm::StringRef path, std::unique_ptr<llvm::MemoryBuffer> buffer);

  const TensorView *lookup(llvm::StringRef name) const;
  /// The names of the archive's tensors, in no particular order.
  std::vector<llvm::StringRef> names() const;
  llvm::StringRef path() const { return filePath; }

private:
  std::string filePath;
  std::unique_ptr<llvm::MemoryBuffer> buffer;
  llvm::StringMap<TensorView> tensors;
};

/// A tensor to write: dtype, shape and its raw little-endian bytes.
struct OwnedTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// Writes `tensors` (in the given order) to `path`.
llvm::Error write(llvm::StringRef path, llvm::ArrayRef<OwnedTensor> tensors);

} // namespace rotor::safetensors

#endif // ROTOR_SUPPORT_SAFETENSORS_H
