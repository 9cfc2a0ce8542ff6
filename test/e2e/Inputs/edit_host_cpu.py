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
    # A recent extension: on a CPU without it (the build machines) the
    # bundle is refused as it is; on one with it, the test masks it with
    # ROTOR_HOST_CPU_DISABLE.
    added = "avx512fp16"
    if added not in manifest["host_cpu"]["features"]:
        manifest["host_cpu"]["features"].append(added)
with open(path, "w") as f:
    json.dump(manifest, f, indent=2)
print(added)
