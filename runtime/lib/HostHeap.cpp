//===- HostHeap.cpp - The heap of host bundles' code ----------------------===//

#include "rotor-rt/HostHeap.h"

#include <cstdlib>
#include <string_view>

namespace rotor::rt {

BlockCache &hostHeapBlocks() {
  // Never destroyed: bundles loaded with RTLD_NODELETE may free into it
  // from static destructors after this file's have run.
  static BlockCache *blocks = new BlockCache(
      // BlockCache sizes are multiples of 256, so of the alignment too.
      [](size_t bytes) { return std::aligned_alloc(64, bytes); },
      [](void *ptr) { std::free(ptr); }, kCachedBytesLimit);
  return *blocks;
}

bool hostHeapCaches() {
  static const bool caches = [] {
    const char *off = std::getenv("ROTOR_NO_HOST_HEAP_CACHE");
    return !off || !*off || std::string_view(off) == "0";
  }();
  return caches;
}

void *hostHeapAllocate(size_t bytes) {
  if (bytes < kPooledBytes || !hostHeapCaches())
    return std::malloc(bytes);
  return hostHeapBlocks().get(bytes);
}

// BlockCache::put hands a block it did not give out (libc's) to free.
void hostHeapFree(void *ptr) { hostHeapBlocks().put(ptr); }

} // namespace rotor::rt
