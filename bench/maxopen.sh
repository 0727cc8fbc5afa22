#!/usr/bin/env bash
# How tenantd's ingest rate depends on the open-tenant cap (--max-open), on tmpfs (CPU-bound):
# one short wrk run per (workload, cap), server pinned to SERVER_CPU, wrk to WRK_CPU.
#   bench/maxopen.sh OUTDIR      (env: CAPS="64 256 1024 16384", WORKLOADS, DURATION=10s, MODE=crash,
#                                 CONNS=64, BENCH_DIR for the tmpfs mount point)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: maxopen.sh OUTDIR}
TENANTD=${TENANTD:-$ROOT/target-bench/release/tenantd}
CAPS=${CAPS:-"64 256 1024 16384"}; WORKLOADS=${WORKLOADS:-"zipf:10000 uniform:100000"}
DURATION=${DURATION:-10s}; CONNS=${CONNS:-64}; MODE=${MODE:-crash}; PORT=${PORT:-3953}; SERVER_CPU=${SERVER_CPU:-0}; WRK_CPU=${WRK_CPU:-1}
HZ=$(getconf CLK_TCK)
mkdir -p "$OUT"
D=${BENCH_DIR:-/tmp/tenantd-bench-maxopen}; mkdir -p "$D"; mount -t tmpfs -o size=6g tmpfs "$D"
trap '[[ -n ${PID:-} ]] && kill $PID 2>/dev/null; wait 2>/dev/null; umount "$D"; rmdir "$D"' EXIT
for wl in $WORKLOADS; do
  dist=${wl%%:*}; T=${wl##*:}
  for cap in $CAPS; do
    data=$D/data; rm -rf "$data"
    "$TENANTD" bench provision --data "$data" --count "$T" >/dev/null
    TENANTD_ADMIN_TOKEN=bench-admin-token taskset -c "$SERVER_CPU" "$TENANTD" serve --listen "127.0.0.1:$PORT" --data "$data" \
      --durability "$MODE" --idle-ttl 10s --max-open "$cap" >/dev/null 2>&1 & PID=$!
    for _ in $(seq 1 100); do [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz") != 000 ]] && break; sleep 0.1; done
    c0=$(awk '{print $14+$15}' /proc/$PID/stat)
    taskset -c "$WRK_CPU" wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$ROOT/bench/wrk/ingest.lua" "http://127.0.0.1:$PORT" -- "$T" "$dist" 1.1 >"$OUT/$dist$T-cap$cap.wrk"
    c1=$(awk '{print $14+$15}' /proc/$PID/stat); hwm=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
    curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^tenantd_(tenant_opens_total|evictions_total|open_waits_total|sqlite_memory_bytes|open_tenants|rejects_total)[ {]' >"$OUT/$dist$T-cap$cap.metrics"
    kill $PID; wait $PID 2>/dev/null || true; PID=
    python3 - "$OUT/$dist$T-cap$cap" "$dist" "$T" "$cap" "$(( c1 - c0 ))" "$HZ" "$hwm" <<'PY' | tee -a "$OUT/maxopen.txt"
import json, sys
base, dist, T, cap, ticks, hz, hwm = sys.argv[1:]
w = json.loads(open(base + ".wrk").read().split("RESULT_JSON ", 1)[1].splitlines()[0])
m = dict(l.rsplit(" ", 1) for l in open(base + ".metrics").read().splitlines())
n = w["requests"]
bad = w["err_status"]
rejects = ", ".join(k.split('"')[1] + " " + v for k, v in m.items() if k.startswith("tenantd_rejects_total"))
print(f"{dist} T={T} max_open={cap}: {w['rps']:.0f} req/s ({(n - bad) / w['duration_s']:.0f} 2xx/s, {bad} non-2xx, {w['err_timeout']} timeouts)  "
      f"p50 {w['lat_p50_ms']:.2f} ms  p99 {w['lat_p99_ms']:.2f} ms  "
      f"cold opens {int(m['tenantd_tenant_opens_total']) / n:.0%} of requests  evictions {int(m['tenantd_evictions_total'])}  "
      f"waited for a place {m.get('tenantd_open_waits_total', 'n/a')}  "
      f"rejects [{rejects}]  server CPU {1e6 * int(ticks) / int(hz) / n:.0f} us/req  "
      f"peak RSS {int(hwm) / 1024:.0f} MiB  SQLite heap {int(m['tenantd_sqlite_memory_bytes']) / 2**20:.0f} MiB with {m['tenantd_open_tenants']} open")
PY
  done
done
