/* Machine limits for the host benchmarks: peak multiply-add throughput and
 * memory bandwidth on K OpenMP threads, to put measured kernel speeds in
 * context (roofline).
 *
 * Build:  cc -O3 -march=native -fopenmp machine_limits.c -o machine_limits
 *         (gcc + libgomp. Clang also works; Debian's clang-22 here ships no
 *         omp.h, which this file does without, but needs libomp's directory:
 *         clang -O3 -march=native -fopenmp -L/usr/lib/llvm-14/lib ...)
 * Run:    ./machine_limits K
 * Prints:
 *   peak_fma_gflops G  vector FMA throughput, 2 flops per lane per FMA, best
 *                      of several ~0.2 s runs, 12 independent chains/thread
 *   peak_bf16_dot_gflops G  (CPUs with AVX512-BF16 only) vdpbf16ps
 *                      throughput, 4 flops per f32 lane (two products and
 *                      two adds), 12 chains/thread as the FMA's
 *   peak_amx_bf16_gflops G  (CPUs with AMX-BF16, where Linux grants the
 *                      tile state) tdpbf16ps throughput on tiles in
 *                      registers: 16 x 16 x 32 products and adds per
 *                      instruction, four independent accumulator tiles
 *   copy_gbps G        memcpy of a 256 MiB source into a 256 MiB destination,
 *                      each thread copying its slice; bytes copied per second
 *   read_gbps G        read-only sum of a 256 MiB float array with vector
 *                      accumulators; bytes read per second
 * (1 GB = 1e9 bytes, 1 GFLOP = 1e9 flops.)
 */
#include <immintrin.h>
#if defined(__has_include)
#if __has_include(<omp.h>)
#include <omp.h>
#define HAVE_OMP_H 1
#endif
#endif
#ifndef HAVE_OMP_H /* the few OpenMP runtime calls used here */
int omp_get_thread_num(void);
int omp_get_num_threads(void);
double omp_get_wtime(void);
void omp_set_dynamic(int);
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AMX_BF16__) && defined(__linux__)
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
#define HAVE_AMX 1
#endif

#define RUNS 7
#define BYTES ((size_t)256 << 20)

#if defined(__AVX512F__)
typedef __m512 vec;
#define VLANES 16
#define vset1 _mm512_set1_ps
#define vfma _mm512_fmadd_ps
#define vadd _mm512_add_ps
#define vload _mm512_loadu_ps
#define vzero _mm512_setzero_ps
#define ISA "avx512f"
#elif defined(__FMA__) && defined(__AVX__)
typedef __m256 vec;
#define VLANES 8
#define vset1 _mm256_set1_ps
#define vfma _mm256_fmadd_ps
#define vadd _mm256_add_ps
#define vload _mm256_loadu_ps
#define vzero _mm256_setzero_ps
#define ISA "avx2+fma"
#else
typedef __m128 vec; /* no FMA: counts a mul+add pair as one "FMA" */
#define VLANES 4
#define vset1 _mm_set1_ps
static inline vec vfma(vec a, vec b, vec c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
#define vadd _mm_add_ps
#define vload _mm_loadu_ps
#define vzero _mm_setzero_ps
#define ISA "sse (mul+add)"
#endif

static volatile float sink;

static inline float hsum(vec v) {
  float t[VLANES];
  memcpy(t, &v, sizeof t);
  float s = 0;
  for (int i = 0; i < VLANES; i++) s += t[i];
  return s;
}

/* 12 independent FMA chains per thread: enough to cover latency x pipes
 * (e.g. 4-5 cycles x 2 FMA units). The multiplier and addend come from a
 * volatile, so the compiler cannot fold the loop. */
static double fma_run(long iters, int threads) {
  volatile float vm = 0.999999f, va = 1e-7f;
  float m = vm, a = va;
  double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
  {
    vec mul = vset1(m), add = vset1(a);
    vec c0 = vset1(1.0f + omp_get_thread_num()), c1 = vadd(c0, add), c2 = vadd(c1, add),
        c3 = vadd(c2, add), c4 = vadd(c3, add), c5 = vadd(c4, add), c6 = vadd(c5, add),
        c7 = vadd(c6, add), c8 = vadd(c7, add), c9 = vadd(c8, add), c10 = vadd(c9, add),
        c11 = vadd(c10, add);
    for (long i = 0; i < iters; i++) {
      c0 = vfma(c0, mul, add); c1 = vfma(c1, mul, add); c2 = vfma(c2, mul, add);
      c3 = vfma(c3, mul, add); c4 = vfma(c4, mul, add); c5 = vfma(c5, mul, add);
      c6 = vfma(c6, mul, add); c7 = vfma(c7, mul, add); c8 = vfma(c8, mul, add);
      c9 = vfma(c9, mul, add); c10 = vfma(c10, mul, add); c11 = vfma(c11, mul, add);
#if defined(__GNUC__)
      __asm__ volatile("" ::: "memory");
#endif
    }
    vec s = vadd(vadd(vadd(c0, c1), vadd(c2, c3)), vadd(vadd(c4, c5), vadd(c6, c7)));
    s = vadd(s, vadd(vadd(c8, c9), vadd(c10, c11)));
    float r = hsum(s);
#pragma omp atomic
    sink += r;
  }
  return omp_get_wtime() - t0;
}

#if defined(__AVX512BF16__)
/* 12 independent vdpbf16ps chains per thread, as fma_run's. */
static double bf16_dot_run(long iters, int threads) {
  volatile float va = 1e-3f;
  float a = va;
  double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
  {
    __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(a), _mm512_set1_ps(a));
    /* Named, distinct accumulators: an array stays in memory across the asm
     * barrier, and equal ones are one chain to the compiler. */
    __m512 add = _mm512_set1_ps(a);
    __m512 c0 = _mm512_set1_ps(1.0f + omp_get_thread_num()), c1 = _mm512_add_ps(c0, add),
           c2 = _mm512_add_ps(c1, add), c3 = _mm512_add_ps(c2, add), c4 = _mm512_add_ps(c3, add),
           c5 = _mm512_add_ps(c4, add), c6 = _mm512_add_ps(c5, add), c7 = _mm512_add_ps(c6, add),
           c8 = _mm512_add_ps(c7, add), c9 = _mm512_add_ps(c8, add), c10 = _mm512_add_ps(c9, add),
           c11 = _mm512_add_ps(c10, add);
    for (long i = 0; i < iters; i++) {
      c0 = _mm512_dpbf16_ps(c0, x, x); c1 = _mm512_dpbf16_ps(c1, x, x);
      c2 = _mm512_dpbf16_ps(c2, x, x); c3 = _mm512_dpbf16_ps(c3, x, x);
      c4 = _mm512_dpbf16_ps(c4, x, x); c5 = _mm512_dpbf16_ps(c5, x, x);
      c6 = _mm512_dpbf16_ps(c6, x, x); c7 = _mm512_dpbf16_ps(c7, x, x);
      c8 = _mm512_dpbf16_ps(c8, x, x); c9 = _mm512_dpbf16_ps(c9, x, x);
      c10 = _mm512_dpbf16_ps(c10, x, x); c11 = _mm512_dpbf16_ps(c11, x, x);
#if defined(__GNUC__)
      __asm__ volatile("" ::: "memory");
#endif
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    float r = _mm512_reduce_add_ps(s);
#pragma omp atomic
    sink += r;
  }
  return omp_get_wtime() - t0;
}
#endif

#if defined(HAVE_AMX)
/* Four tdpbf16ps chains (tiles 0-3) on two operand tiles per thread; each
 * thread asks for the tile state and configures its own tiles. */
struct tile_config {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

static int amx_granted(void) {
  return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
                 18 /* XFEATURE_XTILEDATA */) == 0;
}

static double amx_run(long iters, int threads) {
  double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
  {
    static __thread uint16_t ones[16 * 32];
    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 6; i++) { cfg.rows[i] = 16; cfg.colsb[i] = 64; }
    for (int i = 0; i < 16 * 32; i++) ones[i] = 0x3a83; /* ~1e-3 in bf16 */
    _tile_loadconfig(&cfg);
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    for (long i = 0; i < iters; i++) {
      _tile_dpbf16ps(0, 4, 5); _tile_dpbf16ps(1, 4, 5);
      _tile_dpbf16ps(2, 4, 5); _tile_dpbf16ps(3, 4, 5);
    }
    static __thread float out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
#pragma omp atomic
    sink += out[0];
  }
  return omp_get_wtime() - t0;
}
#endif

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (threads < 1) threads = 1;
  omp_set_dynamic(0);
  fprintf(stderr, "machine_limits: %d thread(s), %s, %d lanes\n", threads, ISA, VLANES);

  /* Peak FMA: calibrate to ~0.2 s per run. */
  long iters = 1 << 20;
  double t;
  while ((t = fma_run(iters, threads)) < 0.05) iters *= 2;
  iters = (long)(iters * 0.2 / t);
  double best = 1e30;
  for (int r = 0; r < RUNS; r++) {
    t = fma_run(iters, threads);
    if (t < best) best = t;
  }
  printf("peak_fma_gflops %.1f\n", 2.0 * 12 * VLANES * (double)iters * threads / best / 1e9);
  fflush(stdout);
#if defined(__AVX512BF16__)
  iters = 1 << 20;
  while ((t = bf16_dot_run(iters, threads)) < 0.05) iters *= 2;
  iters = (long)(iters * 0.2 / t);
  best = 1e30;
  for (int r = 0; r < RUNS; r++) {
    t = bf16_dot_run(iters, threads);
    if (t < best) best = t;
  }
  printf("peak_bf16_dot_gflops %.1f\n", 4.0 * 12 * 16 * (double)iters * threads / best / 1e9);
  fflush(stdout);
#endif
#if defined(HAVE_AMX)
  if (amx_granted()) {
    iters = 1 << 16;
    while ((t = amx_run(iters, threads)) < 0.05) iters *= 2;
    iters = (long)(iters * 0.2 / t);
    best = 1e30;
    for (int r = 0; r < RUNS; r++) {
      t = amx_run(iters, threads);
      if (t < best) best = t;
    }
    printf("peak_amx_bf16_gflops %.1f\n",
           4.0 * 16 * 16 * 32 * 2 * (double)iters * threads / best / 1e9);
    fflush(stdout);
  }
#endif

  /* Bandwidth: 256 MiB arrays, first-touched by the threads that use them. */
  size_t n = BYTES / sizeof(float);
  float *src = aligned_alloc(64, BYTES), *dst = aligned_alloc(64, BYTES);
  if (!src || !dst) { fprintf(stderr, "out of memory\n"); return 1; }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (size_t i = 0; i < n; i++) { src[i] = (float)(i & 1023) * 1e-3f; dst[i] = 0; }

  best = 1e30;
  for (int r = 0; r < RUNS; r++) {
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
    {
      int id = omp_get_thread_num(), k = omp_get_num_threads();
      size_t lo = n * id / k, hi = n * (id + 1) / k;
      memcpy(dst + lo, src + lo, (hi - lo) * sizeof(float));
    }
    t = omp_get_wtime() - t0;
    if (t < best) best = t;
    sink += dst[(size_t)r * 4099 % n]; /* the copy is observed */
  }
  printf("copy_gbps %.1f\n", (double)BYTES / best / 1e9);
  fflush(stdout);

  best = 1e30;
  for (int r = 0; r < RUNS; r++) {
    float total = 0;
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      int id = omp_get_thread_num(), k = omp_get_num_threads();
      size_t per = n / k / (4 * VLANES) * (4 * VLANES);
      size_t lo = per * id, hi = id == k - 1 ? n : lo + per;
      vec a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
      size_t i = lo;
      for (; i + 4 * VLANES <= hi; i += 4 * VLANES) {
        a0 = vadd(a0, vload(src + i));
        a1 = vadd(a1, vload(src + i + VLANES));
        a2 = vadd(a2, vload(src + i + 2 * VLANES));
        a3 = vadd(a3, vload(src + i + 3 * VLANES));
      }
      float s = hsum(vadd(vadd(a0, a1), vadd(a2, a3)));
      for (; i < hi; i++) s += src[i];
      total += s;
    }
    t = omp_get_wtime() - t0;
    if (t < best) best = t;
    sink += total;
  }
  printf("read_gbps %.1f\n", (double)BYTES / best / 1e9);
  free(src);
  free(dst);
  return 0;
}
