//===- LoweringUtils.cpp - Helpers shared by the attn lowerings -----------===//
//
// The linalg builders every lowering uses: linalg.generic, linalg.fill,
// tensor.empty.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"

using namespace mlir;

namespace rotor::attn::lowering {

SmallVector<OpFoldResult> sizesOf(ImplicitLocOpBuilder &b, Value v) {
  return tensor::getMixedSizes(b, b.getLoc(), v);
}

Value emptyTensor(ImplicitLocOpBuilder &b, ArrayRef<OpFoldResult> shape,
                  Type elementType) {
  return tensor::EmptyOp::create(b, shape, elementType);
}

Value emptyLike(ImplicitLocOpBuilder &b, Value like, Type elementType) {
  return emptyTensor(b, sizesOf(b, like), elementType);
}

Value filled(ImplicitLocOpBuilder &b, ArrayRef<OpFoldResult> shape,
             Type elementType, double value) {
  Value init = emptyTensor(b, shape, elementType);
  Value scalar = floatConst(b, b.getLoc(), elementType, value);
  return linalg::FillOp::create(b, scalar, init).getResult(0);
}

SmallVector<utils::IteratorType> iterators(unsigned parallel,
                                           unsigned reduction) {
  SmallVector<utils::IteratorType> result(parallel,
                                          utils::IteratorType::parallel);
  result.append(reduction, utils::IteratorType::reduction);
  return result;
}

Value elementwise(ImplicitLocOpBuilder &b, Value like, ValueRange inputs,
                  Type resultElementType,
                  function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  unsigned rank = cast<RankedTensorType>(like.getType()).getRank();
  AffineMap identity = b.getMultiDimIdentityMap(rank);
  SmallVector<AffineMap> maps(inputs.size() + 1, identity);
  Value init = emptyLike(b, like, resultElementType);
  return linalg::GenericOp::create(
             b, init.getType(), inputs, init, maps, iterators(rank),
             [&](OpBuilder &nb, Location loc, ValueRange args) {
               Value result = body(nb, loc, args.drop_back());
               yieldValue(nb, loc, result);
             })
      .getResult(0);
}

/// [..., L] viewed as [..., L / B, B].
Value expandBlocks(ImplicitLocOpBuilder &b, Value v, int64_t blockSize) {
  auto type = cast<RankedTensorType>(v.getType());
  int64_t rank = type.getRank();
  SmallVector<int64_t> shape(type.getShape());
  shape.back() /= blockSize;
  shape.push_back(blockSize);
  SmallVector<ReassociationIndices> groups;
  for (int64_t i = 0; i < rank - 1; ++i)
    groups.push_back({i});
  groups.push_back({rank - 1, rank});
  SmallVector<OpFoldResult> outputShape = sizesOf(b, v);
  outputShape.back() = b.getIndexAttr(shape[rank - 1]);
  outputShape.push_back(b.getIndexAttr(blockSize));
  return tensor::ExpandShapeOp::create(
      b, RankedTensorType::get(shape, type.getElementType()), v, groups,
      outputShape);
}

/// [..., L / B, B] back to [..., L].
Value collapseBlocks(ImplicitLocOpBuilder &b, Value v) {
  int64_t rank = cast<RankedTensorType>(v.getType()).getRank();
  SmallVector<ReassociationIndices> groups;
  for (int64_t i = 0; i < rank - 2; ++i)
    groups.push_back({i});
  groups.push_back({rank - 2, rank - 1});
  return tensor::CollapseShapeOp::create(b, v, groups);
}

} // namespace rotor::attn::lowering
