//===- Plots.h - SVG figures of the planar rotation analysis --------------===//

#ifndef ROTOR_TOOLS_ROTOR_QK_PLOTS_H
#define ROTOR_TOOLS_ROTOR_QK_PLOTS_H

#include "PlanarRotation.h"

#include <string>
#include <vector>

namespace rotor::qk {

/// One head's Q and K clouds projected on (a, b), coloured by position.
std::string headScatterSvg(const HeadSamples &samples, const HeadMetrics &m);
/// A layer's plane_var_fraction and bias_strength over its heads.
std::string layerHeatmapSvg(const std::vector<HeadMetrics> &heads);
/// A layer's |r_q_a| and |r_k_a| per head.
std::string layerBarsSvg(const std::vector<HeadMetrics> &heads);

} // namespace rotor::qk

#endif // ROTOR_TOOLS_ROTOR_QK_PLOTS_H
