//===- MarkHostDeviceMemoryAccess.cpp - Does host code read GPU data? -----===//
//
// The host code of a GPU bundle waits for each launch before it goes on
// (MLIR's synchronous gpu.launch_func). The wait matters only if host code
// then reads or writes memory the kernels use; with one in-order stream,
// launches and frees are ordered anyway. This pass records, on the module,
// whether any host function touches memory other than through GPU ops, so
// that the runtime may skip the per-launch waits where none does.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace rotor {
#define GEN_PASS_DEF_MARKHOSTDEVICEMEMORYACCESS
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

/// Whether `op`, run on the host, may read or write buffer contents.
bool touchesMemory(Operation *op) {
  if (isa<gpu::GPUDialect>(op->getDialect()))
    return false; // launches, waits, allocs, copies: the runtime orders them
  if (op->hasTrait<OpTrait::IsTerminator>() || op->getNumRegions() != 0)
    return false; // control flow: its body ops are checked themselves
  auto effects = dyn_cast<MemoryEffectOpInterface>(op);
  if (!effects)
    return !op->hasTrait<OpTrait::HasRecursiveMemoryEffects>() && !isPure(op);
  SmallVector<MemoryEffects::EffectInstance> list;
  effects.getEffects(list);
  return llvm::any_of(list, [](const MemoryEffects::EffectInstance &e) {
    return isa<MemoryEffects::Read, MemoryEffects::Write>(e.getEffect());
  });
}

struct MarkHostDeviceMemoryAccessPass
    : rotor::impl::MarkHostDeviceMemoryAccessBase<
          MarkHostDeviceMemoryAccessPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    Operation *first = nullptr;
    for (auto func : module.getOps<func::FuncOp>()) {
      func.walk([&](Operation *op) {
        if (!first && touchesMemory(op))
          first = op;
      });
    }
    module->setAttr("rotor.host_reads_device_memory",
                    BoolAttr::get(&getContext(), first != nullptr));
  }
};

} // namespace
