//===- PlanarRotation.cpp - The planar rotation analysis of Q and K -------===//

#include "PlanarRotation.h"

#include <Eigen/Eigenvalues>
#include <Eigen/QR>

#include <cmath>
#include <cstdio>
#include <limits>

using namespace rotor::qk;
using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Population covariance of the rows of x.
MatrixXd covariance(const MatrixXd &x) {
  MatrixXd c = x.rowwise() - x.colwise().mean();
  return (c.transpose() * c) / double(x.rows());
}

double mean(const VectorXd &v) { return v.mean(); }
double variance(const VectorXd &v) {
  return (v.array() - v.mean()).square().mean();
}
double covarianceOf(const VectorXd &x, const VectorXd &y) {
  return ((x.array() - x.mean()) * (y.array() - y.mean())).mean();
}
/// Pearson correlation; NaN (undefined) when either side is constant.
double correlation(const VectorXd &x, const VectorXd &y) {
  double vx = variance(x), vy = variance(y);
  if (vx <= 0 || vy <= 0)
    return kNaN;
  return covarianceOf(x, y) / std::sqrt(vx * vy);
}

} // namespace

HeadMetrics rotor::qk::analyzeHead(const HeadSamples &s, BAxis bAxis) {
  HeadMetrics m;
  m.nQ = s.q.rows();
  m.nK = s.k.rows();
  int64_t d = s.q.cols(), n = m.nQ + m.nK;
  MatrixXd x(n, d);
  x << s.q, s.k;
  VectorXd t(n);
  t << s.tq, s.tk;
  MatrixXd xc = x.rowwise() - x.colwise().mean();
  VectorXd tc = t.array() - t.mean();
  VectorXd c = xc.transpose() * tc / double(n);
  double traceX = xc.array().square().sum() / double(n);
  double varT = tc.squaredNorm() / double(n);
  // No linear position signal: |Cov(X, t)| is within what the f32
  // captures' rounding alone could give, 10·u·|x|_rms·sd(t) with u = 2^-24
  // and |x|_rms the rows' uncentred RMS norm (rounding scales with the
  // values, not their spread), or t is constant. a would be made of noise.
  double rowNorm = std::sqrt(x.squaredNorm() / double(n));
  double floor = 10 * std::ldexp(1.0, -24) * rowNorm * std::sqrt(varT);
  if (varT <= 0 || !(c.norm() > floor)) {
    m.positionSignal = false;
    for (double *v : {&m.positionR, &m.rQA, &m.rKA, &m.alphaQ, &m.alphaK,
                      &m.muQA, &m.muKA, &m.muQB, &m.muKB, &m.biasStrength,
                      &m.separationStrength, &m.varFracA, &m.varFracB,
                      &m.planeVarFraction, &m.contentVarB, &m.residualPosR})
      *v = kNaN;
    m.positionR = 0;
    return m;
  }
  VectorXd a = c.normalized();
  VectorXd muQ = s.q.colwise().mean().transpose();
  VectorXd muK = s.k.colwise().mean().transpose();
  VectorXd delta = muQ - muK;
  MatrixXd cDelta = covariance(s.q) + covariance(s.k) + delta * delta.transpose();
  MatrixXd p = MatrixXd::Identity(d, d) - a * a.transpose();
  VectorXd b;
  if (bAxis == BAxis::Eigen) {
    MatrixXd pcp = p * cDelta * p;
    pcp = 0.5 * (pcp + pcp.transpose());
    Eigen::SelfAdjointEigenSolver<MatrixXd> solver(pcp);
    b = solver.eigenvectors().col(d - 1);
  } else {
    b = p * delta;
  }
  // Keep b exactly orthogonal to a, then unit length. With nothing left
  // of a (D = 1, or centroid with mu_Q - mu_K along a) b is undefined: NaN.
  b -= a * a.dot(b);
  if (!(b.norm() > 0)) {
    b = VectorXd::Constant(d, kNaN);
  } else {
    b.normalize();
    if (muQ.dot(b) < muK.dot(b))
      b = -b;
  }

  VectorXd qa = s.q * a, ka = s.k * a, qb = s.q * b, kb = s.k * b;
  VectorXd xa = x * a, xb = x * b;
  m.positionR = std::abs(correlation(xa, t));
  m.rQA = correlation(qa, s.tq);
  m.rKA = correlation(ka, s.tk);
  double vtq = variance(s.tq), vtk = variance(s.tk);
  m.alphaQ = vtq > 0 ? covarianceOf(qa, s.tq) / vtq : kNaN;
  m.alphaK = vtk > 0 ? covarianceOf(ka, s.tk) / vtk : kNaN;
  m.muQA = mean(qa);
  m.muKA = mean(ka);
  m.muQB = mean(qb);
  m.muKB = mean(kb);
  m.biasStrength = m.muQA * m.alphaK;
  m.separationStrength = b.dot(cDelta * b) / cDelta.trace();
  m.varFracA = variance(xa) / traceX;
  m.varFracB = variance(xb) / traceX;
  m.planeVarFraction = m.varFracA + m.varFracB;
  m.contentVarB = 0.5 * (variance(qb) + variance(kb));
  // The self-test: no direction orthogonal to a and b correlates with
  // position (a takes all of Cov(X, t)).
  m.residualPosR = kNaN;
  if (b.allFinite()) {
    MatrixXd ab(d, 2);
    ab << a, b;
    Eigen::HouseholderQR<MatrixXd> qr(ab);
    MatrixXd basis = qr.householderQ() * MatrixXd::Identity(d, d);
    // Directions the cloud does not vary along carry no correlation.
    double residual = 0;
    for (int64_t i = 2; i < d; ++i) {
      double r = correlation(x * basis.col(i), t);
      if (!std::isnan(r))
        residual = std::max(residual, std::abs(r));
    }
    m.residualPosR = residual;
  }
  m.a = a;
  m.b = b;
  return m;
}

const char *rotor::qk::csvHeader() {
  return "layer,q_head,k_head,n_q,n_k,position_r,r_q_a,r_k_a,alpha_q,alpha_k,"
         "mu_q_a,mu_k_a,mu_q_b,mu_k_b,bias_strength,separation_strength,"
         "var_frac_a,var_frac_b,plane_var_fraction,content_var_b,"
         "residual_pos_r";
}

std::string rotor::qk::csvRow(const HeadMetrics &m) {
  std::string row = std::to_string(m.layer) + "," + std::to_string(m.qHead) +
                    "," + std::to_string(m.kHead) + "," +
                    std::to_string(m.nQ) + "," + std::to_string(m.nK);
  for (double v : {m.positionR, m.rQA, m.rKA, m.alphaQ, m.alphaK, m.muQA,
                   m.muKA, m.muQB, m.muKB, m.biasStrength,
                   m.separationStrength, m.varFracA, m.varFracB,
                   m.planeVarFraction, m.contentVarB, m.residualPosR}) {
    char buf[40];
    if (std::isnan(v))
      std::snprintf(buf, sizeof buf, ",nan");
    else
      std::snprintf(buf, sizeof buf, ",%.17g", v);
    row += buf;
  }
  return row;
}
