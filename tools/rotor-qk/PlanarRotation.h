//===- PlanarRotation.h - The planar rotation analysis of Q and K ---------===//
//
// One (layer, query head) pair with its GQA key head: the pooled, centred
// post-RoPE Q/K cloud's position axis a (its covariance with position), the
// Q-K separation axis b in a's complement, and the metrics of the
// qk-rotation analysis, all in float64.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_TOOLS_ROTOR_QK_PLANARROTATION_H
#define ROTOR_TOOLS_ROTOR_QK_PLANARROTATION_H

#include <Eigen/Dense>

#include <cstdint>
#include <string>
#include <vector>

namespace rotor::qk {

enum class BAxis { Eigen, Centroid };

/// Rows of one head: Q [n_q, D] at positions t_q, K [n_k, D] at t_k.
struct HeadSamples {
  Eigen::MatrixXd q, k;
  Eigen::VectorXd tq, tk;
};

/// One row of rotated.csv, and the axes.
struct HeadMetrics {
  int64_t layer = 0, qHead = 0, kHead = 0, nQ = 0, nK = 0;
  /// False when the pooled cloud has no linear position signal (its
  /// covariance with position vanishes): a, b and what depends on them are
  /// NaN.
  bool positionSignal = true;
  double positionR = 0, rQA = 0, rKA = 0, alphaQ = 0, alphaK = 0;
  double muQA = 0, muKA = 0, muQB = 0, muKB = 0;
  double biasStrength = 0, separationStrength = 0;
  double varFracA = 0, varFracB = 0, planeVarFraction = 0, contentVarB = 0;
  double residualPosR = 0;
  Eigen::VectorXd a, b;
};

/// The metrics of one head (see docs/QK.md for each one's meaning).
HeadMetrics analyzeHead(const HeadSamples &samples, BAxis bAxis);

/// The CSV header, exactly as the issue and docs/QK.md give it.
const char *csvHeader();
/// One CSV row (17 significant digits; NaN as "nan").
std::string csvRow(const HeadMetrics &m);

} // namespace rotor::qk

#endif // ROTOR_TOOLS_ROTOR_QK_PLANARROTATION_H
