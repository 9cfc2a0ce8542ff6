#!/usr/bin/env python3
"""Rebuilds a bundle's weights.safetensors on the GPU machine, where the
117 MB file cannot travel: HEADER is the start of the file rotor-aot wrote
(its 8-byte length and JSON header, kept by bench/gpu/prepare.sh), SOURCE
the file scripts/make_layer_inputs.py regenerates there from the same seed.
Each tensor's bytes are copied from SOURCE to the offsets HEADER records,
so the result is byte for byte rotor-aot's file (the runtime checks its
size and SHA-256 against the manifest).
  rebuild_weights.py HEADER SOURCE OUT
"""
import json
import struct
import sys


def read_header(f):
    (length,) = struct.unpack("<Q", f.read(8))
    return length, json.loads(f.read(length))


def main():
    header_path, source_path, out_path = sys.argv[1:4]
    with open(header_path, "rb") as f:
        raw = f.read()
    with open(header_path, "rb") as f:
        length, header = read_header(f)
    with open(source_path, "rb") as src:
        src_length, src_header = read_header(src)
        data = src.read()
    with open(out_path, "wb") as out:
        out.write(raw[:8 + length])
        for name, entry in sorted(((n, e) for n, e in header.items() if n != "__metadata__"),
                                  key=lambda item: item[1]["data_offsets"][0]):
            s = src_header.get(name)
            if s is None or s["dtype"] != entry["dtype"] or s["shape"] != entry["shape"]:
                sys.exit(f"rebuild_weights: {source_path} has no {entry['dtype']} "
                         f"{entry['shape']} tensor '{name}'")
            begin, end = s["data_offsets"]
            if out.tell() != 8 + length + entry["data_offsets"][0]:
                sys.exit(f"rebuild_weights: {header_path}: '{name}' is not contiguous")
            out.write(data[begin:end])


if __name__ == "__main__":
    main()
