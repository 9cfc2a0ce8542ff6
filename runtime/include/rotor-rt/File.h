//===- File.h - Reading and writing the user's files safely -----*- C++ -*-===//
//
// Inputs are read only from regular files (a FIFO would block forever and
// /dev/zero would be read until memory runs out), through a read-only
// mapping so that every read is bounded by the file's size. Outputs are
// written whole or not at all: a temporary file in the same directory,
// flushed and renamed over the output, so that a failure never leaves a
// half-written file where the user's data was.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_RT_FILE_H
#define ROTOR_RT_FILE_H

#include "rotor-rt/Tensor.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rotor::rt {

/// A regular file mapped read-only for as long as this lives.
class MappedFile {
public:
  MappedFile() = default;
  MappedFile(MappedFile &&other) noexcept;
  MappedFile &operator=(MappedFile &&other) noexcept;
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;
  ~MappedFile();

  /// Fails, naming `path`, when it is missing, unreadable or not a regular
  /// file.
  static Result<MappedFile> open(const std::string &path);

  const uint8_t *data() const { return bytes; }
  size_t size() const { return length; }
  std::string_view view() const {
    return {reinterpret_cast<const char *>(bytes), length};
  }

private:
  const uint8_t *bytes = nullptr;
  size_t length = 0;
};

/// Writes the concatenation of `pieces` to `path` through a temporary file
/// in its directory, synced and renamed over it; an output that exists and
/// is not a regular file (/dev/null, a FIFO) is written directly. A
/// failure's message names `path`.
Error writeFileAtomically(const std::string &path,
                          const std::vector<std::string_view> &pieces);

/// The identity of an existing file (device and inode, links followed).
struct FileId {
  uint64_t device, inode;
  bool operator==(const FileId &) const = default;
};
std::optional<FileId> fileId(const std::string &path);

/// `path` made absolute and lexically normal, with the symbolic links of
/// its existing prefix resolved: two paths of a file that does not exist
/// yet compare equal when they would create the same file.
std::string normalizedPath(const std::string &path);

} // namespace rotor::rt

#endif // ROTOR_RT_FILE_H
