#!/usr/bin/python3
"""PyTorch CPU baseline for bench/host/run.sh: the same attention sublayer
(transformers-style, float32) at the same shapes, timed the same way.

torch_baseline.py WEIGHTS prefill T      -> ms per prefill of T tokens
torch_baseline.py WEIGHTS decode L       -> ms per decode step after L tokens
"""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from hf_attention import attention, read_safetensors, rotate_half, repeat_kv  # noqa: E402

Q_HEADS, KV_HEADS, THETA = 14, 2, 1e6


def best_of(fn, runs=3):
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def decode_step(w, prefix, k_cache, v_cache, x, pos):
    t = lambda name: torch.from_numpy(np.array(w[prefix + name]))
    d = t("q_proj.weight").shape[0] // Q_HEADS
    q = torch.nn.functional.linear(x, t("q_proj.weight"), t("q_proj.bias")).view(Q_HEADS, 1, d)
    k = torch.nn.functional.linear(x, t("k_proj.weight"), t("k_proj.bias")).view(KV_HEADS, 1, d)
    v = torch.nn.functional.linear(x, t("v_proj.weight"), t("v_proj.bias")).view(KV_HEADS, 1, d)
    inv_freq = 1.0 / (THETA ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    emb = torch.cat((pos * inv_freq, pos * inv_freq))
    cos, sin = emb.cos(), emb.sin()
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    keys = repeat_kv(torch.cat((k_cache, k), dim=1), Q_HEADS // KV_HEADS)
    values = repeat_kv(torch.cat((v_cache, v), dim=1), Q_HEADS // KV_HEADS)
    o = torch.softmax(q @ keys.transpose(1, 2) / d ** 0.5, dim=-1) @ values
    return torch.nn.functional.linear(o.reshape(1, -1), t("o_proj.weight"))


def main():
    # One thread: the host code rotor-run executes is single-threaded.
    torch.set_num_threads(1)
    weights_path, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    w = read_safetensors(weights_path)
    prefix = "model.layers.0.self_attn."
    e = w[prefix + "q_proj.weight"].shape[1]
    d = w[prefix + "q_proj.weight"].shape[0] // Q_HEADS
    rng = np.random.default_rng(0)
    with torch.no_grad():
        if mode == "prefill":
            hidden = rng.standard_normal((n, e)).astype(np.float32)
            ms = best_of(lambda: attention(w, prefix, hidden, np.arange(n), Q_HEADS,
                                           KV_HEADS, THETA, torch.float32))
        else:
            k_cache = torch.randn(KV_HEADS, n, d)
            v_cache = torch.randn(KV_HEADS, n, d)
            x = torch.randn(1, e)
            ms = best_of(lambda: decode_step(w, prefix, k_cache, v_cache, x, float(n)))
    print(f"{ms:.3f}")


if __name__ == "__main__":
    main()
