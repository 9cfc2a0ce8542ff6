//===- HostCpuTest.cpp - CPUID reads of the host CPU's extensions --------===//
//
// hostCpuHas reads CPUID and XCR0 itself (GCC 12 and 13 reject some of
// __builtin_cpu_supports' names); clang's __builtin_cpu_supports, which
// knows every name rotor-aot records, is the independent reference here.
//
//===----------------------------------------------------------------------===//

#include "rotor-rt/HostCpu.h"

#include "gtest/gtest.h"

using namespace rotor::rt;

namespace {

#if defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
TEST(HostCpuTest, AgreesWithTheCompilersCpuSupports) {
  __builtin_cpu_init();
#define EXPECT_SAME(name)                                                      \
  EXPECT_EQ(hostCpuHas(name), __builtin_cpu_supports(name) ? 1 : 0) << name;
  EXPECT_SAME("sse3") EXPECT_SAME("ssse3") EXPECT_SAME("sse4.1")
  EXPECT_SAME("sse4.2") EXPECT_SAME("popcnt") EXPECT_SAME("cx16")
  EXPECT_SAME("avx") EXPECT_SAME("avx2") EXPECT_SAME("fma")
  EXPECT_SAME("f16c") EXPECT_SAME("bmi") EXPECT_SAME("bmi2")
  EXPECT_SAME("lzcnt") EXPECT_SAME("movbe") EXPECT_SAME("avx512f")
  EXPECT_SAME("avx512bw") EXPECT_SAME("avx512dq") EXPECT_SAME("avx512vl")
  EXPECT_SAME("avx512cd") EXPECT_SAME("avx512bf16")
  EXPECT_SAME("avx512fp16") EXPECT_SAME("avx512vnni") EXPECT_SAME("avxvnni")
#undef EXPECT_SAME
}
#endif

TEST(HostCpuTest, NamesItCannotCheckAreUnknown) {
  EXPECT_EQ(hostCpuHas("avx9000"), -1);
  EXPECT_EQ(hostCpuHas(""), -1);
  EXPECT_EQ(hostCpuHas("AVX2"), -1);
}

} // namespace
