//===- AttnAttrs.td - Attributes of the attn dialect -------*- tablegen -*-===//

#ifndef ROTOR_DIALECT_ATTN_IR_ATTNATTRS_TD
#define ROTOR_DIALECT_ATTN_IR_ATTNATTRS_TD

include "rotor/Dialect/Attn/IR/AttnDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

// An f64 that prints so that it parses back bit-exactly.
class Attn_F64Parameter<string desc> : AttrOrTypeParameter<"::llvm::APFloat", desc> {
  let comparator = "$_lhs.bitwiseIsEqual($_rhs)";
  let parser = [{ ::rotor::attn::detail::parseF64($_parser) }];
  let printer = [{ $_printer.printFloat($_self) }];
}

class Attn_BoolParameter<string desc> : AttrOrTypeParameter<"bool", desc> {
  let parser = [{ ::rotor::attn::detail::parseBool($_parser) }];
  let printer = [{ $_printer << ($_self ? "true" : "false") }];
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Attn_RopeLayout : I32EnumAttr<"RopeLayout", "pairing of RoPE dims", [
    I32EnumAttrCase<"HalfSplit", 0, "half_split">,
    I32EnumAttrCase<"Interleaved", 1, "interleaved">]> {
  let cppNamespace = "::rotor::attn";
  let genSpecializedAttr = 0;
}

def Attn_RopeLayoutAttr : EnumAttr<Attn_Dialect, Attn_RopeLayout, "rope_layout"> {
  let summary = "RoPE pair layout";
  let assemblyFormat = "`<` $value `>`";
  let description = [{
    Which dims of a head RoPE rotates together, for rotary dim `R` and
    `0 <= i < R/2`:

    * `half_split`: `(x[i], x[i + R/2])`, Hugging Face's `rotate_half` order;
    * `interleaved`: `(x[2i], x[2i + 1])`, Meta's original checkpoint order.
  }];
}

def Attn_QuantScheme : I32EnumAttr<"QuantScheme", "KV block quantization scheme", [
    I32EnumAttrCase<"Absmax", 0, "absmax">,
    I32EnumAttrCase<"Codebook", 1, "codebook">]> {
  let cppNamespace = "::rotor::attn";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Precision
//===----------------------------------------------------------------------===//

def Attn_PrecisionAttr : AttrDef<Attn_Dialect, "Precision"> {
  let mnemonic = "precision";
  let summary = "compute and accumulation types of an op";
  let description = [{
    The arithmetic precision of one op. Operands are rounded to `compute`
    (round-to-nearest-even when it is narrower than the operand) and
    elementwise arithmetic happens in `compute`. Every reduction (dot
    products, sums of squares, softmax sums) forms its terms and accumulates
    them in `accumulate`, as tensor cores do: a product of two `bf16`
    operands is exact in `f32`. The op's result is then rounded to the
    element type of its result tensor, which is the storage type.

    `accumulate` must hold every value of `compute` exactly: `f32` and `f64`
    accumulate anything; `bf16` and `f16` accumulate only themselves.

    ```mlir
    #attn.precision<compute = bf16, accumulate = f32>
    ```
  }];
  let parameters = (ins "::mlir::FloatType":$compute,
                        "::mlir::FloatType":$accumulate);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

//===----------------------------------------------------------------------===//
// Hadamard rotation
//===----------------------------------------------------------------------===//

def Attn_HadamardAttr : AttrDef<Attn_Dialect, "Hadamard"> {
  let mnemonic = "hadamard";
  let summary = "a randomized Walsh-Hadamard rotation of one group";
  let description = [{
    The orthogonal matrix `R = diag(s2) · H_G / sqrt(G) · diag(s1)` acting on
    a group of `G` elements, with `H_G` the Sylvester Hadamard matrix
    (`H_1 = [1]`, `H_2k = [[H_k, H_k], [H_k, -H_k]]`, so
    `H_G[i][j] = (-1)^popcount(i & j)`). `G` is a power of two and the sign
    vectors `s1`, `s2` have `G` entries, each `1` or `-1`.

    `R` is orthogonal for every choice of signs, and its inverse is
    `R^T = diag(s1) · H_G / sqrt(G) · diag(s2)`.

    ```mlir
    #attn.hadamard<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, -1, 1]>
    ```
  }];
  let parameters = (ins "int64_t":$group,
                        ArrayRefParameter<"int32_t", "input signs">:$s1,
                        ArrayRefParameter<"int32_t", "output signs">:$s2);
  let assemblyFormat = [{
    `<` `group` `=` $group `,` `s1` `=` `[` $s1 `]` `,` `s2` `=` `[` $s2 `]` `>`
  }];
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The sign vectors (input, output) of this rotation applied forwards
    /// (`inverse` = false) or backwards (`inverse` = true): the inverse of
    /// `R(s1, s2)` is `R(s2, s1)`.
    std::pair<::llvm::ArrayRef<int32_t>, ::llvm::ArrayRef<int32_t>>
    getEffectiveSigns(bool inverse) const {
      if (inverse)
        return {getS2(), getS1()};
      return {getS1(), getS2()};
    }
  }];
}

//===----------------------------------------------------------------------===//
// KV-cache block format
//===----------------------------------------------------------------------===//

def Attn_KVBlockFormatAttr : AttrDef<Attn_Dialect, "KVBlockFormat"> {
  let mnemonic = "kv_block";
  let summary = "block quantization format of a KV cache";
  let description = [{
    The last dim of a tensor is cut into blocks of `block_size` elements; each
    block stores one scale (of type `scale_type`) and one `bits`-bit code per
    element (held in an `i8`; packing is the lowering's business).

    * `absmax` (symmetric): with `Q = 2^(bits-1) - 1`,
      `scale = max_j |x_j| / Q`, `code_j = clamp(round_half_even(x_j / scale), -Q, Q)`
      and `x_j ≈ scale · code_j`. An all-zero block has scale 0 and codes 0.
      `2 <= bits <= 8`.
    * `codebook` (for rotated, near-Gaussian data): `scale = sqrt(mean_j x_j²)`,
      `code_j` is the index (in `[0, 2^bits)`) of the centroid of the
      Lloyd-Max quantizer of the standard normal distribution nearest to
      `x_j / scale` (ties to the lower index), and `x_j ≈ scale · c[code_j]`.
      `1 <= bits <= 4`.

    ```mlir
    #attn.kv_block<bits = 4, block_size = 32, scheme = absmax, scale_type = f16>
    ```
  }];
  let parameters = (ins "unsigned":$bits,
                        "int64_t":$block_size,
                        EnumParameter<Attn_QuantScheme>:$scheme,
                        "::mlir::FloatType":$scale_type);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

//===----------------------------------------------------------------------===//
// RoPE scaling
//===----------------------------------------------------------------------===//

def Attn_LinearRopeScalingAttr : AttrDef<Attn_Dialect, "LinearRopeScaling"> {
  let mnemonic = "linear_scaling";
  let summary = "linear (position interpolation) RoPE scaling";
  let description = [{
    Hugging Face's `linear` rope type: `inv_freq_i = theta^(-2i/R) / factor`.
    `factor >= 1`.

    ```mlir
    #attn.linear_scaling<factor = 4.0>
    ```
  }];
  let parameters = (ins Attn_F64Parameter<"scaling factor">:$factor);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Attn_DynamicRopeScalingAttr : AttrDef<Attn_Dialect, "DynamicRopeScaling"> {
  let mnemonic = "dynamic_scaling";
  let summary = "dynamic NTK RoPE scaling";
  let description = [{
    Hugging Face's `dynamic` rope type. With `L = max(positions) + 1` over the
    op's positions operand and `L0 = original_max_position_embeddings`: when
    `L > L0` the base becomes
    `theta' = theta · (factor · L / L0 - (factor - 1))^(R / (R - 2))`, and
    `inv_freq_i = theta'^(-2i/R)`; otherwise the frequencies are the
    default ones. `factor >= 1`, `L0 >= 1`.

    ```mlir
    #attn.dynamic_scaling<factor = 2.0, original_max_position_embeddings = 4096>
    ```
  }];
  let parameters = (ins Attn_F64Parameter<"scaling factor">:$factor,
                        "int64_t":$original_max_position_embeddings);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Attn_YarnRopeScalingAttr : AttrDef<Attn_Dialect, "YarnRopeScaling"> {
  let mnemonic = "yarn_scaling";
  let summary = "YaRN RoPE scaling";
  let description = [{
    Hugging Face's `yarn` rope type. With `L0 = original_max_position_embeddings`,
    `corr(n) = R · ln(L0 / (2π n)) / (2 ln theta)`,
    `low = max(corr(beta_fast), 0)` and `high = min(corr(beta_slow), R - 1)`
    (floored and ceiled first when `truncate`), `ramp_i = clamp((i - low) /
    (high - low), 0, 1)` (with `high += 0.001` when `low == high`),
    `e_i = 1 - ramp_i` and `f_i = theta^(-2i/R)`:

    `inv_freq_i = (f_i / factor) · (1 - e_i) + f_i · e_i`

    and `cos`/`sin` are multiplied by `attention_factor` (which the importer
    resolves from `mscale`/`mscale_all_dim` as Hugging Face does).
    `factor >= 1`, `L0 >= 1`, `beta_fast > 0`, `beta_slow > 0`,
    `attention_factor > 0`.

    ```mlir
    #attn.yarn_scaling<factor = 4.0, original_max_position_embeddings = 32768,
                       beta_fast = 32.0, beta_slow = 1.0,
                       attention_factor = 1.1386, truncate = true>
    ```
  }];
  let parameters = (ins Attn_F64Parameter<"scaling factor">:$factor,
                        "int64_t":$original_max_position_embeddings,
                        Attn_F64Parameter<"fast boundary, in rotations">:$beta_fast,
                        Attn_F64Parameter<"slow boundary, in rotations">:$beta_slow,
                        Attn_F64Parameter<"cos/sin multiplier">:$attention_factor,
                        Attn_BoolParameter<"round the ramp bounds">:$truncate);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Attn_Llama3RopeScalingAttr : AttrDef<Attn_Dialect, "Llama3RopeScaling"> {
  let mnemonic = "llama3_scaling";
  let summary = "Llama 3.1 RoPE scaling";
  let description = [{
    Hugging Face's `llama3` rope type. With `L0 = original_max_position_embeddings`,
    `f_i = theta^(-2i/R)` and wavelength `w_i = 2π / f_i`:

    * `w_i < L0 / high_freq_factor`: `inv_freq_i = f_i`;
    * `w_i > L0 / low_freq_factor`: `inv_freq_i = f_i / factor`;
    * otherwise, with `s = (L0 / w_i - low_freq_factor) / (high_freq_factor - low_freq_factor)`:
      `inv_freq_i = (1 - s) · f_i / factor + s · f_i`.

    `factor >= 1`, `0 < low_freq_factor < high_freq_factor`, `L0 >= 1`.

    ```mlir
    #attn.llama3_scaling<factor = 8.0, low_freq_factor = 1.0,
                         high_freq_factor = 4.0,
                         original_max_position_embeddings = 8192>
    ```
  }];
  let parameters = (ins Attn_F64Parameter<"scaling factor">:$factor,
                        Attn_F64Parameter<"low frequency factor">:$low_freq_factor,
                        Attn_F64Parameter<"high frequency factor">:$high_freq_factor,
                        "int64_t":$original_max_position_embeddings);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Attn_RopeScalingAttr : AnyAttrOf<[Attn_LinearRopeScalingAttr,
                                      Attn_DynamicRopeScalingAttr,
                                      Attn_YarnRopeScalingAttr,
                                      Attn_Llama3RopeScalingAttr]>;

def Attn_RopeParamsAttr : AttrDef<Attn_Dialect, "RopeParams"> {
  let mnemonic = "rope";
  let summary = "the parameters of a RoPE, without its operands";
  let description = [{
    What `attn.rope` applies at a position: the pair `layout`, the rotary
    dim `R`, `theta` and the optional `scaling` (one of the static
    scalings: linear, yarn or llama3; dynamic NTK depends on a call's
    positions and has no fixed frequencies). `attn.sdpa` uses it to rotate
    its key bias to each key's position.

    ```mlir
    #attn.rope<layout = half_split, rotary_dim = 64, theta = 1.0e+06>
    ```
  }];
  let parameters = (ins EnumParameter<Attn_RopeLayout>:$layout,
                        "int64_t":$rotary_dim,
                        Attn_F64Parameter<"theta">:$theta,
                        OptionalParameter<"::mlir::Attribute">:$scaling);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

//===----------------------------------------------------------------------===//
// Kernel configuration
//===----------------------------------------------------------------------===//

def Attn_KernelStrategy : I32EnumAttr<"KernelStrategy", "how an op is computed", [
    I32EnumAttrCase<"Loops", 0, "loops">,
    I32EnumAttrCase<"SplitKV", 1, "split_kv">,
    I32EnumAttrCase<"WorkgroupTiled", 2, "workgroup_tiled">,
    I32EnumAttrCase<"Gemm", 3, "gemm">,
    I32EnumAttrCase<"Gemv", 4, "gemv">,
    I32EnumAttrCase<"HeadChain", 5, "head_chain">]> {
  let cppNamespace = "::rotor::attn";
  let genSpecializedAttr = 0;
}

def Attn_KernelConfigAttr : AttrDef<Attn_Dialect, "KernelConfig"> {
  let mnemonic = "kernel";
  let summary = "how one op is computed: its kernel strategy and tiles";
  let description = [{
    The decision of `rotor-select-kernel-config`, recorded on an op as its
    `attn.kernel` attribute; the lowerings execute it and choose no other
    kernel. (Whether a GEMM or GEMV also takes the per-head chain its
    projection feeds into its epilogue follows from the IR: it does when
    the chain is there and a tile can hold it.)
    Hand-written IR may set it to force a kernel; a kernel that cannot be
    built as recorded is an error, never a silent fallback.

    * `loops` (`attn.linear`, `attn.sdpa`): the loop-level form of
      `convert-attn-to-linalg`; for `attn.sdpa`, `keys` is the KV tile of
      its online-softmax loop.
    * `split_kv` (`attn.sdpa` with one query row): flash-decoding, all KV
      tiles of `keys` keys at once, then one combine.
    * `workgroup_tiled` (`attn.sdpa`): one workgroup laid out for `threads`
      threads (its phases are strided loops, so any block size computes the
      same; the GPU pipeline launches with its block size)
      per tile of `rows` (query, query head) rows and KV head, walking KV
      tiles of `keys` keys staged in workgroup memory; when there are fewer
      than `workgroups` row tiles x KV heads, the KV length is split across
      that many workgroups at most, and one combine follows.
    * `gemm` (`attn.linear`): output tiles of `rows` tokens x `cols`
      columns per workgroup of `threads` threads; a per-head chain the
      projection feeds (RoPE, Hadamard rotation, quantization) runs in its
      epilogue when a column tile can hold one head.
    * `gemv` (`attn.linear` with a few tokens): `cols` outputs per workgroup
      of `threads` threads, each W row read by a warp.
    * `head_chain` (`attn.rope`, `attn.hadamard`, `attn.quantize` starting a
      per-head chain with a rotation or quantization): one workgroup per
      `rows` tokens and head. A kernel that computes the op's producer may
      take the chain first (a GEMM's epilogue); this op's kernel is then
      never built.

    Parameters that a strategy does not use are 0 and not printed.

    ```mlir
    #attn.kernel<workgroup_tiled, rows = 32, keys = 32, threads = 128, workgroups = 256>
    #attn.kernel<gemm, rows = 64, cols = 64, threads = 128>
    #attn.kernel<loops, keys = 64>
    ```
  }];
  let parameters = (ins
      EnumParameter<Attn_KernelStrategy>:$strategy,
      DefaultValuedParameter<"int64_t", "0", "rows per workgroup">:$rows,
      DefaultValuedParameter<"int64_t", "0", "keys per KV tile">:$keys,
      DefaultValuedParameter<"int64_t", "0", "columns per workgroup">:$cols,
      DefaultValuedParameter<"int64_t", "0", "threads per workgroup">:$threads,
      DefaultValuedParameter<"int64_t", "0", "workgroups a KV split aims at">:$workgroups);
  let assemblyFormat = "`<` $strategy (`,` struct($rows, $keys, $cols, $threads, $workgroups)^)? `>`";
  let genVerifyDecl = 1;
}

#endif // ROTOR_DIALECT_ATTN_IR_ATTNATTRS_TD
