#!/usr/bin/python3
"""add_tensor.py FILE NAME DTYPE SHAPE NBYTES: rewrites the safetensors FILE
with one more tensor NAME of the given dtype string and shape (e.g. 4,8),
whose data are NBYTES zero bytes (the dtype need not be one readers know)."""
import json
import struct
import sys

path, name, dtype, shape, nbytes = sys.argv[1:6]
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
payload = data[8 + n:]
header[name] = {"dtype": dtype, "shape": [int(x) for x in shape.split(",")],
                "data_offsets": [len(payload), len(payload) + int(nbytes)]}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(path, "wb").write(struct.pack("<Q", len(text)) + text + payload + bytes(int(nbytes)))
