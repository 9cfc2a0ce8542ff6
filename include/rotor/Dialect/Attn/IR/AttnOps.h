//===- AttnOps.h - Operations of the attn dialect ---------------*- C++ -*-===//

#ifndef ROTOR_DIALECT_ATTN_IR_ATTNOPS_H
#define ROTOR_DIALECT_ATTN_IR_ATTNOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "rotor/Dialect/Attn/IR/AttnAttrs.h"
#include "rotor/Dialect/Attn/IR/AttnDialect.h"

#define GET_OP_CLASSES
#include "rotor/Dialect/Attn/IR/AttnOps.h.inc"

namespace rotor::attn {

/// The discardable attribute that records how an op is computed (see
/// #attn.kernel and rotor-select-kernel-config).
constexpr llvm::StringLiteral kKernelConfigAttrName = "attn.kernel";

/// Discardable attributes of the linalg.generic that convert-attn-to-linalg
/// builds for dequantize(unpack_blocks(bytes)): the block format it decodes
/// and the dequantization's compute type. Host code generation decodes such
/// a generic a block at a time with SIMD vectors
/// (rotor-vectorize-block-decoding); without them it is an ordinary
/// elementwise generic.
constexpr llvm::StringLiteral kBlockDecodingAttrName = "attn.block_decoding";
constexpr llvm::StringLiteral kBlockDecodingComputeAttrName =
    "attn.block_decoding_compute";

/// A discardable unit attribute on the scf.for over key tiles of a decode
/// step's loop-form attn.sdpa, which reads each tile of the KV cache once
/// and from memory: host code generation prefetches the next tile's rows
/// while this one is computed (rotor-prefetch-next-key-tile).
constexpr llvm::StringLiteral kStreamedKeyTilesAttrName =
    "attn.streamed_key_tiles";

/// The `attn.kernel` config of `op`, or null.
inline KernelConfigAttr getKernelConfig(mlir::Operation *op) {
  return op->getAttrOfType<KernelConfigAttr>(kKernelConfigAttrName);
}

/// What a value read from a KV cache was written from: `v` traced back
/// through dequantize, unpack_blocks, kv_cache_read, kv_cache_append (to
/// its update), pack_blocks, quantize, attn.capture and the casts into and
/// out of a 16-bit cache. `throughWrite` says whether the trace passed what
/// this function writes (an append, pack or quantize); when it did not and
/// `source` is a block argument, the cache was written by another call.
struct KVCacheWriteTrace {
  mlir::Value source;
  bool throughWrite = false;
};
KVCacheWriteTrace traceKVCacheWrite(mlir::Value v);

/// The bytes one block of `format` takes packed (attn.pack_blocks): its
/// scale, then `block_size · bits / 8` bytes of codes.
int64_t packedBlockBytes(KVBlockFormatAttr format);

} // namespace rotor::attn

#endif // ROTOR_DIALECT_ATTN_IR_ATTNOPS_H
