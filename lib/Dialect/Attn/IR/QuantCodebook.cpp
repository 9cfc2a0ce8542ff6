//===- QuantCodebook.cpp - Lloyd-Max codebooks of KV quantization ---------===//

#include "rotor/Dialect/Attn/IR/QuantCodebook.h"

#include <cassert>
#include <cmath>
#include <numbers>

using namespace rotor::attn;

llvm::SmallVector<double> rotor::attn::getLloydMaxCentroids(unsigned bits) {
  assert(bits >= 1 && bits <= 4 && "codebooks exist for 1 to 4 bits");
  size_t n = size_t(1) << bits;
  auto pdf = [](double x) {
    return std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi);
  };
  auto cdf = [](double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); };

  // Start from evenly spaced points and alternate the two optimality
  // conditions: boundaries at midpoints, centroids at conditional means.
  llvm::SmallVector<double> c(n);
  for (size_t i = 0; i < n; ++i)
    c[i] = -2.0 + 4.0 * (double(i) + 0.5) / double(n);
  for (int iter = 0; iter < 100000; ++iter) {
    double change = 0;
    double lo = -INFINITY;
    llvm::SmallVector<double> next(n);
    for (size_t i = 0; i < n; ++i) {
      double hi = i + 1 < n ? 0.5 * (c[i] + c[i + 1]) : INFINITY;
      next[i] = (pdf(lo) - pdf(hi)) / (cdf(hi) - cdf(lo));
      change = std::max(change, std::abs(next[i] - c[i]));
      lo = hi;
    }
    c = next;
    if (change < 1e-15)
      break;
  }
  return c;
}
