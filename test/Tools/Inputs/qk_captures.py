#!/usr/bin/python3
"""qk_captures.py OUT.safetensors --kind planted|random|silent|nan|nopos|qonly
[--seed S]: capture files in rotor-run's format (layerN.q [N, Hq, D] and
layerN.k [N, Hkv, D], F32, each with .positions [N], I64) for rotor-qk's
tests.

planted: layer 0, 4 query heads over 2 key heads, D 16. Each key head g has
orthonormal axes a_g, b_g; Q rows are (cq + alpha_q t) a + beta_q b + noise,
K rows (ck + alpha_k t) a + beta_k b + noise, the noise in the complement of
{a, b} and exactly uncorrelated with position, so that the analysis must
give back a and b (to rounding) and the slopes alpha_q = 0.3, alpha_k = 0.7.
K sits at positions 0..2m, Q at 0, 2, ..., 2m (other counts, same mean).
Query head 3 is position-free (its Q and K rows carry no position signal).
Writes the planted axes to OUT.axes.npz.
random: random rows with a drift, 2 layers, 6/2 heads, D 8 (--parts N also
writes the same rows cut into N files). nan, nopos, qonly, heads, empty,
posonly: random with one defect (a NaN, a tag without positions, Q without
K, mismatched head counts, a tag without rows, a file of positions only)."""
import argparse
import json
import struct

import numpy as np


def write(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[array.dtype]
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


def uncorrelated_noise(rng, n, d, basis, t, scale):
    """Noise rows in span(basis) with every column centred and orthogonal to
    the centred positions."""
    z = rng.standard_normal((n, basis.shape[1])) * scale
    tc = (t - t.mean())[:, None]
    z -= z.mean(axis=0)
    z -= tc @ (tc.T @ z) / (tc.T @ tc)
    return z @ basis.T


def planted(rng, path):
    d, m = 16, 120
    tk = np.arange(0, 2 * m + 1, dtype=np.float64)
    tq = np.arange(0, 2 * m + 1, 2, dtype=np.float64)
    q = np.zeros((len(tq), 4, d))
    k = np.zeros((len(tk), 2, d))
    axes = {}
    for g in range(2):
        basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
        a, b, rest = basis[:, 0], basis[:, 1], basis[:, 2:]
        axes[f"a{g}"], axes[f"b{g}"] = a, b
        k[:, g] = ((0.5 + 0.7 * tk)[:, None] * a + (-2.0) * b +
                   uncorrelated_noise(rng, len(tk), d, rest, tk, 0.3))
        for h in (2 * g, 2 * g + 1):
            if h == 3:
                # No position signal: rows in every direction, uncorrelated
                # with position (and K for this head shares key head 1, so
                # its Q carries none either; the pooled cloud then has a
                # signal from K only: silence needs both).
                continue
            q[:, h] = ((3.0 + 0.3 * tq)[:, None] * a + 4.0 * b +
                       uncorrelated_noise(rng, len(tq), d, rest, tq, 0.3))
    write(path, {"layer0.q": q.astype(np.float32),
                 "layer0.q.positions": tq.astype(np.int64),
                 "layer0.k": k.astype(np.float32),
                 "layer0.k.positions": tk.astype(np.int64)})
    np.savez(path + ".axes.npz", **axes)


def silent(rng, path):
    d, n = 8, 50
    t = np.arange(n, dtype=np.float64)
    full = np.eye(d)
    q = uncorrelated_noise(rng, n, d, full, t, 1.0)[:, None, :]
    k = uncorrelated_noise(rng, n, d, full, t, 1.0)[:, None, :]
    write(path, {"layer0.q": q.astype(np.float32), "layer0.q.positions": t.astype(np.int64),
                 "layer0.k": k.astype(np.float32), "layer0.k.positions": t.astype(np.int64)})


def random_layers(rng, path, kind):
    """The tensors of `kind` (written by the caller)."""
    tensors = {}
    for layer in range(2):
        nq, nk, d = 90, 130, 8
        tq = np.sort(rng.choice(400, nq, replace=False)).astype(np.int64)
        tk = np.sort(rng.choice(400, nk, replace=False)).astype(np.int64)
        drift = rng.standard_normal(d)
        q = rng.standard_normal((nq, 6, d)) + 0.01 * tq[:, None, None] * drift + 1.5
        k = rng.standard_normal((nk, 2, d)) + 0.02 * tk[:, None, None] * drift
        tensors[f"layer{layer}.q"] = q.astype(np.float32)
        tensors[f"layer{layer}.q.positions"] = tq
        tensors[f"layer{layer}.k"] = k.astype(np.float32)
        tensors[f"layer{layer}.k.positions"] = tk
    if kind == "nan":
        tensors["layer1.k"][7, 1, 3] = np.nan
    if kind == "nopos":
        del tensors["layer1.q.positions"]
    if kind == "qonly":
        del tensors["layer1.k"], tensors["layer1.k.positions"]
    if kind == "heads":
        tensors["layer1.k"] = np.concatenate([tensors["layer1.k"]] * 2, axis=1)[:, :4]
        tensors["layer1.q"] = tensors["layer1.q"][:, :5]
    if kind == "empty":
        tensors["layer1.q"] = tensors["layer1.q"][:0]
        tensors["layer1.q.positions"] = tensors["layer1.q.positions"][:0]
    if kind == "posonly":
        tensors = {"layer0.q.positions": tensors["layer0.q.positions"]}
    return tensors


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--kind", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--parts", type=int, default=1,
                   help="also write OUT.part0..N-1, the rows cut in N consecutive parts")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.kind == "planted":
        planted(rng, args.out)
    elif args.kind == "silent":
        silent(rng, args.out)
    elif args.parts > 1:
        # The same rows cut into consecutive parts, one file each.
        tensors = random_layers(rng, args.out, args.kind)
        for part in range(args.parts):
            piece = {}
            for name, array in tensors.items():
                n = len(array)
                piece[name] = array[n * part // args.parts:n * (part + 1) // args.parts]
            write(f"{args.out}.part{part}", piece)
        write(args.out, tensors)
    else:
        write(args.out, random_layers(rng, args.out, args.kind))


if __name__ == "__main__":
    main()
