"""Edits a bundle's recorded host CPU, to simulate a bundle built for a CPU
this one is not: `missing` adds an extension this CPU lacks (from
/proc/cpuinfo), `unknown` one no runtime knows, `drop` removes the record.
Prints the extension it added."""
import json
import sys

bundle, how = sys.argv[1], sys.argv[2]
path = bundle + "/manifest.json"
with open(path) as f:
    manifest = json.load(f)
if how == "drop":
    del manifest["host_cpu"]
    added = "-"
elif how == "unknown":
    added = "avx9000"
    manifest["host_cpu"]["features"].append(added)
else:
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
    # rotor-aot's name, /proc/cpuinfo's name.
    candidates = [("avx512fp16", "avx512_fp16"), ("avx512bf16", "avx512_bf16"),
                  ("avx512f", "avx512f"), ("avxvnni", "avx_vnni"),
                  ("avx2", "avx2")]
    added = next(name for name, flag in candidates if flag not in flags)
    manifest["host_cpu"]["features"].append(added)
with open(path, "w") as f:
    json.dump(manifest, f, indent=2)
print(added)
