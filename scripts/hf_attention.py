#!/usr/bin/python3
"""Hugging Face's attention sublayer in PyTorch (float64), written the way
transformers writes it: biased projections, half-split RoPE through
rotate_half, repeat_kv for GQA, causal softmax attention, o_proj. Used to
cross-check rotor-run's output and as the CPU baseline of the benchmarks.

hf_attention.py WEIGHTS INPUTS OUTPUTS --q-heads H --kv-heads K [--theta T]
        [--layer N] [--tolerance R] [--captures F]
    Qwen2-style layer (q/k/v biases, full rotary, no scaling) from the
    weights file of make_layer_inputs.py.

hf_attention.py --checkpoint DIR INPUTS [OUTPUTS] [--layer N] [--tolerance R]
        [--captures F] [--write-reference OUT] [--print-config] [--hf-v4-yarn]
    The self_attn module of layer N of a Hugging Face checkpoint directory
    (config.json + model.safetensors or sharded model-*.safetensors with
    model.safetensors.index.json; BF16/F16/F32), for model_type qwen2, llama,
    mistral, qwen3 (q_norm/k_norm), stablelm and phi (partial rotary, phi's
    self_attn.dense), with the rope types default, linear, dynamic, yarn and
    llama3 read from rope_scaling (legacy) or rope_parameters (transformers v5).
    Written independently of transformers' code, following its
    modeling_rope_utils.py (v5) and modeling files. --print-config alone (no
    INPUTS) prints the resolved rope parameters.

Both modes compare OUTPUTS["output"] [T, hidden] with the module's result for
INPUTS["hidden_states"] at INPUTS["positions"] (default 0..T-1), print PCC and
max relative error, and exit 1 past --tolerance. --write-reference OUT writes
the module's result as {"output": F32} (OUTPUTS is then optional).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64,
          "F64": np.float64}


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[8 + n + b:8 + n + end]
        if e["dtype"] == "BF16":
            arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, DTYPES[e["dtype"]])
        out[name] = arr.reshape(e["shape"])
    return out


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    heads, t, d = x.shape
    return x[:, None, :, :].expand(heads, n_rep, t, d).reshape(heads * n_rep, t, d)


def attention(w, prefix, hidden, positions, q_heads, kv_heads, theta, dtype,
              post_rope=None):
    t = lambda name: torch.from_numpy(np.array(w[prefix + name])).to(dtype)
    x = torch.from_numpy(np.array(hidden)).to(dtype)
    e = x.shape[-1]
    d = t("q_proj.weight").shape[0] // q_heads
    q = torch.nn.functional.linear(x, t("q_proj.weight"), t("q_proj.bias"))
    k = torch.nn.functional.linear(x, t("k_proj.weight"), t("k_proj.bias"))
    v = torch.nn.functional.linear(x, t("v_proj.weight"), t("v_proj.bias"))
    q = q.view(-1, q_heads, d).transpose(0, 1)
    k = k.view(-1, kv_heads, d).transpose(0, 1)
    v = v.view(-1, kv_heads, d).transpose(0, 1)
    inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    freqs = torch.from_numpy(np.array(positions)).to(torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(dtype), emb.sin().to(dtype)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    if post_rope is not None:  # [T, heads, d], as attn.capture records them
        post_rope["q"], post_rope["k"] = q.transpose(0, 1), k.transpose(0, 1)
    k = repeat_kv(k, q_heads // kv_heads)
    v = repeat_kv(v, q_heads // kv_heads)
    scores = q @ k.transpose(1, 2) / (d ** 0.5)
    n = scores.shape[-1]
    mask = torch.ones(n, n, dtype=torch.bool).tril()
    scores = scores.masked_fill(~mask, float("-inf"))
    o = torch.softmax(scores, dim=-1) @ v
    o = o.transpose(0, 1).reshape(-1, q_heads * d)
    return torch.nn.functional.linear(o, t("o_proj.weight"))


# ---- checkpoint mode ------------------------------------------------------------------

ST_NUMPY = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2", "I32": "<i4", "I64": "<i8",
            "I16": "<i2", "I8": "i1", "U8": "u1"}


def fail(msg):
    print(f"hf_attention: error: {msg}", file=sys.stderr)
    sys.exit(2)


class SafetensorsFile:
    """One safetensors file, its header parsed and checked; tensors read on demand."""

    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                fail(f"{path}: {size} bytes, too short for a safetensors header")
            n = struct.unpack("<Q", raw)[0]
            if 8 + n > size:
                fail(f"{path}: header length {n} runs past the end of the file ({size} bytes)")
            try:
                header = json.loads(f.read(n))
            except ValueError as e:
                fail(f"{path}: header is not valid JSON ({e})")
        self.data_start, self.data_len = 8 + n, size - 8 - n
        header.pop("__metadata__", None)
        self.entries = header

    def load(self, name):
        e = self.entries[name]
        dtype, shape, (begin, end) = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in ST_NUMPY:
            fail(f"{self.path}: {name} has unsupported dtype {dtype}")
        want = int(np.prod(shape, dtype=np.int64)) * np.dtype(ST_NUMPY[dtype]).itemsize
        if not 0 <= begin <= end <= self.data_len or end - begin != want:
            fail(f"{self.path}: {name} data_offsets [{begin}, {end}] do not fit its "
                 f"{dtype}{list(shape)} in {self.data_len} bytes of data")
        with open(self.path, "rb") as f:
            f.seek(self.data_start + begin)
            raw = f.read(end - begin)
        arr = np.frombuffer(raw, np.dtype(ST_NUMPY[dtype]))
        if dtype == "BF16":  # exact: bf16 -> f32 by widening the bit pattern
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr.reshape(shape)


class Checkpoint:
    """A Hugging Face checkpoint directory: config.json and its safetensors."""

    def __init__(self, path):
        self.path = path
        try:
            with open(os.path.join(path, "config.json")) as f:
                self.config = json.load(f)
        except (OSError, ValueError) as e:
            fail(f"{path}/config.json: {e}")
        index = os.path.join(path, "model.safetensors.index.json")
        self._files = {}
        # from_pretrained prefers the single file over an index.
        if os.path.exists(os.path.join(path, "model.safetensors")):
            self.file_of = {n: "model.safetensors" for n in self._file("model.safetensors").entries}
        elif os.path.exists(index):
            with open(index) as f:
                self.file_of = json.load(f)["weight_map"]
        else:
            fail(f"{path}: neither model.safetensors nor model.safetensors.index.json")

    def _file(self, name):
        if name not in self._files:
            full = os.path.join(self.path, name)
            if not os.path.exists(full):
                fail(f"{self.path}: the index maps tensors to {name}, which is not there")
            self._files[name] = SafetensorsFile(full)
        return self._files[name]

    def __contains__(self, name):
        return name in self.file_of

    def _locate(self, name):
        if name not in self.file_of:
            fail(f"{self.path}: no tensor {name}")
        f = self._file(self.file_of[name])
        if name not in f.entries:
            fail(f"{f.path}: the index maps {name} here, but the file lacks it")
        return f

    def dtype(self, name):
        return self._locate(name).entries[name]["dtype"]

    def load(self, name):
        return self._locate(name).load(name)


def resolve_rope(cfg, seq_len=None, hf_v4_yarn=False):
    """inv_freq (float64) and everything that determines it, from config.json the way
    transformers v5 reads it (standardize_rope_params + the ROPE_INIT_FUNCTIONS).
    seq_len: max(position) + 1, used by dynamic only."""
    notes = []
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    # v5 convert_rope_params_to_dict: rope_scaling (legacy) wins over rope_parameters.
    rp = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    if any(isinstance(v, dict) for v in rp.values()):
        fail("per-layer-type rope_parameters are not supported")
    rp = dict(rp)
    rope_type = rp.get("rope_type", rp.get("type", "default"))
    theta = rp.get("rope_theta")
    if theta is None:
        theta = cfg.get("rope_theta")
    if theta is None:
        theta = 10000.0
    family = cfg.get("model_type")
    # An absent key takes the config class's default; null derives it.
    if "head_dim" not in cfg and family == "qwen3":
        head_dim = 128
    else:
        head_dim = cfg.get("head_dim") or hidden // heads
    # standardize_rope_params copies the top-level partial_rotary_factor over the inner one.
    top, inner = cfg.get("partial_rotary_factor"), rp.get("partial_rotary_factor")
    if top is not None and inner is not None and top != inner:
        notes.append(f"partial_rotary_factor {top} (top level) overrides {inner} (rope_parameters)")
    family_partial = {"phi": 0.5, "stablelm": 0.25}.get(family, 1.0)
    factor_p = top if top is not None else inner if inner is not None else family_partial
    if cfg.get("rotary_dim") is not None:
        notes.append(f"rotary_dim ignored, as transformers' {family} ignores it")
    rotary = int(head_dim * factor_p)
    if rotary % 2 or not 0 < rotary <= head_dim:
        fail(f"rotary dims {rotary} must be even and within head_dim {head_dim}")
    max_pos = cfg.get("max_position_embeddings")
    exponents = torch.arange(0, rotary, 2, dtype=torch.float64) / rotary
    scaling = 1.0
    info = {}
    if rope_type == "default":
        inv_freq = 1.0 / theta ** exponents
    elif rope_type == "linear":
        inv_freq = 1.0 / theta ** exponents / rp["factor"]
        info["factor"] = rp["factor"]
    elif rope_type == "dynamic":
        # _compute_dynamic_ntk_parameters: only config.max_position_embeddings counts (an
        # original_max_position_embeddings in the dict is not read), and the base changes only
        # once the sequence outgrows it (dynamic_frequency_update with seq_len = max(pos) + 1).
        factor = rp["factor"]
        if "original_max_position_embeddings" in rp:
            notes.append("dynamic ignores rope original_max_position_embeddings (as transformers does)")
        s = max_pos if seq_len is None else max(seq_len, max_pos)
        base = theta * ((factor * s / max_pos) - (factor - 1)) ** (rotary / (rotary - 2))
        inv_freq = 1.0 / base ** exponents
        info.update(factor=factor, seq_len=seq_len, dynamic_base=base)
    elif rope_type in ("yarn", "llama3"):
        # standardize_rope_params: a top-level original_max_position_embeddings wins, else the
        # dict's, else max_position_embeddings.
        if cfg.get("original_max_position_embeddings") is not None:
            orig = cfg["original_max_position_embeddings"]
        elif rp.get("original_max_position_embeddings") is not None:
            orig = rp["original_max_position_embeddings"]
        else:
            orig = max_pos
        factor = rp.get("factor")
        if rope_type == "llama3":
            inv = 1.0 / theta ** exponents
            low_f, high_f = rp["low_freq_factor"], rp["high_freq_factor"]
            low_wavelen, high_wavelen = orig / low_f, orig / high_f
            wavelen = 2 * math.pi / inv
            inv_l = torch.where(wavelen > low_wavelen, inv / factor, inv)
            smooth = (orig / wavelen - low_f) / (high_f - low_f)
            smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
            medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
            inv_freq = torch.where(medium, smoothed, inv_l)
            info.update(factor=factor, low_freq_factor=low_f, high_freq_factor=high_f, original_max=orig)
        else:
            if hf_v4_yarn:
                # transformers 4.5x: the ratio replaces factor when the dict has the original length.
                if "original_max_position_embeddings" in rp:
                    orig = rp["original_max_position_embeddings"]
                    factor = max_pos / orig
                else:
                    orig = max_pos
            elif factor is None:
                factor = max_pos / orig
            if not hf_v4_yarn and max_pos / orig not in (factor, 1):
                notes.append(f"yarn factor {factor} != max_position_embeddings / original "
                             f"{max_pos / orig:g}: transformers v5 uses the explicit factor "
                             "(4.5x used the ratio: --hf-v4-yarn)")
            attention_factor = rp.get("attention_factor")
            mscale, mscale_all_dim = rp.get("mscale"), rp.get("mscale_all_dim")

            def get_mscale(scale, m=1):
                return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0
            if attention_factor is None:
                if mscale and mscale_all_dim:
                    attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
                else:
                    attention_factor = get_mscale(factor)
            beta_fast = rp.get("beta_fast") or 32
            beta_slow = rp.get("beta_slow") or 1
            truncate = rp.get("truncate", True)

            def correction_dim(rotations):
                return (rotary * math.log(orig / (rotations * 2 * math.pi))) / (2 * math.log(theta))
            low, high = correction_dim(beta_fast), correction_dim(beta_slow)
            if truncate:
                low, high = math.floor(low), math.ceil(high)
            low, high = max(low, 0), min(high, rotary - 1)
            ramp_hi = high + 0.001 if low == high else high
            ramp = torch.clamp((torch.arange(rotary // 2, dtype=torch.float64) - low) / (ramp_hi - low), 0, 1)
            pos_freqs = theta ** exponents
            extrapolation = 1 - ramp
            inv_freq = (1.0 / (factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
            scaling = attention_factor
            info.update(factor=factor, original_max=orig, beta_fast=beta_fast, beta_slow=beta_slow,
                        truncate=truncate, low=low, high=high)
    else:
        fail(f"unsupported rope type {rope_type!r}")
    return dict(head_dim=head_dim, rotary_dim=rotary, theta=theta, rope_type=rope_type,
                inv_freq=inv_freq, attention_scaling=scaling, info=info, notes=notes)


def describe_rope(r):
    inv = ", ".join(f"{v:.9g}" for v in r["inv_freq"][:4].tolist())
    extra = "".join(f" {k} {v}" for k, v in r["info"].items())
    return (f"head_dim {r['head_dim']} rotary_dim {r['rotary_dim']} theta {r['theta']:g} "
            f"rope_type {r['rope_type']} inv_freq[:4] [{inv}] attention_scaling "
            f"{r['attention_scaling']:.12g}{extra}")


FAMILY_BIASES = {  # (q/k/v bias, o bias) as each transformers module builds its Linears
    "qwen2": lambda c: (True, False),
    "llama": lambda c: (bool(c.get("attention_bias", False)),) * 2,
    "qwen3": lambda c: (bool(c.get("attention_bias", False)),) * 2,
    "mistral": lambda c: (False, False),
    "stablelm": lambda c: (bool(c.get("use_qkv_bias", False)), False),
    "phi": lambda c: (True, True),
    "qwen3_next": lambda c: (bool(c.get("attention_bias", False)),) * 2,
}


def checkpoint_attention(ck, layer, hidden, positions, rope, post_rope=None):
    """self_attn of `layer` for hidden [T, hidden] at `positions`, causal, float64."""
    cfg = ck.config
    family = cfg.get("model_type")
    if family not in FAMILY_BIASES:
        fail(f"unsupported model_type {family!r}")
    if cfg.get("qk_layernorm"):
        fail("qk_layernorm (per-head LayerNorm of stablelm/phi) is not supported")
    heads = cfg["num_attention_heads"]
    if "num_key_value_heads" in cfg:
        kv_heads = cfg["num_key_value_heads"] or heads
    else:  # the config classes' defaults
        kv_heads = {"qwen2": 32, "qwen3": 32, "stablelm": 32, "mistral": 8}.get(family, heads)
    e, d, r = cfg["hidden_size"], rope["head_dim"], rope["rotary_dim"]
    pre = f"model.layers.{layer}.self_attn."
    o_name = "dense" if family == "phi" else "o_proj"
    if pre + "q_proj.weight" not in ck:
        have = sorted({int(n.split(".")[2]) for n in ck.file_of if n.startswith("model.layers.")})
        fail(f"layer {layer} has no self_attn weights (layers with weights: {have})")
    qkv_bias, o_bias = FAMILY_BIASES[family](cfg)

    def w(name, shape):
        dtype = ck.dtype(pre + name)
        if dtype not in ("BF16", "F16", "F32", "F64"):
            fail(f"{pre}{name} has dtype {dtype}, not a floating-point type")
        t = torch.from_numpy(ck.load(pre + name).astype(np.float64))
        if list(t.shape) != list(shape):
            fail(f"{pre}{name} has shape {list(t.shape)}, expected {list(shape)}")
        return t

    def b(name, n, expected):
        if not expected:
            if pre + name in ck:
                print(f"hf_attention: note: {pre}{name} present but unused by {family} with this "
                      "config (transformers ignores it too)")
            return None
        return w(name, [n])

    x = torch.from_numpy(np.asarray(hidden, dtype=np.float64))
    if x.ndim != 2 or x.shape[1] != e:
        fail(f"hidden_states {list(x.shape)} is not [T, {e}]")
    t = x.shape[0]
    lin = torch.nn.functional.linear
    gate = None
    if family == "qwen3_next":
        # Qwen3NextAttention: q_proj viewed [T, heads, 2d] and chunked into
        # the query and the output gate.
        qg = lin(x, w("q_proj.weight", [heads * d * 2, e]),
                 b("q_proj.bias", heads * d * 2, qkv_bias)).view(t, heads, 2 * d)
        q, gate = torch.chunk(qg, 2, dim=-1)
        gate = gate.reshape(t, heads * d)
    else:
        q = lin(x, w("q_proj.weight", [heads * d, e]), b("q_proj.bias", heads * d, qkv_bias)).view(t, heads, d)
    k = lin(x, w("k_proj.weight", [kv_heads * d, e]), b("k_proj.bias", kv_heads * d, qkv_bias)).view(t, kv_heads, d)
    v = lin(x, w("v_proj.weight", [kv_heads * d, e]), b("v_proj.bias", kv_heads * d, qkv_bias)).view(t, kv_heads, d)
    if family in ("qwen3", "qwen3_next"):  # RMS norm over head_dim, per head, before RoPE
        eps = cfg.get("rms_norm_eps", 1e-6)
        rms = lambda y, g: g * (y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps))
        # Qwen3NextRMSNorm is zero-centred: its gain is 1 + weight.
        offset = 1.0 if family == "qwen3_next" else 0.0
        q = rms(q, w("q_norm.weight", [d]) + offset)
        k = rms(k, w("k_norm.weight", [d]) + offset)
    q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, T, d]
    pos = torch.from_numpy(np.asarray(positions).astype(np.float64))
    freqs = pos[:, None] * rope["inv_freq"][None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos() * rope["attention_scaling"], emb.sin() * rope["attention_scaling"]

    def apply(y):  # rotate the first r dims (half-split within them), pass the rest
        rot, rest = y[..., :r], y[..., r:]
        return torch.cat((rot * cos + rotate_half(rot) * sin, rest), dim=-1)
    q, k = apply(q), apply(k)
    if post_rope is not None:
        post_rope["q"], post_rope["k"] = q.transpose(0, 1), k.transpose(0, 1)
    k, v = repeat_kv(k, heads // kv_heads), repeat_kv(v, heads // kv_heads)
    scores = q @ k.transpose(1, 2) * d ** -0.5
    i = torch.arange(t)
    allowed = i[None, :] <= i[:, None]
    window = None
    if family == "mistral":  # absent: 4096; null: none
        window = cfg.get("sliding_window", 4096)
    elif family in ("qwen2", "qwen3") and cfg.get("use_sliding_window"):
        types = cfg.get("layer_types")
        if types is not None:
            sliding = types[layer] == "sliding_attention"
        else:
            sliding = layer >= cfg.get("max_window_layers", 28)
        if sliding:
            window = cfg.get("sliding_window", 4096)
    if window is not None:
        allowed &= (i[:, None] - i[None, :]) < window
    scores = scores.masked_fill(~allowed, float("-inf"))
    o = (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(t, heads * d)
    if gate is not None:
        o = o * torch.sigmoid(gate)
    return lin(o, w(o_name + ".weight", [e, heads * d]), b(o_name + ".bias", e, o_bias))


def write_safetensors_f32(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(array)),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="WEIGHTS INPUTS OUTPUTS; with --checkpoint: INPUTS [OUTPUTS]")
    p.add_argument("--checkpoint", metavar="DIR", help="Hugging Face checkpoint directory")
    p.add_argument("--layer", type=int, default=0)
    p.add_argument("--q-heads", type=int, default=14)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--theta", type=float, default=1e6)
    p.add_argument("--tolerance", type=float, default=5e-5)
    p.add_argument("--captures", help="also compare rotor-run --captures "
                   "(post-RoPE Q and K, tags layerN.q and layerN.k)")
    p.add_argument("--write-reference", metavar="OUT",
                   help="write the reference result as {\"output\": F32 [T, hidden]}")
    p.add_argument("--print-config", action="store_true",
                   help="checkpoint mode: print the resolved head_dim, rotary_dim, theta, rope_type, "
                   "inv_freq[:4], attention_scaling")
    p.add_argument("--hf-v4-yarn", action="store_true",
                   help="yarn as transformers 4.5x: factor = max_position_embeddings / "
                   "original_max_position_embeddings when the rope dict has the latter")
    a = p.parse_args()
    if a.checkpoint:
        if len(a.files) > 2 or (not a.files and not a.print_config):
            p.error("with --checkpoint: INPUTS [OUTPUTS] (no WEIGHTS)")
        ck = Checkpoint(a.checkpoint)
        if not a.files:
            r = resolve_rope(ck.config, None, a.hf_v4_yarn)
            print(f"hf_attention: config {ck.config.get('model_type')}: {describe_rope(r)}")
            for note in r["notes"]:
                print(f"hf_attention: note: {note}")
            return
        inputs_path, outputs_path = a.files[0], (a.files[1] if len(a.files) > 1 else None)
    else:
        if len(a.files) != 3 and not (len(a.files) == 2 and a.write_reference):
            p.error("expected WEIGHTS INPUTS OUTPUTS (or --checkpoint DIR INPUTS [OUTPUTS])")
        inputs_path, outputs_path = a.files[1], (a.files[2] if len(a.files) > 2 else None)
    if outputs_path is None and not a.write_reference:
        p.error("OUTPUTS is needed unless --write-reference is given")
    inputs = read_safetensors(inputs_path)
    hidden = inputs["hidden_states"]
    positions = inputs.get("positions", np.arange(hidden.shape[0]))
    post_rope = {}
    if a.checkpoint:
        seq_len = int(np.max(positions)) + 1 if len(positions) else None
        rope = resolve_rope(ck.config, seq_len, a.hf_v4_yarn)
        if a.print_config:
            print(f"hf_attention: config {ck.config.get('model_type')}: {describe_rope(rope)}")
        for note in rope["notes"]:
            print(f"hf_attention: note: {note}")
        want = checkpoint_attention(ck, a.layer, hidden, positions, rope, post_rope).numpy()
        what = (f"transformers-style {ck.config.get('model_type')} self_attn (layer {a.layer}, "
                f"rope {rope['rope_type']})")
    else:
        w = read_safetensors(a.files[0])
        want = attention(w, f"model.layers.{a.layer}.self_attn.", hidden, positions,
                         a.q_heads, a.kv_heads, a.theta, torch.float64,
                         post_rope).numpy()
        what = "transformers-style attention"
    if a.write_reference:
        write_safetensors_f32(a.write_reference, {"output": want})
        print(f"hf_attention: wrote reference {list(want.shape)} to {a.write_reference}")
        if outputs_path is None:
            return
    got = read_safetensors(outputs_path)["output"].astype(np.float64)
    if got.shape != want.shape:
        print(f"hf_attention: output shape {list(got.shape)} != reference {list(want.shape)}")
        sys.exit(1)
    ok = True
    if a.captures:
        caps = read_safetensors(a.captures)
        for v in ("q", "k"):
            tag = f"layer{a.layer}.{v}"
            got_v, want_v = caps[tag].astype(np.float64), post_rope[v].numpy()
            same_pos = np.array_equal(caps[tag + ".positions"], np.asarray(positions))
            rel_v = np.abs(got_v - want_v).max() / np.abs(want_v).max()
            print(f"hf_attention: capture {tag} {list(got_v.shape)}, positions "
                  f"{'match' if same_pos else 'DIFFER'}, max relative error {rel_v:.3e}")
            ok &= same_pos and rel_v <= a.tolerance
    pcc = np.corrcoef(got.ravel(), want.ravel())[0, 1]
    rel = np.abs(got - want).max() / np.abs(want).max()
    print(f"hf_attention: PCC {pcc:.9f}, max relative error {rel:.3e} against "
          f"{what} in torch {torch.__version__}")
    sys.exit(0 if ok and rel <= a.tolerance else 1)


if __name__ == "__main__":
    main()
