//===- HostCpu.h - The CPU a bundle's host code needs -----------*- C++ -*-===//

#ifndef ROTOR_RT_HOSTCPU_H
#define ROTOR_RT_HOSTCPU_H

#include "rotor-rt/Error.h"

#include <string>

#include <nlohmann/json.hpp>

namespace rotor::rt {

/// Checks that this CPU has every instruction-set extension the manifest's
/// `host_cpu.features` records; the error names the one it lacks, or one
/// this runtime cannot check.
Error checkHostCpu(const nlohmann::json &manifest,
                   const std::string &manifestPath);

/// 1 if this CPU and OS support the instruction-set extension `name` (one of
/// the names rotor-aot records, e.g. "avx2"), 0 if not, -1 if `name` is not
/// one this runtime can check. ROTOR_HOST_CPU_DISABLE is not applied here.
int hostCpuHas(const std::string &name);

/// The cores this process may run on (its affinity mask).
int availableCores();

} // namespace rotor::rt

#endif // ROTOR_RT_HOSTCPU_H
