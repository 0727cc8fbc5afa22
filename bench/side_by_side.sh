#!/usr/bin/env bash
# One workload, four servers, one run: `tenantd bench load` drives tenantd (fsync and crash
# durability), the Bun baseline (bench/baseline/server.ts) and the Node baseline
# (bench/baseline-node/server.mjs) with the same webhook ingest (~300-byte JSON, tenants
# Zipf(ZIPF_S) over T, closed loop at CONNS connections). Servers pinned to SERVER_CPU, the
# load generator to LOAD_CPU; REPS rounds, servers alternated within a round.
#
#   bench/side_by_side.sh                        # T=10000, 20 s per server, 2 rounds, ~4 min
#   T=1000 DURATION=3s REPS=1 bench/side_by_side.sh   # smoke
#
# Every acknowledged webhook must be in the tenant files afterwards (bench/lib/count_rows.py),
# else the run is refused (exit 1). Output: OUT/<server>-r<round>.json (the load generator's
# JSON, with the server's RSS and CPU sampled from /proc), OUT/summary.md (ratios vs Bun).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench
TENANTD=${TENANTD:-$ROOT/target/release/tenantd}
source "$HERE/lib/baseline.sh"
T=${T:-10000}; ZIPF_S=${ZIPF_S:-1.1}; DURATION=${DURATION:-20s}; CONNS=${CONNS:-64}; REPS=${REPS:-2}
SERVERS=${SERVERS:-"tenantd-fsync tenantd-crash bun node"}
PORT=${PORT:-3961}; SERVER_CPU=${SERVER_CPU:-0}; LOAD_CPU=${LOAD_CPU:-1}
DATA_ROOT=${DATA_ROOT:-/tmp/tenantd-side-by-side}
OUT=${OUT:-$HERE/results/side-by-side-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/run.log"; }
[[ -x $TENANTD ]] || { echo "no tenantd binary at $TENANTD (cargo build --release -p tenantd)" >&2; exit 1; }
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then echo "port $PORT already in use" >&2; exit 1; fi
[[ $SERVERS == *node* ]] && need_node_baseline
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null || true' EXIT
{ nproc; uname -r; date -u; cut -d' ' -f1-3 /proc/loadavg; "$TENANTD" --version; } > "$OUT/machine.txt"

for rep in $(seq 1 "$REPS"); do
  for server in $SERVERS; do
    data=$DATA_ROOT/$server
    rm -rf "$data"; mkdir -p "$data"
    label=$server-r$rep
    case $server in
      bun|node)
        "$TENANTD" bench provision --data "$data" --count "$T" --layout flat > /dev/null
        if [[ $server == bun ]]; then cmd=("$BUN" "$BUN_SERVER"); else cmd=(node "$NODE_SERVER"); fi
        (cd "$data" && DATA_DIR=$data PORT=$PORT exec taskset -c "$SERVER_CPU" "${cmd[@]}") > "$OUT/$label.server.log" 2>&1 &
        pid=$!
        wait_up "t/readycheck/events"
        path='/t/{tenant}/webhook' ;;
      tenantd-*)
        "$TENANTD" bench provision --data "$data" --count "$T" > /dev/null
        TENANTD_ADMIN_TOKEN=side-by-side-admin-token taskset -c "$SERVER_CPU" "$TENANTD" serve --listen "127.0.0.1:$PORT" \
          --data "$data" --durability "${server#tenantd-}" > "$OUT/$label.server.log" 2>&1 &
        pid=$!
        wait_up healthz
        path='/t/{tenant}/hooks/bench' ;;
      *) echo "unknown server $server" >&2; exit 1 ;;
    esac
    touch "$data/.provisioned"; sync; sleep 1.1   # rows can only be in files modified after this mark
    taskset -c "$LOAD_CPU" "$TENANTD" bench load --url "http://127.0.0.1:$PORT$path" --workload webhook \
      --tenants "$T" --dist zipf --zipf-s "$ZIPF_S" --concurrency "$CONNS" --duration "$DURATION" \
      --threads 1 --pid "$pid" --json "$OUT/$label.json" > "$OUT/$label.txt"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
    acked=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["ok"])' "$OUT/$label.json")
    table=events; [[ $server == tenantd-* ]] && table=_tenantd_events
    read -r stored _ _ < <(python3 "$HERE/lib/count_rows.py" "$data" "$table" "$data/.provisioned")
    log "$label: acked $acked, stored $stored, load $(cut -d' ' -f1 /proc/loadavg)"
    echo "{\"label\":\"$label\",\"server\":\"$server\",\"acked\":$acked,\"stored\":$stored}" >> "$OUT/checks.jsonl"
    rm -rf "$data"
    if (( stored < acked )); then log "REFUSED: $label stored $stored of $acked acknowledged webhooks"; exit 1; fi
  done
done
python3 "$HERE/lib/side_by_side_summary.py" "$OUT" | tee "$OUT/summary.md"
