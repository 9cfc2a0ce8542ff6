//===- rotor-opt.cpp - The Rotor optimizer driver -------------------------===//
//
// An opt-style tool: the attn dialect, the upstream dialects Rotor's
// pipelines lower through, and every pass.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"
#include "rotor/Conversion/Passes.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"
#include "rotor/InitAllDialects.h"
#include "rotor/Pipelines/Pipelines.h"

#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  rotor::attn::registerAttnTransformsPasses();
  rotor::registerRotorConversionPasses();
  rotor::registerRotorCodegenPasses();
  rotor::registerPipelines();

  mlir::DialectRegistry registry;
  rotor::registerAllDialects(registry);
  rotor::registerInterfaceModels(registry);
  rotor::registerGpuSerialization(registry);
  // Bufferization models, ConvertToLLVM interfaces and the like.
  mlir::registerAllExtensions(registry);
  auto [inputFile, outputFile] = mlir::registerAndParseCLIOptions(
      argc, argv, "Rotor optimizer driver\n", registry);
  mlir::MlirOptMainConfig parsed = mlir::MlirOptMainConfig::createFromCLOptions();
  // An error diagnostic always fails the run, even where the pass that
  // emitted it did not signal failure. Under -verify-diagnostics errors are
  // the expected output, and the verifier decides.
  bool errorEmitted = false;
  mlir::MlirOptMainConfig config = parsed;
  config.setPassPipelineSetupFn([&](mlir::PassManager &pm) {
    if (!parsed.shouldVerifyDiagnostics())
      pm.getContext()->getDiagEngine().registerHandler(
          [&](mlir::Diagnostic &diag) {
            errorEmitted |= diag.getSeverity() == mlir::DiagnosticSeverity::Error;
            return mlir::failure(); // Printed by the next handler.
          });
    return parsed.setupPassPipeline(pm);
  });

  std::string message;
  std::unique_ptr<llvm::MemoryBuffer> input =
      mlir::openInputFile(inputFile, &message);
  if (!input) {
    llvm::errs() << "rotor-opt: " << message << "\n";
    return 1;
  }
  std::unique_ptr<llvm::ToolOutputFile> output =
      mlir::openOutputFile(outputFile, &message);
  if (!output) {
    llvm::errs() << "rotor-opt: " << message << "\n";
    return 1;
  }
  if (mlir::failed(mlir::MlirOptMain(output->os(), std::move(input), registry,
                                     config)))
    return 1;
  if (errorEmitted) {
    llvm::errs() << "rotor-opt: failing: an error was reported above\n";
    return 1;
  }
  output->keep();
  return 0;
}
