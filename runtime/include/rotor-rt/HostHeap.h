//===- HostHeap.h - The heap of host bundles' code --------------*- C++ -*-===//
//
// A host bundle's code allocates its intermediate buffers (projections'
// outputs, panels, attention's partial results) on every call and frees
// them before it returns. From libc, each large one is fresh memory whose
// pages fault in on first touch, a page fault per 4 KiB on every call
// (~12% of the example layer's prefill at T = 512). Bundles route their
// malloc/free through hooks (`rotor_set_heap`, see
// lib/Target/Bundle/HostLibrary.cpp) that the runtime points here: blocks
// of at least kPooledBytes are kept between calls by size (a BlockCache,
// up to kCachedBytesLimit), smaller ones go to libc.
//
// One pool per process: two copies of this runtime (two static links) that
// load the same host.so would each install theirs, and the last one wins
// for both.
//
// ROTOR_NO_HOST_HEAP_CACHE=1 in the environment turns the keeping off
// (every block from libc), for memory checkers such as valgrind, which
// cannot see a use after free inside the pool, and for A/B timings.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_RT_HOSTHEAP_H
#define ROTOR_RT_HOSTHEAP_H

#include "rotor-rt/BlockCache.h"

#include <cstddef>

namespace rotor::rt {

/// Blocks from this size on are pooled; below it libc's arenas do well.
constexpr size_t kPooledBytes = size_t(64) << 10;
/// The most bytes of freed blocks kept for the next call.
constexpr size_t kCachedBytesLimit = size_t(512) << 20;

/// Whether blocks are kept (ROTOR_NO_HOST_HEAP_CACHE unset, empty or 0).
bool hostHeapCaches();
/// malloc for a host bundle's code: 64-byte aligned when pooled.
void *hostHeapAllocate(size_t bytes);
/// free for hostHeapAllocate's blocks (and any of libc's malloc).
void hostHeapFree(void *ptr);
/// The pool, for its statistics and to trim it.
BlockCache &hostHeapBlocks();

} // namespace rotor::rt

#endif // ROTOR_RT_HOSTHEAP_H
