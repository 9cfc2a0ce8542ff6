//===- rotor-opt.cpp - The Rotor optimizer driver -------------------------===//
//
// An opt-style tool: the attn dialect, the upstream dialects Rotor's
// pipelines lower through, and every pass.
//
//===----------------------------------------------------------------------===//

#include "rotor/Conversion/GpuPipeline/GpuPipeline.h"
#include "rotor/Conversion/HostPipeline/HostPipeline.h"
#include "rotor/Conversion/Passes.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"
#include "rotor/InitAllDialects.h"

#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  rotor::attn::registerAttnTransformsPasses();
  rotor::registerRotorConversionPasses();
  rotor::registerHostPipeline();
  rotor::registerGpuPipeline();

  mlir::DialectRegistry registry;
  rotor::registerAllDialects(registry);
  rotor::registerInterfaceModels(registry);
  rotor::registerGpuSerialization(registry);
  // Bufferization models, ConvertToLLVM interfaces and the like.
  mlir::registerAllExtensions(registry);
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Rotor optimizer driver\n", registry));
}
