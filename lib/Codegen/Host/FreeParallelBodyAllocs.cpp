//===- FreeParallelBodyAllocs.cpp - No heap buffer outlives its iteration -===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

namespace rotor {
#define GEN_PASS_DEF_FREEPARALLELBODYALLOCS
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

struct FreeParallelBodyAllocsPass
    : rotor::impl::FreeParallelBodyAllocsBase<FreeParallelBodyAllocsPass> {
  void runOnOperation() override {
    getOperation()->walk([&](scf::ForallOp forall) {
      // Bufferized: the loop carries no tensors, so nothing leaves an
      // iteration but what it stores.
      if (forall.getNumResults() != 0)
        return;
      Block *body = forall.getBody();
      OpBuilder builder(body->getTerminator());
      for (auto alloc : llvm::make_early_inc_range(body->getOps<memref::AllocOp>())) {
        bool freed = llvm::any_of(alloc->getUsers(), [](Operation *user) {
          return isa<memref::DeallocOp, bufferization::DeallocOp>(user);
        });
        if (!freed)
          memref::DeallocOp::create(builder, alloc.getLoc(), alloc.getResult());
      }
    });
  }
};

} // namespace
