#!/usr/bin/env python3
"""p50/p99 of 200 x (4 KiB pwrite + fsync) in DIR, as JSON: {"fsync_p50_ms":..,"fsync_p99_ms":..}."""
import json
import os
import sys
import time

path = os.path.join(sys.argv[1], ".fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
lat = []
for i in range(200):
    os.pwrite(fd, b"p" * 4096, (i % 16) * 4096)
    t = time.perf_counter()
    os.fsync(fd)
    lat.append(time.perf_counter() - t)
os.close(fd)
os.unlink(path)
lat.sort()
print(json.dumps({"fsync_p50_ms": round(lat[100] * 1e3, 3), "fsync_p99_ms": round(lat[198] * 1e3, 3)}))
