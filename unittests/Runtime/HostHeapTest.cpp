//===- HostHeapTest.cpp - The heap of host bundles' code ------------------===//

#include "rotor-rt/HostHeap.h"

#include "gtest/gtest.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

using namespace rotor::rt;

namespace {

TEST(HostHeapTest, KeepsLargeBlocksForTheNextCall) {
  if (!hostHeapCaches())
    GTEST_SKIP() << "ROTOR_NO_HOST_HEAP_CACHE is set";
  BlockCache &blocks = hostHeapBlocks();
  size_t reused = blocks.reusedBlocks();
  // One "call": a projection's output and a panel, freed at its end.
  void *out = hostHeapAllocate(3 << 20), *panel = hostHeapAllocate(229376);
  ASSERT_NE(out, nullptr);
  ASSERT_NE(panel, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(out) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(panel) % 64, 0u);
  std::memset(out, 1, 3 << 20);
  std::memset(panel, 2, 229376);
  hostHeapFree(panel);
  hostHeapFree(out);
  EXPECT_GE(blocks.cachedBytes(), size_t(3 << 20) + 229376);
  // The next call asks for the same sizes and gets the same memory.
  void *out2 = hostHeapAllocate(3 << 20), *panel2 = hostHeapAllocate(229376);
  EXPECT_EQ(out2, out);
  EXPECT_EQ(panel2, panel);
  EXPECT_EQ(blocks.reusedBlocks(), reused + 2);
  hostHeapFree(out2);
  hostHeapFree(panel2);
}

TEST(HostHeapTest, SmallBlocksAndLibcBlocksGoToLibc) {
  BlockCache &blocks = hostHeapBlocks();
  size_t fresh = blocks.freshBlocks(), reused = blocks.reusedBlocks();
  void *small = hostHeapAllocate(kPooledBytes - 1);
  ASSERT_NE(small, nullptr);
  std::memset(small, 3, kPooledBytes - 1);
  hostHeapFree(small);
  // A block the pool never gave out (a result allocated by other code)
  // is freed, not kept.
  size_t cached = blocks.cachedBytes();
  hostHeapFree(std::malloc(1 << 20));
  hostHeapFree(nullptr);
  EXPECT_EQ(blocks.cachedBytes(), cached);
  EXPECT_EQ(blocks.freshBlocks(), fresh);
  EXPECT_EQ(blocks.reusedBlocks(), reused);
}

TEST(HostHeapTest, KeepsNoMoreThanTheLimit) {
  if (!hostHeapCaches())
    GTEST_SKIP() << "ROTOR_NO_HOST_HEAP_CACHE is set";
  BlockCache &blocks = hostHeapBlocks();
  blocks.trim();
  // Twice the limit in blocks freed together: half of them go back.
  constexpr size_t block = kCachedBytesLimit / 4;
  void *held[8];
  for (void *&p : held)
    p = hostHeapAllocate(block);
  for (void *p : held)
    hostHeapFree(p);
  EXPECT_LE(blocks.cachedBytes(), kCachedBytesLimit);
  EXPECT_GE(blocks.cachedBytes(), kCachedBytesLimit - block);
  blocks.trim();
  EXPECT_EQ(blocks.cachedBytes(), 0u);
}

TEST(HostHeapTest, RefusesSizesNoBlockCanHave) {
  // As libc's malloc: null, not a small block from a wrapped-around size.
  for (size_t bytes : {std::numeric_limits<size_t>::max(),
                       std::numeric_limits<size_t>::max() - 100})
    EXPECT_EQ(hostHeapAllocate(bytes), nullptr) << bytes;
}

} // namespace
