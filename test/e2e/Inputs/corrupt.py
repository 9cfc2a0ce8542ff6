#!/usr/bin/python3
"""Damages a copy of a bundle or a safetensors file in one named way, for the
error tests: corrupt.py KIND SRC DST.

Bundle damage either leaves the manifest's record of each file's size and
SHA-256 as it was (a damaged copy, which the runtime must refuse before
reading the file) or rewrites it to match (`rehash`: an edit made on
purpose, which later checks must catch)."""
import hashlib
import json
import math
import os
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


def edit_manifest(path, change):
    m = json.load(open(path))
    change(m)
    json.dump(m, open(path, "w"))


def rehash(bundle):
    """Records each listed file's current size and SHA-256 in the manifest."""
    def update(m):
        for rel, entry in m["files"].items():
            data = open(f"{bundle}/{rel}", "rb").read()
            entry["bytes"] = len(data)
            entry["sha256"] = hashlib.sha256(data).hexdigest()
    edit_manifest(f"{bundle}/manifest.json", update)


def entry_args(m, name):
    """The arguments named `name` in every entry point (and results)."""
    for e in m["entry_points"]:
        for slot in e["arguments"] + e["results"]:
            if slot["name"] == name:
                yield slot


kind, src, dst = sys.argv[1:4]
if kind.startswith("bundle-"):
    shutil.copytree(src, dst)
    manifest = f"{dst}/manifest.json"
    weights = f"{dst}/weights.safetensors"
    library = f"{dst}/host.so"
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
        rehash(dst)
    elif kind == "bundle-wrong-shape":
        header, payload = read_st(weights)
        entry = header["model.layers.0.self_attn.k_proj.bias"]
        entry["shape"] = [64, 2]
        write_st(weights, header, payload)
        rehash(dst)
    elif kind == "bundle-truncated-weights":
        data = open(weights, "rb").read()
        open(weights, "wb").write(data[:100])
        rehash(dst)
    elif kind == "bundle-overlapping-weights":
        header, payload = read_st(weights)
        q = header["model.layers.0.self_attn.q_proj.bias"]
        k = header["model.layers.0.self_attn.k_proj.bias"]
        k["data_offsets"] = [q["data_offsets"][0],
                             q["data_offsets"][0] + k["data_offsets"][1] - k["data_offsets"][0]]
        write_st(weights, header, payload)
        rehash(dst)
    elif kind == "bundle-changed-weights":
        data = bytearray(open(weights, "rb").read())
        data[-1] ^= 1
        open(weights, "wb").write(bytes(data))
    elif kind == "bundle-truncated-library":
        data = open(library, "rb").read()
        open(library, "wb").write(data[:len(data) // 2])
    elif kind == "bundle-fifo-weights":
        os.remove(weights)
        os.mkfifo(weights)
    elif kind == "bundle-no-files":
        edit_manifest(manifest, lambda m: m.pop("files"))
    elif kind == "bundle-unlisted-weights":
        edit_manifest(manifest, lambda m: m["files"].pop("weights.safetensors"))
    elif kind == "bundle-escaping-file":
        def escape(m):
            m["files"]["../w.safetensors"] = m["files"]["weights.safetensors"]
        edit_manifest(manifest, escape)
    elif kind == "bundle-bad-sha":
        def bad_sha(m):
            m["files"]["host.so"]["sha256"] = "ABC"
        edit_manifest(manifest, bad_sha)
    # Self-consistent manifest edits: every file matches its record, so
    # only host.so's own record of its ABI can tell.
    elif kind == "bundle-swapped-entries":
        def swap(m):
            p, d = m["entry_points"]
            p["symbol"], d["symbol"] = d["symbol"], p["symbol"]
        edit_manifest(manifest, swap)
    elif kind == "bundle-dropped-param":
        def drop(m):
            for e in m["entry_points"]:
                e["arguments"] = [a for a in e["arguments"] if a["name"] !=
                                  "model.layers.0.self_attn.q_proj.weight"]
        edit_manifest(manifest, drop)
    elif kind == "bundle-positions-i64":
        def widen(m):
            for slot in entry_args(m, "positions"):
                slot["dtype"] = "i64"
        edit_manifest(manifest, widen)
    elif kind == "bundle-caches-bf16":
        def narrow(m):
            for name in ("k_cache", "v_cache"):
                for slot in entry_args(m, name):
                    slot["dtype"] = "bf16"
            m["kv_cache"]["dtype"] = "bf16"
        edit_manifest(manifest, narrow)
    elif kind == "bundle-no-abi":
        # host.so as a compiler before format 2 made it: no ABI symbol.
        data = open(library, "rb").read()
        assert b"rotor_bundle_abi\0" in data
        open(library, "wb").write(data.replace(b"rotor_bundle_abi\0",
                                                b"rotor_bundle_xyz\0"))
        rehash(dst)
    # Layer descriptions whose numbers would overflow the fp64 reference.
    elif kind == "bundle-layer-scale":
        edit_manifest(manifest, lambda m: m["layer"].update(scale=0.12))
    elif kind == "bundle-layer-huge-heads":
        edit_manifest(manifest, lambda m: m["layer"].update(
            q_heads=2**62, kv_heads=2))
    elif kind == "bundle-layer-tiny-theta":
        edit_manifest(manifest, lambda m: m["layer"]["rope"].update(
            theta=4.9e-324))
    elif kind == "bundle-layer-huge-positions":
        edit_manifest(manifest, lambda m: m["layer"]["rope"].update(scaling={
            "kind": "yarn", "factor": 4.0,
            "original_max_position_embeddings": 1e300}))
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
    elif kind == "bundle-kv-block-bytes":
        m = json.load(open(manifest))
        m["kv_cache"]["block"]["bytes"] = 48
        json.dump(m, open(manifest, "w"))
    elif kind == "bundle-kv-head-dim":
        m = json.load(open(manifest))
        m["kv_cache"]["head_dim"] = 64
        json.dump(m, open(manifest, "w"))
    elif kind == "bundle-kv-rotation-signs":
        m = json.load(open(manifest))
        m["layer"]["kv_rotation"]["s1"][0] = 2
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
elif kind == "inputs-nan":
    header, payload = read_st(src)
    begin, end = header["hidden_states"]["data_offsets"]
    assert header["hidden_states"]["dtype"] == "F32"
    p = bytearray(payload)
    p[begin:end] = struct.pack("<f", math.nan) * ((end - begin) // 4)
    write_st(dst, header, bytes(p))
elif kind == "inputs-overlap":
    header, payload = read_st(src)
    begin = header["hidden_states"]["data_offsets"][0]
    p = header["positions"]
    p["data_offsets"] = [begin, begin + p["data_offsets"][1] - p["data_offsets"][0]]
    write_st(dst, header, payload)
elif kind == "inputs-shuffled-positions":
    header, payload = read_st(src)
    begin, end = header["positions"]["data_offsets"]
    p = bytearray(payload)
    p[begin:begin + 4], p[begin + 4:begin + 8] = p[begin + 4:begin + 8], p[begin:begin + 4]
    write_st(dst, header, bytes(p))
else:
    sys.exit(f"unknown kind {kind}")
