#!/usr/bin/python3
"""Damages a copy of a bundle or a safetensors file in one named way, for the
error tests: corrupt.py KIND SRC DST."""
import json
import shutil
import struct
import sys


def read_st(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_st(path, header, payload):
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + payload)


kind, src, dst = sys.argv[1:4]
if kind.startswith("bundle-"):
    shutil.copytree(src, dst)
    manifest = f"{dst}/manifest.json"
    weights = f"{dst}/weights.safetensors"
    if kind == "bundle-bad-json":
        open(manifest, "w").write("{ not json")
    elif kind == "bundle-version":
        m = json.load(open(manifest))
        m["format_version"] = 99
        json.dump(m, open(manifest, "w"))
    elif kind == "bundle-missing-weight":
        header, payload = read_st(weights)
        del header["model.layers.0.self_attn.o_proj.weight"]
        write_st(weights, header, payload)
    elif kind == "bundle-wrong-shape":
        header, payload = read_st(weights)
        entry = header["model.layers.0.self_attn.k_proj.bias"]
        entry["shape"] = [64, 2]
        write_st(weights, header, payload)
    elif kind == "bundle-truncated-weights":
        data = open(weights, "rb").read()
        open(weights, "wb").write(data[:100])
    elif kind == "bundle-renamed-cache":
        m = json.load(open(manifest))
        m["entry_points"][1]["arguments"][2]["name"] = "keys"
        json.dump(m, open(manifest, "w"))
    elif kind == "bundle-cache-mismatch":
        m = json.load(open(manifest))
        m["entry_points"][1]["arguments"][3]["shape"] = [8, 2, 64]
        json.dump(m, open(manifest, "w"))
    elif kind == "bundle-target-type":
        m = json.load(open(manifest))
        m["target"] = 1
        json.dump(m, open(manifest, "w"))
    elif kind == "bundle-layer-heads":
        m = json.load(open(manifest))
        m["layer"]["kv_heads"] = 0
        json.dump(m, open(manifest, "w"))
    elif kind == "bundle-huge-cache":
        m = json.load(open(manifest))
        for e in m["entry_points"]:
            e["arguments"][2]["shape"] = [4294967296, 4294967296, 1]
        json.dump(m, open(manifest, "w"))
    elif kind == "bundle-no-library":
        import os
        os.remove(f"{dst}/host.so")
    else:
        sys.exit(f"unknown kind {kind}")
elif kind == "inputs-no-hidden":
    header, payload = read_st(src)
    header = {"hidden": header["hidden_states"], "positions": header["positions"]}
    write_st(dst, header, payload)
elif kind == "inputs-header-past-end":
    data = open(src, "rb").read()
    open(dst, "wb").write(struct.pack("<Q", len(data) * 2) + data[8:])
elif kind == "inputs-shuffled-positions":
    header, payload = read_st(src)
    begin, end = header["positions"]["data_offsets"]
    p = bytearray(payload)
    p[begin:begin + 4], p[begin + 4:begin + 8] = p[begin + 4:begin + 8], p[begin:begin + 4]
    write_st(dst, header, bytes(p))
else:
    sys.exit(f"unknown kind {kind}")
