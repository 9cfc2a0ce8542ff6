//===- Cuda.h - The CUDA driver, loaded at run time -------------*- C++ -*-===//
//
// The runtime never links libcuda: it dlopens libcuda.so.1 when a CUDA
// bundle runs, so rotor-run builds and runs where there is no driver. The
// host code of a CUDA bundle calls the mgpu* entry points (MLIR's GPU
// runtime ABI), which rotor-run exports and implements here.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_RT_CUDA_H
#define ROTOR_RT_CUDA_H

#include <cstddef>
#include <string>

namespace rotor::rt::cuda {

/// Loads the driver and makes the first GPU's primary context current.
/// Returns "" on success, else a one-line reason (no driver, no GPU, ...).
std::string initialize();

/// Whether initialize() succeeded.
bool available();

/// Managed memory, visible to kernels and to the host.
void *allocManaged(size_t bytes);
void freeManaged(void *ptr);

/// Waits for all work; returns "" or the first error any driver call or
/// kernel reported since the last call (and clears it).
std::string synchronizeAndTakeError();

/// The device's name, for the summary line.
std::string deviceName();

} // namespace rotor::rt::cuda

#endif // ROTOR_RT_CUDA_H
