//===- rotor-opt.cpp - The Rotor optimizer driver -------------------------===//
//
// An opt-style tool: the attn dialect, the upstream dialects Rotor's
// pipelines lower through, and every pass.
//
//===----------------------------------------------------------------------===//

#include "rotor/InitAllDialects.h"

#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();

  mlir::DialectRegistry registry;
  rotor::registerAllDialects(registry);
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Rotor optimizer driver\n", registry));
}
