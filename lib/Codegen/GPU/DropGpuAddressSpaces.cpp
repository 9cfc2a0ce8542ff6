//===- DropGpuAddressSpaces.cpp - Workgroup buffers as plain host memory --===//
//
// Workgroup kernels allocate their buffers in #gpu.address_space<workgroup>
// (Codegen/Kernels), which the GPU mapping turns into workgroup
// attributions. Where the kernels run on the host as loops (the host
// pipeline), those buffers are ordinary stack memory: the address space is
// dropped from every memref type before the LLVM lowering, which knows no
// GPU address spaces.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/AttrTypeSubElements.h"

namespace rotor {
#define GEN_PASS_DEF_DROPGPUADDRESSSPACES
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

struct DropGpuAddressSpacesPass
    : rotor::impl::DropGpuAddressSpacesBase<DropGpuAddressSpacesPass> {
  void runOnOperation() override {
    AttrTypeReplacer replacer;
    replacer.addReplacement([](MemRefType type) -> std::optional<Type> {
      if (!isa_and_nonnull<gpu::AddressSpaceAttr>(type.getMemorySpace()))
        return std::nullopt;
      return MemRefType::get(type.getShape(), type.getElementType(),
                             type.getLayout());
    });
    getOperation()->walk([&](Operation *op) {
      if (isa<gpu::LaunchOp, gpu::GPUModuleOp>(op)) {
        op->emitOpError("is GPU code: the host cannot drop its address "
                        "spaces (run the GPU or emulation pipeline)");
        signalPassFailure();
        return WalkResult::interrupt();
      }
      replacer.replaceElementsIn(op, /*replaceAttrs=*/true,
                                 /*replaceLocs=*/false, /*replaceTypes=*/true);
      return WalkResult::advance();
    });
  }
};

} // namespace
