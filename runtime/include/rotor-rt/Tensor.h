//===- Tensor.h - Host tensors and safetensors files ------------*- C++ -*-===//

#ifndef ROTOR_RT_TENSOR_H
#define ROTOR_RT_TENSOR_H

#include "rotor-rt/Error.h"

#include <cstdint>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <vector>

namespace rotor::rt {

enum class DType { F32, BF16, F16, I32, I64, I8 };

size_t dtypeSize(DType t);
/// "F32"/"f32" and friends; nullopt for others.
std::optional<DType> parseSafetensorsDtype(const std::string &s);
std::optional<DType> parseMlirDtype(const std::string &s);
const char *safetensorsName(DType t);
/// "f32" and friends, as MLIR and the manifest spell them.
const char *mlirName(DType t);

/// Allocates on 64-byte boundaries, a cache line: glibc's malloc puts a
/// large block 16 bytes past a page, where every 64-byte vector load the
/// kernels make of a weight or the KV cache would straddle two lines.
template <class T> struct CacheLineAllocator {
  using value_type = T;
  static constexpr size_t kAlignment = 64;
  CacheLineAllocator() = default;
  template <class U> CacheLineAllocator(const CacheLineAllocator<U> &) {}
  T *allocate(size_t n) {
    return static_cast<T *>(
        ::operator new(n * sizeof(T), std::align_val_t(kAlignment)));
  }
  void deallocate(T *ptr, size_t) {
    ::operator delete(ptr, std::align_val_t(kAlignment));
  }
  template <class U> bool operator==(const CacheLineAllocator<U> &) const {
    return true;
  }
};

/// A tensor's bytes, on a cache line.
using TensorBytes = std::vector<uint8_t, CacheLineAllocator<uint8_t>>;

/// A dense, row-major host tensor.
struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  TensorBytes bytes;

  int64_t numel() const;
  /// Element i as a double (any dtype).
  double at(size_t i) const;
  /// The tensor converted to `to` (floats round to nearest even).
  Tensor convert(DType to) const;
  static Tensor fromDoubles(DType dtype, std::vector<int64_t> shape,
                            const std::vector<double> &values);
  std::vector<double> toDoubles() const;
};

std::string formatShape(const std::vector<int64_t> &shape);

/// Reads and validates a safetensors file: a regular file, mapped, whose
/// tensors lie inside it without overlapping.
Result<std::map<std::string, Tensor>> readSafetensors(const std::string &path);
/// Writes `tensors` to `path`, whole or not at all (writeFileAtomically).
Error writeSafetensors(const std::string &path,
                       const std::map<std::string, Tensor> &tensors);

} // namespace rotor::rt

#endif // ROTOR_RT_TENSOR_H
