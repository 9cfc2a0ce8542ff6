//===- SdpaUtils.cpp - Pieces shared by the two SDPA lowerings ------------===//
// Emits linalg.generic reductions and the normalization of the output.
//
//===----------------------------------------------------------------------===//

#include "SdpaUtils.h"

#include <limits>

using namespace mlir;

namespace rotor::attn::lowering {

Value queryInComputePrecision(ImplicitLocOpBuilder &b, Value q, Type compute) {
  Type element = getElementTypeOrSelf(q.getType());
  if (element == compute)
    return q;
  if (auto widened = q.getDefiningOp<arith::ExtFOp>())
    if (getElementTypeOrSelf(widened.getIn().getType()) == compute)
      return widened.getIn();
  return elementwise(b, q, q, compute,
                     [&](OpBuilder &nb, Location l, ValueRange args) {
                       return castFloat(nb, l, args[0], compute);
                     });
}

Value reduceInnermost(
    ImplicitLocOpBuilder &b, Value input, Value init,
    function_ref<Value(OpBuilder &, Location, Value, Value)> combine) {
  unsigned rank = cast<RankedTensorType>(input.getType()).getRank();
  AffineMap all = b.getMultiDimIdentityMap(rank);
  AffineMap outer = all.getMajorSubMap(rank - 1);
  return linalg::GenericOp::create(
             b, init.getType(), input, init, ArrayRef<AffineMap>{all, outer},
             iterators(rank - 1, 1),
             [&](OpBuilder &nb, Location loc, ValueRange args) {
               yieldValue(nb, loc, combine(nb, loc, args[0], args[1]));
             })
      .getResult(0);
}

Value normalizeAttention(ImplicitLocOpBuilder &b, Value out, Value sum,
                         Type acc, Type storage) {
  MLIRContext *ctx = b.getContext();
  AffineExpr t, h, e;
  bindDims(ctx, t, h, e);
  Value init = emptyLike(b, out, storage);
  return linalg::GenericOp::create(
             b, init.getType(), ValueRange{out, sum}, init,
             ArrayRef<AffineMap>{AffineMap::get(3, 0, {t, h, e}, ctx),
                                 AffineMap::get(3, 0, {t, h}, ctx),
                                 AffineMap::get(3, 0, {t, h, e}, ctx)},
             iterators(3),
             [&](OpBuilder &bb, Location bl, ValueRange args) {
               yieldValue(bb, bl,
                          normalizedElement(bb, bl, args[0], args[1], acc,
                                            storage));
             })
      .getResult(0);
}

} // namespace rotor::attn::lowering
