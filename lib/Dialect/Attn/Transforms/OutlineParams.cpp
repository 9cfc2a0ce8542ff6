//===- OutlineParams.cpp - attn.param ops become function arguments -------===//

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

namespace rotor::attn {
#define GEN_PASS_DEF_ATTNOUTLINEPARAMS
#include "rotor/Dialect/Attn/Transforms/Passes.h.inc"
} // namespace rotor::attn

using namespace mlir;
using namespace rotor::attn;

namespace {

/// Adds one argument per distinct parameter of `func` and replaces the
/// params with it.
LogicalResult outlineParams(func::FuncOp func) {
  llvm::MapVector<StringRef, SmallVector<ParamOp>> byName;
  func.walk([&](ParamOp op) { byName[op.getName()].push_back(op); });
  if (byName.empty())
    return success();
  if (func.isPrivate())
    return func.emitOpError()
           << "is private but reads parameter '" << byName.front().first
           << "'; only public entry points can receive weights";

  Builder builder(func.getContext());
  for (auto &[name, ops] : byName) {
    Type type = ops.front().getType();
    for (ParamOp op : ops)
      if (op.getType() != type)
        return op.emitOpError()
               << "reads parameter '" << name << "' as " << op.getType()
               << " but another attn.param reads it as " << type;
    unsigned index = func.getNumArguments();
    // Weights are read-only at the function boundary: the runtime passes
    // the bundle's own buffer, which every later call reads again, so
    // bufferization must copy before it writes (e.g. a projection that
    // accumulates onto its bias).
    if (failed(func.insertArgument(
            index, type,
            builder.getDictionaryAttr(
                {builder.getNamedAttr("attn.param", builder.getStringAttr(name)),
                 builder.getNamedAttr(
                     bufferization::BufferizationDialect::kWritableAttrName,
                     builder.getBoolAttr(false))}),
            ops.front().getLoc())))
      return failure();
    for (ParamOp op : ops) {
      op.replaceAllUsesWith(func.getArgument(index));
      op.erase();
    }
  }
  return success();
}

struct AttnOutlineParamsPass
    : rotor::attn::impl::AttnOutlineParamsBase<AttnOutlineParamsPass> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (failed(outlineParams(func)))
        return signalPassFailure();
  }
};

} // namespace
