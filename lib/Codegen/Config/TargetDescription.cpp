//===- TargetDescription.cpp - The facts kernel choices rest on -----------===//

#include "rotor/Codegen/Config/TargetDescription.h"

#include "llvm/ADT/bit.h"


using namespace rotor;

int64_t TargetDescription::targetWorkgroups() const {
  return int64_t(llvm::bit_floor(uint64_t(2 * smCount)));
}

TargetDescription TargetDescription::forChip(llvm::StringRef chip) {
  struct Part {
    int arch;
    int64_t sms;
  };
  // Ascending by arch.
  static constexpr Part parts[] = {{80, 108}, {86, 72},   {89, 142},
                                   {90, 132}, {100, 148}, {120, 188}};
  TargetDescription target;
  target.chip = chip.str();
  int arch = 0;
  llvm::StringRef digits = chip.drop_front(3).take_while(
      [](char c) { return c >= '0' && c <= '9'; });
  if (!chip.starts_with("sm_") || digits.getAsInteger(10, arch))
    return target;
  // The last listed part not newer than the chip; the oldest otherwise.
  target.smCount = parts[0].sms;
  for (const Part &p : parts)
    if (p.arch <= arch)
      target.smCount = p.sms;
  return target;
}
