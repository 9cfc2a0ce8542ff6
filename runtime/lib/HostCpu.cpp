//===- HostCpu.cpp - Check the CPU a bundle was compiled for -------------===//
//
// rotor-aot compiles host code for the x86-64 baseline plus the
// instruction-set extensions it records in the manifest ("host_cpu"); an
// instruction outside them would be SIGILL at some call, so the runtime
// checks every recorded extension before it loads host.so.
//
//===----------------------------------------------------------------------===//

#include "rotor-rt/HostCpu.h"

#include <cstdlib>
#include <sstream>
#include <thread>
#if defined(__linux__)
#include <sched.h>
#endif

namespace rotor::rt {
namespace {

#if defined(__x86_64__) || defined(__i386__)
/// The extensions rotor-aot may use (lib/Target/Bundle/HostLibrary.cpp has
/// the same list) and whether this CPU has each. __builtin_cpu_supports
/// takes only literals, hence one line per name.
int cpuHas(const std::string &f) {
  __builtin_cpu_init();
#define ROTOR_FEATURE(name)                                                    \
  if (f == name)                                                               \
    return __builtin_cpu_supports(name) ? 1 : 0;
  ROTOR_FEATURE("sse3") ROTOR_FEATURE("ssse3") ROTOR_FEATURE("sse4.1")
  ROTOR_FEATURE("sse4.2") ROTOR_FEATURE("popcnt") ROTOR_FEATURE("cx16")
  ROTOR_FEATURE("avx") ROTOR_FEATURE("avx2") ROTOR_FEATURE("fma")
  ROTOR_FEATURE("f16c") ROTOR_FEATURE("bmi") ROTOR_FEATURE("bmi2")
  ROTOR_FEATURE("lzcnt") ROTOR_FEATURE("movbe") ROTOR_FEATURE("avx512f")
  ROTOR_FEATURE("avx512bw") ROTOR_FEATURE("avx512dq") ROTOR_FEATURE("avx512vl")
  ROTOR_FEATURE("avx512cd") ROTOR_FEATURE("avx512bf16")
  ROTOR_FEATURE("avx512fp16") ROTOR_FEATURE("avx512vnni")
  ROTOR_FEATURE("avxvnni")
#undef ROTOR_FEATURE
  return -1;
}
#else
int cpuHas(const std::string &) { return -1; }
#endif

/// Whether ROTOR_HOST_CPU_DISABLE (a comma-separated list of the names
/// above) masks `f`: the runtime then treats this CPU as lacking it, as
/// oneDNN's ONEDNN_MAX_CPU_ISA does, to see how a bundle fares on an older
/// CPU (and to test the refusal on a CPU that has every extension).
bool maskedByEnvironment(const std::string &f) {
  const char *list = std::getenv("ROTOR_HOST_CPU_DISABLE");
  if (!list)
    return false;
  std::stringstream names(list);
  std::string name;
  while (std::getline(names, name, ',')) {
    // "avx2, fma" names fma too.
    size_t first = name.find_first_not_of(" \t");
    size_t last = name.find_last_not_of(" \t");
    if (first != std::string::npos &&
        name.substr(first, last - first + 1) == f)
      return true;
  }
  return false;
}

} // namespace

Error checkHostCpu(const nlohmann::json &m, const std::string &manifestPath) {
  auto bad = [&](const std::string &what) {
    return Error::failure(manifestPath + ": " + what);
  };
  if (!m.contains("host_cpu") || !m["host_cpu"].is_object())
    return bad("no host_cpu (the CPU extensions the host code uses): "
               "recompile the bundle with this rotor-aot");
  const nlohmann::json &cpu = m["host_cpu"];
  if (!cpu.contains("name") || !cpu["name"].is_string() ||
      !cpu.contains("features") || !cpu["features"].is_array())
    return bad("host_cpu needs a name and a list of features");
  std::string name = cpu["name"];
  for (const nlohmann::json &f : cpu["features"]) {
    if (!f.is_string())
      return bad("host_cpu.features must be strings");
    int has = cpuHas(f.get<std::string>());
    if (has < 0)
      return bad("host_cpu.features names '" + f.get<std::string>() +
                 "', which this runtime cannot check on this CPU; refusing "
                 "to load code that may use it");
    bool masked = has == 1 && maskedByEnvironment(f.get<std::string>());
    if (has == 0 || masked)
      return Error::failure(
          manifestPath + ": the host code was compiled for " + name +
          " and uses " + f.get<std::string>() + ", which this CPU lacks" +
          (masked ? " (masked by ROTOR_HOST_CPU_DISABLE)" : "") +
          ": rebuild the bundle here (rotor-aot --host-cpu=native) or for "
          "an older CPU (--host-cpu=x86-64-v2)");
  }
  return Error::success();
}

int availableCores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? int(n) : 1;
}

} // namespace rotor::rt
