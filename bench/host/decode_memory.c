// Decode attention's memory, outside Rotor (PERF.md, twenty-first session):
// how fast one core reads a Qwen2.5-7B-shaped f32 KV cache ([keys, 4 KV
// heads, 128] for K and for V, 2 KiB a key each) in the orders Rotor's
// decode kernel reads it, and a C copy of that kernel with and without
// software prefetches. Not part of run.sh: an instrument for the open
// question of why the prefetches that help this copy do not help Rotor's.
//
//   cc -O3 -march=native bench/host/decode_memory.c -o decode_memory
//   ./decode_memory read                 # GB/s of three read orders
//   ./decode_memory kernel [DIST [HINT]] # the kernel, prefetching DIST
//                                        # keys ahead with prefetcht0/1/2
//
// The cache is 16384 keys (64 MiB for K and V); a 256 MiB buffer is
// written between runs so that each starts from DRAM. Best of 7 runs.
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { kKeys = 16384, kHeads = 4, kDim = 128, kRow = kHeads * kDim,
       kGroup = 7, kRows = kGroup * kHeads, kBlock = 16, kTile = 128 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *K, *V, *flush;
static int hint = 2;

static void prefetch(const void *p) {
  switch (hint) {
  case 0: _mm_prefetch(p, _MM_HINT_T0); break;
  case 1: _mm_prefetch(p, _MM_HINT_T1); break;
  default: _mm_prefetch(p, _MM_HINT_T2); break;
  }
}

// Loads only: in address order, or in the key-block form's order (each
// head's 512 bytes of 16 keys in turn, 2 KiB apart).
static __m512 readInOrder(int blockOrder) {
  __m512 acc = _mm512_setzero_ps();
  for (int j0 = 0; j0 < kKeys; j0 += kBlock)
    for (const float *m = K; m; m = m == K ? V : NULL)
      for (int h = 0; h < kHeads; ++h)
        for (int j = 0; j < kBlock; ++j)
          for (int e = 0; e < kDim; e += 16) {
            size_t at = blockOrder ? (size_t)(j0 + j) * kRow + h * kDim + e
                                   : (size_t)j0 * kRow +
                                         ((h * kBlock + j) * kDim + e);
            acc = _mm512_add_ps(acc, _mm512_load_ps(m + at));
          }
  return acc;
}

// Lane r of the result is the sum of p[r]'s lanes.
static __m512 sumEach(const __m512 *p) {
  float out[16] __attribute__((aligned(64)));
  for (int r = 0; r < 16; ++r)
    out[r] = _mm512_reduce_add_ps(p[r]);
  return _mm512_load_ps(out);
}

// Rotor's decode kernel for one range: per tile of 128 keys, scores per
// block of 16 keys and row (lanes along the head dim, a shuffle reduction),
// then P·V two rows at a time; with `dist`, the tile `dist` keys ahead is
// prefetched, K's lines spread over the scores' block-row iterations and
// V's over P·V's.
static void kernel(const float *q, float *o, int dist) {
  static float s[kRows][kTile] __attribute__((aligned(64)));
  for (int t0 = 0; t0 < kKeys; t0 += kTile) {
    int ahead = dist && t0 + dist + kTile <= kKeys;
    const char *nk = (const char *)(K + (size_t)(t0 + dist) * kRow);
    const char *nv = (const char *)(V + (size_t)(t0 + dist) * kRow);
    int lines = kTile * kRow * 4 / 64, it = 0;
    for (int j0 = t0; j0 < t0 + kTile; j0 += kBlock)
      for (int r = 0; r < kRows; ++r, ++it) {
        int n = kTile / kBlock * kRows;
        for (int l = it * lines / n; ahead && l < (it + 1) * lines / n; ++l)
          prefetch(nk + (size_t)l * 64);
        __m512 a[kBlock];
        for (int j = 0; j < kBlock; ++j)
          a[j] = _mm512_setzero_ps();
        for (int e = 0; e < kDim; e += 16) {
          __m512 qv = _mm512_load_ps(q + r * kDim + e);
          for (int j = 0; j < kBlock; ++j)
            a[j] = _mm512_fmadd_ps(
                qv,
                _mm512_load_ps(K + (size_t)(j0 + j) * kRow +
                               r / kGroup * kDim + e),
                a[j]);
        }
        _mm512_store_ps(&s[r][j0 - t0], sumEach(a));
      }
    it = 0;
    for (int j0 = t0; j0 < t0 + kTile; j0 += kBlock)
      for (int r = 0; r < kRows; r += 2, ++it) {
        int n = kTile / kBlock * kRows / 2;
        for (int l = it * lines / n; ahead && l < (it + 1) * lines / n; ++l)
          prefetch(nv + (size_t)l * 64);
        const float *v0 = V + (size_t)j0 * kRow + r / kGroup * kDim;
        const float *v1 = V + (size_t)j0 * kRow + (r + 1) / kGroup * kDim;
        __m512 o0[8], o1[8];
        for (int c = 0; c < 8; ++c) {
          o0[c] = _mm512_load_ps(o + r * kDim + c * 16);
          o1[c] = _mm512_load_ps(o + (r + 1) * kDim + c * 16);
        }
        for (int j = 0; j < kBlock; ++j) {
          __m512 p0 = _mm512_set1_ps(s[r][j0 - t0 + j] * 1e-3f);
          __m512 p1 = _mm512_set1_ps(s[r + 1][j0 - t0 + j] * 1e-3f);
          for (int c = 0; c < 8; ++c) {
            o0[c] = _mm512_fmadd_ps(
                p0, _mm512_load_ps(v0 + (size_t)j * kRow + c * 16), o0[c]);
            o1[c] = _mm512_fmadd_ps(
                p1, _mm512_load_ps(v1 + (size_t)j * kRow + c * 16), o1[c]);
          }
        }
        for (int c = 0; c < 8; ++c) {
          _mm512_store_ps(o + r * kDim + c * 16, o0[c]);
          _mm512_store_ps(o + (r + 1) * kDim + c * 16, o1[c]);
        }
      }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s read | kernel [DIST [HINT 0-2]]\n", argv[0]);
    return 2;
  }
  size_t bytes = (size_t)kKeys * kRow * 4, flushBytes = 256u << 20;
  K = aligned_alloc(64, bytes);
  V = aligned_alloc(64, bytes);
  flush = aligned_alloc(64, flushBytes);
  float *q = aligned_alloc(64, kRows * kDim * 4);
  float *o = aligned_alloc(64, kRows * kDim * 4);
  for (size_t i = 0; i < (size_t)kKeys * kRow; ++i) {
    K[i] = (i % 7) * 0.01f;
    V[i] = (i % 5) * 0.01f;
  }
  for (int i = 0; i < kRows * kDim; ++i)
    q[i] = (i % 3) * 0.1f;
  int isKernel = !strcmp(argv[1], "kernel");
  int dist = argc > 2 ? atoi(argv[2]) : 0;
  hint = argc > 3 ? atoi(argv[3]) : 2;
  for (int order = 0; order < (isKernel ? 1 : 2); ++order) {
    double best = 1e9;
    float sink = 0;
    for (int rep = 0; rep < 7; ++rep) {
      memset(flush, rep, flushBytes);
      memset(o, 0, kRows * kDim * 4);
      double t0 = now();
      if (isKernel) {
        kernel(q, o, dist);
      } else {
        float lanes[16];
        _mm512_storeu_ps(lanes, readInOrder(order));
        sink += lanes[0];
      }
      double t = now() - t0;
      best = t < best ? t : best;
    }
    if (isKernel)
      printf("kernel, prefetch %d keys ahead (prefetcht%d): %.3f ms, %.3f "
             "us/key, %.1f GB/s (check %g)\n",
             dist, hint, best * 1e3, best * 1e6 / kKeys, 2 * bytes / best / 1e9,
             o[5]);
    else
      printf("%s: %.1f GB/s (check %g)\n",
             order ? "key-block order" : "address order",
             2 * bytes / best / 1e9, sink);
  }
  return 0;
}
