#!/usr/bin/python3
"""Hugging Face's Qwen2/Llama attention sublayer in PyTorch (float64), written
the way transformers writes it: biased projections, half-split RoPE through
rotate_half, repeat_kv for GQA, causal softmax attention, o_proj. Used to
cross-check rotor-run's output and as the CPU baseline of the benchmarks.

hf_attention.py check WEIGHTS INPUTS OUTPUTS --q-heads H --kv-heads K
    compares OUTPUTS["output"] with the module's result; exit 1 past --tolerance.
"""
import argparse
import json
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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights")
    p.add_argument("inputs")
    p.add_argument("outputs")
    p.add_argument("--layer", type=int, default=0)
    p.add_argument("--q-heads", type=int, default=14)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--theta", type=float, default=1e6)
    p.add_argument("--tolerance", type=float, default=5e-5)
    p.add_argument("--captures", help="also compare rotor-run --captures "
                   "(post-RoPE Q and K, tags layerN.q and layerN.k)")
    a = p.parse_args()
    w = read_safetensors(a.weights)
    inputs = read_safetensors(a.inputs)
    got = read_safetensors(a.outputs)["output"].astype(np.float64)
    hidden = inputs["hidden_states"]
    positions = inputs.get("positions", np.arange(hidden.shape[0]))
    post_rope = {}
    want = attention(w, f"model.layers.{a.layer}.self_attn.", hidden, positions,
                     a.q_heads, a.kv_heads, a.theta, torch.float64,
                     post_rope).numpy()
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
          f"transformers-style attention in torch {torch.__version__}")
    sys.exit(0 if ok and rel <= a.tolerance else 1)


if __name__ == "__main__":
    main()
