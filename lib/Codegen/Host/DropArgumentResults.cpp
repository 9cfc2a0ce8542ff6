//===- DropArgumentResults.cpp - Results that are arguments go ------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/BitVector.h"

namespace rotor {
#define GEN_PASS_DEF_DROPARGUMENTRESULTS
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

struct DropArgumentResultsPass
    : rotor::impl::DropArgumentResultsBase<DropArgumentResultsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (auto func : module.getOps<func::FuncOp>()) {
      if (func.isExternal() || !func.isPublic() ||
          !func.getBody().hasOneBlock())
        continue;
      if (SymbolTable::symbolKnownUseEmpty(func, module) == false)
        continue; // Called from inside the module: keep its signature.
      auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
      llvm::BitVector drop(ret.getNumOperands());
      for (auto [i, value] : llvm::enumerate(ret.getOperands()))
        if (auto arg = dyn_cast<BlockArgument>(value))
          drop[i] = arg.getOwner() == &func.getBody().front() &&
                    isa<BaseMemRefType>(arg.getType());
      if (drop.none())
        continue;
      ret->eraseOperands(drop);
      if (failed(func.eraseResults(drop)))
        return signalPassFailure();
    }
  }
};

} // namespace
