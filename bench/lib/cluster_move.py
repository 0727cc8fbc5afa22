#!/usr/bin/env python3
"""The HTTP side of bench/cluster_move.sh (stdlib only): fills a tenant, moves it under a
continuous webhook writer, checks every acknowledged delivery, creates and checks tenants for
the rebalance, and writes the summary table. The shell script owns the processes.

Subcommands (each prints one JSON object on stdout, unless said otherwise):
  fill URL TENANT BYTES             SQL through the node's /t/TENANT/v2/pipeline: 1 MiB
                                    random blobs until the data reaches BYTES
  move-under-load FRONT TENANT OUT -- CMD...
                                    writers post webhooks through HAProxy (FRONT) while CMD
                                    (`tenantd cluster move`) runs; raw samples to OUT (jsonl)
  verify-move TARGET_URL TENANT OUT verifies OUT's acknowledged deliveries on the target
  create FRONT TABLE NODES N        creates N tenants on their owners, one webhook each
  verify-owners TABLE NODES N       every tenant answers on its owner with its one event
  phases TENANT MOVE_JSON LOG...    a move's phases from the nodes' JSON logs (move-under-load's
                                    output gives the mover's start and end)
  owner TABLE TENANT                the node serving TENANT (plain text)
  summary RESULTS.jsonl             markdown table (stdout)
NODES is name=http://host:port,... ; the admin token comes from TENANTD_ADMIN_TOKEN.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from stats import percentile

SLOTS = 16384
BLOB = 1 << 20  # fill rows are 1 MiB blobs
ROWS_PER_STATEMENT = 16  # 16 MiB per INSERT: well inside the SQL time budget the script sets


# ---- pure parts (bench/lib/test_cluster_move.py) ----


def parse_size(text):
    """'1M', '100M', '1G', '512K' or a byte count -> bytes (binary units)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def slot_of(tenant):
    """The tenant's slot: CRC-32 (zlib's) of its id mod 16384, as HAProxy and tenantd compute."""
    return zlib.crc32(tenant.encode()) % SLOTS


def owner(table, tenant):
    """The node serving `tenant` under a cluster-table.json object: override, else its slot's."""
    if tenant in table.get("overrides", {}):
        return table["overrides"][tenant]
    s = slot_of(tenant)
    for r in table["ranges"]:
        if r["from"] <= s <= r["to"]:
            return r["node"]
    raise ValueError(f"slot {s} of {tenant} is in no range")


def slot_counts(table):
    """Slots per node."""
    out = {}
    for r in table["ranges"]:
        out[r["node"]] = out.get(r["node"], 0) + r["to"] - r["from"] + 1
    return out


def fill_rows(size):
    """Blob sizes that add up to `size` bytes: 1 MiB rows, the last one shorter."""
    full, rest = divmod(size, BLOB)
    return [BLOB] * full + ([rest] if rest else [])


def pause(samples):
    """The longest gap between two consecutive acknowledgements (any writer), as
    (gap seconds, start, end); samples are dicts with t1 (ack time) and ok."""
    acks = sorted(s["t1"] for s in samples if s["ok"])
    best = (0.0, None, None)
    for a, b in zip(acks, acks[1:]):
        if b - a > best[0]:
            best = (b - a, a, b)
    return best


def analyse(samples, move_start, move_end):
    """Client-side numbers of one move: pause, latencies outside it, status counts."""
    gap, g0, g1 = pause(samples)
    ok = [s for s in samples if s["ok"]]
    outside = [
        s["t1"] - s["t0"]
        for s in ok
        if g0 is None or s["t1"] <= g0 or s["t0"] >= g1
    ]
    statuses = {}
    for s in samples:
        for code, n in s["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    ms = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
    return {
        "writes_acked": len(ok),
        "writes_unacked": len(samples) - len(ok),
        "pause_ms": ms(gap),
        "pause_start_after_move_start_ms": ms(None if g0 is None else g0 - move_start),
        "pause_end_before_move_end_ms": ms(None if g1 is None else move_end - g1),
        "write_p50_ms": ms(percentile(outside, 50)),
        "write_p99_ms": ms(percentile(outside, 99)),
        "write_max_ms": ms(max((s["t1"] - s["t0"] for s in ok), default=None)),
        "status_503": statuses.get("503", 0),
        "status_421": statuses.get("421", 0),
        "status_other": {k: v for k, v in statuses.items() if k not in ("202", "200", "503", "421")},
        "redeliveries_acked_as_duplicate": sum(1 for s in ok if s.get("duplicate")),
    }


# The nodes' info log lines (--log-format json) that mark a move's steps, in order.
MOVE_STEPS = [
    ("fenced", "tenant fenced for a move"),  # source
    ("snapshot", "snapshot taken for a move"),  # source: backlog applied, online backup, hashed
    ("imported", "tenant imported"),  # target: received, hashed, fsynced, checked, cataloged
    ("committed", "tenant moved away"),  # source: fence checked, file retired
]


def move_phases(log_lines, tenant, start_unix, end_unix):
    """Phase durations (ms) of one move from the nodes' JSON log lines and the mover's start
    and end (unix seconds): start->fenced, fenced->snapshot (export), snapshot->imported
    (transfer and import), imported->committed, committed->end (table switch: target,
    HAProxy, other nodes). A missing step leaves its phases out."""
    at = {}
    for line in log_lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        f = e.get("fields", {})
        if f.get("tenant") != tenant:
            continue
        for step, msg in MOVE_STEPS:
            if f.get("message") == msg and step not in at:
                at[step] = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
    points = [("start", start_unix)] + [(s, at.get(s)) for s, _ in MOVE_STEPS] + [("end", end_unix)]
    out = {}
    for (a, ta), (b, tb) in zip(points, points[1:]):
        if ta is not None and tb is not None:
            out[f"{a}_to_{b}_ms"] = round((tb - ta) * 1000, 1)
    return out


def check_once(acked, stored):
    """acked: delivery -> event id; stored: [(id, body)]. Counts lost, twice (stored more than
    once), wrong_id (stored once under another id) and extra (stored, never acknowledged)."""
    by_body = {}
    for eid, body in stored:
        by_body.setdefault(body, []).append(eid)
    lost = twice = wrong = 0
    bodies = set()
    for d, eid in acked.items():
        body = delivery_body(d)
        bodies.add(body)
        ids = by_body.get(body, [])
        if not ids:
            lost += 1
        elif len(ids) > 1:
            twice += 1
        elif ids[0] != eid:
            wrong += 1
    extra = sum(len(v) for b, v in by_body.items() if b not in bodies)
    return {"lost": lost, "twice": twice, "wrong_id": wrong, "extra": extra}


def delivery_body(d):
    """The body posted for delivery `d` (and stored verbatim)."""
    return json.dumps({"d": d}, separators=(",", ":"))


def tenant_name(i):
    """The i-th rebalance tenant."""
    return f"rb{i:05d}"


def parse_nodes(text):
    """'a=http://h:1,b=http://h:2' -> {'a': 'http://h:1', ...}."""
    return dict(p.split("=", 1) for p in text.split(",") if p)


# ---- HTTP ----

TOKEN = os.environ.get("TENANTD_ADMIN_TOKEN", "")


class Http:
    """One keep-alive connection to host:port; reconnects after any error."""

    def __init__(self, base, timeout=120):
        u = urllib.parse.urlsplit(base if "://" in base else "http://" + base)
        self.host, self.port, self.timeout = u.hostname, u.port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """(status, headers dict, body bytes); raises OSError on a transport error."""
        h = {"Authorization": f"Bearer {TOKEN}"}
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.close()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method, path, body=None, headers=None):
        s, _, data = self.request(method, path, body, headers)
        try:
            return s, json.loads(data) if data else None
        except ValueError:
            return s, data.decode(errors="replace")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def sql(c, tenant, stmt):
    s, v = c.json("POST", f"/t/{tenant}/v2/pipeline",
                  {"requests": [{"type": "execute", "stmt": {"sql": stmt}}, {"type": "close"}]})
    if s != 200:
        raise RuntimeError(f"{stmt[:60]}: {s} {v}")
    if v["results"][0]["type"] != "ok":
        raise RuntimeError(f"{stmt[:60]}: {v['results'][0].get('error', {}).get('message')}")
    return v["results"][0]["response"]["result"]


def cmd_fill(url, tenant, size):
    c = Http(url)
    s, v = c.json("PUT", f"/admin/tenants/{tenant}")
    if s not in (200, 201):
        raise RuntimeError(f"create {tenant}: {s} {v}")
    sql(c, tenant, "CREATE TABLE IF NOT EXISTS blob(id INTEGER PRIMARY KEY, b BLOB)")
    rows = fill_rows(size)
    t0 = time.monotonic()
    for i in range(0, len(rows), ROWS_PER_STATEMENT):
        part = rows[i:i + ROWS_PER_STATEMENT]
        values = " UNION ALL ".join(f"SELECT randomblob({n})" for n in part)
        sql(c, tenant, f"INSERT INTO blob(b) {values}")
    fill_s = time.monotonic() - t0
    # The SQL API refuses PRAGMA (it is not an application statement); this says so in the
    # results. The node checkpoints (TRUNCATE) when it closes the idle tenant.
    try:
        sql(c, tenant, "PRAGMA wal_checkpoint(TRUNCATE)")
        checkpoint = "pragma"
    except RuntimeError as e:
        checkpoint = f"refused: {str(e)[:120]}"
    n = sql(c, tenant, "SELECT count(*), coalesce(sum(length(b)), 0) FROM blob")["rows"][0]
    print(json.dumps({"fill_s": round(fill_s, 2), "rows": int(n[0]["value"]),
                      "blob_bytes": int(n[1]["value"]), "checkpoint_via_sql": checkpoint}))


def writer(front, tenant, wid, stop, out, retry_s, give_up_s):
    """Posts deliveries w{wid}-{i} one after another until `stop`; each is retried on 503, 421
    and transport errors (same delivery id, as a sender would) until acknowledged."""
    c = Http(front, timeout=30)
    i = 0
    while not stop.is_set():
        d = f"w{wid}-{i}"
        body = delivery_body(d).encode()
        rec = {"d": d, "t0": time.monotonic(), "statuses": {}, "ok": False}
        while True:
            try:
                s, h, data = c.request("POST", f"/t/{tenant}/hooks/load", body,
                                       {"webhook-id": d, "Content-Type": "application/json"})
            except (OSError, http.client.HTTPException):
                s, h, data = "conn", {}, b""
            rec["statuses"][str(s)] = rec["statuses"].get(str(s), 0) + 1
            if s in (200, 202):
                v = json.loads(data)
                rec.update(ok=True, id=v["id"], duplicate=v.get("duplicate", False))
                break
            if s not in (503, 421, "conn"):
                rec["error"] = data.decode(errors="replace")[:200]
                break
            if time.monotonic() - rec["t0"] > give_up_s:
                break
            # Retry-After (whole seconds) is not honoured: the pause measured is the server's
            # own, not a sender's back-off.
            time.sleep(retry_s)
        rec["t1"] = time.monotonic()
        out.append(rec)
        i += 1
    c.close()


def cmd_move_under_load(front, tenant, out_path, cmd):
    writers = int(os.environ.get("WRITERS", "2"))
    warm = float(os.environ.get("WARMUP_S", "2"))
    cool = float(os.environ.get("COOLDOWN_S", "2"))
    retry_s = float(os.environ.get("RETRY_MS", "10")) / 1000
    stop = threading.Event()
    samples = []
    threads = [threading.Thread(target=writer, args=(front, tenant, w, stop, samples, retry_s, 120))
               for w in range(writers)]
    for t in threads:
        t.start()
    time.sleep(warm)
    u0, m0 = time.time(), time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    m1, u1 = time.monotonic(), time.time()
    time.sleep(cool)
    stop.set()
    for t in threads:
        t.join()
    base = m0
    with open(out_path, "w") as f:
        for s in sorted(samples, key=lambda s: s["t0"]):
            r = dict(s, t0=round(s["t0"] - base, 6), t1=round(s["t1"] - base, 6))
            f.write(json.dumps(r) + "\n")
    res = {"move_ok": p.returncode == 0, "move_wall_s": round(m1 - m0, 3),
           "move_stdout": p.stdout.strip(), "move_stderr": p.stderr.strip()[-2000:],
           "writers": writers, "retry_ms": retry_s * 1000,
           "move_start_unix": round(u0, 6), "move_end_unix": round(u1, 6)}
    res.update(analyse(samples, m0, m1))
    print(json.dumps(res))
    return 0 if p.returncode == 0 else 1


def events(c, tenant):
    out, after = [], 0
    while True:
        s, v = c.json("GET", f"/t/{tenant}/events?after={after}&limit=1000")
        if s != 200:
            raise RuntimeError(f"events of {tenant}: {s} {v}")
        out += [(e["id"], e["body"]) for e in v["events"]]
        if not v.get("more"):
            return out
        after = v["next_after"]


def cmd_verify_move(target, tenant, samples_path):
    acked = {}
    with open(samples_path) as f:
        for line in f:
            s = json.loads(line)
            if s["ok"]:
                acked[s["d"]] = s["id"]
    stored = events(Http(target), tenant)
    res = {"acked": len(acked), "stored_on_target": len(stored)}
    res.update(check_once(acked, stored))
    print(json.dumps(res))
    return 0 if res["lost"] == res["twice"] == res["wrong_id"] == 0 else 1


def parallel(fn, items, threads=4):
    """Runs fn(http-per-thread-dict, item) over items; returns the results in order."""
    local = threading.local()

    def run(item):
        if not hasattr(local, "conns"):
            local.conns = {}
        return fn(local.conns, item)

    with ThreadPoolExecutor(threads) as ex:
        return list(ex.map(run, items))


def conn(conns, base):
    if base not in conns:
        conns[base] = Http(base)
    return conns[base]


def cmd_create(front, table_path, nodes, n):
    with open(table_path) as f:
        table = json.load(f)

    def one(conns, i):
        t = tenant_name(i)
        s, v = conn(conns, nodes[owner(table, t)]).json("PUT", f"/admin/tenants/{t}")
        if s != 201:
            raise RuntimeError(f"create {t}: {s} {v}")
        s, v = conn(conns, front).json("POST", f"/t/{t}/hooks/load", delivery_body(t).encode(),
                                       {"webhook-id": t})
        if s != 202:
            raise RuntimeError(f"first webhook of {t} through haproxy: {s} {v}")
        return owner(table, t)

    t0 = time.monotonic()
    owners = parallel(one, range(n))
    per = {}
    for o in owners:
        per[o] = per.get(o, 0) + 1
    print(json.dumps({"tenants": n, "create_s": round(time.monotonic() - t0, 2),
                      "tenants_per_node": per}))


def cmd_verify_owners(table_path, nodes, n):
    with open(table_path) as f:
        table = json.load(f)

    def one(conns, i):
        t = tenant_name(i)
        o = owner(table, t)
        try:
            got = events(conn(conns, nodes[o]), t)
        except RuntimeError as e:
            return o, str(e)
        return o, None if got and len(got) == 1 and got[0][1] == delivery_body(t) else f"{t}: {got}"

    t0 = time.monotonic()
    res = parallel(one, range(n))
    per, bad = {}, [e for _, e in res if e]
    for o, _ in res:
        per[o] = per.get(o, 0) + 1
    print(json.dumps({"checked": n, "not_served_by_owner_or_wrong_events": len(bad),
                      "examples": bad[:5], "tenants_per_node_after": per,
                      "slots_per_node_after": slot_counts(table),
                      "overrides_left": len(table.get("overrides", {})),
                      "verify_s": round(time.monotonic() - t0, 2)}))
    return 0 if not bad else 1


def cmd_summary(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    moves = [r for r in rows if r.get("phase") == "move"]
    reb = [r for r in rows if r.get("phase") == "rebalance"]
    if moves:
        print("| size | db file (after fill) | move wall | export / transfer+import / switch "
              "| writes paused (mover) | client pause "
              "| p50 / p99 outside | 503 | 421 | acked | lost | twice |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in moves:
            ph = " / ".join(f"{r[k] / 1000:.2f}" if k in r else "?" for k in (
                "fenced_to_snapshot_ms", "snapshot_to_imported_ms", "committed_to_end_ms"))
            print(f"| {r['size']} | {r.get('db_bytes', 0) / 1e6:.1f} MB (wal {r.get('wal_bytes', 0) / 1e6:.1f} MB) "
                  f"| {r['move_wall_s']:.2f} s | {ph} s | {r.get('mover_paused_ms', '?')} ms "
                  f"| {r['pause_ms']:.0f} ms | {r['write_p50_ms']} / {r['write_p99_ms']} ms "
                  f"| {r['status_503']} | {r['status_421']} | {r['acked']} | {r['lost']} | {r['twice']} |")
    if reb:
        print()
        print("| tenants | nodes | slots moved | tenants moved | rebalance wall | not on owner | overrides left |")
        print("|---|---|---|---|---|---|---|")
        for r in reb:
            print(f"| {r['tenants']} | {r['nodes']} | {r.get('slots_moved', '?')} "
                  f"| {r.get('tenants_moved', '?')} | {r['rebalance_wall_s']:.1f} s "
                  f"| {r['not_served_by_owner_or_wrong_events']} | {r['overrides_left']} |")


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "fill":
        return cmd_fill(args[0], args[1], parse_size(args[2]))
    if cmd == "move-under-load":
        sep = args.index("--")
        return cmd_move_under_load(args[0], args[1], args[2], args[sep + 1:])
    if cmd == "verify-move":
        return cmd_verify_move(*args)
    if cmd == "create":
        return cmd_create(args[0], args[1], parse_nodes(args[2]), int(args[3]))
    if cmd == "verify-owners":
        return cmd_verify_owners(args[0], parse_nodes(args[1]), int(args[2]))
    if cmd == "phases":
        r = json.loads(args[1])
        lines = [line for path in args[2:] for line in open(path)]
        print(json.dumps(move_phases(lines, args[0], r["move_start_unix"], r["move_end_unix"])))
        return 0
    if cmd == "owner":
        with open(args[0]) as f:
            print(owner(json.load(f), args[1]))
        return 0
    if cmd == "summary":
        return cmd_summary(args[0])
    sys.exit(f"unknown subcommand {cmd!r}; see the docstring")


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
