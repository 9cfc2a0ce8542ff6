//===- SdpaUtils.h - Pieces shared by the two SDPA lowerings ----*- C++ -*-===//

#ifndef ROTOR_LIB_CONVERSION_ATTNTOLINALG_SDPAUTILS_H
#define ROTOR_LIB_CONVERSION_ATTNTOLINALG_SDPAUTILS_H

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

namespace rotor::attn::lowering {

/// The query as both SDPA lowerings read it: a tensor of the `compute`
/// type, each element rounded once, since the scores read every element
/// once per key (a per-step rounding there cost more than the scores'
/// FMAs). The scores' payload only widens it to `acc`, so where `compute`
/// is bf16 it is a product of bf16 values, which the host's packed scores
/// run as AVX512-BF16 dot products. A query that is a widening of a
/// `compute` tensor (`arith.extf`: what attn-select-precision's plans give)
/// is read narrow, not rounded again. The values are the per-step
/// rounding's, so the results are the same bits.
mlir::Value queryInComputePrecision(mlir::ImplicitLocOpBuilder &b,
                                    mlir::Value q, mlir::Type compute);

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

/// attn.sdpa's key-bias term, as both SDPA lowerings form it: per query,
/// head and RoPE pair, A and B [Tq, Hq, R/2] in the accumulate type; the
/// pairs' inverse frequencies [R/2] (f64) and the RoPE's attention factor;
/// and cos and sin of j · inv_freq for the keys j of one tile [tile, R/2]
/// (compile-time constants): a tile's angles are its first key's plus
/// these, so each tile takes R/2 sines and cosines, not R/2 per key. The
/// bias's dims past the rotary dim add one constant per query and head,
/// which the softmax cancels: they are dropped.
struct KeyBiasTerm {
  mlir::Value a, b, invFreq, stepCos, stepSin;
  /// For forms that add RoPE(b, j) to each key instead (the loop form):
  /// the bias's two coefficients [Hkv, D], RoPE(b, j)[d] = self[d]·cos(φ_i)
  /// + cross[d]·sin(φ_i) for d's pair i (self b_a and cross -b_c for the
  /// pair's first dim, b_c and b_a for its second, both 0 past the rotary
  /// dim), and d's pair as an affine expression of d.
  mlir::Value biasSelf, biasCross;
  /// stepCos/stepSin per dim [tile, D]: each dim's pair's value (0 past
  /// the rotary dim), so that the loop form's per-key pass reads them
  /// contiguously along D.
  mlir::Value stepCosPerDim, stepSinPerDim;
  int64_t dims = 0;
  bool halfSplit = true;
  double attentionFactor = 1.0;
  int64_t pairs = 0;
  mlir::Type acc;
};
KeyBiasTerm planKeyBiasTerm(mlir::ImplicitLocOpBuilder &b, SdpaOp op,
                            int64_t tile, mlir::OpFoldResult tq);

/// cos and sin [rows, R/2] (times the attention factor) of the angles of
/// key `firstKey(r)` (an index) for each row r.
std::pair<mlir::Value, mlir::Value> keyBiasAnchors(
    mlir::ImplicitLocOpBuilder &b, const KeyBiasTerm &term,
    mlir::OpFoldResult rows,
    llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                   mlir::Value)>
        firstKey);

/// (cos(a + b), sin(a + b)) from cos and sin of a and of b.
std::pair<mlir::Value, mlir::Value> addAngles(mlir::OpBuilder &b,
                                              mlir::Location loc,
                                              mlir::Value cosA,
                                              mlir::Value sinA,
                                              mlir::Value cosB,
                                              mlir::Value sinB);

} // namespace rotor::attn::lowering

#endif // ROTOR_LIB_CONVERSION_ATTNTOLINALG_SDPAUTILS_H
