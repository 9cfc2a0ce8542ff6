#!/usr/bin/python3
"""compare_outputs.py A B: PCC and max relative error of tensor `output` in
two safetensors files; exit 1 past --tolerance."""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts"))
from hf_attention import read_safetensors  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("a")
p.add_argument("b")
p.add_argument("--tolerance", type=float, default=1e-6)
args = p.parse_args()
a = read_safetensors(args.a)["output"].astype(np.float64)
b = read_safetensors(args.b)["output"].astype(np.float64)
pcc = np.corrcoef(a.ravel(), b.ravel())[0, 1]
rel = np.abs(a - b).max() / np.abs(b).max()
print(f"compare: PCC {pcc:.9f}, max relative error {rel:.3e}")
sys.exit(0 if rel <= args.tolerance else 1)
