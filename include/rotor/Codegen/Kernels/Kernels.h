//===- Kernels.h - The workgroup kernels: what each can build ---*- C++ -*-===//
//
// Each workgroup kernel (docs/KERNELS.md) as a rewrite pattern that builds
// the kernel an op's `#attn.kernel` config names, and the facts the
// kernel-config pass needs to choose one: the fixed geometry of each
// emitter and why a given op cannot be built as that kernel. The heuristics
// that choose between kernels live in Codegen/Config, not here.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_CODEGEN_KERNELS_KERNELS_H
#define ROTOR_CODEGEN_KERNELS_KERNELS_H

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/PatternMatch.h"

#include <optional>
#include <string>

namespace rotor::attn::lowering {

/// Static workgroup memory a CUDA kernel may use without opting in to more
/// (every chip since sm_50); the kernels' buffers are static.
constexpr int64_t kStaticWorkgroupBytes = 48 * 1024;
/// The largest grid.y (and grid.z) of a launch.
constexpr int64_t kMaxGridY = 65535;

/// The GEMM's geometry: output tiles of 64 tokens x 64 columns for 128
/// threads of 4x8 micro-tiles (a head-chain epilogue uses one head per
/// column tile instead). Static token counts below `minRows` are GEMVs.
struct GemmGeometry {
  static constexpr int64_t rows = 64, cols = 64, threads = 128;
  static constexpr int64_t minRows = 16;
};
/// The GEMV's geometry: 4 outputs per workgroup, each W row read by a
/// warp's 32 lanes, for up to 15 (static) tokens.
struct GemvGeometry {
  static constexpr int64_t outputs = 4, lanes = 32;
  static constexpr int64_t threads = outputs * lanes;
  static constexpr int64_t maxTokens = 15;
};
/// The head-chain kernel: up to 8 tokens of one head per workgroup.
struct HeadChainGeometry {
  static constexpr int64_t rows = 8;
};

/// Tiles of the workgroup SDPA: rows ((query, query head) pairs) per
/// workgroup and keys per KV tile.
struct SdpaTiles {
  int64_t rows, keys;
};
/// The largest tiles whose buffers fit `bytes` of shared memory for `op`
/// (keys from 64 down to 8; rows the same, or fewer when the call has
/// fewer static rows), or nullopt.
std::optional<SdpaTiles>
largestWorkgroupSdpaTiles(SdpaOp op, int64_t bytes = kStaticWorkgroupBytes);
/// Why `op` cannot be a workgroup SDPA with `tiles`, or "" when it can.
std::string workgroupSdpaObstacle(SdpaOp op, SdpaTiles tiles);
/// Why `op` cannot be a workgroup SDPA with any tiles, or "".
std::string workgroupSdpaObstacle(SdpaOp op);
/// Why `op` cannot be a workgroup GEMM / GEMV (with `config`'s geometry,
/// when one is given), or "" when it can.
std::string gemmObstacle(LinearOp op, KernelConfigAttr config = {});
std::string gemvObstacle(LinearOp op, KernelConfigAttr config = {});
/// Why the per-head chain starting at `op` (an attn.rope, attn.hadamard or
/// attn.quantize) cannot be a head-chain kernel of up to `rows` tokens per
/// workgroup, or "" when it can.
std::string headChainObstacle(mlir::Operation *op,
                              int64_t rows = HeadChainGeometry::rows);

/// The attn.dequantize that produces the SDPA operand `kv` when the SDPA is
/// its only reader (a workgroup SDPA then stages from its codes), or null.
DequantizeOp dequantizationReadBySdpa(mlir::Value kv);

/// The patterns of rotor-lower-workgroup-kernels: each builds the kernel of
/// an op whose `attn.kernel` config names it, and leaves other ops alone.
void populateWorkgroupTiledSdpaPatterns(mlir::RewritePatternSet &patterns);
void populateWorkgroupTiledLinearPatterns(mlir::RewritePatternSet &patterns);
void populateWorkgroupGemvPatterns(mlir::RewritePatternSet &patterns);
void populateWorkgroupHeadChainPatterns(mlir::RewritePatternSet &patterns);

} // namespace rotor::attn::lowering

#endif // ROTOR_CODEGEN_KERNELS_KERNELS_H
