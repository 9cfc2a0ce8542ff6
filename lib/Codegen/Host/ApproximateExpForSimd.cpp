//===- ApproximateExpForSimd.cpp - exp2 as vectorizable arithmetic --------===//
//
// The softmax's math.exp2 becomes a call to libm's scalar exp2f, one per
// score, which keeps every loop around it scalar. Here f32 exp2 is written
// in arith ops that LLVM vectorizes with the loop: x = n + f with n an
// integer and |f| <= 1/2 (exactly), 2^f by its degree-7 Taylor polynomial
// (truncation below 1e-8 relative), times 2^n built in the exponent bits.
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

namespace rotor {
#define GEN_PASS_DEF_APPROXIMATEEXPFORSIMD
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

/// 2^x for an f32 scalar x; below 2^-126 (and for -inf, a masked score) 0,
/// +inf gives +inf, NaN stays NaN.
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
  // sum_k (f ln 2)^k / k!, k <= 7, by Horner.
  Value p = f32c(std::pow(M_LN2, 7) / 5040.0);
  double factorial = 5040.0;
  for (int k = 6; k >= 0; --k) {
    factorial /= (k + 1);
    Value coefficient = f32c(std::pow(M_LN2, k) / factorial);
    p = fma ? math::FmaOp::create(b, loc, p, f, coefficient).getResult()
            : arith::AddFOp::create(b, loc,
                                    arith::MulFOp::create(b, loc, p, f),
                                    coefficient)
                  .getResult();
  }
  // 2^n as 2^h * 2^(n-h), h = n >> 1: both factors normal floats built in
  // the exponent bits, so results near the overflow and into the subnormal
  // range come out of the multiplications rounded, not clamped.
  Type i32 = b.getI32Type();
  auto i32c = [&](int32_t v) -> Value {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  };
  auto powerOfTwo = [&](Value k) -> Value {
    Value bits = arith::ShLIOp::create(
        b, loc, arith::AddIOp::create(b, loc, k, i32c(127)), i32c(23));
    return arith::BitcastOp::create(b, loc, b.getF32Type(), bits);
  };
  Value ni = arith::FPToSIOp::create(b, loc, i32, n);
  Value half = arith::ShRSIOp::create(b, loc, ni, i32c(1));
  Value rest = arith::SubIOp::create(b, loc, ni, half);
  Value result = arith::MulFOp::create(
      b, loc, arith::MulFOp::create(b, loc, p, powerOfTwo(half)),
      powerOfTwo(rest));
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
