"""Prints, as JSON, every member of an operation's output in the DataSync service model that
botocore ships (installed with moto), recursively: {"Operation": ["member.member", ...]}, each
name as DataSync spells it. Read by tests/gateway/conformance.rs."""
import gzip
import json
import os
import sys

import botocore

root = os.path.join(os.path.dirname(botocore.__file__), "data", "datasync")
version = sorted(os.listdir(root))[-1]
path = os.path.join(root, version, "service-2.json")
opened = gzip.open(path + ".gz") if os.path.exists(path + ".gz") else open(path)
model = json.load(opened)
shapes = model["shapes"]


def members(shape_name, prefix, seen):
    shape = shapes[shape_name]
    for name, member in shape.get("members", {}).items():
        path = prefix + name
        yield path
        target = member["shape"]
        if shapes[target]["type"] == "list":
            target = shapes[target]["member"]["shape"]
        if shapes[target]["type"] == "structure" and target not in seen:
            yield from members(target, path + ".", seen | {target})


print(json.dumps({
    operation: sorted(members(model["operations"][operation]["output"]["shape"], "", frozenset()))
    for operation in sys.argv[1:]
}))
