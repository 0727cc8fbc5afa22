#!/usr/bin/env python3
"""The measuring side of bench/backup.sh (stdlib only; moto for the `s3` subcommand, the
`zstd` command or the `zstandard` module to read log chunks). The shell script owns the
processes and the phases; every subcommand prints one JSON object on stdout unless said
otherwise.

Subcommands:
  s3 PORT JOURNAL [--stock]    moto's S3 server on 127.0.0.1:PORT. Every stored object is
                               appended to JOURNAL as "<unix time> PUT|DEL <bucket> <key> <bytes>"
                               the moment moto has stored it (the time it becomes listable).
                               Unless --stock, moto's prefix listing reads a sorted index of the
                               bucket's keys instead of scanning every key (same results; see
                               "moto's listing" below). Runs until killed; prints nothing.
  bucket ENDPOINT BUCKET       creates the bucket (a plain PUT)
  metrics URL                  the server's /metrics as {name: value} (unlabelled series)
  wait URL [--rounds N] [--pending-zero] [--timeout S]
                               waits until tenantd_backup_rounds_total >= N and (with
                               --pending-zero) tenantd_backup_pending_tenants == 0; exit 1 on
                               timeout (the JSON says timed_out)
  idle PID URL [--samples K] [--every S]
                               K samples of RSS and fds from /proc/PID and from /metrics
  sample PID URL OUT [--every S] [--also PID]
                               one JSON line per S seconds into OUT until SIGTERM (RSS, HWM, fds,
                               threads, CPU from /proc; backup and process metrics; --also: RSS
                               and CPU of another process, e.g. the S3 server)
  series OUT [--from T] [--to T]
                               peak and mean of OUT's samples in [from, to] (unix seconds)
  setup-kv URL TOKEN PREFIX WIDTH COUNT SQLFILE
                               runs SQLFILE (bench/sql/0001_kv.sql) on tenants 0..COUNT-1 over
                               Hrana (the kv table that `tenantd bench load`'s sql-write updates)
  probe URL TOKEN PREFIX WIDTH COUNT OUTDIR --duration S --webhook-rate R --sql-rate R
        --s3 ENDPOINT --bucket B --key-prefix P [--tail S]
                               RPO probes: webhooks (each with a unique Idempotency-Key) and SQL
                               writes (the kv upsert) at fixed rates to random tenants of the
                               active set, every acknowledgement timed (OUTDIR/probes.jsonl);
                               meanwhile the bucket's log chunks are listed every 200 ms, each new
                               chunk fetched, decompressed and decoded (OUTDIR/chunks.jsonl: when
                               it was first listed, its records, which probe webhooks it holds).
                               After the writes, listing goes on until every acknowledged probe
                               webhook was seen or --tail seconds passed.
  rpo OUTDIR JOURNAL KEY_PREFIX
                               webhook and SQL RPO from OUTDIR's files and the S3 journal
  journal JOURNAL KEY_PREFIX [--from T] [--to T]
                               objects and bytes stored in [from, to]: snapshots, tombstones,
                               log chunks; first and last PUT; PUTs per second
  summary RESULTS.jsonl        the markdown tables of summary.md (stdout)

moto's listing: moto 5.2.1 answers every ListObjects request by copying and scanning every key
of the bucket (models.py `list_objects`), so each listing costs O(keys in the bucket). tenantd
lists a tenant's snapshots after each upload (retention) and before each restore, so against
stock moto a round of N new tenants and `restore --all` of N tenants cost O(N^2) in the S3
server alone. The index (a sorted list of key names kept next to moto's key store, bisected by
prefix) answers the same listings in O(log keys + results), as S3 does; test_backup_bench.py
checks that it returns exactly what stock moto returns.
"""
import bisect
import http.client
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from stats import percentile

# ---- pure parts (bench/lib/test_backup_bench.py) ----

LOG_KEY = re.compile(r"^(?P<pre>.*)log/(?P<first>\d{20})-(?P<last>\d{20})\.log\.zst$")
# <ms>-<sha256>[-<log position, 20 digits>].db.zst (the position since 0298e0c; tombstones: -gone)
SNAP_KEY = re.compile(r"^(?P<pre>.*)tenants/(?P<tenant>[^/]+)/(?P<ms>\d{16})-(?P<sha>[0-9a-f]{64}|gone)(?:-\d{20})?\.db\.zst$")


def key_prefix(prefix):
    """The key prefix of a node's objects: "node1" -> "node1/", "" -> ""."""
    p = prefix.strip("/")
    return p + "/" if p else ""


def parse_log_key(key, prefix=""):
    """(first LSN, last LSN) of a log chunk key under `prefix`, else None."""
    m = LOG_KEY.match(key)
    if not m or m["pre"] != key_prefix(prefix):
        return None
    return int(m["first"]), int(m["last"])


def parse_snapshot_key(key, prefix=""):
    """(tenant, ms, sha256 or "gone") of a snapshot key under `prefix`, else None."""
    m = SNAP_KEY.match(key)
    if not m or m["pre"] != key_prefix(prefix):
        return None
    return m["tenant"], int(m["ms"]), m["sha"]


def decode_frames(raw):
    """The records of a log chunk (decompressed): a list of dicts with lsn, tenant, source,
    delivery_id, event_id, received_at_ms, body_len, frame_len (crates/ingest/src/record.rs:
    frame = [u32 len][u32 crc32c][payload]; the CRC is not checked here). Stops at a frame cut
    short; raises ValueError on an unknown version."""
    out, off = [], 0
    while off + 8 <= len(raw):
        (plen,) = struct.unpack_from("<I", raw, off)
        if off + 8 + plen > len(raw):
            break
        p, at = raw[off + 8 : off + 8 + plen], 0

        def take(n):
            nonlocal at
            b = p[at : at + n]
            if len(b) != n:
                raise ValueError(f"frame at byte {off}: payload cut short")
            at += n
            return b

        def string():
            (n,) = struct.unpack("<I", take(4))
            return take(n).decode("utf-8", "replace")

        if take(1) != b"\x01":
            raise ValueError(f"frame at byte {off}: unknown record version")
        (lsn,) = struct.unpack("<Q", take(8))
        tenant, source = string(), string()
        delivery = string() if take(1) == b"\x01" else None
        event_id, received = struct.unpack("<qq", take(16))
        if take(1) == b"\x01":
            string()  # content type
        (blen,) = struct.unpack("<I", take(4))
        body = take(blen)
        out.append({"lsn": lsn, "tenant": tenant, "source": source, "delivery_id": delivery,
                    "event_id": event_id, "received_at_ms": received, "body_len": blen,
                    "frame_len": 8 + plen, "body": body})
        off += 8 + plen
    return out


def dist(values, digits=3):
    """n, p50, p90, p99, max, mean of `values` (rounded); the rest None when empty."""
    r = lambda v: None if v is None else round(v, digits)  # noqa: E731
    return {"n": len(values), "p50": r(percentile(values, 50)), "p90": r(percentile(values, 90)),
            "p99": r(percentile(values, 99)), "max": r(max(values) if values else None),
            "mean": r(sum(values) / len(values) if values else None)}


def series_stats(samples, fields, t0=None, t1=None):
    """{field: {"peak", "mean", "n"}} over the samples whose t is in [t0, t1] (None: open);
    a sample without the field (or with None) is left out for that field."""
    sel = [s for s in samples if (t0 is None or s["t"] >= t0) and (t1 is None or s["t"] <= t1)]
    out = {}
    for f in fields:
        v = [s[f] for s in sel if s.get(f) is not None]
        out[f] = {"peak": max(v) if v else None,
                  "mean": round(sum(v) / len(v), 1) if v else None, "n": len(v)}
    return out


def per_hour(nbytes, seconds):
    """Bytes per hour at the rate of `nbytes` in `seconds`."""
    return None if not seconds else nbytes * 3600.0 / seconds


def webhook_rpo(acks, seen):
    """acks: [(delivery id, ack time)]; seen: {delivery id: time}. Returns (delays in seconds of
    the acks that were seen, ids never seen)."""
    delays, missing = [], []
    for d, t in acks:
        if d in seen:
            delays.append(seen[d] - t)
        else:
            missing.append(d)
    return delays, missing


def sql_rpo(acks, snaps):
    """acks: [(tenant, ack time)]; snaps: {tenant: [(snapshot ms, time stored)]}. For each ack,
    the first snapshot of its tenant taken after the ack (ms > ack): (stored - ack) and
    (taken - ack). Returns (stored delays, taken delays, count without such a snapshot)."""
    stored, taken, missing = [], [], 0
    for tenant, t in acks:
        cands = [(ms, ts) for ms, ts in snaps.get(tenant, []) if ms > t * 1000]
        if not cands:
            missing += 1
            continue
        ms, ts = min(cands)
        stored.append(ts - t)
        taken.append(ms / 1000 - t)
    return stored, taken, missing


def parse_metrics(text):
    """Prometheus text -> {name: float} for series without labels."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#" or "{" in line:
            continue
        parts = line.split()
        if len(parts) >= 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def journal_entries(lines):
    """Journal lines -> [(time, op, bucket, key, bytes)]."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 5:
            out.append((float(parts[0]), parts[1], parts[2], parts[3], int(parts[4])))
    return out


def journal_stats(entries, prefix, t0=None, t1=None):
    """What was stored in [t0, t1]: snapshot, tombstone and log chunk PUTs and bytes, the span
    from the first to the last PUT and PUTs per second over it."""
    sel = [e for e in entries if e[1] == "PUT" and (t0 is None or e[0] >= t0) and (t1 is None or e[0] <= t1)]
    snaps = [e for e in sel if (k := parse_snapshot_key(e[3], prefix)) and k[2] != "gone"]
    tombs = [e for e in sel if (k := parse_snapshot_key(e[3], prefix)) and k[2] == "gone"]
    logs = [e for e in sel if parse_log_key(e[3], prefix)]
    span = (sel[-1][0] - sel[0][0]) if len(sel) > 1 else 0.0
    return {"snapshot_puts": len(snaps), "snapshot_bytes": sum(e[4] for e in snaps),
            "tombstone_puts": len(tombs), "log_chunk_puts": len(logs),
            "log_chunk_bytes": sum(e[4] for e in logs),
            "first_put": sel[0][0] if sel else None, "last_put": sel[-1][0] if sel else None,
            "put_span_s": round(span, 3),
            "puts_per_s": round((len(sel) - 1) / span, 1) if span > 0 else None,
            "deletes": sum(1 for e in entries if e[1] == "DEL" and (t0 is None or e[0] >= t0) and (t1 is None or e[0] <= t1))}


# ---- moto with a journal (and an index for prefix listings) ----


def install_index(s3m, s3u):
    """Keeps a sorted list of key names next to each moto key store and answers prefix
    listings from it (see the module doc)."""
    from bisect import bisect_left
    KS = s3u._VersionedKeyStore
    lock = threading.RLock()

    def names(store):
        n = store.__dict__.get("_bench_names")
        if n is None:
            n = sorted(dict.keys(store))
            store.__dict__["_bench_names"] = n
        return n

    def add(store, key):
        with lock:
            n = names(store)
            i = bisect_left(n, key)
            if i == len(n) or n[i] != key:
                n.insert(i, key)

    def remove(store, key):
        with lock:
            n = names(store)
            i = bisect_left(n, key)
            if i < len(n) and n[i] == key and not dict.__contains__(store, key):
                del n[i]

    orig_set, orig_setlist, orig_pop = KS.__setitem__, KS.setlist, KS.pop

    def setitem(self, key, value):
        orig_set(self, key, value)
        add(self, key)

    def setlist(self, key, list_):
        orig_setlist(self, key, list_)
        add(self, key)

    def pop(self, key):
        orig_pop(self, key)
        remove(self, key)

    def delitem(self, key):
        dict.__delitem__(self, key)
        remove(self, key)

    KS.__setitem__, KS.setlist, KS.pop, KS.__delitem__ = setitem, setlist, pop, delitem
    orig_list = s3m.S3Backend.list_objects

    def list_objects(self, bucket, prefix, delimiter, marker, max_keys):
        if not prefix or isinstance(bucket, s3m.FakeTableStorageBucket):
            return orig_list(self, bucket, prefix, delimiter, marker, max_keys)
        store = bucket.keys
        with lock:
            n = names(store)
            i = bisect_left(n, prefix)
            cand = []
            while i < len(n) and n[i].startswith(prefix):
                cand.append(n[i])
                i += 1
        key_results, folder_results = [], set()
        for name in cand:
            rest = name[len(prefix):]
            if delimiter and delimiter in rest:
                folder_results.add(f"{prefix}{rest.split(delimiter)[0]}{delimiter}")
                continue
            key = store.get(name)
            if key is not None and not isinstance(key, s3m.FakeDeleteMarker):
                key_results.append(key)
        folder_results = sorted(folder_results)
        if marker:
            limit = self._pagination_tokens.get(marker) or marker
            key_results = self._get_results_from_token(key_results, limit)
        if max_keys is not None:
            key_results, is_truncated, next_marker = self._truncate_result(key_results, max_keys)
        else:
            is_truncated, next_marker = False, None
        return key_results, folder_results, is_truncated, next_marker

    s3m.S3Backend.list_objects = list_objects
    return orig_list


def cmd_s3(port, journal, stock):
    import logging
    from moto import server
    from moto.s3 import models as s3m
    from moto.s3 import utils as s3u

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    lock = threading.Lock()
    jf = open(journal, "a", buffering=1)
    orig_put, orig_del = s3m.S3Backend.put_object, s3m.S3Backend.delete_object

    def put_object(self, bucket_name, key_name, value, *a, **kw):
        r = orig_put(self, bucket_name, key_name, value, *a, **kw)
        t = time.time()
        with lock:
            jf.write(f"{t:.6f} PUT {bucket_name} {key_name} {len(value)}\n")
        return r

    def delete_object(self, bucket_name, key_name, *a, **kw):
        r = orig_del(self, bucket_name, key_name, *a, **kw)
        with lock:
            jf.write(f"{time.time():.6f} DEL {bucket_name} {key_name} 0\n")
        return r

    s3m.S3Backend.put_object, s3m.S3Backend.delete_object = put_object, delete_object
    if not stock:
        install_index(s3m, s3u)
    server.main(["-H", "127.0.0.1", "-p", str(port)])


# ---- HTTP helpers ----


def http_req(url, method="GET", body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def metrics(url):
    s, b = http_req(url.rstrip("/") + "/metrics", timeout=10)
    if s != 200:
        raise RuntimeError(f"/metrics: {s}")
    return parse_metrics(b.decode())


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cpu_s():
    """CPU seconds the whole machine spent busy since boot (all cores; /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Conn:
    """One keep-alive HTTP/1.1 connection to host:port, reopened after an error."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port, self.c = u.hostname, u.port, None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                if self.c:
                    self.c.close()
                self.c = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


# ---- S3 reading (unsigned requests: moto does not check signatures) ----

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
# moto checks no signature, but answers an anonymous GET of a private object with 403: any
# Authorization header makes the request an authenticated one.
S3_AUTH = {"authorization": "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/s3/aws4_request, "
                            "SignedHeaders=host, Signature=00"}


def s3_list(endpoint, bucket, prefix, start_after=None):
    """[(key, size)] under prefix (after start_after), every page."""
    out, token = [], None
    while True:
        q = {"list-type": "2", "prefix": prefix}
        if token:
            q["continuation-token"] = token
        elif start_after:
            q["start-after"] = start_after
        s, b = http_req(f"{endpoint}/{bucket}?{urllib.parse.urlencode(q)}", headers=S3_AUTH)
        if s != 200:
            raise RuntimeError(f"list {prefix}: {s} {b[:200]!r}")
        root = ET.fromstring(b)
        for c in root.iter(NS + "Contents"):
            out.append((c.find(NS + "Key").text, int(c.find(NS + "Size").text)))
        if root.findtext(NS + "IsTruncated") != "true":
            return out
        token = root.findtext(NS + "NextContinuationToken")


def unzstd(data):
    try:
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except ImportError:
        return subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=True).stdout


# ---- subcommands ----


def cmd_bucket(endpoint, bucket):
    s, b = http_req(f"{endpoint}/{bucket}", method="PUT", body=b"", headers=S3_AUTH)
    if s not in (200, 409):
        raise SystemExit(f"create bucket {bucket}: {s} {b[:200]!r}")
    print(json.dumps({"bucket": bucket, "status": s}))


def cmd_wait(url, rounds, pending_zero, timeout):
    t0 = time.time()
    while True:
        try:
            m = metrics(url)
        except (OSError, RuntimeError):
            m = {}
        ok = (m.get("tenantd_backup_rounds_total", -1) >= rounds
              and (not pending_zero or m.get("tenantd_backup_pending_tenants", 1) == 0))
        if ok or time.time() - t0 > timeout:
            keep = {k: v for k, v in m.items() if k.startswith("tenantd_backup") or k.startswith("process_")}
            print(json.dumps({"waited_s": round(time.time() - t0, 2), "timed_out": not ok, **keep}))
            return 0 if ok else 1
        time.sleep(0.2)


def one_sample(pid, url, also=None):
    s = {"t": round(time.time(), 3), "machine_cpu_s": busy_cpu_s()}
    try:
        st = proc_status(pid)
        s.update(rss_kb=st.get("VmRSS"), hwm_kb=st.get("VmHWM"), threads=st.get("Threads"),
                 fds=fds(pid), cpu_s=proc_cpu_s(pid))
    except OSError:
        pass
    try:
        m = metrics(url)
        s.update(m_rss_bytes=m.get("process_resident_memory_bytes"), m_fds=m.get("process_open_fds"),
                 open_tenants=m.get("tenantd_open_tenants"),
                 pending=m.get("tenantd_backup_pending_tenants"),
                 rounds=m.get("tenantd_backup_rounds_total"),
                 uploads=m.get("tenantd_backup_uploads_total"),
                 uploaded_bytes=m.get("tenantd_backup_uploaded_bytes_total"),
                 log_chunks=m.get("tenantd_backup_log_chunks_total"),
                 ingest_log_bytes=m.get("tenantd_ingest_log_bytes"))
    except (OSError, RuntimeError):
        pass
    if also:
        try:
            s.update(also_rss_kb=proc_status(also).get("VmRSS"), also_cpu_s=proc_cpu_s(also))
        except OSError:
            pass
    return s


def cmd_idle(pid, url, samples, every):
    got = []
    for i in range(samples):
        if i:
            time.sleep(every)
        got.append(one_sample(pid, url))
    med = lambda f: percentile([g[f] for g in got if g.get(f) is not None], 50)  # noqa: E731
    mx = lambda f: max((g[f] for g in got if g.get(f) is not None), default=None)  # noqa: E731
    print(json.dumps({"samples": samples, "every_s": every,
                      "rss_kb": med("rss_kb"), "rss_kb_max": mx("rss_kb"),
                      "fds": med("fds"), "fds_max": mx("fds"),
                      "metric_rss_bytes": med("m_rss_bytes"), "metric_fds": med("m_fds"),
                      "threads": med("threads"), "open_tenants": med("open_tenants"),
                      "hwm_kb": mx("hwm_kb")}))


def cmd_sample(pid, url, out, every, also):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with open(out, "a", buffering=1) as f:
        while not stop.is_set():
            t = time.time()
            f.write(json.dumps(one_sample(pid, url, also)) + "\n")
            stop.wait(max(0.0, every - (time.time() - t)))


FIELDS = ["rss_kb", "hwm_kb", "fds", "m_rss_bytes", "m_fds", "threads", "open_tenants", "also_rss_kb"]


def cmd_series(path, t0, t1):
    samples = [json.loads(line) for line in open(path) if line.strip()]
    st = series_stats(samples, FIELDS, t0, t1)
    sel = [s for s in samples if (t0 is None or s["t"] >= t0) and (t1 is None or s["t"] <= t1)]
    cpu = lambda f: (round(sel[-1][f] - sel[0][f], 2)  # noqa: E731
                     if len(sel) > 1 and sel[0].get(f) is not None and sel[-1].get(f) is not None else None)
    print(json.dumps({"samples": len(sel), **{k: v for k, v in st.items()},
                      "cpu_s": cpu("cpu_s"), "also_cpu_s": cpu("also_cpu_s"),
                      "machine_cpu_s": cpu("machine_cpu_s"),
                      "rss_kb_first": sel[0].get("rss_kb") if sel else None,
                      "rss_kb_last": sel[-1].get("rss_kb") if sel else None,
                      "seconds": round(sel[-1]["t"] - sel[0]["t"], 1) if len(sel) > 1 else None}))


def cmd_setup_kv(url, token, prefix, width, count, sqlfile):
    sql = open(sqlfile).read()
    stmts = [s.strip() for s in re.sub(r"--[^\n]*", "", sql).split(";") if s.strip()]
    body = json.dumps({"baton": None, "requests": [{"type": "execute", "stmt": {"sql": s}} for s in stmts]
                       + [{"type": "close"}]}).encode()
    hdr = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    t0, bad = time.time(), []
    lock = threading.Lock()
    names = [f"{prefix}{i:0{width}d}" for i in range(count)]

    def worker(part):
        c = Conn(url)
        for t in part:
            try:
                s, b = c.request("POST", f"/t/{t}/v2/pipeline", body, hdr)
            except (OSError, http.client.HTTPException) as e:
                s, b = None, str(e).encode()
            if s != 200 or b'"type":"error"' in b:
                with lock:
                    bad.append(f"{t}: {s} {b[:200]!r}")

    ths = [threading.Thread(target=worker, args=(names[k::8],)) for k in range(8)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    print(json.dumps({"tenants": count, "seconds": round(time.time() - t0, 2), "failed": len(bad),
                      "examples": bad[:3]}))
    return 1 if bad else 0


WRITE_SQL = "INSERT INTO kv(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v, n = n + 1"


def cmd_probe(a):
    """See the module doc. Files: OUTDIR/probes.jsonl, OUTDIR/chunks.jsonl."""
    run = f"{int(time.time())}-{os.getpid()}"
    names = [f"{a.prefix}{i:0{a.width}d}" for i in range(a.count)]
    kp = key_prefix(a.key_prefix)
    rnd = random.Random(run)
    pf = open(os.path.join(a.outdir, "probes.jsonl"), "a", buffering=1)
    cf = open(os.path.join(a.outdir, "chunks.jsonl"), "a", buffering=1)
    lock = threading.Lock()
    acked_hooks = set()
    writes_done = threading.Event()
    counts = {"webhook_ok": 0, "webhook_bad": 0, "sql_ok": 0, "sql_bad": 0}

    def record(rec):
        with lock:
            pf.write(json.dumps(rec) + "\n")

    def paced(rate, fn):
        c, i, t0 = Conn(a.url), 0, time.time()
        while True:
            due = t0 + i / rate
            if due - t0 >= a.duration:
                return
            d = due - time.time()
            if d > 0:
                time.sleep(d)
            try:
                fn(c, i)
            except Exception as e:  # noqa: BLE001 - recorded, the probe goes on
                record({"kind": "error", "error": str(e), "t": time.time()})
            i += 1

    def hook(c, i):
        did = f"rpo-{run}-{i}"
        t = rnd.choice(names)
        body = json.dumps({"rpo": did, "pad": "x" * 200}).encode()
        t0 = time.time()
        s, b = c.request("POST", f"/t/{t}/hooks/rpo", body,
                         {"content-type": "application/json", "idempotency-key": did})
        t1 = time.time()
        ok = s == 202
        with lock:
            counts["webhook_ok" if ok else "webhook_bad"] += 1
            if ok:
                acked_hooks.add(did)
        record({"kind": "webhook", "id": did, "tenant": t, "t_send": t0, "t_ack": t1, "status": s,
                "ok": ok, "event_id": json.loads(b).get("id") if ok else None})

    def sql(c, i):
        t = rnd.choice(names)
        v = f"rpo-{run}-{i}-".ljust(100, "r")
        body = json.dumps({"baton": None, "requests": [
            {"type": "execute", "stmt": {"sql": WRITE_SQL, "args": [
                {"type": "integer", "value": str(rnd.randint(1, 100))}, {"type": "text", "value": v}]}},
            {"type": "close"}]}).encode()
        t0 = time.time()
        s, b = c.request("POST", f"/t/{t}/v2/pipeline", body,
                         {"content-type": "application/json", "authorization": f"Bearer {a.token}"})
        t1 = time.time()
        ok = s == 200 and b'"type":"error"' not in b
        with lock:
            counts["sql_ok" if ok else "sql_bad"] += 1
        record({"kind": "sql", "tenant": t, "t_send": t0, "t_ack": t1, "status": s, "ok": ok})

    seen_hooks = set()
    stats = {"chunks": 0, "records": 0, "frame_bytes": 0, "body_bytes": 0, "compressed_bytes": 0,
             "lists": 0, "list_s_max": 0.0}

    def poll():
        existing = s3_list(a.s3, a.bucket, kp + "log/")
        last = existing[-1][0] if existing else None
        end_by = None
        while True:
            tl0 = time.time()
            try:
                new = s3_list(a.s3, a.bucket, kp + "log/", start_after=last)
            except (OSError, RuntimeError) as e:
                new = []
                print(f"list failed: {e}", file=sys.stderr)
            tl1 = time.time()
            stats["lists"] += 1
            stats["list_s_max"] = max(stats["list_s_max"], tl1 - tl0)
            for key, size in new:
                if parse_log_key(key, a.key_prefix) is None:
                    continue
                last = key
                try:
                    s, b = http_req(f"{a.s3}/{a.bucket}/{urllib.parse.quote(key)}", headers=S3_AUTH)
                    if s != 200:
                        raise RuntimeError(f"GET answered {s}")
                    recs = decode_frames(unzstd(b))
                except Exception as e:  # noqa: BLE001 - reported, the chunk counts as empty
                    print(f"chunk {key}: {e}", file=sys.stderr)
                    recs = []
                mine = [r["delivery_id"] for r in recs
                        if r["delivery_id"] and r["delivery_id"].startswith(f"rpo-{run}-")]
                with lock:
                    seen_hooks.update(mine)
                stats["chunks"] += 1
                stats["records"] += len(recs)
                stats["frame_bytes"] += sum(r["frame_len"] for r in recs)
                stats["body_bytes"] += sum(r["body_len"] for r in recs)
                stats["compressed_bytes"] += size
                cf.write(json.dumps({"key": key, "bytes": size, "t_list_start": tl0, "t_seen": tl1,
                                     "records": len(recs),
                                     "frame_bytes": sum(r["frame_len"] for r in recs),
                                     "body_bytes": sum(r["body_len"] for r in recs),
                                     "first_received_ms": min((r["received_at_ms"] for r in recs), default=None),
                                     "last_received_ms": max((r["received_at_ms"] for r in recs), default=None),
                                     "probe_ids": mine}) + "\n")
            if writes_done.is_set():
                if end_by is None:
                    end_by = time.time() + a.tail
                with lock:
                    all_seen = acked_hooks <= seen_hooks
                if all_seen or time.time() > end_by:
                    return
            time.sleep(max(0.0, a.poll - (time.time() - tl0)))

    t_start = time.time()
    poller = threading.Thread(target=poll)
    poller.start()
    writers = [threading.Thread(target=paced, args=(a.webhook_rate, hook))] if a.webhook_rate > 0 else []
    if a.sql_rate > 0:
        writers.append(threading.Thread(target=paced, args=(a.sql_rate, sql)))
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    t_writes_end = time.time()
    writes_done.set()
    poller.join()
    import resource
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"run": run, "t_start": t_start, "t_writes_end": t_writes_end, "t_end": time.time(),
                      **counts, "probe_hooks_seen": len(acked_hooks & seen_hooks), **stats,
                      "cpu_s": round(ru.ru_utime + ru.ru_stime, 2)}))


def load_jsonl(path):
    return [json.loads(line) for line in open(path) if line.strip()] if os.path.exists(path) else []


def cmd_rpo(outdir, journal, prefix):
    probes = load_jsonl(os.path.join(outdir, "probes.jsonl"))
    chunks = load_jsonl(os.path.join(outdir, "chunks.jsonl"))
    entries = journal_entries(open(journal)) if os.path.exists(journal) else []
    stored_at = {e[3]: e[0] for e in entries if e[1] == "PUT"}
    seen_list, seen_put = {}, {}
    for c in chunks:
        for d in c["probe_ids"]:
            seen_list.setdefault(d, c["t_seen"])
            if c["key"] in stored_at:
                seen_put.setdefault(d, stored_at[c["key"]])
    hooks = [(p["id"], p["t_ack"]) for p in probes if p["kind"] == "webhook" and p["ok"]]
    d_list, missing = webhook_rpo(hooks, seen_list)
    d_put, _ = webhook_rpo(hooks, seen_put)
    snaps = {}
    for t, op, _, key, _ in entries:
        k = parse_snapshot_key(key, prefix) if op == "PUT" else None
        if k and k[2] != "gone":
            snaps.setdefault(k[0], []).append((k[1], t))
    sqls = [(p["tenant"], p["t_ack"]) for p in probes if p["kind"] == "sql" and p["ok"]]
    s_stored, s_taken, s_missing = sql_rpo(sqls, snaps)
    print(json.dumps({
        "webhook_acked": len(hooks), "webhook_not_in_bucket": len(missing),
        "webhook_rpo_listed_s": dist(d_list), "webhook_rpo_stored_s": dist(d_put),
        "sql_acked": len(sqls), "sql_not_in_bucket": s_missing,
        "sql_rpo_stored_s": dist(s_stored), "sql_rpo_snapshot_taken_s": dist(s_taken),
        "probe_errors": sum(1 for p in probes if p["kind"] == "error" or not p.get("ok", True)),
        "webhook_ack_latency_ms": dist([1000 * (p["t_ack"] - p["t_send"]) for p in probes
                                        if p["kind"] == "webhook" and p["ok"]], 1),
        "sql_ack_latency_ms": dist([1000 * (p["t_ack"] - p["t_send"]) for p in probes
                                    if p["kind"] == "sql" and p["ok"]], 1)}))


def cmd_journal(journal, prefix, t0, t1):
    entries = journal_entries(open(journal)) if os.path.exists(journal) else []
    print(json.dumps(journal_stats(entries, prefix, t0, t1)))


# ---- summary ----


def mb(v):
    return "?" if v is None else f"{v / 1e6:.1f} MB"


def kbmb(v):
    return "?" if v is None else f"{v / 1000:.1f} MB"


def num(v, fmt="{:,.0f}"):
    return "?" if v is None else fmt.format(v)


def g(r, *path):
    for p in path:
        if not isinstance(r, dict) or p not in r:
            return None
        r = r[p]
    return r


def cmd_summary(path):
    rows = load_jsonl(path)
    by = {}
    for r in rows:
        by[(r.get("phase"), r.get("backup"))] = r
    cfg = by.get(("config", None), {})
    pr = by.get(("provision", None), {})
    f2 = lambda v: num(v, "{:.2f}")  # noqa: E731
    f1 = lambda v: num(v, "{:.1f}")  # noqa: E731
    print(f"N = {num(cfg.get('tenants'))} tenants ({mb(pr.get('data_bytes'))} on disk, provisioned in "
          f"{f1(pr.get('seconds'))} s), {num(cfg.get('active'))} active ({cfg.get('active_pct')} %), each load phase "
          f"{cfg.get('duration')}, backup_interval {cfg.get('backup_interval')}, backup_log_interval "
          f"{cfg.get('backup_log_interval')}, S3: moto {cfg.get('moto')} on 127.0.0.1 "
          f"({'stock listing' if cfg.get('s3_stock') else 'indexed prefix listing'}), tenantd at {cfg.get('tenantd_commit')}.")
    print()
    print("| measure | backup off | backup on | method |")
    print("|---|---|---|---|")
    io_, ia, ir = by.get(("idle", "off"), {}), by.get(("idle", "on-after-first-round"), {}), by.get(("idle", "on-restarted"), {})
    print(f"| idle RSS (/proc VmRSS, median) | {kbmb(io_.get('rss_kb'))} | {kbmb(ir.get('rss_kb'))} restarted; "
          f"{kbmb(ia.get('rss_kb'))} after the first round + {cfg.get('idle_rounds')} idle rounds | "
          f"{io_.get('samples')} samples {io_.get('every_s')} s apart, no requests |")
    print(f"| idle RSS (/metrics process_resident_memory_bytes) | {mb(io_.get('metric_rss_bytes'))} | "
          f"{mb(ir.get('metric_rss_bytes'))} restarted; {mb(ia.get('metric_rss_bytes'))} after the first round | same samples |")
    print(f"| idle fds (/proc/PID/fd; /metrics process_open_fds) | {num(io_.get('fds'))}; {num(io_.get('metric_fds'))} | "
          f"{num(ir.get('fds'))}; {num(ir.get('metric_fds'))} restarted; {num(ia.get('fds'))}; {num(ia.get('metric_fds'))} after the first round | |")
    print(f"| idle threads | {num(io_.get('threads'))} | {num(ir.get('threads'))} | /proc |")
    lo, la = by.get(("load", "off"), {}), by.get(("load", "on"), {})
    for label, key in (("RSS when the load starts / ends", None),
                       ("peak RSS under load (1 s samples)", ("series", "rss_kb", "peak")),
                       ("mean RSS under load", ("series", "rss_kb", "mean")),
                       ("VmHWM at the end of the load (since the server started)", ("hwm_kb",))):
        if key is None:
            print(f"| {label} | {kbmb(g(lo, 'series', 'rss_kb_first'))} / {kbmb(g(lo, 'series', 'rss_kb_last'))} | "
                  f"{kbmb(g(la, 'series', 'rss_kb_first'))} / {kbmb(g(la, 'series', 'rss_kb_last'))} | /proc; backup on: after the start round |")
            continue
        print(f"| {label} | {kbmb(g(lo, *key))} | {kbmb(g(la, *key))} | /proc |")
    print(f"| peak / mean fds under load | {num(g(lo, 'series', 'fds', 'peak'))} / {num(g(lo, 'series', 'fds', 'mean'))} | "
          f"{num(g(la, 'series', 'fds', 'peak'))} / {num(g(la, 'series', 'fds', 'mean'))} | /proc/PID/fd |")
    print(f"| throughput, acknowledged webhooks + SQL writes | {num(lo.get('rps_ok'), '{:,.0f}')}/s | {num(la.get('rps_ok'), '{:,.0f}')}/s | "
          f"`tenantd bench load --workload mixed:1:0:1`, {cfg.get('conns')} connections (closed loop), uniform over the active tenants |")
    for op in ("webhook", "sql-write"):
        print(f"| {op}: answers, p50 / p99 | {num(g(lo, 'ops', op, 'count'))}, {f2(g(lo, 'ops', op, 'p50_ms'))} / "
              f"{f2(g(lo, 'ops', op, 'p99_ms'))} ms | {num(g(la, 'ops', op, 'count'))}, "
              f"{f2(g(la, 'ops', op, 'p50_ms'))} / {f2(g(la, 'ops', op, 'p99_ms'))} ms | |")
    print(f"| non-2xx / SQL errors / connection errors | {num(lo.get('non_2xx'))} / {num(lo.get('sql_errors'))} / {num(lo.get('errors'))} "
          f"| {num(la.get('non_2xx'))} / {num(la.get('sql_errors'))} / {num(la.get('errors'))} | |")
    print(f"| CPU s during the load: tenantd / load generator / S3 server / RPO probes / whole machine | "
          f"{f1(g(lo, 'series', 'cpu_s'))} / {f1(lo.get('loadgen_cpu_s'))} / - / - / {f1(g(lo, 'series', 'machine_cpu_s'))} | "
          f"{f1(g(la, 'series', 'cpu_s'))} / {f1(la.get('loadgen_cpu_s'))} / {f1(g(la, 'series', 'also_cpu_s'))} / "
          f"{f1(la.get('probe_cpu_s'))} / {f1(g(la, 'series', 'machine_cpu_s'))} | /proc; whole machine from /proc/stat "
          f"(2 cores: {f1(2 * (g(lo, 'series', 'seconds') or 0))} CPU s available); the machine is shared |")
    print(f"| tenantd CPU per acknowledged request | {num(1e6 * g(lo, 'series', 'cpu_s') / lo['ok'] if g(lo, 'series', 'cpu_s') and lo.get('ok') else None)} µs | "
          f"{num(1e6 * g(la, 'series', 'cpu_s') / la['ok'] if g(la, 'series', 'cpu_s') and la.get('ok') else None)} µs | |")
    print(f"| load average at the end | {lo.get('loadavg', '?')} | {la.get('loadavg', '?')} | |")
    if lo.get("pool") or la.get("pool"):
        print(f"| pool during the load: opens / evictions / tidies | {num(g(lo, 'pool', 'tenant_opens_total'))} / "
              f"{num(g(lo, 'pool', 'evictions_total'))} / {num(g(lo, 'pool', 'tidies_total'))} | {num(g(la, 'pool', 'tenant_opens_total'))} / "
              f"{num(g(la, 'pool', 'evictions_total'))} / {num(g(la, 'pool', 'tidies_total'))} | /metrics deltas |")
        print(f"| tenant files with a -wal left when the server started | {num(lo.get('wal_left_at_start'))} | {num(la.get('wal_left_at_start'))} | find DATA/tenants -name '*.db-wal' |")
    if la.get("start_round"):
        sr = la["start_round"]
        print(f"| the backup-on server's start round (before the load) | | {num(sr.get('uploaded'))} uploaded, {num(sr.get('unchanged'))} unchanged | server log |")
    print()
    fr = by.get(("first_round", "on"), {})
    up = fr.get("tenantd_backup_uploads_total")
    span = g(fr, "journal", "put_span_s")
    print("| first backup round (freshly provisioned tenants, empty bucket) | |")
    print("|---|---|")
    print(f"| tenants uploaded | {num(up)}{' (TIMED OUT)' if fr.get('timed_out') else ''} |")
    print(f"| server start to round done (start scan included) | {f1(fr.get('waited_s'))} s |")
    print(f"| first to last PUT (S3 journal) | {f1(span)} s, {f1(g(fr, 'journal', 'puts_per_s'))} PUT/s; "
          f"{num(span * 4000 / up if span and up else None, '{:.1f}')} ms per tenant per worker (backup_parallel 4) |")
    print(f"| snapshot bytes before / after compression | {mb(fr.get('tenantd_backup_snapshot_bytes_total'))} / "
          f"{mb(fr.get('tenantd_backup_uploaded_bytes_total'))} |")
    print(f"| tenantd peak RSS / peak fds / CPU during the round | {kbmb(g(fr, 'peak', 'rss_kb', 'peak'))} / "
          f"{num(g(fr, 'peak', 'fds', 'peak'))} / {f1(g(fr, 'peak', 'cpu_s'))} s |")
    print(f"| S3 server RSS after the round / CPU during it | {kbmb(fr.get('s3_rss_kb'))} / {f1(fr.get('s3_cpu_s'))} s |")
    print(f"| uploads in the {cfg.get('idle_rounds')} idle rounds after it | {num(ia.get('uploads_in_idle_rounds'))} |")
    print(f"| restarted with backup on, nothing changed: start to first round done (start scan of every file) | "
          f"{f2(ir.get('start_to_first_round_done_s'))} s, {num(ir.get('first_round_uploads'))} uploads"
          f"{'' if not ir.get('report') else ', ' + num(g(ir, 'report', 'unchanged')) + ' snapshotted unchanged'} |")
    if fr.get("report") or ia.get("wal_left_after_stop") is not None:
        print(f"| tenant files with a -wal left after the first round's server stopped | {num(ia.get('wal_left_after_stop'))} |")
    print()
    b = by.get(("bytes", "on"), {})
    print(f"| bytes during the backup-on load ({num(b.get('seconds'), '{:.0f}')} s) | bytes | per hour |")
    print("|---|---|---|")
    for label, k in (("uploaded: snapshots (tenantd_backup_uploaded_bytes_total delta)", "uploaded_snapshot_bytes"),
                     ("uploaded: log chunks (S3 journal)", "uploaded_log_bytes"),
                     ("uploaded: total", "uploaded_total_bytes"),
                     ("snapshots before compression (tenantd_backup_snapshot_bytes_total delta)", "snapshot_raw_bytes"),
                     ("written: payload acknowledged (webhook bodies in the shipped log + 100 B per SQL write)", "payload_bytes"),
                     ("written: ingest log frames shipped (decoded chunks)", "log_frame_bytes"),
                     (("written: the active tenants' .db files' growth (server stopped: WALs checkpointed)"
                       if b.get("growth_method") == "active_db" else
                       "written: growth of DATA/tenants (du -sb; counts -wal/-shm files removed meanwhile)"), "data_dir_growth_bytes")):
        print(f"| {label} | {mb(b.get(k))} | {mb(per_hour(b[k], b.get('seconds')) if b.get(k) is not None else None)} |")
    for label, k in (("PUT requests: snapshots", "uploads"), ("PUT requests: log chunks", "log_chunks")):
        print(f"| {label} | {num(b.get(k))} | {num(per_hour(b[k], b.get('seconds')) if b.get(k) is not None else None)} |")
    print(f"| acknowledged: SQL writes / webhook records shipped | {num(b.get('sql_writes_ok'))} / {num(b.get('log_records'))} | |")
    print()
    rp = by.get(("rpo", "on"), {})
    print("| observed RPO (probes during the backup-on load) | n | p50 | p90 | p99 | max | not in bucket |")
    print("|---|---|---|---|---|---|---|")
    for label, k, miss in (("webhook: 2xx -> its log chunk listed (listing every 200 ms)", "webhook_rpo_listed_s", "webhook_not_in_bucket"),
                           ("webhook: 2xx -> its log chunk stored (S3 journal)", "webhook_rpo_stored_s", "webhook_not_in_bucket"),
                           ("SQL: commit ack -> first later snapshot stored (S3 journal)", "sql_rpo_stored_s", "sql_not_in_bucket"),
                           ("SQL: commit ack -> first later snapshot taken (the key's ms)", "sql_rpo_snapshot_taken_s", "sql_not_in_bucket")):
        d = rp.get(k) or {}
        f = lambda v: "?" if v is None else f"{v:.2f} s"  # noqa: E731
        print(f"| {label} | {num(d.get('n'))} | {f(d.get('p50'))} | {f(d.get('p90'))} | {f(d.get('p99'))} | {f(d.get('max'))} | {num(rp.get(miss))} |")
    print()
    r1, ra = by.get(("restore_one", "on"), {}), by.get(("restore_all", "on"), {})
    print("| restore | time | result |")
    print("|---|---|---|")
    print(f"| `tenantd restore {r1.get('tenant')} --to DIR` | {f2(r1.get('seconds'))} s | "
          f"{num(r1.get('bytes'))} bytes, {num(r1.get('events'))} events"
          f"{'' if r1.get('live_events') is None else ' (live file: ' + num(r1.get('live_events')) + ')'}"
          f"{'' if r1.get('kv_writes') is None else ', kv writes ' + num(r1.get('kv_writes')) + ' (live: ' + num(r1.get('live_kv_writes')) + ')'}"
          f", exit {r1.get('exit')} |")
    print(f"| `tenantd restore --all` into a fresh data dir | {f1(ra.get('seconds'))} s"
          f"{' (stopped at the time limit)' if ra.get('timed_out') else ''} | {num(ra.get('restored'))} of "
          f"{num(ra.get('bucket_tenants'))} restored, {num(ra.get('skipped'))} skipped, {num(ra.get('failed'))} failed, "
          f"{num(ra.get('files'))} files; {f1(ra.get('per_s'))} tenants/s; S3 server CPU {f1(ra.get('s3_cpu_s'))} s; "
          f"restore process {ra.get('time')}; exit {ra.get('exit')} |")
    print()
    old = (f"idle off; backup on against the empty bucket (first round), then {cfg.get('idle_rounds')} idle "
           "rounds and idle samples in the same process; backup on restarted (nothing to upload) and idle "
           "samples; load off; load on; restores")
    print(METHOD.format(phases=cfg.get("phases") or old,
                        **{k: cfg.get(k) for k in ("duration", "backup_interval", "backup_log_interval",
                                                   "idle_rounds", "probe_webhook_rate", "probe_sql_rate", "conns")}))


METHOD = """Method (bench/backup.sh; raw data in results.jsonl, samples-*.jsonl, rpo/, s3-journal.txt):
- One data dir throughout. `tenantd bench provision` writes N template tenants; the active ones
  (tenant0000000 …) get bench/sql/0001_kv.sql over SQL. Phases, in order: {phases}.
- Idle: 6 samples 5 s apart of /proc/PID/status VmRSS, /proc/PID/fd and /metrics, median.
- Load: {duration} of `tenantd bench load --workload mixed:1:0:1 --dist uniform --concurrency
  {conns}` over the active tenants, under nice -n 10, against a freshly started server (backup on:
  after its start round has finished); RSS and fds sampled every second. With backup on, RPO
  probes run at the same time: {probe_webhook_rate} webhooks/s (each with a unique
  Idempotency-Key) and {probe_sql_rate} SQL upserts/s to random active tenants, every
  acknowledgement timed.
- Webhook RPO: the bucket's `<prefix>/log/` is listed every 200 ms; each new chunk is fetched,
  zstd-decompressed and its frames decoded (crates/ingest/src/record.rs) to find the probes'
  delivery ids. "listed" = the end of the first listing that showed the chunk - the probe's 2xx;
  "stored" = the moment the S3 server stored the chunk (its journal, written by the same process
  when the PUT is stored, before it answers) - the 2xx.
- SQL RPO: for each acknowledged probe write, the first snapshot of its tenant whose key's ms
  (taken just before the snapshot starts) is later than the ack: "stored" = when the S3 server
  stored it - the ack; "taken" = the key's ms - the ack.
- Bytes: uploaded = tenantd_backup_uploaded_bytes_total (snapshots, compressed) and the log
  chunks' sizes from the S3 journal, over the load window; written = the bodies of the webhook
  records shipped in that window (decoded) + 100 bytes per acknowledged SQL write (the value
  written), the frames of those records (what the ingest log appended), and the growth of
  the active tenants' .db files (before the server started to after it stopped: WALs
  checkpointed; includes the rounds after the load). Per hour = x 3600 / window.
- Restore: `tenantd restore TENANT --to DIR` (reads every log chunk of the prefix first) and
  `tenantd restore --all --data FRESH_DIR` (backup_parallel 4), with the TENANTD_BACKUP_*
  variables; counted from its output lines and the files written.
- S3: moto's server in a wrapper (bench/lib/backup_bench.py `s3`) that journals every stored
  object and, unless S3_STOCK=1, answers prefix listings from a sorted index (moto scans every
  key of the bucket for each listing; tenantd lists a tenant's snapshots after each upload and
  before each restore, which against stock moto makes a round or restore of N tenants O(N^2))."""


# ---- main ----


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description="bench/backup.sh's helper (see the module doc)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("s3"); s.add_argument("port", type=int); s.add_argument("journal"); s.add_argument("--stock", action="store_true")
    s = sub.add_parser("bucket"); s.add_argument("endpoint"); s.add_argument("bucket")
    s = sub.add_parser("metrics"); s.add_argument("url")
    s = sub.add_parser("wait"); s.add_argument("url"); s.add_argument("--rounds", type=float, default=0)
    s.add_argument("--pending-zero", action="store_true"); s.add_argument("--timeout", type=float, default=600)
    s = sub.add_parser("idle"); s.add_argument("pid", type=int); s.add_argument("url")
    s.add_argument("--samples", type=int, default=6); s.add_argument("--every", type=float, default=5)
    s = sub.add_parser("sample"); s.add_argument("pid", type=int); s.add_argument("url"); s.add_argument("out")
    s.add_argument("--every", type=float, default=1.0); s.add_argument("--also", type=int)
    s = sub.add_parser("series"); s.add_argument("path"); s.add_argument("--from", dest="t0", type=float)
    s.add_argument("--to", dest="t1", type=float)
    s = sub.add_parser("setup-kv")
    for n in ("url", "token", "prefix"):
        s.add_argument(n)
    s.add_argument("width", type=int); s.add_argument("count", type=int); s.add_argument("sqlfile")
    s = sub.add_parser("probe")
    for n in ("url", "token", "prefix"):
        s.add_argument(n)
    s.add_argument("width", type=int); s.add_argument("count", type=int); s.add_argument("outdir")
    s.add_argument("--duration", type=float, required=True); s.add_argument("--webhook-rate", type=float, default=10)
    s.add_argument("--sql-rate", type=float, default=5); s.add_argument("--s3", required=True)
    s.add_argument("--bucket", required=True); s.add_argument("--key-prefix", default="")
    s.add_argument("--tail", type=float, default=60); s.add_argument("--poll", type=float, default=0.2)
    s = sub.add_parser("rpo"); s.add_argument("outdir"); s.add_argument("journal"); s.add_argument("prefix")
    s = sub.add_parser("journal"); s.add_argument("journal"); s.add_argument("prefix")
    s.add_argument("--from", dest="t0", type=float); s.add_argument("--to", dest="t1", type=float)
    s = sub.add_parser("summary"); s.add_argument("path")
    a = p.parse_args(argv[1:])
    if a.cmd == "s3":
        return cmd_s3(a.port, a.journal, a.stock)
    if a.cmd == "bucket":
        return cmd_bucket(a.endpoint, a.bucket)
    if a.cmd == "metrics":
        print(json.dumps(metrics(a.url)))
        return 0
    if a.cmd == "wait":
        return cmd_wait(a.url, a.rounds, a.pending_zero, a.timeout)
    if a.cmd == "idle":
        return cmd_idle(a.pid, a.url, a.samples, a.every)
    if a.cmd == "sample":
        return cmd_sample(a.pid, a.url, a.out, a.every, a.also)
    if a.cmd == "series":
        return cmd_series(a.path, a.t0, a.t1)
    if a.cmd == "setup-kv":
        return cmd_setup_kv(a.url, a.token, a.prefix, a.width, a.count, a.sqlfile)
    if a.cmd == "probe":
        return cmd_probe(a)
    if a.cmd == "rpo":
        return cmd_rpo(a.outdir, a.journal, a.prefix)
    if a.cmd == "journal":
        return cmd_journal(a.journal, a.prefix, a.t0, a.t1)
    if a.cmd == "summary":
        return cmd_summary(a.path)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
