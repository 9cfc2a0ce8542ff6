//===- LoweringUtils.h - Helpers shared by the attn lowerings ---*- C++ -*-===//

#ifndef ROTOR_LIB_CONVERSION_ATTNTOLINALG_LOWERINGUTILS_H
#define ROTOR_LIB_CONVERSION_ATTNTOLINALG_LOWERINGUTILS_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

namespace rotor::attn::lowering {

/// Rounds or widens a float scalar to `to` (round-to-nearest-even when
/// narrowing; bf16 <-> f16 goes through f32, which is exact).
mlir::Value castFloat(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v,
                      mlir::Type to);

/// One step of a dot product under a precision: `sum + lhs * rhs`, with
/// both operands rounded to `compute` and the product and sum formed in
/// `acc` (so bf16 operands multiply exactly in f32, as on tensor cores).
mlir::Value multiplyAccumulate(mlir::OpBuilder &b, mlir::Location loc,
                               mlir::Value sum, mlir::Value lhs,
                               mlir::Value rhs, mlir::Type compute,
                               mlir::Type acc);

/// A float constant of type `type`.
mlir::Value floatConst(mlir::OpBuilder &b, mlir::Location loc, mlir::Type type,
                       double value);

/// An empty tensor with the shape of `like` (dynamic dims read from it) and
/// element type `elementType`.
mlir::Value emptyLike(mlir::ImplicitLocOpBuilder &b, mlir::Value like,
                      mlir::Type elementType);

/// An empty tensor of `shape`, whose dynamic sizes are taken in order from
/// `dynamicSizes`.
mlir::Value emptyTensor(mlir::ImplicitLocOpBuilder &b,
                        llvm::ArrayRef<mlir::OpFoldResult> shape,
                        mlir::Type elementType);

/// The sizes of `v`, static where they are.
llvm::SmallVector<mlir::OpFoldResult> sizesOf(mlir::ImplicitLocOpBuilder &b,
                                              mlir::Value v);

/// A tensor of `shape` filled with `value`.
mlir::Value filled(mlir::ImplicitLocOpBuilder &b,
                   llvm::ArrayRef<mlir::OpFoldResult> shape,
                   mlir::Type elementType, double value);

/// An elementwise linalg.generic over every dim of `like`, whose body gets
/// the elements of `inputs` (all shaped like `like`) and returns one value
/// of `resultElementType`.
mlir::Value
elementwise(mlir::ImplicitLocOpBuilder &b, mlir::Value like,
            mlir::ValueRange inputs, mlir::Type resultElementType,
            llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                           mlir::ValueRange)>
                body);

/// Terminates a linalg.generic body with one value.
inline void yieldValue(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v) {
  mlir::linalg::YieldOp::create(b, loc, mlir::ValueRange{v});
}

/// `n` parallel iterators followed by `m` reductions.
llvm::SmallVector<mlir::utils::IteratorType> iterators(unsigned parallel,
                                                       unsigned reduction = 0);

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

/// signs[pos] * magnitude (signs are +-1) as a `type` constant, for the
/// index `pos`: read from 64-bit sign masks rather than a table, so that a
/// kernel loads nothing for it. The Hadamard rotation's signs, in its
/// standalone lowering and in the GEMM epilogue.
mlir::Value signedConstant(mlir::OpBuilder &b, mlir::Location loc,
                           llvm::ArrayRef<int32_t> signs, double magnitude,
                           mlir::Type type, mlir::Value pos);

/// How a workgroup buffer holds elements of type `elem`: 16-bit floats as
/// i16, the rest as themselves. A bf16 value kept in a register across
/// blocks is promoted to f32 by hosts without native bf16 and truncated
/// back through a libcall (__truncsfbf2) that JIT-compiled code lacks; as
/// i16 it is only moved.
mlir::Type carrierType(mlir::Type elem);
/// `v` as its carrier, and back.
mlir::Value toCarrier(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v);
mlir::Value fromCarrier(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v,
                        mlir::Type elem);

/// The `width` elements at `indices` of `memref` (innermost dim), read as one
/// 16-byte-aligned vector load, as carriers.
llvm::SmallVector<mlir::Value>
loadAlignedVector(mlir::OpBuilder &b, mlir::Location loc, mlir::Value memref,
                  mlir::ValueRange indices, int64_t width);

/// A projection whose only use is its split into heads, whose only use is a
/// RoPE with a rotary dim (the Q and K paths): what an epilogue can fuse.
struct ProjectionIntoRope {
  mlir::tensor::ExpandShapeOp expand;
  RopeOp rope;
};
mlir::FailureOr<ProjectionIntoRope>
matchProjectionIntoRope(LinearOp linear, mlir::PatternRewriter &rewriter);

/// Registers the lowering patterns of each op family.
void populateLinearLoweringPatterns(mlir::RewritePatternSet &patterns);
void populateNormAndGateLoweringPatterns(mlir::RewritePatternSet &patterns);
void populateDataMovementLoweringPatterns(mlir::RewritePatternSet &patterns);
void populateRopeLoweringPatterns(mlir::RewritePatternSet &patterns);
void populateRopeEpilogueFusionPatterns(mlir::RewritePatternSet &patterns);
void populateCaptureLoweringPatterns(mlir::RewritePatternSet &patterns);
void populateHadamardLoweringPatterns(mlir::RewritePatternSet &patterns);
void populateQuantizationLoweringPatterns(mlir::RewritePatternSet &patterns);
void populateSdpaLoweringPatterns(mlir::RewritePatternSet &patterns,
                                  int64_t kvTileSize);
void populateWorkgroupTiledSdpaPatterns(mlir::RewritePatternSet &patterns);
/// Why `op` cannot be a workgroup-tiled SDPA kernel, or "" when it can.
std::string workgroupTiledSdpaObstacle(SdpaOp op);
/// The attn.dequantize that produces the SDPA operand `kv` when the SDPA is
/// its only reader (a workgroup SDPA then stages from its codes), or null.
DequantizeOp dequantizationReadBySdpa(mlir::Value kv);
void populateWorkgroupTiledLinearPatterns(mlir::RewritePatternSet &patterns);
void populateWorkgroupGemvPatterns(mlir::RewritePatternSet &patterns);
void populateWorkgroupHeadChainPatterns(mlir::RewritePatternSet &patterns);
void populateSplitKVDecodeSdpaPatterns(mlir::RewritePatternSet &patterns,
                                       int64_t kvTileSize);

} // namespace rotor::attn::lowering

#endif // ROTOR_LIB_CONVERSION_ATTNTOLINALG_LOWERINGUTILS_H
