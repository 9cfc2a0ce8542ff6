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
  }
  // The destructor releases what it kept.
  EXPECT_EQ(c.releases, 3);
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
