#!/usr/bin/python3
"""kv_accuracy.py BIN WORK: accuracy of every KV-cache format on three
imported checkpoints (qwen2 with Qwen2.5-sized K biases, llama with outlier
K/V channels, qwen3 with q/k norms), as the fp64 reference of rotor-run
measures it (the layer with an exact cache): prints one row per checkpoint
and format, and fails when a format is less accurate than a coarser one of
the same family, or when turbo3's rotation does not help where K/V have
outlier channels."""
import os
import re
import subprocess
import sys

bin_dir, work = sys.argv[1], sys.argv[2]
scripts = os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts")
py = sys.executable
os.makedirs(work, exist_ok=True)


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


ckpts = {
    "qwen2 (K bias 171)": ["--family", "qwen2", "--k-bias-std", "20", "--k-bias-absmax", "171"],
    "llama (outlier K/V channels)": ["--family", "llama", "--kv-outlier-channels", "4",
                                     "--kv-outlier-scale", "10"],
    "qwen3 (q/k norm)": ["--family", "qwen3"],
}
formats = ["f32", "bf16", "f16", "q8_0", "q4_0", "turbo4", "turbo3", "turbo3 unrotated"]
inputs = os.path.join(work, "in.safetensors")
run(py, os.path.join(scripts, "make_layer_inputs.py"), "--inputs", inputs, "--hidden", "256",
    "--tokens", "16", "--seed", "3")
failures = []
print("| checkpoint | format | bytes/token | PCC | max rel. err |")
print("| --- | --- | --- | --- | --- |")
for name, flags in ckpts.items():
    ckpt = os.path.join(work, re.sub(r"\W+", "_", name))
    run(py, os.path.join(scripts, "make_hf_checkpoint.py"), ckpt, "--heads", "8", "--kv-heads", "2",
        "--head-dim", "128", "--hidden", "256", "--num-layers", "1", "--seed", "5", *flags)
    err = {}
    for f in formats:
        fmt, extra = f.split()[0], (["--no-kv-rotation"] if "unrotated" in f else [])
        layer, bundle = os.path.join(work, "layer.mlir"), os.path.join(work, "layer.rotor")
        run(f"{bin_dir}/rotor-import", ckpt, "-o", layer, "--kv-cache", fmt, "--kv-capacity", "32",
            "--quiet", *extra)
        subprocess.run([f"{bin_dir}/rotor-aot", "--quiet", layer, "-o", bundle], check=True,
                       capture_output=True)
        out = run(f"{bin_dir}/rotor-run", bundle, "--inputs", inputs, "--outputs",
                  os.path.join(work, "out.safetensors"), "--decode", "6", "--reference",
                  "--tolerance", "100")
        bytes_ = re.search(r"KV cache: (\d+) bytes", out).group(1)
        pcc, rel = re.search(r"reference PCC ([-0-9.]+), max relative error ([0-9.e+-]+)", out).groups()
        err[f] = float(rel)
        print(f"| {name} | {f} | {bytes_} | {float(pcc):.6f} | {float(rel):.3e} |")
    for fine, coarse in (("f32", "f16"), ("f16", "bf16"), ("q8_0", "q4_0"), ("turbo4", "turbo3")):
        if not err[fine] <= err[coarse] * 1.05:
            failures.append(f"{name}: {fine} ({err[fine]:.3e}) less accurate than {coarse} ({err[coarse]:.3e})")
    if "outlier" in name and not err["turbo3"] < 0.5 * err["turbo3 unrotated"]:
        failures.append(f"{name}: the rotation does not help turbo3 ({err['turbo3']:.3e} rotated vs "
                        f"{err['turbo3 unrotated']:.3e})")
for f in failures:
    print("kv_accuracy: FAIL:", f)
print("kv_accuracy:", "ok" if not failures else f"{len(failures)} failures")
sys.exit(1 if failures else 0)
