//===- Passes.td - Rotor's codegen passes ------------------*- tablegen -*-===//
//
// Passes that decide and build kernels and prepare code for the host or
// the GPU: kernel configuration (Config/), workgroup kernels (Kernels/),
// GPU mapping and its host emulation (GPU/), and host-only checks and
// rewrites (Host/). All are named rotor-*; graph passes on the attn
// dialect are attn-* (Dialect/Attn/Transforms) and the value-semantic
// lowering is convert-attn-to-linalg (Conversion/).
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_CODEGEN_PASSES_TD
#define ROTOR_CODEGEN_PASSES_TD

include "mlir/Pass/PassBase.td"

def SelectKernelConfig : Pass<"rotor-select-kernel-config", "mlir::ModuleOp"> {
  let summary = "Record how each attn.sdpa, attn.linear and head chain is computed";
  let description = [{
    Chooses, for every `attn.sdpa`, `attn.linear` and op that starts a
    per-head chain (RoPE, Hadamard rotation, quantization), the kernel that
    computes it, and records the choice as its `attn.kernel` attribute
    (`#attn.kernel<strategy, tiles...>`; see the attribute's description):
    `rotor-lower-workgroup-kernels` and `convert-attn-to-linalg` then build
    what it says. The choice rests on the options (which kernel families
    are allowed: the host pipeline allows none by default, the GPU pipeline
    all) and on one target description (`chip`: its SM count sets how many
    workgroups a KV split aims at; 48 KiB of static shared memory bounds
    every kernel's tiles):

    * `attn.sdpa`: `workgroup_tiled` with the largest tiles that fit when
      allowed and possible (a warning says why not otherwise), else
      `split_kv` for one query row when allowed, else `loops`; `keys` of
      the loop forms is `kv-tile-size`.
    * `attn.linear`: `gemv` for 1 to 15 static tokens, `gemm` otherwise,
      when workgroup projections are allowed and the weight is static;
      else `loops`.
    * head chains: `head_chain` on each op that can start one (a rotation
      or quantization is in it), when workgroup projections are allowed.

    An op that already has an `attn.kernel` attribute keeps it: this is how
    hand-written IR forces a kernel.
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90\"",
           "The GPU the kernels are configured for">,
    Option<"kvTileSize", "kv-tile-size", "int64_t", /*default=*/"64",
           "Keys per tile of the loop-level SDPA forms">,
    Option<"splitKVDecode", "split-kv-decode", "bool", /*default=*/"false",
           "Allow split-KV attention (flash-decoding) for one query row">,
    Option<"workgroupTiledSdpa", "workgroup-tiled-sdpa", "bool",
           /*default=*/"false",
           "Allow workgroup-tiled SDPA kernels (FlashAttention-2's schedule, "
           "with KV splits when there are few row tiles)">,
    Option<"workgroupTiledLinear", "workgroup-tiled-linear", "bool",
           /*default=*/"false",
           "Allow workgroup GEMM and GEMV kernels for projections, and "
           "head-chain kernels">,
    Option<"threads", "threads", "int64_t", /*default=*/"128",
           "Threads per workgroup of the SDPA and head-chain kernels (the "
           "GPU mapping's block size)">,
  ];
}

def LowerWorkgroupKernels : Pass<"rotor-lower-workgroup-kernels", "mlir::ModuleOp"> {
  let summary = "Build workgroup kernels for attn ops (SDPA, GEMM, GEMV, head chains)";
  let description = [{
    Lowers the attn ops that run as workgroup kernels (docs/KERNELS.md) to
    an `scf.forall` over workgroups mapped to `#gpu.block`s whose body is a
    fixed sequence of thread phases (`scf.forall` mapped to
    `#gpu.thread<x>`) over workgroup buffers: prefill SDPA as
    FlashAttention-2-style tiles (KV split across workgroups when there are
    few row tiles, dequantizing a quantized K/V while it stages it),
    projections as tiled GEMMs or, for a few tokens, GEMVs, and a per-head
    chain of RoPE, Hadamard rotation and block quantization in the GEMM's
    epilogue or as a kernel of its own. The ops it does not build a kernel
    for are left to convert-attn-to-linalg, which runs after it.

    Which op becomes which kernel, with which tiles, is the `attn.kernel`
    attribute `rotor-select-kernel-config` records (or hand-written IR
    sets); this pass decides nothing. An op whose recorded kernel cannot be
    built is an error naming the op and the reason.

    The phases are still loops, so the host runs them one after another
    and checks their arithmetic bit for bit against convert-attn-to-linalg;
    `rotor-map-workgroup-loops-to-gpu` turns them into GPU kernels.
  }];
  let dependentDialects = [
    "mlir::arith::ArithDialect",
    "mlir::bufferization::BufferizationDialect",
    "mlir::gpu::GPUDialect",
    "mlir::math::MathDialect",
    "mlir::memref::MemRefDialect",
    "mlir::scf::SCFDialect",
    "mlir::tensor::TensorDialect",
    "mlir::vector::VectorDialect",
  ];
}

def MemrefCopyToLinalg : Pass<"rotor-memref-copy-to-linalg"> {
  let summary = "Rewrite memref.copy as linalg.copy";
  let description = [{
    Bufferization and deallocation create `memref.copy`, which the LLVM
    lowering turns into a call to `memrefCopy` from MLIR's C runner
    utilities. Compiled bundles must not depend on that library, so copies
    become `linalg.copy` and are lowered to loops like every other linalg
    op.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect"];
}

def LowerReductionsToRegisterLoops
    : Pass<"rotor-lower-reductions-to-register-loops"> {
  let summary = "Reductions as loops that keep their sum in a register";
  let description = [{
    A linalg.generic on buffers with one output indexed by its parallel
    dims, and its reduction dims innermost, becomes an `scf.parallel` over
    the parallel dims around `scf.for` loops that carry the partial sum as
    an iter_arg; the output is loaded once and stored once.
    `convert-linalg-to-parallel-loops` instead loads and stores the output
    at every step, which LLVM cannot keep in a register (it cannot prove the
    output distinct from the inputs) and so never vectorizes.

    A projection `y[t, n] += x[t, e] * W[n, e]` with at least 48 tokens
    (20 when the weight, as f32, is over 8 MiB and so streamed from
    memory, or 33 when its f32 panels overflow a 1 MiB L2; 6 for the bf16
    pair form below; tested at run time when T is dynamic) and a static column count that the block width divides (16
    columns, two AVX2 vectors; 64 with `vector-registers=32`) runs packed:
    one loop over blocks of that many columns (the threads' work), each
    copying its weight rows into a heap panel `[E, width]` (element e of
    every column contiguous: blocks of 16 x 16 elements, 8 x 8 with AVX2,
    transposed in registers, the last E mod 16 one at a time; a narrower
    weight that the payload only widens is widened into an f32 panel) and
    then running blocks of 6 tokens as outer products, each token's row of
    sums a `vector` iter_arg: per e, one load of the panel's row feeds six
    broadcast FMAs (6 x 4 AVX-512 sums, as BLIS's micro-kernels); the
    last T mod 6 tokens in one block of 5, 4, 3, 2 or 1. Each step of e of a block
    of 6 also prefetches one 64-byte line of the weight rows of the
    thread's next panel (`memref.prefetch`, into L1), so that packing it
    reads cache, not memory (a weight contiguous along E, without a row
    epilogue, which packs every panel first; the bf16 pair form below
    alike, two lines per step of pairs).
    Each output is summed in
    order over e (contract, no reassoc), so a token's bits depend on
    whether its call took the packed form (as a BLAS's do on the shapes it
    is called with); never on the threads. Only f32 sums (the block sizes
    count f32 registers).

    Epilogues (`packed-epilogues`, on by default). When the op right before
    a packed projection initializes its output (a generic broadcasting a
    bias `y[t, n] = b[n]`, or a `linalg.fill`), the sums start from the
    bias loaded into registers and that pass over the output is gone. When
    the output then feeds only a half-split RoPE (a generic over the output
    viewed as `[T, H, 2, D/2]` reading `y[t, h, 0, i]`, `y[t, h, 1, i]` and
    tables `[t, i]`, with D a multiple of the block width), each panel takes
    the two halves of the same pairs (columns `hD + qw/2 + j` and D/2
    further, for block q of head h), so a finished row of sums holds both
    elements of each pair: it is rotated in registers and stored straight
    into the RoPE's output, and the RoPE's pass over memory is gone. The
    fused projection is emitted at the RoPE's place, which needs every op
    in between to write only fresh buffers and leave the projection's
    buffers alone. The arithmetic is the same, op for op: the outputs are
    bit-identical to the unfused passes.

    Row epilogues (also `packed-epilogues`). The ops after the projection
    (or its RoPE) that compute each row (token t, head h) of what they
    write from the same rows of the projection's heads alone (a KV cache's
    write path: a rotation's loop, a quantization's scale and codes, the
    bit-packing into the cache's slots; Qwen3's per-head RMSNorm; a RoPE
    that is not taken into the registers; Q's folded rotation) run on each
    chunk of a head's rows right after the projection computed it, while
    the rows are in cache. Every op that touches a buffer the chain writes
    must be row-local (its accesses of those buffers at the same (t, h)
    pair of its loop dims or ivs, through views that keep the token and
    head axes), else the chain ends before it; every other op in between
    must commute with the chain (it stays before the fused form, emitted
    at the last row op's place). The panels are then all packed first (one
    buffer), and one thread per (head, chunk of 48 rows per panel of the
    head) runs the chunk against each of the head's panels, then each row
    op on the chunk: a linalg op as its tile (TilingInterface), a loop with
    its token and head bounds clamped. The same ops on fewer rows: bit-
    identical to the unfused passes, except where the tile of a reduction
    takes another loop form than the whole (a per-head RMSNorm's sum of
    squares, unfused jammed over 4 tokens x 4 heads), which moves its
    rounding by an ulp.

    bf16 products (`bf16-dot-product`, for CPUs with AVX512-BF16). When a
    packed projection's payload rounds both operands to bf16 (an `f32`
    input through `arith.truncf`, round to nearest even, or a `bf16`
    input), widens them and adds their product to an `f32` sum (an
    `attn.linear` with `compute = bf16, accumulate = f32`), and its depth
    is a multiple of 32, its panels hold bf16 pairs `[E/2, 2 x width]`
    (16 rows x 16 pairs at a time, transposed in registers as i32 lanes) and
    each step of two e is one `x86vector.avx512.dot` (vdpbf16ps) per
    vector of 16 sums, against the token's pair of inputs broadcast from a
    bf16 copy of its row made once per call. vdpbf16ps is two FMAs in
    sequence, first the pair's odd element then its even one (measured on
    AMD Zen 4, as Intel's SDM defines it); each pair is stored swapped, so
    the sums take e in order: the bits are those of the f32 form's FMAs
    on the rounded operands, except that the instruction treats bf16
    denormal operands and f32 denormal sums as zero. Twice the products
    per instruction of the f32 form, half the panel's bytes.

    Rounding hoisted out of the loops. When a projection or other
    register-form reduction runs in a form other than the bf16 pair form
    (the packed f32 form, the dot-product form of a decode step or of a
    prefill too short to pack) and its payload rounds an input to a
    narrower float and widens it back (compute narrower than the operand)
    while reading each element of that input more than once (a parallel
    dim its map leaves out has more than one iteration, or an unknown
    number: a decode step's x for every row of W, a prefill's W for every
    block of tokens), that input is first rounded once into a buffer of its
    own at the reduction's place (not inside a loop, where the copy would
    be made at every iteration) and read from there: the same values,
    without the rounding's integer arithmetic at every step. (The row and
    contiguous-output forms, e.g. SDPA's P·V, still round at every step.)

    A projection with fewer tokens (a decode step, a short prompt) or
    other column counts (an even static count) runs in the dot-product
    form: one loop over blocks of 32 columns,
    in each of which 4 tokens x 2 columns (x 4 with `vector-registers=32`)
    share one reduction loop, so each loaded weight vector feeds four FMAs
    and each token vector two or four (the last T mod 4 tokens as a pair
    and a token against as many columns; one output at a time for a static
    count under 4, a decode step, whose weight rows are one stream); the
    block's weight rows are reused from cache by every token. When the
    weight is larger than 8 MiB as f32 (Qwen2.5-7B's) and deeper than 1024,
    the reduction runs in chunks of 1024 inside the block (partial sums in
    the output), so the block's rows of a chunk (128 KiB) stay in L2 with
    the tokens' however deep the weight, each chunk's sums as explicit
    vector loops (lane partial sums reduced by a shuffle tree onto the
    output, then the chunk's last elements in order) whose every step of a
    block of 4 tokens prefetches (`memref.prefetch`, into L2) a line of the
    next chunk's weight rows (up to four in a shorter last chunk, which
    prefetches the next block's first), so that reading it overlaps this
    chunk's FMAs; a payload those loops do not take (not an f32 sum of inputs read
    contiguously along the reduction) keeps the scalar loops and chunks of
    2048. With fewer static tokens than a jam of rows (a decode step: no
    weight row is reused) it does not chunk, and each output sums its whole
    row, the weight read as one stream.

    A tile of scores `s[.., j] += q[.., e] * k[j, .., e]` (the key j the
    last parallel dim, one reduction dim e that the f32 lanes divide: 8
    with AVX2, 16 with AVX-512; every input read along e contiguously)
    with many query rows (their count not static, or over 16 KiB: a
    prefill block)
    runs packed when k is the one input that depends on the key and reads
    the same keys for every row (its other indices read no row dim, or an
    axis of static size 1: a GQA group's heads reading their KV head
    through `h floordiv group`). Per block of `width` keys (64 with
    AVX-512, 16 with AVX2) the keys are transposed into a panel `[E,
    width]` (lanes x lanes at a time, in registers, by log2(lanes) levels
    of two-source shuffles; the last `count mod lanes` keys of a partial
    block one element at a time, the panel's columns past the tile's end
    zero); then the rows (the
    parallel dims but the key, linearized) go in blocks of 6 as outer
    products, as a packed projection's: per e, one load of the panel's row
    feeds a broadcast FMA per row, each row's scores a `vector` iter_arg
    loaded and stored through the mask of the keys present (a tile's end).
    Each score is summed in order over e (contract, no reassoc).

    Softmax epilogue of packed scores (also `packed-epilogues`). When the
    scores are an allocation, filled before them, and the ops after them up
    to a row max `m[..] = maximumf(s[.., j], m[..])` are elementwise
    generics rewriting the scores in place (an online softmax's scale and
    causal mask: other inputs read at an index that does not depend on the
    key, `linalg.index` allowed), pure ops without regions, allocations,
    and `linalg.copy`/`linalg.fill` into those allocations (the running
    max's copy, which must be one of them); when before the row max nothing
    else uses the scores (under their name: no view, transpose or select of
    them) and nothing but its init and the row max uses such a buffer, the
    packed form is emitted at the row max's place and takes them: the sums start from the fill's value in registers, and
    each row of sums is scaled and masked (the key's `linalg.index` the
    column block's start plus a `vector.step`), its greatest lane folded
    into the running max, and the row stored once, instead of a fill pass,
    a pass per elementwise op and a row max pass over the tile. The
    greatest lane is a tree of `a > b ? a : b` (x86's `vmaxps`, one
    instruction a level; the lanes past the tile's end -inf) and is folded
    in with the row max's own `maximumf`. The elementwise ops are the same
    ops on the same values and a max is exact, so the outputs are
    bit-identical to the unfused passes; the tree's max differs from
    `maximumf`'s only where the row holds a NaN (the output is NaN through
    `exp(s - max)` either way) or zeros of both signs.

    Other tiles of scores (few rows: a decode step's heads, or keys that
    differ per row) run in blocks of one register's lanes of keys; with
    few query rows the key blocks are the outermost loop (each block's
    keys read from memory once and reused from L1 by every row), else the
    rows are. Each key's sum is a vector of lane partial sums
    through the loop over e (FMAs; q's row loaded once per step for all the
    block's keys); then a tree of shuffles and adds sums the block's
    vectors together (lane r: key r, `lanes - 1` adds where a horizontal sum
    per score would take log2(lanes) shuffles and adds each) and the
    result is added to the output as one vector. Keys past the last whole
    block go one score at a time. (A two-dim tile with a static, even key
    count is taken as a projection first, and jammed as one.) Any other reduction with two or more
    parallel dims whose last one some input does not depend on (scores
    over a depth the lanes do not divide) is jammed 4 wide along that dim,
    its remainder one output at a time.

    When an input is strided along the reduction but contiguous along the
    output's last dim (a row of P·V), the reduction loops go outside that
    dim instead; each element is summed in order. When that dim is static
    (at most 128) and every input is read along it contiguously or not at
    all, the output row is a `vector` iter_arg of the reduction loops (in
    registers: one load and one store per row, not per step); otherwise
    the innermost loop loads and stores each element and LLVM vectorizes it
    behind a run-time overlap check. In that register form the rows of the
    last outer dim are jammed (up to 4, half the registers holding sums),
    an input that does not depend on it loaded once per step for all; and
    with few rows (static, at most 16 KiB) inside a threaded loop (an SDPA
    decode block) a single reduction dim goes in blocks of 16 outside the
    rows (16 rows of V read from memory once and reused from L1 by every
    head's row). Each element is still summed in order. With many rows (a
    prefill block's P·V), one reduction dim, f32 sums, a row width that
    blocks of 64 columns (AVX-512; 16 with AVX2) divide, and every input
    read along the row the same for every row (V, through the group's size-1
    head axis), the rows (every outer dim, linearized) instead go in
    blocks of 6 against each column block: one load of V's row per step
    feeds a broadcast FMA per row and vector, where jamming the last outer
    dim alone ran a GQA group's 7 heads as 4 + 1 + 1 + 1 rows. Same order
    of every sum, so the same bits.

    A row `maximumf`/`minimumf` (f32 or f64, contiguous along its one
    reduction dim: the softmax's row max) runs as a vector of partial
    results, combined across lanes, then the rest one at a time. As IEEE
    operations both are associative and commutative; the bits differ from
    the in-order loop only in the sign of a zero result or a NaN's payload
    (the host's scalar expansion keeps the first of +0 and -0 it meets),
    which a softmax never sees. (LLVM runs the in-order loop one element
    at a time: x86 has no IEEE maximum instruction.)

    In the dot-product forms (projections with few tokens, scores over a
    depth the lanes do not divide) the
    accumulating `arith.addf` gets `reassoc` and `contract`, and a product
    it adds `contract`: LLVM's loop vectorizer then sums in SIMD lanes with
    FMAs. The order of that sum is fixed by the target's vector
    width and the unroll LLVM picks, so results depend on the CPU the
    bundle was built for, never on the number of threads.

    With `vector-registers=32` (AVX-512) the dot-product form's block is 4
    tokens x 4 columns, sixteen sums (1.1x on Qwen2.5-7B's prefill before
    the packed form; with AVX2's 16 registers it spills and runs 0.9x, so
    16 keeps 4 x 2).

    Example: `y[t, n] += x[t, e] * W[n, e]` becomes
    `scf.parallel (t, n) { s = scf.for e iter_args(a = y[t, n]) { a + x*W };
    y[t, n] = s }`.
  }];
  let options = [
    Option<"vectorRegisters", "vector-registers", "int64_t", "16",
           "SIMD registers of the target CPU (16 AVX2, 32 AVX-512): how "
           "many sums a projection's register block may carry">,
    Option<"packedEpilogues", "packed-epilogues", "bool", "true",
           "A packed projection starts its sums from the bias that "
           "initializes its output, applies a half-split RoPE that reads "
           "only its output to each block of rows before storing it, and "
           "runs the row-local ops after it (a cache's rotation, "
           "quantization and packing) on each chunk of a head's rows; "
           "packed scores start from their fill and apply an online "
           "softmax's scale, mask and row max to each row before storing "
           "it (off: a fill pass before, separate passes after)">,
    Option<"bf16DotProduct", "bf16-dot-product", "bool", "false",
           "The CPU has AVX512-BF16 (with vector-registers=32): a packed "
           "projection that rounds both operands to bf16 and sums in f32 "
           "runs as vdpbf16ps on panels of bf16 pairs">,
    Option<"panelPrefetch", "panel-prefetch", "bool", "true",
           "A packed projection's first blocks of 6 tokens prefetch the "
           "next panel's weight rows while they compute (1.08-1.15x at "
           "48-96 tokens on a Zen 4; 1.07-1.16x slower at 48-128 on an "
           "Intel Xeon, whose hardware prefetchers follow the rows)">,
    Option<"amxTiles", "amx-tiles", "bool", "false",
           "The CPU has AMX-BF16 too (with bf16-dot-product): the bf16 "
           "pair forms (a packed projection, a prefill block's scores and "
           "P·V) run their blocks of 16 rows as AMX tile products "
           "(tdpbf16ps) on the same pairs and panels; a projection's last "
           "rows as one more block that stores only its own rows, the "
           "scores' and P·V's as vdpbf16ps">
  ];
  let dependentDialects = ["mlir::affine::AffineDialect",
                           "mlir::arith::ArithDialect",
                           "mlir::memref::MemRefDialect",
                           "mlir::scf::SCFDialect",
                           "mlir::vector::VectorDialect",
                           "mlir::x86vector::X86VectorDialect",
                           "mlir::amx::AMXDialect"];
}

def VectorizeBlockDecoding : Pass<"rotor-vectorize-block-decoding"> {
  let summary = "Decode a quantized KV cache's blocks with SIMD vectors";
  let description = [{
    convert-attn-to-linalg lowers `attn.dequantize(attn.unpack_blocks)` to
    one elementwise linalg.generic, marked `attn.block_decoding`, that
    decodes each value from the cache's bytes on its own; LLVM leaves that
    loop scalar. On buffers, this pass replaces a marked generic with loops
    over its rows and blocks that decode `lanes` codes at a time (16 with
    AVX-512, 8 with AVX2): one vector load of their bytes, two constant
    shuffles that give each lane the (at most two) bytes its code spans,
    constant per-lane shifts and a mask, a sign extension for absmax
    codes, and for a codebook a select on each bit of the code. Each value
    is the scalar form's, bit for bit. A generic whose block is not a
    multiple of `lanes` codes, whose output blocks or byte rows are not
    contiguous, or that covers only some of a row's blocks (tiled along
    them), stays as it is. The mark is a contract: the pass rebuilds the
    decoding from the format, not from the generic's body.

    Example (q8_0, 16 lanes): for each key and head, for each block `b`:
    `s = extf(bitcast(bytes[.., 34 b] | bytes[.., 34 b + 1] << 8))`, then
    `out[.., b, 0:16] = s * sitofp(vector.load bytes[.., 34 b + 2 : 16])`
    and the same for codes 16-31.
  }];
  let options = [
    Option<"vectorRegisters", "vector-registers", "int64_t", "16",
           "SIMD registers of the target CPU (16 AVX2: 8 lanes, 32 "
           "AVX-512: 16 lanes)">
  ];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::memref::MemRefDialect",
                           "mlir::scf::SCFDialect",
                           "mlir::vector::VectorDialect"];
}

def FuseProducersIntoTileSlices
    : Pass<"rotor-fuse-producers-into-tile-slices"> {
  let summary = "Compute an elementwise producer per tile where it is sliced";
  let description = [{
    `tensor.extract_slice(linalg.generic)` becomes the generic on the
    slice (through the TilingInterface, which offsets `linalg.index`), when
    the generic is elementwise, the slice is its only use, and every loop
    around the slice that does not hold the producer takes a different
    slice in each iteration (its induction variable feeds the offsets, or
    it runs once), so nothing is computed twice. A producer with several
    uses is fused into each when every use is such a slice and no two can
    both run (each in its own branch of an scf.if: a decode step's two
    forms of its ranges). Slices of reshapes are bubbled up to reach the
    producer.

    SDPA's loop form slices K and V per KV head and per key tile; with a
    quantized cache they are a bit-unpacking and a dequantization of the
    whole cache, which otherwise run as full passes over memory before
    every decode step. Fused, they run per tile. Prefill's query blocks all
    read every key tile, so there the producers stay whole.
  }];
  let dependentDialects = ["mlir::affine::AffineDialect",
                           "mlir::arith::ArithDialect",
                           "mlir::linalg::LinalgDialect",
                           "mlir::tensor::TensorDialect"];
}

def ChooseThreadedLoops : Pass<"rotor-choose-threaded-loops"> {
  let summary = "Keep scf.parallel only on the loops worth running on threads";
  let description = [{
    `convert-scf-to-openmp` makes every `scf.parallel` an OpenMP parallel
    region. One nested in another `scf.parallel` would enter the OpenMP
    runtime on every iteration of its parent, and a short elementwise loop
    costs more to fork than to run. This pass rewrites into `scf.for` nests
    every `scf.parallel` that is nested in another, and every one without
    an inner loop that either runs inside a sequential loop (the elementwise
    steps of an SDPA's loop over key tiles, forked per tile otherwise) or
    has fewer than `min-iterations` iterations known at compile time; the
    rest run on threads (a projection's loops inside its loop over
    reduction chunks among them). A threaded loop of several dims without
    an inner loop keeps its last dim as an inner `scf.for`:
    `convert-scf-to-openmp` collapses all of a loop's dims into one index
    that each iteration divides back into the dims, which LLVM does not
    vectorize, where it does vectorize an inner loop over the last,
    contiguous dim (RoPE's pass and cos/sin table: 1.09x on the example
    layer's prefill at T=512).

    Every iteration of a threaded loop computes its own outputs with its
    own sequential sums, so results never depend on the number of threads;
    a loop that reduces across iterations (results) is an error.
  }];
  let options = [
    Option<"minIterations", "min-iterations", "int64_t", "16384",
           "Iterations below which a loop without inner loops stays serial">
  ];
  let dependentDialects = ["mlir::scf::SCFDialect"];
}

def InlineAllocaScopes : Pass<"rotor-inline-alloca-scopes"> {
  let summary = "Inline memref.alloca_scope regions into their parents";
  let description = [{
    `convert-scf-to-openmp` wraps each threaded loop body in a
    `memref.alloca_scope`, whose region must stay one block; lowering the
    loops inside it to branches then fails to verify. On the host every
    parallel body's stack is already scoped per iteration
    (`rotor-scope-parallel-loop-allocas`, which runs first), so the scope is
    redundant and this pass inlines it.
  }];
}

def PrefetchNextKeyTile : Pass<"rotor-prefetch-next-key-tile"> {
  let summary = "Prefetch a decode step's KV cache ahead of its reads";
  let description = [{
    A decode step's attention reads each tile of keys and values once, from
    memory, in a loop (`scf.for` marked `attn.streamed_key_tiles` by
    convert-attn-to-linalg). The hardware prefetchers run only a short way
    ahead of the loads, so the reads and the compute on what was read take
    turns (on a Zen 4 the 7B's attention read its cache at 0.4-0.5 of the
    read bandwidth). For every buffer the loop takes a tile of (a
    `memref.subview` of a buffer of integers or floats of rank 2 or more
    defined outside the loop, offset along dim 0 by the induction variable
    plus what the loop does not change, whole and contiguous in the other
    dims: K and V of an f32, bf16 or f16 cache), this pass prefetches, one
    `memref.prefetch` per 64-byte line, the rows `distance` rows ahead of
    the tile's: min(step, ub - iv - distance) rows from the offset plus the
    distance (none past the loop's bound; the view is taken to hold `step`
    rows, as a tile does). The lines are spread over the iterations of the
    first loop nest in the body that reads the tile (the scores' blocks of
    keys by query rows for K, P·V's for V; the loops down to the parent of
    the innermost one around its first read, whose bounds must not change
    inside the nest), a share of them at the top of each iteration, so that
    the reads run alongside the compute; where no nest reads the tile, the
    next tile's rows (`step` ahead) are prefetched at once after the view.
    Either runs only when the buffer holds 8 MiB or more (the rows of the
    outermost subview above the tile, the cache's visible keys): a smaller
    cache stays in L3 between steps. A quantized cache's blocks are read by
    the fused decoding's own loads, not through a subview, and get no
    prefetch. Prefetches change no value, only when memory is read.

    The defaults were measured on the 7B's shapes (PERF.md, twenty-first
    session): `prefetcht0` (locality 3) spread this way was slower than no
    prefetch; `prefetcht2` (locality 1) 32 keys ahead was 1.1-1.2x faster at
    16k keys, and 8% slower on the example layer's 4 MiB cache at 4k keys,
    hence the 8 MiB floor.
  }];
  let options = [
    Option<"locality", "locality", "int64_t", /*default=*/"1",
           "The prefetches' locality hint (0-3; 3 keeps the lines in every "
           "cache level, 1 is x86's prefetcht2)">,
    Option<"distance", "distance", "int64_t", /*default=*/"32",
           "How many rows (keys) ahead of the tile's first the spread "
           "prefetches start">,
  ];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::memref::MemRefDialect",
                           "mlir::scf::SCFDialect"];
}

def ApproximateExpForSimd : Pass<"rotor-approximate-exp-for-simd"> {
  let summary = "f32 exp2 as arithmetic that vectorizes";
  let description = [{
    On the host, `math.exp2` (the softmax's exponential) is a call to libm's
    scalar `exp2f` per score, which keeps every loop around it scalar. This
    pass writes each f32 `math.exp2` as arith ops: x = n + f with n =
    roundeven(x) and |f| <= 1/2 (exact), 2^f by a degree-6 polynomial
    fitted for relative error (1.9e-9; its constant term 1, so 2^n is
    exact; its steps `math.fma`,
    or with `fma=false` a multiply and an add, never a pair that LLVM may
    contract: it fused such pairs in some copies of a vectorized loop and
    not in others, and an OpenMP chunk's bounds decide which copy computes
    which element, so results depended on the thread count), times 2^n by
    adding n to the result's exponent bits (an integer add, where two
    multiplies by powers of two took the FMA units: exact wherever the
    result is normal); from x = 128 up the result is +inf, as exp2's.
    Results below 2^-126 are flushed to 0: a subnormal probability costs
    every FMA that reads it a microcode assist on x86 (3x on a prefill at
    T=2048), and a softmax weight under 2^-126 of its row's largest changes
    no sum of it. -inf (a masked score) gives 0, NaN stays NaN.
    Its error is a few f32 ulp; the fp64 reference checks of
    every host lowering bound it. The host pipeline runs it with
    `vectorize-reductions`.
  }];
  let options = [
    Option<"fma", "fma", "bool", /*default=*/"true",
           "The CPU has fused multiply-add: the polynomial's steps are "
           "math.fma (false: a multiply and an add, for CPUs where "
           "math.fma would be a library call)">,
  ];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::math::MathDialect"];
}

def ScopeParallelLoopAllocas : Pass<"rotor-scope-parallel-loop-allocas"> {
  let summary = "Keep the allocas of a loop body per iteration";
  let description = [{
    `scf.parallel`, `scf.forall` and `scf.for` are automatic allocation
    scopes: a `memref.alloca` in their body lives for one iteration (the
    canonicalizer relies on it for `scf.for`, inlining a
    `memref.alloca_scope` that ends the body into the body: the per-block
    scope of the emulated GPU launches becomes such allocas). Lowered to
    branches (`convert-scf-to-cf`) that is lost, and the stack grows by
    every iteration's allocas until it overflows (the workgroup buffers of
    the workgroup-tiled SDPA are such allocas). This saves the stack
    pointer at the start of each such body and restores it at its end
    (`llvm.intr.stacksave`/`stackrestore`; a `memref.alloca_scope` would
    have to stay one block, which lowering the loops inside it breaks).
  }];
  let dependentDialects = ["mlir::LLVM::LLVMDialect"];
}

def ExportEntryPoints : Pass<"rotor-export-entry-points", "mlir::ModuleOp"> {
  let summary = "Give every public function a C interface";
  let description = [{
    Marks each public `func.func` with `llvm.emit_c_interface`, so that
    `convert-func-to-llvm` emits `_mlir_ciface_<name>`, which takes memrefs
    as pointers to descriptors: the ABI the runtime and the JIT tests call.
  }];
}

def DropArgumentResults : Pass<"rotor-drop-argument-results", "mlir::ModuleOp"> {
  let summary = "Remove results of public functions that are their own arguments";
  let description = [{
    After bufferization, a KV cache updated in place is returned as the very
    buffer the caller passed in. Returning it would make the deallocation
    pipeline clone the whole cache on every step; the caller already holds
    it, so the result is removed from the signature. Unlike upstream's
    `drop-equivalent-buffer-results`, this applies to public functions: they
    are entry points that no code in the module calls, and the bundle's
    manifest records the resulting signature.
  }];
}

def CheckParamsReadOnly : Pass<"rotor-check-params-read-only", "mlir::ModuleOp"> {
  let summary = "Reject code that may write or free a parameter argument";
  let description = [{
    A pipeline invariant, checked after bufferization: no op of a function
    may write or free the buffer of an argument marked `attn.param` (the
    runtime hands every call the bundle's one copy of each weight, so a
    write corrupts all later calls). Aliases through view-like ops
    (`memref.subview`, casts, reshapes) are followed. An op that may write
    one of them, or that takes one and whose memory effects are unknown
    (a call, an op without the effects interface), is an error naming the
    op and the parameter.
  }];
}

def CheckDimIndices : Pass<"rotor-check-dim-indices"> {
  let summary = "Reject tensor.dim/memref.dim with a constant index out of range";
  let description = [{
    Upstream folds and canonicalizations index a shape with a constant
    `tensor.dim`/`memref.dim` index without checking it (a negative index
    crashed the host pipeline). The op is only undefined at run time, so
    the verifier accepts it; Rotor's pipelines start with this check and
    fail with an error naming the op instead.
  }];
}

def CheckStaticSizes : Pass<"rotor-check-static-sizes"> {
  let summary = "Reject static shapes whose byte size overflows int64";
  let description = [{
    A shaped value (block argument or result) whose static extents multiply,
    times its element size, past 2^63 bytes cannot be allocated or indexed;
    the lowering's size arithmetic would wrap silently. Checked at the start
    of Rotor's pipelines, naming the op or argument.
  }];
}

def CheckSliceStrides : Pass<"rotor-check-slice-strides"> {
  let summary = "Reject slices whose strides upstream passes mishandle";
  let description = [{
    A tensor or memref slice (`tensor.extract_slice`, `tensor.insert_slice`,
    `tensor.parallel_insert_slice`, `memref.subview`) verifies with a
    constant stride (an attribute, or an `arith.constant` operand) of 0 or
    less, and a rank-reducing one with strides other than 1. After
    bufferization either becomes a rank-reducing `memref.subview` whose
    dropped-dims computation read out of bounds and crashed the host
    pipeline (strides 0 and 4096 found by scripts/fuzz_ir.py). Rotor's own
    lowerings make unit strides only; its pipelines start with this check,
    which names the op, the stride and its dim.
  }];
}

def HostAllocsToGpu : Pass<"rotor-host-allocs-to-gpu", "mlir::ModuleOp"> {
  let summary = "Allocate the host code's buffers in GPU-visible memory";
  let description = [{
    In the GPU path the host code (the entry points) launches kernels on
    the buffers it allocates. Every `memref.alloc`/`memref.dealloc` of a
    `func.func` becomes `gpu.alloc host_shared`/`gpu.dealloc`: managed
    memory that kernels and the host's scalar code both read. The runtime
    allocates the buffers it passes in the same way. Constant tables stay
    host globals: kernels read their own copies in the kernel modules
    (`rotor-sink-constant-tables-into-launches`), and a launch that passes
    a host global to a kernel is an error.
  }];
  let dependentDialects = ["mlir::gpu::GPUDialect"];
}

def EmulateGpuLaunchesOnHost
    : Pass<"rotor-emulate-gpu-launches-on-host", "mlir::ModuleOp"> {
  let summary = "Run gpu.launch bodies on the host as OpenMP thread teams";
  let description = [{
    For testing the GPU mapping without a GPU. Each `gpu.launch` becomes a
    loop over its blocks (last block first, so that blocks that depend on
    each other's order show it); each block allocates its workgroup buffers
    and runs the body in an `omp.parallel` team of as many threads as the
    block has, with thread ids from `omp_get_thread_num` and `gpu.barrier`
    as `omp.barrier`. Workgroup address spaces are dropped. Asynchronous or
    clustered launches, private attributions and multi-block bodies are
    rejected. The result needs the OpenMP runtime (libomp) when it runs.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::func::FuncDialect",
                           "mlir::memref::MemRefDialect",
                           "mlir::omp::OpenMPDialect",
                           "mlir::scf::SCFDialect"];
}

def SinkConstantTablesIntoLaunches
    : Pass<"rotor-sink-constant-tables-into-launches"> {
  let summary = "Read constant tables inside kernels, not through operands";
  let description = [{
    Each `memref.get_global` of a constant, initialized `memref.global`
    whose result a `gpu.launch` body uses is cloned into that body. After
    `gpu-kernel-outlining` (which clones the referenced globals into the
    kernel module) the table is part of the module image: it is uploaded
    once when the module loads, instead of being copied into managed
    memory, synchronously, on every call. Runs before outlining.
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect"];
}

def TileParallelLoopsForGpu : Pass<"rotor-tile-parallel-loops-for-gpu", "mlir::func::FuncOp"> {
  let summary = "Flatten each outermost scf.parallel and tile it into blocks";
  let description = [{
    Each outermost `scf.parallel` is collapsed into one dimension (the
    last original dim varies fastest, so neighbouring threads touch
    neighbouring elements) and tiled by `block-size`: the outer loop becomes
    the grid, the inner one the threads of a block, for
    `gpu-map-parallel-loops`. Out-of-range threads of the last block are
    guarded, not clamped. A loop that reduces across its iterations
    (results) is an error: the grid's blocks cannot sum into one value.
  }];
  let dependentDialects = ["mlir::affine::AffineDialect", "mlir::arith::ArithDialect",
                           "mlir::scf::SCFDialect"];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"128",
           "Threads per block">,
  ];
}

def MapWorkgroupLoopsToGpu : Pass<"rotor-map-workgroup-loops-to-gpu", "mlir::func::FuncOp"> {
  let summary = "Turn block-mapped scf.parallel loops into gpu.launch kernels";
  let description = [{
    Converts each `scf.parallel` whose `mapping` is `#gpu.block`s (an
    `scf.forall` written for workgroups, after `scf-forall-to-parallel`)
    into a `gpu.launch` of one block per iteration and `block-size` threads:

    - its induction variables become block ids (dims in the order of the
      mapping; lower bounds 0 and steps 1 are required);
    - the static `memref.alloca`s of its body (directly, or in an
      `memref.alloca_scope` there) become workgroup attributions, i.e.
      shared memory;
    - every nested 1-D `scf.parallel` mapped to `#gpu.thread<x>` becomes a
      loop over its iterations strided by the block size, followed by a
      `gpu.barrier`, so each such phase completes before the next reads
      its results. Thread phases must be reached by all threads of a block
      (block-uniform control flow), which is how the lowerings write them.

    Everything else in the body runs in every thread, so it must compute
    block-uniform values; it may read workgroup buffers (a phase that
    follows such reads first waits at a barrier too) but not write them.
    Thread phases nested in thread phases, other parallel loops, stores to
    workgroup buffers outside phases, and heap allocations in the body are
    rejected with an error naming the op.
  }];
  let dependentDialects = ["mlir::gpu::GPUDialect", "mlir::scf::SCFDialect",
                           "mlir::arith::ArithDialect"];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"128",
           "Threads per block">,
  ];
}

def MarkHostDeviceMemoryAccess : Pass<"rotor-mark-host-device-memory-access", "mlir::ModuleOp"> {
  let summary = "Record whether host code reads or writes kernel memory";
  let description = [{
    Sets `rotor.host_reads_device_memory` on the module: true when any op of
    a `func.func` (the host code, after outlining) other than a `gpu` op may
    read or write memory (a `memref.load`, a copy, a call, ...). When it is
    false, the host code only allocates, launches, copies through `gpu`
    ops and frees, which one in-order stream keeps ordered; the bundle's
    manifest says so and the runtime then skips the wait after each launch.
  }];
}

def AlignWorkgroupBuffers : Pass<"rotor-align-workgroup-buffers"> {
  let summary = "Align every workgroup buffer of a gpu.func to 16 bytes";
  let description = [{
    LLVM assumes a workgroup buffer (a `.shared` array) is aligned enough
    to combine neighbouring accesses into vector loads (`ld.shared.v4`),
    while NVPTX declares each array with only its element's alignment;
    where ptxas places the array then decides whether such a load faults.
    Setting `llvm.align = 16` on each workgroup attribution makes the
    declaration promise what the loads assume. Runs after
    `gpu-kernel-outlining`.
  }];
  let dependentDialects = ["mlir::LLVM::LLVMDialect"];
}

def DropGpuAddressSpaces : Pass<"rotor-drop-gpu-address-spaces", "mlir::ModuleOp"> {
  let summary = "Make workgroup buffers plain host memory";
  let description = [{
    Workgroup kernels allocate their buffers as `memref.alloca` in
    `#gpu.address_space<workgroup>`, which `rotor-map-workgroup-loops-to-gpu`
    turns into workgroup attributions of a launch. Where the kernels' loops
    run on the host instead (the host pipeline), the buffers are ordinary
    stack memory: this pass drops every `#gpu.address_space` from memref
    types (results, block arguments, attributes) before the LLVM lowering,
    which knows no GPU address spaces (it runs in the host pipeline and, after
    the launches became thread teams, in the GPU-emulation pipeline). GPU
    code (`gpu.launch`,
    `gpu.module`) is an error here.
  }];
}

#endif // ROTOR_CODEGEN_PASSES_TD
