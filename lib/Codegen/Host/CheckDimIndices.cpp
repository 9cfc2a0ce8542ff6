//===- CheckDimIndices.cpp - Input checks before upstream passes ----------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace rotor {
#define GEN_PASS_DEF_CHECKDIMINDICES
#define GEN_PASS_DEF_CHECKSLICESTRIDES
#define GEN_PASS_DEF_CHECKSTATICSIZES
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

/// Fails on `op` when its constant index is outside [0, rank of `source`).
LogicalResult checkIndex(Operation *op, Value source, Value index) {
  auto shaped = dyn_cast<ShapedType>(source.getType());
  std::optional<int64_t> constant = getConstantIntValue(index);
  if (!shaped || !shaped.hasRank() || !constant)
    return success();
  if (*constant >= 0 && *constant < shaped.getRank())
    return success();
  return op->emitError() << "dim index " << *constant
                         << " is outside the rank " << shaped.getRank()
                         << " of " << shaped;
}

struct CheckDimIndicesPass
    : rotor::impl::CheckDimIndicesBase<CheckDimIndicesPass> {
  void runOnOperation() override {
    WalkResult result = getOperation()->walk([](Operation *op) {
      LogicalResult ok = success();
      if (auto dim = dyn_cast<tensor::DimOp>(op))
        ok = checkIndex(op, dim.getSource(), dim.getIndex());
      else if (auto dim = dyn_cast<memref::DimOp>(op))
        ok = checkIndex(op, dim.getSource(), dim.getIndex());
      return failed(ok) ? WalkResult::interrupt() : WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};

/// The ranks of the sliced (larger) and the slice (smaller) side of `op`,
/// one of the slices the check takes.
std::pair<int64_t, int64_t> sliceRanks(Operation *op) {
  auto rank = [](Value v) { return cast<ShapedType>(v.getType()).getRank(); };
  if (auto s = dyn_cast<tensor::ExtractSliceOp>(op))
    return {rank(s.getSource()), rank(s.getResult())};
  if (auto s = dyn_cast<tensor::InsertSliceOp>(op))
    return {rank(s.getDest()), rank(s.getSource())};
  if (auto s = dyn_cast<tensor::ParallelInsertSliceOp>(op))
    return {rank(s.getDest()), rank(s.getSource())};
  auto s = cast<memref::SubViewOp>(op);
  return {rank(s.getSource()), rank(s.getResult())};
}

struct CheckSliceStridesPass
    : rotor::impl::CheckSliceStridesBase<CheckSliceStridesPass> {
  void runOnOperation() override {
    WalkResult result =
        getOperation()->walk([](OffsetSizeAndStrideOpInterface slice) {
          // Slices only: a view such as memref.reinterpret_cast may
          // broadcast through a stride of 0.
          if (!isa<tensor::ExtractSliceOp, tensor::InsertSliceOp,
                   tensor::ParallelInsertSliceOp, memref::SubViewOp>(
                  slice.getOperation()))
            return WalkResult::advance();
          auto [sliced, kept] = sliceRanks(slice);
          bool rankReducing = kept < sliced;
          // Attribute or constant operand alike: folding makes the one
          // the other before bufferization.
          for (auto [i, stride] : llvm::enumerate(slice.getMixedStrides())) {
            std::optional<int64_t> s = getConstantIntValue(stride);
            if (s && *s <= 0) {
              slice->emitOpError() << "stride " << *s << " of dim " << i
                                   << " is not positive";
              return WalkResult::interrupt();
            }
            if (rankReducing && s != 1) {
              slice->emitOpError()
                  << "drops dims and has stride "
                  << (s ? std::to_string(*s) : std::string("?")) << " in dim "
                  << i << "; a rank-reducing slice must have unit strides";
              return WalkResult::interrupt();
            }
          }
          return WalkResult::advance();
        });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};

/// Whether the static extents of `type` times its element size fit int64.
bool bytesFit(ShapedType type) {
  if (!type.hasRank())
    return true;
  // `index` has no bit width of its own (asking for one crashed on an
  // index memref); it is 64 bits on every target Rotor builds for.
  Type element = type.getElementType();
  uint64_t bits = element.isIntOrFloat() ? element.getIntOrFloatBitWidth() : 64;
  uint64_t bytes = std::max<uint64_t>(1, bits / 8);
  for (int64_t d : type.getShape())
    if (!ShapedType::isDynamic(d) &&
        (__builtin_mul_overflow(bytes, uint64_t(d), &bytes) ||
         bytes > uint64_t(INT64_MAX)))
      return false;
  return true;
}

struct CheckStaticSizesPass
    : rotor::impl::CheckStaticSizesBase<CheckStaticSizesPass> {
  void runOnOperation() override {
    auto tooLarge = [](Value v) {
      auto type = dyn_cast<ShapedType>(v.getType());
      return type && !bytesFit(type);
    };
    WalkResult result = getOperation()->walk([&](Operation *op) {
      for (Region &region : op->getRegions())
        for (Block &block : region)
          for (BlockArgument arg : block.getArguments())
            if (tooLarge(arg)) {
              op->emitError()
                  << "argument " << arg.getArgNumber() << " of type "
                  << arg.getType() << " has more bytes than int64 can count";
              return WalkResult::interrupt();
            }
      for (Value result : op->getResults())
        if (tooLarge(result)) {
          op->emitError() << "result of type " << result.getType()
                          << " has more bytes than int64 can count";
          return WalkResult::interrupt();
        }
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
