//===- CheckParamsReadOnly.cpp - No code writes a weight ------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace rotor {
#define GEN_PASS_DEF_CHECKPARAMSREADONLY
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

/// Whether `op` may write or free `value`, or has effects it does not state.
bool mayWriteOrFree(Operation *op, Value value) {
  // memref.prefetch declares a write of its memref (so that it stays
  // ordered with the buffer's other accesses and is not erased as dead);
  // a read prefetch (of a packed projection's next panel) changes no
  // value, only what is in cache.
  if (auto prefetch = dyn_cast<memref::PrefetchOp>(op))
    return prefetch.getIsWrite();
  auto effects = dyn_cast<MemoryEffectOpInterface>(op);
  if (!effects)
    return !op->hasTrait<OpTrait::HasRecursiveMemoryEffects>();
  SmallVector<MemoryEffects::EffectInstance> list;
  effects.getEffects(list);
  return llvm::any_of(list, [&](const MemoryEffects::EffectInstance &e) {
    if (!isa<MemoryEffects::Write, MemoryEffects::Free>(e.getEffect()))
      return false;
    // An effect on no particular value may touch any memory.
    return !e.getValue() || e.getValue() == value;
  });
}

/// Checks every use of `param` (the argument named `name`) and of its
/// views.
LogicalResult checkParam(Value param, StringRef name) {
  SmallVector<Value> worklist = {param};
  DenseSet<Value> seen;
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    if (!seen.insert(value).second)
      continue;
    for (OpOperand &use : value.getUses()) {
      Operation *user = use.getOwner();
      if (auto view = dyn_cast<ViewLikeOpInterface>(user)) {
        if (view.getViewSource() == value) {
          worklist.push_back(view->getResult(0));
          continue;
        }
      }
      if (isa<func::ReturnOp>(user) || !mayWriteOrFree(user, value))
        continue;
      return user->emitError()
             << "may write parameter '" << name
             << "', which is read-only: every call reads the bundle's one "
                "copy of each weight";
    }
  }
  return success();
}

struct CheckParamsReadOnlyPass
    : rotor::impl::CheckParamsReadOnlyBase<CheckParamsReadOnlyPass> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      for (BlockArgument arg : func.getArguments()) {
        auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                      "attn.param");
        if (!name || !isa<BaseMemRefType>(arg.getType()))
          continue;
        if (failed(checkParam(arg, name.getValue())))
          return signalPassFailure();
      }
    }
  }
};

} // namespace
