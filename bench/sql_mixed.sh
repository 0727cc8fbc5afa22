#!/usr/bin/env bash
# What `locking = "exclusive"` costs reads of hot tenants: SQL point reads and writes to the
# same few tenants at once. In `shared` locking a read runs on a reader connection beside the
# writer; in `exclusive` it waits for the tenant's one connection (a write's commit, its fsync
# in `fsync` mode, included).
#
#   bench/sql_mixed.sh                                   # T=10, fsync and crash, ~3 min
#   T=100 DURATIONS=5s LOCKINGS=exclusive MODES=crash bench/sql_mixed.sh
#
# Per (durability, locking): a fresh data dir on the real disk with T tenants and the kv table
# of bench/sql/ (`tenantd bench provision` + `tenantd migrate`), tenantd pinned to SERVER_CPU,
# then two wrk runs at once, both pinned to WRK_CPU, CONNS connections each, tenant ~ Zipf(1.1):
# `bench/wrk/hrana.lua` reads and writes. One JSON line per run in results.jsonl: both wrk
# RESULT_JSON objects (req/s, p50/p99). The writes are not checked here (bench/sql.sh does that).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench
TENANTD=${TENANTD:-$ROOT/target/release/tenantd}
T=${T:-10}; MODES=${MODES:-"fsync crash"}; LOCKINGS=${LOCKINGS:-"shared exclusive"}
DURATION=${DURATION:-20s}; CONNS=${CONNS:-32}
PORT=${PORT:-3961}; SERVER_CPU=${SERVER_CPU:-0}; WRK_CPU=${WRK_CPU:-1}
DATA_ROOT=${DATA_ROOT:-/tmp/tenantd-sql-mixed}
OUT=${OUT:-$HERE/results/sql-mixed-$(date +%Y%m%d-%H%M%S)}
TOKEN=bench-admin-token

mkdir -p "$OUT"
[[ -x $TENANTD ]] || { echo "no tenantd binary at $TENANTD" >&2; exit 1; }
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then echo "port $PORT already in use" >&2; exit 1; fi
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null || true' EXIT
{ nproc; uname -r; date -u; cut -d' ' -f1-3 /proc/loadavg; } > "$OUT/machine.txt"

wrk_run() { # label op
  taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$HERE/wrk/hrana.lua" \
    "http://127.0.0.1:$PORT" -- "$T" zipf 1.1 "$2" > "$OUT/$1.wrk.txt" 2>&1
}

for mode in $MODES; do
  for locking in $LOCKINGS; do
    label=$mode-$locking-t$T
    data=$DATA_ROOT/$label
    rm -rf "$data"; mkdir -p "$data"
    "$TENANTD" bench provision --data "$data" --count "$T" > /dev/null
    "$TENANTD" migrate --dir "$HERE/sql" --data "$data" --jobs 2 > "$OUT/$label.migrate.txt"
    TENANTD_ADMIN_TOKEN=$TOKEN taskset -c "$SERVER_CPU" "$TENANTD" serve --listen "127.0.0.1:$PORT" \
      --data "$data" --durability "$mode" --locking "$locking" > "$OUT/$label.server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.05; done
    sync; sleep 1
    TOKEN=$TOKEN wrk_run "$label-read" read & r=$!
    TOKEN=$TOKEN wrk_run "$label-write" write & w=$!
    wait $r $w
    kill -TERM $pid; wait $pid 2>/dev/null || true; pid=
    read=$(grep RESULT_JSON "$OUT/$label-read.wrk.txt" | sed 's/^RESULT_JSON //')
    write=$(grep RESULT_JSON "$OUT/$label-write.wrk.txt" | sed 's/^RESULT_JSON //')
    line=$(printf '{"durability":"%s","locking":"%s","tenants":%d,"read":%s,"write":%s,"loadavg":"%s"}' \
      "$mode" "$locking" "$T" "$read" "$write" "$(cut -d' ' -f1-3 /proc/loadavg)")
    echo "$line" | tee -a "$OUT/results.jsonl"
    rm -rf "$data"
  done
done
