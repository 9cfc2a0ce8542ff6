//===- rotor-run.cpp - Run a kernel bundle --------------------------------===//
//
// rotor-run OUT.rotor --inputs IN.safetensors --outputs OUT.safetensors
//           [--device auto|host|cuda] [--decode N] [--bench ITERS]
//           [--reference] [--tolerance REL] [--threads N]
//
//===----------------------------------------------------------------------===//

#include "rotor-rt/Bundle.h"
#include "rotor-rt/Capture.h"
#include "rotor-rt/Cuda.h"
#include "rotor-rt/File.h"
#include "rotor-rt/HostCpu.h"
#include "rotor-rt/HostHeap.h"
#include "rotor-rt/LayerReference.h"
#include "rotor-rt/Reference.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>

using namespace rotor::rt;

namespace {

const char *kUsage =
    "usage: rotor-run BUNDLE --inputs IN.safetensors --outputs "
    "OUT.safetensors\n"
    "                 [--device auto|host|cuda] [--decode N] [--bench ITERS]\n"
    "                 [--reference] [--tolerance REL] [--kv-length L]\n"
    "                 [--captures CAPTURES.safetensors] [--threads N]\n"
    "Runs the bundle's prefill on hidden_states [T, hidden] (positions\n"
    "0..T-1), feeding the last N rows one token at a time with --decode N,\n"
    "and writes `output` [T, hidden]. --reference compares with the fp64\n"
    "reference and fails (exit 3) past a max relative error of --tolerance\n"
    "(default: 1e-4 when the bundle stores and computes in f32 only,\n"
    "2.5e-3 with f16, 2e-2 with bf16) or on any value that is not finite.\n"
    "--kv-length L (benchmarking only) skips prefill: every row of the inputs\n"
    "is decoded after a cache pre-filled with L tokens of random keys/values.\n"
    "--bench ITERS runs that many more times in the same session, its cache\n"
    "truncated back first, and prints the mean and the best timings; each\n"
    "run's output must equal the first's bit for bit.\n"
    "--captures writes what the bundle's attn.capture ops recorded: per tag,\n"
    "`TAG` [N, ...] (f32) and `TAG.positions` [N] (i64).\n"
    "--threads N runs the host code's parallel loops on N threads (default:\n"
    "every core this process may use); results do not depend on N.\n"
    "Outputs are written whole or not at all, and never over an input.\n";

int fail(const std::string &message, int code = 1) {
  std::fprintf(stderr, "rotor-run: %s\n", message.c_str());
  return code;
}

bool parseInt(const char *s, long &out) {
  char *end = nullptr;
  out = std::strtol(s, &end, 10);
  return end && *end == '\0' && end != s;
}

/// The tolerance --reference applies without --tolerance, from the least
/// precise float type the bundle stores (hidden states, KV cache, weights;
/// integer types are exact) or computes in (its ops' `precision`). f32
/// layers agree to about 1e-5 (the f32 tests), so 1e-4 leaves a 10x
/// margin. A 16-bit layer's error is set by the rounding of what it
/// stores or computes (unit roundoff u = 2^-8 for bf16, 2^-11 for f16):
/// the imported families without large biases measure 0.8-1.3 u
/// (bf16 3.3e-3..5.2e-3, f16 3.8e-4..6.1e-4, 16-40 tokens), so the default
/// is 5 u: 2e-2 for bf16, 2.5e-3 for f16. Layers whose keys carry
/// Qwen2.5-sized biases (std 20) measure 7-18 u in bf16 and fail it, as the
/// loss of precision that they are (test/Import/precision.test); pass
/// --tolerance to accept that.
std::pair<double, const char *> defaultTolerance(const Bundle &bundle) {
  // A quantized KV cache: the reference is the layer with an exact cache,
  // so the error is the format's. Measured on the demo checkpoint and the
  // imported families (docs/KV.md), with a 2-3x margin.
  const nlohmann::json &kv = bundle.manifest()["kv_cache"];
  if (kv.contains("format") && kv["format"].is_string()) {
    std::string format = kv["format"];
    for (auto [name, limit] : {std::pair("q8_0", 2e-2), std::pair("q4_0", 0.25),
                               std::pair("turbo4", 0.25),
                               std::pair("turbo3", 0.4)})
      if (format == name)
        return {limit, name};
  }
  bool f16 = false, bf16 = false;
  for (const EntryPoint *entry : {&bundle.prefill(), &bundle.decode()})
    for (const Slot &s : entry->arguments)
      if (s.kind != "cache_len") {
        f16 |= s.dtype == DType::F16;
        bf16 |= s.dtype == DType::BF16;
      }
  // An op computing in bf16 or f16 rounds as storing in it does (the
  // manifest's list is checked when the bundle opens).
  const nlohmann::json &manifest = bundle.manifest();
  if (manifest.contains("compute_types"))
    for (const nlohmann::json &type : manifest["compute_types"]) {
      f16 |= type == "f16";
      bf16 |= type == "bf16";
    }
  if (bf16)
    return {2e-2, "bf16"};
  if (f16)
    return {2.5e-3, "f16"};
  return {1e-4, "f32"};
}

/// Each path with what names it ("--inputs", "the bundle's").
using NamedPaths = std::vector<std::pair<std::string, std::string>>;

/// Refuses outputs that would overwrite an input (the inputs, any file of
/// the bundle, or each other): compared by device and inode where the
/// output exists, else by normalized path.
Error checkOutputs(const NamedPaths &inputs, const NamedPaths &outputs) {
  for (size_t o = 0; o < outputs.size(); ++o) {
    auto &[option, path] = outputs[o];
    std::optional<FileId> id = fileId(path);
    for (auto &[what, input] : inputs)
      if (id && id == fileId(input))
        return Error::failure(option + " " + path + " is the same file as " +
                              what + " " + input +
                              "; refusing to overwrite it");
    for (size_t other = 0; other < o; ++other)
      if (normalizedPath(path) == normalizedPath(outputs[other].second) ||
          (id && id == fileId(outputs[other].second)))
        return Error::failure(option + " " + path + " is the same file as " +
                              outputs[other].first + " " +
                              outputs[other].second);
  }
  return Error::success();
}

struct Timings {
  double prefillMs = 0, decodeMs = 0;
};

/// One prefill plus `decodeSteps` decode steps into `output`; with
/// `kvLength` >= 0, decode steps only, after a synthetic cache. A session
/// that ran before is truncated back (to no tokens, or to the synthetic
/// cache), so each run starts from the same cache in memory already
/// touched, and `output`'s bytes are reused: as an eager baseline's
/// repeated runs on its preallocated cache and outputs.
Error runOnce(const Bundle &bundle, Session &session, const Tensor &hidden,
              long decodeSteps, long kvLength, Timings &timings,
              Tensor &output) {
  using clock = std::chrono::steady_clock;
  int64_t t = hidden.shape[0], e = hidden.shape[1];
  size_t rowBytes = size_t(e) * dtypeSize(hidden.dtype);
  auto rows = [&](int64_t from, int64_t to) {
    Tensor r{hidden.dtype, {to - from, e}, {}};
    r.bytes.assign(hidden.bytes.begin() + int64_t(from * rowBytes),
                   hidden.bytes.begin() + int64_t(to * rowBytes));
    return r;
  };
  int64_t prefillTokens = t - decodeSteps;
  // Steps return the bundle's element type, whatever the input's was.
  output.dtype = bundle.hiddenDtype();
  output.shape = {0, e};
  output.bytes.clear();
  auto start = clock::now();
  if (kvLength >= 0 && session.length() > 0) {
    if (Error err = session.truncate(kvLength))
      return err;
  } else if (kvLength >= 0) {
    if (Result<int64_t> filled = session.fillSynthetic(kvLength, 1); !filled)
      return Error::failure(filled.error());
  } else {
    if (Error err = session.truncate(0))
      return err;
    Tensor prompt = rows(0, prefillTokens);
    start = clock::now();
    Error err = session.prefill(prompt, output);
    timings.prefillMs =
        std::chrono::duration<double, std::milli>(clock::now() - start).count();
    if (err)
      return err;
  }
  Tensor step;
  start = clock::now();
  for (int64_t i = prefillTokens; i < t; ++i) {
    if (Error err = session.decode(rows(i, i + 1), step))
      return err;
    output.bytes.insert(output.bytes.end(), step.bytes.begin(),
                        step.bytes.end());
  }
  if (decodeSteps)
    timings.decodeMs =
        std::chrono::duration<double, std::milli>(clock::now() - start)
            .count() /
        double(decodeSteps);
  output.shape = {t, e};
  return Error::success();
}

/// What the command line asks for.
struct Options {
  std::string bundlePath, inputsPath, outputsPath, capturesPath,
      device = "auto";
  long decodeSteps = 0, benchIters = 0, kvLength = -1, threads = 0;
  bool reference = false;
  double tolerance = -1;
};

/// Parses the command line into `o`. Returns the exit code when rotor-run
/// is done already (--help, or a wrong command line, reported), else
/// nullopt.
std::optional<int> parseOptions(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char * {
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--inputs" || a == "--outputs" || a == "--device" ||
               a == "--captures") {
      const char *v = value();
      if (!v)
        return fail(a + " needs a value\n" + kUsage, 2);
      (a == "--inputs"    ? o.inputsPath
       : a == "--outputs" ? o.outputsPath
       : a == "--device"  ? o.device
                          : o.capturesPath) = v;
    } else if (a == "--decode" || a == "--bench" || a == "--kv-length") {
      const char *v = value();
      long n;
      if (!v || !parseInt(v, n) || n < 0)
        return fail(a + " needs a count >= 0", 2);
      (a == "--decode"  ? o.decodeSteps
       : a == "--bench" ? o.benchIters
                        : o.kvLength) = n;
    } else if (a == "--threads") {
      const char *v = value();
      if (!v || !parseInt(v, o.threads) || o.threads < 1 || o.threads > 4096)
        return fail("--threads needs a count from 1 to 4096", 2);
    } else if (a == "--tolerance") {
      const char *v = value();
      char *end = nullptr;
      o.tolerance = v ? std::strtod(v, &end) : -1;
      if (!v || end == v || *end || !std::isfinite(o.tolerance) ||
          o.tolerance < 0)
        return fail("--tolerance needs a number >= 0", 2);
      o.reference = true;
    } else if (a == "--reference") {
      o.reference = true;
    } else if (!a.empty() && a[0] == '-') {
      return fail("unknown option " + a + "\n" + kUsage, 2);
    } else if (o.bundlePath.empty()) {
      o.bundlePath = a;
    } else {
      return fail("more than one bundle given\n" + std::string(kUsage), 2);
    }
  }
  if (o.bundlePath.empty() || o.inputsPath.empty() || o.outputsPath.empty())
    return fail(
        std::string("needs a bundle, --inputs and --outputs\n") + kUsage, 2);
  if (o.device != "auto" && o.device != "host" && o.device != "cuda")
    return fail("--device must be auto, host or cuda, got " + o.device, 2);
  return std::nullopt;
}

/// A bundle's entry points run where they were compiled for; --device
/// states an expectation, and auto takes the bundle's.
Error checkDevice(const Options &o, const Bundle &bundle) {
  bool cudaBundle = bundle.target() == Target::Cuda;
  if (o.device == "cuda" && !cudaBundle)
    return Error::failure("--device cuda: " + o.bundlePath +
                          " was compiled for the host (rotor-aot "
                          "--target=cuda makes a CUDA bundle)");
  if (o.device == "host" && cudaBundle)
    return Error::failure("--device host: " + o.bundlePath +
                          " was compiled for CUDA (rotor-aot --target=host "
                          "makes a host bundle)");
  return Error::success();
}

/// Refuses outputs (--outputs, --captures) that would overwrite the inputs
/// or a file of the bundle.
Error checkOutputPaths(const Options &o, const Bundle &bundle) {
  NamedPaths inputs = {{"--inputs", o.inputsPath}};
  for (const std::string &file : bundle.files())
    inputs.push_back({"the bundle's", file});
  NamedPaths outputs = {{"--outputs", o.outputsPath}};
  if (!o.capturesPath.empty())
    outputs.push_back({"--captures", o.capturesPath});
  return checkOutputs(inputs, outputs);
}

/// The inputs' hidden_states [T, hidden], checked against the bundle, and
/// their positions, if given, which must be 0..T-1.
Result<Tensor> readHiddenStates(const Options &o, const Bundle &bundle) {
  using R = Result<Tensor>;
  Result<std::map<std::string, Tensor>> inputs = readSafetensors(o.inputsPath);
  if (!inputs)
    return R::failure(inputs.error());
  auto hiddenIt = inputs->find("hidden_states");
  if (hiddenIt == inputs->end())
    return R::failure(o.inputsPath + ": no tensor 'hidden_states'");
  Tensor &hidden = hiddenIt->second;
  int64_t e = bundle.hiddenSize();
  if (hidden.shape.size() != 2 || hidden.shape[1] != e || hidden.shape[0] < 1)
    return R::failure(o.inputsPath + ": hidden_states must be [T, " +
                      std::to_string(e) + "], got " +
                      formatShape(hidden.shape));
  if (hidden.dtype != DType::F32 && hidden.dtype != DType::BF16 &&
      hidden.dtype != DType::F16)
    return R::failure(o.inputsPath +
                      ": hidden_states must be F32, BF16 or F16, got " +
                      safetensorsName(hidden.dtype));
  int64_t t = hidden.shape[0];
  if (auto pos = inputs->find("positions"); pos != inputs->end()) {
    const Tensor &p = pos->second;
    if (p.shape != std::vector<int64_t>{t} ||
        (p.dtype != DType::I32 && p.dtype != DType::I64))
      return R::failure(o.inputsPath + ": positions must be I32 or I64 [" +
                        std::to_string(t) + "]");
    for (int64_t i = 0; i < t; ++i)
      if (p.at(size_t(i)) != double(i))
        return R::failure(o.inputsPath + ": positions must be 0.." +
                          std::to_string(t - 1) +
                          ": a session starts from an empty KV cache");
  }
  return std::move(hidden);
}

/// Writes what the first run's attn.capture ops recorded to --captures:
/// per tag, `TAG` [N, ...] (f32) and `TAG.positions` [N] (i64).
Error writeCaptures(const Options &o, const Bundle &bundle,
                    const std::map<int64_t, CaptureStream> &captures) {
  const nlohmann::json &m = bundle.manifest();
  if (!m.contains("captures") || !m["captures"].is_array() ||
      m["captures"].empty())
    return Error::failure("--captures: " + o.bundlePath +
                          " records no captures");
  std::map<std::string, Tensor> out;
  for (auto &[id, stream] : captures) {
    if (id < 0 || size_t(id) >= m["captures"].size() ||
        !m["captures"][size_t(id)].is_string())
      return Error::failure("--captures: capture " + std::to_string(id) +
                            " is not in the manifest");
    if (stream.error)
      return Error::failure("--captures: " + stream.error.message());
    std::string tag = m["captures"][size_t(id)];
    int64_t rows = int64_t(stream.positions.size());
    std::vector<int64_t> shape = {rows};
    shape.insert(shape.end(), stream.rowShape.begin(), stream.rowShape.end());
    Tensor data{DType::F32, shape, {}};
    data.bytes.resize(stream.data.size() * sizeof(float));
    std::memcpy(data.bytes.data(), stream.data.data(), data.bytes.size());
    Tensor positions{DType::I64, {rows}, {}};
    positions.bytes.resize(stream.positions.size() * sizeof(int64_t));
    std::memcpy(positions.bytes.data(), stream.positions.data(),
                positions.bytes.size());
    out[tag] = std::move(data);
    out[tag + ".positions"] = std::move(positions);
  }
  return writeSafetensors(o.capturesPath, out);
}

/// What --bench measured: the mean and the best (least) of each timing.
struct BenchTimings {
  Timings mean, best;
};

/// --bench: the timings of that many more runs in `session` (the first
/// run's), each of whose outputs must equal the first run's bit for bit
/// (later runs get memory the earlier ones used, so code that read what it
/// had not written, or depended on timing, would differ).
Result<BenchTimings> benchmark(const Options &o, const Bundle &bundle,
                               Session &session, const Tensor &hidden,
                               const Tensor &first) {
  using R = Result<BenchTimings>;
  BenchTimings bench;
  Timings &total = bench.mean;
  Tensor again;
  for (long i = 0; i < o.benchIters; ++i) {
    Timings one;
    if (Error err = runOnce(bundle, session, hidden, o.decodeSteps, o.kvLength,
                            one, again))
      return err;
    if (again.bytes != first.bytes)
      return R::failure(
          "--bench: run " + std::to_string(i + 2) + " of " + o.bundlePath +
          " gave a different output from the first run's (the code reads "
          "memory it did not write, or is not deterministic)");
    total.prefillMs += one.prefillMs;
    total.decodeMs += one.decodeMs;
    bench.best.prefillMs =
        i == 0 ? one.prefillMs : std::min(bench.best.prefillMs, one.prefillMs);
    bench.best.decodeMs =
        i == 0 ? one.decodeMs : std::min(bench.best.decodeMs, one.decodeMs);
  }
  total.prefillMs /= double(o.benchIters);
  total.decodeMs /= double(o.benchIters);
  return bench;
}

/// "KV cache: N bytes per token (FORMAT, ...)": both caches' rows, scales
/// included, from the entry point's cache arguments.
std::string kvCacheLine(const Bundle &bundle) {
  int64_t bytes = 0;
  for (const Slot *s : {&bundle.kCacheSlot(), &bundle.prefill().arguments[3]})
    bytes += s->shape[1] * s->shape[2] * int64_t(dtypeSize(s->dtype));
  const nlohmann::json &kv = bundle.manifest()["kv_cache"];
  std::string format = kv.contains("format") && kv["format"].is_string()
                           ? kv["format"].get<std::string>()
                           : std::string(mlirName(bundle.kCacheSlot().dtype));
  return "KV cache: " + std::to_string(bytes) + " bytes per token (" + format +
         ", K and V, scales included)";
}

/// The summary line: where it ran, what and how long.
void printSummary(const Options &o, const std::string &deviceLine, int64_t t,
                  const Timings &timings, const Timings &best) {
  std::printf("rotor-run: device %s", deviceLine.c_str());
  if (o.kvLength >= 0)
    std::printf(", synthetic KV cache of %ld tokens", o.kvLength);
  else
    std::printf(", prefill %lld tokens %.3f ms", (long long)(t - o.decodeSteps),
                timings.prefillMs);
  if (o.decodeSteps)
    std::printf(", %ld decode steps %.3f ms/step", o.decodeSteps,
                timings.decodeMs);
  if (o.benchIters) {
    std::printf(" (mean of %ld runs; best", o.benchIters);
    if (o.kvLength < 0)
      std::printf(" prefill %.3f ms", best.prefillMs);
    if (o.decodeSteps)
      std::printf("%s decode %.3f ms/step", o.kvLength < 0 ? "," : "",
                  best.decodeMs);
    std::printf(")");
  }
  std::printf("\n");
}

/// --reference: compares `output` with the fp64 reference of the layer the
/// manifest describes. Returns the exit code: 0 within the tolerance, 3
/// past it or on values that are not finite, 1 when there is no reference.
int compareWithReference(const Options &o, const Bundle &bundle,
                         const Tensor &hidden, const Tensor &output) {
  Result<std::vector<double>> expected = referenceLayer(bundle, hidden);
  if (!expected)
    return fail(expected.error());
  rotor::reference::Agreement a =
      rotor::reference::compare(output.toDoubles(), *expected);
  auto [limit, precision] = defaultTolerance(bundle);
  std::string source = "--tolerance";
  if (o.tolerance >= 0)
    limit = o.tolerance;
  else
    source = std::string("the default for ") + precision +
             " bundles; --tolerance sets another";
  std::printf("rotor-run: reference PCC %.9f, max relative error %.3e, "
              "tolerance %g (%s)\n",
              a.pcc, a.maxRelError, limit, source.c_str());
  if (a.nonFiniteActual)
    return fail(
        std::to_string(a.nonFiniteActual) + " output values are not finite", 3);
  if (a.nonFiniteExpected)
    return fail(std::to_string(a.nonFiniteExpected) +
                    " values of the fp64 reference are not finite (from "
                    "the manifest's layer description or the inputs)",
                3);
  if (!a.finite())
    return fail("the comparison with the reference overflowed (PCC " +
                    std::to_string(a.pcc) + ")",
                3);
  char message[128];
  std::snprintf(message, sizeof(message),
                "max relative error %.3e exceeds the tolerance %g",
                a.maxRelError, limit);
  if (!(a.maxRelError <= limit))
    return fail(message + (" (" + source + ")"), 3);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  // A file size limit then fails the write (EFBIG), which is reported with
  // the old output kept, instead of killing the process mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  Options o;
  if (std::optional<int> exitCode = parseOptions(argc, argv, o))
    return *exitCode;

  Result<std::unique_ptr<Bundle>> opened = Bundle::open(o.bundlePath);
  if (!opened)
    return fail(opened.error());
  const Bundle &bundle = **opened;
  if (Error err = checkDevice(o, bundle))
    return fail(err.message());
  int threads = o.threads > 0 ? int(o.threads) : availableCores();
  // A CUDA bundle's host code only launches kernels: it has no threads.
  if (bundle.target() == Target::Host && !bundle.setThreads(threads))
    return fail(o.bundlePath + ": host.so has no rotor_set_num_threads: "
                "recompile the bundle with this rotor-aot");
  if (Error err = checkOutputPaths(o, bundle))
    return fail(err.message(), 2);
  // Before the first run: the modules are loaded and counted by then.
  std::string deviceLine = bundle.target() == Target::Cuda
                               ? "cuda (" + rotor::rt::cuda::deviceName() +
                                     "; " + rotor::rt::cuda::moduleSummary() +
                                     ")"
                               : "host (" + std::to_string(threads) +
                                     (threads == 1 ? " thread)" : " threads)");
  Result<Tensor> hidden = readHiddenStates(o, bundle);
  if (!hidden)
    return fail(hidden.error());
  int64_t t = hidden->shape[0];
  if (o.kvLength >= 0) {
    if (o.reference)
      return fail("--kv-length decodes after a synthetic cache, which has no "
                  "reference",
                  2);
    o.decodeSteps = t;
  } else if (o.decodeSteps >= t)
    return fail("--decode " + std::to_string(o.decodeSteps) +
                " leaves no token for prefill of the " + std::to_string(t) +
                " given");

  Timings timings, best;
  Session session(bundle);
  Tensor output;
  if (Error err = runOnce(bundle, session, *hidden, o.decodeSteps, o.kvLength,
                          timings, output))
    return fail(err.message());
  // What the first run recorded; later (benchmark) runs record again.
  std::map<int64_t, CaptureStream> captures = takeCaptures();
  if (!o.capturesPath.empty())
    if (Error err = writeCaptures(o, bundle, captures))
      return fail(err.message());
  if (o.benchIters > 0) {
    Result<BenchTimings> bench = benchmark(o, bundle, session, *hidden, output);
    if (!bench)
      return fail(bench.error());
    timings = bench->mean;
    best = bench->best;
  }
  printSummary(o, deviceLine, t, timings, best);
  std::printf("rotor-run: %s\n", kvCacheLine(bundle).c_str());
  // How well the host code's buffers were kept between the runs.
  if (o.benchIters > 0 && bundle.target() == Target::Host) {
    const BlockCache &heap = hostHeapBlocks();
    if (!hostHeapCaches())
      std::printf("rotor-run: host buffers: not kept between calls "
                  "(ROTOR_NO_HOST_HEAP_CACHE)\n");
    else
      std::printf("rotor-run: host buffers: %zu of %zu allocations of 64 KiB "
                "or more reused, %.1f MiB kept\n",
                heap.reusedBlocks(), heap.reusedBlocks() + heap.freshBlocks(),
                double(heap.cachedBytes()) / double(1 << 20));
  }

  std::map<std::string, Tensor> outputs;
  outputs["output"] = output.convert(DType::F32);
  if (Error err = writeSafetensors(o.outputsPath, outputs))
    return fail(err.message());
  if (o.reference)
    return compareWithReference(o, bundle, *hidden, output);
  return 0;
}
