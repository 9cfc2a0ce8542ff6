#!/usr/bin/python3
"""edit_config.py DIR KEY=JSON... : sets (or, with KEY=, deletes) top-level
keys of DIR/config.json; KEY may be a.b for a key of an object."""
import json
import sys

path = sys.argv[1] + "/config.json"
config = json.load(open(path))
for item in sys.argv[2:]:
    key, _, value = item.partition("=")
    obj, *rest = key.split(".")
    target, key = (config[obj], rest[0]) if rest else (config, obj)
    if value:
        target[key] = json.loads(value)
    else:
        target.pop(key, None)
json.dump(config, open(path, "w"), indent=2)
