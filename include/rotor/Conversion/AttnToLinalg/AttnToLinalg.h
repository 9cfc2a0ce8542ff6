//===- AttnToLinalg.h - attn ops to linalg, tensor and scf ------*- C++ -*-===//
//
// The value-semantic lowering of attn ops (convert-attn-to-linalg), as
// pattern sets other passes can reuse. Workgroup kernels are not here: they
// are built by rotor-lower-workgroup-kernels (Codegen/Kernels) from the
// decision rotor-select-kernel-config records.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_CONVERSION_ATTNTOLINALG_ATTNTOLINALG_H
#define ROTOR_CONVERSION_ATTNTOLINALG_ATTNTOLINALG_H

#include "mlir/IR/PatternMatch.h"

namespace rotor::attn::lowering {

/// Registers the lowering patterns of each op family.
void populateLinearLoweringPatterns(mlir::RewritePatternSet &patterns);
void populateNormAndGateLoweringPatterns(mlir::RewritePatternSet &patterns);
void populateDataMovementLoweringPatterns(mlir::RewritePatternSet &patterns);
/// `cosSinTable`: cos and sin once per token and pair, then one pass over
/// the pairs (the host's form); else one generic computing them per element.
void populateRopeLoweringPatterns(mlir::RewritePatternSet &patterns,
                                  bool cosSinTable = false);
void populateRopeEpilogueFusionPatterns(mlir::RewritePatternSet &patterns);
void populateCaptureLoweringPatterns(mlir::RewritePatternSet &patterns);
/// `vectorLanes` > 0: rows whose groups are whole vectors of that many
/// lanes are rotated in SIMD vectors (the host); 0: butterfly-stage generics.
void populateHadamardLoweringPatterns(mlir::RewritePatternSet &patterns,
                                      int64_t vectorLanes = 0);
void populateQuantizationLoweringPatterns(mlir::RewritePatternSet &patterns);
void populateBlockPackingLoweringPatterns(mlir::RewritePatternSet &patterns);
/// SDPA's loop forms: each op as its `attn.kernel` config says (`loops`
/// or `split_kv`, with its KV tile), or, without one, over tiles of
/// `kvTileSize` keys, as split-KV attention for one query row when
/// `splitKVWithoutConfig`. With `queryBlock` > 0, the loop form runs over
/// blocks of that many queries times KV heads (an scf.forall), each
/// attending one KV head's group of query heads to the key tiles it can
/// see; and with `splitKeys` > 0 too, a single block (a decode step) runs
/// over KV heads times ranges of that many keys, then a combine. Rounded
/// probabilities (round_probabilities) are a compute-typed tensor with
/// `narrowProbabilities` in tiles of many query rows (a dynamic count, or
/// more than `queryBlock`) when V's head dim is whole 64-column blocks,
/// else an f32 tensor of the rounded values.
void populateSdpaLoweringPatterns(mlir::RewritePatternSet &patterns,
                                  int64_t kvTileSize, int64_t queryBlock = 0,
                                  int64_t splitKeys = 0,
                                  bool narrowProbabilities = false);
void populateSplitKVDecodeSdpaPatterns(mlir::RewritePatternSet &patterns,
                                       int64_t kvTileSize,
                                       bool splitKVWithoutConfig);

} // namespace rotor::attn::lowering

#endif // ROTOR_CONVERSION_ATTNTOLINALG_ATTNTOLINALG_H
