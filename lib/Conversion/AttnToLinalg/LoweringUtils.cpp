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

} // namespace rotor::attn::lowering
