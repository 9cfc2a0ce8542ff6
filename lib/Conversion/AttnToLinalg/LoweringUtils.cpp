//===- LoweringUtils.cpp - Helpers shared by the attn lowerings -----------===//

#include "LoweringUtils.h"

using namespace mlir;

namespace rotor::attn::lowering {

Value castFloat(OpBuilder &b, Location loc, Value v, Type to) {
  Type from = v.getType();
  if (from == to)
    return v;
  unsigned fromWidth = from.getIntOrFloatBitWidth();
  unsigned toWidth = to.getIntOrFloatBitWidth();
  if (fromWidth == toWidth) // bf16 <-> f16: both are exact in f32.
    return arith::TruncFOp::create(
        b, loc, to, arith::ExtFOp::create(b, loc, b.getF32Type(), v));
  if (fromWidth < toWidth)
    return arith::ExtFOp::create(b, loc, to, v);
  return arith::TruncFOp::create(b, loc, to, v);
}

Value multiplyAccumulate(OpBuilder &b, Location loc, Value sum, Value lhs,
                         Value rhs, Type compute, Type acc) {
  Value x = castFloat(b, loc, castFloat(b, loc, lhs, compute), acc);
  Value y = castFloat(b, loc, castFloat(b, loc, rhs, compute), acc);
  return arith::AddFOp::create(b, loc, sum,
                               arith::MulFOp::create(b, loc, x, y));
}

SmallVector<Value> loadAlignedVector(OpBuilder &b, Location loc, Value memref,
                                     ValueRange indices, int64_t width) {
  Type elem = cast<MemRefType>(memref.getType()).getElementType();
  Value vec = vector::LoadOp::create(b, loc, VectorType::get({width}, elem),
                                     memref, indices, /*nontemporal=*/false,
                                     llvm::MaybeAlign(16));
  Type carrier = carrierType(elem);
  if (carrier != elem)
    vec = vector::BitCastOp::create(b, loc, VectorType::get({width}, carrier),
                                    vec);
  SmallVector<Value> values;
  for (int64_t i = 0; i < width; ++i)
    values.push_back(vector::ExtractOp::create(b, loc, vec, i));
  return values;
}

FailureOr<ProjectionIntoRope>
matchProjectionIntoRope(LinearOp linear, PatternRewriter &rewriter) {
  if (!linear->hasOneUse())
    return rewriter.notifyMatchFailure(linear, "projection has other users");
  auto expand = dyn_cast<tensor::ExpandShapeOp>(*linear->user_begin());
  if (!expand || !expand->hasOneUse() ||
      expand.getReassociationIndices() !=
          SmallVector<ReassociationIndices>{{0}, {1, 2}})
    return rewriter.notifyMatchFailure(linear, "not split into heads");
  auto rope = dyn_cast<RopeOp>(*expand->user_begin());
  if (!rope || rope.getInput() != expand.getResult() ||
      rope.getRotaryDim() == 0)
    return rewriter.notifyMatchFailure(linear, "heads do not feed a RoPE");
  return ProjectionIntoRope{expand, rope};
}

Value signedConstant(OpBuilder &b, Location loc, ArrayRef<int32_t> signs,
                     double magnitude, Type type, Value pos) {
  Value plus = floatConst(b, loc, type, magnitude);
  Value minus = floatConst(b, loc, type, -magnitude);
  if (llvm::all_of(signs, [](int32_t s) { return s > 0; }))
    return plus;
  if (llvm::all_of(signs, [](int32_t s) { return s < 0; }))
    return minus;
  SmallVector<uint64_t> words(llvm::divideCeil(signs.size(), 64), 0);
  for (auto [i, s] : llvm::enumerate(signs))
    if (s < 0)
      words[i / 64] |= uint64_t(1) << (i % 64);
  Type i64 = b.getI64Type();
  auto word = [&](uint64_t v) {
    return arith::ConstantOp::create(b, loc, b.getIntegerAttr(i64, v))
        .getResult();
  };
  Value p = arith::IndexCastUIOp::create(b, loc, i64, pos);
  Value mask = word(words[0]);
  if (words.size() > 1) {
    Value wordIndex = arith::ShRUIOp::create(b, loc, p, word(6));
    for (size_t w = 1; w < words.size(); ++w)
      mask = arith::SelectOp::create(
          b, loc,
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, wordIndex,
                                word(w)),
          word(words[w]), mask);
  }
  Value bit = arith::AndIOp::create(
      b, loc,
      arith::ShRUIOp::create(b, loc, mask,
                             arith::AndIOp::create(b, loc, p, word(63))),
      word(1));
  Value negative =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, bit, word(0));
  return arith::SelectOp::create(b, loc, negative, minus, plus);
}

Type carrierType(Type elem) {
  if (isa<FloatType>(elem) && elem.getIntOrFloatBitWidth() == 16)
    return IntegerType::get(elem.getContext(), 16);
  return elem;
}

Value toCarrier(OpBuilder &b, Location loc, Value v) {
  Type carrier = carrierType(v.getType());
  return carrier == v.getType() ? v
                                : arith::BitcastOp::create(b, loc, carrier, v);
}

Value fromCarrier(OpBuilder &b, Location loc, Value v, Type elem) {
  return v.getType() == elem ? v : arith::BitcastOp::create(b, loc, elem, v);
}

Value floatConst(OpBuilder &b, Location loc, Type type, double value) {
  return arith::ConstantOp::create(b, loc, type, b.getFloatAttr(type, value));
}

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
