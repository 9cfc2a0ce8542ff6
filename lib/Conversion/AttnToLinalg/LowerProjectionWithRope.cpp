//===- LowerProjectionWithRope.cpp - RoPE in the projection's epilogue ----===//
//
// rope(expand_shape(linear(x, W, b))) where the projection feeds only the
// RoPE (the Q and K paths): an scf.forall over (token, head) computes the
// head's D outputs (bias plus dot products in the accumulate type, rounded
// to the projection's storage type, exactly as attn.linear does) and rotates
// them before they are written, so the un-rotated projection never reaches
// memory.
//
// Emits an scf.forall over (token, head) whose body is a linalg.generic.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// One head's `d` sums of a token's row `xRow` [1, E] against its weight
/// rows `wHead` [d, E] (multiplyAccumulate in `compute`, summed in `acc`),
/// started from the head's slice of `bias` from row0 (widened exactly), or
/// zero.
Value headSums(ImplicitLocOpBuilder &nb, Value xRow, Value wHead, Value bias,
               Value row0, int64_t d, Type compute, Type acc) {
  MLIRContext *ctx = nb.getContext();
  Value init;
  SmallVector<OpFoldResult> vec = {nb.getIndexAttr(d)};
  if (bias) {
    Value biasHead = tensor::ExtractSliceOp::create(
        nb, bias, ArrayRef<OpFoldResult>{row0}, vec,
        ArrayRef<OpFoldResult>{nb.getIndexAttr(1)});
    init = elementwise(nb, biasHead, biasHead, acc,
                       [&](OpBuilder &bb, Location l, ValueRange args) {
                         return castFloat(bb, l, args[0], acc);
                       });
  } else {
    init = filled(nb, vec, acc, 0.0);
  }
  AffineExpr dd, ee;
  bindDims(ctx, dd, ee);
  return linalg::GenericOp::create(
             nb, init.getType(), ValueRange{xRow, wHead}, init,
             ArrayRef<AffineMap>{
                 AffineMap::get(2, 0, {getAffineConstantExpr(0, ctx), ee}, ctx),
                 AffineMap::get(2, 0, {dd, ee}, ctx),
                 AffineMap::get(2, 0, {dd}, ctx)},
             iterators(1, 1),
             [&](OpBuilder &bb, Location l, ValueRange args) {
               yieldValue(bb, l,
                          multiplyAccumulate(bb, l, args[2], args[0], args[1],
                                             compute, acc));
             })
      .getResult(0);
}

struct LowerLinearWithRopeEpilogue : OpRewritePattern<LinearOp> {
  LowerLinearWithRopeEpilogue(MLIRContext *ctx)
      : OpRewritePattern(ctx, /*benefit=*/2) {}

  LogicalResult matchAndRewrite(LinearOp linear,
                                PatternRewriter &rewriter) const override {
    FailureOr<ProjectionIntoRope> chain =
        matchProjectionIntoRope(linear, rewriter);
    if (failed(chain))
      return failure();
    auto [expand, rope] = *chain;

    auto headsType = cast<RankedTensorType>(rope.getInput().getType());
    int64_t heads = headsType.getDimSize(1), d = headsType.getDimSize(2);
    if (ShapedType::isDynamic(heads))
      return rewriter.notifyMatchFailure(linear, "dynamic head count");
    Type compute = linear.getPrecision().getCompute();
    Type acc = linear.getPrecision().getAccumulate();
    Type storage = headsType.getElementType();

    rewriter.setInsertionPoint(rope);
    ImplicitLocOpBuilder b(rope.getLoc(), rewriter);
    RopeEmitter emitter(b, rope);
    Value x = linear.getInput(), w = linear.getWeight(), bias = linear.getBias();
    Value positions = rope.getPositions();
    OpFoldResult tokens = tensor::getMixedSize(b, b.getLoc(), x, 0);
    OpFoldResult e = tensor::getMixedSize(b, b.getLoc(), x, 1);
    Value out =
        emptyTensor(b, {tokens, b.getIndexAttr(heads), b.getIndexAttr(d)},
                    storage);
    auto forall = scf::ForallOp::create(
        b, ArrayRef<OpFoldResult>{b.getIndexAttr(0), b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{tokens, b.getIndexAttr(heads)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1)},
        ValueRange{out}, std::nullopt);

    Block *body = forall.getBody();
    rewriter.setInsertionPointToStart(body);
    ImplicitLocOpBuilder nb(rope.getLoc(), rewriter);
    Value t = body->getArgument(0), h = body->getArgument(1);
    Value shared = body->getArgument(2);
    Value row0 = arith::MulIOp::create(
        nb, h, arith::ConstantIndexOp::create(nb, d).getResult());
    SmallVector<OpFoldResult> unit2(2, nb.getIndexAttr(1));
    Value wHead = tensor::ExtractSliceOp::create(
        nb, w, ArrayRef<OpFoldResult>{row0, nb.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{nb.getIndexAttr(d), e}, unit2);
    Value xRow = tensor::ExtractSliceOp::create(
        nb, x, ArrayRef<OpFoldResult>{t, nb.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{nb.getIndexAttr(1), e}, unit2);

    Value sums = headSums(nb, xRow, wHead, bias, row0, d, compute, acc);
    // The projection's single rounding to its storage type.
    Value projected = elementwise(nb, sums, sums, storage,
                                  [&](OpBuilder &bb, Location l, ValueRange args) {
                                    return castFloat(bb, l, args[0], storage);
                                  });
    Value position = tensor::ExtractOp::create(nb, positions, t);
    Value rotated = elementwise(
        nb, projected, projected, storage,
        [&](OpBuilder &bb, Location l, ValueRange args) {
          Value di = linalg::IndexOp::create(bb, l, 0);
          return emitter.emit(
              bb, l, di, args[0],
              [&](Value partner) -> Value {
                return tensor::ExtractOp::create(bb, l, projected, partner);
              },
              position);
        });

    rewriter.setInsertionPointToStart(forall.getTerminator().getBody());
    SmallVector<OpFoldResult> unit3(3, nb.getIndexAttr(1));
    tensor::ParallelInsertSliceOp::create(
        rewriter, rope.getLoc(), rotated, shared,
        ArrayRef<OpFoldResult>{t, h, nb.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{nb.getIndexAttr(1), nb.getIndexAttr(1),
                               nb.getIndexAttr(d)},
        unit3);

    rewriter.replaceOp(rope, forall.getResult(0));
    rewriter.eraseOp(expand);
    rewriter.eraseOp(linear);
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateRopeEpilogueFusionPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerLinearWithRopeEpilogue>(patterns.getContext());
}
