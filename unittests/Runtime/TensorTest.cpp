//===- TensorTest.cpp - Host tensors' storage -----------------------------===//

#include "rotor-rt/Tensor.h"

#include "gtest/gtest.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>

using namespace rotor::rt;

namespace {

bool onCacheLine(const Tensor &t) {
  return reinterpret_cast<uintptr_t>(t.bytes.data()) % 64 == 0;
}

// glibc's malloc returns a block past its mmap threshold (128 KiB) 16
// bytes past a page: a tensor there put every 64-byte vector load the
// kernels make of a KV cache or a weight across two cache lines.
TEST(TensorBytes, StartOnACacheLine) {
  for (int64_t elements : {1, 3, 1000, 1 << 16, 1 << 20, (1 << 22) + 5}) {
    Tensor t = Tensor::fromDoubles(DType::F32, {elements},
                                   std::vector<double>(elements, 1.0));
    EXPECT_TRUE(onCacheLine(t)) << elements << " elements";
    EXPECT_TRUE(onCacheLine(t.convert(DType::BF16))) << elements;
    Tensor copy = t;
    EXPECT_TRUE(onCacheLine(copy)) << elements;
    t.bytes.resize(t.bytes.size() + 17);
    EXPECT_TRUE(onCacheLine(t)) << elements << " grown";
  }
}

// Tensors read from a file are copies on a cache line, whatever their
// offset in it (an i8 tensor of 3 bytes before each f32 one).
TEST(TensorBytes, ReadFromAFileStartOnACacheLine) {
  std::string path =
      (std::filesystem::temp_directory_path() /
       ("rotor-tensor-test-" + std::to_string(getpid()) + ".safetensors"))
          .string();
  std::map<std::string, Tensor> tensors;
  tensors["a"] = Tensor::fromDoubles(DType::I8, {3}, {1, 2, 3});
  tensors["b"] = Tensor::fromDoubles(DType::F32, {1 << 18},
                                     std::vector<double>(1 << 18, 2.0));
  tensors["c"] = Tensor::fromDoubles(DType::F32, {5}, {1, 2, 3, 4, 5});
  ASSERT_FALSE(writeSafetensors(path, tensors));
  Result<std::map<std::string, Tensor>> read = readSafetensors(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(read);
  for (const auto &[name, tensor] : *read) {
    EXPECT_TRUE(onCacheLine(tensor)) << name;
    EXPECT_EQ(tensor.bytes, tensors[name].bytes) << name;
  }
}

} // namespace
