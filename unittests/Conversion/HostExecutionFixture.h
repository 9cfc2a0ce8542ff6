//===- HostExecutionFixture.h - Lowered attn ops on the host ----*- C++ -*-===//
//
// The fixture of the host execution tests. Each test writes an attn
// function, lowers it with the host pipeline (or the GPU pipeline, its
// launches emulated as host thread teams), JITs it, runs it on fresh random
// inputs of realistic magnitude and compares the result with the fp64
// reference (runtime/lib/Reference.cpp), which shares no code with the
// lowering, or bit for bit with another lowering. The seed is printed on
// failure.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_UNITTESTS_CONVERSION_HOSTEXECUTIONFIXTURE_H
#define ROTOR_UNITTESTS_CONVERSION_HOSTEXECUTIONFIXTURE_H

#include "rotor/Pipelines/Pipelines.h"
#include "rotor-rt/Reference.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"

#include "gtest/gtest.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace rotor::unittest {

namespace ref = rotor::reference;
using ref::Vec;

enum class Elem { F32, BF16, F16, I32, I64, I8 };

size_t elemSize(Elem e);

/// The bf16 nearest to `v` (ties to even); bf16 and f16 bits as values.
uint16_t toBF16(double v);
double fromBF16(uint16_t b);
double fromF16(uint16_t h);

/// A dense row-major tensor in the bytes an entry point reads.
struct Buffer {
  Elem elem;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  Buffer(Elem elem, std::vector<int64_t> shape, const Vec &values);
  void set(size_t i, double v);
};

/// The element of type `elem` at `p`, as a double.
double load(Elem elem, const uint8_t *p);

/// An argument: a tensor, or an `index` scalar.
struct Arg {
  std::optional<Buffer> buffer;
  int64_t index = 0;
};
Arg tensorArg(Elem e, std::vector<int64_t> shape, const Vec &v);
Arg indexArg(int64_t v);

Vec toDouble(const std::vector<int64_t> &v);

class HostExecutionTest : public ::testing::Test {
public:
  static void SetUpTestSuite();

  HostExecutionTest();

  /// Lowers and JITs `source`; fails the test on any error.
  void compile(const std::string &source,
               const rotor::PipelineOptions &pipeline = {});

  /// Lowers `source` as for the GPU (its parallel loops and workgroup
  /// kernels mapped to gpu.launch ops, barriers and workgroup buffers
  /// included), then runs each launch on the host as blocks of OpenMP
  /// thread teams: the GPU mapping's semantics without a GPU.
  void compileEmulatingGpu(const std::string &source,
                           const rotor::PipelineOptions &pipeline = {});

  /// The thread teams (emulated GPU blocks, one per launch) of the last
  /// compileEmulatingGpu, counted in its LLVM dialect output.
  int64_t emulatedBlocks = 0;

  void compileWith(const std::string &source,
                   llvm::function_ref<void(mlir::PassManager &)> build,
                   llvm::ArrayRef<llvm::StringRef> sharedLibs = {},
                   int64_t *teams = nullptr);

  /// Calls `name` and returns its results, converted to double, with
  /// `resultElems` and `resultRanks` describing them.
  std::vector<Vec> call(const std::string &name, std::vector<Arg> &args,
                        llvm::ArrayRef<Elem> resultElems,
                        llvm::ArrayRef<size_t> resultRanks);

  Vec randomVec(size_t n, double scale);

  /// Values exactly representable in bf16, so both sides see the same input.
  Vec randomBF16Vec(size_t n, double scale);

  std::vector<int64_t> randomPositions(size_t n, int64_t below);

  void expectClose(const Vec &actual, const Vec &expected, double tolerance,
                   const std::string &what);

  // Public, like the helpers above, so that a long test's helper functions
  // can draw inputs from the same seed.
  mlir::MLIRContext context;
  std::unique_ptr<mlir::ExecutionEngine> jit;
  unsigned seed;
  std::mt19937_64 rng;
};

} // namespace rotor::unittest

#endif // ROTOR_UNITTESTS_CONVERSION_HOSTEXECUTIONFIXTURE_H
