//===- SdpaUtils.h - Pieces shared by the two SDPA lowerings ----*- C++ -*-===//

#ifndef ROTOR_LIB_CONVERSION_ATTNTOLINALG_SDPAUTILS_H
#define ROTOR_LIB_CONVERSION_ATTNTOLINALG_SDPAUTILS_H

#include "LoweringUtils.h"

namespace rotor::attn::lowering {

/// `input` reduced over its innermost dim into `init` (of the other dims)
/// with `combine(element, accumulated)`.
mlir::Value reduceInnermost(
    mlir::ImplicitLocOpBuilder &b, mlir::Value input, mlir::Value init,
    llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                   mlir::Value, mlir::Value)>
        combine);

/// The attention output `out[t, h, e] / sum[t, h]` rounded to `storage`,
/// with zeros for a row that saw no key (sum = 0).
mlir::Value normalizeAttention(mlir::ImplicitLocOpBuilder &b, mlir::Value out,
                               mlir::Value sum, mlir::Type acc,
                               mlir::Type storage);

} // namespace rotor::attn::lowering

#endif // ROTOR_LIB_CONVERSION_ATTNTOLINALG_SDPAUTILS_H
