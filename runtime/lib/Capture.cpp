//===- Capture.cpp - The streams attn.capture records into ----------------===//

#include "rotor-rt/Capture.h"

#include <mutex>

namespace rotor::rt {

namespace {
std::mutex mutex;
std::map<int64_t, CaptureStream> streams;

/// A strided memref descriptor of rank `rank`:
/// {allocated, aligned, offset, sizes[rank], strides[rank]}.
struct Descriptor {
  const int64_t *words;
  int64_t rank;
  template <typename T> const T *aligned() const {
    return reinterpret_cast<const T *>(words[1]);
  }
  int64_t offset() const { return words[2]; }
  int64_t size(int64_t i) const { return words[3 + i]; }
  int64_t stride(int64_t i) const { return words[3 + rank + i]; }
};
} // namespace

std::map<int64_t, CaptureStream> takeCaptures() {
  std::lock_guard<std::mutex> lock(mutex);
  std::map<int64_t, CaptureStream> result;
  result.swap(streams);
  return result;
}

} // namespace rotor::rt

using namespace rotor::rt;

/// Unranked memrefs arrive as (rank, pointer to the ranked descriptor).
extern "C" __attribute__((visibility("default"))) void
rotor_capture(int64_t id, int64_t rank, void *desc, int64_t posRank,
              void *posDesc) {
  std::lock_guard<std::mutex> lock(mutex);
  CaptureStream &stream = streams[id];
  Descriptor data{static_cast<const int64_t *>(desc), rank};
  Descriptor pos{static_cast<const int64_t *>(posDesc), posRank};
  if (rank < 1 || posRank != 1 || pos.size(0) != data.size(0)) {
    stream.error =
        Error::failure("a capture call with mismatched data and positions");
    return;
  }
  std::vector<int64_t> rowShape;
  int64_t rowElems = 1;
  for (int64_t i = 1; i < rank; ++i) {
    rowShape.push_back(data.size(i));
    rowElems *= data.size(i);
  }
  if (!stream.data.empty() && stream.rowShape != rowShape) {
    stream.error =
        Error::failure("captures of one tag with different row shapes");
    return;
  }
  stream.rowShape = rowShape;
  for (int64_t t = 0; t < data.size(0); ++t) {
    stream.positions.push_back(
        pos.aligned<int64_t>()[pos.offset() + t * pos.stride(0)]);
    // Walk the row in row-major order through the strides.
    for (int64_t e = 0; e < rowElems; ++e) {
      int64_t at = data.offset() + t * data.stride(0), rest = e;
      for (int64_t i = rank - 1; i >= 1; --i) {
        at += (rest % data.size(i)) * data.stride(i);
        rest /= data.size(i);
      }
      stream.data.push_back(data.aligned<float>()[at]);
    }
  }
}
