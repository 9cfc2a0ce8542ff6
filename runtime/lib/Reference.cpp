//===- Reference.cpp - fp64 reference of the attn semantics ---------------===//

#include "rotor-rt/Reference.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>

namespace rotor::reference {

Vec linear(const Vec &x, const Vec &w, const Vec &b, int64_t t, int64_t e,
           int64_t n) {
  Vec y(t * n);
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = b.empty() ? 0.0 : b[j];
      for (int64_t k = 0; k < e; ++k)
        sum += x[i * e + k] * w[j * e + k];
      y[i * n + j] = sum;
    }
  return y;
}

Vec rmsNorm(const Vec &x, const Vec &w, int64_t rows, int64_t d, double eps) {
  Vec y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double sumSq = 0;
    for (int64_t i = 0; i < d; ++i)
      sumSq += x[r * d + i] * x[r * d + i];
    double inv = 1.0 / std::sqrt(sumSq / double(d) + eps);
    for (int64_t i = 0; i < d; ++i)
      y[r * d + i] = w[i] * x[r * d + i] * inv;
  }
  return y;
}

Vec ropeInverseFrequencies(int64_t rotaryDim, double theta,
                           const RopeScaling &s, int64_t maxPosition) {
  int64_t half = rotaryDim / 2;
  double r = double(rotaryDim);
  double base = theta;
  if (s.kind == RopeScaling::Kind::Dynamic) {
    double len = double(maxPosition + 1);
    double orig = double(s.originalMaxPositions);
    if (len > orig)
      base = theta * std::pow(s.factor * len / orig - (s.factor - 1),
                              r / (r - 2));
  }
  Vec freq(half);
  for (int64_t i = 0; i < half; ++i)
    freq[i] = 1.0 / std::pow(base, double(2 * i) / r);

  switch (s.kind) {
  case RopeScaling::Kind::None:
  case RopeScaling::Kind::Dynamic:
    break;
  case RopeScaling::Kind::Linear:
    for (double &f : freq)
      f /= s.factor;
    break;
  case RopeScaling::Kind::Llama3: {
    double orig = double(s.originalMaxPositions);
    double lowWavelen = orig / s.lowFreqFactor;
    double highWavelen = orig / s.highFreqFactor;
    for (double &f : freq) {
      double wavelen = 2 * std::numbers::pi / f;
      if (wavelen > lowWavelen) {
        f = f / s.factor;
      } else if (wavelen >= highWavelen) {
        double smooth = (orig / wavelen - s.lowFreqFactor) /
                        (s.highFreqFactor - s.lowFreqFactor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    break;
  }
  case RopeScaling::Kind::Yarn: {
    double orig = double(s.originalMaxPositions);
    auto dimFor = [&](double rotations) {
      return r * std::log(orig / (rotations * 2 * std::numbers::pi)) /
             (2 * std::log(theta));
    };
    double low = dimFor(s.betaFast), high = dimFor(s.betaSlow);
    if (s.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, r - 1);
    if (low == high)
      high += 0.001;
    for (int64_t i = 0; i < half; ++i) {
      double ramp = std::min(std::max((double(i) - low) / (high - low), 0.0), 1.0);
      double keep = 1 - ramp; // weight of the unscaled frequency
      freq[i] = freq[i] / s.factor * (1 - keep) + freq[i] * keep;
    }
    break;
  }
  }
  return freq;
}

Vec rope(const Vec &x, const std::vector<int64_t> &positions, int64_t t,
         int64_t h, int64_t d, RopeLayout layout, int64_t rotaryDim,
         double theta, const RopeScaling &scaling) {
  int64_t maxPosition = 0;
  for (int64_t p : positions)
    maxPosition = std::max(maxPosition, p);
  Vec freq = ropeInverseFrequencies(rotaryDim, theta, scaling, maxPosition);
  double factor =
      scaling.kind == RopeScaling::Kind::Yarn ? scaling.attentionFactor : 1.0;
  Vec y = x;
  int64_t half = rotaryDim / 2;
  for (int64_t ti = 0; ti < t; ++ti)
    for (int64_t hi = 0; hi < h; ++hi) {
      const double *src = &x[(ti * h + hi) * d];
      double *dst = &y[(ti * h + hi) * d];
      for (int64_t i = 0; i < half; ++i) {
        int64_t ia = layout == RopeLayout::HalfSplit ? i : 2 * i;
        int64_t ib = layout == RopeLayout::HalfSplit ? i + half : 2 * i + 1;
        double phi = double(positions[ti]) * freq[i];
        double c = std::cos(phi) * factor, s = std::sin(phi) * factor;
        double a = src[ia], b = src[ib];
        dst[ia] = a * c - b * s;
        dst[ib] = a * s + b * c;
      }
    }
  return y;
}

Vec hadamard(const Vec &x, int64_t group, const std::vector<int> &s1,
             const std::vector<int> &s2, bool inverse) {
  // R[i][j] = s2[i] H[i][j] s1[j] / sqrt(G), H[i][j] = (-1)^popcount(i & j).
  Vec r(group * group);
  double norm = 1.0 / std::sqrt(double(group));
  for (int64_t i = 0; i < group; ++i)
    for (int64_t j = 0; j < group; ++j) {
      int parity = __builtin_popcountll(uint64_t(i & j)) & 1;
      r[i * group + j] = s2[i] * (parity ? -1.0 : 1.0) * s1[j] * norm;
    }
  Vec y(x.size());
  for (size_t g = 0; g < x.size(); g += group)
    for (int64_t i = 0; i < group; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < group; ++j)
        sum += (inverse ? r[j * group + i] : r[i * group + j]) * x[g + j];
      y[g + i] = sum;
    }
  return y;
}

Vec lloydMaxCentroids(unsigned bits) {
  size_t n = size_t(1) << bits;
  auto pdf = [](double v) {
    return std::exp(-0.5 * v * v) / std::sqrt(2 * std::numbers::pi);
  };
  // Simpson's rule for the mass and first moment of N(0, 1) on [a, b],
  // with the tails cut at +-12 (mass below 1e-32).
  auto moments = [&](double a, double b) {
    a = std::max(a, -12.0);
    b = std::min(b, 12.0);
    const int steps = 4000;
    double hstep = (b - a) / steps, mass = 0, first = 0;
    for (int i = 0; i <= steps; ++i) {
      double v = a + i * hstep;
      double wgt = (i == 0 || i == steps) ? 1 : (i % 2 ? 4 : 2);
      mass += wgt * pdf(v);
      first += wgt * v * pdf(v);
    }
    return std::pair(mass * hstep / 3, first * hstep / 3);
  };
  Vec c(n);
  for (size_t i = 0; i < n; ++i)
    c[i] = -3.0 + 6.0 * (double(i) + 0.5) / double(n);
  for (int iter = 0; iter < 20000; ++iter) {
    double lo = -std::numeric_limits<double>::infinity(), change = 0;
    Vec next(n);
    for (size_t i = 0; i < n; ++i) {
      double hi = i + 1 < n ? 0.5 * (c[i] + c[i + 1])
                            : std::numeric_limits<double>::infinity();
      auto [mass, first] = moments(lo, hi);
      next[i] = first / mass;
      change = std::max(change, std::abs(next[i] - c[i]));
      lo = hi;
    }
    c = next;
    if (change < 1e-13)
      break;
  }
  return c;
}

Vec outputGate(const Vec &x, const Vec &g) {
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    y[i] = x[i] / (1 + std::exp(-g[i]));
  return y;
}

Vec sdpa(const Vec &q, const Vec &k, const Vec &v, int64_t tq, int64_t tk,
         int64_t hq, int64_t hkv, int64_t d, int64_t dv, bool causal,
         const std::optional<std::vector<int64_t>> &positions,
         std::optional<double> scale) {
  double s = scale ? *scale : 1.0 / std::sqrt(double(d));
  int64_t group = hq / hkv;
  Vec out(tq * hq * dv, 0.0);
  Vec scores(tk);
  for (int64_t i = 0; i < tq; ++i) {
    int64_t pos = positions ? (*positions)[i] : tk - tq + i;
    for (int64_t h = 0; h < hq; ++h) {
      int64_t kvh = h / group;
      double maxScore = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < tk; ++j) {
        if (causal && j > pos) {
          scores[j] = -std::numeric_limits<double>::infinity();
          continue;
        }
        double dot = 0;
        for (int64_t c = 0; c < d; ++c)
          dot += q[(i * hq + h) * d + c] * k[(j * hkv + kvh) * d + c];
        scores[j] = dot * s;
        maxScore = std::max(maxScore, scores[j]);
      }
      if (maxScore == -std::numeric_limits<double>::infinity())
        continue; // no visible key: zeros
      double sum = 0;
      for (int64_t j = 0; j < tk; ++j) {
        scores[j] = std::exp(scores[j] - maxScore);
        sum += scores[j];
      }
      for (int64_t j = 0; j < tk; ++j)
        for (int64_t c = 0; c < dv; ++c)
          out[(i * hq + h) * dv + c] +=
              scores[j] / sum * v[(j * hkv + kvh) * dv + c];
    }
  }
  return out;
}

bool Agreement::finite() const {
  return nonFiniteActual == 0 && nonFiniteExpected == 0 && std::isfinite(pcc) &&
         std::isfinite(maxRelError);
}

Agreement compare(const Vec &actual, const Vec &expected) {
  assert(actual.size() == expected.size());
  size_t n = actual.size();
  // std::max(err, NaN) is err: a NaN would pass unseen below.
  Agreement bad{std::numeric_limits<double>::quiet_NaN(),
                std::numeric_limits<double>::infinity()};
  for (size_t i = 0; i < n; ++i) {
    bad.nonFiniteActual += !std::isfinite(actual[i]);
    bad.nonFiniteExpected += !std::isfinite(expected[i]);
  }
  if (bad.nonFiniteActual || bad.nonFiniteExpected)
    return bad;
  double ma = 0, me = 0;
  for (size_t i = 0; i < n; ++i) {
    ma += actual[i];
    me += expected[i];
  }
  ma /= double(n);
  me /= double(n);
  double cov = 0, va = 0, ve = 0, maxErr = 0, maxRef = 0;
  for (size_t i = 0; i < n; ++i) {
    double da = actual[i] - ma, de = expected[i] - me;
    cov += da * de;
    va += da * da;
    ve += de * de;
    maxErr = std::max(maxErr, std::abs(actual[i] - expected[i]));
    maxRef = std::max(maxRef, std::abs(expected[i]));
  }
  double pcc = (va == 0 || ve == 0) ? (va == ve ? 1.0 : 0.0)
                                    : cov / std::sqrt(va * ve);
  return {pcc, maxRef == 0 ? maxErr : maxErr / maxRef};
}

} // namespace rotor::reference
