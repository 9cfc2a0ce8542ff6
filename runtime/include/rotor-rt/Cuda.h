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

#include "rotor-rt/Error.h"

#include <cstddef>
#include <string>

namespace rotor::rt::cuda {

/// Loads the driver and makes the first GPU's primary context current.
/// A failure says why in one line (no driver, no GPU, an entry point
/// missing from the driver, ...).
Error initialize();

/// Whether initialize() succeeded.
bool available();

/// Where the blocks kernels use live: device memory (cuMemAlloc) when the
/// bundle's host code never reads or writes them (its manifest says so),
/// else managed memory, which the host code can touch. Set when a bundle
/// opens, before its weights are uploaded; fails when an earlier bundle of
/// this process chose the other kind.
Error setDeviceMemory(bool device);

/// A block kernels use, of the kind set; freed with freeBlock.
void *allocBlock(size_t bytes);
void freeBlock(void *ptr);

/// Copies between or zeroes blocks and host memory through the driver, so
/// that the host never touches device memory; both are ordered after the
/// queued kernels and before later ones. They return once the host's side
/// is done (a copy to the host has landed); errors are reported by
/// takeError, or for device-side work by synchronizeAndTakeError.
void copy(void *dst, const void *src, size_t bytes);
void zero(void *dst, size_t bytes);

/// Whether mgpuStreamSynchronize must wait: yes (the default) unless the
/// bundle's manifest says its host code never reads or writes memory the
/// kernels use. Then launches only queue on the one stream, and the runtime
/// waits once when an entry point returns.
void setWaitAfterLaunches(bool wait);

/// Blocks that are reused across calls once freed: the host code's
/// temporaries (mgpuMemAlloc/mgpuMemFree), and the inputs and results the
/// runtime passes each call. freeTemporary takes any block; one
/// allocTemporary did not make is freed at once.
void *allocTemporary(size_t bytes);
void freeTemporary(void *ptr);

/// Waits for all work; returns the first error any driver call or kernel
/// reported since the last call (and clears it).
Error synchronizeAndTakeError();
/// The same without waiting: what the calls so far reported (after the
/// synchronous copies, all of theirs).
Error takeError();

/// The device's name, for the summary line.
std::string deviceName();

/// Makes the kernel module whose PTX is `ptx` load from `cubin` (ptxas's
/// output for the bundle's chip) instead of being JIT-compiled. When the
/// driver rejects the cubin (another GPU architecture), the PTX is
/// JIT-compiled after all and a note says why. Call before the bundle's
/// host library is loaded: its constructors load the modules.
void registerCubin(const std::string &ptx, std::string cubin,
                   std::string name);

/// How the kernel modules were loaded, e.g. "12 kernel modules from
/// cubin", plus any fallback notes.
std::string moduleSummary();

} // namespace rotor::rt::cuda

#endif // ROTOR_RT_CUDA_H
