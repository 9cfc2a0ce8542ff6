//===- Capture.h - The streams attn.capture records into --------*- C++ -*-===//
//
// Compiled code calls `rotor_capture(id, data, positions)` (exported by the
// runtime) for every attn.capture it runs; each call appends the tensor's
// rows and their positions to the stream of capture `id`.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_RT_CAPTURE_H
#define ROTOR_RT_CAPTURE_H

#include "rotor-rt/Error.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rotor::rt {

struct CaptureStream {
  std::vector<int64_t> rowShape; ///< the dims after the token dim
  std::vector<float> data;       ///< rows, row-major
  std::vector<int64_t> positions;
  Error error = Error::success(); ///< a call that did not fit the stream
};

/// The streams recorded since the last take, by capture id.
std::map<int64_t, CaptureStream> takeCaptures();

} // namespace rotor::rt

#endif // ROTOR_RT_CAPTURE_H
