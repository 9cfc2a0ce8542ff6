//===- FileTest.cpp - Reading and writing the user's files safely ---------===//

#include "rotor-rt/File.h"

#include "gtest/gtest.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace rotor::rt;

namespace {

/// A fresh directory under the system's temporary directory.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char name[] = "/tmp/rotor-file-test-XXXXXX";
    path = mkdtemp(name);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string &file) const {
    return (path / file).string();
  }
};

std::string slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(MappedFile, MapsARegularFile) {
  TempDir dir;
  std::ofstream(dir / "f") << "hello";
  Result<MappedFile> file = MappedFile::open(dir / "f");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->view(), "hello");
}

TEST(MappedFile, EmptyFile) {
  TempDir dir;
  std::ofstream(dir / "f").flush();
  Result<MappedFile> file = MappedFile::open(dir / "f");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->size(), 0u);
}

TEST(MappedFile, RefusesAFifoWithoutBlocking) {
  TempDir dir;
  ASSERT_EQ(mkfifo((dir / "fifo").c_str(), 0600), 0);
  Result<MappedFile> file = MappedFile::open(dir / "fifo");
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error(), dir / "fifo" + ": not a regular file (a FIFO)");
}

TEST(MappedFile, RefusesADevice) {
  Result<MappedFile> file = MappedFile::open("/dev/zero");
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error(), "/dev/zero: not a regular file (a character device)");
}

TEST(WriteFileAtomically, ReplacesTheWholeFile) {
  TempDir dir;
  std::ofstream(dir / "out") << "old contents, longer than the new";
  EXPECT_FALSE(writeFileAtomically(dir / "out", {"new ", "contents"}));
  EXPECT_EQ(slurp(dir / "out"), "new contents");
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path),
                          std::filesystem::directory_iterator()),
            1);
}

TEST(WriteFileAtomically, FollowsALinkToTheFile) {
  TempDir dir;
  std::ofstream(dir / "target") << "old";
  std::filesystem::create_symlink("target", dir / "link");
  EXPECT_FALSE(writeFileAtomically(dir / "link", {"new"}));
  EXPECT_TRUE(std::filesystem::is_symlink(dir / "link"));
  EXPECT_EQ(slurp(dir / "target"), "new");
}

TEST(WriteFileAtomically, RefusesADirectory) {
  TempDir dir;
  Error err = writeFileAtomically(dir.path.string(), {"x"});
  ASSERT_TRUE(err);
  EXPECT_EQ(err.message(),
            dir.path.string() + ": cannot write: it is a directory");
}

TEST(SameFile, HardLinksShareAnIdentity) {
  TempDir dir;
  std::ofstream(dir / "a") << "a";
  std::filesystem::create_hard_link(dir / "a", dir / "b");
  std::ofstream(dir / "c") << "c";
  EXPECT_EQ(fileId(dir / "a"), fileId(dir / "b"));
  EXPECT_NE(fileId(dir / "a"), fileId(dir / "c"));
  EXPECT_FALSE(fileId(dir / "missing"));
}

TEST(SameFile, NormalizedPathsOfFilesNotYetWritten) {
  TempDir dir;
  std::filesystem::create_directory(dir / "sub");
  EXPECT_EQ(normalizedPath(dir / "sub/../new"), normalizedPath(dir / "new"));
  EXPECT_EQ(normalizedPath(dir / "./new"), normalizedPath(dir / "new"));
  EXPECT_NE(normalizedPath(dir / "sub/new"), normalizedPath(dir / "new"));
}

} // namespace
