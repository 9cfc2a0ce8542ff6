#!/usr/bin/env python3
"""Fixed-seed IR mutation fuzzer: mutates the lit inputs (one split chunk at
a time) and runs each mutant through rotor-opt's verifier and the host, GPU
and GPU-emulation pipelines. A run fails on any crash (a signal), hang
(timeout), or an `error:` printed with exit status 0.

usage: fuzz_ir.py ROTOR_OPT SOURCE_ROOT [--seed S] [--mutants N]
       [--timeout SECONDS] [--keep DIR]
"""
import argparse
import glob
import os
import random
import re
import subprocess
import sys

PIPELINES = [
    [],
    ["--rotor-host-pipeline"],
    ["--rotor-gpu-pipeline=format=isa"],
    ["--rotor-gpu-emulation-pipeline"],
]
NUMBERS = ["0", "-1", "1", "2", "3", "7", "63", "65", "4096", "2147483648",
           "9223372036854775807", "-9223372036854775808", "1.0e+308",
           "4.9e-324", "nan", "0x7FC00000"]
TYPES = ["f32", "bf16", "f16", "f64", "i8", "i32", "i64", "index"]


def chunks(root):
    files = sorted(glob.glob(os.path.join(root, "test", "**", "*.mlir"),
                             recursive=True))
    files.append(os.path.join(root, "examples", "qwen2.5-0.5b-attention.mlir"))
    out = []
    for path in files:
        text = open(path).read()
        for part in text.split("// -----"):
            lines = [l for l in part.splitlines()
                     if "expected-" not in l and not l.lstrip().startswith("// RUN")]
            if any("func.func" in l for l in lines):
                out.append((os.path.relpath(path, root), "\n".join(lines)))
    return out


def mutate(text, rng):
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(5)
        numbers = [m for m in re.finditer(r"(?<![%#@\w.])-?\d+(\.\d+)?(e[+-]?\d+)?", text)]
        if kind == 0 and numbers:
            m = rng.choice(numbers)
            text = text[:m.start()] + rng.choice(NUMBERS) + text[m.end():]
        elif kind == 1:
            found = [m for m in re.finditer(r"\b(f32|bf16|f16|i32|i64|i8)\b", text)]
            if found:
                m = rng.choice(found)
                text = text[:m.start()] + rng.choice(TYPES) + text[m.end():]
        elif kind == 2:
            found = [m for m in re.finditer(r"\b\d+x", text)]
            if found:
                m = rng.choice(found)
                text = text[:m.start()] + rng.choice(["?x", "0x", "1x", "3x"]) + text[m.end():]
        elif kind == 3:
            lines = text.splitlines()
            if len(lines) > 2:
                del lines[rng.randrange(len(lines))]
            text = "\n".join(lines)
        else:
            lines = text.splitlines()
            if len(lines) > 2:
                i = rng.randrange(len(lines))
                lines.insert(rng.randrange(len(lines)), lines[i])
            text = "\n".join(lines)
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rotor_opt")
    ap.add_argument("root")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mutants", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--keep", default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    sources = chunks(args.root)
    failures = []
    runs = 0
    for n in range(args.mutants):
        origin, text = rng.choice(sources)
        mutant = mutate(text, rng)
        pipeline = rng.choice(PIPELINES)
        runs += 1
        try:
            r = subprocess.run([args.rotor_opt, "-", "-o", os.devnull] + pipeline,
                               input=mutant, capture_output=True, text=True,
                               timeout=args.timeout)
            rc, err = r.returncode, r.stderr
            if rc < 0 or rc >= 128 or "LLVM ERROR" in err or "Stack dump" in err:
                problem = f"crash (status {rc})"
            elif rc == 0 and "error:" in err:
                problem = "error with exit 0"
            else:
                problem = None
        except subprocess.TimeoutExpired:
            problem = f"hang (> {args.timeout} s)"
        if problem:
            failures.append((n, origin, " ".join(pipeline) or "(verify)", problem))
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                open(os.path.join(args.keep, f"mutant-{n}.mlir"), "w").write(mutant)
    for n, origin, pipeline, problem in failures:
        print(f"mutant {n} of {origin} through {pipeline}: {problem}")
    print(f"fuzz_ir: {runs} mutants, {len(failures)} failures (seed {args.seed})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
