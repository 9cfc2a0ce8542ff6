//===- ApproximateExpForSimd.cpp - exp2 as vectorizable arithmetic --------===//
//
// The softmax's math.exp2 becomes a call to libm's scalar exp2f, one per
// score, which keeps every loop around it scalar. Here f32 exp2 is written
// in arith ops that LLVM vectorizes with the loop: x = n + f with n an
// integer and |f| <= 1/2 (exactly), 2^f by a degree-6 polynomial fitted
// for relative error (1.9e-9), times 2^n added to its exponent bits.
//
// The polynomial's steps are explicit FMAs (math.fma), not a multiply and
// an add that may contract: LLVM fused those in some copies of a loop it
// vectorized and not in others (the X86 backend merged an epilogue's
// 4-wide chains into 16-wide multiplies and adds without the flag), and
// since an OpenMP chunk's bounds decide which copy computes which element,
// the bits depended on the thread count. On a CPU without FMA they are a
// multiply and an add, never contracted.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>
#include <limits>

namespace rotor {
#define GEN_PASS_DEF_APPROXIMATEEXPFORSIMD
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

/// 2^f on [-1/2, 1/2]: a degree-6 polynomial fitted to minimize the
/// relative error (1.9e-9; evaluated in f32, 8.0e-8 at most over 4M
/// samples, as the degree-7 Taylor polynomial's 7.2e-8 that it replaces,
/// with one FMA fewer). Its constant term is 1, so 2^n is exact.
constexpr double kExp2Coefficients[] = {
    1.0,         0.693147182,   0.240226462,   0.0555032864,
    0.00961848907, 0.00133999309, 0.000153458066};

/// 2^x for an f32 scalar x; below 2^-126 (and for -inf, a masked score) 0,
/// from 2^128 up (and for +inf) +inf, NaN stays NaN.
Value exp2OfF32(OpBuilder &b, Location loc, Value x, bool fma) {
  auto f32c = [&](double v) -> Value {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  };
  // Past [-160, 130] the result is 0 or +inf either way; the clamp keeps
  // n's conversion to an integer defined (and -inf, a masked score, in it).
  Value clamped = arith::MinimumFOp::create(
      b, loc, arith::MaximumFOp::create(b, loc, x, f32c(-160.0)), f32c(130.0));
  Value n = math::RoundEvenOp::create(b, loc, clamped);
  Value f = arith::SubFOp::create(b, loc, clamped, n);
  // By Horner, from the highest degree.
  Value p = f32c(std::end(kExp2Coefficients)[-1]);
  for (double coefficient :
       llvm::reverse(ArrayRef(kExp2Coefficients).drop_back())) {
    p = fma ? math::FmaOp::create(b, loc, p, f, f32c(coefficient)).getResult()
            : arith::AddFOp::create(b, loc,
                                    arith::MulFOp::create(b, loc, p, f),
                                    f32c(coefficient))
                  .getResult();
  }
  // p * 2^n by adding n to p's exponent bits: an integer add where two
  // multiplies by powers of two took the FMA units (the exp was the
  // largest part of the prefill softmax). Exact wherever the result is
  // normal: p is in [2^-1/2, 2^1/2], so for x in [-126, 128) the exponent
  // lands in [-126, 127]. Below, the result is flushed; from 128 up it is
  // +inf.
  Type i32 = b.getI32Type();
  Value shifted = arith::ShLIOp::create(
      b, loc, arith::FPToSIOp::create(b, loc, i32, n),
      arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(23)));
  Value result = arith::BitcastOp::create(
      b, loc, b.getF32Type(),
      arith::AddIOp::create(
          b, loc, arith::BitcastOp::create(b, loc, i32, p), shifted));
  Value overflow =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGE, x, f32c(128.0));
  result = arith::SelectOp::create(
      b, loc, overflow, f32c(std::numeric_limits<double>::infinity()), result);
  // Below 2^-126 the result is flushed to 0: a subnormal probability makes
  // every FMA that reads it take a microcode assist on x86 (the example
  // layer's prefill at T=2048 ran 3x slower), and a weight under 2^-126
  // of the row's largest changes no sum of it.
  Value subnormal =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, x, f32c(-126.0));
  result = arith::SelectOp::create(b, loc, subnormal, f32c(0.0), result);
  Value isNan =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, x, x);
  return arith::SelectOp::create(b, loc, isNan, x, result);
}

struct ApproximateExpForSimdPass
    : rotor::impl::ApproximateExpForSimdBase<ApproximateExpForSimdPass> {
  using ApproximateExpForSimdBase::ApproximateExpForSimdBase;

  void runOnOperation() override {
    SmallVector<math::Exp2Op> exps;
    getOperation()->walk([&](math::Exp2Op op) {
      if (op.getType().isF32())
        exps.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (math::Exp2Op op : exps) {
      rewriter.setInsertionPoint(op);
      rewriter.replaceOp(
          op, exp2OfF32(rewriter, op.getLoc(), op.getOperand(), fma));
    }
  }
};

} // namespace
