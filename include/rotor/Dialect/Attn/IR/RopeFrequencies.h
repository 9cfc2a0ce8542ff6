//===- RopeFrequencies.h - RoPE inverse frequencies -------------*- C++ -*-===//

#ifndef ROTOR_DIALECT_ATTN_IR_ROPEFREQUENCIES_H
#define ROTOR_DIALECT_ATTN_IR_ROPEFREQUENCIES_H

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include <optional>

namespace rotor::attn {

/// The inverse frequencies inv_freq_i, i < R/2, of `op` in double precision,
/// with its scaling applied as Hugging Face's formulas do. Dynamic NTK
/// scaling depends on the positions at run time: it returns std::nullopt.
std::optional<llvm::SmallVector<double>> getStaticInverseFrequencies(RopeOp op);

/// The factor cos and sin are multiplied by (YaRN's attention factor, else 1).
double getRopeAttentionFactor(RopeOp op);

/// The same from a RoPE's parameters (`scaling` may be null); nullopt when
/// the scaling is dynamic NTK, whose frequencies depend on the positions.
std::optional<llvm::SmallVector<double>>
getStaticInverseFrequencies(int64_t rotaryDim, double theta,
                            mlir::Attribute scaling);
double getRopeAttentionFactor(mlir::Attribute scaling);

/// `op`'s layout, rotary dim, theta and scaling as one attribute.
RopeParamsAttr getRopeParams(RopeOp op);

} // namespace rotor::attn

#endif // ROTOR_DIALECT_ATTN_IR_ROPEFREQUENCIES_H
