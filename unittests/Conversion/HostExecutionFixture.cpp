//===- HostExecutionFixture.cpp - Lowered attn ops run on the host --------===//

#include "HostExecutionFixture.h"

#include "rotor/Codegen/Passes.h"
#include "rotor/Conversion/Passes.h"
#include "rotor/InitAllDialects.h"

#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "llvm/Support/TargetSelect.h"

#include <bit>
#include <cstdlib>
#include <cstring>

using namespace mlir;

namespace rotor::unittest {

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

Buffer::Buffer(Elem elem, std::vector<int64_t> shape, const Vec &values)
    : elem(elem), shape(std::move(shape)) {
  bytes.resize(values.size() * elemSize(elem));
  for (size_t i = 0; i < values.size(); ++i)
    set(i, values[i]);
}

void Buffer::set(size_t i, double v) {
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

namespace {

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

} // namespace

Arg tensorArg(Elem e, std::vector<int64_t> shape, const Vec &v) {
  return Arg{Buffer(e, std::move(shape), v), 0};
}
Arg indexArg(int64_t v) { return Arg{std::nullopt, v}; }

Vec toDouble(const std::vector<int64_t> &v) { return Vec(v.begin(), v.end()); }

void HostExecutionTest::SetUpTestSuite() {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  mlir::registerAllPasses();
  rotor::registerRotorConversionPasses();
  rotor::registerRotorCodegenPasses();
}

HostExecutionTest::HostExecutionTest() {
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

void HostExecutionTest::compile(const std::string &source,
                                const rotor::PipelineOptions &pipeline) {
  // Host code runs its parallel loops on the OpenMP runtime.
  compileWith(
      source, [&](PassManager &pm) { rotor::buildHostPipeline(pm, pipeline); },
      {ROTOR_LIBOMP});
}

void HostExecutionTest::compileEmulatingGpu(
    const std::string &source, const rotor::PipelineOptions &pipeline) {
  // Threads that wait at a barrier sleep rather than spin: a block has
  // 128 of them and the machine a few cores.
  setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0);
  setenv("KMP_BLOCKTIME", "0", /*overwrite=*/0);
  compileWith(
      source,
      [&](PassManager &pm) { rotor::buildGpuEmulationPipeline(pm, pipeline); },
      {ROTOR_LIBOMP}, &emulatedBlocks);
}

void HostExecutionTest::compileWith(
    const std::string &source, llvm::function_ref<void(PassManager &)> build,
    ArrayRef<StringRef> sharedLibs, int64_t *teams) {
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

std::vector<Vec> HostExecutionTest::call(const std::string &name,
                                         std::vector<Arg> &args,
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

Vec HostExecutionTest::randomVec(size_t n, double scale) {
  std::normal_distribution<double> dist(0.0, scale);
  Vec v(n);
  for (double &x : v)
    x = dist(rng);
  return v;
}

Vec HostExecutionTest::randomBF16Vec(size_t n, double scale) {
  Vec v = randomVec(n, scale);
  for (double &x : v)
    x = fromBF16(toBF16(x));
  return v;
}

std::vector<int64_t> HostExecutionTest::randomPositions(size_t n,
                                                        int64_t below) {
  std::uniform_int_distribution<int64_t> dist(0, below - 1);
  std::vector<int64_t> p(n);
  for (int64_t &x : p)
    x = dist(rng);
  return p;
}

void HostExecutionTest::expectClose(const Vec &actual, const Vec &expected,
                                    double tolerance, const std::string &what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  ref::Agreement a = ref::compare(actual, expected);
  EXPECT_LE(a.maxRelError, tolerance)
      << what << ": PCC " << a.pcc << ", seed " << seed;
  EXPECT_GT(a.pcc, 1 - tolerance) << what << ", seed " << seed;
}

} // namespace rotor::unittest
