#!/usr/bin/env python3
"""Markdown tables and target checks from one bench/run.sh output directory.

usage: bench/summarize.py bench/results/<timestamp>   (reads results.jsonl, rss_idle_files.jsonl)
Ratios are against the Bun seed server in the same storage and workload (medians over reps),
on acknowledged (2xx) requests per second: a 503 from a full backlog does not count.
The targets are issue 8's.
"""
import json
import os
import statistics
import sys

MIB = 1024.0
TARGETS = {  # (storage, dist, server) -> minimum 2xx req/s ratio vs bun
    ("disk", "zipf", "tenantd-crash"): 30,
    ("disk", "zipf", "tenantd-fsync"): 20,
    ("disk", "uniform", "tenantd-crash"): 10,
    ("disk", "uniform", "tenantd-fsync"): 10,
    ("tmpfs", "zipf", "tenantd-crash"): 3,
    ("tmpfs", "zipf", "tenantd-fsync"): 3,
    ("tmpfs", "uniform", "tenantd-crash"): 2,
    ("tmpfs", "uniform", "tenantd-fsync"): 2,
}
P99_MS = 10.0           # disk zipf, both modes, 64 connections
PEAK_RSS_MIB = 100.0    # every run
DRAIN_S = 2.0           # every acknowledged delivery applied this soon after the load stops
IDLE_DELTA_MIB = 10.0   # RSS after idle - RSS at start
FILES_DELTA_MIB = 2.0   # RSS with N idle tenant files - RSS with none


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt_list(rows, key, scale=1.0, digits=0):
    vals = [r.get(key) for r in rows]
    return ", ".join("-" if v is None else f"{v / scale:,.{digits}f}" for v in vals)


def other(r):
    """CPU seconds the machine spent outside the server and wrk during the run (noise)."""
    return float(r["machine_busy_s"]) - float(r["server_cpu_s"]) - float(r["wrk_cpu_s"])


def pairs(rows, a, b):
    return ", ".join("%s -> %s" % (r.get(a), r.get(b)) for r in rows)


def checks_of(rows):
    return ", ".join("%s (%s >= %s)" % (r["rows_check"], format(r["rows_stored"], ","), format(r["ok2xx"], ","))
                     for r in rows)


def ok_rps(r):
    """Acknowledged (2xx) requests per second."""
    if r.get("requests") is None or not r.get("duration_s"):
        return r.get("rps")
    return r["ok2xx"] / float(r["duration_s"])


def main():
    out = sys.argv[1]
    runs = load(os.path.join(out, "results.jsonl"))
    files = load(os.path.join(out, "rss_idle_files.jsonl"))
    groups = {}
    for r in runs:
        groups.setdefault((r["storage"], r["dist"], r["T"]), {}).setdefault(r["server"], []).append(r)
    checks = []
    print("| storage | workload | server | 2xx/s | x Bun | p50 ms | p99 ms | non-2xx / timeouts |"
          " apply lag at end s | unapplied at end | drain s |"
          " RSS 1 s after start MiB | peak RSS MiB | RSS after idle MiB | idle - start MiB |"
          " fds end -> idle | open tenants end -> idle | rows >= 2xx | server CPU us/req | other CPU s |")
    print("|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|")
    for r in runs:
        r["ok_rps"] = ok_rps(r)
    for (storage, dist, T), by_srv in groups.items():
        bun = med(by_srv.get("bun", []), "ok_rps")
        for srv, rs in by_srv.items():
            rps = med(rs, "ok_rps")
            ratio = f"{rps / bun:.1f}x" if bun and rps is not None else "-"
            deltas = [(r["rss_idle_kb"] - r["rss_start_kb"]) / MIB for r in rs]
            cpu = [1e6 * r["server_cpu_s"] / r["requests"] if r.get("requests") else None for r in rs]
            print(f"| {storage} | {dist} T={T:,} | {srv} | {fmt_list(rs, 'ok_rps')} | {ratio} |"
                  f" {fmt_list(rs, 'lat_p50_ms', digits=2)} | {fmt_list(rs, 'lat_p99_ms', digits=2)} |"
                  f" {fmt_list(rs, 'non2xx')} / {fmt_list(rs, 'err_timeout')} |"
                  f" {fmt_list(rs, 'apply_lag_end_s', digits=2)} | {fmt_list(rs, 'unapplied_end')} |"
                  f" {fmt_list(rs, 'drain_s', digits=2)} |"
                  f" {fmt_list(rs, 'rss_start_kb', MIB, 1)} | {fmt_list(rs, 'peak_rss_kb', MIB, 1)} |"
                  f" {fmt_list(rs, 'rss_idle_kb', MIB, 1)} | {', '.join(f'{d:+.1f}' for d in deltas)} |"
                  f" {pairs(rs, 'fds_end', 'fds_idle')} |"
                  f" {pairs(rs, 'open_tenants_end', 'open_tenants_idle')} |"
                  f" {checks_of(rs)} |"
                  f" {', '.join('-' if c is None else f'{c:.0f}' for c in cpu)} |"
                  f" {', '.join(f'{other(r):.1f}' for r in rs)} |")
            want = TARGETS.get((storage, dist, srv))
            if want and bun and rps is not None:
                checks.append((f"{storage} {dist} {srv} 2xx/s >= {want}x Bun", f"{rps / bun:.1f}x", rps / bun >= want))
            if srv.startswith("tenantd") and storage == "disk" and dist == "zipf":
                p99 = max(r["lat_p99_ms"] for r in rs)
                checks.append((f"{storage} {dist} {srv} p99 <= {P99_MS:.0f} ms", f"{p99:.2f} ms", p99 <= P99_MS))
            if srv.startswith("tenantd"):
                peak = max(r["peak_rss_kb"] for r in rs) / MIB
                checks.append((f"{storage} {dist} {srv} peak RSS <= {PEAK_RSS_MIB:.0f} MiB", f"{peak:.0f} MiB",
                               peak <= PEAK_RSS_MIB))
                drains = [r.get("drain_s") for r in rs]
                worst_drain = None if None in drains else max(drains)
                checks.append((f"{storage} {dist} {srv} backlog applied within {DRAIN_S:.0f} s after the load",
                               "never" if worst_drain is None else f"{worst_drain:.2f} s",
                               worst_drain is not None and worst_drain <= DRAIN_S))
                worst = max(deltas, key=abs)
                checks.append((f"{storage} {dist} {srv} RSS after idle within {IDLE_DELTA_MIB:.0f} MiB of start",
                               f"{worst:+.1f} MiB", abs(worst) <= IDLE_DELTA_MIB))
    if files:
        print()
        print("| RSS at start (tenantd fsync, same flags) | reps: RSS 1 s after start MiB | 3 s after start MiB | fds |")
        print("|---|---|---|---|")
        by = {}
        for r in files:
            by.setdefault(r["which"], []).append(r)
        for which, rs in by.items():
            print(f"| {rs[0]['tenant_files']:,} idle tenant files | {fmt_list(rs, 'rss_1s_kb', MIB, 2)} |"
                  f" {fmt_list(rs, 'rss_3s_kb', MIB, 2)} | {fmt_list(rs, 'fds')} |")
        if "full" in by and "empty" in by:
            d = (med(by["full"], "rss_3s_kb") - med(by["empty"], "rss_3s_kb")) / MIB
            checks.append((f"RSS with {by['full'][0]['tenant_files']:,} idle files = RSS with none "
                           f"+- {FILES_DELTA_MIB:.0f} MiB", f"{d:+.2f} MiB", abs(d) <= FILES_DELTA_MIB))
    print()
    print("| target | measured | met |")
    print("|---|---|---|")
    for name, got, ok in checks:
        print(f"| {name} | {got} | {'yes' if ok else '**no**'} |")


main()
