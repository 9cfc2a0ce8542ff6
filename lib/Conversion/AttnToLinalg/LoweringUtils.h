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
#include "rotor/Dialect/Attn/Utils/OpArithmetic.h"
#include "rotor/Dialect/Attn/Utils/OpChains.h"
#include "rotor/Conversion/AttnToLinalg/AttnToLinalg.h"

namespace rotor::attn::lowering {

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

/// [..., L] viewed as [..., L / B, B].
mlir::Value expandBlocks(mlir::ImplicitLocOpBuilder &b, mlir::Value v,
                         int64_t blockSize);

/// [..., L / B, B] back to [..., L].
mlir::Value collapseBlocks(mlir::ImplicitLocOpBuilder &b, mlir::Value v);

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

} // namespace rotor::attn::lowering

#endif // ROTOR_LIB_CONVERSION_ATTNTOLINALG_LOWERINGUTILS_H
