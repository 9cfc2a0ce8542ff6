//===- HostExecutionTest.cpp - Lowered attn ops against the fp64 reference ===//
//
// Each test writes an attn function, lowers it with the host pipeline, JITs
// it, runs it on fresh random inputs of realistic magnitude and compares the
// result with the fp64 reference (runtime/lib/Reference.cpp), which shares no
// code with the lowering. The seed is printed on failure.
//
//===----------------------------------------------------------------------===//

#include "rotor/Conversion/GpuPipeline/GpuPipeline.h"
#include "rotor/Conversion/HostPipeline/HostPipeline.h"
#include "rotor/Conversion/Passes.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"
#include "rotor/InitAllDialects.h"
#include "rotor-rt/Reference.h"

#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/TargetSelect.h"

#include "gtest/gtest.h"

#include <unistd.h>

#include <bit>
#include <csignal>
#include <cstring>
#include <numeric>
#include <random>
#include <set>

using namespace mlir;
namespace ref = rotor::reference;
using ref::Vec;

namespace {

enum class Elem { F32, BF16, F16, I32, I64, I8 };

size_t elemSize(Elem e) {
  switch (e) {
  case Elem::F32:
  case Elem::I32:
    return 4;
  case Elem::BF16:
  case Elem::F16:
    return 2;
  case Elem::I64:
    return 8;
  case Elem::I8:
    return 1;
  }
  return 0;
}

uint16_t toBF16(double v) {
  uint32_t bits = std::bit_cast<uint32_t>(float(v));
  uint32_t rounding = 0x7fff + ((bits >> 16) & 1); // nearest, ties to even
  return uint16_t((bits + rounding) >> 16);
}
double fromBF16(uint16_t b) {
  return std::bit_cast<float>(uint32_t(b) << 16);
}
double fromF16(uint16_t h) { return double(std::bit_cast<_Float16>(h)); }

/// A dense row-major tensor in the bytes an entry point reads.
struct Buffer {
  Elem elem;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  Buffer(Elem elem, std::vector<int64_t> shape, const Vec &values)
      : elem(elem), shape(std::move(shape)) {
    bytes.resize(values.size() * elemSize(elem));
    for (size_t i = 0; i < values.size(); ++i)
      set(i, values[i]);
  }
  void set(size_t i, double v) {
    uint8_t *p = bytes.data() + i * elemSize(elem);
    switch (elem) {
    case Elem::F32: { float f = float(v); std::memcpy(p, &f, 4); break; }
    case Elem::BF16: { uint16_t b = toBF16(v); std::memcpy(p, &b, 2); break; }
    case Elem::F16: { _Float16 h = _Float16(v); std::memcpy(p, &h, 2); break; }
    case Elem::I32: { int32_t x = int32_t(v); std::memcpy(p, &x, 4); break; }
    case Elem::I64: { int64_t x = int64_t(v); std::memcpy(p, &x, 8); break; }
    case Elem::I8: { int8_t x = int8_t(v); std::memcpy(p, &x, 1); break; }
    }
  }
};

double load(Elem elem, const uint8_t *p) {
  switch (elem) {
  case Elem::F32: { float f; std::memcpy(&f, p, 4); return f; }
  case Elem::BF16: { uint16_t b; std::memcpy(&b, p, 2); return fromBF16(b); }
  case Elem::F16: { uint16_t h; std::memcpy(&h, p, 2); return fromF16(h); }
  case Elem::I32: { int32_t x; std::memcpy(&x, p, 4); return x; }
  case Elem::I64: { int64_t x; std::memcpy(&x, p, 8); return double(x); }
  case Elem::I8: { int8_t x; std::memcpy(&x, p, 1); return x; }
  }
  return 0;
}

/// A memref descriptor {allocated, aligned, offset, sizes[N], strides[N]},
/// every field 8 bytes.
std::vector<int64_t> describe(Buffer &b) {
  std::vector<int64_t> d(3 + 2 * b.shape.size());
  auto *data = reinterpret_cast<int64_t>(b.bytes.data()) ? b.bytes.data() : nullptr;
  d[0] = d[1] = reinterpret_cast<int64_t>(data);
  d[2] = 0;
  int64_t stride = 1;
  for (size_t i = b.shape.size(); i-- > 0;) {
    d[3 + i] = b.shape[i];
    d[3 + b.shape.size() + i] = stride;
    stride *= b.shape[i];
  }
  return d;
}

/// An argument: a tensor, or an `index` scalar.
struct Arg {
  std::optional<Buffer> buffer;
  int64_t index = 0;
};
Arg tensorArg(Elem e, std::vector<int64_t> shape, const Vec &v) {
  return Arg{Buffer(e, std::move(shape), v), 0};
}
Arg indexArg(int64_t v) { return Arg{std::nullopt, v}; }

class HostExecutionTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    mlir::registerAllPasses();
    rotor::registerRotorConversionPasses();
  }

  HostExecutionTest() {
    DialectRegistry registry;
    rotor::registerAllDialects(registry);
    rotor::registerInterfaceModels(registry);
    registerBuiltinDialectTranslation(registry);
    registerLLVMDialectTranslation(registry);
    registerOpenMPDialectTranslation(registry);
    context.appendDialectRegistry(registry);
    seed = std::random_device{}();
    rng.seed(seed);
  }

  /// Lowers and JITs `source`; fails the test on any error.
  void compile(const std::string &source,
               const rotor::HostPipelineOptions &pipeline = {}) {
    compileWith(source, [&](PassManager &pm) {
      rotor::buildHostPipeline(pm, pipeline);
    });
  }

  /// Lowers `source` as for the GPU (its parallel loops and workgroup
  /// kernels mapped to gpu.launch ops, barriers and workgroup buffers
  /// included), then runs each launch on the host as blocks of OpenMP
  /// thread teams: the GPU mapping's semantics without a GPU.
  void compileEmulatingGpu(const std::string &source,
                           const rotor::GpuPipelineOptions &pipeline = {}) {
    // Threads that wait at a barrier sleep rather than spin: a block has
    // 128 of them and the machine a few cores.
    setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0);
    setenv("KMP_BLOCKTIME", "0", /*overwrite=*/0);
    compileWith(
        source,
        [&](PassManager &pm) { rotor::buildGpuEmulationPipeline(pm, pipeline); },
        {ROTOR_LIBOMP}, &emulatedBlocks);
  }

  /// The thread teams (emulated GPU blocks, one per launch) of the last
  /// compileEmulatingGpu, counted in its LLVM dialect output.
  int64_t emulatedBlocks = 0;

  void compileWith(const std::string &source,
                   llvm::function_ref<void(PassManager &)> build,
                   ArrayRef<StringRef> sharedLibs = {},
                   int64_t *teams = nullptr) {
    OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(source, &context);
    ASSERT_TRUE(module) << source;
    PassManager pm(&context);
    build(pm);
    ASSERT_TRUE(succeeded(pm.run(*module))) << source;
    if (teams) {
      *teams = 0;
      module->walk([&](omp::ParallelOp) { ++*teams; });
    }
    // The options hold a function_ref: the transformer must outlive create().
    auto transformer = makeOptimizingTransformer(2, 0, nullptr);
    ExecutionEngineOptions options;
    options.transformer = transformer;
    options.sharedLibPaths = sharedLibs;
    auto engine = ExecutionEngine::create(*module, options);
    ASSERT_TRUE(bool(engine)) << llvm::toString(engine.takeError());
    jit = std::move(*engine);
  }

  /// Calls `name` and returns its results, converted to double, with
  /// `resultElems` and `resultRanks` describing them.
  std::vector<Vec> call(const std::string &name, std::vector<Arg> &args,
                        ArrayRef<Elem> resultElems,
                        ArrayRef<size_t> resultRanks) {
    size_t resultWords = 0;
    for (size_t rank : resultRanks)
      resultWords += 3 + 2 * rank;
    std::vector<int64_t> results(resultWords);
    std::vector<std::vector<int64_t>> descriptors;
    descriptors.reserve(args.size());
    std::vector<void *> pointers;
    pointers.reserve(args.size() + 1);
    std::vector<void *> packed;
    void *resultPtr = results.data();
    if (resultWords)
      packed.push_back(&resultPtr);
    for (Arg &a : args) {
      if (a.buffer) {
        descriptors.push_back(describe(*a.buffer));
        pointers.push_back(descriptors.back().data());
        packed.push_back(&pointers.back());
      } else {
        packed.push_back(&a.index);
      }
    }
    llvm::Error err = jit->invokePacked("_mlir_ciface_" + name, packed);
    EXPECT_FALSE(bool(err)) << llvm::toString(std::move(err));

    std::vector<Vec> out;
    size_t at = 0;
    for (auto [elem, rank] : llvm::zip_equal(resultElems, resultRanks)) {
      int64_t *d = results.data() + at;
      auto *aligned = reinterpret_cast<uint8_t *>(d[1]);
      int64_t count = 1;
      for (size_t i = 0; i < rank; ++i)
        count *= d[3 + i];
      Vec values(count);
      for (int64_t i = 0; i < count; ++i)
        values[i] = load(elem, aligned + (d[2] + i) * elemSize(elem));
      out.push_back(std::move(values));
      // A result may be an argument updated in place (a KV cache); only
      // buffers the callee allocated are the caller's to free.
      bool isArgument = llvm::any_of(args, [&](Arg &a) {
        return a.buffer && reinterpret_cast<int64_t>(a.buffer->bytes.data()) == d[0];
      });
      if (!isArgument)
        std::free(reinterpret_cast<void *>(d[0]));
      at += 3 + 2 * rank;
    }
    return out;
  }

  Vec randomVec(size_t n, double scale) {
    std::normal_distribution<double> dist(0.0, scale);
    Vec v(n);
    for (double &x : v)
      x = dist(rng);
    return v;
  }

  /// Values exactly representable in bf16, so both sides see the same input.
  Vec randomBF16Vec(size_t n, double scale) {
    Vec v = randomVec(n, scale);
    for (double &x : v)
      x = fromBF16(toBF16(x));
    return v;
  }

  std::vector<int64_t> randomPositions(size_t n, int64_t below) {
    std::uniform_int_distribution<int64_t> dist(0, below - 1);
    std::vector<int64_t> p(n);
    for (int64_t &x : p)
      x = dist(rng);
    return p;
  }

  void expectClose(const Vec &actual, const Vec &expected, double tolerance,
                   const std::string &what) {
    ASSERT_EQ(actual.size(), expected.size()) << what;
    ref::Agreement a = ref::compare(actual, expected);
    EXPECT_LE(a.maxRelError, tolerance)
        << what << ": PCC " << a.pcc << ", seed " << seed;
    EXPECT_GT(a.pcc, 1 - tolerance) << what << ", seed " << seed;
  }

  MLIRContext context;
  std::unique_ptr<ExecutionEngine> jit;
  unsigned seed;
  std::mt19937_64 rng;
};

Vec toDouble(const std::vector<int64_t> &v) { return Vec(v.begin(), v.end()); }

TEST_F(HostExecutionTest, LinearWithBiasF32) {
  for (int64_t t : {1, 7}) {
    const int64_t e = 96, n = 40;
    compile(llvm::formatv(R"mlir(
      func.func @f(%x: tensor<?x{0}xf32>, %w: tensor<{1}x{0}xf32>, %b: tensor<{1}xf32>) -> tensor<?x{1}xf32> {
        %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
            : tensor<?x{0}xf32>, tensor<{1}x{0}xf32>, tensor<{1}xf32> -> tensor<?x{1}xf32>
        return %y : tensor<?x{1}xf32>
      })mlir", e, n).str());
    Vec x = randomVec(t * e, 1.0), w = randomVec(n * e, 0.1),
        b = randomVec(n, 20.0);
    std::vector<Arg> args = {tensorArg(Elem::F32, {t, e}, x),
                             tensorArg(Elem::F32, {n, e}, w),
                             tensorArg(Elem::F32, {n}, b)};
    Vec y = call("f", args, {Elem::F32}, {2})[0];
    expectClose(y, ref::linear(x, w, b, t, e, n), 1e-5, "linear T=" + std::to_string(t));
  }
}

TEST_F(HostExecutionTest, LinearBF16OperandsAccumulateInF32) {
  const int64_t t = 5, e = 128, n = 24;
  compile(llvm::formatv(R"mlir(
    func.func @f(%x: tensor<?x{0}xbf16>, %w: tensor<{1}x{0}xbf16>) -> tensor<?x{1}xf32> {
      %y = attn.linear %x, %w precision <compute = bf16, accumulate = f32>
          : tensor<?x{0}xbf16>, tensor<{1}x{0}xbf16> -> tensor<?x{1}xf32>
      return %y : tensor<?x{1}xf32>
    })mlir", e, n).str());
  Vec x = randomBF16Vec(t * e, 1.0), w = randomBF16Vec(n * e, 0.1);
  std::vector<Arg> args = {tensorArg(Elem::BF16, {t, e}, x),
                           tensorArg(Elem::BF16, {n, e}, w)};
  Vec y = call("f", args, {Elem::F32}, {2})[0];
  // Products of bf16 values are exact in f32; only the f32 sum rounds.
  expectClose(y, ref::linear(x, w, {}, t, e, n), 1e-5, "bf16 linear");
}

// Projections as the GPU's workgroup-tiled GEMM, run on the host: token
// counts around the 64-row tile, output and reduction dims that are not
// multiples of the 64-column tile or 32-wide slice, a reduction dim that is
// not whole 16-byte vectors (scalar loads), an input whose rows are not
// aligned (a column slice: scalar loads too), bias or none, bf16. The sum
// is formed in LowerLinear's order, so the loop-level form agrees exactly.
TEST_F(HostExecutionTest, LinearWorkgroupTiled) {
  struct Case {
    int64_t t, e, n;
    bool bias, bf16, offsetX;
  };
  std::vector<Case> cases = {
      {1, 96, 40, true, false, false},   // one token (dynamic T)
      {64, 64, 64, true, false, false},  // one exact tile
      {100, 70, 96, true, false, false}, // partial tiles and slice
      {130, 10, 33, false, false, false}, // e = 10: scalar loads
      {40, 896, 128, true, false, false}, // Qwen2.5-0.5B's hidden size
      {70, 128, 72, true, true, false},   // bf16
      {50, 64, 40, true, false, true},    // unaligned input rows
  };
  for (const Case &c : cases) {
    std::string elem = c.bf16 ? "bf16" : "f32";
    std::string compute = c.bf16 ? "bf16" : "f32";
    int64_t xWidth = c.offsetX ? c.e + 1 : c.e;
    std::string xView =
        c.offsetX
            ? llvm::formatv(R"mlir(
        %c0 = arith.constant 0 : index
        %rows = tensor.dim %xbig, %c0 : tensor<?x{0}x{1}>
        %x = tensor.extract_slice %xbig[0, 1] [%rows, {2}] [1, 1]
            : tensor<?x{0}x{1}> to tensor<?x{2}x{1}>)mlir",
                          xWidth, elem, c.e)
                  .str()
            : "";
    std::string xArg = llvm::formatv("{0}: tensor<?x{1}x{2}>",
                                     c.offsetX ? "%xbig" : "%x", xWidth, elem)
                           .str();
    std::string biasArg =
        c.bias ? llvm::formatv(", %b: tensor<{0}x{1}>", c.n, elem).str() : "";
    std::string biasUse = c.bias ? ", %b" : "";
    std::string biasType =
        c.bias ? llvm::formatv(", tensor<{0}x{1}>", c.n, elem).str() : "";
    std::string source = llvm::formatv(R"mlir(
      func.func @f({0}, %w: tensor<{2}x{3}x{4}>{5}) -> tensor<?x{2}xf32> {{{1}
        %y = attn.linear %x, %w{6} precision <compute = {7}, accumulate = f32>
            : tensor<?x{3}x{4}>, tensor<{2}x{3}x{4}>{8} -> tensor<?x{2}xf32>
        return %y : tensor<?x{2}xf32>
      })mlir", xArg, xView, c.n, c.e, elem, biasArg, biasUse, compute,
                                       biasType).str();
    rotor::HostPipelineOptions options;
    options.workgroupTiledLinear = true;
    compile(source, options);
    Elem el = c.bf16 ? Elem::BF16 : Elem::F32;
    auto round = [&](Vec v) {
      if (c.bf16)
        for (double &y : v)
          y = fromBF16(toBF16(y));
      return v;
    };
    Vec x = round(randomVec(c.t * c.e, 1.0)), w = round(randomVec(c.n * c.e, 0.1)),
        b = round(randomVec(c.n, 20.0));
    Vec xPassed = x;
    if (c.offsetX) {
      xPassed.assign(c.t * xWidth, 1e30); // never read
      for (int64_t r = 0; r < c.t; ++r)
        for (int64_t k = 0; k < c.e; ++k)
          xPassed[r * xWidth + 1 + k] = x[r * c.e + k];
    }
    std::vector<Arg> args = {tensorArg(el, {c.t, xWidth}, xPassed),
                             tensorArg(el, {c.n, c.e}, w)};
    if (c.bias)
      args.push_back(tensorArg(el, {c.n}, b));
    Vec tiled = call("f", args, {Elem::F32}, {2})[0];
    std::string what = llvm::formatv("workgroup-tiled linear T={0} E={1} N={2}"
                                     "{3}{4}{5}",
                                     c.t, c.e, c.n, c.bias ? " bias" : "",
                                     c.bf16 ? " bf16" : "",
                                     c.offsetX ? " unaligned x" : "")
                           .str();
    expectClose(tiled, ref::linear(x, w, c.bias ? b : Vec{}, c.t, c.e, c.n),
                1e-5, what);
    options.workgroupTiledLinear = false;
    compile(source, options);
    Vec loops = call("f", args, {Elem::F32}, {2})[0];
    EXPECT_EQ(tiled, loops) << what << ": differs from the loop-level form";
  }
}

// Decode-shaped projections as the GPU's GEMV kernel, run on the host: one
// to 15 static tokens, a reduction dim that is not whole vectors (scalar
// loads), an output dim that is not a multiple of 4, a W whose rows are not
// aligned (a column slice: scalar loads of the same elements in the same
// order), bias or none, bf16.
TEST_F(HostExecutionTest, LinearWorkgroupGemv) {
  struct Case {
    int64_t t, e, n;
    bool bias, bf16, offsetW;
  };
  std::vector<Case> cases = {
      {1, 896, 128, true, false, false},  // Qwen2.5-0.5B's q_proj slice
      {3, 70, 33, true, false, false},    // e = 70: scalar loads
      {15, 256, 40, false, false, false}, // the most tokens it takes
      {1, 128, 72, true, true, false},    // bf16: 8 per load
      {2, 200, 24, true, false, true},    // unaligned W rows
  };
  for (const Case &c : cases) {
    std::string elem = c.bf16 ? "bf16" : "f32";
    int64_t wWidth = c.offsetW ? c.e + 1 : c.e;
    std::string wView =
        c.offsetW ? llvm::formatv(R"mlir(
        %w = tensor.extract_slice %wbig[0, 1] [{0}, {1}] [1, 1]
            : tensor<{0}x{2}x{3}> to tensor<{0}x{1}x{3}>)mlir",
                                  c.n, c.e, wWidth, elem)
                        .str()
                  : "";
    std::string wArg = llvm::formatv("{0}: tensor<{1}x{2}x{3}>",
                                     c.offsetW ? "%wbig" : "%w", c.n, wWidth,
                                     elem)
                           .str();
    std::string biasArg =
        c.bias ? llvm::formatv(", %b: tensor<{0}x{1}>", c.n, elem).str() : "";
    std::string source = llvm::formatv(R"mlir(
      func.func @f(%x: tensor<{0}x{1}x{2}>, {3}{4}) -> tensor<{0}x{5}xf32> {{{6}
        %y = attn.linear %x, %w{7} precision <compute = {2}, accumulate = f32>
            : tensor<{0}x{1}x{2}>, tensor<{5}x{1}x{2}>{8} -> tensor<{0}x{5}xf32>
        return %y : tensor<{0}x{5}xf32>
      })mlir", c.t, c.e, elem, wArg, biasArg, c.n, wView, c.bias ? ", %b" : "",
                                       c.bias ? llvm::formatv(", tensor<{0}x{1}>", c.n, elem).str() : "").str();
    rotor::HostPipelineOptions options;
    options.workgroupTiledLinear = true;
    compile(source, options);
    Elem el = c.bf16 ? Elem::BF16 : Elem::F32;
    auto round = [&](Vec v) {
      if (c.bf16)
        for (double &y : v)
          y = fromBF16(toBF16(y));
      return v;
    };
    Vec x = round(randomVec(c.t * c.e, 1.0)), w = round(randomVec(c.n * c.e, 0.1)),
        b = round(randomVec(c.n, 20.0));
    Vec wPassed = w;
    if (c.offsetW) {
      wPassed.assign(c.n * wWidth, 1e30); // never read
      for (int64_t r = 0; r < c.n; ++r)
        for (int64_t k = 0; k < c.e; ++k)
          wPassed[r * wWidth + 1 + k] = w[r * c.e + k];
    }
    std::vector<Arg> args = {tensorArg(el, {c.t, c.e}, x),
                             tensorArg(el, {c.n, wWidth}, wPassed)};
    if (c.bias)
      args.push_back(tensorArg(el, {c.n}, b));
    Vec gemv = call("f", args, {Elem::F32}, {2})[0];
    std::string what = llvm::formatv("workgroup GEMV T={0} E={1} N={2}{3}{4}{5}",
                                     c.t, c.e, c.n, c.bias ? " bias" : "",
                                     c.bf16 ? " bf16" : "",
                                     c.offsetW ? " unaligned W" : "")
                           .str();
    expectClose(gemv, ref::linear(x, w, c.bias ? b : Vec{}, c.t, c.e, c.n),
                1e-5, what);
  }
}

struct RopeCase {
  const char *layout;
  int64_t d, r;
  const char *scalingIR;
  ref::RopeScaling scaling;
};

TEST_F(HostExecutionTest, RopeEveryLayoutPartialRotaryAndScaling) {
  using K = ref::RopeScaling::Kind;
  ref::RopeScaling none, linear, dynamic, yarn, llama3;
  linear.kind = K::Linear;
  linear.factor = 4;
  dynamic.kind = K::Dynamic;
  dynamic.factor = 2;
  dynamic.originalMaxPositions = 1024;
  yarn.kind = K::Yarn;
  yarn.factor = 4;
  yarn.originalMaxPositions = 1024;
  yarn.attentionFactor = 1.1386;
  llama3.kind = K::Llama3;
  llama3.factor = 8;
  llama3.lowFreqFactor = 1;
  llama3.highFreqFactor = 4;
  llama3.originalMaxPositions = 512;
  std::vector<RopeCase> cases = {
      {"half_split", 64, 64, "", none},
      {"interleaved", 64, 64, "", none},
      {"half_split", 128, 64, "", none},
      {"interleaved", 256, 128, "", none},
      {"half_split", 64, 32,
       "scaling(#attn.linear_scaling<factor = 4.0>)", linear},
      {"interleaved", 128, 128,
       "scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 1024>)",
       dynamic},
      {"half_split", 128, 128,
       "scaling(#attn.yarn_scaling<factor = 4.0, original_max_position_embeddings = 1024, "
       "beta_fast = 32.0, beta_slow = 1.0, attention_factor = 1.1386, truncate = true>)",
       yarn},
      {"half_split", 64, 64,
       "scaling(#attn.llama3_scaling<factor = 8.0, low_freq_factor = 1.0, "
       "high_freq_factor = 4.0, original_max_position_embeddings = 512>)",
       llama3},
  };
  for (const RopeCase &c : cases) {
    const int64_t t = 9, h = 3;
    double theta = 1e6;
    compile(llvm::formatv(R"mlir(
      func.func @f(%x: tensor<?x{0}x{1}xf32>, %p: tensor<?xi32>) -> tensor<?x{0}x{1}xf32> {
        %y = attn.rope {2} %x, %p rotary_dim({3}) theta(1.0e+06) {4}
            precision <compute = f32, accumulate = f32> : tensor<?x{0}x{1}xf32>, tensor<?xi32>
        return %y : tensor<?x{0}x{1}xf32>
      })mlir", h, c.d, c.layout, c.r, c.scalingIR).str());
    Vec x = randomVec(t * h * c.d, 30.0); // biased Q/K reach tens
    std::vector<int64_t> pos = randomPositions(t, 4096);
    std::vector<Arg> args = {tensorArg(Elem::F32, {t, h, c.d}, x),
                             tensorArg(Elem::I32, {t}, toDouble(pos))};
    Vec y = call("f", args, {Elem::F32}, {3})[0];
    ref::RopeLayout layout = std::string(c.layout) == "half_split"
                                 ? ref::RopeLayout::HalfSplit
                                 : ref::RopeLayout::Interleaved;
    expectClose(y, ref::rope(x, pos, t, h, c.d, layout, c.r, theta, c.scaling),
                1e-5,
                llvm::formatv("rope {0} D={1} R={2} {3}", c.layout, c.d, c.r,
                              c.scalingIR)
                    .str());
  }
}

TEST_F(HostExecutionTest, HadamardForwardAndInverse) {
  for (int64_t g : {32, 64, 128, 256}) {
    for (bool inverse : {false, true}) {
      std::vector<int> s1(g), s2(g);
      for (int &s : s1)
        s = rng() % 2 ? 1 : -1;
      for (int &s : s2)
        s = rng() % 2 ? 1 : -1;
      auto list = [](const std::vector<int> &s) {
        return llvm::join(llvm::map_range(s, [](int v) { return std::to_string(v); }),
                          ", ");
      };
      const int64_t rows = 3, dim = 2 * g;
      compile(llvm::formatv(R"mlir(
        func.func @f(%x: tensor<{0}x{1}xf32>) -> tensor<{0}x{1}xf32> {
          %y = attn.hadamard %x rotation(<group = {2}, s1 = [{3}], s2 = [{4}]>) {5}
              precision <compute = f32, accumulate = f32> : tensor<{0}x{1}xf32>
          return %y : tensor<{0}x{1}xf32>
        })mlir", rows, dim, g, list(s1), list(s2), inverse ? "inverse" : "").str());
      Vec x = randomVec(rows * dim, 3.0);
      x[5] = 400; // an outlier, what rotations are for
      std::vector<Arg> args = {tensorArg(Elem::F32, {rows, dim}, x)};
      Vec y = call("f", args, {Elem::F32}, {2})[0];
      expectClose(y, ref::hadamard(x, g, s1, s2, inverse), 1e-5,
                  "hadamard G=" + std::to_string(g) +
                      (inverse ? " inverse" : ""));
    }
  }
}

TEST_F(HostExecutionTest, RmsNormAndOutputGate) {
  const int64_t t = 5, h = 4, d = 128;
  compile(llvm::formatv(R"mlir(
    func.func @norm(%x: tensor<?x{0}x{1}xf32>, %w: tensor<{1}xf32>) -> tensor<?x{0}x{1}xf32> {
      %y = attn.rms_norm %x, %w epsilon(1.0e-06) precision <compute = f32, accumulate = f32>
          : tensor<?x{0}x{1}xf32>, tensor<{1}xf32>
      return %y : tensor<?x{0}x{1}xf32>
    }
    func.func @gate(%x: tensor<?x{0}x{1}xf32>, %g: tensor<?x{0}x{1}xf32>) -> tensor<?x{0}x{1}xf32> {
      %y = attn.output_gate %x, %g precision <compute = f32, accumulate = f32>
          : tensor<?x{0}x{1}xf32>, tensor<?x{0}x{1}xf32>
      return %y : tensor<?x{0}x{1}xf32>
    })mlir", h, d).str());
  Vec x = randomVec(t * h * d, 5.0), w = randomVec(d, 1.0),
      g = randomVec(t * h * d, 3.0);
  std::vector<Arg> normArgs = {tensorArg(Elem::F32, {t, h, d}, x),
                               tensorArg(Elem::F32, {d}, w)};
  expectClose(call("norm", normArgs, {Elem::F32}, {3})[0],
              ref::rmsNorm(x, w, t * h, d, 1e-6), 1e-5, "rms_norm");
  std::vector<Arg> gateArgs = {tensorArg(Elem::F32, {t, h, d}, x),
                               tensorArg(Elem::F32, {t, h, d}, g)};
  expectClose(call("gate", gateArgs, {Elem::F32}, {3})[0],
              ref::outputGate(x, g), 1e-5, "output_gate");
}

TEST_F(HostExecutionTest, BF16StorageAndCompute) {
  // bf16 in, bf16 arithmetic, bf16 out: the result is within a few bf16
  // steps (2^-8 relative) of the exact value.
  const int64_t t = 7, h = 2, d = 64;
  compile(llvm::formatv(R"mlir(
    func.func @gate(%x: tensor<?x{0}x{1}xbf16>, %g: tensor<?x{0}x{1}xbf16>) -> tensor<?x{0}x{1}xbf16> {
      %y = attn.output_gate %x, %g precision <compute = bf16, accumulate = bf16>
          : tensor<?x{0}x{1}xbf16>, tensor<?x{0}x{1}xbf16>
      return %y : tensor<?x{0}x{1}xbf16>
    }
    func.func @norm(%x: tensor<?x{0}x{1}xbf16>, %w: tensor<{1}xbf16>) -> tensor<?x{0}x{1}xbf16> {
      %y = attn.rms_norm %x, %w epsilon(1.0e-06) precision <compute = bf16, accumulate = f32>
          : tensor<?x{0}x{1}xbf16>, tensor<{1}xbf16>
      return %y : tensor<?x{0}x{1}xbf16>
    }
    func.func @rope(%x: tensor<?x{0}x{1}xbf16>, %p: tensor<?xi32>) -> tensor<?x{0}x{1}xbf16> {
      %y = attn.rope half_split %x, %p rotary_dim({1}) theta(1.0e+06)
          precision <compute = bf16, accumulate = bf16> : tensor<?x{0}x{1}xbf16>, tensor<?xi32>
      return %y : tensor<?x{0}x{1}xbf16>
    })mlir", h, d).str());
  Vec x = randomBF16Vec(t * h * d, 2.0), g = randomBF16Vec(t * h * d, 2.0),
      w = randomBF16Vec(d, 1.0);
  std::vector<Arg> gateArgs = {tensorArg(Elem::BF16, {t, h, d}, x),
                               tensorArg(Elem::BF16, {t, h, d}, g)};
  expectClose(call("gate", gateArgs, {Elem::BF16}, {3})[0],
              ref::outputGate(x, g), 1.6e-2, "bf16 output_gate");
  std::vector<Arg> normArgs = {tensorArg(Elem::BF16, {t, h, d}, x),
                               tensorArg(Elem::BF16, {d}, w)};
  expectClose(call("norm", normArgs, {Elem::BF16}, {3})[0],
              ref::rmsNorm(x, w, t * h, d, 1e-6), 1.6e-2, "bf16 rms_norm");
  std::vector<int64_t> pos = randomPositions(t, 4096);
  std::vector<Arg> ropeArgs = {tensorArg(Elem::BF16, {t, h, d}, x),
                               tensorArg(Elem::I32, {t}, toDouble(pos))};
  expectClose(call("rope", ropeArgs, {Elem::BF16}, {3})[0],
              ref::rope(x, pos, t, h, d, ref::RopeLayout::HalfSplit, d, 1e6),
              1.6e-2, "bf16 rope");
}

struct SdpaCase {
  int64_t tq, tk, hq, hkv, d;
  bool causal, withPositions;
};

TEST_F(HostExecutionTest, SdpaGqaCausalAndLong) {
  std::vector<SdpaCase> cases = {
      {7, 7, 2, 2, 64, true, false},     // GQA ratio 1, odd T
      {9, 9, 14, 2, 64, true, false},    // ratio 7 (Qwen2.5-0.5B)
      {6, 6, 8, 4, 256, false, false},   // ratio 2, no mask, D = 256
      {5, 300, 4, 2, 128, true, true},   // queries at given positions
      {1, 4096, 14, 2, 64, true, false}, // decode over a 4096-long cache
      {33, 33, 4, 2, 64, true, false},   // several tiles of prefill
  };
  for (const SdpaCase &c : cases) {
    std::string posArg = c.withPositions ? ", %p: tensor<?xi32>" : "";
    std::string posUse = c.withPositions ? "positions(%p)" : "";
    std::string posType = c.withPositions ? ", tensor<?xi32>" : "";
    compile(llvm::formatv(R"mlir(
      func.func @f(%q: tensor<?x{0}x{2}xf32>, %k: tensor<?x{1}x{2}xf32>, %v: tensor<?x{1}x{2}xf32>{3})
          -> tensor<?x{0}x{2}xf32> {
        %o = attn.sdpa %q, %k, %v {4} {5} precision <compute = f32, accumulate = f32>
            : tensor<?x{0}x{2}xf32>, tensor<?x{1}x{2}xf32>, tensor<?x{1}x{2}xf32>{6} -> tensor<?x{0}x{2}xf32>
        return %o : tensor<?x{0}x{2}xf32>
      })mlir", c.hq, c.hkv, c.d, posArg, posUse, c.causal ? "causal" : "",
                          posType).str());
    Vec q = randomVec(c.tq * c.hq * c.d, 1.0), k = randomVec(c.tk * c.hkv * c.d, 1.0),
        v = randomVec(c.tk * c.hkv * c.d, 1.0);
    std::optional<std::vector<int64_t>> positions;
    std::vector<Arg> args = {tensorArg(Elem::F32, {c.tq, c.hq, c.d}, q),
                             tensorArg(Elem::F32, {c.tk, c.hkv, c.d}, k),
                             tensorArg(Elem::F32, {c.tk, c.hkv, c.d}, v)};
    if (c.withPositions) {
      positions = randomPositions(c.tq, c.tk);
      args.push_back(tensorArg(Elem::I32, {c.tq}, toDouble(*positions)));
    }
    Vec o = call("f", args, {Elem::F32}, {3})[0];
    expectClose(o,
                ref::sdpa(q, k, v, c.tq, c.tk, c.hq, c.hkv, c.d, c.d, c.causal,
                          positions),
                1e-5,
                llvm::formatv("sdpa Tq={0} Tk={1} Hq={2} Hkv={3} D={4}", c.tq,
                              c.tk, c.hq, c.hkv, c.d)
                    .str());
  }
}

// Decode SDPA (one query row) as split-KV attention: every KV tile at once,
// then a combine; and as the GPU's workgroup-tiled decode kernel. KV lengths around the tile size (the last tile is partial
// and its keys are read through a clamped index), GQA, a query position
// that masks trailing keys, no mask, tiles of 7 and 64 keys, bf16.
TEST_F(HostExecutionTest, SdpaDecodeSplitKV) {
  struct Case {
    int64_t tk, hq, hkv, d, tile;
    bool causal, withPositions, bf16;
  };
  std::vector<Case> cases = {
      {1, 2, 2, 64, 64, true, false, false},     // one key
      {63, 14, 2, 64, 64, true, false, false},   // one partial tile
      {64, 14, 2, 64, 64, true, false, false},   // one full tile
      {65, 14, 2, 64, 64, true, false, false},   // a full and a 1-key tile
      {300, 8, 4, 128, 7, true, true, false},    // position masks the tail
      {300, 4, 1, 32, 64, false, false, false},  // no mask
      {4096, 28, 4, 128, 64, true, false, false}, // Qwen2.5-7B heads
      {200, 14, 2, 64, 64, true, false, true},   // bf16 storage and compute
  };
  for (const Case &c : cases) {
    std::string elem = c.bf16 ? "bf16" : "f32";
    std::string posArg = c.withPositions ? ", %p: tensor<1xi32>" : "";
    std::string posUse = c.withPositions ? "positions(%p)" : "";
    std::string posType = c.withPositions ? ", tensor<1xi32>" : "";
    std::string source = llvm::formatv(R"mlir(
      func.func @f(%q: tensor<1x{0}x{2}x{7}>, %k: tensor<?x{1}x{2}x{7}>, %v: tensor<?x{1}x{2}x{7}>{3})
          -> tensor<1x{0}x{2}x{7}> {
        %o = attn.sdpa %q, %k, %v {4} {5} precision <compute = {7}, accumulate = f32>
            : tensor<1x{0}x{2}x{7}>, tensor<?x{1}x{2}x{7}>, tensor<?x{1}x{2}x{7}>{6} -> tensor<1x{0}x{2}x{7}>
        return %o : tensor<1x{0}x{2}x{7}>
      })mlir", c.hq, c.hkv, c.d, posArg, posUse, c.causal ? "causal" : "",
                          posType, elem).str();
    rotor::HostPipelineOptions options;
    options.splitKVDecode = true;
    options.kvTileSize = c.tile;
    compile(source, options);
    Elem e = c.bf16 ? Elem::BF16 : Elem::F32;
    auto round = [&](Vec x) {
      if (c.bf16)
        for (double &y : x)
          y = fromBF16(toBF16(y));
      return x;
    };
    Vec q = round(randomVec(c.hq * c.d, 1.0)),
        k = round(randomVec(c.tk * c.hkv * c.d, 1.0)),
        v = round(randomVec(c.tk * c.hkv * c.d, 1.0));
    std::optional<std::vector<int64_t>> positions;
    std::vector<Arg> args = {tensorArg(e, {1, c.hq, c.d}, q),
                             tensorArg(e, {c.tk, c.hkv, c.d}, k),
                             tensorArg(e, {c.tk, c.hkv, c.d}, v)};
    if (c.withPositions) {
      positions = std::vector<int64_t>{c.tk / 2};
      args.push_back(tensorArg(Elem::I32, {1}, toDouble(*positions)));
    }
    Vec split = call("f", args, {e}, {3})[0];
    std::string what = llvm::formatv("split-KV sdpa Tk={0} Hq={1} Hkv={2} D={3} "
                                     "tile={4}{5}",
                                     c.tk, c.hq, c.hkv, c.d, c.tile,
                                     c.bf16 ? " bf16" : "")
                           .str();
    expectClose(split,
                ref::sdpa(q, k, v, 1, c.tk, c.hq, c.hkv, c.d, c.d, c.causal,
                          positions),
                c.bf16 ? 1.6e-2 : 1e-5, what);
    // The tiled loop computes the same thing.
    options.splitKVDecode = false;
    compile(source, options);
    Vec tiled = call("f", args, {e}, {3})[0];
    expectClose(split, tiled, c.bf16 ? 1.6e-2 : 1e-5, what + " vs tiled");
    // And so does the GPU's decode kernel: workgroups of one KV head's GQA
    // rows, the KV length split across workgroups, then a combine.
    options.workgroupTiledSdpa = true;
    compile(source, options);
    Vec grouped = call("f", args, {e}, {3})[0];
    expectClose(grouped,
                ref::sdpa(q, k, v, 1, c.tk, c.hq, c.hkv, c.d, c.d, c.causal,
                          positions),
                c.bf16 ? 1.6e-2 : 1e-5, what + " workgroup-tiled");
  }
}

// Prefill SDPA as workgroup-tiled attention, the GPU pipeline's kernel,
// run on the host (its thread phases one after another): several query
// tiles and KV tiles with partial last ones, GQA, given positions, no mask,
// an empty KV, head dims that pick smaller tiles (256) or rule out vector
// loads (10), bf16, and a K whose rows are not 16-byte aligned (a view at
// an odd offset, which takes the scalar loads). Checked against the fp64
// reference and against the loop-level form.
TEST_F(HostExecutionTest, SdpaWorkgroupTiledPrefill) {
  struct Case {
    int64_t tq, tk, hq, hkv, d;
    bool causal, withPositions, bf16, offsetK;
  };
  std::vector<Case> cases = {
      {7, 7, 2, 2, 64, true, false, false, false},     // one partial tile
      {100, 100, 14, 2, 64, true, false, false, false}, // 4 tiles, GQA 7
      {64, 64, 4, 4, 128, true, false, false, false},   // exact tiles
      {5, 300, 8, 4, 128, true, true, false, false},    // given positions
      {40, 70, 4, 2, 128, false, false, false, false},  // no mask
      {3, 0, 2, 1, 64, false, false, false, false},     // empty KV
      {33, 33, 4, 2, 256, true, false, false, false},   // D = 256
      {20, 20, 2, 1, 10, true, false, false, false},    // D = 10: scalar
      {50, 50, 14, 2, 64, true, false, true, false},    // bf16
      {45, 45, 4, 2, 64, true, false, false, true},     // unaligned K rows
  };
  for (const Case &c : cases) {
    std::string elem = c.bf16 ? "bf16" : "f32";
    std::string posArg = c.withPositions ? ", %p: tensor<?xi32>" : "";
    std::string posUse = c.withPositions ? "positions(%p)" : "";
    std::string posType = c.withPositions ? ", tensor<?xi32>" : "";
    // With offsetK, K arrives with one extra leading element per row and is
    // viewed from element 1: every row starts 4 bytes past alignment.
    std::string kArg = c.offsetK
                           ? llvm::formatv("%kbig: tensor<?x{0}x{1}x{2}>",
                                           c.hkv, c.d + 1, elem)
                                 .str()
                           : llvm::formatv("%k: tensor<?x{0}x{1}x{2}>", c.hkv,
                                           c.d, elem)
                                 .str();
    std::string kView =
        c.offsetK
            ? llvm::formatv(R"mlir(
        %c0 = arith.constant 0 : index
        %tk = tensor.dim %kbig, %c0 : tensor<?x{0}x{1}x{2}>
        %k = tensor.extract_slice %kbig[0, 0, 1] [%tk, {0}, {3}] [1, 1, 1]
            : tensor<?x{0}x{1}x{2}> to tensor<?x{0}x{3}x{2}>)mlir",
                          c.hkv, c.d + 1, elem, c.d)
                  .str()
            : "";
    std::string source = llvm::formatv(R"mlir(
      func.func @f(%q: tensor<?x{0}x{2}x{7}>, {8}, %v: tensor<?x{1}x{2}x{7}>{3})
          -> tensor<?x{0}x{2}x{7}> {{{9}
        %o = attn.sdpa %q, %k, %v {4} {5} precision <compute = {7}, accumulate = f32>
            : tensor<?x{0}x{2}x{7}>, tensor<?x{1}x{2}x{7}>, tensor<?x{1}x{2}x{7}>{6} -> tensor<?x{0}x{2}x{7}>
        return %o : tensor<?x{0}x{2}x{7}>
      })mlir", c.hq, c.hkv, c.d, posArg, posUse, c.causal ? "causal" : "",
                          posType, elem, kArg, kView).str();
    rotor::HostPipelineOptions options;
    options.workgroupTiledSdpa = true;
    compile(source, options);
    Elem e = c.bf16 ? Elem::BF16 : Elem::F32;
    auto round = [&](Vec x) {
      if (c.bf16)
        for (double &y : x)
          y = fromBF16(toBF16(y));
      return x;
    };
    Vec q = round(randomVec(c.tq * c.hq * c.d, 1.0)),
        k = round(randomVec(c.tk * c.hkv * c.d, 1.0)),
        v = round(randomVec(c.tk * c.hkv * c.d, 1.0));
    Vec kPassed = k;
    int64_t kWidth = c.d;
    if (c.offsetK) {
      kWidth = c.d + 1;
      kPassed.assign(c.tk * c.hkv * kWidth, 1e30); // never read
      for (int64_t r = 0; r < c.tk * c.hkv; ++r)
        for (int64_t x = 0; x < c.d; ++x)
          kPassed[r * kWidth + 1 + x] = k[r * c.d + x];
    }
    std::optional<std::vector<int64_t>> positions;
    std::vector<Arg> args = {tensorArg(e, {c.tq, c.hq, c.d}, q),
                             tensorArg(e, {c.tk, c.hkv, kWidth}, kPassed),
                             tensorArg(e, {c.tk, c.hkv, c.d}, v)};
    if (c.withPositions) {
      positions = randomPositions(c.tq, c.tk);
      args.push_back(tensorArg(Elem::I32, {c.tq}, toDouble(*positions)));
    }
    Vec tiled = call("f", args, {e}, {3})[0];
    std::string what =
        llvm::formatv("workgroup-tiled sdpa Tq={0} Tk={1} Hq={2} Hkv={3} D={4}"
                      "{5}{6}",
                      c.tq, c.tk, c.hq, c.hkv, c.d, c.bf16 ? " bf16" : "",
                      c.offsetK ? " unaligned K" : "")
            .str();
    expectClose(tiled,
                ref::sdpa(q, k, v, c.tq, c.tk, c.hq, c.hkv, c.d, c.d, c.causal,
                          positions),
                c.bf16 ? 1.6e-2 : 1e-5, what);
    options.workgroupTiledSdpa = false;
    compile(source, options);
    Vec loops = call("f", args, {e}, {3})[0];
    expectClose(tiled, loops, c.bf16 ? 1.6e-2 : 1e-5, what + " vs loop-level");
  }
}

// The workgroup SDPA over a quantized KV cache reads the codes and scales
// and dequantizes each K/V tile while staging it, so the dequantized cache
// never reaches memory. Bit-exact against the same kernel reading K and V
// dequantized apart (@apart also returns them, so there they are not
// fused), and within 1e-5 of the fp64 reference on those values, for
// prefill and a split decode step, absmax and codebook formats, f16 and f32
// scales, f32 and bf16 values.
TEST_F(HostExecutionTest, SdpaDequantizesQuantizedKVWhileStaging) {
  struct Case {
    const char *tq; // "?" or static
    int64_t t, tk, hq, hkv, d;
    unsigned bits;
    int64_t block;
    const char *scheme, *scaleType, *elem;
  };
  std::vector<Case> cases = {
      {"?", 40, 40, 4, 2, 64, 4, 32, "absmax", "f16", "f32"},
      {"1", 1, 300, 8, 2, 128, 3, 64, "codebook", "f32", "f32"},
      {"?", 17, 50, 14, 2, 64, 8, 16, "absmax", "f32", "bf16"},
  };
  for (const Case &c : cases) {
    std::string format =
        llvm::formatv("<bits = {0}, block_size = {1}, scheme = {2}, "
                      "scale_type = {3}>",
                      c.bits, c.block, c.scheme, c.scaleType)
            .str();
    std::string qType =
        llvm::formatv("tensor<{0}x{1}x{2}x{3}>", c.tq, c.hq, c.d, c.elem).str();
    std::string kvType =
        llvm::formatv("tensor<?x{0}x{1}x{2}>", c.hkv, c.d, c.elem).str();
    std::string codesType =
        llvm::formatv("tensor<?x{0}x{1}xi8>", c.hkv, c.d).str();
    std::string scalesType = llvm::formatv("tensor<?x{0}x{1}x{2}>", c.hkv,
                                           c.d / c.block, c.scaleType)
                                 .str();
    std::string body = llvm::formatv(R"mlir(
        %k = attn.dequantize %kc, %ks format({0}) precision <compute = f32, accumulate = f32>
            : {1}, {2} -> {3}
        %v = attn.dequantize %vc, %vs format({0}) precision <compute = f32, accumulate = f32>
            : {1}, {2} -> {3}
        %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
            : {4}, {3}, {3} -> {4})mlir",
                                     format, codesType, scalesType, kvType,
                                     qType)
                           .str();
    std::string args =
        llvm::formatv("%q: {0}, %kc: {1}, %ks: {2}, %vc: {1}, %vs: {2}", qType,
                      codesType, scalesType)
            .str();
    compile(llvm::formatv(R"mlir(
      func.func @fused({0}) -> {1} {{{2}
        return %o : {1}
      }
      func.func @apart({0}) -> ({1}, {3}, {3}) {{{2}
        return %o, %k, %v : {1}, {3}, {3}
      })mlir",
                          args, qType, body, kvType)
                .str(),
            [] {
              rotor::HostPipelineOptions options;
              options.workgroupTiledSdpa = true;
              return options;
            }());
    Elem e = std::string(c.elem) == "bf16" ? Elem::BF16 : Elem::F32;
    Elem scaleElem = std::string(c.scaleType) == "f16" ? Elem::F16 : Elem::F32;
    auto codes = [&] {
      Vec x(c.tk * c.hkv * c.d);
      int64_t levels = int64_t(1) << c.bits;
      for (double &v : x)
        v = std::string(c.scheme) == "absmax"
                ? double(int64_t(rng() % (levels - 1)) - (levels / 2 - 1))
                : double(rng() % levels);
      return x;
    };
    auto scales = [&] {
      Vec x = randomVec(c.tk * c.hkv * (c.d / c.block), 0.5);
      for (double &v : x)
        v = std::abs(v) + 0.01;
      return x;
    };
    Vec q = randomVec(c.t * c.hq * c.d, 1.0);
    Vec kc = codes(), ks = scales(), vc = codes(), vs = scales();
    auto argsFor = [&] {
      return std::vector<Arg>{
          tensorArg(e, {c.t, c.hq, c.d}, q),
          tensorArg(Elem::I8, {c.tk, c.hkv, c.d}, kc),
          tensorArg(scaleElem, {c.tk, c.hkv, c.d / c.block}, ks),
          tensorArg(Elem::I8, {c.tk, c.hkv, c.d}, vc),
          tensorArg(scaleElem, {c.tk, c.hkv, c.d / c.block}, vs)};
    };
    std::vector<Arg> fusedArgs = argsFor(), apartArgs = argsFor();
    Vec fused = call("fused", fusedArgs, {e}, {3})[0];
    std::vector<Vec> apart = call("apart", apartArgs, {e, e, e}, {3, 3, 3});
    std::string what = llvm::formatv("Tq={0} Tk={1} {2}", c.t, c.tk, format);
    ASSERT_EQ(fused.size(), apart[0].size());
    for (size_t i = 0; i < fused.size(); ++i)
      ASSERT_EQ(fused[i], apart[0][i])
          << what << ": element " << i << ", seed " << seed;
    Vec qRounded = q;
    if (e == Elem::BF16)
      for (double &x : qRounded)
        x = fromBF16(toBF16(x));
    expectClose(fused,
                ref::sdpa(qRounded, apart[1], apart[2], c.t, c.tk, c.hq, c.hkv,
                          c.d, c.d, /*causal=*/true, std::nullopt),
                e == Elem::BF16 ? 1.6e-2 : 1e-5, what);
  }
}

TEST_F(HostExecutionTest, QuantizeAbsmaxAndCodebook) {
  struct Case { const char *scheme; unsigned bits; };
  for (Case c : {Case{"absmax", 4}, Case{"absmax", 8}, Case{"codebook", 2},
                 Case{"codebook", 3}, Case{"codebook", 4}}) {
    const int64_t rows = 6, dim = 128, block = 32;
    std::string format = llvm::formatv(
        "<bits = {0}, block_size = {1}, scheme = {2}, scale_type = f32>",
        c.bits, block, c.scheme);
    compile(llvm::formatv(R"mlir(
      func.func @q(%x: tensor<?x{0}xf32>) -> (tensor<?x{0}xi8>, tensor<?x{1}xf32>) {
        %c, %s = attn.quantize %x format({2}) precision <compute = f32, accumulate = f32> : tensor<?x{0}xf32>
        return %c, %s : tensor<?x{0}xi8>, tensor<?x{1}xf32>
      }
      func.func @d(%c: tensor<?x{0}xi8>, %s: tensor<?x{1}xf32>) -> tensor<?x{0}xf32> {
        %x = attn.dequantize %c, %s format({2}) precision <compute = f32, accumulate = f32>
            : tensor<?x{0}xi8>, tensor<?x{1}xf32> -> tensor<?x{0}xf32>
        return %x : tensor<?x{0}xf32>
      })mlir", dim, dim / block, format).str());
    Vec x = randomVec(rows * dim, 2.0);
    for (int64_t i = 0; i < block; ++i)
      x[2 * dim + i] = 0; // an all-zero block: scale 0, codes 0
    std::vector<Arg> args = {tensorArg(Elem::F32, {rows, dim}, x)};
    std::vector<Vec> out = call("q", args, {Elem::I8, Elem::F32}, {2, 2});
    const Vec &codes = out[0], &scales = out[1];

    bool absmax = std::string(c.scheme) == "absmax";
    double qmax = double((1 << (c.bits - 1)) - 1);
    Vec centroids = absmax ? Vec{} : ref::lloydMaxCentroids(c.bits);
    Vec expectedRecon(x.size());
    std::string what = std::string(c.scheme) + " " + std::to_string(c.bits);
    for (int64_t blk = 0; blk < rows * dim / block; ++blk) {
      double stat = 0;
      for (int64_t i = 0; i < block; ++i) {
        double v = x[blk * block + i];
        stat = absmax ? std::max(stat, std::abs(v)) : stat + v * v;
      }
      double expectedScale = absmax ? stat / qmax : std::sqrt(stat / block);
      ASSERT_NEAR(scales[blk], expectedScale, 1e-6 * (1 + expectedScale))
          << what << " block " << blk << ", seed " << seed;
      double s = scales[blk];
      for (int64_t i = 0; i < block; ++i) {
        double v = x[blk * block + i], code = codes[blk * block + i];
        double ratio = s == 0 ? 0 : v / s;
        if (absmax) {
          // The nearest level, within f32 rounding of the ratio.
          ASSERT_LE(std::abs(code), qmax) << what;
          ASSERT_LE(std::abs(ratio - code), 0.5 + 1e-5) << what << ", seed " << seed;
          expectedRecon[blk * block + i] = s * code;
        } else {
          ASSERT_GE(code, 0) << what;
          ASSERT_LT(code, double(centroids.size())) << what;
          double mine = std::abs(ratio - centroids[size_t(code)]);
          for (double other : centroids)
            ASSERT_LE(mine, std::abs(ratio - other) + 1e-5)
                << what << ": code " << code << " is not the nearest centroid of "
                << ratio << ", seed " << seed;
          expectedRecon[blk * block + i] = s * centroids[size_t(code)];
        }
      }
    }
    std::vector<Arg> dargs = {tensorArg(Elem::I8, {rows, dim}, codes),
                              tensorArg(Elem::F32, {rows, dim / block}, scales)};
    expectClose(call("d", dargs, {Elem::F32}, {2})[0], expectedRecon, 1e-6,
                "dequantize " + what);
  }
}

/// Rotating Q/K in the projection's epilogue changes where values live, not
/// the arithmetic: the fused and unfused lowerings agree bit for bit.
TEST_F(HostExecutionTest, RopeEpilogueFusionIsBitExact) {
  const int64_t t = 5, e = 64, h = 4, d = 16;
  std::string source = llvm::formatv(R"mlir(
    func.func @f(%x: tensor<?x{0}xf32>, %w: tensor<{1}x{0}xbf16>, %b: tensor<{1}xf32>,
                 %p: tensor<?xi32>) -> tensor<?x{2}x{3}xbf16> {
      %c0 = arith.constant 0 : index
      %n = tensor.dim %x, %c0 : tensor<?x{0}xf32>
      %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
          : tensor<?x{0}xf32>, tensor<{1}x{0}xbf16>, tensor<{1}xf32> -> tensor<?x{1}xbf16>
      %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, {2}, {3}]
          : tensor<?x{1}xbf16> into tensor<?x{2}x{3}xbf16>
      %r = attn.rope interleaved %y3, %p rotary_dim(12) theta(1.0e+04)
          precision <compute = f32, accumulate = f32> : tensor<?x{2}x{3}xbf16>, tensor<?xi32>
      return %r : tensor<?x{2}x{3}xbf16>
    })mlir", e, h * d, h, d).str();
  Vec x = randomVec(t * e, 1.0), w = randomBF16Vec(h * d * e, 0.2),
      b = randomVec(h * d, 20.0);
  std::vector<int64_t> pos = randomPositions(t, 4096);
  auto run = [&](bool fuse) {
    rotor::HostPipelineOptions options;
    options.fuseRopeEpilogue = fuse;
    compile(source, options);
    std::vector<Arg> args = {tensorArg(Elem::F32, {t, e}, x),
                             tensorArg(Elem::BF16, {h * d, e}, w),
                             tensorArg(Elem::F32, {h * d}, b),
                             tensorArg(Elem::I32, {t}, toDouble(pos))};
    return call("f", args, {Elem::BF16}, {3})[0];
  };
  Vec fused = run(true), separate = run(false);
  ASSERT_EQ(fused.size(), separate.size());
  for (size_t i = 0; i < fused.size(); ++i)
    ASSERT_EQ(fused[i], separate[i]) << "element " << i << ", seed " << seed;
}

// The GPU's GEMM with the RoPE in its epilogue (one head per column tile):
// bit-exact against the projection and the RoPE lowered apart, for head
// dims 64 and 128, both layouts, partial rotary, bf16 weights and output,
// dynamic NTK scaling, and a token count that leaves partial tiles.
TEST_F(HostExecutionTest, RopeInWorkgroupGemmEpilogueIsBitExact) {
  struct Case {
    int64_t t, e, h, d, rotary;
    const char *layout, *scaling;
  };
  std::vector<Case> cases = {
      {70, 96, 3, 64, 64, "half_split", ""},
      {40, 64, 2, 128, 128, "interleaved", ""},
      {33, 64, 2, 128, 64, "half_split",
       "scaling(#attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 64>)"},
  };
  for (const Case &c : cases) {
    std::string source = llvm::formatv(R"mlir(
      func.func @f(%x: tensor<?x{0}xf32>, %w: tensor<{1}x{0}xbf16>, %b: tensor<{1}xf32>,
                   %p: tensor<?xi32>) -> tensor<?x{2}x{3}xbf16> {
        %c0 = arith.constant 0 : index
        %n = tensor.dim %x, %c0 : tensor<?x{0}xf32>
        %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
            : tensor<?x{0}xf32>, tensor<{1}x{0}xbf16>, tensor<{1}xf32> -> tensor<?x{1}xbf16>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, {2}, {3}]
            : tensor<?x{1}xbf16> into tensor<?x{2}x{3}xbf16>
        %r = attn.rope {4} %y3, %p rotary_dim({5}) theta(1.0e+04) {6}
            precision <compute = f32, accumulate = f32> : tensor<?x{2}x{3}xbf16>, tensor<?xi32>
        return %r : tensor<?x{2}x{3}xbf16>
      })mlir", c.e, c.h * c.d, c.h, c.d, c.layout, c.rotary, c.scaling).str();
    Vec x = randomVec(c.t * c.e, 1.0), w = randomBF16Vec(c.h * c.d * c.e, 0.2),
        b = randomVec(c.h * c.d, 20.0);
    std::vector<int64_t> pos = randomPositions(c.t, 4096);
    auto run = [&](bool workgroup) {
      rotor::HostPipelineOptions options;
      options.fuseRopeEpilogue = false;
      options.workgroupTiledLinear = workgroup;
      compile(source, options);
      std::vector<Arg> args = {tensorArg(Elem::F32, {c.t, c.e}, x),
                               tensorArg(Elem::BF16, {c.h * c.d, c.e}, w),
                               tensorArg(Elem::F32, {c.h * c.d}, b),
                               tensorArg(Elem::I32, {c.t}, toDouble(pos))};
      return call("f", args, {Elem::BF16}, {3})[0];
    };
    Vec fused = run(true), separate = run(false);
    ASSERT_EQ(fused.size(), separate.size());
    for (size_t i = 0; i < fused.size(); ++i)
      ASSERT_EQ(fused[i], separate[i])
          << c.layout << " D=" << c.d << " element " << i << ", seed " << seed;
  }
}

// A decode GEMV with the RoPE in its epilogue (each workgroup two RoPE
// pairs of one head): bit-exact against the same GEMV followed by the RoPE
// kernel (@apart, where the projection has a second user and so is not
// fused), for both layouts, partial rotary, bf16, one and three tokens.
TEST_F(HostExecutionTest, RopeInWorkgroupGemvEpilogueIsBitExact) {
  struct Case {
    int64_t t, e, h, d, rotary;
    const char *layout, *type;
  };
  std::vector<Case> cases = {{1, 96, 3, 64, 64, "half_split", "f32"},
                             {3, 64, 2, 128, 64, "half_split", "bf16"},
                             {1, 64, 4, 128, 128, "interleaved", "f32"},
                             {2, 80, 2, 64, 32, "interleaved", "bf16"}};
  for (const Case &c : cases) {
    std::string source = llvm::formatv(R"mlir(
      func.func @fused(%x: tensor<{0}x{1}xf32>, %w: tensor<{2}x{1}xf32>, %b: tensor<{2}xf32>,
                       %p: tensor<{0}xi32>) -> tensor<{0}x{3}x{4}x{5}> {
        %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
            : tensor<{0}x{1}xf32>, tensor<{2}x{1}xf32>, tensor<{2}xf32> -> tensor<{0}x{2}x{5}>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [{0}, {3}, {4}]
            : tensor<{0}x{2}x{5}> into tensor<{0}x{3}x{4}x{5}>
        %r = attn.rope {6} %y3, %p rotary_dim({7}) theta(1.0e+04)
            precision <compute = f32, accumulate = f32> : tensor<{0}x{3}x{4}x{5}>, tensor<{0}xi32>
        return %r : tensor<{0}x{3}x{4}x{5}>
      }
      func.func @apart(%x: tensor<{0}x{1}xf32>, %w: tensor<{2}x{1}xf32>, %b: tensor<{2}xf32>,
                       %p: tensor<{0}xi32>) -> (tensor<{0}x{3}x{4}x{5}>, tensor<{0}x{2}x{5}>) {
        %y = attn.linear %x, %w, %b precision <compute = f32, accumulate = f32>
            : tensor<{0}x{1}xf32>, tensor<{2}x{1}xf32>, tensor<{2}xf32> -> tensor<{0}x{2}x{5}>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [{0}, {3}, {4}]
            : tensor<{0}x{2}x{5}> into tensor<{0}x{3}x{4}x{5}>
        %r = attn.rope {6} %y3, %p rotary_dim({7}) theta(1.0e+04)
            precision <compute = f32, accumulate = f32> : tensor<{0}x{3}x{4}x{5}>, tensor<{0}xi32>
        return %r, %y : tensor<{0}x{3}x{4}x{5}>, tensor<{0}x{2}x{5}>
      })mlir", c.t, c.e, c.h * c.d, c.h, c.d, c.type, c.layout, c.rotary).str();
    rotor::HostPipelineOptions options;
    options.fuseRopeEpilogue = false;
    options.workgroupTiledLinear = true;
    compile(source, options);
    Elem type = std::string(c.type) == "bf16" ? Elem::BF16 : Elem::F32;
    Vec x = randomVec(c.t * c.e, 1.0), w = randomVec(c.h * c.d * c.e, 0.2),
        b = randomVec(c.h * c.d, 20.0);
    std::vector<int64_t> pos = randomPositions(c.t, 30000);
    auto args = [&] {
      return std::vector<Arg>{tensorArg(Elem::F32, {c.t, c.e}, x),
                              tensorArg(Elem::F32, {c.h * c.d, c.e}, w),
                              tensorArg(Elem::F32, {c.h * c.d}, b),
                              tensorArg(Elem::I32, {c.t}, toDouble(pos))};
    };
    std::vector<Arg> fusedArgs = args(), apartArgs = args();
    Vec fused = call("fused", fusedArgs, {type}, {3})[0];
    Vec apart = call("apart", apartArgs, {type, type}, {3, 2})[0];
    ASSERT_EQ(fused.size(), apart.size());
    for (size_t i = 0; i < fused.size(); ++i)
      ASSERT_EQ(fused[i], apart[i]) << c.layout << " D=" << c.d << " R="
                                    << c.rotary << " " << c.type
                                    << ": element " << i << ", seed " << seed;
  }
}

// A per-head chain (the Q, K and V paths of a rotated, quantized KV cache:
// RoPE, then a Hadamard rotation, then a block quantization, each optional)
// as the GPU runs it: in the epilogue of the GEMM that projects it, or, on a
// tensor no GEMM computes (after a decode GEMV), as one workgroup kernel of
// its own. Bit-exact against the ops lowered apart: rotated values, codes
// and scales, for forward and inverse rotations with random signs, absmax
// and codebook formats, f16 and f32 scales, bf16 intermediates, static and
// dynamic token counts.
TEST_F(HostExecutionTest, HeadChainInWorkgroupKernelsIsBitExact) {
  struct Case {
    bool projected;       // the chain's input is a GEMM's (else an argument)
    const char *tokens;   // "?" or the static token count
    int64_t t, e, h, d;
    const char *rope;     // "" or "<layout> rotary_dim(R)"
    int64_t group;        // 0: no rotation
    bool inverse;
    const char *quantize; // "" or a KV block format
    int64_t block;
    const char *type;     // the chain's input (and RoPE's) type
  };
  std::vector<Case> cases = {
      // Q: RoPE then the rotation, into bf16.
      {true, "?", 37, 64, 3, 64, "half_split %p rotary_dim(32)", 32, false,
       "", 0, "bf16"},
      // K: RoPE, the inverse rotation, 4-bit absmax codes with f16 scales.
      {true, "?", 40, 96, 2, 128, "interleaved %p rotary_dim(128)", 128, true,
       "<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>", 32,
       "f32"},
      // V: the rotation and 3-bit codebook codes.
      {true, "?", 19, 64, 2, 128, "", 64, false,
       "<bits = 3, block_size = 64, scheme = codebook, scale_type = f32>", 64,
       "bf16"},
      // V without a rotation: 8-bit absmax codes alone.
      {true, "?", 70, 64, 3, 64, "", 0, false,
       "<bits = 8, block_size = 16, scheme = absmax, scale_type = f32>", 16,
       "f32"},
      // K with RoPE straight into codes.
      {true, "?", 33, 64, 2, 64, "half_split %p rotary_dim(64)", 0, false,
       "<bits = 4, block_size = 64, scheme = absmax, scale_type = f16>", 64,
       "bf16"},
      // Decode-shaped K (one token): the chain kernel after the GEMV.
      {false, "1", 1, 0, 4, 128, "half_split %p rotary_dim(128)", 128, false,
       "<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>", 32,
       "f32"},
      // A few static tokens of Q: RoPE and the inverse rotation into bf16.
      {false, "5", 5, 0, 3, 64, "interleaved %p rotary_dim(48)", 64, true, "",
       0, "bf16"},
      // Dynamic tokens, several row tiles: rotation and codebook codes.
      {false, "?", 19, 0, 2, 128, "", 32, false,
       "<bits = 2, block_size = 32, scheme = codebook, scale_type = f32>", 32,
       "bf16"},
  };
  auto list = [](const std::vector<int> &s) {
    return llvm::join(
        llvm::map_range(s, [](int v) { return std::to_string(v); }), ", ");
  };
  for (const Case &c : cases) {
    std::string heads =
        llvm::formatv("tensor<{0}x{1}x{2}x{3}>", c.tokens, c.h, c.d, c.type)
            .str();
    std::string posType = llvm::formatv("tensor<{0}xi32>", c.tokens).str();
    std::string body, value = "%y3", results = heads;
    if (*c.rope) {
      body += llvm::formatv("%r = attn.rope {0} theta(1.0e+04) precision "
                            "<compute = f32, accumulate = f32> : {1}, {2}\n",
                            c.rope, heads, posType)
                  .str();
      body.replace(body.find("%p"), 2, "%y3, %p");
      value = "%r";
    }
    if (c.group) {
      std::vector<int> s1(c.group), s2(c.group);
      for (int &v : s1)
        v = rng() % 2 ? 1 : -1;
      for (int &v : s2)
        v = rng() % 2 ? 1 : -1;
      body += llvm::formatv("%hr = attn.hadamard {0} rotation(<group = {1}, "
                            "s1 = [{2}], s2 = [{3}]>) {4} precision <compute "
                            "= f32, accumulate = f32> : {5}\n",
                            value, c.group, list(s1), list(s2),
                            c.inverse ? "inverse" : "", heads)
                  .str();
      value = "%hr";
    }
    std::string ret = value;
    std::string scaleType =
        std::string(c.quantize).find("f16>") != std::string::npos ? "f16"
                                                                  : "f32";
    if (*c.quantize) {
      body += llvm::formatv("%codes, %scales = attn.quantize {0} format({1}) "
                            "precision <compute = f32, accumulate = f32> : {2}\n",
                            value, c.quantize, heads)
                  .str();
      ret = "%codes, %scales";
      results =
          llvm::formatv("tensor<{0}x{1}x{2}xi8>, tensor<{0}x{1}x{3}x{4}>",
                        c.tokens, c.h, c.d, c.d / c.block, scaleType)
              .str();
    }
    std::string source;
    if (c.projected)
      source = llvm::formatv(R"mlir(
      func.func @f(%x: tensor<?x{0}xf32>, %w: tensor<{1}x{0}xbf16>, %b: tensor<{1}xf32>,
                   %p: tensor<?xi32>) -> ({2}) {
        %c0 = arith.constant 0 : index
        %n = tensor.dim %x, %c0 : tensor<?x{0}xf32>
        %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
            : tensor<?x{0}xf32>, tensor<{1}x{0}xbf16>, tensor<{1}xf32> -> tensor<?x{1}x{3}>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, {4}, {5}]
            : tensor<?x{1}x{3}> into {6}
        {7}
        return {8} : {2}
      })mlir", c.e, c.h * c.d, results, c.type, c.h, c.d, heads, body, ret).str();
    else
      source = llvm::formatv(R"mlir(
      func.func @f(%y3: {0}, %p: {1}) -> ({2}) {
        {3}
        return {4} : {2}
      })mlir", heads, posType, results, body, ret).str();
    Elem type = std::string(c.type) == "bf16" ? Elem::BF16 : Elem::F32;
    Vec x = randomVec(c.t * c.e, 1.0), w = randomBF16Vec(c.h * c.d * c.e, 0.2),
        b = randomVec(c.h * c.d, 20.0);
    Vec y = randomVec(c.t * c.h * c.d, 30.0);
    std::vector<int64_t> pos = randomPositions(c.t, 4096);
    auto run = [&](bool workgroup) {
      rotor::HostPipelineOptions options;
      options.fuseRopeEpilogue = false;
      options.workgroupTiledLinear = workgroup;
      compile(source, options);
      std::vector<Arg> args;
      if (c.projected)
        args = {tensorArg(Elem::F32, {c.t, c.e}, x),
                tensorArg(Elem::BF16, {c.h * c.d, c.e}, w),
                tensorArg(Elem::F32, {c.h * c.d}, b)};
      else
        args = {tensorArg(type, {c.t, c.h, c.d}, y)};
      args.push_back(tensorArg(Elem::I32, {c.t}, toDouble(pos)));
      if (!*c.quantize)
        return call("f", args, {type}, {3});
      return call("f", args,
                  {Elem::I8, scaleType == "f16" ? Elem::F16 : Elem::F32},
                  {3, 3});
    };
    std::vector<Vec> fused = run(true), separate = run(false);
    std::string what = std::string(c.projected ? "GEMM epilogue " : "kernel ") +
                       c.rope + " G=" + std::to_string(c.group) + " " +
                       c.quantize;
    ASSERT_EQ(fused.size(), separate.size());
    for (size_t r = 0; r < fused.size(); ++r) {
      ASSERT_EQ(fused[r].size(), separate[r].size());
      for (size_t i = 0; i < fused[r].size(); ++i)
        ASSERT_EQ(fused[r][i], separate[r][i])
            << what << ": result " << r << " element " << i << ", seed "
            << seed;
    }
    // Codes that are all equal would make the comparison vacuous.
    if (*c.quantize)
      EXPECT_GT(std::set<double>(fused[0].begin(), fused[0].end()).size(),
                size_t(3))
          << what;
  }
}

// The GPU pipeline's mapped kernels (strided thread loops, barriers,
// workgroup buffers shared by a block's threads) run as OpenMP thread
// teams on the host, against the same kernels run phase by phase: equal
// bit for bit, so the mapping adds no race and drops no barrier. Covers
// the workgroup SDPA (prefill, and decode with KV splits and a quantized
// cache), the GEMM with the per-head chain in its epilogue, the GEMV and
// the standalone chain kernel.
TEST_F(HostExecutionTest, GpuMappedKernelsMatchPhaseByPhase) {
  // Threads that disagree on their barriers (a phase whose loop bounds come
  // from workgroup memory read before it was written) deadlock: fail then,
  // rather than hang.
  struct Watchdog {
    Watchdog() {
      std::signal(SIGALRM, [](int) {
        const char message[] = "GpuMappedKernelsMatchPhaseByPhase: no result "
                               "after 15 minutes: the emulated GPU threads "
                               "deadlocked at a barrier not every thread "
                               "reaches\n";
        [[maybe_unused]] ssize_t n = write(2, message, sizeof(message) - 1);
        _exit(1);
      });
      alarm(900);
    }
    ~Watchdog() { alarm(0); }
  } watchdog;
  struct Case {
    std::string name, source;
    std::vector<Arg> args;
    std::vector<Elem> results;
    std::vector<size_t> ranks;
    std::string function = "f";
  };
  auto list = [](int64_t n) {
    std::vector<int> s(n);
    for (int64_t i = 0; i < n; ++i)
      s[i] = (i * 7 + 3) % 5 < 2 ? -1 : 1;
    return llvm::join(
        llvm::map_range(s, [](int v) { return std::to_string(v); }), ", ");
  };
  std::vector<Case> cases;
  // Prefill SDPA, GQA 2, causal, a partial row tile.
  cases.push_back(
      {"prefill sdpa", R"mlir(
      func.func @f(%q: tensor<?x4x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x2x64xf32>)
          -> tensor<?x4x64xf32> {
        %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
            : tensor<?x4x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x4x64xf32>
        return %o : tensor<?x4x64xf32>
      })mlir",
       {tensorArg(Elem::F32, {37, 4, 64}, randomVec(37 * 4 * 64, 1.0)),
        tensorArg(Elem::F32, {37, 2, 64}, randomVec(37 * 2 * 64, 1.0)),
        tensorArg(Elem::F32, {37, 2, 64}, randomVec(37 * 2 * 64, 1.0))},
       {Elem::F32},
       {3}});
  // bf16 prefill SDPA at D = 128 with partial row and key tiles.
  cases.push_back(
      {"bf16 prefill sdpa", R"mlir(
      func.func @f(%q: tensor<?x8x128xbf16>, %k: tensor<?x2x128xbf16>, %v: tensor<?x2x128xbf16>)
          -> tensor<?x8x128xbf16> {
        %o = attn.sdpa %q, %k, %v causal precision <compute = bf16, accumulate = f32>
            : tensor<?x8x128xbf16>, tensor<?x2x128xbf16>, tensor<?x2x128xbf16> -> tensor<?x8x128xbf16>
        return %o : tensor<?x8x128xbf16>
      })mlir",
       {tensorArg(Elem::BF16, {50, 8, 128}, randomVec(50 * 8 * 128, 1.0)),
        tensorArg(Elem::BF16, {50, 2, 128}, randomVec(50 * 2 * 128, 1.0)),
        tensorArg(Elem::BF16, {50, 2, 128}, randomVec(50 * 2 * 128, 1.0))},
       {Elem::BF16},
       {3}});
  // A plain bf16 GEMM whose columns end in a partial tile.
  cases.push_back(
      {"bf16 GEMM", R"mlir(
      func.func @f(%x: tensor<?x160xbf16>, %w: tensor<200x160xbf16>, %b: tensor<200xf32>)
          -> tensor<?x200xbf16> {
        %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
            : tensor<?x160xbf16>, tensor<200x160xbf16>, tensor<200xf32> -> tensor<?x200xbf16>
        return %y : tensor<?x200xbf16>
      })mlir",
       {tensorArg(Elem::BF16, {70, 160}, randomVec(70 * 160, 1.0)),
        tensorArg(Elem::BF16, {200, 160}, randomVec(200 * 160, 0.2)),
        tensorArg(Elem::F32, {200}, randomVec(200, 2.0))},
       {Elem::BF16},
       {2}});
  // Decode over a 4-bit cache of 700 keys: KV splits and their combine.
  {
    const int64_t tk = 700;
    Vec codes(tk * 2 * 128), scales(tk * 2 * 4);
    for (double &c : codes)
      c = double(int64_t(rng() % 15) - 7);
    for (double &x : scales)
      x = 0.05 + double(rng() % 100) / 400.0;
    cases.push_back(
        {"decode sdpa over a quantized cache", R"mlir(
      func.func @f(%q: tensor<1x8x128xf32>, %kc: tensor<?x2x128xi8>, %ks: tensor<?x2x4xf16>,
                   %vc: tensor<?x2x128xi8>, %vs: tensor<?x2x4xf16>) -> tensor<1x8x128xf32> {
        %k = attn.dequantize %kc, %ks format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
            precision <compute = f32, accumulate = f32>
            : tensor<?x2x128xi8>, tensor<?x2x4xf16> -> tensor<?x2x128xf32>
        %v = attn.dequantize %vc, %vs format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
            precision <compute = f32, accumulate = f32>
            : tensor<?x2x128xi8>, tensor<?x2x4xf16> -> tensor<?x2x128xf32>
        %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
            : tensor<1x8x128xf32>, tensor<?x2x128xf32>, tensor<?x2x128xf32> -> tensor<1x8x128xf32>
        return %o : tensor<1x8x128xf32>
      })mlir",
         {tensorArg(Elem::F32, {1, 8, 128}, randomVec(8 * 128, 1.0)),
          tensorArg(Elem::I8, {tk, 2, 128}, codes),
          tensorArg(Elem::F16, {tk, 2, 4}, scales),
          tensorArg(Elem::I8, {tk, 2, 128}, codes),
          tensorArg(Elem::F16, {tk, 2, 4}, scales)},
         {Elem::F32},
         {3}});
  }
  // The K path: GEMM, RoPE, rotation, quantization in one kernel.
  cases.push_back(
      {"GEMM with RoPE, rotation and quantization",
       llvm::formatv(R"mlir(
      func.func @f(%x: tensor<?x96xf32>, %w: tensor<256x96xbf16>, %b: tensor<256xf32>,
                   %p: tensor<?xi32>) -> (tensor<?x2x128xi8>, tensor<?x2x4xf16>) {
        %c0 = arith.constant 0 : index
        %n = tensor.dim %x, %c0 : tensor<?x96xf32>
        %y = attn.linear %x, %w, %b precision <compute = bf16, accumulate = f32>
            : tensor<?x96xf32>, tensor<256x96xbf16>, tensor<256xf32> -> tensor<?x256xbf16>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [%n, 2, 128]
            : tensor<?x256xbf16> into tensor<?x2x128xbf16>
        %r = attn.rope half_split %y3, %p rotary_dim(128) theta(1.0e+06)
            precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>, tensor<?xi32>
        %h = attn.hadamard %r rotation(<group = 128, s1 = [{0}], s2 = [{1}]>)
            precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>
        %c, %s = attn.quantize %h format(<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>)
            precision <compute = f32, accumulate = f32> : tensor<?x2x128xbf16>
        return %c, %s : tensor<?x2x128xi8>, tensor<?x2x4xf16>
      })mlir",
                     list(128), list(128))
           .str(),
       {tensorArg(Elem::F32, {45, 96}, randomVec(45 * 96, 1.0)),
        tensorArg(Elem::BF16, {256, 96}, randomVec(256 * 96, 0.2)),
        tensorArg(Elem::F32, {256}, randomVec(256, 20.0)),
        tensorArg(Elem::I32, {45}, toDouble(randomPositions(45, 4096)))},
       {Elem::I8, Elem::F16},
       {3, 3}});
  // Decode: the GEMV, then the chain kernel on its heads.
  cases.push_back(
      {"GEMV then the chain kernel",
       llvm::formatv(R"mlir(
      func.func @f(%x: tensor<1x96xf32>, %w: tensor<256x96xf32>, %p: tensor<1xi32>)
          -> tensor<1x2x128xf32> {
        %y = attn.linear %x, %w precision <compute = f32, accumulate = f32>
            : tensor<1x96xf32>, tensor<256x96xf32> -> tensor<1x256xf32>
        %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [1, 2, 128]
            : tensor<1x256xf32> into tensor<1x2x128xf32>
        %r = attn.rope interleaved %y3, %p rotary_dim(64) theta(1.0e+04)
            precision <compute = f32, accumulate = f32> : tensor<1x2x128xf32>, tensor<1xi32>
        %h = attn.hadamard %r rotation(<group = 64, s1 = [{0}], s2 = [{1}]>) inverse
            precision <compute = f32, accumulate = f32> : tensor<1x2x128xf32>
        return %h : tensor<1x2x128xf32>
      })mlir",
                     list(64), list(64))
           .str(),
       {tensorArg(Elem::F32, {1, 96}, randomVec(96, 1.0)),
        tensorArg(Elem::F32, {256, 96}, randomVec(256 * 96, 0.2)),
        tensorArg(Elem::I32, {1}, {1234})},
       {Elem::F32},
       {3}});

  // The bundled Qwen2.5-0.5B layer: a 20-token prefill, and a decode step
  // over 300 cached positions (GEMMs with RoPE epilogues, GEMVs, SDPA with
  // KV splits, cache appends, and the one-thread-per-element kernels).
  {
    auto buffer = llvm::MemoryBuffer::getFile(
        ROTOR_SOURCE_DIR "/examples/qwen2.5-0.5b-attention.mlir");
    ASSERT_TRUE(bool(buffer));
    std::string layer = (*buffer)->getBuffer().str();
    const int64_t e = 896, hkv = 2, d = 64, cap = 4096, t = 20, len = 300;
    std::vector<Arg> weights = {
        tensorArg(Elem::F32, {e, e}, randomVec(e * e, 0.03)),
        tensorArg(Elem::F32, {e}, randomVec(e, 3.0)),
        tensorArg(Elem::F32, {hkv * d, e}, randomVec(hkv * d * e, 0.03)),
        tensorArg(Elem::F32, {hkv * d}, randomVec(hkv * d, 20.0)),
        tensorArg(Elem::F32, {hkv * d, e}, randomVec(hkv * d * e, 0.03)),
        tensorArg(Elem::F32, {hkv * d}, randomVec(hkv * d, 0.2)),
        tensorArg(Elem::F32, {e, e}, randomVec(e * e, 0.03))};
    std::vector<int64_t> positions(t);
    std::iota(positions.begin(), positions.end(), 0);
    Case prefill{"example layer prefill",
                 layer,
                 {tensorArg(Elem::F32, {t, e}, randomVec(t * e, 1.0)),
                  tensorArg(Elem::I32, {t}, toDouble(positions)),
                  tensorArg(Elem::F32, {cap, hkv, d}, Vec(cap * hkv * d, 0.0)),
                  tensorArg(Elem::F32, {cap, hkv, d}, Vec(cap * hkv * d, 0.0))},
                 {Elem::F32},
                 {2},
                 "prefill"};
    prefill.args.insert(prefill.args.end(), weights.begin(), weights.end());
    cases.push_back(std::move(prefill));
    // Rows past `len` are never read: the cache is random everywhere.
    Case decode{"example layer decode",
                layer,
                {tensorArg(Elem::F32, {1, e}, randomVec(e, 1.0)),
                 tensorArg(Elem::I32, {1}, Vec{double(len)}),
                 tensorArg(Elem::F32, {cap, hkv, d}, randomVec(cap * hkv * d, 1.0)),
                 tensorArg(Elem::F32, {cap, hkv, d}, randomVec(cap * hkv * d, 1.0)),
                 indexArg(len)},
                {Elem::F32},
                {2},
                "decode"};
    decode.args.insert(decode.args.end(), weights.begin(), weights.end());
    cases.push_back(std::move(decode));
  }

  for (Case &c : cases) {
    rotor::GpuPipelineOptions gpu;
    compileEmulatingGpu(c.source, gpu);
    // Not vacuous: the kernels did become thread teams.
    ASSERT_GT(emulatedBlocks, 0) << c.name;
    // Each run updates its own copy of the arguments (the KV caches in
    // place); the copies are compared too.
    std::vector<Arg> emulatedArgs = c.args, phasedArgs = c.args;
    std::vector<Vec> emulated =
        call(c.function, emulatedArgs, c.results, c.ranks);
    // The same lowering as the GPU's (which never fuses the loop-level
    // projection + RoPE).
    rotor::HostPipelineOptions phasedOptions = gpu.loops;
    phasedOptions.fuseRopeEpilogue = false;
    compile(c.source, phasedOptions);
    std::vector<Vec> phased = call(c.function, phasedArgs, c.results, c.ranks);
    for (size_t a = 0; a < c.args.size(); ++a)
      if (c.args[a].buffer)
        ASSERT_TRUE(emulatedArgs[a].buffer->bytes ==
                    phasedArgs[a].buffer->bytes)
            << c.name << ": argument " << a << " (updated in place)";
    ASSERT_EQ(emulated.size(), phased.size()) << c.name;
    for (size_t r = 0; r < emulated.size(); ++r) {
      ASSERT_EQ(emulated[r].size(), phased[r].size()) << c.name;
      for (size_t i = 0; i < emulated[r].size(); ++i)
        ASSERT_EQ(emulated[r][i], phased[r][i])
            << c.name << ": result " << r << " element " << i << ", seed "
            << seed;
    }
  }
}

/// The bundled Qwen2.5-0.5B layer: prefill of T tokens followed by N decode
/// steps equals prefill of T + N tokens, and both match the reference
/// composition of the layer's ops.
TEST_F(HostExecutionTest, ExampleLayerPrefillThenDecodeEqualsLongerPrefill) {
  auto buffer = llvm::MemoryBuffer::getFile(ROTOR_SOURCE_DIR
                                            "/examples/qwen2.5-0.5b-attention.mlir");
  ASSERT_TRUE(bool(buffer));
  compile((*buffer)->getBuffer().str());
  const int64_t e = 896, hq = 14, hkv = 2, d = 64, cap = 4096;
  const int64_t t = 6, steps = 3, total = t + steps;
  // Qwen2.5-like magnitudes: large K bias, moderate Q bias.
  Vec wq = randomVec(e * e, 0.03), bq = randomVec(e, 3.0);
  Vec wk = randomVec(hkv * d * e, 0.03), bk = randomVec(hkv * d, 20.0);
  Vec wv = randomVec(hkv * d * e, 0.03), bv = randomVec(hkv * d, 0.2);
  Vec wo = randomVec(e * e, 0.03);
  Vec hidden = randomVec(total * e, 1.0);
  std::vector<int64_t> positions(total);
  std::iota(positions.begin(), positions.end(), 0);
  auto weights = [&](std::vector<Arg> &args) {
    args.push_back(tensorArg(Elem::F32, {e, e}, wq));
    args.push_back(tensorArg(Elem::F32, {e}, bq));
    args.push_back(tensorArg(Elem::F32, {hkv * d, e}, wk));
    args.push_back(tensorArg(Elem::F32, {hkv * d}, bk));
    args.push_back(tensorArg(Elem::F32, {hkv * d, e}, wv));
    args.push_back(tensorArg(Elem::F32, {hkv * d}, bv));
    args.push_back(tensorArg(Elem::F32, {e, e}, wo));
  };
  Vec emptyCache(cap * hkv * d, 0.0);
  auto prefill = [&](int64_t n) {
    std::vector<Arg> args = {
        tensorArg(Elem::F32, {n, e}, Vec(hidden.begin(), hidden.begin() + n * e)),
        tensorArg(Elem::I32, {n}, toDouble({positions.begin(), positions.begin() + n})),
        tensorArg(Elem::F32, {cap, hkv, d}, emptyCache),
        tensorArg(Elem::F32, {cap, hkv, d}, emptyCache)};
    weights(args);
    // The caches are updated in place: only the output is returned.
    Vec out = call("prefill", args, {Elem::F32}, {2})[0];
    auto cache = [&](int i) {
      Buffer &b = *args[i].buffer;
      Vec v(b.bytes.size() / 4);
      for (size_t j = 0; j < v.size(); ++j)
        v[j] = load(Elem::F32, b.bytes.data() + 4 * j);
      return v;
    };
    return std::vector<Vec>{out, cache(2), cache(3)};
  };

  std::vector<Vec> full = prefill(total);
  std::vector<Vec> part = prefill(t);
  Vec kCache = part[1], vCache = part[2];
  Vec stepwise(part[0]);
  for (int64_t s = 0; s < steps; ++s) {
    int64_t p = t + s;
    std::vector<Arg> args = {
        tensorArg(Elem::F32, {1, e}, Vec(hidden.begin() + p * e, hidden.begin() + (p + 1) * e)),
        tensorArg(Elem::I32, {1}, Vec{double(p)}),
        tensorArg(Elem::F32, {cap, hkv, d}, kCache),
        tensorArg(Elem::F32, {cap, hkv, d}, vCache), indexArg(p)};
    weights(args);
    Vec out = call("decode", args, {Elem::F32}, {2})[0];
    stepwise.insert(stepwise.end(), out.begin(), out.end());
    for (auto [i, cache] : {std::pair(2, &kCache), std::pair(3, &vCache)}) {
      Buffer &b = *args[i].buffer;
      for (size_t j = 0; j < cache->size(); ++j)
        (*cache)[j] = load(Elem::F32, b.bytes.data() + 4 * j);
    }
  }
  expectClose(stepwise, full[0], 1e-5, "prefill + decode vs prefill");
  // The caches hold the same keys and values either way.
  expectClose(kCache, full[1], 1e-5, "K cache");
  expectClose(vCache, full[2], 1e-5, "V cache");

  // The reference composition of the layer.
  Vec q = ref::linear(hidden, wq, bq, total, e, e);
  Vec k = ref::linear(hidden, wk, bk, total, e, hkv * d);
  Vec v = ref::linear(hidden, wv, bv, total, e, hkv * d);
  q = ref::rope(q, positions, total, hq, d, ref::RopeLayout::HalfSplit, d, 1e6);
  k = ref::rope(k, positions, total, hkv, d, ref::RopeLayout::HalfSplit, d, 1e6);
  Vec o = ref::sdpa(q, k, v, total, total, hq, hkv, d, d, /*causal=*/true,
                    std::nullopt);
  Vec expected = ref::linear(o, wo, {}, total, e, e);
  // With a K bias of 20 the scaled scores reach ~60, so f32 rounding of a
  // score (6e-8 relative, over a 64-term dot product) moves softmax weights
  // by up to ~3e-5; the layer is held to 5e-5, the ops alone to 1e-5.
  expectClose(full[0], expected, 5e-5, "layer vs fp64 reference");
}

} // namespace
