#!/usr/bin/env python3
"""PyTorch baselines for bench/gpu/run.sh at Qwen2.5-7B attention shapes
(28 query heads, 4 KV heads, head dim 128), float32 like the Rotor bundle:
  torch_sdpa.py prefill T   ms of causal SDPA over T tokens
  torch_sdpa.py decode L    ms of one query against L cached keys
  torch_sdpa.py copy 0      GB/s of a device-to-device copy (bytes read+written)
"""
import sys

import torch
import torch.nn.functional as F


def timed(fn, iters=20):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    dev, hq, hkv, d = "cuda", 28, 4, 128
    if mode == "copy":
        src = torch.empty(1 << 28, dtype=torch.float32, device=dev)
        dst = torch.empty_like(src)
        ms = timed(lambda: dst.copy_(src))
        print(f"{2 * src.numel() * 4 / ms / 1e6:.0f}")
        return
    tq, tk = (n, n) if mode == "prefill" else (1, n)
    q = torch.randn(1, hq, tq, d, device=dev)
    k = torch.randn(1, hkv, tk, d, device=dev).repeat_interleave(hq // hkv, 1)
    v = torch.randn(1, hkv, tk, d, device=dev).repeat_interleave(hq // hkv, 1)
    causal = mode == "prefill"
    ms = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
    print(f"{ms:.4f}")


if __name__ == "__main__":
    main()
