//===- HostHeap.cpp - The heap of host bundles' code ----------------------===//

#include "rotor-rt/HostHeap.h"

#include <cstdlib>

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

void *hostHeapAllocate(size_t bytes) {
  if (bytes < kPooledBytes)
    return std::malloc(bytes);
  return hostHeapBlocks().get(bytes);
}

// BlockCache::put hands a block it did not give out (libc's) to free.
void hostHeapFree(void *ptr) { hostHeapBlocks().put(ptr); }

} // namespace rotor::rt
