#!/usr/bin/env bash
# tenantd's SQL path (Hrana v2 pipelines) under wrk: point reads and small writes over T tenants
# with Zipf access, for each durability mode; the Bun seed server's webhook write on the same
# tenant count as the baseline (sqld cannot be built here: see docs/BENCHMARKS.md).
#
#   bench/sql.sh                                  # T=1000 and 10000, ~6 min
#   TENANTS="200" DURATION=3s IDLE_S=3 bench/sql.sh   # smoke
#
# Per (T, server): fresh data dir on the real disk, `tenantd bench provision` + `tenantd
# migrate` (bench/sql/0001_kv.sql: a kv table with 100 rows per tenant), server pinned to
# SERVER_CPU, wrk pinned to WRK_CPU; records req/s, p50/p99, non-2xx and in-band SQL errors,
# RSS 1 s after start, peak RSS, fds at peak, and RSS, fds and open tenants after IDLE_S idle.
#
# Write check: every benchmark write changes stored bytes (hrana.lua's value embeds a counter and
# the upsert increments kv.n), and after the server stops bench/lib/check_writes.py sums kv.n
# (Bun: counts its `events` rows) over every tenant file. A run whose wrk saw no successful
# write, or whose files hold fewer writes than were acknowledged, is recorded and then refused:
# the script exits 1 naming the run. SERVERS="tenantd-fsync tenantd-crash" skips Bun.
#
# Before/after: BASE_TENANTD=<another tenantd binary, e.g. a build of an earlier commit> and
# SERVERS="base-fsync tenantd-fsync base-crash tenantd-crash" run both builds side by side in one
# run (`base-*` provisions, migrates and serves with BASE_TENANTD).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench
TENANTD=${TENANTD:-$ROOT/target/release/tenantd}
source "$ROOT/bench/lib/baseline.sh"
TENANTS=${TENANTS:-"1000 10000"}
SERVERS=${SERVERS:-"tenantd-fsync tenantd-crash bun"}
SERVE_ARGS=${SERVE_ARGS:-}  # extra `tenantd serve` flags for every tenantd server, e.g. "--max-open 256"
DURATION=${DURATION:-20s}; CONNS=${CONNS:-64}; IDLE_TTL=${IDLE_TTL:-10s}; IDLE_S=${IDLE_S:-12}
PORT=${PORT:-3960}; SERVER_CPU=${SERVER_CPU:-0}; WRK_CPU=${WRK_CPU:-1}
DATA_ROOT=${DATA_ROOT:-/tmp/tenantd-sql-bench}
OUT=${OUT:-$HERE/results/sql-$(date +%Y%m%d-%H%M%S)}
TOKEN=bench-admin-token

mkdir -p "$OUT"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/run.log"; }
kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1==m {print $2}'; }
[[ -x $TENANTD ]] || { echo "no tenantd binary at $TENANTD (cargo build --release -p tenantd)" >&2; exit 1; }
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then echo "port $PORT already in use" >&2; exit 1; fi
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null || true' EXIT

{ nproc; uname -r; date -u; cut -d' ' -f1-3 /proc/loadavg; } > "$OUT/machine.txt"

run_wrk() { # label lua args...
  local label=$1; shift
  taskset -c "$WRK_CPU" wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$@" > "$OUT/$label.wrk.txt" 2>&1
  grep RESULT_JSON "$OUT/$label.wrk.txt" | sed 's/^RESULT_JSON //'
}

for T in $TENANTS; do
  for server in $SERVERS; do
    data=$DATA_ROOT/$server-$T
    rm -rf "$data"; mkdir -p "$data"
    label=$server-t$T
    if [[ $server == bun ]]; then
      "$TENANTD" bench provision --data "$data" --count "$T" --layout flat > /dev/null
      (cd "$(dirname "$BUN_SERVER")" && DATA_DIR=$data PORT=$PORT exec taskset -c "$SERVER_CPU" "$BUN" "$BUN_SERVER") > "$OUT/$label.server.log" 2>&1 &
      pid=$!
      wait_up "t/readycheck/events"
    else
      bin=$TENANTD; mode=${server#tenantd-}
      if [[ $server == base-* ]]; then
        bin=${BASE_TENANTD:?"base-* servers need BASE_TENANTD (another tenantd binary)"}
        mode=${server#base-}
      fi
      "$bin" bench provision --data "$data" --count "$T" > /dev/null
      "$bin" migrate --dir "$HERE/sql" --data "$data" --jobs 2 > "$OUT/$label.migrate.txt"
      TENANTD_ADMIN_TOKEN=$TOKEN taskset -c "$SERVER_CPU" "$bin" serve --listen "127.0.0.1:$PORT" \
        --data "$data" --durability "$mode" --idle-ttl "$IDLE_TTL" $SERVE_ARGS > "$OUT/$label.server.log" 2>&1 &
      pid=$!
      wait_up healthz
    fi
    sync # provisioning and migration writeback must not overlap the measurement
    sleep 1
    rss_start=$(kb $pid VmRSS)
    if [[ $server == bun ]]; then
      write=$(run_wrk "$label-write" "$HERE/wrk/ingest.lua" "http://127.0.0.1:$PORT" -- "$T" zipf 1.1 /t/{tenant}/webhook)
      read='null'
    else
      read=$(TOKEN=$TOKEN run_wrk "$label-read" "$HERE/wrk/hrana.lua" "http://127.0.0.1:$PORT" -- "$T" zipf 1.1 read)
      write=$(TOKEN=$TOKEN run_wrk "$label-write" "$HERE/wrk/hrana.lua" "http://127.0.0.1:$PORT" -- "$T" zipf 1.1 write)
    fi
    peak=$(kb $pid VmHWM); fds_peak=$(fds $pid)
    open_peak=$( [[ $server == bun ]] && echo null || metric tenantd_open_tenants)
    sleep "$IDLE_S"
    rss_idle=$(kb $pid VmRSS); fds_idle=$(fds $pid)
    open_idle=$( [[ $server == bun ]] && echo null || metric tenantd_open_tenants)
    kill -TERM $pid; wait $pid 2>/dev/null || true; pid=
    # The server has closed every tenant: count what the write run stored.
    query="SELECT total(n) FROM kv"; [[ $server == bun ]] && query="SELECT count(*) FROM events"
    check_ok=1
    check=$(python3 "$HERE/lib/check_writes.py" "$data" "$query" "$write") || check_ok=0
    [[ -n $check ]] || check='{"write_check":"refused: bench/lib/check_writes.py failed"}'
    line=$(printf '{"server":"%s","tenants":%d,"read":%s,"write":%s,"write_check":%s,"rss_start_kb":%d,"rss_peak_kb":%d,"fds_at_end_of_load":%d,"open_tenants_at_end_of_load":%s,"rss_after_idle_kb":%d,"fds_after_idle":%d,"open_tenants_after_idle":%s,"loadavg":"%s"}' \
      "$server" "$T" "$read" "$write" "$check" "$rss_start" "$peak" "$fds_peak" "${open_peak:-null}" "$rss_idle" "$fds_idle" "${open_idle:-null}" "$(cut -d' ' -f1-3 /proc/loadavg)")
    echo "$line" >> "$OUT/results.jsonl"
    log "$line"
    rm -rf "$data"
    if [[ $check_ok == 0 ]]; then
      log "REFUSED: the write run of $label did not store its writes: $check"
      exit 1
    fi
  done
done
log "done: $OUT/results.jsonl"
