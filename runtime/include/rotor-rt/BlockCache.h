//===- BlockCache.h - Reuse of freed device blocks by size ------*- C++ -*-===//
//
// The host code of a CUDA bundle allocates its temporaries on every call
// and frees them before returning, so each decode step would ask the
// driver for the same blocks again (and managed memory would fault its
// pages in again). Freed blocks are kept by size, up to a byte limit, and
// handed out again (best fit, at most twice the size asked for, so that
// sizes that drift, like the KV-split partials as the cache grows, still
// reuse); what does not fit the limit goes back.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_RT_BLOCKCACHE_H
#define ROTOR_RT_BLOCKCACHE_H

#include <cstddef>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace rotor::rt {

class BlockCache {
public:
  using Allocate = std::function<void *(size_t)>;
  using Release = std::function<void(void *)>;

  /// Blocks come from `allocate` and go back through `release`; at most
  /// `limitBytes` of freed blocks are kept.
  BlockCache(Allocate allocate, Release release, size_t limitBytes)
      : allocate(std::move(allocate)), release(std::move(release)),
        limit(limitBytes) {}
  BlockCache(const BlockCache &) = delete;
  BlockCache &operator=(const BlockCache &) = delete;
  ~BlockCache() { trim(); }

  /// A block of at least `bytes` (sizes round up to 256 bytes, the
  /// driver's alignment): a freed one of the smallest size that fits, up to
  /// twice as large, else a new one (null for a size no block can have).
  /// When the driver has no memory left,
  /// the cached blocks go back and the allocation is tried once more.
  void *get(size_t bytes) {
    // Rounding up would wrap past SIZE_MAX: no block is that large.
    if (bytes > std::numeric_limits<size_t>::max() - 255)
      return nullptr;
    size_t size = roundUp(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto it = freeBySize.lower_bound(size);
      if (it != freeBySize.end() && it->first <= 2 * size) {
        void *block = it->second.back();
        it->second.pop_back();
        cached -= it->first;
        sizes[block] = it->first;
        if (it->second.empty())
          freeBySize.erase(it);
        ++reused;
        return block;
      }
    }
    void *block = allocate(size);
    if (!block) {
      trim();
      block = allocate(size);
      if (!block)
        return nullptr;
    }
    std::lock_guard<std::mutex> lock(mutex);
    sizes[block] = size;
    ++fresh;
    return block;
  }

  /// Takes back a block from get(); others go straight to `release`.
  void put(void *block) {
    if (!block)
      return;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = sizes.find(block);
    if (it == sizes.end()) {
      release(block);
      return;
    }
    size_t size = it->second;
    sizes.erase(it);
    if (cached + size > limit) {
      release(block);
      return;
    }
    freeBySize[size].push_back(block);
    cached += size;
  }

  /// Releases every cached block.
  void trim() {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto &[size, blocks] : freeBySize)
      for (void *block : blocks)
        release(block);
    freeBySize.clear();
    cached = 0;
  }

  size_t cachedBytes() const { return cached; }
  size_t freshBlocks() const { return fresh; }
  size_t reusedBlocks() const { return reused; }

private:
  static size_t roundUp(size_t bytes) {
    return bytes == 0 ? 256 : (bytes + 255) / 256 * 256;
  }

  Allocate allocate;
  Release release;
  size_t limit;
  std::mutex mutex;
  std::map<size_t, std::vector<void *>> freeBySize;
  std::unordered_map<void *, size_t> sizes;
  size_t cached = 0, fresh = 0, reused = 0;
};

} // namespace rotor::rt

#endif // ROTOR_RT_BLOCKCACHE_H
