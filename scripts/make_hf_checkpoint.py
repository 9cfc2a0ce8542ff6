#!/usr/bin/python3
"""Writes a small synthetic Hugging Face checkpoint directory laid out the way
transformers' save_pretrained lays it out (config.json, model.safetensors or
model-0000K-of-0000N.safetensors shards plus model.safetensors.index.json), so
that a checkpoint importer can be tested without downloads. Uses only numpy.

make_hf_checkpoint.py OUT_DIR --family {qwen2,llama,mistral,qwen3,stablelm,phi}
                      [--preset NAME] [shape overrides] [options]

Families and what they write (tensor names exactly as transformers names them):
  qwen2     q/k/v_proj.{weight,bias}, o_proj.weight; RMSNorm norms
  llama     q/k/v/o_proj.weight (+ .bias on all four with --attention-bias)
  mistral   q/k/v/o_proj.weight
  qwen3     q/k/v/o_proj.weight (+ biases with --attention-bias),
            self_attn.q_norm.weight and k_norm.weight [head_dim]
  stablelm  q/k/v_proj.{weight,bias} (use_qkv_bias, on by default), o_proj.weight;
            LayerNorm norms with biases; partial rotary (partial_rotary_factor)
  phi       q/k/v_proj.{weight,bias}, self_attn.dense.{weight,bias} as o_proj;
            LayerNorm input_layernorm with bias, model.final_layernorm; partial rotary
Every family also gets model.layers.N.input_layernorm.* (and
post_attention_layernorm.* except phi) and the final norm, so an importer must
skip tensors it does not need. MLP, embedding and lm_head weights are written
only with --full (then vocab_size is 256 so that the embedding stays small).

Presets carry the real shapes and config fields: qwen2.5-0.5b, qwen2.5-7b,
llama-3.1-8b, mistral-7b, qwen3-0.6b, stablelm-2-1.6b, phi-2. Without a preset a
family gets a reduced shape (hidden 128, 4 heads, 2 KV heads, head_dim 32, 2
layers; qwen3 head_dim 64 so that heads*head_dim != hidden as in the real
model; stablelm and phi KV heads = heads; phi hidden 160 / head_dim 40 so that
its 0.4 rotary fraction gives 16 rotary dims).

--num-layers sets num_hidden_layers; --layers-with-weights L1,L2,... writes the
tensors of those layers only (the other layers' tensors are simply absent from
the checkpoint, which a per-layer importer must tolerate). Default: all layers.
Presets have 24-32 layers of large matrices: use --layers-with-weights 0 to keep
such a checkpoint small.

Weights are normal / sqrt(fan_in). Biases are normal(0, std); with --X-bias-absmax
one random entry is set to +-absmax (the others clipped inside it) so that
max|b| == absmax exactly. Every tensor is drawn from its own generator seeded by
(--seed, tensor name): a tensor's values do not depend on which others are
written. bf16 is rounded to nearest even from float32.

--break KIND writes a deliberately bad checkpoint (see --help for the kinds).
"""
import argparse
import json
import os
import struct
import sys
import zlib

import numpy as np

FAMILIES = {
    # norm: rms (RMSNorm) or layer (LayerNorm with bias); qkv_bias/o_bias: the family default;
    # o_name: the output projection; qk_norm: qwen3 q_norm/k_norm; post_norm: post_attention_layernorm
    "qwen2": dict(arch="Qwen2ForCausalLM", model_type="qwen2", norm="rms", qkv_bias=True,
                  o_bias=False, o_name="o_proj", qk_norm=False, post_norm=True),
    "llama": dict(arch="LlamaForCausalLM", model_type="llama", norm="rms", qkv_bias=False,
                  o_bias=False, o_name="o_proj", qk_norm=False, post_norm=True),
    "mistral": dict(arch="MistralForCausalLM", model_type="mistral", norm="rms", qkv_bias=False,
                    o_bias=False, o_name="o_proj", qk_norm=False, post_norm=True),
    "qwen3": dict(arch="Qwen3ForCausalLM", model_type="qwen3", norm="rms", qkv_bias=False,
                  o_bias=False, o_name="o_proj", qk_norm=True, post_norm=True),
    "stablelm": dict(arch="StableLmForCausalLM", model_type="stablelm", norm="layer", qkv_bias=True,
                     o_bias=False, o_name="o_proj", qk_norm=False, post_norm=True),
    "phi": dict(arch="PhiForCausalLM", model_type="phi", norm="layer", qkv_bias=True,
                o_bias=True, o_name="dense", qk_norm=False, post_norm=False),
    # Qwen3-Next (the model of field report 003): full-attention layers every
    # full_attention_interval-th layer (the others Gated DeltaNet, written as
    # linear_attn placeholders), q_proj yielding each head's query and gate,
    # zero-centred q/k norms (gain 1 + w).
    "qwen3_next": dict(arch="Qwen3NextForCausalLM", model_type="qwen3_next", norm="rms",
                       qkv_bias=False, o_bias=False, o_name="o_proj", qk_norm=True, post_norm=True,
                       gate=True, zero_centred=True),
}

# Reduced defaults (no preset).
REDUCED = {
    "qwen2": dict(hidden=128, heads=4, kv_heads=2, head_dim=32, theta=1e6, eps=1e-6, max_pos=32768,
                  q_bias_std=3.0, k_bias_std=20.0, v_bias_std=0.2, tie=True),
    "llama": dict(hidden=128, heads=4, kv_heads=2, head_dim=32, theta=500000.0, eps=1e-5, max_pos=8192,
                  tie=False),
    "mistral": dict(hidden=128, heads=4, kv_heads=2, head_dim=32, theta=1e6, eps=1e-5, max_pos=32768,
                    tie=False),
    "qwen3": dict(hidden=128, heads=4, kv_heads=2, head_dim=64, theta=1e6, eps=1e-6, max_pos=40960,
                  tie=True),
    "stablelm": dict(hidden=128, heads=4, kv_heads=4, head_dim=32, theta=10000.0, eps=1e-5, max_pos=4096,
                     partial=0.25, tie=False),
    "phi": dict(hidden=160, heads=4, kv_heads=4, head_dim=40, theta=10000.0, eps=1e-5, max_pos=2048,
                partial=0.4, tie=False),
    # Field report 003's attention: 16 query / 2 KV heads of 256, rotary 0.25.
    "qwen3_next": dict(hidden=256, heads=16, kv_heads=2, head_dim=256, theta=10000000.0, eps=1e-6,
                       max_pos=262144, partial=0.25, tie=False, layers=4),
}
for _f, _r in REDUCED.items():
    _r.setdefault("layers", 2)
    _r["intermediate"] = 2 * _r["hidden"]
    _r.setdefault("vocab", 256)

PRESETS = {
    "qwen2.5-0.5b": dict(family="qwen2", hidden=896, heads=14, kv_heads=2, head_dim=64, layers=24,
                         intermediate=4864, max_pos=32768, theta=1e6, eps=1e-6, vocab=151936,
                         tie=True, sliding_window=32768, max_window_layers=24,
                         bos=151643, eos=151643, transformers_version="4.40.1",
                         q_bias_std=3.0, k_bias_std=20.0, v_bias_std=0.2),
    "qwen2.5-7b": dict(family="qwen2", hidden=3584, heads=28, kv_heads=4, head_dim=128, layers=28,
                       intermediate=18944, max_pos=131072, theta=1e6, eps=1e-6, vocab=152064,
                       tie=False, sliding_window=131072, max_window_layers=28,
                       bos=151643, eos=151643, transformers_version="4.43.1",
                       q_bias_std=6.0, q_bias_absmax=48.25, k_bias_std=26.75, k_bias_absmax=171.0,
                       v_bias_std=0.2),
    "llama-3.1-8b": dict(family="llama", hidden=4096, heads=32, kv_heads=8, head_dim=128, layers=32,
                         intermediate=14336, max_pos=131072, theta=500000.0, eps=1e-5, vocab=128256,
                         tie=False, bos=128000, eos=128001, transformers_version="4.43.0.dev0",
                         scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                      high_freq_factor=4.0, original_max_position_embeddings=8192)),
    "mistral-7b": dict(family="mistral", hidden=4096, heads=32, kv_heads=8, head_dim=128, layers=32,
                       intermediate=14336, max_pos=32768, theta=1e6, eps=1e-5, vocab=32768,
                       tie=False, bos=1, eos=2, transformers_version="4.42.0.dev0"),
    "qwen3-0.6b": dict(family="qwen3", hidden=1024, heads=16, kv_heads=8, head_dim=128, layers=28,
                       intermediate=3072, max_pos=40960, theta=1e6, eps=1e-6, vocab=151936,
                       tie=True, max_window_layers=28, bos=151643, eos=151645,
                       transformers_version="4.51.0"),
    "stablelm-2-1.6b": dict(family="stablelm", hidden=2048, heads=32, kv_heads=32, head_dim=64, layers=24,
                            intermediate=5632, max_pos=4096, theta=10000.0, eps=1e-5, vocab=100352,
                            tie=False, partial=0.25, bos=100257, eos=100257,
                            transformers_version="4.38.0.dev0"),
    "phi-2": dict(family="phi", hidden=2560, heads=32, kv_heads=32, head_dim=80, layers=32,
                  intermediate=10240, max_pos=2048, theta=10000.0, eps=1e-5, vocab=51200,
                  tie=False, partial=0.4, bos=50256, eos=50256, transformers_version="4.37.0"),
}

BREAKS = {
    "truncate": "cut the safetensors file holding the first weighted layer's k_proj.weight "
                "in the middle of that tensor's data",
    "header-past-end": "header length field (first 8 bytes) larger than the file",
    "bad-json": "header JSON corrupted (closing brace removed, length unchanged)",
    "wrong-dtype": "k_proj.weight of the first weighted layer stored as I32",
    "wrong-shape": "k_proj.weight of the first weighted layer has one row too few",
    "missing-tensor": "v_proj.weight of the first weighted layer (layer 0 by default) absent",
    "unknown-model-type": 'config model_type "gpt2_custom"',
    "unknown-rope-type": 'rope type "quantum" in rope_scaling / rope_parameters',
    "index-missing-shard": "the shard file holding the first weighted layer's k_proj.weight is "
                           "deleted, so the index maps tensors to a file that is not there "
                           "(implies --shards >= 2)",
    "bad-offsets": "data_offsets of the first weighted layer's k_proj.weight moved so that they "
                   "end past the data (size still consistent with dtype/shape)",
}

# safetensors dtype names and their order in the safetensors Dtype enum (the
# writer sorts tensors by dtype, descending, then by name).
ST_DTYPE = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int32"): "I32",
            np.dtype("int64"): "I64", np.dtype("float64"): "F64"}
ST_ORDER = {"BOOL": 0, "U8": 1, "I8": 2, "I16": 3, "U16": 4, "F16": 5, "BF16": 6, "I32": 7,
            "U32": 8, "F32": 9, "F64": 10, "I64": 11, "U64": 12}


class Tensor:
    """Encoded tensor: safetensors dtype name, shape and raw little-endian bytes."""

    def __init__(self, dtype, shape, data):
        self.dtype, self.shape, self.data = dtype, list(shape), data


def f32_to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded = np.where(nan, (u >> 16) | 0x40, rounded)
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def encode(x, dtype):
    """float array -> Tensor in --dtype (bf16|f16|f32)."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "bf16":
        return Tensor("BF16", x.shape, f32_to_bf16_bits(x).tobytes())
    if dtype == "f16":
        return Tensor("F16", x.shape, x.astype(np.float16).tobytes())
    return Tensor("F32", x.shape, x.tobytes())


def roundtrip(value, dtype):
    """The value `value` has once stored in `dtype`."""
    x = np.array([value], dtype=np.float32)
    if dtype == "bf16":
        return float(bf16_bits_to_f32(f32_to_bf16_bits(x))[0])
    if dtype == "f16":
        return float(x.astype(np.float16)[0])
    return float(x[0])


def safetensors_bytes(tensors, header_hook=None):
    """The bytes save_file writes: u64 header length, compact JSON header with
    __metadata__ first and the tensors sorted by dtype (descending) then name,
    padded with spaces to a multiple of 8, then the data in header order.
    header_hook(header, data_len) may edit the header entries (for --break)."""
    names = sorted(tensors, key=lambda n: (-ST_ORDER[tensors[n].dtype], n))
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for n in names:
        t = tensors[n]
        header[n] = {"dtype": t.dtype, "shape": t.shape,
                     "data_offsets": [offset, offset + len(t.data)]}
        offset += len(t.data)
    if header_hook:
        header_hook(header, offset)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(tensors[n].data for n in names)


def tensor_rng(seed, name):
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def parse_layers(text, n):
    if text is None:
        return list(range(n))
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    for layer in out:
        if not 0 <= layer < n:
            sys.exit(f"make_hf_checkpoint: layer {layer} outside 0..{n - 1} (--num-layers {n})")
    return sorted(set(out))


def build_scaling(a, base):
    """The scaling dict (without the type key) or None, from the preset's and the flags."""
    preset_scaling = base.get("scaling")
    kind = a.rope_scaling or (preset_scaling["rope_type"] if preset_scaling else "none")
    if kind == "none":
        return None, "default"
    d = {}
    if preset_scaling and preset_scaling["rope_type"] == kind:
        d = {k: v for k, v in preset_scaling.items() if k != "rope_type"}
    if a.factor is not None:
        d["factor"] = a.factor
    d.setdefault("factor", 8.0 if kind == "llama3" else 4.0)
    if a.original_max_position_embeddings is not None:
        d["original_max_position_embeddings"] = a.original_max_position_embeddings
    if kind == "llama3":
        if a.low_freq_factor is not None:
            d["low_freq_factor"] = a.low_freq_factor
        if a.high_freq_factor is not None:
            d["high_freq_factor"] = a.high_freq_factor
        d.setdefault("low_freq_factor", 1.0)
        d.setdefault("high_freq_factor", 4.0)
        d.setdefault("original_max_position_embeddings", 8192)
    elif a.low_freq_factor is not None or a.high_freq_factor is not None:
        sys.exit("make_hf_checkpoint: --low/high-freq-factor are llama3 keys")
    yarn_keys = dict(beta_fast=a.beta_fast, beta_slow=a.beta_slow, attention_factor=a.attention_factor,
                     mscale=a.mscale, mscale_all_dim=a.mscale_all_dim,
                     truncate=None if a.truncate is None else a.truncate == "true")
    given = {k: v for k, v in yarn_keys.items() if v is not None}
    if given and kind != "yarn":
        sys.exit(f"make_hf_checkpoint: {', '.join(given)} are yarn keys (--rope-scaling yarn)")
    d.update(given)
    return d, kind


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="break kinds:\n" + "\n".join(f"  {k:20s} {v}" for k, v in BREAKS.items()))
    p.add_argument("out_dir")
    p.add_argument("--family", choices=sorted(FAMILIES), help="required unless --preset implies it")
    p.add_argument("--preset", choices=sorted(PRESETS))
    g = p.add_argument_group("shape")
    g.add_argument("--hidden", type=int)
    g.add_argument("--heads", type=int)
    g.add_argument("--kv-heads", type=int)
    g.add_argument("--head-dim", type=int)
    g.add_argument("--num-layers", type=int, help="num_hidden_layers (default 2, or the preset's)")
    g.add_argument("--layers-with-weights", help="comma list (ranges a-b allowed) of layers whose "
                   "tensors are written; the others are absent (default: all)")
    g.add_argument("--intermediate-size", type=int)
    g.add_argument("--max-position-embeddings", type=int)
    g = p.add_argument_group("config")
    g.add_argument("--dtype", choices=["bf16", "f16", "f32"], default="bf16")
    g.add_argument("--dtype-key", choices=["torch_dtype", "dtype"], default="torch_dtype",
                   help="config key for the dtype (transformers >= 4.56 writes 'dtype')")
    g.add_argument("--config-form", choices=["legacy", "parameters"], default="legacy",
                   help="legacy: top-level rope_theta + rope_scaling; parameters: rope_parameters "
                   "(transformers v5)")
    g.add_argument("--legacy-type-key", action="store_true",
                   help="legacy form: write the scaling type under 'type' instead of 'rope_type'")
    g.add_argument("--theta", type=float, help="rope_theta")
    g.add_argument("--partial-rotary-factor", type=float)
    g.add_argument("--rotary-dim", type=int,
                   help="write rotary_dim instead of partial_rotary_factor (the six "
                   "families' transformers classes ignore it: for testing that a reader "
                   "does too)")
    g.add_argument("--attention-bias", action="store_true",
                   help="llama/qwen3: attention_bias true (q/k/v/o biases)")
    g.add_argument("--no-qkv-bias", action="store_true", help="stablelm: use_qkv_bias false")
    g.add_argument("--sliding-window", type=int, help="mistral: sliding_window (default null)")
    g = p.add_argument_group("rope scaling (only the keys given are written, so HF's defaults apply)")
    g.add_argument("--rope-scaling", choices=["none", "linear", "dynamic", "yarn", "llama3"],
                   help="default: the preset's scaling, else none")
    g.add_argument("--factor", type=float, help="default 8 for llama3, else 4")
    g.add_argument("--original-max-position-embeddings", type=int,
                   help="written when given (llama3: default 8192)")
    g.add_argument("--low-freq-factor", type=float, help="llama3 (default 1)")
    g.add_argument("--high-freq-factor", type=float, help="llama3 (default 4)")
    g.add_argument("--beta-fast", type=float)
    g.add_argument("--beta-slow", type=float)
    g.add_argument("--attention-factor", type=float)
    g.add_argument("--mscale", type=float)
    g.add_argument("--mscale-all-dim", type=float)
    g.add_argument("--truncate", choices=["true", "false"])
    g = p.add_argument_group("biases")
    g.add_argument("--q-bias-std", type=float)
    g.add_argument("--q-bias-absmax", type=float)
    g.add_argument("--k-bias-std", type=float)
    g.add_argument("--k-bias-absmax", type=float)
    g.add_argument("--v-bias-std", type=float)
    g.add_argument("--low-freq-qk-bias", type=float, default=0.0,
                   help="V: in every head, the Q and K bias of the first dim of the "
                        "lowest-frequency RoPE pair (dim R/2 - 1, rotate_half's pairing) "
                        "set to V, so that RoPE turns a large constant slowly: post-RoPE Q "
                        "and K drift almost linearly with position (for rotor-qk's tests)")
    g = p.add_argument_group("outliers")
    g.add_argument("--kv-outlier-channels", type=int, default=0,
                   help="N: in every KV head, N dims of K and V whose projection rows are "
                        "scaled by --kv-outlier-scale (the per-token outlier channels of real "
                        "checkpoints, which a rotation spreads before quantizing)")
    g.add_argument("--kv-outlier-scale", type=float, default=10.0)
    g = p.add_argument_group("files")
    g.add_argument("--shards", type=int, default=1, help="N > 1: model-0000K-of-0000N.safetensors + "
                   "model.safetensors.index.json")
    g.add_argument("--full", action="store_true", help="also write embedding (vocab 256), MLP and lm_head")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--break", dest="brk", choices=sorted(BREAKS), metavar="KIND",
                   help="write a deliberately bad checkpoint: " + ", ".join(sorted(BREAKS)))
    a = p.parse_args()
    die = lambda msg: sys.exit(f"make_hf_checkpoint: {msg}")

    # ---- shape and family ---------------------------------------------------------------
    if a.preset:
        base = dict(PRESETS[a.preset])
        if a.family and a.family != base["family"]:
            die(f"preset {a.preset} is a {base['family']} model, not {a.family}")
        family = base["family"]
    else:
        if not a.family:
            die("--family is required without --preset")
        family = a.family
        base = dict(REDUCED[family])
    fam = FAMILIES[family]
    hidden = a.hidden or base["hidden"]
    heads = a.heads or base["heads"]
    kv_heads = a.kv_heads or (heads if family in ("stablelm", "phi") else base["kv_heads"])
    head_dim = a.head_dim or (base["head_dim"]
                              if not (a.hidden or a.heads) or family in ("qwen3", "qwen3_next")
                              else hidden // heads)
    n_layers = a.num_layers if a.num_layers is not None else base["layers"]
    intermediate = a.intermediate_size or (2 * hidden if not a.preset else base["intermediate"])
    max_pos = a.max_position_embeddings or base["max_pos"]
    theta = a.theta if a.theta is not None else base["theta"]
    if heads % kv_heads:
        die(f"heads {heads} is not a multiple of kv heads {kv_heads}")
    weighted = parse_layers(a.layers_with_weights, n_layers)
    shards = a.shards
    if a.brk == "index-missing-shard" and shards < 2:
        shards = 2
    if shards < 1:
        die("--shards must be >= 1")

    partial = a.partial_rotary_factor if a.partial_rotary_factor is not None else base.get("partial")
    if a.rotary_dim is not None:
        rotary = a.rotary_dim
    else:
        rotary = int(head_dim * (partial if partial is not None else 1.0))
    if rotary % 2 or not 0 < rotary <= head_dim:
        die(f"rotary dims {rotary} must be even and in 1..head_dim {head_dim}")

    qkv_bias = fam["qkv_bias"]
    o_bias = fam["o_bias"]
    if a.attention_bias:
        if family not in ("llama", "qwen3"):
            die("--attention-bias is for llama and qwen3 (mistral has no attention_bias in transformers)")
        qkv_bias = o_bias = True
    if a.no_qkv_bias:
        if family != "stablelm":
            die("--no-qkv-bias is for stablelm")
        qkv_bias = False
    if not qkv_bias and any(v is not None for v in (a.q_bias_std, a.q_bias_absmax, a.k_bias_std,
                                                    a.k_bias_absmax, a.v_bias_std)):
        die(f"{family} has no q/k/v biases here (llama/qwen3: --attention-bias)")
    if a.sliding_window is not None and family != "mistral":
        die("--sliding-window is for mistral")
    scaling, rope_type = build_scaling(a, base)

    # ---- config.json ----------------------------------------------------------------------
    vocab = 256 if a.full else base["vocab"]
    tie = base["tie"]
    c = {"architectures": [fam["arch"]], "model_type": fam["model_type"],
         "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
         "intermediate_size": intermediate, "num_hidden_layers": n_layers,
         "max_position_embeddings": max_pos, "vocab_size": vocab, "tie_word_embeddings": tie,
         "initializer_range": 0.02, "attention_dropout": 0.0, "use_cache": True,
         "bos_token_id": base.get("bos", 1), "eos_token_id": base.get("eos", 2),
         "transformers_version": ("5.0.0" if a.config_form == "parameters"
                                  else base.get("transformers_version", "4.46.0")),
         a.dtype_key: {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[a.dtype]}
    if fam["norm"] == "rms":
        c["rms_norm_eps"] = base["eps"]
        c["hidden_act"] = "silu"
    else:
        c["layer_norm_eps"] = base["eps"]
        c["hidden_act"] = "gelu_new" if family == "phi" else "silu"
    if family in ("llama", "mistral", "qwen3", "qwen3_next") or head_dim * heads != hidden:
        c["head_dim"] = head_dim
    if family in ("llama", "mistral", "qwen3", "qwen3_next"):
        c["attention_bias"] = qkv_bias
    full_attention = set(range(n_layers))
    if family == "qwen3_next":
        c["full_attention_interval"] = 4
        c["layer_types"] = ["full_attention" if (i + 1) % 4 == 0 else "linear_attention"
                            for i in range(n_layers)]
        full_attention = {i for i in range(n_layers) if (i + 1) % 4 == 0}
    if family == "llama":
        c["mlp_bias"] = False
        c["pretraining_tp"] = 1
    if family == "qwen2":
        c["use_sliding_window"] = False
        c["sliding_window"] = base.get("sliding_window", max_pos)
        c["max_window_layers"] = base.get("max_window_layers", n_layers)
    if family == "qwen3":
        c["use_sliding_window"] = False
        c["sliding_window"] = None
        c["max_window_layers"] = base.get("max_window_layers", n_layers)
    if family == "mistral":
        c["sliding_window"] = a.sliding_window
    if family == "stablelm":
        c["use_qkv_bias"] = qkv_bias
        c["qk_layernorm"] = False
        c["use_parallel_residual"] = False
        c["hidden_dropout"] = 0.0
    if family == "phi":
        c["qk_layernorm"] = False
        c["resid_pdrop"] = 0.1
        c["embd_pdrop"] = 0.0
    if a.rotary_dim is not None:
        c["rotary_dim"] = a.rotary_dim
    elif partial is not None:
        c["partial_rotary_factor"] = partial
    type_key = "type" if a.legacy_type_key else "rope_type"
    if a.legacy_type_key and a.config_form != "legacy":
        die("--legacy-type-key is for --config-form legacy")
    if a.config_form == "legacy":
        c["rope_theta"] = theta
        c["rope_scaling"] = None if scaling is None else {type_key: rope_type, **scaling}
    else:
        rp = {"rope_type": rope_type, "rope_theta": theta, **(scaling or {})}
        if "partial_rotary_factor" in c:
            rp["partial_rotary_factor"] = c["partial_rotary_factor"]
        c["rope_parameters"] = rp
    broken = []
    if a.brk == "unknown-model-type":
        c["model_type"] = "gpt2_custom"
        broken.append('config.json model_type "gpt2_custom"')
    if a.brk == "unknown-rope-type":
        if a.config_form == "legacy":
            c["rope_scaling"] = {type_key: "quantum", **(scaling or {"factor": 2.0})}
        else:
            c["rope_parameters"]["rope_type"] = "quantum"
            c["rope_parameters"].setdefault("factor", 2.0)
        broken.append('config.json rope type "quantum"')

    # ---- tensors (in module order, as the state dict lists them) ----------------------------
    bias_stats = {
        "q": (a.q_bias_std if a.q_bias_std is not None else base.get("q_bias_std", 0.1),
              a.q_bias_absmax if a.q_bias_absmax is not None else base.get("q_bias_absmax")),
        "k": (a.k_bias_std if a.k_bias_std is not None else base.get("k_bias_std", 0.1),
              a.k_bias_absmax if a.k_bias_absmax is not None else base.get("k_bias_absmax")),
        "v": (a.v_bias_std if a.v_bias_std is not None else base.get("v_bias_std", 0.1), None),
        "o": (0.1, None),
    }
    for v in ("q", "k"):
        amax = bias_stats[v][1]
        if amax is not None and roundtrip(amax, a.dtype) != amax:
            print(f"make_hf_checkpoint: warning: {v} bias absmax {amax} is not representable in "
                  f"{a.dtype}; stored max is {roundtrip(amax, a.dtype)}", file=sys.stderr)

    order, arrays = [], {}

    def add(name, make):
        order.append(name)
        arrays[name] = make(tensor_rng(a.seed, name))

    weight = lambda out, inp: lambda r: r.standard_normal((out, inp), dtype=np.float32) / np.float32(np.sqrt(inp))
    near_one = lambda n: lambda r: (1.0 + 0.1 * r.standard_normal(n)).astype(np.float32)
    small = lambda n, std=0.02: lambda r: (std * r.standard_normal(n)).astype(np.float32)

    def bias(n, which):
        std, amax = bias_stats[which]

        def make(r):
            b = (std * r.standard_normal(n)).astype(np.float32)
            if amax is not None:
                b = np.clip(b, -amax, amax)
                b[r.integers(n)] = amax if r.integers(2) else -amax
            return b
        return make

    q_out, kv_out = heads * head_dim, kv_heads * head_dim

    def low_freq(make, count):
        def set_pair(r):
            b = make(r)
            for h in range(count):
                b[h * head_dim + rotary // 2 - 1] = np.float32(a.low_freq_qk_bias)
            return b
        return set_pair

    def outliers(make):
        """Scales a few rows per KV head: dims whose values are large for
        every token, and vary with it."""
        if not a.kv_outlier_channels:
            return make

        def scaled(r):
            w = make(r)
            for h in range(kv_heads):
                for c in range(a.kv_outlier_channels):
                    w[h * head_dim + (7 * c + 3) % head_dim] *= np.float32(a.kv_outlier_scale)
            return w
        return scaled
    if a.full:
        add("model.embed_tokens.weight", lambda r: r.standard_normal((vocab, hidden), dtype=np.float32))
    for layer in weighted:
        pre = f"model.layers.{layer}."
        at = pre + "self_attn."
        if layer not in full_attention:
            # A Gated DeltaNet layer: a placeholder of its projection.
            add(pre + "linear_attn.in_proj_qkvz.weight", weight(4 * kv_out, hidden))
            add(pre + "input_layernorm.weight", near_one(hidden))
            continue
        # Qwen3-Next's q_proj yields, per head, head_dim query rows then
        # head_dim gate rows.
        q_rows = 2 * q_out if fam.get("gate") else q_out
        for v, out in (("q", q_rows), ("k", kv_out), ("v", kv_out)):
            add(f"{at}{v}_proj.weight",
                outliers(weight(out, hidden)) if v != "q" else weight(out, hidden))
            if qkv_bias:
                make = bias(out, v)
                if a.low_freq_qk_bias and v in ("q", "k"):
                    make = low_freq(make, out // head_dim)
                add(f"{at}{v}_proj.bias", make)
        add(f"{at}{fam['o_name']}.weight", weight(hidden, q_out))
        if o_bias:
            add(f"{at}{fam['o_name']}.bias", bias(hidden, "o"))
        if fam["qk_norm"]:
            # Zero-centred norms store w with gain 1 + w.
            norm_weight = small(head_dim, 0.1) if fam.get("zero_centred") else near_one(head_dim)
            add(at + "q_norm.weight", norm_weight)
            add(at + "k_norm.weight", norm_weight)
        if a.full:
            if family == "phi":
                add(pre + "mlp.fc1.weight", weight(intermediate, hidden))
                add(pre + "mlp.fc1.bias", small(intermediate))
                add(pre + "mlp.fc2.weight", weight(hidden, intermediate))
                add(pre + "mlp.fc2.bias", small(hidden))
            else:
                add(pre + "mlp.gate_proj.weight", weight(intermediate, hidden))
                add(pre + "mlp.up_proj.weight", weight(intermediate, hidden))
                add(pre + "mlp.down_proj.weight", weight(hidden, intermediate))
        add(pre + "input_layernorm.weight", near_one(hidden))
        if fam["norm"] == "layer":
            add(pre + "input_layernorm.bias", small(hidden))
        if fam["post_norm"]:
            add(pre + "post_attention_layernorm.weight", near_one(hidden))
            if fam["norm"] == "layer":
                add(pre + "post_attention_layernorm.bias", small(hidden))
    final = "model.final_layernorm" if family == "phi" else "model.norm"
    add(final + ".weight", near_one(hidden))
    if fam["norm"] == "layer":
        add(final + ".bias", small(hidden))
    if a.full and not tie:
        add("lm_head.weight", weight(vocab, hidden))
        if family == "phi":
            add("lm_head.bias", small(vocab))

    tensors = {n: encode(arrays[n], a.dtype) for n in order}
    target_layer = weighted[0] if weighted else None
    target = f"model.layers.{target_layer}.self_attn.k_proj.weight"
    if a.brk in ("truncate", "header-past-end", "bad-json", "wrong-dtype", "wrong-shape",
                 "missing-tensor", "index-missing-shard", "bad-offsets") and target_layer is None:
        die(f"--break {a.brk} needs a layer with weights")
    if a.brk == "wrong-dtype":
        x = arrays[target]
        tensors[target] = Tensor("I32", x.shape, np.round(x * 1000).astype("<i4").tobytes())
        broken.append(f"{target} stored as I32")
    if a.brk == "wrong-shape":
        x = arrays[target][:-1]
        tensors[target] = encode(x, a.dtype)
        broken.append(f"{target} shape {list(x.shape)} (one row too few)")
    if a.brk == "missing-tensor":
        gone = f"model.layers.{target_layer}.self_attn.v_proj.weight"
        order.remove(gone)
        del tensors[gone]
        broken.append(f"{gone} left out")

    # ---- shards --------------------------------------------------------------------------
    if shards > len(order):
        die(f"{shards} shards for {len(order)} tensors")
    sizes = [len(tensors[n].data) for n in order]
    total = sum(sizes)
    # Contiguous split in state-dict order into `shards` parts of about equal bytes (what
    # save_pretrained's greedy max_shard_size split gives for max_shard_size ~ total/N).
    starts, cum = [0], 0
    for i, s in enumerate(sizes):
        if len(starts) < shards and i > starts[-1] and cum >= total * len(starts) / shards:
            starts.append(i)
        cum += s
    while len(starts) < shards:
        starts.append(starts[-1] + 1)
    starts.append(len(order))
    for k in range(1, shards):  # every shard non-empty: strictly increasing starts
        starts[k] = max(starts[k], starts[k - 1] + 1)
    for k in range(shards - 1, 0, -1):
        starts[k] = min(starts[k], starts[k + 1] - 1)
    if shards == 1:
        files = {"model.safetensors": order}
    else:
        files = {f"model-{k + 1:05d}-of-{shards:05d}.safetensors": order[starts[k]:starts[k + 1]]
                 for k in range(shards)}
    file_of = {n: f for f, names in files.items() for n in names}

    os.makedirs(a.out_dir, exist_ok=True)
    for f in os.listdir(a.out_dir):  # a previous run's files would confuse an importer
        if f == "config.json" or f.startswith("model") and (f.endswith(".safetensors") or f.endswith(".json")):
            os.remove(os.path.join(a.out_dir, f))
    with open(os.path.join(a.out_dir, "config.json"), "w") as fh:
        fh.write(json.dumps(c, indent=2, sort_keys=True) + "\n")
    target_file = file_of.get(target)
    for f, names in files.items():
        hook = None
        if a.brk == "bad-offsets" and f == target_file:
            def hook(header, data_len):
                b, e = header[target]["data_offsets"]
                start = data_len - (e - b) // 2
                header[target]["data_offsets"] = [start, start + (e - b)]
                broken.append(f"{f}: {target} data_offsets [{start}, {start + e - b}] end past the "
                              f"data ({data_len} bytes)")
        blob = safetensors_bytes({n: tensors[n] for n in names}, hook)
        path = os.path.join(a.out_dir, f)
        if f == target_file and a.brk == "truncate":
            n = struct.unpack("<Q", blob[:8])[0]
            hdr = json.loads(blob[8:8 + n])
            b, e = hdr[target]["data_offsets"]
            cut = 8 + n + (b + e) // 2
            broken.append(f"{f} truncated to {cut} of {len(blob)} bytes, in the middle of {target}")
            blob = blob[:cut]
        if f == target_file and a.brk == "header-past-end":
            bogus = len(blob) + 8
            broken.append(f"{f} header length {bogus} > file size {len(blob)}")
            blob = struct.pack("<Q", bogus) + blob[8:]
        if f == target_file and a.brk == "bad-json":
            n = struct.unpack("<Q", blob[:8])[0]
            head = bytearray(blob[8:8 + n])
            i = head.rindex(b"}")
            head[i:i + 1] = b" "
            blob = blob[:8] + bytes(head) + blob[8 + n:]
            broken.append(f"{f} header JSON lost its closing brace")
        with open(path, "wb") as fh:
            fh.write(blob)
    if shards > 1:
        index = {"metadata": {"total_size": sum(len(tensors[n].data) for n in order)},
                 "weight_map": {n: file_of[n] for n in sorted(file_of)}}
        with open(os.path.join(a.out_dir, "model.safetensors.index.json"), "w") as fh:
            fh.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    if a.brk == "index-missing-shard":
        os.remove(os.path.join(a.out_dir, target_file))
        broken.append(f"{target_file} (holds {target}) deleted; the index still maps "
                      f"{len(files[target_file])} tensors to it")

    written = ["config.json"] + [f for f in files if not (a.brk == "index-missing-shard" and f == target_file)]
    if shards > 1:
        written.append("model.safetensors.index.json")
    for b in broken:
        print(f"make_hf_checkpoint: broke ({a.brk}): {b}")
    form = a.config_form + (" type-key" if a.legacy_type_key else "")
    print(f"make_hf_checkpoint: {family}{' (' + a.preset + ')' if a.preset else ''} hidden {hidden} "
          f"heads {heads} kv_heads {kv_heads} head_dim {head_dim} rotary_dim {rotary} "
          f"layers {n_layers} (weights: {','.join(map(str, weighted)) or 'none'}), {a.dtype}, "
          f"{form} config, rope {rope_type} theta {theta:g}; {len(order)} tensors in "
          f"{len(files)} file(s): {', '.join(written)} -> {a.out_dir}; seed {a.seed}")


if __name__ == "__main__":
    main()
