#!/usr/bin/python3
"""make_fuzz_seeds.py CKPT_DIR CORPUS_DIR: seeds for rotor-checkpoint-fuzzer.
A seed's first byte modulo 3 picks the reader: 0 a safetensors archive, 1
config.json, 2 a shard index. The archive seed is a small one (big shards would only
be cut to -max_len)."""
import json
import os
import struct
import sys

ckpt, corpus = sys.argv[1], sys.argv[2]
config = open(os.path.join(ckpt, "config.json"), "rb").read()
open(os.path.join(corpus, "config"), "wb").write(b"\x01" + config)

header = {"__metadata__": {"format": "pt"},
          "a": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},
          "b": {"dtype": "F32", "shape": [4], "data_offsets": [12, 28]},
          "c": {"dtype": "I64", "shape": [], "data_offsets": [28, 36]}}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
archive = struct.pack("<Q", len(text)) + text + bytes(range(36))
open(os.path.join(corpus, "archive"), "wb").write(b"\x00" + archive)

index = open(os.path.join(ckpt, "model.safetensors.index.json"), "rb").read()
open(os.path.join(corpus, "index"), "wb").write(b"\x02" + index)
