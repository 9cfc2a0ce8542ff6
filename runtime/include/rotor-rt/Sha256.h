//===- Sha256.h - SHA-256 of a bundle's files -------------------*- C++ -*-===//
//
// FIPS 180-4 SHA-256, self-contained so that the runtime needs no crypto
// library: the runtime checks each bundle file against the digest the
// manifest records before it maps or loads the file.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_RT_SHA256_H
#define ROTOR_RT_SHA256_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace rotor::rt {

/// Whether this CPU has the x86 SHA extensions (SHA-NI), which hash 5.7x
/// faster than the portable code (512 MiB in 0.38 s against 2.15 s).
bool sha256HasShaExtensions();

/// An incremental SHA-256: update() any number of times, then finish().
/// Blocks go through the SHA extensions where the CPU has them, unless
/// `allowShaExtensions` is false (tests check both paths).
class Sha256 {
public:
  explicit Sha256(bool allowShaExtensions = true);
  void update(const void *data, size_t bytes);
  /// The digest of everything updated so far; the object is spent.
  std::array<uint8_t, 32> finish();

private:
  /// Hashes `count` 64-byte blocks from `chunks`.
  void blocks(const uint8_t *chunks, size_t count);
  void block(const uint8_t *chunk);
  bool shaExtensions;
  uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t pending[64];
  size_t pendingBytes = 0;
  uint64_t totalBytes = 0;
};

/// The SHA-256 of `bytes` bytes at `data`, as 64 lowercase hex digits.
std::string sha256Hex(const void *data, size_t bytes);

} // namespace rotor::rt

#endif // ROTOR_RT_SHA256_H
