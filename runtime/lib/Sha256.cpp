//===- Sha256.cpp - SHA-256 of a bundle's files ---------------------------===//

#include "rotor-rt/Sha256.h"

#include <algorithm>
#include <bit>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define ROTOR_SHA_NI 1
#endif

namespace rotor::rt {

namespace {

constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

uint32_t loadBigEndian(const uint8_t *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 |
         uint32_t(p[3]);
}

#ifdef ROTOR_SHA_NI
/// `count` blocks with the SHA extensions (the scheme of Intel's "New
/// Instructions Supporting the Secure Hash Algorithm"): the state as ABEF
/// and CDGH, four rounds per pair of sha256rnds2, the message schedule
/// four words at a time by sha256msg1/sha256msg2.
__attribute__((target("sha,sse4.1,ssse3"))) void
shaExtensionBlocks(uint32_t state[8], const uint8_t *data, size_t count) {
  const __m128i byteSwap =
      _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_loadu_si128(reinterpret_cast<const __m128i *>(state));
  __m128i state1 =
      _mm_loadu_si128(reinterpret_cast<const __m128i *>(state + 4));
  tmp = _mm_shuffle_epi32(tmp, 0xB1);               // CDAB
  state1 = _mm_shuffle_epi32(state1, 0x1B);         // EFGH
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8); // ABEF
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);      // CDGH
  for (; count; --count, data += 64) {
    __m128i abef = state0, cdgh = state1;
    __m128i msg[4];
    for (int i = 0; i < 16; ++i) {
      if (i < 4)
        msg[i] = _mm_shuffle_epi8(
            _mm_loadu_si128(reinterpret_cast<const __m128i *>(data + 16 * i)),
            byteSwap);
      __m128i words = _mm_add_epi32(
          msg[i % 4],
          _mm_loadu_si128(reinterpret_cast<const __m128i *>(kRound + 4 * i)));
      state1 = _mm_sha256rnds2_epu32(state1, state0, words);
      // Words 4 (i + 1) .. 4 (i + 1) + 3 of the schedule, for rounds 16-63.
      if (i >= 3 && i <= 14) {
        __m128i &next = msg[(i + 1) % 4];
        next = _mm_add_epi32(next,
                             _mm_alignr_epi8(msg[i % 4], msg[(i + 3) % 4], 4));
        next = _mm_sha256msg2_epu32(next, msg[i % 4]);
      }
      state0 =
          _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(words, 0x0E));
      if (i >= 1 && i <= 12)
        msg[(i + 3) % 4] = _mm_sha256msg1_epu32(msg[(i + 3) % 4], msg[i % 4]);
    }
    state0 = _mm_add_epi32(state0, abef);
    state1 = _mm_add_epi32(state1, cdgh);
  }
  tmp = _mm_shuffle_epi32(state0, 0x1B);       // FEBA
  state1 = _mm_shuffle_epi32(state1, 0xB1);    // DCHG
  state0 = _mm_blend_epi16(tmp, state1, 0xF0); // DCBA
  state1 = _mm_alignr_epi8(state1, tmp, 8);    // HGFE
  _mm_storeu_si128(reinterpret_cast<__m128i *>(state), state0);
  _mm_storeu_si128(reinterpret_cast<__m128i *>(state + 4), state1);
}
#endif

} // namespace

bool sha256HasShaExtensions() {
#ifdef ROTOR_SHA_NI
  unsigned a, b, c, d;
  // CPUID leaf 7: EBX bit 29 is SHA; SSE4.1 (leaf 1, ECX bit 19) and SSSE3
  // (ECX bit 9) come with it on every CPU that has it, checked anyway.
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 29)))
    return false;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) && (c & (1u << 9));
#else
  return false;
#endif
}

Sha256::Sha256(bool allowShaExtensions)
    : shaExtensions(allowShaExtensions && sha256HasShaExtensions()) {}

void Sha256::blocks(const uint8_t *chunks, size_t count) {
#ifdef ROTOR_SHA_NI
  if (shaExtensions) {
    shaExtensionBlocks(state, chunks, count);
    return;
  }
#endif
  for (; count; --count, chunks += 64)
    block(chunks);
}

void Sha256::block(const uint8_t *chunk) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i)
    w[i] = loadBigEndian(chunk + 4 * i);
  for (int i = 16; i < 64; ++i) {
    uint32_t s0 =
        std::rotr(w[i - 15], 7) ^ std::rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 =
        std::rotr(w[i - 2], 17) ^ std::rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4],
           f = state[5], g = state[6], h = state[7];
  for (int i = 0; i < 64; ++i) {
    uint32_t s1 = std::rotr(e, 6) ^ std::rotr(e, 11) ^ std::rotr(e, 25);
    uint32_t choose = (e & f) ^ (~e & g);
    uint32_t t1 = h + s1 + choose + kRound[i] + w[i];
    uint32_t s0 = std::rotr(a, 2) ^ std::rotr(a, 13) ^ std::rotr(a, 22);
    uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = s0 + majority;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

void Sha256::update(const void *data, size_t bytes) {
  const auto *p = static_cast<const uint8_t *>(data);
  totalBytes += bytes;
  if (pendingBytes) {
    size_t take = std::min(bytes, 64 - pendingBytes);
    std::memcpy(pending + pendingBytes, p, take);
    pendingBytes += take;
    p += take;
    bytes -= take;
    if (pendingBytes < 64)
      return;
    blocks(pending, 1);
    pendingBytes = 0;
  }
  blocks(p, bytes / 64);
  p += bytes / 64 * 64;
  bytes %= 64;
  std::memcpy(pending, p, bytes);
  pendingBytes = bytes;
}

std::array<uint8_t, 32> Sha256::finish() {
  // Padding: a 1 bit, zeros up to 56 mod 64 bytes, the bit length (big
  // endian).
  uint64_t bits = totalBytes * 8;
  uint8_t padding[72] = {0x80};
  size_t padBytes = (pendingBytes < 56 ? 56 : 120) - pendingBytes;
  for (int i = 0; i < 8; ++i)
    padding[padBytes + i] = uint8_t(bits >> (56 - 8 * i));
  update(padding, padBytes + 8);
  std::array<uint8_t, 32> digest;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j)
      digest[4 * i + j] = uint8_t(state[i] >> (24 - 8 * j));
  return digest;
}

std::string sha256Hex(const void *data, size_t bytes) {
  Sha256 hash;
  hash.update(data, bytes);
  std::string hex;
  for (uint8_t byte : hash.finish()) {
    hex.push_back("0123456789abcdef"[byte >> 4]);
    hex.push_back("0123456789abcdef"[byte & 15]);
  }
  return hex;
}

} // namespace rotor::rt
