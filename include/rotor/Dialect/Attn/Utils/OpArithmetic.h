//===- OpArithmetic.h - The scalar arithmetic of attn ops -------*- C++ -*-===//
//
// The one definition of each attn op's arithmetic on scalars (rounding,
// dot-product steps, the RoPE of one element, quantization and
// dequantization steps, the Hadamard rotation's signs), used by every
// lowering: the value-semantic one (convert-attn-to-linalg) and the
// workgroup kernels (lib/Codegen/Kernels), so that their results agree bit
// for bit.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_DIALECT_ATTN_UTILS_OPARITHMETIC_H
#define ROTOR_DIALECT_ATTN_UTILS_OPARITHMETIC_H

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace rotor::attn::lowering {

/// Rounds or widens a float scalar to `to` (round-to-nearest-even when
/// narrowing; bf16 <-> f16 goes through f32, which is exact); a vector of
/// floats lane by lane, to a vector of `to`.
mlir::Value castFloat(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v,
                      mlir::Type to);

/// One step of a dot product under a precision: `sum + lhs * rhs`, with
/// both operands rounded to `compute` and the product and sum formed in
/// `acc` (so bf16 operands multiply exactly in f32, as on tensor cores).
mlir::Value multiplyAccumulate(mlir::OpBuilder &b, mlir::Location loc,
                               mlir::Value sum, mlir::Value lhs,
                               mlir::Value rhs, mlir::Type compute,
                               mlir::Type acc);

/// A probability `p` (in `acc`) as attn.sdpa multiplies it with V: rounded
/// to `compute` and widened back when the op has `round_probabilities`,
/// else as it is.
mlir::Value probabilityForValues(mlir::OpBuilder &b, mlir::Location loc,
                                 mlir::Value p, SdpaOp op);

/// A float constant of type `type`.
mlir::Value floatConst(mlir::OpBuilder &b, mlir::Location loc, mlir::Type type,
                       double value);

/// RoPE's angle `position · freq` (both f64) reduced to [-pi, pi] in f64,
/// so that long positions lose no accuracy: the one definition attn.rope,
/// the key-bias term and the kernels share.
mlir::Value reducedRopeAngle(mlir::OpBuilder &b, mlir::Location loc,
                             mlir::Value position, mlir::Value freq);

/// (cos, sin) of `angle` in [-pi, pi] (a reducedRopeAngle). In f32, as
/// arithmetic that vectorizes: reduced by multiples of pi/2 (three-part
/// pi/2, exact products) to [-pi/4, pi/4], Cephes's sinf/cosf polynomials
/// there (about 1 ulp), the quadrant chosen by selects; libm's cosf and
/// sinf are scalar calls, one per element, that LLVM cannot vectorize.
/// Other types use math.cos and math.sin.
std::pair<mlir::Value, mlir::Value> ropeCosSin(mlir::OpBuilder &b,
                                               mlir::Location loc,
                                               mlir::Value angle);

/// Emits the RoPE of one element, shared by the standalone RoPE lowering
/// and the projection that fuses RoPE into its epilogue. The constructor
/// materializes the inverse-frequency table before the loop nest.
class RopeEmitter {
public:
  RopeEmitter(mlir::ImplicitLocOpBuilder &b, RopeOp op);
  /// The rotated value at head dim `d` of an element `self` (storage type)
  /// whose pair partner at head dim p is `loadPartner(p)`, for the integer
  /// `position`.
  mlir::Value emit(mlir::OpBuilder &b, mlir::Location loc, mlir::Value d,
                   mlir::Value self,
                   llvm::function_ref<mlir::Value(mlir::Value)> loadPartner,
                   mlir::Value position);
  /// cos and sin of pair `freqIndex`'s angle at the integer `position`,
  /// times the attention factor, in the compute type: the first half of
  /// emit(), for forms that share them across heads.
  std::pair<mlir::Value, mlir::Value> cosSin(mlir::OpBuilder &b,
                                             mlir::Location loc,
                                             mlir::Value freqIndex,
                                             mlir::Value position);
  /// The rotated value of `self` (storage type) whose pair partner is
  /// `other`, from cosSin(): a cos - b sin for the pair's first element
  /// (`first`, i1), a sin + b cos for its second; the second half of emit().
  mlir::Value rotatePair(mlir::OpBuilder &b, mlir::Location loc,
                         mlir::Value first, mlir::Value self,
                         mlir::Value other, mlir::Value cos, mlir::Value sin);
  /// The head dims of pair `q` (0 <= q < D/2), for kernels that give a
  /// thread one pair: (q, q + R/2) in a half-split head's rotary part, else
  /// (2q, 2q + 1), which past R pass through. The pairs cover the head.
  std::pair<mlir::Value, mlir::Value>
  pairDims(mlir::OpBuilder &b, mlir::Location loc, mlir::Value q);

private:
  RopeOp op;
  mlir::Value invFreq;
};

/// The scalar steps of block quantization, shared by the standalone
/// lowering and the GEMM epilogue. `x` and `reduced` are in the
/// accumulate type. One step of a block's reduction: max(reduced, |x|)
/// (absmax) or reduced + x * x (codebook), starting from 0.
mlir::Value quantizeReduceStep(mlir::OpBuilder &b, mlir::Location loc,
                               KVBlockFormatAttr format, mlir::Value reduced,
                               mlir::Value x);
/// The stored scale of a reduced block: absmax / Q or sqrt(sum / B),
/// rounded to the scale type.
mlir::Value quantizeScale(mlir::OpBuilder &b, mlir::Location loc,
                          KVBlockFormatAttr format, mlir::Value reduced);
/// The i8 code of `x` for the stored scale `scale` widened to x's type.
mlir::Value quantizeCode(mlir::OpBuilder &b, mlir::Location loc,
                         KVBlockFormatAttr format, mlir::Value x,
                         mlir::Value scale);

/// The scalar steps of dequantization, shared by the standalone lowering
/// and the SDPA kernel that dequantizes K/V while staging them: the
/// codebook's centroids as an f64 tensor constant (null for absmax), and
/// one element, scale * level(code) in `compute` rounded to `storage`.
mlir::Value codebookTable(mlir::ImplicitLocOpBuilder &b,
                          KVBlockFormatAttr format);
mlir::Value dequantizeElement(mlir::OpBuilder &b, mlir::Location loc,
                              KVBlockFormatAttr format, mlir::Value table,
                              mlir::Value code, mlir::Value scale,
                              mlir::Type compute, mlir::Type storage);

/// The scalar steps of unpacking a block-packed row (attn.unpack_blocks),
/// shared by its lowering, the decoding generic and the SDPA kernel that
/// stages K/V from the packed bytes. `byteAt(column)` reads the row's i8
/// byte at an index column. The code whose first bit is bit `shift` of byte
/// `byteIndex`, sign-extended for absmax, as i8; it may straddle two bytes,
/// the second read at most at `lastByte` (past it, it is not needed).
mlir::Value unpackCode(mlir::OpBuilder &b, mlir::Location loc,
                       llvm::function_ref<mlir::Value(mlir::Value)> byteAt,
                       mlir::Value byteIndex, mlir::Value shift,
                       KVBlockFormatAttr format, int64_t lastByte);
/// The scale of block `blk`: the block's first bytes, little-endian.
mlir::Value unpackScale(mlir::OpBuilder &b, mlir::Location loc,
                        llvm::function_ref<mlir::Value(mlir::Value)> byteAt,
                        mlir::Value blk, KVBlockFormatAttr format);

/// signs[pos] * magnitude (signs are +-1) as a `type` constant, for the
/// index `pos`: read from 64-bit sign masks rather than a table, so that a
/// kernel loads nothing for it. The Hadamard rotation's signs, in its
/// standalone lowering and in the GEMM epilogue.
mlir::Value signedConstant(mlir::OpBuilder &b, mlir::Location loc,
                           llvm::ArrayRef<int32_t> signs, double magnitude,
                           mlir::Type type, mlir::Value pos);

/// SDPA's per-row steps, shared by its loop-level and workgroup forms.
/// `m`, or 0 where `m` is -inf: the running max of a row that has seen no
/// visible key, so that exp2(x - m) stays 0 rather than NaN.
mlir::Value finiteMax(mlir::OpBuilder &b, mlir::Location loc, mlir::Value m,
                      mlir::Type acc);

/// One element of the attention output: `out / sum` rounded to `storage`,
/// or 0 for a row that saw no key (sum = 0).
mlir::Value normalizedElement(mlir::OpBuilder &b, mlir::Location loc,
                              mlir::Value out, mlir::Value sum, mlir::Type acc,
                              mlir::Type storage);

} // namespace rotor::attn::lowering

#endif // ROTOR_DIALECT_ATTN_UTILS_OPARITHMETIC_H
