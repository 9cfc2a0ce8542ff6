//===- LowerHadamard.cpp - attn.hadamard to butterfly stages --------------===//
// Emits one elementwise linalg.generic per butterfly stage (partners read
// through linalg.index and tensor.extract), or, for the host, each row's
// groups transformed in SIMD vectors in one pass.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// The fast Walsh-Hadamard transform: the input signs, then log2(G)
/// butterfly stages (stage h pairs element j with j xor h inside each
/// group), then the output signs and 1/sqrt(G). O(G log G) per group, in
/// the compute type.
struct LowerHadamard : OpRewritePattern<HadamardOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(HadamardOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Type compute = op.getPrecision().getCompute();
    auto type = cast<RankedTensorType>(op.getType());
    Type storage = type.getElementType();
    int64_t rank = type.getRank();
    int64_t dim = op.getRotatedDim();
    HadamardAttr rotation = op.getRotation();
    int64_t g = rotation.getGroup();
    auto [signsIn, signsOut] = rotation.getEffectiveSigns(op.getInverse());

    auto groupIndex = [&](OpBuilder &nb, Location loc) {
      Value d = linalg::IndexOp::create(nb, loc, dim);
      return arith::AndIOp::create(
                 nb, loc, d, arith::ConstantIndexOp::create(nb, loc, g - 1))
          .getResult();
    };
    // x * signs[j mod G] * magnitude in the compute type, rounded to `to`.
    auto applySigns = [&](Value src, ArrayRef<int32_t> signs, double magnitude,
                          Type to) {
      return elementwise(
          b, src, src, to, [&](OpBuilder &nb, Location loc, ValueRange args) {
            Value sign = signedConstant(nb, loc, signs, magnitude, compute,
                                        groupIndex(nb, loc));
            Value x = castFloat(nb, loc, args[0], compute);
            return castFloat(nb, loc, arith::MulFOp::create(nb, loc, x, sign),
                             to);
          });
    };

    Value current = applySigns(op.getInput(), signsIn, 1.0, compute);
    for (int64_t half = 1; half < g; half *= 2) {
      Value stageInput = current;
      current = elementwise(
          b, stageInput, stageInput, compute,
          [&](OpBuilder &nb, Location loc, ValueRange args) {
            SmallVector<Value> indices;
            for (int64_t i = 0; i < rank; ++i)
              indices.push_back(linalg::IndexOp::create(nb, loc, i));
            Value h = arith::ConstantIndexOp::create(nb, loc, half);
            Value upper = arith::CmpIOp::create(
                nb, loc, arith::CmpIPredicate::ne,
                arith::AndIOp::create(nb, loc, indices[dim], h),
                arith::ConstantIndexOp::create(nb, loc, 0));
            indices[dim] = arith::XOrIOp::create(nb, loc, indices[dim], h);
            Value mate =
                tensor::ExtractOp::create(nb, loc, stageInput, indices);
            // Lower element: x + mate; upper element: mate - x.
            Value sum = arith::AddFOp::create(nb, loc, args[0], mate);
            Value diff = arith::SubFOp::create(nb, loc, mate, args[0]);
            return arith::SelectOp::create(nb, loc, upper, diff, sum)
                .getResult();
          });
    }
    rewriter.replaceOp(
        op, applySigns(current, signsOut, 1.0 / std::sqrt(double(g)), storage));
    return success();
  }
};

/// Whether `v`'s buffer keeps its innermost dim contiguous: the views it
/// is made of (slices, reshapes, casts) do not stride or drop that dim.
/// Anything else is a fresh buffer, and function arguments have the
/// identity layout on the host.
bool unitInnerStrideView(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (auto slice = dyn_cast<tensor::ExtractSliceOp>(def)) {
      if (slice.getType().getRank() != slice.getSourceType().getRank() ||
          getConstantIntValue(slice.getMixedStrides().back()) != 1)
        return false;
      v = slice.getSource();
    } else if (isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp,
                   tensor::CastOp>(def)) {
      v = def->getOperand(0);
    } else {
      return true;
    }
  }
  return true;
}

/// The same transform with each row's groups held in SIMD vectors of
/// `lanes` elements: one pass over memory where the stage generics make
/// log2(G) + 2. A stage of h >= lanes pairs whole vectors, a smaller one
/// the lanes of a vector (a shuffle by lane xor h). Every element is the
/// stage generics' (signs, x + mate below, mate - x above, signs and
/// 1/sqrt(G)), bit for bit. Rows (every dim but the rotated, innermost one)
/// are an scf.forall.
struct LowerHadamardInVectors : OpRewritePattern<HadamardOp> {
  LowerHadamardInVectors(MLIRContext *ctx, int64_t lanes)
      : OpRewritePattern(ctx, /*benefit=*/2), lanes(lanes) {}

  LogicalResult matchAndRewrite(HadamardOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    int64_t rank = type.getRank(), width = type.getShape().back();
    int64_t g = op.getRotation().getGroup();
    if (rank < 2 || op.getRotatedDim() != rank - 1 ||
        ShapedType::isDynamic(width) || width % g != 0 || g % lanes != 0)
      return rewriter.notifyMatchFailure(op, "not whole vectors per group");
    // A bf16/f16 compute type rounds after every stage; the host emulates
    // those types with contractible f32 casts, which a chain of vector
    // adds would let fold away. The stage generics round through memory.
    Type computeType = op.getPrecision().getCompute();
    if (!computeType.isF32() && !computeType.isF64())
      return rewriter.notifyMatchFailure(op, "compute narrower than f32");
    if (!unitInnerStrideView(op.getInput()))
      return rewriter.notifyMatchFailure(op, "a strided view of the rows");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Type storage = type.getElementType();
    SmallVector<OpFoldResult> sizes = sizesOf(b, op.getInput());
    SmallVector<OpFoldResult> rows(sizes.begin(), sizes.end() - 1);
    auto forall = scf::ForallOp::create(
        b, SmallVector<OpFoldResult>(rank - 1, b.getIndexAttr(0)), rows,
        SmallVector<OpFoldResult>(rank - 1, b.getIndexAttr(1)),
        ValueRange{emptyTensor(b, sizes, storage)}, std::nullopt);

    Block *body = forall.getBody();
    rewriter.setInsertionPointToStart(body);
    ImplicitLocOpBuilder rb(op.getLoc(), rewriter);
    ValueRange row = body->getArguments().take_front(rank - 1);
    Value result = emptyTensor(rb, {rb.getIndexAttr(width)}, storage);
    for (int64_t first = 0; first < width; first += g)
      result = transformGroup(rb, op, row, first, result);

    rewriter.setInsertionPointToStart(forall.getTerminator().getBody());
    SmallVector<OpFoldResult> at(row.begin(), row.end());
    at.push_back(rb.getIndexAttr(0));
    SmallVector<OpFoldResult> one(rank, rb.getIndexAttr(1));
    SmallVector<OpFoldResult> slice(rank - 1, rb.getIndexAttr(1));
    slice.push_back(rb.getIndexAttr(width));
    tensor::ParallelInsertSliceOp::create(rewriter, op.getLoc(), result,
                                          body->getArguments().back(), at,
                                          slice, one);
    rewriter.replaceOp(op, forall.getResult(0));
    return success();
  }

private:
  /// Lane constants: signs[j] * magnitude for the group's elements
  /// [first, first + lanes), rounded to `type` as signedConstant rounds.
  Value signs(OpBuilder &b, Location loc, ArrayRef<int32_t> signs,
              int64_t first, double magnitude, Type type) const {
    SmallVector<Attribute> values;
    for (int64_t j = first; j < first + lanes; ++j)
      values.push_back(b.getFloatAttr(type, signs[j] > 0 ? magnitude
                                                         : -magnitude));
    return arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(VectorType::get({lanes}, type), values));
  }

  /// Elements [first, first + G) of the row, rotated, written into `into`.
  Value transformGroup(ImplicitLocOpBuilder &b, HadamardOp op, ValueRange row,
                       int64_t first, Value into) const {
    Type compute = op.getPrecision().getCompute();
    auto type = cast<RankedTensorType>(op.getType());
    Type storage = type.getElementType();
    Type inputElement =
        cast<RankedTensorType>(op.getInput().getType()).getElementType();
    int64_t g = op.getRotation().getGroup();
    auto [signsIn, signsOut] =
        op.getRotation().getEffectiveSigns(op.getInverse());
    Location loc = b.getLoc();
    Value pad = floatConst(b, loc, inputElement, 0.0);
    SmallVector<Value> v;
    for (int64_t k = 0; k < g; k += lanes) {
      SmallVector<Value> at(row);
      at.push_back(arith::ConstantIndexOp::create(b, first + k));
      Value x = vector::TransferReadOp::create(
          b, VectorType::get({lanes}, inputElement), op.getInput(), at, pad,
          ArrayRef<bool>{true});
      v.push_back(arith::MulFOp::create(b, castFloat(b, loc, x, compute),
                                        signs(b, loc, signsIn, k, 1.0, compute)));
    }
    for (int64_t h = 1; h < g; h *= 2) {
      SmallVector<Value> next(v.size());
      for (size_t k = 0; k < v.size(); ++k) {
        if (h >= lanes) {
          size_t mate = k ^ size_t(h / lanes);
          bool upper = (k & size_t(h / lanes)) != 0;
          next[k] = upper ? arith::SubFOp::create(b, v[mate], v[k]).getResult()
                          : arith::AddFOp::create(b, v[k], v[mate]).getResult();
          continue;
        }
        SmallVector<int64_t> partner(lanes);
        SmallVector<bool> isUpper(lanes);
        for (int64_t r = 0; r < lanes; ++r) {
          partner[r] = r ^ h;
          isUpper[r] = (r & h) != 0;
        }
        Value mate = vector::ShuffleOp::create(b, v[k], v[k], partner);
        Value upper = arith::ConstantOp::create(
            b, DenseElementsAttr::get(
                   VectorType::get({lanes}, b.getI1Type()), isUpper));
        next[k] = arith::SelectOp::create(b, upper,
                                          arith::SubFOp::create(b, mate, v[k]),
                                          arith::AddFOp::create(b, v[k], mate));
      }
      v = std::move(next);
    }
    double magnitude = 1.0 / std::sqrt(double(g));
    for (size_t k = 0; k < v.size(); ++k) {
      int64_t j = int64_t(k) * lanes;
      Value y = arith::MulFOp::create(
          b, v[k], signs(b, loc, signsOut, j, magnitude, compute));
      into = vector::TransferWriteOp::create(
                 b, castFloat(b, loc, y, storage), into,
                 ValueRange{arith::ConstantIndexOp::create(b, first + j)},
                 ArrayRef<bool>{true})
                 .getResult();
    }
    return into;
  }

  int64_t lanes;
};

} // namespace

void rotor::attn::lowering::populateHadamardLoweringPatterns(
    RewritePatternSet &patterns, int64_t vectorLanes) {
  patterns.add<LowerHadamard>(patterns.getContext());
  if (vectorLanes > 0)
    patterns.add<LowerHadamardInVectors>(patterns.getContext(), vectorLanes);
}
