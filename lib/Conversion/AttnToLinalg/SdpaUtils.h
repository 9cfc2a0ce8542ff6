//===- SdpaUtils.h - Pieces shared by the two SDPA lowerings ----*- C++ -*-===//

#ifndef ROTOR_LIB_CONVERSION_ATTNTOLINALG_SDPAUTILS_H
#define ROTOR_LIB_CONVERSION_ATTNTOLINALG_SDPAUTILS_H

#include "LoweringUtils.h"

namespace rotor::attn::lowering {

/// `m`, or 0 where `m` is -inf: the running max of a row that has seen no
/// visible key, so that exp2(x - m) stays 0 rather than NaN.
mlir::Value finiteMax(mlir::OpBuilder &b, mlir::Location loc, mlir::Value m,
                      mlir::Type acc);

/// `input` reduced over its innermost dim into `init` (of the other dims)
/// with `combine(element, accumulated)`.
mlir::Value reduceInnermost(
    mlir::ImplicitLocOpBuilder &b, mlir::Value input, mlir::Value init,
    llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                   mlir::Value, mlir::Value)>
        combine);

/// One element of the attention output: `out / sum` rounded to `storage`,
/// or 0 for a row that saw no key (sum = 0).
mlir::Value normalizedElement(mlir::OpBuilder &b, mlir::Location loc,
                              mlir::Value out, mlir::Value sum, mlir::Type acc,
                              mlir::Type storage);

/// The attention output `out[t, h, e] / sum[t, h]` rounded to `storage`,
/// with zeros for a row that saw no key (sum = 0).
mlir::Value normalizeAttention(mlir::ImplicitLocOpBuilder &b, mlir::Value out,
                               mlir::Value sum, mlir::Type acc,
                               mlir::Type storage);

} // namespace rotor::attn::lowering

#endif // ROTOR_LIB_CONVERSION_ATTNTOLINALG_SDPAUTILS_H
