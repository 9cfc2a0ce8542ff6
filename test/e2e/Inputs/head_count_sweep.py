"""Head-count sweep (issue 11): every (Hq, Hkv) from {1, 2, 3, 7} with
Hq % Hkv == 0, with and without Q/K/V biases, through every host lowering
option (loop-level with and without the RoPE epilogue fusion, workgroup
kernels, and the GPU pipeline's mapped kernels emulated on the host),
prefill plus decode steps against the fp64 reference. One KV head
with a K bias (MQA) once accumulated into the bias weight itself.

usage: head_count_sweep.py WORK_DIR ROTOR_IMPORT ROTOR_AOT ROTOR_RUN
"""
import itertools
import os
import subprocess
import sys

work = sys.argv[1]
rotor_import, rotor_aot, rotor_run = sys.argv[2:5]
here = os.path.dirname(os.path.abspath(__file__))
scripts = os.path.join(here, "..", "..", "..", "scripts")
python = "/usr/bin/python3"


def run(*argv):
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"FAILED ({result.returncode}): {' '.join(argv)}\n"
                 f"{result.stdout}{result.stderr}")
    return result.stdout


inputs = os.path.join(work, "in.safetensors")
run(python, os.path.join(scripts, "make_layer_inputs.py"), "--inputs", inputs,
    "--hidden", "64", "--tokens", "7", "--seed", "11")
lowerings = {"default": [], "fused-rope": ["--fuse-rope-epilogue"],
             "workgroup-linear": ["--workgroup-tiled-linear"],
             "workgroup-all": ["--workgroup-tiled-linear",
                               "--workgroup-tiled-sdpa", "--split-kv-decode"],
             # The GPU pipeline's mapped kernels, run as OpenMP thread teams.
             "gpu-emulation": ["--target=gpu-emulation"]}
checked = 0
for hq, hkv in itertools.product([1, 2, 3, 7], repeat=2):
    if hq % hkv:
        continue
    for family in ["qwen2", "llama"]:  # with and without biases
        name = f"{family}-{hq}-{hkv}"
        ckpt = os.path.join(work, name)
        run(python, os.path.join(scripts, "make_hf_checkpoint.py"), ckpt,
            "--family", family, "--heads", str(hq), "--kv-heads", str(hkv),
            "--head-dim", "16", "--hidden", "64", "--num-layers", "1",
            "--seed", str(hq * 10 + hkv))
        layer = os.path.join(work, name + ".mlir")
        run(rotor_import, ckpt, "-o", layer, "--kv-capacity", "16")
        for label, flags in lowerings.items():
            bundle = os.path.join(work, f"{name}-{label}.rotor")
            run(rotor_aot, "--quiet", layer, "-o", bundle, *flags)
            out = run(rotor_run, bundle, "--inputs", inputs, "--outputs",
                      os.path.join(work, "out.safetensors"), "--decode", "4",
                      "--tolerance", "1e-4")
            print(f"{name} {label}: {out.splitlines()[-1]}")
            checked += 1
print(f"checked {checked} configurations")
