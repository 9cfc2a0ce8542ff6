#!/usr/bin/python3
"""qk_reference.py ROTATED.csv CAPTURES.safetensors [more...]
[--b-axis eigen|centroid] [--max-samples N] [--planted AXES.npz --axes
AXES.safetensors]: an independent float64 implementation of rotor-qk's
metrics (numpy; the formulas of docs/QK.md), compared with every value of
rotor-qk's CSV: within 1e-9 relative (1e-12 absolute for values near 0;
undefined values NaN on both sides). The key head is computed here
(h // (Hq // Hkv)), rows of several files are concatenated in file order,
and --max-samples keeps rows n*i//N as rotor-qk does. With --planted, also
checks that the recovered axes are the planted ones within 1e-6 and the
slopes 0.3 / 0.7 within 1e-6. Prints one line per check; exits 1 on a
mismatch."""
import argparse
import csv
import json
import struct
import sys

import numpy as np


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
    raw = open(path, "rb").read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64, "F64": np.float64}[info["dtype"]]
        out[name] = np.frombuffer(raw[base + s:base + e], dtype=dt).reshape(info["shape"])
    return out


def corr(x, y):
    x, y = x - x.mean(), y - y.mean()
    vx, vy = (x * x).mean(), (y * y).mean()
    return np.nan if vx <= 0 or vy <= 0 else (x * y).mean() / np.sqrt(vx * vy)


def metrics(q, k, tq, tk, b_axis):
    x = np.vstack([q, k])
    t = np.concatenate([tq, tk])
    xc, tc = x - x.mean(0), t - t.mean()
    c = xc.T @ tc / len(t)
    a = c / np.linalg.norm(c)
    mq, mk = q.mean(0), k.mean(0)
    cov = lambda r: (r - r.mean(0)).T @ (r - r.mean(0)) / len(r)
    delta = mq - mk
    cd = cov(q) + cov(k) + np.outer(delta, delta)
    p = np.eye(len(a)) - np.outer(a, a)
    if b_axis == "eigen":
        w, v = np.linalg.eigh(p @ cd @ p)
        b = v[:, np.argmax(w)]
    else:
        b = p @ delta
    b = b - a * (a @ b)
    b /= np.linalg.norm(b)
    if mq @ b < mk @ b:
        b = -b
    var = lambda v: ((v - v.mean()) ** 2).mean()
    covt = lambda v, s: ((v - v.mean()) * (s - s.mean())).mean()
    qa, ka, qb, kb, xa, xb = q @ a, k @ a, q @ b, k @ b, x @ a, x @ b
    trace = (xc ** 2).sum() / len(t)
    alpha_q, alpha_k = covt(qa, tq) / var(tq), covt(ka, tk) / var(tk)
    basis, _ = np.linalg.qr(np.column_stack([a, b]), mode="complete")
    rs = [abs(corr(x @ basis[:, i], t)) for i in range(2, len(a))]
    residual = max([r for r in rs if not np.isnan(r)], default=0.0)
    return a, b, {
        "position_r": abs(corr(xa, t)), "r_q_a": corr(qa, tq), "r_k_a": corr(ka, tk),
        "alpha_q": alpha_q, "alpha_k": alpha_k,
        "mu_q_a": qa.mean(), "mu_k_a": ka.mean(), "mu_q_b": qb.mean(), "mu_k_b": kb.mean(),
        "bias_strength": qa.mean() * alpha_k,
        "separation_strength": b @ cd @ b / np.trace(cd),
        "var_frac_a": var(xa) / trace, "var_frac_b": var(xb) / trace,
        "plane_var_fraction": (var(xa) + var(xb)) / trace,
        "content_var_b": 0.5 * (var(qb) + var(kb)),
        "residual_pos_r": residual}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("rotated")
    ap.add_argument("captures", nargs="+")
    ap.add_argument("--b-axis", default="eigen")
    ap.add_argument("--max-samples", type=int, default=0)
    ap.add_argument("--planted")
    ap.add_argument("--axes")
    args = ap.parse_args()
    files = [read(f) for f in args.captures]
    caps = {}
    for name in {n for f in files for n in f}:
        caps[name] = np.concatenate([f[name] for f in files if name in f])

    def sampled(v):
        n, take = len(v), args.max_samples
        if take <= 0 or take >= n:
            return v
        return v[[n * i // take for i in range(take)]]
    rows = list(csv.DictReader(open(args.rotated)))
    worst, checked, ok = 0.0, 0, True
    for row in rows:
        layer, h = int(row["layer"]), int(row["q_head"])
        hq, hkv = caps[f"layer{layer}.q"].shape[1], caps[f"layer{layer}.k"].shape[1]
        g = h // (hq // hkv)
        if int(row["k_head"]) != g:
            ok = False
            print(f"MISMATCH layer {layer} head {h}: k_head {row['k_head']}, expected {g}")
        q = sampled(caps[f"layer{layer}.q"])[:, h].astype(np.float64)
        k = sampled(caps[f"layer{layer}.k"])[:, g].astype(np.float64)
        tq = sampled(caps[f"layer{layer}.q.positions"]).astype(np.float64)
        tk = sampled(caps[f"layer{layer}.k.positions"]).astype(np.float64)
        a, b, ref = metrics(q, k, tq, tk, args.b_axis)
        for name, want in ref.items():
            got = float(row[name])
            tol = 1e-9 * max(abs(got), abs(want)) + 1e-12
            checked += 1
            if np.isnan(got) or np.isnan(want):
                good = np.isnan(got) and np.isnan(want)
            elif name == "residual_pos_r":
                good = got <= 1e-12 and want <= 1e-12
            else:
                good = abs(got - want) <= tol
            if not good:
                ok = False
                print(f"MISMATCH layer {layer} head {h} {name}: rotor-qk {got!r} numpy {want!r}")
            elif name != "residual_pos_r" and want != 0 and not np.isnan(want):
                worst = max(worst, abs(got - want) / abs(want))
        if args.planted:
            planted = np.load(args.planted)
            axes = read(args.axes)
            ra, rb = axes[f"layer{layer}.head{h}.a"], axes[f"layer{layer}.head{h}.b"]
            if h != 3:
                ea = np.abs(ra - planted[f"a{g}"]).max()
                eb = np.abs(rb - planted[f"b{g}"]).max()
                slopes = abs(float(row["alpha_q"]) - 0.3) + abs(float(row["alpha_k"]) - 0.7)
                good = ea <= 1e-6 and eb <= 1e-6 and slopes <= 1e-6
                ok &= good
                print(f"{'planted' if good else 'NOT PLANTED'}: head {h}: |a - a*| {ea:.1e}, "
                      f"|b - b*| {eb:.1e}, slopes off by {slopes:.1e}")
    print(f"{'ok' if ok else 'FAILED'}: {checked} values of {len(rows)} heads match numpy "
          f"(largest relative difference {worst:.1e})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
