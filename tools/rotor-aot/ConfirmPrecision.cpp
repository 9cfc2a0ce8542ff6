//===- ConfirmPrecision.cpp - A precision plan measured on calibration ----===//

#include "ConfirmPrecision.h"

#include "rotor-rt/Bundle.h"
#include "rotor-rt/LayerReference.h"
#include "rotor-rt/Reference.h"
#include "rotor-rt/Tensor.h"

using namespace rotor;

CalibrationRun rotor::runOnCalibration(const std::string &bundleDir,
                                       const std::string &calibrationPath) {
  CalibrationRun run;
  auto bundle = rt::Bundle::open(bundleDir);
  if (!bundle) {
    run.error = bundle.error();
    return run;
  }
  auto inputs = rt::readSafetensors(calibrationPath);
  if (!inputs) {
    run.error = inputs.error();
    return run;
  }
  auto hidden = inputs->find("hidden_states");
  if (hidden == inputs->end() || hidden->second.shape.size() != 2 ||
      hidden->second.shape[1] != (*bundle)->hiddenSize() ||
      hidden->second.dtype != (*bundle)->hiddenDtype()) {
    run.error = calibrationPath + ": needs hidden_states [T, " +
                std::to_string((*bundle)->hiddenSize()) +
                "] of the bundle's input type";
    return run;
  }
  rt::Session session(**bundle);
  auto output = session.prefill(hidden->second);
  if (!output) {
    run.error = output.error();
    return run;
  }
  auto expected = rt::referenceLayer(**bundle, hidden->second);
  if (!expected) {
    run.error = expected.error();
    return run;
  }
  reference::Agreement a = reference::compare(output->toDoubles(), *expected);
  run.maxRelativeError = a.maxRelError;
  run.pcc = a.pcc;
  run.tokens = hidden->second.shape[0];
  if (!a.finite())
    run.error = "the calibration run's output is not finite";
  return run;
}
