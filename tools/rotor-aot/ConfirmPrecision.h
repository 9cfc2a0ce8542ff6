//===- ConfirmPrecision.h - A precision plan measured on calibration rows -===//
//
// attn-select-precision chooses from a model; with calibration inputs,
// rotor-aot then runs the bundle it wrote on the host backend (the runtime
// library, as rotor-run does) and compares with the fp64 reference, to
// confirm the choice or tighten it.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_TOOLS_ROTOR_AOT_CONFIRMPRECISION_H
#define ROTOR_TOOLS_ROTOR_AOT_CONFIRMPRECISION_H

#include <cstdint>
#include <string>

namespace rotor {

struct CalibrationRun {
  /// Empty when the run and the comparison succeeded.
  std::string error;
  double maxRelativeError = 0, pcc = 0;
  int64_t tokens = 0;
};

/// Prefill of the host bundle at `bundleDir` on `calibrationPath`'s
/// hidden_states [T, hidden] (positions 0..T-1), against the fp64 reference
/// of the layer its manifest describes.
CalibrationRun runOnCalibration(const std::string &bundleDir,
                                const std::string &calibrationPath);

} // namespace rotor

#endif // ROTOR_TOOLS_ROTOR_AOT_CONFIRMPRECISION_H
