#!/usr/bin/python3
"""Checks the inverse-frequency tables that convert-attn-to-linalg bakes into
RoPE kernels (the `dense<...> : tensor<Nxf64>` constants of the lowered IR,
read from stdin, in function order) against transformers'
modeling_rope_utils formulas, re-implemented here with torch in float64.

Usage: rotor-opt ... | hf_rope_inv_freq.py CASE [CASE ...]
where CASE is kind:dim:theta[:key=value,...] in the order of the functions.
"""
import math
import re
import sys

import torch


def default(dim, theta):
    return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))


def linear(dim, theta, factor):
    return default(dim, theta) / factor


def llama3(dim, theta, factor, low_freq_factor, high_freq_factor, original):
    inv_freq = default(dim, theta)
    low_freq_wavelen = original / low_freq_factor
    high_freq_wavelen = original / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (original / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def yarn(dim, theta, factor, original, beta_fast=32, beta_slow=1, truncate=True):
    def find_correction_dim(num_rotations):
        return (dim * math.log(original / (num_rotations * 2 * math.pi))) / (2 * math.log(theta))

    def find_correction_range():
        low = find_correction_dim(beta_fast)
        high = find_correction_dim(beta_slow)
        if truncate:
            low, high = math.floor(low), math.ceil(high)
        return max(low, 0), min(high, dim - 1)

    def linear_ramp_factor(lo, hi, n):
        if lo == hi:
            hi += 0.001
        ramp = (torch.arange(n, dtype=torch.float64) - lo) / (hi - lo)
        return torch.clamp(ramp, 0, 1)

    pos_freqs = theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    extrapolation = 1.0 / pos_freqs
    interpolation = 1.0 / (factor * pos_freqs)
    low, high = find_correction_range()
    extrapolation_factor = 1 - linear_ramp_factor(low, high, dim // 2)
    return interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor


def main():
    text = sys.stdin.read()
    tables = [
        [float(v) for v in m.group(1).split(",")]
        for m in re.finditer(r"dense<\[([^\]]*)\]> : tensor<\d+xf64>", text)
    ]
    cases = sys.argv[1:]
    if len(tables) != len(cases):
        sys.exit(f"hf_rope_inv_freq: {len(tables)} tables for {len(cases)} cases")
    worst = 0.0
    for table, case in zip(tables, cases):
        kind, dim, theta, *rest = case.split(":")
        kwargs = {}
        if rest:
            for kv in rest[0].split(","):
                k, v = kv.split("=")
                kwargs[k] = v == "true" if v in ("true", "false") else float(v)
        fn = {"default": default, "linear": linear, "llama3": llama3, "yarn": yarn}[kind]
        want = fn(int(dim), float(theta), **kwargs)
        got = torch.tensor(table, dtype=torch.float64)
        rel = ((got - want).abs() / want.abs()).max().item()
        worst = max(worst, rel)
        print(f"hf_rope_inv_freq: {kind} dim {dim}: max relative difference {rel:.2e}")
    sys.exit(0 if worst < 1e-12 else 1)


if __name__ == "__main__":
    main()
