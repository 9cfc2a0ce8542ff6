//===- Plots.cpp - SVG figures of the planar rotation analysis ------------===//
//
// Plain SVG text: no plotting service, viewable in any browser.
//
//===----------------------------------------------------------------------===//

#include "Plots.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace rotor::qk;

namespace {

std::string fmt(const char *f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

/// A viridis-like ramp from dark blue (0) through teal to yellow (1).
std::string ramp(double x) {
  x = std::clamp(std::isnan(x) ? 0.0 : x, 0.0, 1.0);
  const double stops[][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140},
                             {94, 201, 98}, {253, 231, 37}};
  double s = x * 4;
  int i = std::min(3, int(s));
  double f = s - i;
  char buf[32];
  std::snprintf(buf, sizeof buf, "rgb(%d,%d,%d)",
                int(stops[i][0] + f * (stops[i + 1][0] - stops[i][0])),
                int(stops[i][1] + f * (stops[i + 1][1] - stops[i][1])),
                int(stops[i][2] + f * (stops[i + 1][2] - stops[i][2])));
  return buf;
}

/// Blue for negative, red for positive, white at 0; |x| scaled by `scale`.
std::string diverging(double x, double scale) {
  double f = std::clamp(std::isnan(x) || scale <= 0 ? 0.0 : x / scale, -1.0, 1.0);
  int r = f < 0 ? int(255 * (1 + f)) : 255, b = f > 0 ? int(255 * (1 - f)) : 255;
  int g = int(255 * (1 - std::abs(f)));
  char buf[32];
  std::snprintf(buf, sizeof buf, "rgb(%d,%d,%d)", r, g, b);
  return buf;
}

std::string header(int w, int h) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         std::to_string(w) + "\" height=\"" + std::to_string(h) +
         "\" font-family=\"sans-serif\" font-size=\"11\">\n"
         "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
}

} // namespace

std::string rotor::qk::headScatterSvg(const HeadSamples &s,
                                      const HeadMetrics &m) {
  const int w = 360, h = 320, left = 40, top = 30, pw = 300, ph = 250;
  std::string svg = header(w, h);
  svg += "<text x=\"" + std::to_string(left) + "\" y=\"18\">layer " +
         std::to_string(m.layer) + " head " + std::to_string(m.qHead) +
         " (k head " + std::to_string(m.kHead) + "): r_k_a " +
         fmt("%.3f", m.rKA) + ", plane " + fmt("%.2f", m.planeVarFraction) +
         "</text>\n";
  if (!m.positionSignal) {
    svg += "<text x=\"60\" y=\"150\">no linear position signal</text>\n</svg>\n";
    return svg;
  }
  Eigen::VectorXd qa = s.q * m.a, qb = s.q * m.b, ka = s.k * m.a, kb = s.k * m.b;
  double x0 = std::min(qa.minCoeff(), ka.minCoeff()),
         x1 = std::max(qa.maxCoeff(), ka.maxCoeff());
  double y0 = std::min(qb.minCoeff(), kb.minCoeff()),
         y1 = std::max(qb.maxCoeff(), kb.maxCoeff());
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  double t0 = std::min(s.tq.minCoeff(), s.tk.minCoeff()),
         t1 = std::max(s.tq.maxCoeff(), s.tk.maxCoeff());
  auto px = [&](double v) { return left + (v - x0) / (x1 - x0) * pw; };
  auto py = [&](double v) { return top + ph - (v - y0) / (y1 - y0) * ph; };
  svg += "<rect x=\"" + std::to_string(left) + "\" y=\"" + std::to_string(top) +
         "\" width=\"" + std::to_string(pw) + "\" height=\"" +
         std::to_string(ph) + "\" fill=\"none\" stroke=\"#888\"/>\n";
  // At most 500 points of each, evenly (a figure stays near 100 KB).
  auto points = [&](const Eigen::VectorXd &xs, const Eigen::VectorXd &ys,
                    const Eigen::VectorXd &ts, bool isQuery) {
    int64_t n = xs.size(), step = std::max<int64_t>(1, (n + 499) / 500);
    for (int64_t i = 0; i < n; i += step) {
      std::string colour = ramp(t1 > t0 ? (ts[i] - t0) / (t1 - t0) : 0);
      if (isQuery)
        svg += "<circle cx=\"" + fmt("%.1f", px(xs[i])) + "\" cy=\"" +
               fmt("%.1f", py(ys[i])) + "\" r=\"2\" fill=\"" + colour + "\"/>\n";
      else
        svg += "<rect x=\"" + fmt("%.1f", px(xs[i]) - 2) + "\" y=\"" +
               fmt("%.1f", py(ys[i]) - 2) +
               "\" width=\"4\" height=\"4\" fill=\"none\" stroke=\"" + colour +
               "\"/>\n";
    }
  };
  points(qa, qb, s.tq, true);
  points(ka, kb, s.tk, false);
  svg += "<text x=\"" + std::to_string(left + pw / 2 - 60) + "\" y=\"" +
         std::to_string(top + ph + 18) +
         "\">a (drifts with position)</text>\n"
         "<text x=\"12\" y=\"" + std::to_string(top + ph / 2 + 30) +
         "\" transform=\"rotate(-90 12 " + std::to_string(top + ph / 2 + 30) +
         ")\">b (Q apart from K)</text>\n"
         "<text x=\"" + std::to_string(left) + "\" y=\"" +
         std::to_string(h - 6) +
         "\">circles Q, squares K; colour: position " + fmt("%.0f", t0) +
         " (dark) to " + fmt("%.0f", t1) + " (yellow)</text>\n</svg>\n";
  return svg;
}

std::string rotor::qk::layerHeatmapSvg(const std::vector<HeadMetrics> &heads) {
  int n = heads.size(), cell = 36, left = 130, top = 34;
  std::string svg = header(left + n * cell + 20, top + 2 * cell + 40);
  svg += "<text x=\"10\" y=\"18\">layer " +
         std::to_string(heads.empty() ? 0 : heads.front().layer) +
         ": per query head</text>\n";
  double biasScale = 0;
  for (const HeadMetrics &m : heads)
    if (!std::isnan(m.biasStrength))
      biasScale = std::max(biasScale, std::abs(m.biasStrength));
  const char *names[] = {"plane_var_fraction", "bias_strength"};
  for (int row = 0; row < 2; ++row) {
    int y = top + row * cell;
    svg += "<text x=\"10\" y=\"" + std::to_string(y + cell / 2 + 4) + "\">" +
           names[row] + "</text>\n";
    for (int i = 0; i < n; ++i) {
      double v = row == 0 ? heads[i].planeVarFraction : heads[i].biasStrength;
      std::string fill = row == 0 ? ramp(v) : diverging(v, biasScale);
      int x = left + i * cell;
      svg += "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) +
             "\" width=\"" + std::to_string(cell - 2) + "\" height=\"" +
             std::to_string(cell - 2) + "\" fill=\"" + fill +
             "\"><title>head " + std::to_string(heads[i].qHead) + ": " +
             fmt("%.4g", v) + "</title></rect>\n";
      svg += "<text x=\"" + std::to_string(x + 3) + "\" y=\"" +
             std::to_string(y + cell / 2 + 4) + "\" font-size=\"9\">" +
             fmt(row == 0 ? "%.2f" : "%.2g", v) + "</text>\n";
    }
  }
  for (int i = 0; i < n; ++i)
    svg += "<text x=\"" + std::to_string(left + i * cell + 10) + "\" y=\"" +
           std::to_string(top + 2 * cell + 14) + "\">" +
           std::to_string(heads[i].qHead) + "</text>\n";
  svg += "</svg>\n";
  return svg;
}

std::string rotor::qk::layerBarsSvg(const std::vector<HeadMetrics> &heads) {
  int n = heads.size(), group = 26, left = 40, top = 30, height = 160;
  std::string svg = header(left + n * group + 20, top + height + 50);
  svg += "<text x=\"10\" y=\"18\">|r_q_a| (blue) and |r_k_a| (orange) per "
         "head</text>\n";
  for (double tick : {0.0, 0.5, 1.0}) {
    int y = top + height - int(tick * height);
    svg += "<line x1=\"" + std::to_string(left) + "\" x2=\"" +
           std::to_string(left + n * group) + "\" y1=\"" + std::to_string(y) +
           "\" y2=\"" + std::to_string(y) + "\" stroke=\"#ddd\"/>\n<text x=\"8\" y=\"" +
           std::to_string(y + 4) + "\">" + fmt("%.1f", tick) + "</text>\n";
  }
  for (int i = 0; i < n; ++i) {
    double vals[] = {std::abs(heads[i].rQA), std::abs(heads[i].rKA)};
    const char *colours[] = {"#1f77b4", "#ff7f0e"};
    for (int k = 0; k < 2; ++k) {
      double v = std::isnan(vals[k]) ? 0 : std::min(1.0, vals[k]);
      int bh = int(v * height), x = left + i * group + k * 10;
      svg += "<rect x=\"" + std::to_string(x) + "\" y=\"" +
             std::to_string(top + height - bh) + "\" width=\"9\" height=\"" +
             std::to_string(bh) + "\" fill=\"" + colours[k] + "\"/>\n";
    }
    svg += "<text x=\"" + std::to_string(left + i * group + 4) + "\" y=\"" +
           std::to_string(top + height + 14) + "\">" +
           std::to_string(heads[i].qHead) + "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}
