//===- BlockCacheTest.cpp - Reuse of freed blocks by size -----------------===//

#include "rotor-rt/BlockCache.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <set>

using rotor::rt::BlockCache;

namespace {

struct Counting {
  std::set<void *> live;
  int allocations = 0, releases = 0;
  BlockCache cache(size_t limit) {
    return BlockCache(
        [this](size_t bytes) {
          ++allocations;
          void *p = std::malloc(bytes);
          live.insert(p);
          return p;
        },
        [this](void *p) {
          ++releases;
          EXPECT_TRUE(live.erase(p)) << "released a block twice or a stranger";
          std::free(p);
        },
        limit);
  }
};

TEST(BlockCacheTest, ReusesFreedBlocksOfTheSameSize) {
  Counting c;
  {
    BlockCache cache = c.cache(1 << 20);
    // A decode step's pattern, three times: the same sizes each time.
    for (int step = 0; step < 3; ++step) {
      void *a = cache.get(1000), *b = cache.get(4096), *d = cache.get(1000);
      EXPECT_NE(a, d);
      cache.put(b);
      cache.put(a);
      cache.put(d);
    }
    EXPECT_EQ(c.allocations, 3);
    EXPECT_EQ(cache.freshBlocks(), 3u);
    EXPECT_EQ(cache.reusedBlocks(), 6u);
    EXPECT_EQ(c.releases, 0);
    // Sizes round up to 256 bytes: 1000 and 1024 share blocks.
    void *e = cache.get(1024);
    EXPECT_EQ(c.allocations, 3);
    cache.put(e);
    // A freed block up to twice the size asked for serves: 4096 for 2100.
    void *f = cache.get(2100);
    EXPECT_EQ(c.allocations, 3);
    // 1500: the 4096 block is out and 1024 is too small: a new one.
    void *g = cache.get(1500);
    EXPECT_EQ(c.allocations, 4);
    cache.put(f);
    cache.put(g);
  }
  // The destructor releases what it kept.
  EXPECT_EQ(c.releases, 4);
  EXPECT_TRUE(c.live.empty());
}

TEST(BlockCacheTest, KeepsNoMoreThanItsLimit) {
  Counting c;
  BlockCache cache = c.cache(1024);
  void *a = cache.get(1024), *b = cache.get(1024);
  cache.put(a); // kept: 1024 of 1024 bytes
  cache.put(b); // over the limit: released
  EXPECT_EQ(c.releases, 1);
  EXPECT_EQ(cache.cachedBytes(), 1024u);
  cache.trim();
  EXPECT_EQ(c.releases, 2);
  EXPECT_EQ(cache.cachedBytes(), 0u);
}

TEST(BlockCacheTest, GivesBackWhatItKeepsWhenMemoryRunsOut) {
  int allocations = 0, releases = 0;
  size_t inUse = 0;
  std::set<void *> live;
  // A device with room for two 1 KiB blocks.
  BlockCache cache(
      [&](size_t bytes) -> void * {
        if (inUse + bytes > 2048)
          return nullptr;
        ++allocations;
        inUse += bytes;
        void *p = std::malloc(bytes);
        live.insert(p);
        return p;
      },
      [&](void *p) {
        ++releases;
        live.erase(p);
        inUse -= 1024;
        std::free(p);
      },
      1 << 20);
  void *a = cache.get(1024), *b = cache.get(1024);
  cache.put(a);
  cache.put(b);                // both kept: the device is full of cached blocks
  void *big = cache.get(2048); // no 2 KiB block fits, nor memory for one
  EXPECT_NE(big, nullptr);
  EXPECT_EQ(releases, 2);
  EXPECT_EQ(allocations, 3);
  cache.put(big);
  cache.trim();
  for (void *p : live)
    std::free(p);
}

TEST(BlockCacheTest, ReleasesBlocksItDidNotMake) {
  Counting c;
  BlockCache cache = c.cache(1 << 20);
  void *foreign = std::malloc(64);
  c.live.insert(foreign);
  cache.put(foreign);
  EXPECT_EQ(c.releases, 1);
  cache.put(nullptr); // ignored
  EXPECT_EQ(c.releases, 1);
}

} // namespace
