//===- Kernels.h - The workgroup kernels' patterns --------------*- C++ -*-===//
//
// Each workgroup kernel (docs/KERNELS.md) as a rewrite pattern, for
// rotor-lower-workgroup-kernels.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_LIB_CODEGEN_KERNELS_KERNELS_H
#define ROTOR_LIB_CODEGEN_KERNELS_KERNELS_H

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/PatternMatch.h"

#include <string>

namespace rotor::attn::lowering {

void populateWorkgroupTiledSdpaPatterns(mlir::RewritePatternSet &patterns);
/// Why `op` cannot be a workgroup-tiled SDPA kernel, or "" when it can.
std::string workgroupTiledSdpaObstacle(SdpaOp op);
/// The attn.dequantize that produces the SDPA operand `kv` when the SDPA is
/// its only reader (a workgroup SDPA then stages from its codes), or null.
DequantizeOp dequantizationReadBySdpa(mlir::Value kv);
void populateWorkgroupTiledLinearPatterns(mlir::RewritePatternSet &patterns);
void populateWorkgroupGemvPatterns(mlir::RewritePatternSet &patterns);
void populateWorkgroupHeadChainPatterns(mlir::RewritePatternSet &patterns);

} // namespace rotor::attn::lowering

#endif // ROTOR_LIB_CODEGEN_KERNELS_KERNELS_H
