#!/usr/bin/env python3
"""Merge wrk's RESULT_JSON (argument 1, may be empty) with key=value pairs into one JSON line.

Values that parse as JSON or as floats become numbers; everything else stays a string.
"""
import json
import sys

out = json.loads(sys.argv[1]) if sys.argv[1].strip() else {}
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    try:
        out[k] = json.loads(v)
    except ValueError:
        try:
            out[k] = float(v)  # bc prints ".5" for 0.5
        except ValueError:
            out[k] = v
print(json.dumps(out, sort_keys=True))
