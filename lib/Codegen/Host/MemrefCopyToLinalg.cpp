//===- MemrefCopyToLinalg.cpp - memref.copy as linalg.copy ----------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"

namespace rotor {
#define GEN_PASS_DEF_MEMREFCOPYTOLINALG
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

struct MemrefCopyToLinalgPass
    : rotor::impl::MemrefCopyToLinalgBase<MemrefCopyToLinalgPass> {
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    getOperation()->walk([&](memref::CopyOp copy) {
      rewriter.setInsertionPoint(copy);
      linalg::CopyOp::create(rewriter, copy.getLoc(), copy.getSource(),
                             copy.getTarget());
      rewriter.eraseOp(copy);
    });
  }
};

} // namespace
