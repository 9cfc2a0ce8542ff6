#!/usr/bin/python3
"""Writes random weights and inputs for one attention layer as safetensors.

Weights follow the Hugging Face names of layer N (model.layers.N.self_attn.*)
with Qwen2.5-like magnitudes: a K bias of std --k-bias-std (Qwen2.5-7B
layer 0: 26.75), a Q bias of std --q-bias-std, small V bias. Inputs are
hidden_states [T, hidden] (already normed, so O(1)) and positions 0..T-1.
Uses only numpy, so it runs with Debian's python3-numpy.
"""
import argparse
import json
import struct

import numpy as np


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        dtype = {np.dtype("float32"): "F32", np.dtype("int32"): "I32",
                 np.dtype("int64"): "I64"}[array.dtype]
        blob = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", help="omit to write inputs only")
    p.add_argument("--inputs", required=True)
    p.add_argument("--layer", type=int, default=0)
    p.add_argument("--hidden", type=int, default=896)
    p.add_argument("--q-heads", type=int, default=14)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--q-bias-std", type=float, default=3.0)
    p.add_argument("--k-bias-std", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args()
    seed = a.seed if a.seed is not None else np.random.SeedSequence().entropy % 2**32
    rng = np.random.default_rng(seed)
    e, q, kv, d = a.hidden, a.q_heads * a.head_dim, a.kv_heads * a.head_dim, a.head_dim
    w = lambda *s: (rng.standard_normal(s) / np.sqrt(s[-1])).astype(np.float32)
    n = lambda size, std: (rng.standard_normal(size) * std).astype(np.float32)
    pre = f"model.layers.{a.layer}.self_attn."
    if a.weights:
      write_safetensors(a.weights, {
          pre + "q_proj.weight": w(q, e), pre + "q_proj.bias": n(q, a.q_bias_std),
          pre + "k_proj.weight": w(kv, e), pre + "k_proj.bias": n(kv, a.k_bias_std),
          pre + "v_proj.weight": w(kv, e), pre + "v_proj.bias": n(kv, 0.2),
          pre + "o_proj.weight": w(e, q),
      })
    write_safetensors(a.inputs, {
        "hidden_states": n((a.tokens, e), 1.0),
        "positions": np.arange(a.tokens, dtype=np.int32),
    })
    print(f"make_layer_inputs: seed {seed}")


if __name__ == "__main__":
    main()
