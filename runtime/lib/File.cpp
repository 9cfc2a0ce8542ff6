//===- File.cpp - Reading and writing the user's files safely -------------===//

#include "rotor-rt/File.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <utility>

namespace rotor::rt {

namespace {

std::string kindOf(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  if (S_ISSOCK(mode))
    return "a socket";
  return "not a file";
}

std::string lastError() { return std::strerror(errno); }

/// Writes every piece to `fd`, through partial writes and interruptions.
bool writeAll(int fd, const std::vector<std::string_view> &pieces) {
  for (std::string_view piece : pieces) {
    while (!piece.empty()) {
      ssize_t n = ::write(fd, piece.data(), piece.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      piece.remove_prefix(size_t(n));
    }
  }
  return true;
}

} // namespace

MappedFile::MappedFile(MappedFile &&other) noexcept
    : bytes(std::exchange(other.bytes, nullptr)),
      length(std::exchange(other.length, 0)) {}

MappedFile &MappedFile::operator=(MappedFile &&other) noexcept {
  if (this != &other) {
    if (bytes)
      ::munmap(const_cast<uint8_t *>(bytes), length);
    bytes = std::exchange(other.bytes, nullptr);
    length = std::exchange(other.length, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (bytes)
    ::munmap(const_cast<uint8_t *>(bytes), length);
}

Result<MappedFile> MappedFile::open(const std::string &path) {
  using R = Result<MappedFile>;
  // Checked before opening too: opening some devices has effects.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return R::failure(path + ": cannot read: " + lastError());
  if (!S_ISREG(st.st_mode))
    return R::failure(path + ": not a regular file (" + kindOf(st.st_mode) +
                      ")");
  // Non-blocking, so that a FIFO swapped in after the check cannot block.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return R::failure(path + ": cannot read: " + lastError());
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    std::string why = S_ISREG(st.st_mode)
                          ? "cannot read: " + lastError()
                          : "not a regular file (" + kindOf(st.st_mode) + ")";
    ::close(fd);
    return R::failure(path + ": " + why);
  }
  MappedFile file;
  if (st.st_size > 0) {
    void *mapping =
        ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      std::string why = lastError();
      ::close(fd);
      return R::failure(path + ": cannot map: " + why);
    }
    file.bytes = static_cast<const uint8_t *>(mapping);
    file.length = size_t(st.st_size);
  }
  ::close(fd);
  return file;
}

Error writeFileAtomically(const std::string &path,
                          const std::vector<std::string_view> &pieces) {
  std::string target = path;
  struct stat st;
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode))
    return Error::failure(path + ": cannot write: it is a directory");
  if (exists && !S_ISREG(st.st_mode)) {
    // A stream such as /dev/null or a FIFO: there is no file to replace,
    // and renaming over it would replace the device node.
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
      return Error::failure(path + ": cannot write: " + lastError());
    bool ok = writeAll(fd, pieces);
    std::string why = lastError();
    ok &= ::close(fd) == 0;
    return ok ? Error::success()
              : Error::failure(path + ": write failed: " + why);
  }
  // A link to a file is followed: the file is replaced, not the link.
  if (exists) {
    std::error_code ec;
    std::filesystem::path resolved = std::filesystem::canonical(path, ec);
    if (!ec)
      target = resolved.string();
  }
  std::filesystem::path targetPath(target);
  std::filesystem::path dir = targetPath.parent_path();
  if (dir.empty())
    dir = ".";
  std::string stem = (dir / ("." + targetPath.filename().string())).string();

  std::random_device entropy;
  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    temp = stem + ".tmp-" + std::to_string(entropy());
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0)
    return Error::failure(path + ": cannot write a temporary file in " +
                          dir.string() + ": " + lastError());
  // The replaced file keeps its permissions; a new one gets the umask's.
  bool ok = (!exists || ::fchmod(fd, st.st_mode & 07777) == 0) &&
            writeAll(fd, pieces) && ::fsync(fd) == 0;
  std::string why = lastError();
  ok &= ::close(fd) == 0;
  if (ok && ::rename(temp.c_str(), target.c_str()) != 0) {
    why = lastError();
    ok = false;
  }
  if (!ok) {
    ::unlink(temp.c_str());
    return Error::failure(path + ": write failed: " + why +
                          " (left as it was)");
  }
  // The rename itself reaches the disk with its directory.
  if (int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dirFd >= 0) {
    ::fsync(dirFd);
    ::close(dirFd);
  }
  return Error::success();
}

std::optional<FileId> fileId(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return std::nullopt;
  return FileId{uint64_t(st.st_dev), uint64_t(st.st_ino)};
}

std::string normalizedPath(const std::string &path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec)
    return path;
  std::filesystem::path resolved =
      std::filesystem::weakly_canonical(absolute, ec);
  return (ec ? absolute.lexically_normal() : resolved).string();
}

} // namespace rotor::rt
