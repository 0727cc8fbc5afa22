#!/usr/bin/env python3
"""Summarizes a bench/coldopen.sh results dir as markdown (stdout) and summary.json.

    coldopen_summary.py OUTDIR TRACE_COUNT

CPU: min / median over the repetitions, µs per cycle. Syscalls per cycle: (calls of the
TRACE_COUNT-cycle run - calls of the 1-cycle run) / (TRACE_COUNT - 1), so process start-up is
not counted. Perf: the top symbols of each profiled run.
"""
import json
import os
import statistics
import sys

out, trace_n = sys.argv[1], int(sys.argv[2])
storages = [s for s in ("disk", "tmpfs") if os.path.exists(f"{out}/{s}-variants.json")]
summary = {"cpu": {}, "hold": {}, "bun": {}, "syscalls": {}}


def load(path):
    with open(path) as f:
        return json.load(f)


def strace_counts(path):
    calls = {}
    if not os.path.exists(path):
        return calls
    for line in open(path):
        p = line.split()
        if len(p) >= 5 and p[0][0].isdigit() and p[-1] != "total":
            calls[p[-1]] = int(p[3])
    return calls


def per_cycle(name, storage):
    many = strace_counts(f"{out}/{storage}-strace-{name}.txt")
    one = strace_counts(f"{out}/{storage}-strace-{name}-one.txt")
    if not many:
        return None
    return {k: (v - one.get(k, 0)) / (trace_n - 1) for k, v in many.items()}


print("## CPU µs per cycle (open + insert + close), min / median of the runs\n")
rows = {}
for st in storages:
    for r in load(f"{out}/{st}-variants.json")["summary"]:
        rows.setdefault((r["variant"], r["mode"]), {})[st] = r
    bun_file = f"{out}/{st}-bun.jsonl"
    bun = [json.loads(l) for l in open(bun_file) if l.strip()] if os.path.exists(bun_file) else []
    if bun:
        cpu = [b["cpu_us"] for b in bun]
        rows[("bun (seed on Bun)", "normal")] = rows.get(("bun (seed on Bun)", "normal"), {})
        rows[("bun (seed on Bun)", "normal")][st] = {
            "cpu_us_min": min(cpu),
            "cpu_us_median": statistics.median(cpu),
            "sys_us_median": statistics.median(b["sys_us"] for b in bun),
            "wall_us_median": statistics.median(b["wall_us"] for b in bun),
            "runs": len(bun),
        }
print("| variant | mode | " + " | ".join(f"{s} min / med (sys med)" for s in storages) + " |")
print("|---|---|" + "---:|" * len(storages))
for (v, m), by in rows.items():
    cells = []
    for st in storages:
        r = by.get(st)
        cells.append(
            f"{r['cpu_us_min']:.0f} / {r['cpu_us_median']:.0f} ({r['sys_us_median']:.0f})" if r else "-"
        )
    print(f"| {v} | {m} | " + " | ".join(cells) + " |")
    summary["cpu"][f"{v}/{m}"] = by

print("\n## With other tenants held open (crash), median CPU µs per cycle\n")
for st in storages:
    path = f"{out}/{st}-hold.json"
    if os.path.exists(path):
        d = load(path)
        summary["hold"][st] = d["summary"]
        print(f"- {st}, {d['hold']} held: " + ", ".join(
            f"{r['variant']} {r['cpu_us_median']:.0f}" for r in d["summary"]))

print(f"\n## Syscalls per cycle (strace -c -f, {trace_n} cycles minus a 1-cycle run)\n")
names = ["tenantd-fsync", "tenantd-crash", "fast-close-crash", "exclusive-crash", "exclusive-fsync", "seed", "bun"]
for st in storages:
    for n in names:
        c = per_cycle(n, st)
        if c is None:
            continue
        summary["syscalls"][f"{st}/{n}"] = c
        total = sum(c.values())
        top = sorted(((k, v) for k, v in c.items() if v >= 0.05), key=lambda kv: -kv[1])
        print(f"- {st} {n}: **{total:.1f}**: " + ", ".join(f"{k} {v:.1f}" for k, v in top))

# perf: inclusive share of the functions that make up the pieces of a cycle, as % of the run's
# samples and as µs (share x the measured median CPU per cycle of the same variant and mode)
PIECES = [
    ("sqlite3_open_v2 (open: VFS, btree, no I/O of pages)", "openDatabase"),
    ("  unixOpen (open(2), fstat, inode list)", "unixOpen"),
    ("schema read + parse (sqlite3InitOne)", "sqlite3InitOne"),
    ("WAL index header read (walIndexReadHdr)", "walIndexReadHdr"),
    ("-shm map (unixShmMap)", "unixShmMap"),
    ("-shm unmap on close (unixShmUnmap)", "unixShmUnmap"),
    ("insert_event (BEGIN..COMMIT incl. WAL write)", "store::events::insert_event"),
    ("  WAL frame write (pagerWalFrames)", "pagerWalFrames"),
    ("close (sqlite3Close)", "sqlite3Close"),
    ("  WAL close: checkpoint, unlink (sqlite3WalClose)", "sqlite3WalClose"),
    ("fsync(2)", "__x64_sys_fsync"),
    ("fdatasync(2)", "__x64_sys_fdatasync"),
    ("unlink(2)", "__x64_sys_unlink"),
    ("fstatat (stat calls)", "__GI___fstatat64"),
    ("fcntl (POSIX locks)", "__fcntl64_nocancel_adjusted"),
    ("trusted authorizer callback", "hrana::guard::trusted::authorize_trusted"),
    ("malloc (_int_malloc)", "_int_malloc"),
]


def perf_children(path):
    shares = {}
    for line in open(path):
        p = line.split()
        if len(p) >= 4 and p[0].endswith("%") and p[1].endswith("%"):
            sym = " ".join(p[3:])
            shares.setdefault(sym, (float(p[0][:-1]), float(p[1][:-1])))
    return shares


def cpu_of(storage, name):
    key = {"tenantd-fsync": ("tenantd", "fsync"), "tenantd-crash": ("tenantd", "crash"),
           "exclusive-crash": ("exclusive", "crash"), "seed": ("seed", "normal")}.get(name)
    if name == "tenantd-crash-hold":
        for r in summary["hold"].get(storage, []):
            if r["variant"] == "tenantd":
                return r["cpu_us_median"]
    if key and key in rows and storage in rows[key]:
        return rows[key][storage]["cpu_us_median"]
    return None


print("\n## perf: where a cycle's CPU goes (inclusive %, and µs at the measured median)\n")
perf_runs = [(st, n) for st in storages for n in names + ["tenantd-crash-hold"]
             if os.path.exists(f"{out}/{st}-perf-{n}.txt")]
if perf_runs:
    print("| piece | " + " | ".join(f"{st} {n}" for st, n in perf_runs) + " |")
    print("|---|" + "---:|" * len(perf_runs))
    data = {(st, n): perf_children(f"{out}/{st}-perf-{n}.txt") for st, n in perf_runs}
    summary["perf"] = {}
    for label, sym in PIECES:
        cells = []
        for st, n in perf_runs:
            pct = data[(st, n)].get(sym, (0.0, 0.0))[0]
            cpu = cpu_of(st, n)
            cells.append(f"{pct:.1f}% ({pct * cpu / 100:.0f})" if cpu else f"{pct:.1f}%")
            summary["perf"].setdefault(f"{st}/{n}", {})[sym] = pct
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nTop self symbols:\n")
    for st, n in perf_runs:
        top = sorted(data[(st, n)].items(), key=lambda kv: -kv[1][1])[:10]
        print(f"- {st} {n}: " + "; ".join(f"{s} {v[1]:.1f}%" for s, v in top))

with open(f"{out}/summary.json", "w") as f:
    json.dump(summary, f, indent=1)
