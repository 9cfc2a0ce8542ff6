//===- Reference.h - fp64 reference of the attn semantics -------*- C++ -*-===//
//
// Each function computes one attn op in double precision directly from the
// formulas of DESIGN.md and the op descriptions, sharing no code with the
// compiler's lowering. Tensors are dense, row-major std::vector<double>.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_RT_REFERENCE_H
#define ROTOR_RT_REFERENCE_H

#include <cstdint>
#include <optional>
#include <vector>

namespace rotor::reference {

using Vec = std::vector<double>;

/// y[t, n] = sum_e x[t, e] W[n, e] + b[n]; x [T, E], W [N, E], b [N] or empty.
Vec linear(const Vec &x, const Vec &w, const Vec &b, int64_t t, int64_t e,
           int64_t n);

/// RMS norm over the last dim d of `rows` rows: w[i] x[i] / sqrt(mean(x²) + eps).
Vec rmsNorm(const Vec &x, const Vec &w, int64_t rows, int64_t d, double eps);

enum class RopeLayout { HalfSplit, Interleaved };

/// RoPE scaling of Hugging Face's modeling_rope_utils.py.
struct RopeScaling {
  enum class Kind { None, Linear, Dynamic, Yarn, Llama3 } kind = Kind::None;
  double factor = 1;
  int64_t originalMaxPositions = 0;
  double betaFast = 32, betaSlow = 1, attentionFactor = 1;
  bool truncate = true;
  double lowFreqFactor = 1, highFreqFactor = 4;
};

/// inv_freq_i, i < R/2; `maxPosition` is max(positions) (dynamic NTK only).
Vec ropeInverseFrequencies(int64_t rotaryDim, double theta,
                           const RopeScaling &scaling, int64_t maxPosition);

/// RoPE of x [T, H, D] at positions [T].
Vec rope(const Vec &x, const std::vector<int64_t> &positions, int64_t t,
         int64_t h, int64_t d, RopeLayout layout, int64_t rotaryDim,
         double theta, const RopeScaling &scaling = {});

/// diag(s2) H_G/sqrt(G) diag(s1) (or its transpose when `inverse`) on each
/// group of G consecutive elements; the dense matrix, O(G²) per group.
Vec hadamard(const Vec &x, int64_t group, const std::vector<int> &s1,
             const std::vector<int> &s2, bool inverse);

/// The 2^bits Lloyd-Max centroids of the standard normal distribution,
/// found by Lloyd's iteration with numerically integrated conditional means.
Vec lloydMaxCentroids(unsigned bits);

/// y = x * sigmoid(g).
Vec outputGate(const Vec &x, const Vec &g);

/// Scaled dot-product attention with GQA. q [Tq, Hq, D], k [Tk, Hkv, D],
/// v [Tk, Hkv, Dv]. With `causal`, key j is visible to query i when
/// j <= pos(i), pos(i) = positions[i] if given, else Tk - Tq + i.
Vec sdpa(const Vec &q, const Vec &k, const Vec &v, int64_t tq, int64_t tk,
         int64_t hq, int64_t hkv, int64_t d, int64_t dv, bool causal,
         const std::optional<std::vector<int64_t>> &positions,
         std::optional<double> scale = std::nullopt);

/// Accuracy of `actual` against `expected`. A value that is not finite
/// (NaN or infinite) on either side makes the agreement fail any tolerance:
/// its PCC is NaN and its error +inf, and the counts say which side.
struct Agreement {
  double pcc;          ///< Pearson correlation.
  double maxRelError;  ///< max |a - e| / max |e|.
  size_t nonFiniteActual = 0, nonFiniteExpected = 0;
  /// Whether every value was finite and so are the PCC and error.
  bool finite() const;
};
Agreement compare(const Vec &actual, const Vec &expected);

} // namespace rotor::reference

#endif // ROTOR_RT_REFERENCE_H
