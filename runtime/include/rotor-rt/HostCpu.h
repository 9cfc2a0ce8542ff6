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

/// The cores this process may run on (its affinity mask).
int availableCores();

} // namespace rotor::rt

#endif // ROTOR_RT_HOSTCPU_H
