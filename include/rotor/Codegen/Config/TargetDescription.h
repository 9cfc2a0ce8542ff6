//===- TargetDescription.h - The facts kernel choices rest on ---*- C++ -*-===//
//
// One description of the GPU that kernels are configured for, instead of
// constants scattered through the kernel builders (IREE's TargetWgpAttr
// plays this role). The host runs the GPU's kernels only to check their
// arithmetic, so it is configured as the default chip.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_CODEGEN_CONFIG_TARGETDESCRIPTION_H
#define ROTOR_CODEGEN_CONFIG_TARGETDESCRIPTION_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace rotor {

struct TargetDescription {
  /// The NVVM chip, e.g. sm_90.
  std::string chip = "sm_90";
  /// Streaming multiprocessors of the chip's reference part (H100/H200:
  /// 132).
  int64_t smCount = 132;
  /// Static shared memory a workgroup's buffers may use (48 KiB on every
  /// chip without opting in to more), which bounds every kernel's tiles.
  int64_t workgroupMemoryBytes = 48 * 1024;
  /// Threads per workgroup of the kernels whose phases are strided loops
  /// (SDPA, head chains); the GPU mapping's block size.
  int64_t threadsPerWorkgroup = 128;

  /// Workgroups a kernel aims at so that every SM has work: two waves,
  /// rounded down to a power of two (256 on an H100).
  int64_t targetWorkgroups() const;

  /// The description of `chip` (sm_NN[a|f]): the SM count of its reference
  /// part (sm_80 A100 108, sm_86 A10 72, sm_89 L40S 142, sm_90 H100 132,
  /// sm_100 B200 148, sm_120 RTX PRO 6000 188); an unlisted chip takes the
  /// nearest older listed one's, a chip older than sm_80 sm_80's.
  static TargetDescription forChip(llvm::StringRef chip);
};

} // namespace rotor

#endif // ROTOR_CODEGEN_CONFIG_TARGETDESCRIPTION_H
