#!/usr/bin/env python3
"""Markdown table of a bench/side_by_side.sh run: per server, the median over rounds of 2xx/s,
p50/p99 latency, the server's peak RSS and CPU per acknowledged webhook, and ratios against Bun.
usage: side_by_side_summary.py OUT_DIR
"""
import glob
import json
import os
import statistics
import sys


def main():
    out = sys.argv[1]
    by_server = {}
    for path in sorted(glob.glob(os.path.join(out, "*-r*.json"))):
        r = json.load(open(path))
        server = os.path.basename(path).rsplit("-r", 1)[0]
        res, srv = r["result"], r.get("server") or {}
        by_server.setdefault(server, []).append({
            "ok_s": res["rps_ok"],
            "p50": res["latency"]["p50_us"] / 1000,
            "p99": res["latency"]["p99_us"] / 1000,
            "non_ok": res["requests"] - res["ok"],
            "rss": (srv.get("peak_rss_bytes") or 0) / 2**20,
            "cpu_us": (srv.get("cpu_seconds_per_ok_request") or 0) * 1e6,
        })
    med = {s: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for s, runs in by_server.items()}
    base = med.get("bun")
    print("| server | rounds | 2xx/s | vs Bun | p50 ms | p99 ms | non-2xx | peak RSS MiB | server CPU µs/req |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s, m in med.items():
        ratio = f"{m['ok_s'] / base['ok_s']:.2f}x" if base and base["ok_s"] else "—"
        print(f"| {s} | {len(by_server[s])} | {m['ok_s']:,.0f} | {ratio} | {m['p50']:.2f} | {m['p99']:.2f} | "
              f"{m['non_ok']:.0f} | {m['rss']:.0f} | {m['cpu_us']:.0f} |")


main()
