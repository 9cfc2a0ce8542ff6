//===- Passes.td - Rotor's conversion passes ---------------*- tablegen -*-===//

#ifndef ROTOR_CONVERSION_PASSES_TD
#define ROTOR_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertAttnToLinalg : Pass<"convert-attn-to-linalg", "mlir::ModuleOp"> {
  let summary = "Lower attn ops to linalg, tensor, arith, math and scf";
  let description = [{
    Lowers every computing attn op that no workgroup kernel took
    (rotor-lower-workgroup-kernels runs first) to value-semantic loop nests:
    projections to `linalg.generic` contractions that start from the bias (a
    projection that only feeds a RoPE through its head split becomes one
    `scf.forall` over tokens and heads that projects and rotates each head),
    RoPE to one elementwise `linalg.generic` with the inverse frequencies as
    an f64 constant (or computed in the kernel for dynamic NTK scaling),
    Hadamard rotations to log2(G) butterfly stages (or, with
    `hadamard-lanes`, each row's groups rotated in SIMD vectors), RMS norm and block
    quantization to a reduction plus an elementwise pass, block packing
    and unpacking to elementwise passes that read the bytes a value spans
    (an unpacking read only by a dequantization becomes one generic over
    [.., blocks, groups, codes per group] that decodes each value from the
    bytes, marked `attn.block_decoding` for the host's
    rotor-vectorize-block-decoding), the KV cache to
    `tensor.insert_slice`/`tensor.extract_slice`, and SDPA to an `scf.for`
    over KV tiles carrying the running max, sum and output (online softmax
    in the exp2 domain, fully masked tiles skipped) or, for one query row
    (`split-kv-decode`), to split-KV attention: all tiles' max, sum and
    output in parallel (`linalg.generic`s), then one combine. An
    `attn.sdpa` with an `attn.kernel` config (`loops` or `split_kv`, see
    rotor-select-kernel-config) takes the form and KV tile it names; the
    options only serve ops without one.

    Precision attributes become explicit `arith.extf`/`arith.truncf` at the
    points the op semantics round. `attn.param` ops must have been outlined
    (`attn-outline-params`) first. `attn.capture` becomes a call to the
    runtime's `rotor_capture(id, data, positions)` (data widened to f32,
    positions to i64); the module's `attn.captures` lists the tags by id.
  }];
  let dependentDialects = [
    "mlir::affine::AffineDialect",
    "mlir::arith::ArithDialect",
    "mlir::bufferization::BufferizationDialect",
    "mlir::func::FuncDialect",
    "mlir::linalg::LinalgDialect",
    "mlir::math::MathDialect",
    "mlir::memref::MemRefDialect",
    "mlir::scf::SCFDialect",
    "mlir::tensor::TensorDialect",
    "mlir::vector::VectorDialect",
  ];
  let options = [
    Option<"kvTileSize", "kv-tile-size", "int64_t", /*default=*/"64",
           "Keys per tile of the online-softmax loop of an attn.sdpa without "
           "an attn.kernel config">,
    Option<"splitKVDecode", "split-kv-decode", "bool", /*default=*/"true",
           "Lower an attn.sdpa with one query row (a decode step) and no "
           "attn.kernel config as split-KV attention (flash-decoding): every "
           "KV tile at once, then one combine, instead of a loop over the "
           "tiles">,
    Option<"sdpaQueryBlock", "sdpa-query-block", "int64_t", /*default=*/"0",
           "Queries per block of the loop-form attn.sdpa (flash-style: an "
           "scf.forall over blocks x KV heads, each attending one KV head's "
           "group of query heads to the key tiles up to its last query); 0 "
           "runs all queries and heads through each tile at once. The "
           "host pipeline uses 32; not for GPU targets (a block's "
           "temporaries are allocations)">,
    Option<"ropeCosSinTable", "rope-cos-sin-table", "bool",
           /*default=*/"false",
           "Lower attn.rope as a table of cos and sin per token and RoPE pair "
           "and one pass over the pairs (both elements of a pair read "
           "through affine maps, so it vectorizes), instead of one generic "
           "computing the angle and its cos and sin per element; "
           "bit-identical. The host pipeline uses it">,
    Option<"sdpaKeySplit", "sdpa-key-split", "int64_t", /*default=*/"0",
           "Ranges of a decode step's loop-form attn.sdpa (one block of "
           "sdpa-query-block queries, which must be > 0), counted in keys "
           "of one KV head: an scf.forall over ranges of up to "
           "sdpa-key-split / Hkv keys of every KV head (rounded down to "
           "whole tiles where that is at least one). A range is one "
           "contiguous run of the cache, its tile loop marked "
           "attn.streamed_key_tiles. The ranges are balanced: as many as "
           "that takes, rounded up to an even count when more than one, "
           "share the keys equally (in multiples of 16 keys when the most "
           "a range holds is a multiple of 16; one range fewer where that "
           "rounding would leave the last one empty), so that two threads "
           "take equal work. Each attends all query heads to its range's "
           "tiles, then one combine runs in range order (flash-decoding in "
           "the host's loop form). The ranges depend only on the number of "
           "keys, so the results do not depend on the threads. A step with "
           "no more keys than one range holds runs its one range as an "
           "scf.forall over the KV heads instead (each its group of query "
           "heads), so that it still has Hkv iterations for the threads. 0 "
           "keeps one range per KV head. The host pipeline uses 2048">,
    Option<"hadamardLanes", "hadamard-lanes", "int64_t", /*default=*/"0",
           "Rotate each row's Hadamard groups in SIMD vectors of this many "
           "lanes, one pass over memory (an scf.forall over rows; groups "
           "must be whole vectors along the innermost dim, read without a "
           "stride, and the compute type f32 or f64); 0 emits one "
           "elementwise generic per butterfly stage. The host pipeline uses "
           "its f32 lanes (16 with AVX-512, 8 with AVX2)">,
    Option<"narrowProbabilities", "narrow-probabilities", "bool",
           /*default=*/"false",
           "Where an attn.sdpa rounds its probabilities "
           "(round_probabilities), the loop form's tiles of many query rows "
           "(a query count known only at run time or above "
           "sdpa-query-block) whose V head dim is whole blocks of 64 round "
           "them into a tensor of the compute type, which P·V widens (a "
           "product of bf16 values: the host's AVX512-BF16 P·V reads it as "
           "pairs); otherwise into an f32 tensor of the rounded values, "
           "which P·V reads as it reads unrounded ones (a broadcast, with "
           "no conversion per use). The same values either way. The host "
           "pipeline sets it with host-bf16-dot">,
    Option<"fuseRopeEpilogue", "fuse-rope-epilogue", "bool", /*default=*/"true",
           "Rotate Q/K heads in the projection's epilogue (scf.forall over "
           "tokens and heads) when the projection feeds only the RoPE">,
  ];
}

#endif // ROTOR_CONVERSION_PASSES_TD
