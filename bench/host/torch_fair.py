#!/usr/bin/python3
"""A fair (strong) PyTorch eager CPU baseline for one Qwen2-style attention
sublayer in float32: q/k/v projections with bias, half-split RoPE
(rotate_half, theta 1e6), causal softmax attention with GQA, o_proj without
bias. The timing baseline the host benchmarks compare against, so it is
written to be fast, not to mirror transformers' code:

  * q/k/v fused into one GEMM (weights concatenated once at setup), with the
    1/sqrt(head_dim) softmax scale folded into the q weights and bias (RoPE is
    linear, so this is exact up to rounding);
  * RoPE from precomputed cos/sin tables with out=/addcmul_ into the layout
    the attention GEMMs want (no rotate_half/cat temporaries);
  * GQA without repeat_kv: the `group` query heads of a KV head are stacked
    as rows of one matrix [tokens*group, d] per KV head, so one bmm per
    kernel covers all heads and K/V are read once per KV head;
  * prefill: causal attention in query blocks (--block rows of tokens), each
    multiplying only against keys [0, end of block) and masking only the
    diagonal key block; scores live in a preallocated scratch buffer (stays
    in cache, no page faults), softmax is in place;
  * decode: preallocated K/V cache [kv_heads, N+steps, d] written in place
    (no torch.cat), GEMVs through BLAS sgemv, attention over positions
    0..pos, in-place softmax.

torch_fair.py --shape example|qwen7b --mode prefill|decode --n N --threads K
              [--runs R] [--weights W.safetensors] [--steps S] [--block B]
              [--check]

Prints one number to stdout: milliseconds per prefill of N tokens, or per
decode step at KV length N (each timed run is S steps at positions N..N+S-1,
the time divided by S), best of R runs after one warm-up run, "%.3f".
Which BLAS torch calls goes to stderr. --check instead compares prefill and
decode against a straightforward float64 implementation (repeat_kv style)
and exits 1 past a max relative error (max |diff| / max |ref|) of 1e-4.
"""
import argparse
import math
import os
import sys
import time

SHAPES = {  # hidden, query heads, KV heads, head dim
    "example": (896, 14, 2, 64),
    "qwen7b": (3584, 28, 4, 128),
}
THETA = 1e6
PREFIX = "model.layers.0.self_attn."


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="example")
    p.add_argument("--mode", choices=["prefill", "decode"], default="prefill")
    p.add_argument("--n", type=int, default=512,
                   help="prefill: tokens; decode: KV length before the step")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--steps", type=int, default=4,
                   help="decode steps per timed run (default 4)")
    p.add_argument("--block", type=int, default=None,
                   help="prefill query block in tokens (default 64)")
    p.add_argument("--weights", help="safetensors file with " + PREFIX +
                   "{q,k,v,o}_proj.{weight,bias}; default random (std 0.02)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--proj-dtype", choices=["f32", "bf16"], default="f32",
                   help="bf16: prefill projections with bf16 weights, "
                   "inputs and bias (torch's bf16 GEMM: oneDNN where it has "
                   "AVX512-BF16; its results rounded to bf16, then widened "
                   "to f32); attention stays f32. Timing only, not with "
                   "--check")
    p.add_argument("--check", action="store_true",
                   help="check against a float64 reference and exit")
    return p.parse_args()


ARGS = parse_args()
# Thread counts must be in the environment before torch/numpy load their
# BLAS and OpenMP runtimes.
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ["MKL_NUM_THREADS"] = str(ARGS.threads)
# torch's OpenMP threads and OpenBLAS's pthreads are two pools on the same
# cores: with GOMP's default spin-waiting they starve each other (measured
# 10x slower at 2 threads on 2 cores). Let idle OpenMP threads sleep.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(ARGS.threads)


def report_blas():
    lines = [l.strip() for l in torch.__config__.show().splitlines() if "BLAS" in l]
    for l in lines:
        for part in l.split(","):
            if "BLAS" in part or "LAPACK" in part:
                print("torch_fair: torch config:", part.strip(), file=sys.stderr)
    link = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
    if os.path.exists(link):
        print("torch_fair: libblas.so.3 ->", os.path.realpath(link), file=sys.stderr)
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))  # make sure BLAS is loaded
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({l.split()[-1] for l in f
                           if "blas" in l.lower() and l.split()[-1].startswith("/")})
        for l in libs:
            print("torch_fair: loaded:", l, file=sys.stderr)
    except OSError:
        pass
    print(f"torch_fair: torch {torch.__version__}, {torch.get_num_threads()} thread(s)",
          file=sys.stderr)


def load_weights(path, shape, seed, std=0.02, bias_std=0.02):
    hidden, nq, nkv, d = shape
    if path:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "..", "..", "scripts"))
        from hf_attention import read_safetensors
        w = read_safetensors(path)
        t = lambda n: torch.from_numpy(np.array(w[PREFIX + n], dtype=np.float32))
        out = {n: t(n) for n in ("q_proj.weight", "q_proj.bias", "k_proj.weight",
                                 "k_proj.bias", "v_proj.weight", "v_proj.bias",
                                 "o_proj.weight")}
        if PREFIX + "o_proj.bias" in w:
            raise SystemExit("torch_fair: o_proj has a bias; Qwen2's has none")
    else:
        g = torch.Generator().manual_seed(seed)
        r = lambda *s, sd=std: torch.randn(*s, generator=g) * sd
        out = {"q_proj.weight": r(nq * d, hidden), "q_proj.bias": r(nq * d, sd=bias_std),
               "k_proj.weight": r(nkv * d, hidden), "k_proj.bias": r(nkv * d, sd=bias_std),
               "v_proj.weight": r(nkv * d, hidden), "v_proj.bias": r(nkv * d, sd=bias_std),
               "o_proj.weight": r(hidden, nq * d)}
    assert out["q_proj.weight"].shape == (nq * d, hidden), "weights do not match --shape"
    assert out["k_proj.weight"].shape == (nkv * d, hidden), "weights do not match --shape"
    assert out["o_proj.weight"].shape == (hidden, nq * d), "weights do not match --shape"
    return out


def rope_tables(positions, d, dtype=torch.float32):
    """cos/sin [P, d/2] of the half-split rotary embedding (rotate_half)."""
    inv_freq = 1.0 / (THETA ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    ang = torch.as_tensor(positions, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return ang.cos().to(dtype), ang.sin().to(dtype)


class FairAttention:
    """Setup (weight fusion, tables, scratch buffers) is done once; forward
    calls do only the per-token work."""

    def __init__(self, w, shape, max_pos, block=None):
        hidden, nq, nkv, d = shape
        self.hidden, self.nq, self.nkv, self.d = hidden, nq, nkv, d
        self.group = nq // nkv
        self.h = d // 2
        scale = 1.0 / math.sqrt(d)
        # Fused QKV [out, hidden] (row-major: sgemm/sgemv with transposed op).
        self.w_qkv = torch.cat([w["q_proj.weight"] * scale, w["k_proj.weight"],
                                w["v_proj.weight"]]).contiguous()
        self.b_qkv = torch.cat([w["q_proj.bias"] * scale, w["k_proj.bias"],
                                w["v_proj.bias"]]).contiguous()
        self.w_o = w["o_proj.weight"].contiguous()
        # Pre-transposed copies for the prefill GEMMs ([in, out] row-major
        # measured ~10% faster than the transposed view in OpenBLAS here).
        self.w_qkv_t = self.w_qkv.t().contiguous()
        self.w_o_t = self.w_o.t().contiguous()
        # --proj-dtype bf16: the prefill GEMMs take bf16 weights, converted
        # once here, and the activations rounded per call.
        self.proj_dtype = torch.bfloat16 if ARGS.proj_dtype == "bf16" else None
        if self.proj_dtype:
            self.w_qkv_t = self.w_qkv_t.to(self.proj_dtype)
            self.w_o_t = self.w_o_t.to(self.proj_dtype)
            self.b_qkv_p = self.b_qkv.to(self.proj_dtype)
        self.cos, self.sin = rope_tables(np.arange(max_pos), d)
        self.block = block or 64
        self._prefill_n = None

    # ---------------- prefill ----------------
    def _prefill_setup(self, n):
        nkv, group, d, B = self.nkv, self.group, self.d, self.block
        self.qr = torch.empty(nkv, n, group, d)  # rope'd q: rows (token, head)
        self.kr = torch.empty(nkv, d, n)  # rope'd k, transposed: K^T per KV head
        self.ao = torch.empty(n, nkv, group, d)  # attention output = [n, nq*d]
        rows = min(B, n) * group
        self.scores = torch.empty(nkv * rows * n)
        self.pv = torch.empty(nkv * rows * d)
        # The projections' outputs too, as Rotor's runtime reuses its
        # output (fresh tensors of this size fault in their pages each run).
        self.qkv = torch.empty(n, (self.nq + 2 * nkv) * d)
        self.vt = torch.empty(nkv, n, d)
        self.out = torch.empty(n, self.w_o_t.shape[1])
        # Diagonal-block causal mask: row (token r, head j) x key c, masked
        # where c > r. Precomputed for the full block and the tail block.
        self.masks = {}
        for b in {min(B, n), n % B if n % B else min(B, n)}:
            r = torch.arange(b)[:, None, None]
            c = torch.arange(b)[None, None, :]
            self.masks[b] = (c > r).expand(b, group, b).reshape(b * group, b)
        self._prefill_n = n

    def prefill(self, x):
        n = x.shape[0]
        if self._prefill_n != n:
            self._prefill_setup(n)
        nq, nkv, group, d, h, B = self.nq, self.nkv, self.group, self.d, self.h, self.block
        if self.proj_dtype:
            qkv = torch.addmm(self.b_qkv_p, x.to(self.proj_dtype),
                              self.w_qkv_t).float()
        else:
            qkv = torch.addmm(self.b_qkv, x, self.w_qkv_t,
                              out=self.qkv)  # [n, (nq+2nkv)*d]
        cos3, sin3 = self.cos[:n, None, :], self.sin[:n, None, :]
        cos4, sin4 = cos3[:, None], sin3[:, None]
        # q [n, nkv, group, d] -> qr [nkv, n, group, d]; k [n, nkv, d] -> kr [nkv, d, n]
        q = qkv[:, :nq * d].view(n, nkv, group, d)
        k = qkv[:, nq * d:(nq + nkv) * d].view(n, nkv, d)
        for src, dst, cos, sin in ((q, self.qr.permute(1, 0, 2, 3), cos4, sin4),
                                   (k, self.kr.permute(2, 0, 1), cos3, sin3)):
            x1, x2 = src[..., :h], src[..., h:]
            torch.mul(x1, cos, out=dst[..., :h])
            dst[..., :h].addcmul_(x2, sin, value=-1.0)
            torch.mul(x2, cos, out=dst[..., h:])
            dst[..., h:].addcmul_(x1, sin)
        # v [nkv, n, d]: one small copy (n*nkv*d) so each block's GEMM reads dense rows
        v = self.vt
        v.copy_(qkv[:, (nq + nkv) * d:].view(n, nkv, d).transpose(0, 1))
        qr, kr = self.qr, self.kr
        ao = self.ao
        for i0 in range(0, n, B):
            i1 = min(i0 + B, n)
            b = i1 - i0
            rows = b * group
            qb = qr[:, i0:i1].view(nkv, rows, d)
            s = self.scores[:nkv * rows * i1].view(nkv, rows, i1)
            torch.bmm(qb, kr[:, :, :i1], out=s)
            s[:, :, i0:i1].masked_fill_(self.masks[b], float("-inf"))
            torch._softmax(s, -1, False, out=s)
            o = self.pv[:nkv * rows * d].view(nkv, rows, d)
            torch.bmm(s, v[:, :i1], out=o)
            ao[i0:i1].copy_(o.view(nkv, b, group, d).transpose(0, 1))
        if self.proj_dtype:
            return torch.mm(ao.view(n, nq * d).to(self.proj_dtype),
                            self.w_o_t).float()
        return torch.mm(ao.view(n, nq * d), self.w_o_t, out=self.out)

    # ---------------- decode ----------------
    def decode_setup(self, n, steps, seed=1):
        g = torch.Generator().manual_seed(seed)
        cap = n + steps
        self.kc = torch.empty(self.nkv, cap, self.d)
        self.vc = torch.empty(self.nkv, cap, self.d)
        self.kc[:, :n] = torch.randn(self.nkv, n, self.d, generator=g)
        self.vc[:, :n] = torch.randn(self.nkv, n, self.d, generator=g)
        self.rope_buf = torch.empty(self.nq + self.nkv, self.d)
        self.score_buf = torch.empty(self.nkv * self.group * cap)

    def decode(self, x, pos):
        """x [hidden]; writes k/v at pos, attends over 0..pos; returns [hidden]."""
        nq, nkv, group, d, h = self.nq, self.nkv, self.group, self.d, self.h
        qkv = torch.addmv(self.b_qkv, self.w_qkv, x)  # sgemv
        qk = qkv[:(nq + nkv) * d].view(nq + nkv, d)
        r = self.rope_buf
        cos, sin = self.cos[pos], self.sin[pos]
        x1, x2 = qk[:, :h], qk[:, h:]
        torch.mul(x1, cos, out=r[:, :h])
        r[:, :h].addcmul_(x2, sin, value=-1.0)
        torch.mul(x2, cos, out=r[:, h:])
        r[:, h:].addcmul_(x1, sin)
        self.kc[:, pos] = r[nq:]
        self.vc[:, pos] = qkv[(nq + nkv) * d:].view(nkv, d)
        L = pos + 1
        s = self.score_buf[:nkv * group * L].view(nkv, group, L)
        torch.bmm(r[:nq].view(nkv, group, d), self.kc[:, :L].transpose(1, 2), out=s)
        torch._softmax(s, -1, False, out=s)
        o = torch.bmm(s, self.vc[:, :L])  # [nkv, group, d] = [nq*d]
        return torch.mv(self.w_o, o.view(nq * d))


# ---------------- float64 reference (transformers style) ----------------
def reference(w, shape, x, positions):
    hidden, nq, nkv, d = shape
    t = lambda n: w[n].double()
    x = x.double()
    n = x.shape[0]
    q = torch.nn.functional.linear(x, t("q_proj.weight"), t("q_proj.bias"))
    k = torch.nn.functional.linear(x, t("k_proj.weight"), t("k_proj.bias"))
    v = torch.nn.functional.linear(x, t("v_proj.weight"), t("v_proj.bias"))
    q = q.view(n, nq, d).transpose(0, 1)
    k = k.view(n, nkv, d).transpose(0, 1)
    v = v.view(n, nkv, d).transpose(0, 1)
    cos, sin = rope_tables(positions, d, torch.float64)
    cos, sin = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)

    def rotate_half(z):
        return torch.cat((-z[..., d // 2:], z[..., :d // 2]), dim=-1)

    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    rep = lambda z: z[:, None].expand(nkv, nq // nkv, n, d).reshape(nq, n, d)
    kk, vv = rep(k), rep(v)
    s = q @ kk.transpose(1, 2) / math.sqrt(d)
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    s = s.masked_fill(mask, float("-inf"))
    o = torch.softmax(s, -1) @ vv
    out = torch.nn.functional.linear(o.transpose(0, 1).reshape(n, nq * d), t("o_proj.weight"))
    return out, k, v


def rel_err(got, want):
    return ((got.double() - want).abs().max() / want.abs().max()).item()


def check(shape, weights_path, seed):
    hidden, nq, nkv, d = shape
    ok = True
    cases = [("weights std 0.02", load_weights(weights_path, shape, seed))]
    if not weights_path:  # also sharp, Qwen2.5-like attention (large K bias)
        sharp = load_weights(None, shape, seed + 1, std=1 / math.sqrt(hidden), bias_std=1.0)
        sharp["k_proj.bias"] *= 20.0
        cases.append(("weights 1/sqrt(hidden), k bias std 20", sharp))
    g = torch.Generator().manual_seed(seed + 2)
    for name, w in cases:
        for n, block in ((37, 8), (100, None), (64, 64)):
            x = torch.randn(n + 1, hidden, generator=g)
            want, k, v = reference(w, shape, x, np.arange(n + 1))
            m = FairAttention(w, shape, n + 8, block)
            with torch.no_grad():
                got = m.prefill(x[:n].contiguous())
                # prefill of n tokens = the first n rows of the (causal) n+1 run
                e1 = rel_err(got, want[:n])
                m.decode_setup(n, 1)
                m.kc[:, :n] = k[:, :n].float()
                m.vc[:, :n] = v[:, :n].float()
                got_d = m.decode(x[n].contiguous(), n)
                e2 = rel_err(got_d, want[n])
            good = e1 < 1e-4 and e2 < 1e-4
            ok &= good
            print(f"torch_fair --check: {name}, n={n} block={m.block}: prefill max rel "
                  f"err {e1:.2e}, decode {e2:.2e} {'ok' if good else 'FAIL'}", file=sys.stderr)
    return ok


def best_of(fn, runs):
    fn()  # warm-up
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    a = ARGS
    shape = SHAPES[a.shape]
    hidden = shape[0]
    report_blas()
    if a.check and a.proj_dtype != "f32":
        sys.exit("torch_fair: --check compares the f32 baseline; drop "
                 "--proj-dtype")
    if a.check:
        ok = check(shape, a.weights, a.seed)
        print("torch_fair --check:", "passed" if ok else "FAILED", file=sys.stderr)
        sys.exit(0 if ok else 1)
    w = load_weights(a.weights, shape, a.seed)
    g = torch.Generator().manual_seed(a.seed + 3)
    with torch.no_grad():
        if a.mode == "prefill":
            m = FairAttention(w, shape, a.n, a.block)
            x = torch.randn(a.n, hidden, generator=g)
            sec = best_of(lambda: m.prefill(x), a.runs)
        else:
            m = FairAttention(w, shape, a.n + a.steps, a.block)
            m.decode_setup(a.n, a.steps)
            xs = torch.randn(a.steps, hidden, generator=g)

            def run():
                for i in range(a.steps):
                    m.decode(xs[i], a.n + i)
            sec = best_of(run, a.runs) / a.steps
    print(f"{sec * 1e3:.3f}")


if __name__ == "__main__":
    main()
