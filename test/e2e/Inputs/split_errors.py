#!/usr/bin/python3
"""split_errors.py < LINES: reads 'FORMAT split=BOOL' lines each followed by
rotor-run's reference line, and prints per format how much the K-bias split
improved the max relative error; exits 1 below the required factors."""
import re
import sys

required = {"bf16": 10.0, "q8_0": 10.0, "q4_0": 3.0, "turbo4": 4.0, "turbo3": 3.0}
errors, fmt = {}, None
for line in sys.stdin:
    m = re.match(r"(\S+) split=(true|false)", line)
    if m:
        fmt, split = m.group(1), m.group(2) == "true"
        continue
    m = re.search(r"max relative error ([0-9.e+-]+)", line)
    if m and fmt:
        errors[(fmt, split)] = float(m.group(1))
ok = True
for f in ("f32", "bf16", "q8_0", "q4_0", "turbo4", "turbo3"):
    split, unsplit = errors[(f, True)], errors[(f, False)]
    if f == "f32":
        good = split <= 2e-5 and unsplit <= 2e-5
        print(f"f32: split {split:.3e} (<= 2e-05), unsplit {unsplit:.3e} (<= 2e-05)")
    else:
        factor = unsplit / split
        good = factor >= required[f]
        print(f"{f}: split better by {factor:.1f}x (>= {required[f]:g}): "
              f"{unsplit:.3e} -> {split:.3e}")
    ok &= good
sys.exit(0 if ok else 1)
