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
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace rotor::rt {

#if defined(__x86_64__) || defined(__i386__)
namespace {

/// Where CPUID reports one extension: leaf, subleaf, register, bit.
struct CpuidBit {
  const char *name;
  unsigned leaf, subleaf, reg /*0 eax .. 3 edx*/, bit;
  bool needsAvxState, needsAvx512State;
  /// AMX's tile state, which Linux also makes each process ask for.
  bool needsAmxState = false;
};

/// The extensions rotor-aot may use (lib/Target/Bundle/HostLibrary.cpp has
/// the same list), read from CPUID itself rather than with
/// __builtin_cpu_supports: GCC 12 and 13 reject "cx16" at compile time, and
/// the runtime must build with the GPU machines' GCC as well as with clang.
constexpr CpuidBit kCpuidBits[] = {
    {"sse3", 1, 0, 2, 0, false, false},
    {"ssse3", 1, 0, 2, 9, false, false},
    {"fma", 1, 0, 2, 12, true, false},
    {"cx16", 1, 0, 2, 13, false, false},
    {"sse4.1", 1, 0, 2, 19, false, false},
    {"sse4.2", 1, 0, 2, 20, false, false},
    {"movbe", 1, 0, 2, 22, false, false},
    {"popcnt", 1, 0, 2, 23, false, false},
    {"avx", 1, 0, 2, 28, true, false},
    {"f16c", 1, 0, 2, 29, true, false},
    {"bmi", 7, 0, 1, 3, false, false},
    {"avx2", 7, 0, 1, 5, true, false},
    {"bmi2", 7, 0, 1, 8, false, false},
    {"avx512f", 7, 0, 1, 16, true, true},
    {"avx512dq", 7, 0, 1, 17, true, true},
    {"avx512cd", 7, 0, 1, 28, true, true},
    {"avx512bw", 7, 0, 1, 30, true, true},
    {"avx512vl", 7, 0, 1, 31, true, true},
    {"avx512vnni", 7, 0, 2, 11, true, true},
    {"avx512fp16", 7, 0, 3, 23, true, true},
    {"avxvnni", 7, 1, 0, 4, true, false},
    {"avx512bf16", 7, 1, 0, 5, true, true},
    {"amx-bf16", 7, 0, 3, 22, false, false, true},
    {"amx-tile", 7, 0, 3, 24, false, false, true},
    {"lzcnt", 0x80000001u, 0, 2, 5, false, false},
};

/// XCR0, the state components the OS saves across context switches (0
/// where the OS has not enabled XSAVE: then none of the AVX, AVX-512 or AMX
/// instructions may run, even where CPUID lists them).
unsigned osSavedComponents() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27)))
    return 0;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return lo;
}

/// Whether the OS saves the AVX (XMM+YMM) and AVX-512 (opmask, ZMM) state.
void osSavedState(bool &avx, bool &avx512) {
  unsigned xcr0 = osSavedComponents();
  avx = (xcr0 & 0x6) == 0x6;
  avx512 = avx && (xcr0 & 0xe0) == 0xe0;
}

/// Whether this process may use AMX tiles: the OS saves the tile state
/// (XCR0's XTILECFG and XTILEDATA) and, on Linux, grants this process the
/// tile data's state (arch_prctl ARCH_REQ_XCOMP_PERM, once per process;
/// without it the first tile instruction is SIGILL).
bool amxStateGranted() {
  if ((osSavedComponents() & 0x60000) != 0x60000)
    return false;
#if defined(__linux__)
  constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  static const bool granted =
      syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  return granted;
#else
  return false;
#endif
}

} // namespace

int hostCpuHas(const std::string &f) {
  for (const CpuidBit &b : kCpuidBits) {
    if (f != b.name)
      continue;
    unsigned r[4] = {0, 0, 0, 0};
    if (!__get_cpuid_count(b.leaf, b.subleaf, &r[0], &r[1], &r[2], &r[3]))
      return 0;
    if (!(r[b.reg] & (1u << b.bit)))
      return 0;
    bool avx, avx512;
    osSavedState(avx, avx512);
    if ((b.needsAvxState && !avx) || (b.needsAvx512State && !avx512))
      return 0;
    if (b.needsAmxState && !amxStateGranted())
      return 0;
    return 1;
  }
  return -1;
}
#else
int hostCpuHas(const std::string &) { return -1; }
#endif

namespace {

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
    int has = hostCpuHas(f.get<std::string>());
    if (has < 0)
      return bad("host_cpu.features names '" + f.get<std::string>() +
                 "', which this runtime cannot check on this CPU; refusing "
                 "to load code that may use it");
    bool masked = has == 1 && maskedByEnvironment(f.get<std::string>());
    if (has == 0 || masked)
      return Error::failure(
          manifestPath + ": the host code was compiled for " + name +
          " and uses " + f.get<std::string>() + ", which this CPU lacks" +
          (f.get<std::string>().rfind("amx", 0) == 0
               ? " or the OS does not let this process use"
               : "") +
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
